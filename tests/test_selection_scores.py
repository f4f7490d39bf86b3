"""Transferability scores (LogME, LEEP, NCE, H-score) and domain distances (MMD, proxy A-distance)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.optimize import minimize

from transferkit.errors import DataError
from transferkit.selection.distance import mmd, proxy_a_distance
from transferkit.selection.scores import hscore, leep, logme, nce

# Reference LogME numbers from thuml/LogME (github.com/thuml/LogME, LogME.py at commit
# 3a0895084badc924dce3eb049580100bf7258f42): `LogME(regression=False).fit(features, labels)`, i.e. `_fit_fixed_point`
# with its `truncated_svd`, transcribed into a scratch script under /tmp (numba @njit removed, nothing else changed;
# not part of this repository) and run on `_signal_features(n, d, n_classes, seed)` below with numpy 2.4.6 on
# 2026-11-23. Keys: (n, d, n_classes, seed); the first has n > d, the others n < d.
THUML_LOGME = {
    (500, 64, 5, 0): 0.5485710056083797,
    (150, 1280, 5, 1): 46.435223239145195,
    (20, 50, 3, 2): 4.80548305949428,
}


def _signal_features(n: int, d: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features ``(n, d)`` plus a per-class Gaussian centre; labels ``(n,)`` = row index mod n_classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    centres = rng.normal(size=(n_classes, d))
    return rng.normal(size=(n, d)) + centres[labels], labels


def _shuffled(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(labels)


def _renamed(labels: np.ndarray) -> np.ndarray:
    """Integer class ids -> strings, in an order that permutes the sorted class ids."""
    names = {0: "zebra", 1: "ant", 2: "moose", 3: "cat", 4: "dog"}
    return np.array([names[int(label)] for label in labels])


def _source_probs(labels: np.ndarray, n_source: int, informative: bool, seed: int = 0) -> np.ndarray:
    """Softmax source probabilities ``(n, n_source)``, peaked on source class ``2 * label`` when informative."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(labels), n_source))
    if informative:
        logits[np.arange(len(labels)), 2 * labels] += 3.0
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- LogME


@pytest.mark.parametrize("case", sorted(THUML_LOGME))
def test_logme_reference_mode_reproduces_thuml(case: tuple[int, int, int, int]) -> None:
    features, labels = _signal_features(*case)
    assert logme(features, labels, reference=True) == pytest.approx(THUML_LOGME[case], rel=1e-6)


def test_logme_exact_mode_agrees_with_reference_where_n_exceeds_d() -> None:
    features, labels = _signal_features(500, 64, 5, 0)
    assert logme(features, labels) == pytest.approx(THUML_LOGME[(500, 64, 5, 0)], rel=1e-3)


def _brute_force_evidence(features: np.ndarray, targets: np.ndarray, log_alpha: float, log_beta: float) -> float:
    """L(alpha, beta) / N with A = alpha I + beta F^T F built explicitly and log|A| from slogdet."""
    n, d = features.shape
    alpha, beta = math.exp(log_alpha), math.exp(log_beta)
    a = alpha * np.eye(d) + beta * features.T @ features  # (D, D)
    m = beta * np.linalg.solve(a, features.T @ targets)  # (D,)
    _, log_det_a = np.linalg.slogdet(a)
    residual = features @ m - targets  # (N,)
    evidence = n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
    return (evidence - beta / 2 * residual @ residual - alpha / 2 * m @ m - log_det_a / 2) / n


def test_logme_exact_mode_is_the_maximum_evidence_where_n_is_below_d() -> None:
    features, labels = _signal_features(20, 50, 3, 2)
    optima = []
    for k in range(3):
        targets = (labels == k).astype(float)
        # log beta <= 15: beyond that slogdet of A loses precision; two classes have their supremum at beta -> inf
        runs = [
            minimize(lambda p, y=targets: -_brute_force_evidence(features, y, *p), start, bounds=[(-5, 15), (-5, 15)])
            for start in [(0.0, 0.0), (5.0, 5.0), (5.0, 12.0)]
        ]
        optima.append(-min(run.fun for run in runs))
    exact = logme(features, labels)
    assert exact == pytest.approx(np.mean(optima), abs=1e-3)
    assert exact >= np.mean(optima) - 1e-8  # the fixed point is not beaten by the optimiser
    assert exact < logme(features, labels, reference=True) - 4  # dropping (d - r)/2 log(alpha) inflates it


