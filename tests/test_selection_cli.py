"""Ranking, similarity, the negative-transfer guard and auto mode, end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import transferkit.data as tk_data
from transferkit.backbones._config import BackboneCfg
from transferkit.backbones.zoo import save_to_zoo
from transferkit.cli import main
from transferkit.data import load_dataset
from transferkit.data._dataset import Dataset, DataSplit
from transferkit.estimators import TransferClassifier
from transferkit.selection import choose_strategy, rank_backbones


def _run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def shuffled_source(zoo_home, tiny_backbone):
    """A source model trained on MNIST with shuffled labels: it learned nothing that transfers."""
    save_to_zoo(tiny_backbone(), "tiny-init")
    mnist = load_dataset("mnist").train
    rows = np.random.default_rng(0).permutation(len(mnist))[:600]
    shuffled = np.random.default_rng(1).permutation(mnist.labels[rows])
    source = TransferClassifier("zoo:tiny-init", "finetune", image_size=32, epochs=2, verbose=False)
    source.fit(mnist.inputs[rows], shuffled)
    save_to_zoo(source.model_.backbone, "tiny-shuffled", provenance={"data": "mnist, shuffled labels"})
    return "zoo:tiny-shuffled"


@pytest.mark.slow
def test_guard_fires_on_a_source_trained_on_shuffled_labels(shuffled_source, tmp_path, capsys):
    argv = ["fit", "digits", "--backbone", shuffled_source, "--labels-per-class", "50", "--image-size", "32"]
    argv += ["--baselines", "classical", "--seeds", "3", "--quiet"]
    status, out, err = _run(capsys, *argv, "--json", str(tmp_path / "fixed.json"))
    assert status == 0, err
    record = json.loads((tmp_path / "fixed.json").read_text())
    assert record["negative_transfer"] is True and record["gain_ci95"][1] < 0
    assert "negative transfer:" in out and record["returned"] == "transfer"
    assert len(record["accuracy_per_seed"]) == 3 == len(record["baselines_per_seed"]["classical"])
    # auto mode returns the target-only model instead
    status, out, err = _run(capsys, *argv, "--strategy", "auto", "--out", str(tmp_path / "auto"))
    assert status == 0, err
    record = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert record["negative_transfer"] is True and record["returned"] == "classical"
    assert "target-only model (classical) is returned" in out
    saved = json.loads((tmp_path / "auto" / "model" / "config.json").read_text())
    assert saved["strategy"]["strategy"] == "classical"
    assert [c["seed"] for c in record["choices"]] == [0, 1, 2]
    assert all(c["strategy"]["strategy"] in ("linear-probe", "freeze", "lp-ft", "finetune") for c in record["choices"])


def test_guard_does_not_fire_on_a_clear_positive_case(tmp_path, capsys):
    argv = ["fit", "sentiment-yelp", "--labels-per-class", "8", "--baselines", "classical", "--seeds", "3"]
    status, out, err = _run(capsys, *argv, "--quiet", "--json", str(tmp_path / "run.json"))
    assert status == 0, err
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["negative_transfer"] is False and record["verdict"] == "transfer helped"
    assert record["gain_ci95"][0] > 0 and "negative transfer:" not in out
    assert "over 3 seeds" in out and "mean ± std over 3 seeds" in out


def test_rank_puts_pretrained_above_random_init_and_writes_json(tmp_path, capsys):
    argv = ["rank", "digits", "--backbones", "efficientnet_lite0.random,efficientnet_lite0.in1k"]
    argv += ["--labels-per-class", "10", "--image-size", "64", "--quiet", "--json", str(tmp_path / "rank.json")]
    status, out, err = _run(capsys, *argv)
    assert status == 0, err
    record = json.loads((tmp_path / "rank.json").read_text())
    assert [r["name"] for r in record["ranking"]] == ["efficientnet_lite0.in1k", "efficientnet_lite0.random"]
    assert [r["rank"] for r in record["ranking"]] == [1, 2] and record["n_examples"] == 100
    assert "best: efficientnet_lite0.in1k" in out
    # features are cached: ranking again reads them back
    status, out, _ = _run(capsys, *argv)
    assert status == 0 and out.count("cached") == 2


def test_rank_errors_name_the_value(capsys):
    status, _, err = _run(capsys, "rank", "digits", "--score", "logmee", "--quiet")
    assert status == 2 and "did you mean 'logme'" in err
    status, _, err = _run(capsys, "rank", "digits", "--backbones", "minilm_l6.sentence", "--labels-per-class", "2")
    assert status == 2 and "reads text" in err


def test_similarity_prints_all_three_measures(tmp_path, capsys):
    argv = ["similarity", "digits", "mnist", "--image-size", "32", "--max-examples", "80", "--quiet"]
    status, out, err = _run(capsys, *argv, "--json", str(tmp_path / "s.json"))
    assert status == 0, err
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["n_first"] == 80 == record["n_second"]
    assert record["mmd_gaussian"] > 0 and 0 < record["proxy_a_distance"] <= 2
    assert "proxy A-distance" in out and "MMD" in out
    status, _, err = _run(capsys, "similarity", "digits", "sentiment-yelp", "--quiet")
    assert status == 2 and "one modality" in err
    # a data set against itself: two disjoint halves, much closer than digits vs MNIST
    argv = ["similarity", "digits", "digits", "--image-size", "32", "--max-examples", "80", "--quiet"]
    status, _, err = _run(capsys, *argv, "--json", str(tmp_path / "same.json"))
    same = json.loads((tmp_path / "same.json").read_text())
    assert status == 0 and same["n_first"] == 80 == same["n_second"]
    assert same["proxy_a_distance"] < 0.5 < record["proxy_a_distance"]
    assert same["mmd_gaussian"] < record["mmd_gaussian"] / 5


def test_auto_strategy_never_reads_test_labels(tmp_path, capsys, monkeypatch):
    """Shuffling the test labels changes the accuracy, never the choice."""
    argv = ["fit", "digits", "--backbone", "efficientnet_lite0.random", "--strategy", "auto", "--labels-per-class"]
    argv += ["6", "--image-size", "32", "--epochs", "2", "--no-baseline", "--seeds", "1", "--test-size", "60"]
    status, _, err = _run(capsys, *argv, "--quiet", "--json", str(tmp_path / "a.json"))
    assert status == 0, err
    real = tk_data.load_dataset

    def shuffled_test(*args, **kwargs):
        split = real(*args, **kwargs)
        test = split.test
        labels = np.random.default_rng(0).permutation(test.labels)  # a copy: loaders may cache their arrays
        return DataSplit(split.train, Dataset(test.name, test.modality, test.inputs, labels, list(test.classes)))

    monkeypatch.setattr(tk_data, "load_dataset", shuffled_test)
    status, _, err = _run(capsys, *argv, "--quiet", "--json", str(tmp_path / "b.json"))
    assert status == 0, err
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    for record in (a, b):  # everything but the timing
        for choice in record["choices"]:
            choice["strategy"].pop("seconds")
    assert a["choices"] == b["choices"] and a["strategy"] == b["strategy"]
    assert a["accuracy"] != b["accuracy"], "shuffled test labels must change the measured accuracy"
    assert a["choices"][0]["strategy"]["reasons"], "the choice must say why"


def test_choose_strategy_rule_and_held_out_check(tiny_backbone):
    digits = load_dataset("digits").train
    few = digits.subset(tk_data.few_shot_indices(digits.labels, 3, 0))
    backbone = tiny_backbone()

    def make(strategy):
        return TransferClassifier("efficientnet_lite0.random", strategy, image_size=32, epochs=1, verbose=False)

    choice = choose_strategy(few.inputs, few.labels, make_estimator=make, backbone=backbone)
    assert choice.strategy == "linear-probe" and "too few" in choice.reasons[0] and not choice.held_out
    more = digits.subset(tk_data.few_shot_indices(digits.labels, 8, 0))
    choice = choose_strategy(more.inputs, more.labels, make_estimator=make, backbone=backbone)
    assert choice.domain_distance is not None and choice.domain_distance > 0.5  # random weights: unsure of everything
    assert choice.proposed == "freeze" and set(choice.held_out) == {"linear-probe", "freeze"}
    assert choice.held_out_size == 20 and choice.strategy in ("linear-probe", "freeze")


def test_rank_backbones_api_validates_its_arguments():
    digits = load_dataset("digits").train
    with pytest.raises(Exception, match="one label per input"):
        rank_backbones(digits.inputs[:10], digits.labels[:9], ["efficientnet_lite0.random"], modality="image")
    # one name as a string is that backbone, not a list of its letters
    ranking = rank_backbones(
        digits.inputs[:20],
        digits.labels[:20],
        "efficientnet_lite0.random",
        modality="image",
        image_size=32,
        cache=False,
    )
    assert [r.name for r in ranking] == ["efficientnet_lite0.random"]


class _Scripted:
    """A stand-in estimator whose held-out mistakes are fixed in advance."""

    def __init__(self, truth: dict, wrong: int):
        self.truth, self.wrong = truth, wrong

    def fit(self, inputs, labels):
        return self

    def predict(self, inputs):
        predicted = np.array([self.truth[x] for x in inputs])
        predicted[: self.wrong] = "nope"
        return predicted


@pytest.mark.parametrize(
    ("probe_wrong", "proposal_wrong", "expected"),
    [(0, 0, "lp-ft"), (3, 0, "lp-ft"), (9, 10, "lp-ft"), (8, 10, "linear-probe"), (0, 10, "linear-probe")],
)
def test_held_out_check_overturns_the_rule_only_beyond_one_standard_error(probe_wrong, proposal_wrong, expected):
    """Ties and small probe leads keep the rule's proposal; a clear probe lead overturns it."""
    inputs = [f"sentence {i}" for i in range(80)]
    labels = np.array(["pos", "neg"] * 40)
    truth = dict(zip(inputs, labels))

    def make(strategy):
        return _Scripted(truth, probe_wrong if strategy == "linear-probe" else proposal_wrong)

    backbone = type("B", (), {"cfg": BackboneCfg(name="text-encoder", arch="bert", modality="text", feature_dim=4)})()
    choice = choose_strategy(inputs, labels, make_estimator=make, backbone=backbone)
    assert choice.proposed == "lp-ft" and choice.held_out_size == 20
    assert choice.strategy == expected, choice.reasons


