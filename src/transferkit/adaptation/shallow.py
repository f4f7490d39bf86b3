r"""Shallow domain adaptation of features: labelled source ``(Xs, ys)``, unlabelled target ``Xt``, the same labels.

CORAL matches covariances; KMM and KLIEP weight the source by :math:`p_t / p_s` with Gaussian kernels
:math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 h^2))`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import has_fit_parameter

from ..errors import DataError, NotFittedError, TransferkitError

__all__ = ["CoralClassifier", "ReweightedClassifier", "coral_transform", "kliep_weights", "kmm_weights"]

_CHUNK = 4096  # rows per block wherever a whole (n, d) float64 copy or (n, n_t) kernel could be large


def _check(owner: str, name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok or isinstance(value, bool):
        raise TransferkitError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")


def _matrix(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite ``(n, d)`` array: float32 stays float32, anything else becomes float64."""
    array = np.asarray(values)
    array = array if array.dtype == np.float32 else array.astype(np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise DataError(f"{name} has shape {array.shape}; expected a 2-D (n_samples, n_features) array")
    if not np.isfinite(array).all():
        raise DataError(f"{name} contains NaN or infinite values; expected finite numbers")
    return array


def _pair(Xs: Any, Xt: Any, names: tuple[str, str] = ("Xs", "Xt")) -> tuple[np.ndarray, np.ndarray]:
    Xs, Xt = _matrix(Xs, names[0]), _matrix(Xt, names[1])
    if Xs.shape[1] != Xt.shape[1]:
        raise DataError(f"{names[0]} has shape {Xs.shape} but {names[1]} has shape {Xt.shape}; the columns differ")
    return Xs, Xt


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(n, m)`` squared distances between the rows of A ``(n, d)`` and B ``(m, d)``, in float64."""
    A, B = A.astype(np.float64, copy=False), B.astype(np.float64, copy=False)
    sq = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2.0 * A @ B.T  # (n, m)
    return np.maximum(sq, 0.0, out=sq)


def _gauss(A: np.ndarray, B: np.ndarray, h: float) -> np.ndarray:
    return np.exp(_sq_dists(A, B) / (-2.0 * h * h))  # (n, m)


def _median_distance(Xs: np.ndarray, Xt: np.ndarray, rng: np.random.Generator) -> float:
    """Median pairwise distance of up to 500 source plus 500 target rows at random; 1.0 if all coincide."""
    pooled = np.concatenate([Xs[rng.permutation(len(Xs))[:500]], Xt[rng.permutation(len(Xt))[:500]]])
    dist = np.sqrt(_sq_dists(pooled, pooled)[np.triu_indices(len(pooled), k=1)])  # (P,) pairs i < j
    return float(np.median(dist[dist > 0])) if (dist > 0).any() else 1.0


def coral_transform(Xs: Any, Xt: Any, reg: float = 1.0) -> np.ndarray:
    r"""Re-colour the source features with the target covariance (CORAL).

    Sun, Feng & Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016, Algorithm 1:

    .. math::
        C_s = \mathrm{cov}(X_s) + \lambda I,\quad C_t = \mathrm{cov}(X_t) + \lambda I,\quad
        X_s^\ast = X_s\, C_s^{-1/2} C_t^{1/2}.

    The covariances are the usual centred ones but, as in the paper, the map acts on the features as they
    are (the source is not centred, no target mean is added): only second-order statistics move. Matrix
    powers come from symmetric eigendecompositions (eigenvalues clipped at 1e-12). The map :math:`A`
    satisfies :math:`A^\top C_s A = C_t`, so with ``reg=0`` (full rank) ``cov(Xs_aligned) == cov(Xt)``.

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_s, d) and (n_t, d)
    reg : float, default=1.0
        :math:`\lambda` (1 in the paper).

    Returns
    -------
    ndarray of shape (n_s, d)
        The aligned source, float32 for float32 input, else float64.
    """
    _check("coral_transform", "reg", reg, isinstance(reg, Real) and reg >= 0, "a float >= 0")
    Xs, Xt = _pair(Xs, Xt)
    if min(len(Xs), len(Xt)) < 2:
        raise DataError(f"Xs has {len(Xs)} and Xt {len(Xt)} row(s); a covariance needs at least 2 of each")

    def covariance(X: np.ndarray) -> np.ndarray:  # (d, d), in row blocks: a float32 X is never copied whole
        mean, cov = X.mean(axis=0, dtype=np.float64), np.zeros((X.shape[1], X.shape[1]))  # (d,), (d, d)
        for start in range(0, len(X), _CHUNK):
            block = X[start : start + _CHUNK].astype(np.float64) - mean  # (c, d)
            cov += block.T @ block
        return cov / (len(X) - 1) + reg * np.eye(X.shape[1])

    def power(C: np.ndarray, p: float) -> np.ndarray:  # C ** p by a symmetric eigendecomposition
        values, vectors = np.linalg.eigh(C)  # (d,), (d, d)
        return (vectors * np.clip(values, 1e-12, None) ** p) @ vectors.T  # (d, d)

    A = (power(covariance(Xs), -0.5) @ power(covariance(Xt), 0.5)).astype(Xs.dtype)  # (d, d)
    return np.concatenate([Xs[start : start + _CHUNK] @ A for start in range(0, len(Xs), _CHUNK)])  # (n_s, d)


def _project_box_slab(v: np.ndarray, B: float, lo: float, hi: float) -> np.ndarray:
    """Projection of v ``(m,)`` onto {0 <= b <= B, lo <= sum(b) <= hi}: ``clip(v - tau, 0, B)``, tau by bisection."""
    # tau = 0 if that sum is in [lo, hi], else the root of the non-increasing sum(clip(v - tau, 0, B)) - hi (or lo)
    if lo <= (total := np.clip(v, 0.0, B).sum()) <= hi:
        return np.clip(v, 0.0, B)
    bound, (left, right) = (hi, (0.0, float(v.max()))) if total > hi else (lo, (float(v.min()) - B, 0.0))
    for _ in range(200):
        mid = 0.5 * (left + right)
        if mid in (left, right):
            break
        left, right = (mid, right) if np.clip(v - mid, 0.0, B).sum() > bound else (left, mid)
    return np.clip(v - 0.5 * (left + right), 0.0, B)


def kmm_weights(
    Xs: Any,
    Xt: Any,
    *,
    bandwidth: float | None = None,
    B: float = 1000.0,
    eps: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    max_block: int = 3000,
    random_state: int | None = 0,
) -> np.ndarray:
    r"""Importance weights of the source points by kernel mean matching.

    Huang, Smola, Gretton, Borgwardt & Schölkopf, "Correcting Sample Selection Bias by Unlabeled
    Data", NIPS 2006. With :math:`K_{ij} = k(x_i, x_j)` on the source and
    :math:`\kappa_i = \frac{n_s}{n_t}\sum_j k(x_i, x'_j)`,

    .. math::
        \min_\beta\ \tfrac12 \beta^\top K \beta - \kappa^\top \beta
        \quad\text{s.t.}\quad 0 \le \beta_i \le B,\ \ \Bigl|\sum_i \beta_i - n_s\Bigr| \le n_s \epsilon,

    solved by accelerated projected gradient (FISTA with gradient restart, step :math:`1 / \max_i \sum_j K_{ij}
    \le 1 / \lambda_{\max}(K)`), projecting onto box ∩ slab exactly by bisection on one scalar shift.
    Large sources (approximation): when ``n_s > max_block`` the source is split at random into
    ``ceil(n_s / max_block)`` equal blocks, each matched to the whole target on its own (n_s then the block
    size); the blocks are random source samples, so their weights stay comparable.

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_s, d) and (n_t, d)
    bandwidth : float, optional
        h of the kernel; default the median pairwise distance of up to 1000 pooled rows.
    B, eps : float
        Bound on each weight and slack on their mean; defaults 1000 and :math:`(\sqrt{m} - 1) / \sqrt{m}` (m the
        block size), the paper's experiments' (its bound :math:`O(B / \sqrt{m})` would free the sum for B = 1000).
    max_iter, tol, max_block : int, float, int
        Stop after ``max_iter`` steps or once no weight moves by more than ``tol * max(1, max(beta))``.
    random_state : int or None, default=0
        Seeds the bandwidth subsample and the block split.

    Returns
    -------
    ndarray of shape (n_s,)
        Weights in ``[0, B]``; the mean over each block is in ``[1 - eps, 1 + eps]``.
    """
    Xs, Xt = _pair(Xs, Xt)
    _check("kmm_weights", "B", B, isinstance(B, Real) and B > 0, "a float in the range (0, inf)")
    ok = bandwidth is None or (isinstance(bandwidth, Real) and bandwidth > 0)
    _check("kmm_weights", "bandwidth", bandwidth, ok, "None or a float in the range (0, inf)")
    _check("kmm_weights", "eps", eps, eps is None or (isinstance(eps, Real) and eps >= 0), "None or a float >= 0")
    rng = np.random.default_rng(random_state)
    h = float(bandwidth) if bandwidth is not None else _median_distance(Xs, Xt, rng)
    n_s, weights = len(Xs), np.empty(len(Xs))
    for block in np.array_split(rng.permutation(n_s), math.ceil(n_s / max_block)):
        m, Xb = len(block), Xs[block]  # Xb (m, d)
        K = _gauss(Xb, Xb, h)  # (m, m)
        kappa = sum(_gauss(Xb, Xt[j : j + _CHUNK], h).sum(1) for j in range(0, len(Xt), _CHUNK)) * (m / len(Xt))  # (m,)
        e = (math.sqrt(m) - 1) / math.sqrt(m) if eps is None else float(eps)
        if B < 1.0 - e:
            raise DataError(f"B={B} and eps={e:.4g} leave no feasible weights; expected B >= 1 - eps")
        lo, hi = m * max(1.0 - e, 0.0), m * (1.0 + e)
        step = 1.0 / K.sum(1).max()  # Gershgorin: lambda_max(K) <= max row sum, as K >= 0
        beta = z = _project_box_slab(np.ones(m), B, lo, hi)  # (m,) iterate and extrapolated point
        t = 1.0
        for _ in range(max_iter):
            new = _project_box_slab(z - step * (K @ z - kappa), B, lo, hi)  # (m,)
            if np.abs(new - beta).max() <= tol * max(1.0, float(new.max())):
                beta = new
                break
            t = 1.0 if (z - new) @ (new - beta) > 0 else t  # restart (O'Donoghue & Candès 2015)
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            beta, z, t = new, new + ((t - 1.0) / t_next) * (new - beta), t_next
        weights[block] = beta
    return weights


def _kliep_fit(Phi_t: np.ndarray, b: np.ndarray, max_iter: int) -> np.ndarray:
    """The paper's ascent: alpha ``(n_c,)`` maximising sum log(Phi_t @ alpha), alpha >= 0, b @ alpha = 1."""

    def project(alpha: np.ndarray) -> tuple[np.ndarray, float]:  # onto b @ alpha = 1, then alpha >= 0, rescaled
        alpha = np.maximum(alpha + b * (1.0 - b @ alpha) / (b @ b), 0.0)
        alpha = alpha / (b @ alpha)
        return alpha, float(np.log(np.maximum(Phi_t @ alpha, 1e-300)).mean())

    alpha, score = project(np.ones(len(b)))
    for step in 10.0 ** np.arange(3, -4, -1):  # each step size until the likelihood stops rising
        for _ in range(max_iter):
            new, new_score = project(alpha + step * Phi_t.T @ (1.0 / np.maximum(Phi_t @ alpha, 1e-300)))
            if new_score <= score:
                break
            alpha, score = new, new_score
    return alpha