def test_logme_reference_mode_inflates_the_score_where_n_is_below_d() -> None:
    features, labels = _signal_features(150, 1280, 5, 1)
    assert logme(features, labels, reference=True) > 20
    assert logme(features, labels) < 1.5


def test_logme_exact_mode_is_invariant_to_feature_scale() -> None:
    features, labels = _signal_features(300, 32, 4, 3)
    assert logme(1000.0 * features, labels) == pytest.approx(logme(features, labels), rel=1e-6)


@pytest.mark.parametrize("reference", [False, True])
def test_logme_prefers_informative_labels_and_ignores_label_names(reference: bool) -> None:
    features, labels = _signal_features(400, 32, 5, 4)
    score = logme(features, labels, reference=reference)
    assert score > logme(features, _shuffled(labels), reference=reference) + 0.1
    assert logme(features, _renamed(labels), reference=reference) == pytest.approx(score, rel=1e-9)
    assert logme(features, (labels + 1) % 5, reference=reference) == pytest.approx(score, rel=1e-9)


def test_logme_is_fast_on_a_large_feature_matrix() -> None:
    features, labels = _signal_features(1000, 1280, 10, 5)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        logme(features, labels)
        seconds.append(time.perf_counter() - start)
    assert min(seconds) < 1.0


# ---------------------------------------------------------------------------------------------- LEEP


def test_leep_matches_a_hand_computed_example() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    labels = ["cat", "cat", "dog", "dog"]
    # P(y, z) = sum of column z over the rows labelled y, / 4:
    # P(cat, z0) = 1.7/4, P(cat, z1) = 0.3/4, P(dog, z0) = 0.5/4, P(dog, z1) = 1.5/4
    # P(z0) = 2.2/4, P(z1) = 1.8/4  =>  P(cat|z0) = 17/22, P(cat|z1) = 1/6, P(dog|z0) = 5/22, P(dog|z1) = 5/6
    expected = [
        0.9 * 17 / 22 + 0.1 * 1 / 6,
        0.8 * 17 / 22 + 0.2 * 1 / 6,
        0.3 * 5 / 22 + 0.7 * 5 / 6,
        0.2 * 5 / 22 + 0.8 * 5 / 6,
    ]
    assert leep(probs, labels) == pytest.approx(np.mean(np.log(expected)), rel=1e-12)


def test_leep_prefers_informative_source_heads_and_ignores_label_names() -> None:
    labels = np.arange(300) % 5
    informative = _source_probs(labels, 12, informative=True)
    score = leep(informative, labels)
    assert score > leep(_source_probs(labels, 12, informative=False), labels) + 0.3
    assert score > leep(informative, _shuffled(labels)) + 0.3
    assert leep(informative, _renamed(labels)) == pytest.approx(score, rel=1e-12)
    assert leep(informative, (labels + 3) % 5) == pytest.approx(score, rel=1e-12)


# ---------------------------------------------------------------------------------------------- NCE


def test_nce_is_zero_when_the_target_is_a_function_of_the_source() -> None:
    source = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    assert nce(source, source % 2) == pytest.approx(0.0, abs=1e-12)
    assert nce(source, np.where(source < 3, "low", "high")) == pytest.approx(0.0, abs=1e-12)


def test_nce_is_minus_the_target_entropy_when_independent() -> None:
    pattern = ["a", "a", "b", "c"]  # P(Y) = (1/2, 1/4, 1/4), H(Y) = 1.5 log 2
    source = np.repeat([7, 9], 4)  # every source label sees the same pattern
    assert nce(source, pattern * 2) == pytest.approx(-1.5 * math.log(2), rel=1e-12)


def test_nce_prefers_informative_source_labels_and_ignores_label_names() -> None:
    labels = np.arange(300) % 5
    source = _source_probs(labels, 12, informative=True).argmax(axis=1)
    score = nce(source, labels)
    assert score > nce(source, _shuffled(labels)) + 0.3
    assert nce(source, _renamed(labels)) == pytest.approx(score, rel=1e-12)
    assert nce(source.astype(str), (labels + 2) % 5) == pytest.approx(score, rel=1e-12)


# ---------------------------------------------------------------------------------------------- H-score


