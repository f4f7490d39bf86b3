"""The gain interval of the negative-transfer guard, and the local model zoo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from transferkit.backbones import create_backbone
from transferkit.backbones.zoo import list_zoo, save_to_zoo
from transferkit.cli import main
from transferkit.errors import DataError, TransferkitError, UnknownNameError
from transferkit.selection import candidate_backbones, transfer_gain


def _correct(rng, accuracy, seeds=3, n=400):
    return rng.random((seeds, n)) < accuracy  # (S, n)


def test_gain_of_identical_models_is_zero_and_unclear():
    rng = np.random.default_rng(0)
    a = _correct(rng, 0.7)
    estimate = transfer_gain(a, a.copy())
    assert estimate.gain == 0 and estimate.low == 0 == estimate.high
    assert estimate.verdict == "no clear difference" and not estimate.negative


def test_clear_gain_and_clear_loss_are_called_with_confidence():
    rng = np.random.default_rng(1)
    good, bad = _correct(rng, 0.9), _correct(rng, 0.6)
    helped = transfer_gain(good, bad)
    assert helped.verdict == "transfer helped" and helped.low > 0 and 0.25 < helped.gain < 0.35
    hurt = transfer_gain(bad, good)
    assert hurt.negative and hurt.verdict == "negative transfer" and hurt.high < 0
    assert hurt.per_seed == pytest.approx([-g for g in helped.per_seed])


def test_gain_interval_stays_within_what_two_accuracies_can_differ_by():
    # two seeds, two test examples: the t-interval's half-width alone is several times 1
    estimate = transfer_gain([[1, 0], [1, 1]], [[0, 0], [0, 1]])
    assert estimate.gain == pytest.approx(0.5)
    assert estimate.low == -1.0 and estimate.high == 1.0


def test_a_difference_without_spread_on_a_handful_of_examples_is_not_called():
    two_lost = transfer_gain([[0, 0]], [[1, 1]])  # both test examples lost, one seed: no spread to measure
    assert two_lost.gain == -1.0 and two_lost.low == -1.0 and two_lost.high > 0
    assert two_lost.verdict == "no clear difference"
    many_lost = transfer_gain(np.zeros((1, 500)), np.ones((1, 500)))  # the same on 500 examples is evidence
    assert many_lost.high < -0.95 and many_lost.verdict != "no clear difference"
    same = transfer_gain([[1, 0, 1]], [[1, 0, 1]])  # identical predictions differ by exactly zero
    assert same.low == same.high == 0.0


def test_a_small_noisy_difference_is_not_called():
    rng = np.random.default_rng(2)
    estimate = transfer_gain(_correct(rng, 0.71, n=200), _correct(rng, 0.70, n=200))
    assert estimate.verdict == "no clear difference" and estimate.low < 0 < estimate.high


def test_spread_over_seeds_widens_the_interval():
    """Same mean gain; when the draws disagree the interval must be wider."""
    rng = np.random.default_rng(3)
    base = _correct(rng, 0.7, seeds=1, n=1000)[0]
    steady = np.stack([base] * 3)
    swings = steady.copy()
    swings[0, :150] = True  # seed 0 much better, seed 2 much worse
    swings[2, :150] = False
    a = transfer_gain(steady, np.stack([np.roll(base, 1)] * 3))
    b = transfer_gain(swings, np.stack([np.roll(base, 1)] * 3))
    assert (b.high - b.low) > (a.high - a.low)


def test_gain_shapes_must_match():
    with pytest.raises(DataError, match="same seeds and test examples"):
        transfer_gain(np.ones((3, 10)), np.ones((2, 10)))
    with pytest.raises(DataError, match="correctness"):
        transfer_gain(np.ones((2, 3, 4)), np.ones((2, 3, 4)))


def test_zoo_round_trip_gives_the_same_features(zoo_home, tiny_backbone, capsys):
    backbone = tiny_backbone()
    folder = save_to_zoo(backbone, "tiny-0", provenance={"data": "none", "epochs": 0})
    assert (folder / "weights.safetensors").is_file() and json.loads((folder / "backbone.json").read_text())
    loaded = create_backbone("zoo:tiny-0")
    assert loaded.cfg.name == "zoo:tiny-0" and loaded.cfg.sha256 and loaded.cfg.num_source_classes == 10
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded.forward_features(x), backbone.forward_features(x))
    assert [e["name"] for e in list_zoo()] == ["zoo:tiny-0"]
    assert list_zoo()[0]["provenance"] == {"data": "none", "epochs": 0}
    assert "zoo:tiny-0" in candidate_backbones("image") and "zoo:tiny-0" not in candidate_backbones("text")
    assert main(["list", "--json"]) == 0
    listed = {b["name"]: b for b in json.loads(capsys.readouterr().out)["backbones"]}
    assert listed["zoo:tiny-0"]["weights"] == "zoo: none" and listed["zoo:tiny-0"]["input"] == "32x32"
    # by folder path too
    assert create_backbone(f"zoo:{folder}").cfg.sha256 == loaded.cfg.sha256


def test_zoo_refuses_overwrites_bad_names_and_corrupt_weights(zoo_home, tiny_backbone):
    backbone = tiny_backbone()
    save_to_zoo(backbone, "tiny")
    with pytest.raises(TransferkitError, match="already exists"):
        save_to_zoo(backbone, "tiny")
    save_to_zoo(tiny_backbone(seed=1), "tiny", overwrite=True)
    with pytest.raises(TransferkitError, match="zoo name"):
        save_to_zoo(backbone, "../escape")
    with pytest.raises(UnknownNameError, match="did you mean 'tiny'"):
        create_backbone("zoo:tinny")
    weights = zoo_home / "tiny" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(TransferkitError, match="sha256"):
        create_backbone("zoo:tiny")
    assert not [p for p in zoo_home.iterdir() if p.name.startswith(".")], "a staging folder was left behind"


def test_random_init_backbone_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = create_backbone("efficientnet_lite0.random")
    after = torch.rand(1)
    b = create_backbone("efficientnet_lite0.random")
    assert torch.equal(after, expected)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.cfg.sha256 is None and a.cfg.weights == ""


def test_overwriting_a_zoo_entry_keeps_the_old_one_until_the_new_one_is_in(zoo_home, tiny_backbone, monkeypatch):
    from transferkit.backbones import zoo

    folder = save_to_zoo(tiny_backbone(seed=0), "tiny")
    old = (folder / "weights.safetensors").read_bytes()
    real_replace, at_the_switch = zoo.os.replace, []

    def killed_at_the_switch(source, destination):
        if Path(destination) == folder and not at_the_switch:  # staging -> entry: the last step of a save
            at_the_switch.append([p.read_bytes() == old for p in zoo_home.rglob("weights.safetensors")])
            raise KeyboardInterrupt
        return real_replace(source, destination)

    monkeypatch.setattr(zoo.os, "replace", killed_at_the_switch)
    with pytest.raises(KeyboardInterrupt):
        save_to_zoo(tiny_backbone(seed=1), "tiny", overwrite=True)
    assert any(at_the_switch[0]), "the old entry was deleted before the new one was in place"
    assert (folder / "weights.safetensors").read_bytes() == old
    assert [e["name"] for e in list_zoo()] == ["zoo:tiny"]
    monkeypatch.setattr(zoo.os, "replace", real_replace)
    save_to_zoo(tiny_backbone(seed=1), "tiny", overwrite=True)
    assert (folder / "weights.safetensors").read_bytes() != old
    assert sorted(p.name for p in zoo_home.iterdir()) == ["tiny"], "the old entry or the staging folder was left"


def test_list_skips_dot_folders_that_a_killed_save_left(zoo_home, tiny_backbone, capsys):
    import shutil

    folder = save_to_zoo(tiny_backbone(), "tiny")
    shutil.copytree(folder, zoo_home / ".tiny.k1ll3d")  # a staging folder holding a complete entry
    shutil.copytree(folder, zoo_home / ".tiny.old-0a1b2c3d")
    assert [e["name"] for e in list_zoo()] == ["zoo:tiny"]
    assert main(["list", "--json"]) == 0
    assert [b["name"] for b in json.loads(capsys.readouterr().out)["backbones"] if b["name"].startswith("zoo:")] == [
        "zoo:tiny"
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("feature_dim", "lots", "'feature_dim' is 'lots'; expected a positive int"),
        ("input_size", "big", r"'input_size' is 'big'; expected null or \[channels, height, width\]"),
        ("num_source_classes", "10", "'num_source_classes' is '10'; expected an int >= 0"),
        ("mean", "x", "'mean' is 'x'; expected null or a list of numbers"),
        ("weights", "../other/weights.safetensors", "'weights' is '../other/weights.safetensors'; expected a file"),
    ],
)
def test_a_zoo_entry_with_a_field_of_the_wrong_type_is_named(zoo_home, tiny_backbone, capsys, field, value, message):
    save_to_zoo(tiny_backbone(), "tiny")
    folder = zoo_home / "edited"
    folder.mkdir()
    for name in ("weights.safetensors", "backbone.json"):
        (folder / name).write_bytes((zoo_home / "tiny" / name).read_bytes())
    index = json.loads((folder / "backbone.json").read_text())
    index["cfg"][field] = value
    (folder / "backbone.json").write_text(json.dumps(index))
    with pytest.raises(TransferkitError, match=message) as error:
        create_backbone("zoo:edited")
    assert f"zoo entry {str(folder)!r} is damaged" in str(error.value) and "--out edited --overwrite" in str(
        error.value
    )
    assert main(["list", "--json"]) == 0  # listed without the damaged entry, not with nonsense in its columns
    names = [b["name"] for b in json.loads(capsys.readouterr().out)["backbones"]]
    assert "zoo:tiny" in names and "zoo:edited" not in names


def test_an_entry_without_its_weights_is_called_damaged_by_its_folder(zoo_home, tiny_backbone):
    save_to_zoo(tiny_backbone(), "d1")
    copy = zoo_home / "noweights"
    copy.mkdir()
    (copy / "backbone.json").write_bytes((zoo_home / "d1" / "backbone.json").read_bytes())  # still says zoo:d1
    with pytest.raises(TransferkitError, match="is damaged: its weights file .* is missing") as error:
        create_backbone("zoo:noweights")
    text = str(error.value)
    assert str(copy) in text and "--out noweights --overwrite" in text and "install" not in text
