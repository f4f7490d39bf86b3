"""Odd but sensible uses of rank, similarity, transfer-lr, pretrain and report: one-line errors, honest pages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transferkit.backbones.native import build_native, native_cfg
from transferkit.backbones.zoo import save_to_zoo
from transferkit.cli import main
from transferkit.errors import DataError
from transferkit.report import render_report


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _vectors(path, width=8, classes=("a", "b", "<c&>"), per_class=20, labelled=True, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(i, 1.0, (per_class, width)) for i in range(len(classes))]).astype(np.float32)
    if labelled:
        np.savez(path, X=X, y=np.repeat(list(classes), per_class))
    else:
        np.savez(path, X=X)
    return path


def _mlp_entry(name, width, source_classes=3):
    cfg = native_cfg("mlp", name=name, in_features=width, hidden=(4,), num_source_classes=source_classes)
    save_to_zoo(build_native(cfg, seed=0), name)


def test_rank_all_skips_zoo_entries_it_cannot_score_and_names_a_named_one(zoo_home, tmp_path, capsys):
    data = _vectors(tmp_path / "v.npz")
    _mlp_entry("wide8", 8)
    _mlp_entry("wide12", 12)  # another input width
    _mlp_entry("headless", 8, source_classes=0)  # as --unsupervised makes: no source head for LEEP / NCE
    status, _, err = _run(capsys, "rank", data, "--score", "leep", "--quiet", "--json", tmp_path / "r.json")
    assert status == 0, err
    assert [r["name"] for r in json.loads((tmp_path / "r.json").read_text())["ranking"]] == ["zoo:wide8"]
    assert "zoo:wide12" in err and "zoo:headless" in err  # skipped with a warning, not silently
    status, _, err = _run(capsys, "rank", data, "--backbones", "zoo:wide8,zoo:wide12", "--quiet")
    assert status == 2 and err.startswith("transferkit: error:") and len(err.strip().splitlines()) == 1
    assert "zoo:wide12" in err and "12 columns" in err and "has 8" in err


def test_similarity_names_the_backbone_and_data_of_another_width(zoo_home, tmp_path, capsys):
    _mlp_entry("wide8", 8)
    first, second = _vectors(tmp_path / "a.npz"), _vectors(tmp_path / "b.npz", width=12)
    status, _, err = _run(capsys, "similarity", first, second, "--backbone", "zoo:wide8", "--quiet")
    assert status == 2 and err.startswith("transferkit: error:")
    assert "zoo:wide8" in err and "b.npz" in err and "8 columns" in err


def test_transfer_lr_refuses_an_unlabelled_target_and_impossible_k_before_fitting(tmp_path, capsys):
    source = _vectors(tmp_path / "s.npz")
    target = _vectors(tmp_path / "t.npz", seed=1)
    status, _, err = _run(capsys, "transfer-lr", "--source", source, "--target", _vectors(tmp_path / "u.npz",
                          labelled=False), "--quiet")  # fmt: skip
    assert status == 2 and err.startswith("transferkit: error:") and "has no labels" in err
    status, _, err = _run(capsys, "transfer-lr", "--source", source, "--target", target, "--labels-per-class", "1")
    assert status == 2 and "--labels-per-class 1" in err and "lam" not in err
    status, out, err = _run(capsys, "transfer-lr", "--source", source, "--target", target, "--labels-per-class",
                            "2,500", "--seeds", "1")  # fmt: skip
    assert status == 2 and "'<c&>'" in err and "500" in err  # the class by name, not its index
    assert "source-only" not in out  # refused before any k was fitted


def test_pretrain_holdout_that_leaves_nothing_to_train_on_is_a_one_line_error(zoo_home, tmp_path, capsys):
    data = _vectors(tmp_path / "v.npz", classes=("a", "b"), per_class=5)
    status, _, err = _run(capsys, "pretrain", data, "--out", "x", "--holdout", "0.9", "--quiet")
    assert status == 2 and err.startswith("transferkit: error:") and "holdout 0.9" in err
    assert not (zoo_home / "x").exists()


def _image_folder(root, sizes):
    rng = np.random.default_rng(0)
    for name, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (root / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_pretrain_small_cnn_on_an_image_folder(zoo_home, tmp_path, capsys):
    photos = _image_folder(tmp_path / "photos", [12] * 6)
    status, out, err = _run(capsys, "pretrain", photos, "--out", "photos-cnn", "--epochs", "1", "--quiet")
    assert status == 0, err
    assert (zoo_home / "photos-cnn" / "backbone.json").is_file() and "zoo:photos-cnn" in out
    mixed = _image_folder(tmp_path / "mixed", [8, 12, 16])
    status, _, err = _run(capsys, "pretrain", mixed, "--out", "mixed", "--epochs", "1", "--holdout", "0")
    assert status == 2 and "--image-size" in err and not (zoo_home / "mixed").exists()


def _transfer_lr_record():
    row = {
        "k": 4,
        "accuracy_per_seed": {"source-only": [0.625, 0.625], "target-only": [0.70, 0.66], "transfer": [0.875, 0.8333]},
        "lambdas": [0.1, 1.0],
        "best_baseline": "target-only",
        "gain": {"gain": 0.1875, "low": 0.0123, "high": 0.3627, "verdict": "transfer helped"},
        "negative_transfer": False,
        "beats_both": True,
    }
    return {"source": "src.npz", "target": "<tgt>.npz", "representation": "input", "rows": [row]}


def test_report_shows_the_numbers_of_transfer_lr_and_pretrain_records():
    pretrain = {"name": "zoo:m", "path": "/z/m", "provenance": {"data": "mnist", "accuracy": 0.9123, "epochs": 3}}
    page = render_report([("lr.json", _transfer_lr_record()), ("p.json", pretrain)])
    assert "0.854 ± 0.029" in page  # the transfer LR's mean ± std over seeds, as the command prints it
    assert "0.680 ± 0.028" in page and "+18.8 (+1.2 to +36.3) vs target-only: transfer helped" in page
    assert "0.1, 1" in page  # λ per seed
    assert "0.9123" in page and "mnist" in page  # the source accuracy and data of the zoo entry
    assert "&lt;tgt&gt;.npz" in page and "<tgt>" not in page


def _old_fit(**extra):
    return {"dataset": "d", "strategy": "linear-probe", "accuracy": 0.8, "accuracy_per_seed": [0.8],
            "baselines": {"scratch": 0.6}, "labels_per_class": 5, "gain": None, **extra}  # fmt: skip


@pytest.mark.parametrize(
    "record",
    [
        _old_fit(baseline_fit_seconds="x"),
        _old_fit(
            evaluation={"model": "m", "accuracy": 1.0, "classes": ["a"], "confusion": [[1]], "misclassified": "x"}
        ),
    ],
)
def test_report_of_a_hand_damaged_record_names_it(record):
    with pytest.raises(DataError, match="fit record 'bad.json' cannot be shown"):
        render_report([("bad.json", record)])


def test_report_never_loads_a_thumbnail_from_outside():
    example = {"index": 0, "true": "a", "predicted": "b", "thumbnail": "https://example.com/x.png"}
    evaluation = {"model": "m", "accuracy": 0.5, "classes": ["a", "b"], "confusion": [[1, 1], [0, 2]],
                  "misclassified": [example]}  # fmt: skip
    with pytest.raises(DataError, match="data:image/"):
        render_report([("edited.json", _old_fit(evaluation=evaluation))])
