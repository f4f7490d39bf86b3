"""Learning curves: labels saved on hand-made curves, the accuracy interval, and `transferkit curve` on digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transferkit.cli import main
from transferkit.data import few_shot_indices, load_dataset
from transferkit.errors import DataError, TransferkitError
from transferkit.estimators import TransferClassifier
from transferkit.report import accuracy_interval, labels_saved, matching_k, run_curve
from transferkit.report.curve import check_labels_per_class, describe_labels_saved


def test_matching_k_interpolates_on_a_log_scale():
    # halfway (in accuracy) between k=2 and k=8 is halfway in log k: k = 4
    k, relation = matching_k(0.7, [1, 2, 8], [0.5, 0.6, 0.8])
    assert relation == "=" and k == pytest.approx(4.0)
    # exactly a measured point
    assert matching_k(0.8, [1, 2, 8], [0.5, 0.6, 0.8]) == (pytest.approx(8.0), "=")


def test_matching_k_at_the_ends_and_on_a_bumpy_curve():
    assert matching_k(0.4, [1, 2, 8], [0.5, 0.6, 0.8]) == (1.0, "<=")
    assert matching_k(0.9, [1, 2, 8], [0.5, 0.6, 0.8]) == (8.0, ">")
    # the first crossing counts, not a later one after a dip
    k, relation = matching_k(0.65, [1, 2, 4, 8], [0.5, 0.7, 0.6, 0.9])
    assert relation == "=" and 1 < k < 2


@pytest.mark.parametrize(
    ("ks", "accuracies", "fragment"),
    [([1, 2], [0.5], "one accuracy per k"), ([2, 1], [0.5, 0.6], "increasing"), ([0, 1], [0.5, 0.6], "positive")],
)
def test_matching_k_rejects_bad_curves(ks, accuracies, fragment):
    with pytest.raises(DataError, match=fragment):
        matching_k(0.5, ks, accuracies)


def test_labels_saved_takes_the_baseline_that_needs_fewest_labels():
    ks = [1, 2, 8]
    baselines = {"scratch": [0.3, 0.4, 0.6], "classical": [0.5, 0.6, 0.8]}
    entry = labels_saved(1, 0.7, ks, baselines, n_classes=10)
    # classical reaches 0.7 at k = 4 (log-linear between 2 and 8), scratch never does
    assert entry["baseline"] == "classical" and entry["relation"] == "="
    assert entry["matched_at"] == pytest.approx(4.0) and entry["labels_saved"] == pytest.approx(30.0)
    assert "30 labels saved" in describe_labels_saved(entry)


def test_labels_saved_when_no_baseline_catches_up_or_one_is_better():
    ks = [1, 2, 8]
    beyond = labels_saved(2, 0.95, ks, {"scratch": [0.3, 0.4, 0.6]}, n_classes=3)
    assert beyond["relation"] == ">" and beyond["labels_saved"] == pytest.approx(18.0)  # (8 - 2) * 3, a lower bound
    assert "more than 18 labels saved" in describe_labels_saved(beyond)
    worse = labels_saved(8, 0.55, ks, {"classical": [0.5, 0.6, 0.8]}, n_classes=2)
    assert worse["matched_at"] < 2 and worse["labels_saved"] < 0  # the baseline needs fewer labels
    assert "transfer needs" in describe_labels_saved(worse)
    with pytest.raises(DataError, match="baseline"):
        labels_saved(1, 0.5, ks, {}, n_classes=2)


def test_labels_per_class_are_sorted_positive_ints():
    assert check_labels_per_class([5, 1, 5, 2]) == [1, 2, 5]
    for bad in ([], [0, 1], [1.5], [True, 2]):
        with pytest.raises(TransferkitError, match="positive ints"):
            check_labels_per_class(bad)


def test_accuracy_interval_covers_seeds_and_test_examples():
    rng = np.random.default_rng(0)
    correct = rng.random((3, 400)) < np.array([[0.6], [0.7], [0.8]])  # three draws of differing luck
    mean, low, high = accuracy_interval(correct)
    assert mean == pytest.approx(correct.mean())
    assert low < mean < high
    # one seed: only the test examples' variance is left, a narrower interval than across the three draws
    _, low1, high1 = accuracy_interval(correct[1])
    assert high1 - low1 < high - low
    # all right: never above 1, but ten test examples cannot make it certain; two thousand nearly do
    mean, low, high = accuracy_interval(np.ones((2, 10)))
    assert mean == high == 1.0 and 0.5 < low < 0.9
    assert 0.99 < accuracy_interval(np.ones((2, 2000)))[1] < 1.0


@pytest.fixture(scope="module")
def curve_run(tmp_path_factory):
    """`transferkit curve` on digits: 3 methods, k = 1, 3, 2 seeds (scratch cut to 20 steps to stay fast)."""
    out = tmp_path_factory.mktemp("curve") / "run"
    argv = ["curve", "digits", "--labels-per-class", "3,1", "--seeds", "2", "--image-size", "32"]
    argv += ["--scratch-steps", "20", "--out", str(out), "--quiet"]
    with pytest.MonkeyPatch.context() as patch:  # the per-test private cache is not set up yet at module scope
        patch.setenv("TRANSFERKIT_CACHE", str(out.parent / "cache"))
        return out, main(argv)


def test_curve_writes_the_record_the_plot_and_the_report(curve_run):
    out, status = curve_run
    assert status == 0
    record = json.loads((out / "run.json").read_text())
    assert record["kind"] == "curve" and record["labels_per_class"] == [1, 3] and record["seeds"] == [0, 1]
    assert [m["name"] for m in record["methods"]] == ["linear-probe", "scratch", "classical"]
    for method in record["methods"]:
        for point in method["points"]:
            assert len(point["accuracy_per_seed"]) == 2
            assert point["accuracy"] == pytest.approx(np.mean(point["accuracy_per_seed"]))
            assert point["ci95"][0] <= point["accuracy"] <= point["ci95"][1]
    assert {(g["method"], g["k"]) for g in record["gains"]} == {("linear-probe", 1), ("linear-probe", 3)}
    assert len(record["labels_saved"]) == 2 and record["extraction"]["n_test"] == record["test_size"] == 360
    with Image.open(out / "curve.png") as image:
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 200).mean() > 0.01  # lines and text were drawn
    assert (out / "curve.svg").read_text().lstrip().startswith("<?xml")
    page = (out / "report.html").read_text()
    assert 'id="plot-1"' in page and 'id="table-1"' in page and "linear-probe (efficientnet_lite0.in1k)" in page


def test_the_probe_on_shared_features_equals_the_estimator(curve_run):
    """Features extracted once for every draw give what TransferClassifier gets on each draw alone."""
    out, _ = curve_run
    record = json.loads((out / "run.json").read_text())
    split = load_dataset("digits")
    train = split.train.subset(few_shot_indices(split.train.labels, 3, 1))
    model = TransferClassifier(strategy="linear-probe", image_size=32, verbose=False).fit(train.inputs, train.labels)
    probe = record["methods"][0]["points"][1]  # k = 3
    assert probe["accuracy_per_seed"][1] == pytest.approx(model.score(split.test.inputs, split.test.labels), abs=1e-9)


def test_the_confusion_matrix_is_that_of_the_best_method(curve_run):
    out, _ = curve_run
    record = json.loads((out / "run.json").read_text())
    best = max(record["methods"], key=lambda m: m["points"][-1]["accuracy"])
    evaluation = record["evaluation"]
    confusion = np.array(evaluation["confusion"])
    assert evaluation["model"].startswith(best["label"]) and confusion.sum() == 360
    assert np.trace(confusion) / 360 == pytest.approx(best["points"][-1]["accuracy_per_seed"][0])
    for example in evaluation["misclassified"]:
        assert example["true"] != example["predicted"] and example["thumbnail"].startswith("data:image/png;base64,")


def test_parallel_fits_give_the_same_curve():
    split = load_dataset("digits", test_size=100)
    options = {"dataset": "digits", "labels_per_class": [2, 4], "strategies": ["classical"], "seeds": [0, 1]}
    alone = run_curve(split, jobs=1, verbose=False, **options)
    together = run_curve(split, jobs=2, verbose=False, **options)

    def accuracies(record):
        return [point["accuracy_per_seed"] for point in record["methods"][0]["points"]]

    assert accuracies(together) == accuracies(alone)
    assert together["evaluation"]["y_pred"] == alone["evaluation"]["y_pred"]
    assert alone["gains"] == [] and alone["backbone"] is None  # no transfer strategy asked for


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--labels-per-class", "1,x"], "--labels-per-class"),
        (["--labels-per-class", "0,2"], "--labels-per-class"),
        (["--strategies", "linear,scratch"], "did you mean 'linear-probe'"),
        (["--labels-per-class", "500"], "labels per class"),
        (["--seeds", "0"], "--seeds"),
        (["--jobs", "0"], "--jobs"),
        (["--labels-per-class", "2,1,2"], "--labels-per-class names 2 twice in '2,1,2'"),
        (["--strategies", "linear-probe,scratch,linear-probe"], "--strategies names 'linear-probe' twice"),
        (["--strategies", ","], "--strategies needs at least one name"),
    ],
)
def test_curve_mistakes_are_one_line_errors(argv, fragment, tmp_path, capsys):
    status = main(["curve", "digits", "--out", str(tmp_path / "c" / "run"), "--quiet", *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("transferkit: error")]
    assert status == 2 and len(lines) == 1 and fragment in lines[0], err
    assert list(tmp_path.iterdir()) == []  # a refused run leaves no empty --out folder (nor its parent)
