"""Shallow domain adaptation: CORAL, KMM, KLIEP, self-training, mSDA and the classifiers built on them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import norm, spearmanr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from transferkit.adaptation.msda import MarginalizedDenoisingClassifier, msda_features, msda_mappings
from transferkit.adaptation.run import DenoisedProbeHead, fit_method
from transferkit.adaptation.shallow import (
    CoralClassifier,
    ReweightedClassifier,
    SelfTrainingClassifier,
    _gauss,
    _project_box_slab,
    coral_transform,
    kliep_weights,
    kmm_weights,
)
from transferkit.errors import DataError, NotFittedError, TransferkitError


def _covariate_shift_1d(seed: int, n_s: int = 400, n_t: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source N(0, 1), target N(1, 0.5^2) in 1-D, and the true ratio p_t / p_s at the source points ``(n_s,)``."""
    rng = np.random.default_rng(seed)
    xs, xt = rng.normal(0.0, 1.0, (n_s, 1)), rng.normal(1.0, 0.5, (n_t, 1))
    return xs, xt, norm.pdf(xs[:, 0], 1.0, 0.5) / norm.pdf(xs[:, 0], 0.0, 1.0)


def _correlated(rng: np.random.Generator, n: int, d: int, scale: float) -> np.ndarray:
    return rng.normal(size=(n, d)) @ (scale * rng.normal(size=(d, d)) / np.sqrt(d))  # (n, d)


# --- CORAL ---------------------------------------------------------------------------------------


def test_coral_matches_covariances():
    rng = np.random.default_rng(0)
    Xs, Xt = _correlated(rng, 500, 6, 1.0), _correlated(rng, 400, 6, 2.0) + 3.0
    assert not np.allclose(np.cov(Xs, rowvar=False), np.cov(Xt, rowvar=False), atol=0.1)  # a real difference
    # reg=0: the aligned source has exactly the target covariance
    assert np.allclose(np.cov(coral_transform(Xs, Xt, reg=0.0), rowvar=False), np.cov(Xt, rowvar=False), atol=1e-6)
    # reg>0: the linear map A (recovered by least squares) carries cov(Xs) + reg I onto cov(Xt) + reg I
    for reg in (0.1, 1.0):
        aligned = coral_transform(Xs, Xt, reg=reg)
        A = np.linalg.lstsq(Xs, aligned, rcond=None)[0]  # (d, d)
        assert np.allclose(Xs @ A, aligned, atol=1e-9)  # a linear map, no centring or added mean
        C_s, C_t = np.cov(Xs, rowvar=False) + reg * np.eye(6), np.cov(Xt, rowvar=False) + reg * np.eye(6)
        assert np.allclose(A.T @ C_s @ A, C_t, atol=1e-6)


def test_coral_is_identity_for_equal_covariances():
    rng = np.random.default_rng(1)
    Xs = _correlated(rng, 300, 5, 1.5)
    Xt = Xs[::-1] + 4.0  # same covariance, other mean: CORAL moves only second-order statistics
    assert np.allclose(coral_transform(Xs, Xt), Xs, atol=1e-8)
    aligned32 = coral_transform(Xs.astype(np.float32), Xt.astype(np.float32))
    assert aligned32.dtype == np.float32 and np.allclose(aligned32, Xs, atol=1e-4)


# --- KMM and KLIEP -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmm_weights_follow_the_true_ratio(seed):
    xs, xt, ratio = _covariate_shift_1d(seed)
    w = kmm_weights(xs, xt, random_state=seed)
    eps = (np.sqrt(400) - 1) / np.sqrt(400)  # the default
    assert w.shape == (400,) and w.min() >= 0 and w.max() <= 1000.0
    assert abs(w.sum() - 400) <= 400 * eps + 1e-6
    assert spearmanr(w, ratio)[0] > 0.8  # 0.91 to 0.99 over seeds 0-39


