"""A handful of labelled target examples choose the adaptation method instead of reverse validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_adaptation import _nuisance_shift  # tests/ is on sys.path (pytest's default import mode)
from transferkit.adaptation import AdaptationConfig, compare_adaptation, select_adaptation
from transferkit.adaptation.run import LABELLED_TARGET
from transferkit.cli import main
from transferkit.errors import DataError, TransferkitError
from transferkit.estimators import TransferClassifier

_FAST = AdaptationConfig(steps=30, bottleneck_dim=16, dropout=0.0)
_SHALLOW = ["source-only", "shallow-coral", "self-training"]


def test_labelled_target_examples_score_every_candidate_fitted_on_the_whole_source():
    xs, ys, xt, yt = _nuisance_shift(0, n=160, d=10)
    few = (xt[:12], yt[:12])
    selection = select_adaptation(_SHALLOW, xs, ys, xt, random_state=3, target_labelled=few)
    assert selection.criterion == LABELLED_TARGET and selection.to_dict()["criterion"] == LABELLED_TARGET
    assert len(selection.validation_index) == 0 and np.array_equal(selection.train_index, np.arange(len(ys)))
    for candidate in selection.candidates:
        wrong = np.asarray(candidate.model.predict(xt[:12])) != yt[:12]
        assert candidate.misses.shape == (12,) and np.array_equal(candidate.misses, wrong)
        assert candidate.reverse_error == pytest.approx(wrong.mean())
    label_free = select_adaptation(_SHALLOW, xs, ys, xt, random_state=3)
    assert label_free.criterion == "reverse validation" and len(label_free.validation_index) > 0


def test_the_labelled_examples_decide_the_choice():
    """Labels equal to self-training's predictions make it error-free, and source-only far from it."""
    xs, ys, xt, _ = _nuisance_shift(1, n=160, d=10)
    first = select_adaptation(_SHALLOW, xs, ys, xt, random_state=0)
    agreeing = np.asarray(first.per_method["self-training"].model.predict(xt))
    # fitted on the whole source rather than 80 %, the candidates differ a little from those above
    chosen = select_adaptation(_SHALLOW, xs, ys, xt, random_state=0, target_labelled=(xt, agreeing))
    errors = {c.method: c.reverse_error for c in chosen.per_method.values()}
    assert errors["source-only"] > 0.2 and errors["self-training"] < 0.05
    assert chosen.best.method == "self-training"


@pytest.mark.parametrize(
    ("few", "message"),
    [
        ("labels", "must be a pair"),
        ((np.zeros((3, 10)), np.zeros(2, int)), "3 feature rows and labels of shape \\(2,\\)"),
        ((np.zeros((3, 4)), np.zeros(3, int)), "4 columns; the source's 10"),
        ((np.zeros((3, 10)), np.array([0, 1, 5])), "label indices of the source's classes \\(0..1\\)"),
        ((np.zeros((2, 10)), np.array([0.5, 1.0])), "label indices"),
    ],
)
def test_bad_labelled_target_examples_are_refused_before_any_fit(few, message):
    xs, ys, xt, _ = _nuisance_shift(0, n=40, d=10)
    with pytest.raises(DataError, match=message):
        select_adaptation(["source-only"], xs, ys, xt, target_labelled=few)


def test_compare_draws_the_labelled_examples_from_the_targets_training_part_only():
    xs, ys, xt, yt = _nuisance_shift(2, n=160, d=10)
    test, test_labels, xt, yt = xt[:60], yt[:60], xt[60:], yt[60:]
    common = {"methods": ["shallow-coral", "self-training"], "seeds": 2, "target_test": test, "settings": _FAST}
    record = compare_adaptation(
        xs, ys, xt, test_labels=test_labels, target_labels=yt, target_labels_per_class=3, **common
    )
    shuffled = np.random.default_rng(0).permutation(test_labels)
    again = compare_adaptation(xs, ys, xt, test_labels=shuffled, target_labels=yt, target_labels_per_class=3, **common)
    assert record["selected"]["criterion"] == LABELLED_TARGET
    assert record["selected"]["choices"] == again["selected"]["choices"]  # the test labels never choose
    for method, row in record["methods"].items():
        assert row["reverse_error"] == again["methods"][method]["reverse_error"], method
    with pytest.raises(DataError, match="needs the target's labels"):
        compare_adaptation(xs, ys, xt, target_labels_per_class=3, **common)
    with pytest.raises(DataError, match="not both"):
        compare_adaptation(
            xs, ys, xt, target_labels=yt, target_labels_per_class=3, target_labelled=(xt[:4], yt[:4]), **common
        )