def test_hscore_matches_the_covariance_formula() -> None:
    features, labels = _signal_features(300, 16, 4, 6)
    centred = features - features.mean(axis=0)
    means = np.stack([centred[labels == c].mean(axis=0) for c in range(4)])  # (C, D)
    weights = np.bincount(labels) / len(labels)  # (C,)
    between = means.T @ (weights[:, None] * means)  # (D, D): cov(E[f | y])
    expected = np.trace(np.linalg.pinv(centred.T @ centred / len(labels)) @ between)
    assert hscore(features, labels, shrinkage=None) == pytest.approx(expected, rel=1e-9)
    alpha = 0.3  # the shrunk score against its definition, with a D x D inverse
    sigma = centred.T @ centred / len(labels)
    shrunk = (1 - alpha) * sigma + alpha * np.trace(sigma) / sigma.shape[0] * np.eye(sigma.shape[0])
    expected = np.trace(np.linalg.inv(shrunk) @ ((1 - alpha) * between))
    assert hscore(features, labels, shrinkage=alpha) == pytest.approx(expected, rel=1e-9)


def test_hscore_prefers_informative_labels_ignores_label_names_and_saturates_when_n_is_below_d() -> None:
    features, labels = _signal_features(400, 32, 5, 7)
    for shrinkage in (None, "ledoit-wolf"):
        score = hscore(features, labels, shrinkage=shrinkage)
        assert score > hscore(features, _shuffled(labels), shrinkage=shrinkage) + 0.5
        assert hscore(features, _renamed(labels), shrinkage=shrinkage) == pytest.approx(score, rel=1e-9)
        assert hscore(features, (labels + 4) % 5, shrinkage=shrinkage) == pytest.approx(score, rel=1e-9)
    wide, wide_labels = _signal_features(40, 64, 4, 8)
    # C - 1 whatever the labels without shrinkage; the shrunk score (the default) still separates them
    assert hscore(wide, _shuffled(wide_labels), shrinkage=None) == pytest.approx(3.0, rel=1e-9)
    assert hscore(wide, wide_labels) > hscore(wide, _shuffled(wide_labels)) + 0.2
    with pytest.raises(DataError, match="shrinkage"):
        hscore(wide, wide_labels, shrinkage=2.0)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("score", "degenerate"), [(logme, np.zeros((100, 8))), (hscore, np.ones((100, 8)))])
def test_feature_scores_reject_bad_input(score, degenerate: np.ndarray) -> None:
    features, labels = _signal_features(100, 8, 2, 9)
    with pytest.raises(DataError, match="features has 100 rows but labels has 99; expected one label per row"):
        score(features, labels[:99])
    with pytest.raises(DataError, match=r"labels has 1 distinct value\(s\) \[0\]; expected at least 2 classes"):
        score(features, np.zeros(100, dtype=int))
    with pytest.raises(DataError, match="features contains 1 NaN or infinite values; expected finite numbers"):
        score(np.where(np.arange(800).reshape(100, 8) == 5, np.nan, features), labels)
    with pytest.raises(DataError, match=r"features has shape \(800,\) \(ndim 1\); expected a 2-D"):
        score(features.ravel(), labels)
    with pytest.raises(DataError, match=r"labels has shape \(100, 1\) \(ndim 2\); expected a 1-D"):
        score(features, labels[:, None])
    with pytest.raises(DataError, match=r"features of shape \(100, 8\) are (all zero|the same for every row)"):
        score(degenerate, labels)


def test_leep_and_nce_reject_bad_input() -> None:
    labels = np.arange(10) % 2
    probs = np.full((10, 4), 0.25)
    with pytest.raises(DataError, match="source_probs has minimum -0.1; expected probabilities >= 0"):
        leep(np.tile([-0.1, 0.4, 0.4, 0.3], (10, 1)), labels)
    with pytest.raises(DataError, match="source_probs row 0 sums to 2; expected each row to sum to 1"):
        leep(probs * 2, labels)
    with pytest.raises(DataError, match="source_probs has 10 rows but labels has 9"):
        leep(probs, labels[:9])
    with pytest.raises(DataError, match="expected at least 2 classes"):
        leep(probs, ["x"] * 10)
    with pytest.raises(DataError, match="source_labels has 10 rows but labels has 8"):
        nce(labels, labels[:8])
    with pytest.raises(DataError, match=r"source_labels has shape \(2, 5\) \(ndim 2\); expected a 1-D"):
        nce(labels.reshape(2, 5), labels)
    with pytest.raises(DataError, match="labels contains NaN"):
        nce(labels, np.where(labels == 0, np.nan, 1.0))