def test_kmm_active_constraints_hold():
    xs, xt, ratio = _covariate_shift_1d(0)  # the true ratio peaks at 3.9, so B = 2 binds
    w = kmm_weights(xs, xt, B=2.0, eps=0.05)
    assert w.min() >= 0 and w.max() <= 2.0 + 1e-12 and (w >= 2.0 - 1e-9).sum() > 50
    assert abs(w.mean() - 1.0) <= 0.05 + 1e-9
    w_blocks = kmm_weights(xs, xt, max_block=150)  # three blocks of about 133 source points
    assert spearmanr(w_blocks, ratio)[0] > 0.8  # 0.85 to 0.97 over seeds 0-39


def test_kmm_reaches_the_qp_optimum():
    xs, xt, _ = _covariate_shift_1d(3, n_s=40, n_t=30)
    B, eps, h = 3.0, 0.1, 0.7
    K, kappa = _gauss(xs, xs, h), _gauss(xs, xt, h).sum(1) * 40 / 30  # (40, 40), (40,)

    def objective(b):
        return 0.5 * b @ K @ b - kappa @ b

    slab = [
        {"type": "ineq", "fun": lambda b: 40 * (1 + eps) - b.sum()},
        {"type": "ineq", "fun": lambda b: b.sum() - 40 * (1 - eps)},
    ]
    ref = minimize(
        objective,
        np.ones(40),
        jac=lambda b: K @ b - kappa,
        bounds=[(0, B)] * 40,
        constraints=slab,
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    w = kmm_weights(xs, xt, bandwidth=h, B=B, eps=eps, max_iter=20000, tol=1e-10)
    assert objective(w) <= ref.fun + 1e-6 * abs(ref.fun)


@pytest.mark.parametrize("shift", [-2.0, 0.0, 2.0])
def test_box_slab_projection_is_the_euclidean_projection(shift):
    v = np.random.default_rng(4).normal(shift, 1.5, 30)
    B, lo, hi = 2.0, 20.0, 40.0
    p = _project_box_slab(v, B, lo, hi)
    slab = [{"type": "ineq", "fun": lambda b: hi - b.sum()}, {"type": "ineq", "fun": lambda b: b.sum() - lo}]
    ref = minimize(
        lambda b: 0.5 * ((b - v) ** 2).sum(),
        np.clip(v, 0, B),
        jac=lambda b: b - v,
        bounds=[(0, B)] * 30,
        constraints=slab,
        method="SLSQP",
        options={"ftol": 1e-14},
    )
    assert p.min() >= 0 and p.max() <= B and lo - 1e-9 <= p.sum() <= hi + 1e-9
    assert np.allclose(p, ref.x, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kliep_weights_follow_the_true_ratio(seed):
    xs, xt, ratio = _covariate_shift_1d(seed)
    w = kliep_weights(xs, xt, random_state=seed)
    assert w.shape == (400,) and w.min() >= 0 and np.isclose(w.mean(), 1.0)
    assert spearmanr(w, ratio)[0] > 0.8  # 0.98 to 1.00 over seeds 0-39 (fixed h: 0.99 to 1.00)
    fixed = kliep_weights(xs, xt, bandwidths=0.5, n_centers=50)  # one bandwidth: no cross-validation
    assert np.isclose(fixed.mean(), 1.0) and spearmanr(fixed, ratio)[0] > 0.8


# --- classifiers ---------------------------------------------------------------------------------


def _curved_boundary(seed: int) -> tuple[np.ndarray, ...]:
    """Broad source N(0, I), narrow target around (1.5, 0.7) where the curved class boundary has another slope."""
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(0.0, 1.0, (500, 2)), rng.normal([1.5, 0.7], 0.35, (400, 2))

    def label(X):
        return (X[:, 1] > 0.5 * X[:, 0] ** 2 - 0.5).astype(int)

    return Xs, label(Xs), Xt, label(Xt)


@pytest.mark.parametrize("method", ["kmm", "kliep"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reweighting_helps_under_covariate_shift(method, seed):
    Xs, ys, Xt, yt = _curved_boundary(seed)
    source_only = LogisticRegression(C=1.0, max_iter=2000).fit(Xs, ys).score(Xt, yt)
    clf = ReweightedClassifier(method=method).fit(Xs, ys, X_target=Xt)
    # seeds 0-39: source-only 0.49 to 0.61; gain 0.26 to 0.49 (KMM), 0.32 to 0.47 (KLIEP)
    assert clf.score(Xt, yt) >= source_only + 0.2
    assert clf.weights_.shape == (500,) and np.isclose(clf.weights_.mean(), 1.0)
    assert clf.predict_proba(Xt).shape == (400, 2) and clf.decision_function(Xt).shape == (400,)


def _rescaled_target(seed: int) -> tuple[np.ndarray, ...]:
    """Two classes along (1, 1) with total covariance 9 I; the target is the same data with axes scaled by 3 and 1/3."""
    rng = np.random.default_rng(seed)
    u = np.ones(2) / np.sqrt(2)

    def draw(n):
        y = rng.integers(0, 2, n)
        return (2 * y[:, None] - 1) * 2.5 * u + rng.multivariate_normal(
            [0, 0], 9 * np.eye(2) - 6.25 * np.outer(u, u), n
        ), y

    (Xs, ys), (Xt, yt) = draw(400), draw(400)
    return Xs, ys, Xt * np.array([3.0, 1 / 3]), yt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coral_helps_on_a_rescaled_target(seed):
    Xs, ys, Xt, yt = _rescaled_target(seed)
    source_only = LogisticRegression(C=1.0, max_iter=2000).fit(Xs, ys).score(Xt, yt)
    clf = CoralClassifier().fit(Xs, ys, X_target=Xt)
    # seeds 0-39: source-only 0.77 to 0.85, CORAL 0.90 to 0.96, gain 0.08 to 0.16
    assert clf.score(Xt, yt) >= source_only + 0.05
    assert list(clf.classes_) == [0, 1] and np.allclose(clf.predict_proba(Xt).sum(1), 1.0)


def _target_only_words(seed: int, n_s: int = 300, n_t: int = 300, d: int = 30) -> tuple[np.ndarray, ...]:
    """Text-like shift: a weak class signal on 10 shared columns, a strong one on 20 columns the source never uses.

    Like TF-IDF columns of words that occur only in the target domain: the source model gives them no weight.
    """
    rng = np.random.default_rng(seed)

    def draw(n: int, target: bool) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 2
        X = rng.normal(size=(n, d))
        X[:, :10] += 0.35 * (2 * y[:, None] - 1)  # shared, weak
        X[:, 10:] = 0.0 if not target else X[:, 10:] + 0.6 * (2 * y[:, None] - 1)  # target-only, strong
        return X, y

    (Xs, ys), (Xt, yt) = draw(n_s, False), draw(n_t, True)
    return Xs, ys, Xt, yt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_self_training_learns_target_only_features(seed):
    Xs, ys, Xt, yt = _target_only_words(seed)
    source_only = LogisticRegression(C=1.0, max_iter=2000).fit(Xs, ys).score(Xt, yt)
    clf = SelfTrainingClassifier(weight=1.0).fit(Xs, ys, X_target=Xt)
    # seeds 0-39: source-only 0.81 to 0.90, self-training 0.97 to 1.00, gain 0.09 or more
    assert source_only < 0.93 and clf.score(Xt, yt) >= source_only + 0.07
    assert np.abs(clf.estimator_.coef_[0, 10:]).sum() > 1.0  # the target-only columns now carry weight
    # 0.2 -> 0.8 of 300 in 5 equal steps, half of each class (each quota rounded on its own)
    assert np.abs(np.subtract(clf.n_pseudo_labelled_, [60, 105, 150, 195, 240])).max() <= 1
    chosen = clf.pseudo_labels_ >= 0
    assert chosen.sum() == 240 and np.bincount(clf.pseudo_labels_[chosen]).tolist() == [120, 120]
    assert (clf.pseudo_labels_[chosen] == yt[chosen]).mean() > 0.95
    assert clf.predict_proba(Xt).shape == (300, 2) and clf.decision_function(Xt).shape == (300,)


def test_self_training_quotas_follow_the_source_shares_not_the_predictions():
    # the model calls 90 % of the target class 0; the source is 1/4 class 1, so class 1 still gets its quarter
    proba = np.c_[np.linspace(0.99, 0.4, 100), np.linspace(0.01, 0.6, 100)]  # (100, 2), rising p(class 1)
    labels = SelfTrainingClassifier._select(proba, np.array([0.75, 0.25]), 0.8)
    assert (labels == 0).sum() == 60 and (labels == 1).sum() == 20 and (labels == -1).sum() == 20
    assert (labels[:60] == 0).all() and (labels[80:] == 1).all()  # the most confident of each class
    # three classes whose top-k overlap: each point is labelled once, by its larger margin
    rng = np.random.default_rng(0)
    proba3 = rng.dirichlet(np.ones(3), 50)  # (50, 3)
    labels3 = SelfTrainingClassifier._select(proba3, np.full(3, 1 / 3), 1.0)
    counts = np.bincount(labels3[labels3 >= 0], minlength=3)
    assert labels3.shape == (50,) and counts.max() <= 17 and counts.sum() >= 40  # quotas of round(50 / 3)
    assert (labels3[labels3 >= 0] == proba3.argmax(1)[labels3 >= 0]).mean() > 0.8


def test_self_training_weight_zero_is_the_source_only_fit():
    Xs, ys, Xt, _ = _target_only_words(3)
    clf = SelfTrainingClassifier(weight=0.0).fit(Xs, ys, X_target=Xt)
    plain = LogisticRegression(C=1.0, max_iter=2000).fit(Xs, ys)
    np.testing.assert_array_equal(clf.estimator_.coef_, plain.coef_)
    np.testing.assert_array_equal(clf.predict_proba(Xt), plain.predict_proba(Xt))
    assert clf.n_pseudo_labelled_ == [] and (clf.pseudo_labels_ == -1).all()
    # through fit_method, weight 0 is the very source-only model
    source_only = fit_method("source-only", Xs, ys, Xt)
    zero = fit_method("self-training", Xs, ys, Xt, weight=0.0)
    np.testing.assert_array_equal(zero.predict_proba(Xt), source_only.predict_proba(Xt))
    unread = fit_method("self-training", Xs, ys, np.full((7, Xs.shape[1]), 5.0), weight=0.0)  # target not read
    np.testing.assert_array_equal(unread.predict_proba(Xt), source_only.predict_proba(Xt))
    adapted = fit_method("self-training", Xs, ys, Xt, weight=1.0)
    assert not np.allclose(adapted.predict_proba(Xt), source_only.predict_proba(Xt), atol=0.05)


def test_self_training_in_the_row_space_matches_the_full_fit():
    # fewer rows than columns (like TF-IDF): the default estimator is fitted on [X; X_target] @ V
    rng = np.random.default_rng(8)
    Xs, Xt = rng.normal(size=(40, 120)), rng.normal(size=(30, 120)) + 0.3
    ys = (Xs[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    fast = SelfTrainingClassifier(weight=1.0).fit(Xs, ys, X_target=Xt)
    full = SelfTrainingClassifier(estimator=LogisticRegression(C=1.0, max_iter=2000), weight=1.0)
    full.fit(Xs, ys, X_target=Xt)
    assert fast.estimator_.coef_.shape == (1, 120) == full.estimator_.coef_.shape
    np.testing.assert_array_equal(fast.pseudo_labels_, full.pseudo_labels_)
    np.testing.assert_allclose(fast.predict_proba(Xt), full.predict_proba(Xt), atol=2e-3)


def test_self_training_parameter_errors():
    rng = np.random.default_rng(9)
    X, y, Xt = rng.normal(size=(20, 3)), np.arange(20) % 2, rng.normal(size=(10, 3))
    for params, name in [
        ({"weight": -1.0}, "weight"),
        ({"rounds": 0}, "rounds"),
        ({"rounds": 2.5}, "rounds"),
        ({"start": 0.0}, "start"),
        ({"start": 0.6, "end": 0.5}, "end"),
        ({"end": 1.5}, "end"),
    ]:
        with pytest.raises(TransferkitError, match=rf"The '{name}' parameter of SelfTrainingClassifier must be"):
            SelfTrainingClassifier(**params).fit(X, y, X_target=Xt)
    with pytest.raises(TransferkitError, match="estimator with predict_proba whose fit accepts sample_weight"):
        SelfTrainingClassifier(estimator=LinearSVC()).fit(X, y, X_target=Xt)
    assert clone(SelfTrainingClassifier(rounds=3)).get_params() == {
        "estimator": None,
        "weight": 0.3,
        "rounds": 3,
        "start": 0.2,
        "end": 0.8,
    }


def test_msda_closed_form_is_the_least_squares_denoiser_averaged_over_corruptions():
    # W = P Q^-1 must equal the least-squares map from many explicitly corrupted copies back to the clean rows
    rng = np.random.default_rng(10)
    X = rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5)) + 1.0  # (60, 5), correlated columns
    p, copies = 0.4, 4000
    clean = np.tile(X, (copies, 1))  # (240000, 5)
    corrupted = clean * (rng.random(clean.shape) >= p)
    biased = np.hstack([corrupted, np.ones((len(corrupted), 1))])  # the bias is never dropped
    monte_carlo = np.linalg.lstsq(biased, clean, rcond=None)[0].T  # (5, 6)
    (closed,) = msda_mappings(X, noise=p, layers=1, reg=1e-9)
    assert closed.shape == (5, 6)
    np.testing.assert_allclose(closed, monte_carlo, atol=0.03)
    # no noise: the map rebuilds each column from itself (identity, zero bias)
    (exact,) = msda_mappings(X, noise=0.0, reg=1e-9)
    np.testing.assert_allclose(exact, np.hstack([np.eye(5), np.zeros((5, 1))]), atol=1e-5)
    two = msda_mappings(X, noise=p, layers=2)
    features = msda_features(X, two, scale=0.5)
    hidden = np.tanh(np.hstack([X, np.ones((60, 1))]) @ two[0].T)
    assert features.shape == (60, 15)
    np.testing.assert_allclose(features[:, :5], X)
    np.testing.assert_allclose(features[:, 5:10], 0.5 * hidden)
    np.testing.assert_allclose(features[:, 10:], 0.5 * np.tanh(np.hstack([hidden, np.ones((60, 1))]) @ two[1].T))


def _shared_and_target_words(seed: int, n: int = 300) -> tuple[np.ndarray, ...]:
    """Bag-of-words-like: word 0 / 2 says class 0 / 1 in both domains, word 5 / 7 only in the target; 10-19 noise.

    Every target sentence has its class's target-only word, 30 % also the shared one, so co-occurrence
    learned on both domains links the target words to the source ones.
    """
    rng = np.random.default_rng(seed)

    def draw(target: bool) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 2
        X = np.zeros((n, 20))
        X[:, 10:] = rng.random((n, 10)) < 0.1  # noise words
        for i, c in enumerate(y):
            shared, target_only = (0, 5) if c == 0 else (2, 7)
            if not target or rng.random() < 0.3:
                X[i, shared] = 1.0
            if target:
                X[i, target_only] = 1.0
        return X, y

    (Xs, ys), (Xt, yt) = draw(False), draw(True)
    return Xs, ys, Xt, yt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_msda_carries_the_source_classifier_to_target_only_words(seed):
    Xs, ys, Xt, yt = _shared_and_target_words(seed)
    source_only = LogisticRegression(C=1.0, max_iter=2000).fit(Xs, ys).score(Xt, yt)
    clf = MarginalizedDenoisingClassifier(noise=0.7).fit(Xs, ys, X_target=Xt)
    # seeds 0-29: source-only 0.60 to 0.72 (it reads only the 30 % with a shared word), mSDA 0.98 to 1.00
    assert source_only < 0.75 and clf.score(Xt, yt) >= max(source_only + 0.2, 0.95)
    assert clf.transform(Xt).shape == (300, 40) and len(clf.mappings_) == 1
    assert clf.predict_proba(Xt).shape == (300, 2) and clf.decision_function(Xt).shape == (300,)


def test_msda_weight_zero_is_the_source_only_fit_and_fit_method_gives_a_saved_head():
    Xs, ys, Xt, _ = _shared_and_target_words(3)
    zero = MarginalizedDenoisingClassifier(weight=0.0).fit(Xs, ys, X_target=Xt)
    plain = LogisticRegression(C=1.0, max_iter=2000).fit(Xs, ys)
    np.testing.assert_allclose(zero.predict_proba(Xt), plain.predict_proba(Xt), atol=1e-6)
    assert np.abs(zero.estimator_.coef_[0, 20:]).max() < 1e-8  # zero columns carry no weight
    source_only = fit_method("source-only", Xs, ys, Xt)
    np.testing.assert_array_equal(
        fit_method("msda", Xs, ys, np.full((7, 20), 5.0), weight=0.0).predict_proba(Xt), source_only.predict_proba(Xt)
    )
    adapted = fit_method("msda", Xs, ys, Xt, weight=1.0)
    assert isinstance(adapted, DenoisedProbeHead)
    assert not np.allclose(adapted.predict_proba(Xt), source_only.predict_proba(Xt), atol=0.05)
    rebuilt = DenoisedProbeHead.from_arrays(adapted.config(), adapted.save_arrays())
    np.testing.assert_array_equal(rebuilt.predict_proba(Xt), adapted.predict_proba(Xt))


def test_msda_parameter_errors():
    rng = np.random.default_rng(11)
    X, y, Xt = rng.normal(size=(20, 3)), np.arange(20) % 2, rng.normal(size=(10, 3))
    for params, name in [({"weight": -1.0}, "weight"), ({"noise": 1.0}, "noise"), ({"layers": 0}, "layers")]:
        with pytest.raises(
            TransferkitError, match=rf"The '{name}' parameter of MarginalizedDenoisingClassifier must be"
        ):
            MarginalizedDenoisingClassifier(**params).fit(X, y, X_target=Xt)
    with pytest.raises(TransferkitError, match=r"The 'reg' parameter of msda_mappings must be a float > 0"):
        msda_mappings(X, reg=0)
    with pytest.raises(DataError, match="X has 3 features but an mSDA layer maps 4"):
        msda_features(X, msda_mappings(rng.normal(size=(20, 4))))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        MarginalizedDenoisingClassifier().transform(X)
    assert clone(MarginalizedDenoisingClassifier(layers=2)).get_params() == {
        "estimator": None,
        "noise": 0.7,
        "layers": 2,
        "weight": 1.0,
    }


# --- errors and the scikit-learn protocol ---------------------------------------------------------


@pytest.mark.parametrize(
    "make", [CoralClassifier, ReweightedClassifier, SelfTrainingClassifier, MarginalizedDenoisingClassifier]
)
def test_input_errors(make):
    rng = np.random.default_rng(5)
    X, y, Xt = rng.normal(size=(20, 3)), np.arange(20) % 2, rng.normal(size=(10, 3))
    with pytest.raises(DataError, match=rf"X_target is required: call {make.__name__}\.fit"):
        make().fit(X, y)
    with pytest.raises(DataError, match=r"X has shape \(20, 3\) but X_target has shape \(10, 4\)"):
        make().fit(X, y, X_target=rng.normal(size=(10, 4)))
    with pytest.raises(DataError, match="y has only one class"):
        make().fit(X, np.zeros(20, dtype=np.int64), X_target=Xt)
    with pytest.raises(DataError, match="X_target contains NaN"):
        make().fit(X, y, X_target=np.where(np.eye(10, 3) > 0, np.nan, Xt))
    with pytest.raises(DataError, match=r"X_target has shape \(10,\); expected a 2-D"):
        make().fit(X, y, X_target=Xt[:, 0])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        make().predict(Xt)
    with pytest.raises(DataError, match="fitted on 3 features"):
        make().fit(X, y, X_target=Xt).predict(Xt[:, :2])


def test_parameter_errors():
    rng = np.random.default_rng(6)
    X, y, Xt = rng.normal(size=(20, 3)), np.arange(20) % 2, rng.normal(size=(10, 3))
    message = "The 'method' parameter of ReweightedClassifier must be one of {'kmm', 'kliep'}. Got 'x' instead."
    with pytest.raises(TransferkitError, match=re.escape(message)):
        ReweightedClassifier(method="x").fit(X, y, X_target=Xt)
    with pytest.raises(TransferkitError, match=r"The 'reg' parameter of CoralClassifier must be a float >= 0\. Got -1"):
        CoralClassifier(reg=-1).fit(X, y, X_target=Xt)
    with pytest.raises(TransferkitError, match=r"The 'B' parameter of kmm_weights .* Got 0 instead"):
        kmm_weights(X, Xt, B=0)
    with pytest.raises(DataError, match="leave no feasible weights"):
        kmm_weights(X, Xt, B=0.5, eps=0.1)
    with pytest.raises(TransferkitError, match="'n_centers' parameter of kliep_weights"):
        kliep_weights(X, Xt, n_centers=0)
    with pytest.raises(TransferkitError, match="estimator whose fit accepts sample_weight"):
        ReweightedClassifier(estimator=KNeighborsClassifier()).fit(X, y, X_target=Xt)


def test_sklearn_clone_and_params():
    clf = ReweightedClassifier(estimator=LogisticRegression(C=0.5), method="kliep", B=10.0, n_centers=20)
    params = clf.get_params(deep=False)
    assert params == {
        "estimator": clf.estimator,
        "method": "kliep",
        "random_state": 0,
        "bandwidth": None,
        "B": 10.0,
        "eps": None,
        "n_centers": 20,
    }
    twin = clone(clf)
    assert twin.get_params(deep=False).keys() == params.keys() and twin.estimator is not clf.estimator
    assert twin.get_params()["estimator__C"] == 0.5 and twin.set_params(estimator__C=2.0).estimator.C == 2.0
    rng = np.random.default_rng(7)
    X, y, Xt = rng.normal(size=(40, 3)), np.arange(40) % 3, rng.normal(size=(20, 3))
    coral = CoralClassifier(reg=0.5).fit(X, y, X_target=Xt)
    assert coral.estimator is None and isinstance(coral.estimator_, LogisticRegression)
    assert not hasattr(clone(coral), "estimator_") and clone(coral).get_params() == {"estimator": None, "reg": 0.5}
    knn = CoralClassifier(estimator=KNeighborsClassifier(3)).fit(X, y, X_target=Xt)
    assert not hasattr(knn, "decision_function") and knn.predict_proba(Xt).shape == (20, 3)


def test_probe_head_round_trips_integer_labels_and_refuses_to_cast_others():
    from transferkit.strategies import ProbeHead

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int) + 3  # labels 3 and 4
    head = ProbeHead().fit(X, y)
    rebuilt = ProbeHead.from_arrays(head.save_arrays())
    assert np.array_equal(rebuilt.predict(X), head.predict(X)) and list(rebuilt.classes_) == [3, 4]
    for labels, shown in ((np.where(y == 3, "neg", "pos"), "['neg', 'pos']"), (y.astype(float), "[3.0, 4.0]")):
        with pytest.raises(TransferkitError, match=re.escape(f"labels {shown}: fit it on class indices")):
            ProbeHead().fit(X, labels).save_arrays()