def _npz_pair(tmp_path, target_labels: bool):
    xs, ys, xt, yt = _nuisance_shift(3, n=120, d=4)
    names = np.array(["cat", "dog"])
    np.savez(tmp_path / "source.npz", X=xs, y=names[ys])
    np.savez(tmp_path / "target.npz", X=xt, **({"y": names[yt]} if target_labels else {}))
    np.savez(tmp_path / "few.npz", X=xt[:10], y=names[yt[:10]])
    return ["adapt", "--source", str(tmp_path / "source.npz"), "--target", str(tmp_path / "target.npz")]


def test_cli_chooses_with_labels_drawn_from_a_labelled_target(tmp_path, capsys):
    argv = _npz_pair(tmp_path, target_labels=True) + ["--method", "shallow-coral", "--seeds", "1"]
    assert main([*argv, "--target-labels-per-class", "3", "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "choice by 3 x 2 labelled target examples (one-standard-error rule, per seed)" in out
    assert "sel. error" in out and "target accuracy" in out
    assert json.loads((tmp_path / "a.json").read_text())["selected"]["criterion"] == LABELLED_TARGET


def test_cli_chooses_with_a_labelled_set_beside_an_unlabelled_target(tmp_path, capsys):
    argv = _npz_pair(tmp_path, target_labels=False) + ["--method", "shallow-coral", "--seeds", "1"]
    assert main([*argv, "--target-labelled", str(tmp_path / "few.npz")]) == 0
    out = capsys.readouterr().out
    assert "the choice below rests on the 10 examples of --target-labelled" in out
    assert "choice by 10 labelled target examples" in out
    assert main([*argv, "--target-labels-per-class", "3"]) == 2
    assert "has none; give the few labelled examples with --target-labelled" in capsys.readouterr().err
    np.savez(tmp_path / "odd.npz", X=np.zeros((4, 4)), y=np.array(["cat", "cow", "cat", "cow"]))
    assert main([*argv, "--target-labelled", str(tmp_path / "odd.npz")]) == 2
    assert "classes the source lacks: ['cow']" in capsys.readouterr().err


def test_estimator_lets_a_few_target_labels_choose(monkeypatch, tiny_backbone):
    monkeypatch.setattr("transferkit.estimators.create_backbone", lambda name: tiny_backbone())
    rng = np.random.default_rng(0)
    labels = np.arange(32) % 2
    images = rng.integers(0, 60, size=(32, 32, 32))
    images[labels == 1, :, ::4] = 220
    X = images.astype(np.uint8)
    X_target = np.clip(images + 70, 0, 255).astype(np.uint8)
    names = np.where(labels == 1, "striped", "plain")
    clf = TransferClassifier("tiny", adaptation="self-training", verbose=False)
    clf.fit(X, names, X_target=X_target, target_labelled=(X_target[:6], names[:6]))
    chosen = clf.history_["adaptation"]
    assert chosen["selection"]["criterion"] == LABELLED_TARGET and chosen["weight"] in (0.3, 1.0)
    assert set(clf.predict(X_target)) <= {"plain", "striped"}
    with pytest.raises(DataError, match="labels not in y: \\['zebra'\\]"):
        clf.fit(X, names, X_target=X_target, target_labelled=(X_target[:2], ["plain", "zebra"]))
    fixed = TransferClassifier("tiny", adaptation="kmm", verbose=False)
    with pytest.raises(TransferkitError, match="leaves nothing to choose"):
        fixed.fit(X, names, X_target=X_target, target_labelled=(X_target[:2], names[:2]))
    with pytest.raises(TransferkitError, match="needs adaptation="):
        TransferClassifier("tiny", verbose=False).fit(X, names, target_labelled=(X_target[:2], names[:2]))
