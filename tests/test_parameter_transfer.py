"""TransferLogisticRegression: the prior centred on the source weights, and its two limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from transferkit.errors import DataError, NotFittedError, TransferkitError
from transferkit.pretraining import TransferLogisticRegression


def _task(n_classes: int, n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Classes separated along a direction that ``shift`` rotates a little (a related task)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, 10))
    X[:, 0] += 2.0 * y
    X[:, 1] += shift * y
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lambda_zero_is_scikit_learns_target_only_model(n_classes):
    source = LogisticRegression().fit(*_task(n_classes, 300, 0))
    X, y = _task(n_classes, 40, 1, shift=1.0)
    ours = TransferLogisticRegression(source, lam=0.0, C=0.5).fit(X, y)
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, reference.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lambda_to_infinity_returns_the_source_model(n_classes):
    source = LogisticRegression().fit(*_task(n_classes, 300, 0))
    X, y = _task(n_classes, 40, 1, shift=1.0)
    huge = TransferLogisticRegression(source, lam=1e9).fit(X, y)
    np.testing.assert_allclose(huge.coef_, source.coef_, atol=1e-6)
    exact = TransferLogisticRegression(source, lam=math.inf).fit(X, y)
    np.testing.assert_array_equal(exact.coef_, source.coef_)
    np.testing.assert_array_equal(exact.predict(X), source.predict(X))


def test_moderate_lambda_sits_between_and_distance_shrinks_with_lambda():
    source = LogisticRegression().fit(*_task(3, 300, 0))
    X, y = _task(3, 30, 1, shift=1.0)
    distances = [
        np.linalg.norm(TransferLogisticRegression(source, lam=lam).fit(X, y).coef_ - source.coef_)
        for lam in (0.0, 0.1, 1.0, 10.0)
    ]
    assert all(a > b for a, b in zip(distances, distances[1:])), distances


def test_cross_validation_trusts_a_right_source_and_lets_go_of_a_wrong_one():
    X_source, y_source = _task(2, 400, 0)
    right = LogisticRegression().fit(X_source, y_source)
    wrong = LogisticRegression().fit(X_source, 1 - y_source)  # the opposite task: the prior misleads
    trusted = [TransferLogisticRegression(right).fit(*_task(2, 16, seed)).lam_ for seed in range(2, 8)]
    released = [TransferLogisticRegression(wrong).fit(*_task(2, 40, seed)) for seed in range(2, 8)]
    assert np.median(trusted) >= 100.0, trusted
    assert max(model.lam_ for model in released) <= 0.1, [model.lam_ for model in released]
    assert set(released[0].cv_scores_) == {0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4}


def test_transfer_beats_both_target_only_and_source_only_on_a_related_task():
    """Averaged over draws: the source helps with few labels, and the target labels fix its bias."""
    source = LogisticRegression().fit(*_task(2, 400, 0))
    X_test, y_test = _task(2, 2000, 99, shift=-2.5)
    gains_target, gains_source = [], []
    for seed in range(5):
        X, y = _task(2, 16, 10 + seed, shift=-2.5)
        transfer = TransferLogisticRegression(source).fit(X, y).score(X_test, y_test)
        gains_target.append(transfer - LogisticRegression().fit(X, y).score(X_test, y_test))
        gains_source.append(transfer - source.score(X_test, y_test))
    assert np.mean(gains_target) > 0.0 and np.mean(gains_source) > 0.0, (gains_target, gains_source)


def test_source_as_a_dict_and_clone():
    source = LogisticRegression().fit(*_task(3, 300, 0))
    as_dict = {"coef": source.coef_, "intercept": source.intercept_, "classes": source.classes_}
    X, y = _task(3, 30, 1)
    a = TransferLogisticRegression(source, lam=1.0).fit(X, y)
    b = clone(TransferLogisticRegression(as_dict, lam=1.0)).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_)


@pytest.mark.parametrize(
    ("params", "fit_args", "error", "message"),
    [
        ({"lam": -1.0}, None, TransferkitError, r"'lam' parameter .* must be 'cv' or a float >= 0.* Got -1.0"),
        ({"C": 0}, None, TransferkitError, r"'C' parameter .* must be a float > 0"),
        ({"cv": 1}, None, TransferkitError, r"'cv' parameter .* must be an int >= 2"),
        ({"source": object()}, None, TransferkitError, r"'source' parameter .* Got object instead"),
        ({}, (np.zeros((4, 3)), [0, 1, 0, 1]), DataError, r"X has shape \(4, 3\); the source model reads 10"),
        ({}, (np.zeros((4, 10)), [0, 0, 0, 0]), DataError, r"only one class"),
        ({}, (np.zeros((4, 10)), [0, 1, 2, 0]), DataError, r"classes \[.*\] differ from the source model's"),
        ({}, (np.zeros((3, 10)), [0, 1, 1]), DataError, r"at least two labelled examples of every class"),
    ],
)
def test_errors_name_the_value(params, fit_args, error, message):
    source = LogisticRegression().fit(*_task(2, 100, 0))
    X, y = fit_args if fit_args is not None else _task(2, 20, 1)
    with pytest.raises(error, match=message):
        TransferLogisticRegression(**{"source": source, **params}).fit(X, y)


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        TransferLogisticRegression().predict(np.zeros((2, 10)))


def test_compare_parameter_transfer_reports_the_better_baseline_and_the_guard():
    from transferkit.pretraining.compare import compare_parameter_transfer

    X_source, y_source = _task(2, 400, 0)
    X_target, y_target = _task(2, 200, 1, shift=-2.5)
    X_test, y_test = _task(2, 400, 2, shift=-2.5)
    row = compare_parameter_transfer(X_source, y_source, X_target, y_target, X_test, y_test, k=8, seeds=3)
    assert set(row["accuracy_per_seed"]) == {"source-only", "target-only", "transfer"}
    assert all(len(values) == 3 for values in row["accuracy_per_seed"].values())
    assert len(set(row["accuracy_per_seed"]["source-only"])) == 1  # the source model does not depend on the draw
    assert row["best_baseline"] in ("source-only", "target-only") and len(row["lambdas"]) == 3
    assert row["gain"]["low"] <= row["gain"]["gain"] <= row["gain"]["high"]
    assert row["negative_transfer"] == (row["gain"]["high"] < 0)


@pytest.mark.slow
def test_cli_transfer_lr_prints_every_k_and_writes_json(tmp_path, capsys):
    import json

    from transferkit.cli import main

    out_file = tmp_path / "lr.json"
    argv = ["transfer-lr", "--source", "sentiment-amazon", "--target", "sentiment-imdb", "--backbone", "tfidf"]
    status = main([*argv, "--labels-per-class", "4,16", "--seeds", "2", "--json", str(out_file)])
    out = capsys.readouterr().out
    assert status == 0
    assert "source-only" in out and "transfer LR" in out and "vs " in out
    record = json.loads(out_file.read_text())
    assert [row["k"] for row in record["rows"]] == [4, 16]
    assert all(len(row["lambdas"]) == 2 for row in record["rows"])


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--labels-per-class", "0"], "--labels-per-class must be positive ints"),
        (["--labels-per-class", "a,b"], "Got 'a,b'"),
        (["--seeds", "0"], "--seeds must be a positive int"),
        (["--C", "0"], "--C must be a float > 0"),
    ],
)
def test_cli_transfer_lr_user_errors(tmp_path, capsys, extra, fragment):
    from transferkit.cli import main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", X=rng.normal(size=(40, 5)), y=np.array(["cat", "dog"] * 20))
    path = str(tmp_path / "a.npz")
    status = main(["transfer-lr", "--source", path, "--target", path, *extra])
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and "Traceback" not in err
