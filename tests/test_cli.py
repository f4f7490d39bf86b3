"""The CLI: results on tiny data, and one clear line with exit status 2 for every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from transferkit.cli import main


def _image_folder(root, classes=("circle", "square"), per_class=5, size=12):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 30, size=(size, size)).astype(np.uint8)
            if c == 0:
                image[:, ::4] = 240
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def _run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_user_error(capsys, argv, *fragments):
    status, _, err = _run(capsys, *argv)
    assert status == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("transferkit: error")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_json_names_backbones_and_datasets(capsys):
    status, out, _ = _run(capsys, "list", "--json")
    listing = json.loads(out)
    assert status == 0
    lite0 = next(b for b in listing["backbones"] if b["name"] == "efficientnet_lite0.in1k")
    assert lite0["feature_dim"] == 1280 and lite0["modality"] == "image" and lite0["input"] == "224x224"
    assert {"fashion-mnist", "sentiment-yelp"} <= {d["name"] for d in listing["datasets"]}
    assert "linear-probe" in listing["strategies"]


def test_fit_predict_and_extract_on_an_image_folder(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes", per_class=8)
    record_file = tmp_path / "run.json"
    status, out, err = _run(
        capsys,
        "fit",
        str(data),
        "--image-size",
        "64",
        "--test-size",
        "4",
        "--out",
        str(tmp_path / "run"),
        "--json",
        str(record_file),
        "--seeds",
        "2",
        "--quiet",
    )
    assert status == 0, err
    record = json.loads(record_file.read_text())
    assert len(record["accuracy_per_seed"]) == 2 and record["seeds"] == [0, 1]
    for key in (
        "dataset",
        "backbone",
        "strategy",
        "labels_per_class",
        "seed",
        "test_size",
        "accuracy",
        "baselines",
        "gain",
        "fit_seconds",
        "extract_images_per_second",
    ):
        assert key in record
    assert record["test_size"] == 4 and set(record["baselines"]) == {"scratch", "classical"}
    assert record["gain"] == pytest.approx(record["accuracy"] - max(record["baselines"].values()))
    assert "gain over the best target-only baseline" in out
    image = str(next((data / "circle").iterdir()))
    status, out, _ = _run(capsys, "predict", str(tmp_path / "run" / "model"), image, "--quiet")
    assert status == 0 and out.split("\t")[0] in ("circle", "square")
    status, out, _ = _run(
        capsys, "extract", str(data), "--out", str(tmp_path / "f.npz"), "--image-size", "64", "--quiet"
    )
    arrays = np.load(tmp_path / "f.npz")
    assert status == 0 and arrays["X_train"].shape[1] == 1280 and len(arrays["y_test"]) == len(arrays["X_test"])


def test_missing_path(tmp_path, capsys):
    _assert_user_error(capsys, ["fit", str(tmp_path / "nothing-here")], "nothing-here")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _assert_user_error(capsys, ["fit", str(tmp_path / "empty")], "empty")


def test_a_class_with_fewer_images_than_k(tmp_path, capsys):
    data = _image_folder(tmp_path / "d", per_class=5)
    _assert_user_error(capsys, ["fit", str(data), "--labels-per-class", "9", "--quiet"], "labels per class")


def test_quiet_and_one_line_warnings_last_for_the_call_only(tmp_path, capsys, monkeypatch):
    import warnings

    from transferkit import _progress

    monkeypatch.setattr(_progress, "_QUIET", False)
    showwarning = warnings.showwarning
    data = _image_folder(tmp_path / "d", per_class=5)
    _assert_user_error(capsys, ["fit", str(data), "--labels-per-class", "9", "--quiet"], "labels per class")
    assert _progress._QUIET is False  # a caller running main in-process keeps its progress bars
    assert warnings.showwarning is showwarning


def test_corrupt_image_is_skipped_with_a_warning(tmp_path, capsys):
    data = _image_folder(tmp_path / "d", per_class=6)
    (data / "square" / "broken.png").write_bytes(b"\x89PNG not really")
    status, out, err = _run(
        capsys, "fit", str(data), "--image-size", "64", "--no-baseline", "--test-size", "4", "--quiet"
    )
    assert status == 0
    assert "broken.png" in err and "warning" in err


def test_only_corrupt_images_fail_and_name_the_file(tmp_path, capsys):
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "a" / "bad.jpg").write_bytes(b"nope")
    _assert_user_error(capsys, ["fit", str(tmp_path / "d")], "bad.jpg")


def test_csv_without_the_named_column(tmp_path, capsys):
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\ngood,1\nbad,0\n")
    _assert_user_error(capsys, ["fit", str(csv), "--text-column", "text"], "text", "review")


def test_one_class_only(tmp_path, capsys):
    csv = tmp_path / "one.csv"
    csv.write_text("text,label\n" + "".join(f"sentence {i},pos\n" for i in range(10)))
    _assert_user_error(capsys, ["fit", str(csv)], "one class")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["fit", "fashion_mnist"], "did you mean 'fashion-mnist'"),
        (["fit", "digits", "--backbone", "efficientnet-lite0"], "did you mean 'efficientnet_lite0.in1k'"),
        (["fit", "digits", "--strategy", "linear"], "did you mean 'linear-probe'"),
    ],
)
def test_unknown_names_suggest_the_right_one(argv, fragment, capsys):
    _assert_user_error(capsys, argv, fragment)


def test_predict_on_a_folder_that_is_no_model(tmp_path, capsys):
    _assert_user_error(capsys, ["predict", str(tmp_path), "x.png"], "not a saved transferkit model")


def test_console_script_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "transferkit.cli", "fit", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("transferkit: error:") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fit_without_data_uses_the_documented_default(tmp_path, capsys):
    """`make demo` runs `transferkit fit` bare: Fashion-MNIST, 10 per class, EfficientNet-Lite0, linear probe."""
    record_file = tmp_path / "demo.json"
    status, out, err = _run(
        capsys, "fit", "--image-size", "32", "--test-size", "50", "--no-baseline", "--quiet", "--json", str(record_file)
    )
    assert status == 0, err
    record = json.loads(record_file.read_text())
    assert record["dataset"] == "fashion-mnist" and record["labels_per_class"] == 10 and record["n_train"] == 100
    assert record["backbone"] == "efficientnet_lite0.in1k" and record["strategy"] == "linear-probe"
    assert record["test_size"] == 50 and 0.2 < record["accuracy"] <= 1.0


def _review_csv(path):
    rows = ["text,label"]
    good = ["great food and friendly staff", "loved it and will come back", "wonderful place", "excellent service"]
    good += ["a delight from start to end", "best pizza in town"]
    bad = ["terrible food and rude staff", "hated it and never again", "awful place", "horrible service"]
    bad += ["a disaster from start to end", "worst pizza in town"]
    rows += [f"{t},positive" for t in good] + [f"{t},negative" for t in bad]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_zero_shot_with_label_descriptions_then_predict(tmp_path, capsys):
    data = _review_csv(tmp_path / "reviews.csv")
    descriptions = tmp_path / "descriptions.json"
    descriptions.write_text(
        json.dumps({"positive": "This review is positive.", "negative": "This review is negative."})
    )
    argv = ["fit", str(data), "--labels-per-class", "0", "--test-size", "8", "--quiet"]
    _assert_user_error(capsys, argv, "needs --label-descriptions")
    status, out, err = _run(capsys, *argv, "--label-descriptions", str(descriptions), "--out", str(tmp_path / "zs"))
    assert status == 0, err
    assert "no target-only baseline" in out
    record = json.loads((tmp_path / "zs" / "run.json").read_text())
    assert record["n_train"] == 0 and record["accuracy"] >= 0.75
    status, out, _ = _run(capsys, "predict", str(tmp_path / "zs" / "model"), "what a lovely evening", "--quiet")
    assert status == 0 and out.startswith("positive")
    (tmp_path / "new.csv").write_text('id,text\n1,"what a lovely, lovely evening"\n2,dreadful\n', encoding="utf-8")
    status, out, err = _run(capsys, "predict", str(tmp_path / "zs" / "model"), str(tmp_path / "new.csv"), "--quiet")
    assert status == 0, err
    assert [line.split("\t")[2] for line in out.splitlines()] == ["what a lovely, lovely evening", "dreadful"]
    descriptions.write_text(json.dumps({"positive": "good", "neutral": "meh"}))
    _assert_user_error(capsys, argv + ["--label-descriptions", str(descriptions)], "negative")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--lr-decay", "0.5"], "lr_decay"),
        (["--strategy", "freeze", "--freeze-until", "blocks.9"], "blocks.9"),
        (["--strategy", "finetune", "--lr", "-3"], "'lr'"),
        (["--strategy", "finetune", "--set", "alpha"], "KEY=VALUE"),
        (["--strategy", "l2sp", "--set", "alpha=-1"], "'alpha'"),
    ],
)
def test_bad_fine_tuning_options_are_one_line_errors(extra, fragment, tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes", per_class=4)
    argv = ["fit", str(data), "--image-size", "32", "--test-size", "2", "--no-baseline", "--quiet", *extra]
    _assert_user_error(capsys, argv, fragment)


def test_resume_without_a_checkpoint_and_export_of_a_baseline_are_errors(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes", per_class=4)
    _assert_user_error(capsys, ["fit", str(data), "--resume", str(tmp_path / "nothing"), "--quiet"], "no checkpoint")
    status, _, err = _run(
        capsys,
        "fit",
        str(data),
        "--strategy",
        "classical",
        "--no-baseline",
        "--seeds",
        "1",
        "--test-size",
        "2",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    )
    assert status == 0, err
    _assert_user_error(capsys, ["export", str(tmp_path / "run")], "no network to export")
    _assert_user_error(capsys, ["export", str(tmp_path / "run"), "--format", "tflite"], "tflite")


def test_a_zero_shot_model_is_one_network_with_the_same_probabilities():
    from transferkit import TransferClassifier

    descriptions = {"positive": ["This review is positive."], "negative": ["This review is negative."]}
    model = TransferClassifier(label_descriptions=descriptions, verbose=False).fit([], [])
    texts = ["lovely food", "cold and rude", "fine"]
    network, preprocess = model.network(), model.preprocessor()
    with torch.no_grad():
        probabilities = torch.softmax(network(preprocess(texts)), dim=1).numpy()
    assert np.allclose(probabilities, model.predict_proba(texts), atol=1e-5)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["fit", "{data}", "--out", "{file}/run"], "is a file, not a folder"),
        (["fit", "{data}", "--json", "{folder}"], "is a folder; expected a file name"),
        (["curve", "{data}", "--out", "{file}"], "is a file; expected a folder"),
        (["rank", "{data}", "--backbones", "all", "--json", "{file}/rank.json"], "is a file, not a folder"),
        (["adapt", "--source", "{data}", "--target", "{data}", "--json", "{folder}"], "is a folder"),
        (["extract", "{data}", "--out", "{file}/features.npz"], "is a file, not a folder"),
    ],
)
def test_unwritable_outputs_are_refused_before_any_work(argv, fragment, tmp_path, capsys):
    # The data path does not exist: the output error coming first shows nothing was read or computed.
    places = {"data": str(tmp_path / "no-such-data"), "file": str(tmp_path / "a-file"), "folder": str(tmp_path)}
    (tmp_path / "a-file").write_text("x")
    _assert_user_error(capsys, [a.format(**places) for a in argv] + ["--quiet"], fragment)
    assert (tmp_path / "a-file").read_text() == "x"


def test_json_record_goes_into_new_folders(tmp_path, capsys):
    data = _image_folder(tmp_path / "shapes", per_class=4)
    record = tmp_path / "new" / "deeper" / "run.json"
    argv = ["fit", str(data), "--strategy", "classical", "--no-baseline", "--seeds", "1", "--test-size", "2"]
    status, _, err = _run(capsys, *argv, "--json", str(record), "--quiet")
    assert status == 0, err
    assert json.loads(record.read_text())["kind"] == "fit"
    assert [p.name for p in record.parent.iterdir()] == ["run.json"]  # no temporary file left behind


@pytest.mark.parametrize("command", [["similarity", "digits", "digits"], ["extract", "digits", "--out", "x.npz"]])
def test_non_positive_image_size_is_an_error(command, capsys):
    _assert_user_error(capsys, [*command, "--image-size", "0", "--quiet"], "--image-size", "got 0")


def _reviews(path, rare=False):
    rows = [f"good food {i},pos\nawful service {i},neg\n" for i in range(6)]
    path.write_text("text,label\n" + "".join(rows) + ("one of a kind,rare\nanother one,rare\n" if rare else ""))
    return str(path)


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["fit", "digits", "--seed", "-1"], ["--seed must be 0 or more; got -1"]),
        (["curve", "digits", "--C", "0"], ["--C must be a float > 0. Got 0.0 instead."]),
        (["fit", "{tmp}/corrupt.npz"], ["cannot read", "corrupt.npz"]),
        (["extract", "digits", "--backbone", "minilm_l6.sentence", "--out", "{tmp}/x.npz"], ["reads text but"]),
        (["fit", "{rare}", "--labels-per-class", "2", "--no-baseline"], ["class 'rare' has only 1"]),
        (["fit", "digits", "--no-baseline", "--baselines", "scratch"], ["--baselines 'scratch' and --no-baseline"]),
    ],
)
def test_more_bad_input_is_one_line(argv, fragments, tmp_path, capsys):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    places = {"tmp": str(tmp_path), "rare": _reviews(tmp_path / "rare.csv", rare=True)}
    _assert_user_error(capsys, [a.format(**places) for a in argv] + ["--quiet"], *fragments)


def test_damaged_model_and_non_utf8_texts_are_one_line_errors(tmp_path, capsys):
    data = _reviews(tmp_path / "reviews.csv")
    run = tmp_path / "run"
    argv = ["fit", data, "--strategy", "classical", "--no-baseline", "--seeds", "1", "--out", str(run), "--quiet"]
    status, _, err = _run(capsys, *argv)
    assert status == 0, err
    status, out, err = _run(capsys, "predict", str(run), "good food again", "--quiet")  # the run folder, as --help says
    assert status == 0 and out.split("\t")[0] == "pos", err
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    _assert_user_error(capsys, ["predict", str(run / "model"), str(latin1), "--quiet"], "not UTF-8", "latin1.txt")
    (run / "model" / "weights.safetensors").write_bytes(b"\xff" * 16)
    _assert_user_error(capsys, ["predict", str(run / "model"), "nice", "--quiet"], "cannot be read as safetensors")


def test_extract_writes_exactly_the_named_file_and_export_refuses_a_contradicting_suffix(tmp_path, capsys):
    out = tmp_path / "out" / "features.bin"
    status, _, err = _run(
        capsys, "extract", "digits", "--image-size", "16", "--split", "test", "--out", str(out), "--quiet"
    )
    assert status == 0, err
    assert sorted(np.load(out).files) == ["X_test", "classes", "y_test"]
    assert [p.name for p in out.parent.iterdir()] == ["features.bin"]
    _assert_user_error(capsys, ["export", str(tmp_path), "--format", "safetensors", "--out", "m.onnx"], "ends in .onnx")
    _assert_user_error(capsys, ["fit", "digits", "--backbone", "zoo:nope", "--quiet"], "zoo")


def test_training_options_a_probe_ignores_are_named_in_a_warning(tmp_path, capsys):
    data = _reviews(tmp_path / "reviews.csv")
    argv = ["fit", data, "--strategy", "classical", "--no-baseline", "--seeds", "1", "--epochs", "9", "--quiet"]
    status, _, err = _run(capsys, *argv)
    assert status == 0, err
    assert "warning: --epochs ignored: --strategy classical trains no network" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["extract", "{csv}", "--backbone", "minilm_l6.sentence", "--out", "{csv}"], "--out '{csv}' is the input data"),
        (["rank", "{csv}", "--backbones", "minilm_l6.sentence", "--json", "{csv}"], "is the input data file"),
        (["fit", "{csv}", "--strategy", "classical", "--json", "{tmp}/sub/../reviews.csv"], "is the input data file"),
        (["fit", "{csv}", "--json", "{tmp}/hard-link.csv"], "is the input data file"),
        (["fit", "{csv}", "--label-descriptions", "{tmp}/d.json", "--json", "{tmp}/d.json"], "--label-descriptions"),
        (["adapt", "--source", "{csv}", "--target", "{tmp}/b.csv", "--json", "{tmp}/b.csv"], "the --target data file"),
        (
            ["adapt", "--source", "{csv}", "--target", "{csv}", "--target-labelled", "{images}", "--out", "{images}/m"],
            "is inside the --target-labelled data folder",
        ),
        (["transfer-lr", "--source", "{csv}", "--target", "{tmp}/b.csv", "--json", "{csv}"], "the --source data"),
        (["similarity", "{csv}", "{tmp}/b.csv", "--json", "{tmp}/b.csv"], "the second data file"),
        (["curve", "{csv}", "--json", "{csv}"], "is the input data file"),
        (["fit", "{images}", "--out", "{images}"], "is the input data folder"),
        (["fit", "{images}", "--out", "{images}/run"], "is inside the input data folder"),
        (["extract", "{images}", "--out", "{images}/circle/0.png"], "is inside the input data folder"),
        (["fit", "{tmp}/model", "--out", "{tmp}"], "would overwrite the input data folder '{tmp}/model'"),
        (["export", "{tmp}/m", "--format", "safetensors", "--out", "{tmp}/m/weights.safetensors"], "saved model"),
    ],
)
def test_an_output_never_replaces_an_input(argv, fragment, tmp_path, capsys):
    places = {"tmp": str(tmp_path), "csv": _reviews(tmp_path / "reviews.csv"), "images": str(tmp_path / "shapes")}
    _reviews(tmp_path / "b.csv")
    (tmp_path / "sub").mkdir()
    (tmp_path / "hard-link.csv").hardlink_to(tmp_path / "reviews.csv")
    (tmp_path / "d.json").write_text('{"pos": ["good"], "neg": ["awful"]}')
    _image_folder(tmp_path / "shapes", per_class=2)
    _image_folder(tmp_path / "model", per_class=2)  # a data folder where fit --out writes its model/
    (tmp_path / "m").mkdir()
    for name in ("config.json", "weights.safetensors"):
        (tmp_path / "m" / name).write_text("kept")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    _assert_user_error(
        capsys, [a.format(**places) for a in argv] + ["--quiet"], fragment.format(**places), "choose another output"
    )
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["adapt", "--source", "{csv}", "--target", "{csv}", "--method", ","], "--method needs at least one name"),
        (
            ["adapt", "--source", "{csv}", "--target", "{csv}", "--method", "coral, coral"],
            "--method names 'coral' twice",
        ),
        (["rank", "{csv}", "--backbones", "minilm_l6.sentence,minilm_l6.sentence"], "'minilm_l6.sentence' twice"),
        (["rank", "{csv}", "--backbones", " , "], "--backbones needs at least one name"),
        (["fit", "{csv}", "--baselines", "classical,classical"], "--baselines names 'classical' twice"),
    ],
)
def test_list_options_refuse_an_empty_list_and_a_name_twice(argv, fragment, tmp_path, capsys):
    places = {"csv": _reviews(tmp_path / "reviews.csv")}
    _assert_user_error(capsys, [a.format(**places) for a in argv] + ["--quiet"], fragment)


def test_every_option_of_every_command_has_help_and_states_its_default():
    import argparse

    from transferkit._cli_parser import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in commands.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = f"{command} {action.option_strings or action.dest}"
            assert action.help, f"{name} has no help text"
            if not (action.default is None or action.default is False or action.default == []):  # 0 is a default
                assert "default" in action.help, f"{name} does not say its default {action.default!r}"


def test_written_files_get_the_users_usual_permissions(tmp_path):
    import os
    import stat

    from transferkit._io import atomic_write_json, current_umask

    path = atomic_write_json(tmp_path / "r.json", {"a": 1})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~current_umask()  # not a temporary file's 0600