def kliep_weights(
    Xs: Any,
    Xt: Any,
    *,
    n_centers: int = 100,
    bandwidths: float | list[float] | None = None,
    n_folds: int = 5,
    max_iter: int = 100,
    random_state: int | None = 0,
) -> np.ndarray:
    r"""Importance weights of the source points by the KL importance estimation procedure (KLIEP).

    Sugiyama, Nakajima, Kashima, von Bünau & Kawanabe, "Direct Importance Estimation with Model
    Selection and Its Application to Covariate Shift Adaptation", NIPS 2007 (AISM 2008). The model
    :math:`w(x) = \sum_l \alpha_l k(x, c_l)`, centres :math:`c_l` a random subset of the target, solves

    .. math::
        \max_{\alpha \ge 0}\ \sum_j \log w(x'_j) \quad\text{s.t.}\quad \frac{1}{n_s}\sum_i w(x_i) = 1

    by the paper's projected gradient ascent (step sizes 1e3 down to 1e-3, ``max_iter`` steps each); h by
    likelihood cross-validation (mean held-out :math:`\log w`, ``n_folds`` target folds), then a refit on all.

    Parameters
    ----------
    Xs, Xt : array-like of shape (n_s, d) and (n_t, d)
    n_centers : int, default=100
        Number of kernel centres (at most n_t).
    bandwidths : float or list of float, optional
        Candidate h; default 1/4, 1/2, 1, 2, 4 times the median distance of up to 1000 pooled rows.
    n_folds, max_iter, random_state : int
        ``random_state`` seeds the centres, the folds and the median subsample.

    Returns
    -------
    ndarray of shape (n_s,)
        :math:`w(x_i) \ge 0`, with mean 1 over the source.
    """
    Xs, Xt = _pair(Xs, Xt)
    _check("kliep_weights", "n_centers", n_centers, isinstance(n_centers, Integral) and n_centers >= 1, "an int >= 1")
    rng = np.random.default_rng(random_state)
    if bandwidths is None:
        bandwidths = [_median_distance(Xs, Xt, rng) * f for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    grid = [float(h) for h in np.atleast_1d(bandwidths)]
    _check("kliep_weights", "bandwidths", bandwidths, bool(grid) and min(grid) > 0, "None or floats > 0")
    centers = Xt[rng.permutation(len(Xt))[:n_centers]]  # (n_c, d)
    D_t, D_s = _sq_dists(Xt, centers), _sq_dists(Xs, centers)  # (n_t, n_c), (n_s, n_c)
    folds = np.array_split(rng.permutation(len(Xt)), min(n_folds, len(Xt)))

    def cv_score(h: float) -> float:  # mean held-out log w(x'_j), alpha fitted on the other folds
        Phi_t, b = np.exp(D_t / (-2 * h * h)), np.exp(D_s / (-2 * h * h)).mean(0)  # (n_t, n_c), (n_c,)
        fits = [(fold, _kliep_fit(np.delete(Phi_t, fold, axis=0), b, max_iter)) for fold in folds]  # alpha (n_c,)
        return float(np.mean([np.log(np.maximum(Phi_t[fold] @ a, 1e-300)).mean() for fold, a in fits]))

    h = max(grid, key=cv_score) if len(grid) > 1 else grid[0]
    Phi_s = np.exp(D_s / (-2 * h * h))  # (n_s, n_c)
    return Phi_s @ _kliep_fit(np.exp(D_t / (-2 * h * h)), Phi_s.mean(0), max_iter)  # (n_s,)


def _estimator_has(attr: str):
    return lambda self: hasattr(self.estimator_ if hasattr(self, "estimator_") else self._base_estimator(), attr)


class _AdaptedClassifier(ClassifierMixin, BaseEstimator):
    """Input checks and prediction shared by the two classifiers; ``_adapt`` gives the fit's X and sample weights."""

    def _base_estimator(self) -> Any:
        return LogisticRegression(C=1.0, max_iter=2000) if self.estimator is None else self.estimator

    def fit(self, X: Any, y: Any, X_target: Any = None) -> _AdaptedClassifier:
        """Fit on labelled source ``X`` ``(n_s, d)`` and ``y`` ``(n_s,)``, adapted to ``X_target`` ``(n_t, d)``."""
        if X_target is None:
            raise DataError(f"X_target is required: call {type(self).__name__}.fit(X, y, X_target=target_features)")
        X, X_target = _pair(X, X_target, ("X", "X_target"))
        if (y := np.asarray(y)).shape != (len(X),):
            raise DataError(f"y has shape {y.shape}; expected ({len(X)},), one label per row of X")
        if len(classes := np.unique(y)) < 2:
            raise DataError(f"y has only one class ({classes[0]!r}); a classifier needs at least two")
        X_fit, weights = self._adapt(X, X_target)
        self.estimator_ = clone(self._base_estimator())
        self.estimator_.fit(X_fit, y, **({} if weights is None else {"sample_weight": weights}))
        self.classes_, self.n_features_in_ = self.estimator_.classes_, X.shape[1]
        return self

    def _delegate(self, method: str, X: Any) -> np.ndarray:  # check X, then self.estimator_.<method>(X)
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first")
        X = _matrix(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise DataError(f"X has shape {X.shape}; this model was fitted on {self.n_features_in_} features")
        return getattr(self.estimator_, method)(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels ``(n,)`` of target features ``X`` ``(n, d)``, used as they are."""
        return self._delegate("predict", X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        return self._delegate("predict_proba", X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """The estimator's decision function on ``X`` ``(n, d)``."""
        return self._delegate("decision_function", X)


class CoralClassifier(_AdaptedClassifier):
    """A classifier fitted on CORAL-aligned source features; like the paper, it predicts on target features as is.

    Parameters
    ----------
    estimator : classifier, optional
        Cloned before fitting; default ``LogisticRegression(C=1.0, max_iter=2000)``.
    reg : float, default=1.0

    Attributes
    ----------
    estimator_, classes_ : the fitted clone and ``estimator_.classes_``.
    """

    def __init__(self, estimator: Any = None, reg: float = 1.0) -> None:
        self.estimator = estimator
        self.reg = reg

    def _adapt(self, X: np.ndarray, X_target: np.ndarray) -> tuple[np.ndarray, None]:
        _check("CoralClassifier", "reg", self.reg, isinstance(self.reg, Real) and self.reg >= 0, "a float >= 0")
        return coral_transform(X, X_target, self.reg), None


class ReweightedClassifier(_AdaptedClassifier):
    """A classifier fitted on the source with :func:`kmm_weights` or :func:`kliep_weights` (mean 1) as sample_weight.

    Parameters
    ----------
    estimator : classifier, optional
        Cloned before fitting; default ``LogisticRegression(C=1.0, max_iter=2000)``.
    method : {"kmm", "kliep"}, default="kmm"
    random_state : int or None, default=0
    bandwidth : float, optional
        Kernel width; default the method's own (median heuristic for KMM, cross-validation for KLIEP).
    B, eps, n_centers : float, float, int
        KMM's bound on each weight and slack on their mean; KLIEP's number of kernel centres.

    Attributes
    ----------
    estimator_, classes_ : the fitted clone and ``estimator_.classes_``.
    weights_ : ndarray of shape (n_s,), the sample weights used (mean 1).
    """

    def __init__(
        self,
        estimator: Any = None,
        method: str = "kmm",
        random_state: int | None = 0,
        bandwidth: float | None = None,
        B: float = 1000.0,
        eps: float | None = None,
        n_centers: int = 100,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.random_state = random_state
        self.bandwidth = bandwidth
        self.B = B
        self.eps = eps
        self.n_centers = n_centers

    def _adapt(self, X: np.ndarray, X_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        method, owner = self.method, type(self).__name__
        _check(owner, "method", method, method in ("kmm", "kliep"), "one of {'kmm', 'kliep'}")
        if not has_fit_parameter(self._base_estimator(), "sample_weight"):
            raise TransferkitError(f"{owner} needs an estimator whose fit accepts sample_weight")
        h, seed = self.bandwidth, self.random_state
        if method == "kmm":
            weights = kmm_weights(X, X_target, bandwidth=h, B=self.B, eps=self.eps, random_state=seed)
        else:
            weights = kliep_weights(X, X_target, n_centers=self.n_centers, bandwidths=h, random_state=seed)
        self.weights_ = weights * (len(weights) / weights.sum())  # (n_s,) mean 1
        return X, self.weights_