# ---------------------------------------------------------------------------------------------- MMD


def test_mmd_is_near_zero_for_samples_of_one_distribution_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    assert abs(mmd(a, b)) < 0.01
    assert abs(mmd(a, a)) < 2 / len(a)  # unbiased: exactly -2 (1 - mean off-diagonal k) / N here
    shifts = [mmd(a, b + shift) for shift in (0.25, 0.5, 1.0, 2.0)]
    assert shifts[0] > 0.01
    assert all(near < far for near, far in zip(shifts, shifts[1:]))
    assert mmd(a, b + 1.0, kernel="linear") == pytest.approx(np.sum((a.mean(0) - b.mean(0) - 1.0) ** 2), rel=1e-12)


def test_mmd_gaussian_is_the_unbiased_u_statistic() -> None:
    rng = np.random.default_rng(11)
    a, b, h = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)) + 0.5, 1.7

    def k(x, y):
        return math.exp(-np.sum((x - y) ** 2) / (2 * h**2))

    within_a = sum(k(a[i], a[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    within_b = sum(k(b[i], b[j]) for i in range(4) for j in range(4) if i != j) / (4 * 3)
    across = sum(k(x, y) for x in a for y in b) / (5 * 4)
    assert mmd(a, b, bandwidth=h) == pytest.approx(within_a + within_b - 2 * across, rel=1e-12)


def test_mmd_rejects_bad_input() -> None:
    a = np.zeros((5, 3))
    with pytest.raises(DataError, match="a has 3 columns but b has 4; expected features of the same dimension"):
        mmd(a, np.zeros((5, 4)))
    with pytest.raises(DataError, match="kernel is 'rbf'; expected one of 'gaussian', 'linear'"):
        mmd(a, a, kernel="rbf")
    with pytest.raises(DataError, match="bandwidth is -1.0; expected a positive finite number or None"):
        mmd(a, a, bandwidth=-1.0)
    with pytest.raises(DataError, match="b has 1 row"):
        mmd(a, np.zeros((1, 3)))
    with pytest.raises(DataError, match="b contains 1 NaN or infinite values"):
        mmd(a, [[np.nan, 0.0, 0.0], [0.0, 0.0, 0.0]])


# ---------------------------------------------------------------------------------------------- proxy A-distance


def test_proxy_a_distance_is_near_zero_for_one_distribution_and_near_two_when_separated() -> None:
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16))
    same = proxy_a_distance(a, b)
    assert -2.0 <= same <= 0.3
    assert proxy_a_distance(a, b + 3.0) > 1.9
    assert proxy_a_distance(a, b + 3.0, seed=1) <= 2.0
    assert proxy_a_distance(a, b, seed=3) == proxy_a_distance(a, b, seed=3)


def test_proxy_a_distance_rejects_bad_input() -> None:
    with pytest.raises(DataError, match=r"a has shape \(5,\) \(ndim 1\); expected a 2-D"):
        proxy_a_distance(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(DataError, match="a has 1 row"):
        proxy_a_distance(np.zeros((1, 2)), np.zeros((5, 2)))


def test_scores_refuse_probabilities_given_as_labels() -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    # each distinct float would be a class of its own, and NCE would read that as perfect (0.0)
    with pytest.raises(DataError, match=r"source_labels holds non-integer numbers such as .*not its scores"):
        nce(rng.normal(size=30), labels)
    with pytest.raises(DataError, match="labels holds non-integer numbers"):
        logme(rng.normal(size=(30, 4)), labels + 0.5)
    assert nce(labels.astype(float), labels) == pytest.approx(0.0)  # whole numbers stored as floats are labels


def test_scores_and_distances_refuse_inputs_they_would_misread() -> None:
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(30, 4)), np.arange(30) % 3
    with pytest.raises(DataError, match=r"features holds values as large as [0-9.]+e\+200; scale them"):
        logme(features * 1e200, labels)
    with pytest.raises(DataError, match="features holds complex numbers"):
        hscore(features + 1j, labels)
    for bandwidth in ("x", True, [1, 2]):
        with pytest.raises(DataError, match="bandwidth is .*; expected a positive finite number"):
            mmd(features, features + 1, bandwidth=bandwidth)
    for seed in (-1, "x", 1.5):
        with pytest.raises(DataError, match="seed is .*; expected an int >= 0"):
            proxy_a_distance(features, features + 1, seed=seed)