def test_rank_all_skips_zoo_mlps_that_cannot_read_the_image_size(zoo_home):
    from transferkit.pretraining import LayerwiseConfig, pretrain_unsupervised
    from transferkit.selection.rank import _readable_at, candidate_backbones

    digits = load_dataset("digits").train
    pretrain_unsupervised(
        digits.inputs[:50], "tiny-ae", LayerwiseConfig(method="ae", layers=(8,), epochs=1), verbose=False
    )
    names = candidate_backbones("image")
    assert "zoo:tiny-ae" in names
    assert _readable_at(names, None) == names and _readable_at(names, 8) == names  # its own 8x8 size is fine
    with pytest.warns(UserWarning, match="skipping zoo:tiny-ae: an MLP over images of one size cannot read"):
        assert _readable_at(names, 128) == [name for name in names if name != "zoo:tiny-ae"]


def test_rank_backbones_checks_every_name_before_extracting(monkeypatch):
    from transferkit.errors import UnknownNameError

    def no_extraction(*args, **kwargs):
        raise AssertionError("features extracted before every name was checked")

    monkeypatch.setattr("transferkit.selection.rank.extract_features", no_extraction)
    digits = load_dataset("digits").train
    with pytest.raises(UnknownNameError, match="no-such-net"):
        rank_backbones(
            digits.inputs[:10], digits.labels[:10], ["efficientnet_lite0.random", "zoo:no-such-net"], modality="image"
        )
