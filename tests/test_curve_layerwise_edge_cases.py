"""Edge cases of `transferkit curve` (its outputs, the labels-saved wording) and of layer-wise pre-training's inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferkit.backbones.native import native_cfg
from transferkit.cli import main
from transferkit.errors import DataError, TransferkitError
from transferkit.pretraining import LayerwiseConfig, pretrain_unsupervised
from transferkit.report.curve import describe_labels_saved, labels_saved

TINY = LayerwiseConfig(layers=(3,), epochs=1)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("transferkit: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("prepare", "extra", "fragment"),
    [
        (lambda out: (out / "curve.png").mkdir(parents=True), [], "holds a folder 'curve.png'"),
        (lambda out: (out / "run.json").mkdir(parents=True), [], "holds a folder 'run.json'"),
        (lambda out: None, ["--json", "{out}/curve.png"], "would overwrite the curve.png"),
        (lambda out: None, ["--json", "{out}/report.html"], "would overwrite the report.html"),
        (lambda out: None, ["--json", "{out}"], "is the --out folder"),
    ],
)
def test_curve_refuses_outputs_in_each_others_way_before_any_fit(tmp_path, capsys, prepare, extra, fragment):
    out = tmp_path / "run"
    prepare(out)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = ["curve", "digits", "--labels-per-class", "1", "--seeds", "1", "--strategies", "classical", "--quiet"]
    status = main([*argv, "--out", str(out), *[arg.format(out=out) for arg in extra]])
    assert status == 2 and fragment in _one_error_line(capsys)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_curve_does_not_replace_another_runs_record_but_may_replace_a_curve(tmp_path, capsys):
    from transferkit._cli_report import _check_curve_outputs

    out = tmp_path / "run"
    out.mkdir()
    fit_record = json.dumps({"kind": "fit", "dataset": "digits"})
    (out / "run.json").write_text(fit_record)
    argv = ["curve", "digits", "--labels-per-class", "1", "--seeds", "1", "--strategies", "classical", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 2
    assert "the run record of a 'fit' run" in _one_error_line(capsys)
    assert (out / "run.json").read_text() == fit_record and sorted(out.iterdir()) == [out / "run.json"]
    (out / "run.json").write_text(json.dumps({"kind": "curve"}))
    _check_curve_outputs(out, str(out / "run.json"))  # a re-run of a curve, its record also to --json: fine


def test_labels_saved_says_how_many_more_transfer_needs_when_a_baseline_is_better_from_the_start():
    entry = labels_saved(7, 0.6, [1, 3, 7], {"classical": [0.65, 0.8, 0.9]}, n_classes=10)
    assert entry["relation"] == "<=" and entry["labels_saved"] == -60
    # the baseline reaches 0.6 with 1 per class or fewer: transfer's 70 labels are at least 60 too many
    assert describe_labels_saved(entry).endswith("transfer needs at least 60 labels more")
    first = labels_saved(1, 0.6, [1, 3, 7], {"classical": [0.65, 0.8, 0.9]}, n_classes=10)
    assert describe_labels_saved(first).endswith("no labels saved")


def test_labels_saved_matched_at_transfers_own_k_is_not_worded_as_zero_labels():
    entry = labels_saved(3, 0.7, [1, 3], {"scratch": [0.5, 0.70001]}, n_classes=10)
    assert entry["relation"] == "=" and abs(entry["labels_saved"]) < 0.5
    phrase = describe_labels_saved(entry)
    assert "about as many labels as transfer" in phrase and " 0 labels" not in phrase


@pytest.mark.parametrize(
    "images",
    [
        np.random.default_rng(0).integers(0, 17, (12, 6, 6)).astype(np.float64),  # sklearn's 0-16 digits
        np.random.default_rng(0).integers(0, 256, (12, 6, 6)),  # int64 pixels, not uint8
        np.random.default_rng(0).random((12, 6, 6)) - 0.5,
    ],
)
def test_layerwise_refuses_images_outside_the_unit_interval_instead_of_clamping_them(zoo_home, images):
    with pytest.raises(DataError, match=r"values in \[.*\].*uint8 \(0-255\) or as floats in \[0, 1\]"):
        pretrain_unsupervised(images, "clamped", TINY, verbose=False)
    assert not (zoo_home / "clamped").exists()


def test_layerwise_float_pixels_in_the_unit_interval_match_uint8_pixels(zoo_home):
    pixels = np.random.default_rng(1).integers(0, 256, (12, 6, 6)).astype(np.uint8)
    from_uint8 = pretrain_unsupervised(pixels, "u8", TINY, verbose=False)
    from_float = pretrain_unsupervised(pixels / 255.0, "f", TINY, verbose=False)
    assert from_uint8.provenance["history"][0]["loss_per_epoch"] == pytest.approx(
        from_float.provenance["history"][0]["loss_per_epoch"], rel=1e-5
    )


@pytest.mark.parametrize("config", ["ae", [8], 3])
def test_layerwise_config_of_the_wrong_type_is_a_clear_error(zoo_home, config):
    with pytest.raises(TransferkitError, match="config must be a LayerwiseConfig, a dict of its settings or None"):
        pretrain_unsupervised(np.random.default_rng(0).random((10, 4)), "bad", config, verbose=False)


def test_layerwise_vectors_with_nan_name_how_many(zoo_home):
    X = np.random.default_rng(0).random((20, 5))
    X[[1, 4, 9], [0, 0, 3]] = np.nan
    with pytest.raises(DataError, match="X has 3 NaN or infinite values"):  # not every value of their columns
        pretrain_unsupervised(X, "nan", TINY, verbose=False)


def test_vectors_without_features_are_refused(zoo_home):
    with pytest.raises(DataError, match="0 features"):
        pretrain_unsupervised(np.zeros((5, 0)), "empty", TINY, verbose=False)
    with pytest.raises(DataError, match="0 features"):
        native_cfg("mlp", name="n", in_features=0)


def test_layerwise_image_paths_are_named_as_such(zoo_home, tmp_path):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(path)
    with pytest.raises(DataError, match="got image paths"):
        pretrain_unsupervised([str(path)] * 3, "paths", TINY, verbose=False)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--strategies", "linear-probe,classical", "--scratch-steps", "5"], "--scratch-steps sets the scratch"),
        (["--strategies", "scratch,classical", "--backbone", "resnet18"], "--backbone is read by transfer"),
        (["--strategies", "classical", "--layer", "blocks.2"], "--layer is read by transfer"),
    ],
)
def test_curve_refuses_options_no_method_reads(tmp_path, capsys, extra, fragment):
    status = main(["curve", "digits", "--labels-per-class", "1", "--seeds", "1", "--out", str(tmp_path / "r"), *extra])
    assert status == 2 and fragment in _one_error_line(capsys) and not (tmp_path / "r").exists()
