"""`transferkit fit` on a user's own data: option combinations that must fail early and clearly, or be honoured."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transferkit.cli import main
from transferkit.errors import TransferkitError
from transferkit.strategies import get_strategy


def _image_folder(root, per_class=4):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a cat", "dög")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 40, size=(24, 24)).astype(np.uint8)
            image[:, c::3] = 230
            Image.fromarray(image).save(root / name / f"img {i}.png")
    return root


def _reviews(path):
    rows = [f'"good, tasty food {i}",pos\nawful service {i},neg\n' for i in range(5)]
    path.write_text("text,label\n" + "".join(rows))
    return str(path)


def _run(capsys, *argv):
    status = main([*argv, "--quiet"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_error_line(capsys, *argv):
    status, _, err = _run(capsys, *argv)
    lines = [line for line in err.strip().splitlines() if line.startswith("transferkit: error:")]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("extra", [["--set", "alpha=0.1"], ["--lr-decay", "0.5"], ["--freeze-until", "2"]])
def test_strategy_settings_with_auto_name_the_option_not_a_strategy_auto(extra, tmp_path, capsys):
    line = _one_error_line(capsys, "fit", _reviews(tmp_path / "r.csv"), "--strategy", "auto", "--no-baseline", *extra)
    assert extra[0] in line and "--strategy auto" in line
    assert "unknown strategy" not in line


def test_resume_with_auto_says_auto_keeps_no_checkpoints(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.json").write_text("{}")
    argv = ["fit", _reviews(tmp_path / "r.csv"), "--strategy", "auto", "--resume", str(tmp_path / "ck")]
    line = _one_error_line(capsys, *argv, "--no-baseline")
    assert "--resume" in line and "--strategy auto" in line


def test_probe_keeps_C_when_other_settings_are_set(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes")
    record = tmp_path / "run.json"
    argv = ["fit", str(data), "--image-size", "32", "--test-size", "2", "--no-baseline", "--seeds", "1"]
    status, _, err = _run(capsys, *argv, "--C", "0.25", "--set", "max_iter=50", "--json", str(record))
    assert status == 0, err
    assert json.loads(record.read_text())["strategy_settings"] == {
        "strategy": "linear-probe",
        "C": 0.25,
        "max_iter": 50,
    }
    line = _one_error_line(capsys, *argv, "--C", "0.25", "--set", "C=2")
    assert "--C 0.25" in line and "C=2" in line
    line = _one_error_line(capsys, *argv, "--C", "1.0", "--set", "C=2")  # the default's value, given: still a conflict
    assert "--C 1.0" in line and "C=2" in line


def test_every_fine_tuning_option_a_probe_ignores_is_named(tmp_path, capsys):
    argv = ["fit", _reviews(tmp_path / "r.csv"), "--strategy", "classical", "--no-baseline", "--seeds", "1"]
    ignored = ["--batch-size", "4", "--patience", "2", "--checkpoint-dir", str(tmp_path / "c")]
    status, _, err = _run(capsys, *argv, *ignored)
    assert status == 0, err
    assert "--batch-size, --patience and --checkpoint-dir ignored: --strategy classical trains no network" in err


@pytest.mark.parametrize(
    ("layout", "extra", "fragment"),
    [
        ("model-file", [], "holds a file 'model'"),
        ("record-folder", [], "holds a folder 'run.json'"),
        ("", ["--json", "{out}/model/config.json"], "would overwrite what --out writes"),
        ("fresh", ["--json", "{out}"], "is the --out folder"),
        ("", ["--checkpoint-dir", "{tmp}/ck", "--json", "{tmp}/ck/checkpoint.json"], "--checkpoint-dir"),
    ],
)
def test_outputs_that_collide_are_refused_before_any_work(layout, extra, fragment, tmp_path, capsys):
    out = tmp_path / "run"
    if layout != "fresh":
        out.mkdir()
    if layout == "model-file":
        (out / "model").write_text("mine")
    if layout == "record-folder":
        (out / "run.json").mkdir()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    # the data does not exist: the output error coming first shows no work was done
    argv = ["fit", str(tmp_path / "no-such-data"), "--out", str(out)]
    argv += [a.format(out=out, tmp=tmp_path) for a in extra]
    line = _one_error_line(capsys, *argv)
    assert fragment in line and "no-such-data" not in line
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_record_may_still_go_to_the_run_folder(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes")
    out = tmp_path / "run"
    argv = ["fit", str(data), "--image-size", "32", "--test-size", "2", "--no-baseline", "--seeds", "1"]
    status, _, err = _run(capsys, *argv, "--out", str(out), "--json", str(out / "run.json"))
    assert status == 0, err
    assert json.loads((out / "run.json").read_text())["kind"] == "fit"
    assert json.loads((out / "model" / "config.json").read_text()).get("format") is not None


@pytest.mark.parametrize(
    ("strategy", "settings", "name"),
    [
        ("l2sp", {"alpha": float("nan")}, "alpha"),
        ("l2sp", {"beta": float("inf")}, "beta"),
        ("lora", {"alpha": float("inf")}, "alpha"),
        ("linear-probe", {"max_iter": True}, "max_iter"),
    ],
)
def test_non_finite_and_boolean_settings_are_refused_up_front(strategy, settings, name):
    with pytest.raises(TransferkitError, match=f"'{name}' parameter of {strategy}"):
        get_strategy(strategy, **settings)


def test_nan_penalty_is_a_setting_error_not_a_learning_rate_hint(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes")
    argv = ["fit", str(data), "--image-size", "32", "--test-size", "2", "--no-baseline", "--seeds", "1"]
    line = _one_error_line(capsys, *argv, "--strategy", "l2sp", "--set", "alpha=NaN", "--epochs", "1")
    assert "'alpha'" in line and "nan" in line and "learning rate" not in line


def test_auto_names_the_first_seeds_choice_when_seeds_choose_differently(tmp_path, capsys, monkeypatch):
    from transferkit.selection import auto

    def choose(inputs, labels, *, make_estimator, backbone, image_size=None, random_state=0):
        name = "linear-probe" if random_state == 0 else "finetune"
        return auto.StrategyChoice(name, name, [f"stand-in choice for seed {random_state}"], None, 4)

    monkeypatch.setattr(auto, "choose_strategy", choose)
    data = _image_folder(tmp_path / "shapes")
    record = tmp_path / "run.json"
    argv = ["fit", str(data), "--image-size", "32", "--test-size", "2", "--no-baseline", "--seeds", "2"]
    status, out, err = _run(capsys, *argv, "--strategy", "auto", "--epochs", "1", "--json", str(record))
    assert status == 0, err
    assert "seed 0: linear-probe" in out and "seed 1: finetune" in out
    assert "auto (linear-probe (efficientnet_lite0.in1k) for seed 0)" in out
    saved = json.loads(record.read_text())
    assert saved["strategy"] == saved["strategy_settings"]["strategy"] == "linear-probe"
    assert [c["strategy"]["strategy"] for c in saved["choices"]] == ["linear-probe", "finetune"]


def test_resume_and_another_checkpoint_dir_contradict(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.json").write_text("{}")
    argv = ["fit", _reviews(tmp_path / "r.csv"), "--strategy", "finetune", "--resume", str(tmp_path / "ck")]
    line = _one_error_line(capsys, *argv, "--checkpoint-dir", str(tmp_path / "elsewhere"), "--no-baseline")
    assert "--checkpoint-dir" in line and "elsewhere" in line and not (tmp_path / "elsewhere").exists()


def test_feature_vectors_with_the_default_strategy_are_told_what_works(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "features.npz", X=rng.normal(size=(20, 5)), y=np.repeat(["a", "b"], 10))
    line = _one_error_line(capsys, "fit", str(tmp_path / "features.npz"), "--no-baseline")
    assert "--strategy classical" in line and "zoo:NAME" in line and "backbone=..." not in line
