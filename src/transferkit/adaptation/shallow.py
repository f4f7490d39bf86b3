r"""Shallow domain adaptation of features: labelled source ``(Xs, ys)``, unlabelled target ``Xt``, the same labels.

CORAL matches covariances; KMM and KLIEP weight the source by :math:`p_t / p_s` with Gaussian kernels
:math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 h^2))`; self-training adds the target with its own
most confident predictions as labels. mSDA, which changes the features, is in :mod:`.msda`.
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
from ._checks import check_one_label_per_row

__all__ = [
    "CoralClassifier",
    "ReweightedClassifier",
    "SelfTrainingClassifier",
    "coral_transform",
    "kliep_weights",
    "kmm_weights",
]

_CHUNK = 4096  # rows per block wherever a whole (n, d) float64 copy or (n, n_t) kernel could be large


def _check(owner: str, name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok or isinstance(value, bool):
        raise TransferkitError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")


def _matrix(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite ``(n, d)`` array: float32 stays float32, anything else becomes float64."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":  # strings would fail inside astype, complex lose their imaginary part
        raise DataError(f"{name} has dtype {array.dtype}; expected real numbers")
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
    _check("coral_transform", "reg", reg, isinstance(reg, Real) and 0 <= reg < math.inf, "a float >= 0")
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

    def _check_fit(self, X: Any, y: Any, X_target: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if X_target is None:
            raise DataError(f"X_target is required: call {type(self).__name__}.fit(X, y, X_target=target_features)")
        X, X_target = _pair(X, X_target, ("X", "X_target"))
        y = check_one_label_per_row(y, len(X), "y", "X")
        try:
            classes = np.unique(y)
        except TypeError as exc:
            raise DataError(f"y mixes labels that cannot be compared ({exc}); expected labels of one type") from None
        if len(classes) < 2:
            raise DataError(f"y has only one class ({classes[0]!r}); a classifier needs at least two")
        return X, y, X_target

    def fit(self, X: Any, y: Any, X_target: Any = None) -> _AdaptedClassifier:
        """Fit on labelled source ``X`` ``(n_s, d)`` and ``y`` ``(n_s,)``, adapted to ``X_target`` ``(n_t, d)``."""
        X, y, X_target = self._check_fit(X, y, X_target)
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
        return getattr(self.estimator_, method)(self._estimator_input(X))

    def _estimator_input(self, X: np.ndarray) -> np.ndarray:
        """What the fitted estimator reads for target features ``X`` ``(n, d)``: ``X`` itself by default."""
        return X

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
        ok = isinstance(self.reg, Real) and 0 <= self.reg < math.inf
        _check("CoralClassifier", "reg", self.reg, ok, "a float >= 0")
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
        ok = not isinstance(seed, Integral) or seed >= 0  # numpy's seeding would raise its own ValueError
        _check(owner, "random_state", seed, ok, "None or an int >= 0")
        if method == "kmm":
            weights = kmm_weights(X, X_target, bandwidth=h, B=self.B, eps=self.eps, random_state=seed)
        else:
            weights = kliep_weights(X, X_target, n_centers=self.n_centers, bandwidths=h, random_state=seed)
        self.weights_ = weights * (len(weights) / weights.sum())  # (n_s,) mean 1
        return X, self.weights_


class SelfTrainingClassifier(_AdaptedClassifier):
    r"""Class-balanced self-training: refit on the source plus the target's most confident predictions.

    Self-training (pseudo-labelling) after Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised
    Learning Method for Deep Neural Networks", ICML 2013 workshop, with the class-balanced, growing
    selection of Zou, Yu, Kumar & Wang, "Unsupervised Domain Adaptation for Semantic Segmentation via
    Class-Balanced Self-Training", ECCV 2018 (CBST). With :math:`f^{(0)}` fitted on the source alone, round
    :math:`r = 1 .. R`:

    1. margins on the target, :math:`m_{jc} = \log f^{(r-1)}_c(x'_j) - \max_{c' \ne c} \log f^{(r-1)}_{c'}(x'_j)`;
    2. the selected fraction grows linearly, :math:`p_r = p_0 + (p_1 - p_0)\,(r - 1) / (R - 1)`;
    3. each class :math:`c` labels the :math:`k_c = \mathrm{round}(p_r\, n_t\, \pi_c)` target points of largest
       :math:`m_{jc}`, :math:`\pi_c` the source's class shares (a point claimed twice keeps its larger margin);
    4. :math:`f^{(r)}` minimises :math:`\sum_i \ell(f(x_i), y_i) + \lambda \sum_{j\ \mathrm{selected}}
       \ell(f(x'_j), \hat y_j)`, i.e. ``sample_weight`` 1 for the source, :math:`\lambda` = ``weight`` for
       the pseudo-labelled target.

    Pseudo-labels are recomputed from scratch each round (a wrong one can be dropped later). The class
    quotas :math:`k_c` follow the *source* class shares rather than CBST's share of each predicted class:
    on sentiment pairs the source model predicts one class too often on the target, and quotas per
    predicted class reinforce that round after round (measured: target accuracy fell by 3 to 12 points).
    ``weight=0`` never reads the target: the result is the estimator fitted on the source alone.

    Default estimator (``estimator=None``): ``LogisticRegression(C=1.0, max_iter=2000)``; when the pooled
    rows are fewer than the features (``n_s + n_t < d``, e.g. TF-IDF), it is fitted in the row space of
    ``[X; X_target]`` and mapped back, which leaves the L2-penalised optimum unchanged (it lies in that
    span) and is much faster.

    Parameters
    ----------
    estimator : classifier, optional
        Cloned before each fit; needs ``predict_proba`` and a ``fit`` that accepts ``sample_weight``.
    weight : float, default=0.3
        :math:`\lambda`, the sample weight of each pseudo-labelled target point (>= 0).
    rounds : int, default=5
        :math:`R` (>= 1).
    start, end : float, default=0.2 and 0.8
        :math:`p_0` and :math:`p_1`, the fraction of the target labelled in the first and last round
        (``0 < start <= end <= 1``).

    Attributes
    ----------
    estimator_, classes_ : the last round's fitted clone and ``estimator_.classes_``.
    pseudo_labels_ : ndarray of int, shape (n_t,)
        The last round's label of each target point as an index into ``classes_``; -1 where a
        point was left out (so ``classes_[pseudo_labels_[i]]`` is the label where it is >= 0).
    n_pseudo_labelled_ : list of int
        Target points labelled in each round.
    """

    def __init__(
        self, estimator: Any = None, weight: float = 0.3, rounds: int = 5, start: float = 0.2, end: float = 0.8
    ) -> None:
        self.estimator = estimator
        self.weight = weight
        self.rounds = rounds
        self.start = start
        self.end = end

    def _check_params(self) -> None:
        owner = type(self).__name__
        _check(owner, "weight", self.weight, isinstance(self.weight, Real) and self.weight >= 0, "a float >= 0")
        _check(owner, "rounds", self.rounds, isinstance(self.rounds, Integral) and self.rounds >= 1, "an int >= 1")
        _check(owner, "start", self.start, isinstance(self.start, Real) and 0 < self.start <= 1, "a float in (0, 1]")
        ok = isinstance(self.end, Real) and isinstance(self.start, Real) and self.start <= self.end <= 1
        _check(owner, "end", self.end, ok, "a float in [start, 1]")
        base = self._base_estimator()
        if not has_fit_parameter(base, "sample_weight") or not hasattr(base, "predict_proba"):
            raise TransferkitError(f"{owner} needs an estimator with predict_proba whose fit accepts sample_weight")

    def fit(self, X: Any, y: Any, X_target: Any = None) -> SelfTrainingClassifier:
        """Fit on labelled source ``X`` ``(n_s, d)`` and ``y`` ``(n_s,)`` and unlabelled ``X_target`` ``(n_t, d)``.

        Parameters
        ----------
        X : array-like of shape (n_s, d)
            Source features, finite.
        y : array-like of shape (n_s,)
            Source labels, at least two classes.
        X_target : array-like of shape (n_t, d)
            Target features, finite; required despite the ``None`` default.

        Returns
        -------
        self

        Raises
        ------
        DataError
            When ``X_target`` is missing, an array is not a finite 2-D one, the widths differ, ``y`` does
            not give one label per row of ``X``, or ``y`` has a single class.
        TransferkitError
            On a bad setting, or an estimator without ``predict_proba`` or ``sample_weight`` in ``fit``.
        """
        X, y, X_target = self._check_fit(X, y, X_target)
        self._check_params()
        self.n_features_in_, n_t = X.shape[1], len(X_target)
        self.pseudo_labels_, self.n_pseudo_labelled_ = np.full(n_t, -1, dtype=np.int64), []
        if self.weight == 0:  # the target would weigh nothing: fit on the source alone, exactly
            self.estimator_ = clone(self._base_estimator()).fit(X, y)
            self.classes_ = self.estimator_.classes_
            return self
        basis = None  # (d, r): the row space of [X; X_target] where the default L2 logistic regression is fitted
        if self.estimator is None and len(X) + n_t < X.shape[1]:
            pooled = np.concatenate([X, X_target]).astype(np.float64)  # (n_s + n_t, d)
            _, singular, vt = np.linalg.svd(pooled, full_matrices=False)  # vt (n_s + n_t, d)
            basis = vt[: int((singular > singular[0] * 1e-10).sum())].T
        source, target = (X, X_target) if basis is None else (X @ basis, X_target @ basis)  # (n_s, r), (n_t, r)
        classes, counts = np.unique(y, return_counts=True)
        shares = counts / counts.sum()  # (K,) the source's class shares pi_c
        model = clone(self._base_estimator()).fit(source, y)
        for r in range(self.rounds):
            fraction = self.start + (self.end - self.start) * r / max(self.rounds - 1, 1)
            labels = self._select(np.asarray(model.predict_proba(target)), shares, fraction)  # (n_t,) index or -1
            chosen = np.flatnonzero(labels >= 0)
            weights = np.concatenate([np.ones(len(source)), np.full(len(chosen), float(self.weight))])
            model = clone(self._base_estimator()).fit(
                np.concatenate([source, target[chosen]]),
                np.concatenate([y, classes[labels[chosen]]]),
                sample_weight=weights,
            )
            self.pseudo_labels_, self.n_pseudo_labelled_ = labels, [*self.n_pseudo_labelled_, len(chosen)]
        if basis is not None:  # back to the d input features: w = w_r V_r^T
            model.coef_ = model.coef_ @ basis.T  # (K or 1, d)
            model.n_features_in_ = X.shape[1]
        self.estimator_, self.classes_ = model, model.classes_
        return self

    @staticmethod
    def _select(proba: np.ndarray, shares: np.ndarray, fraction: float) -> np.ndarray:
        """Class index ``(n_t,)`` of each pseudo-labelled target point, -1 for the rest; ``proba`` ``(n_t, K)``."""
        log_p = np.log(np.clip(proba.astype(np.float64), 1e-300, None))  # (n_t, K)
        labels, claimed = np.full(len(proba), -1, dtype=np.int64), np.full(len(proba), -np.inf)
        for c in range(proba.shape[1]):
            margin = log_p[:, c] - np.delete(log_p, c, axis=1).max(axis=1)  # (n_t,)
            top = np.argsort(-margin, kind="stable")[: int(round(fraction * len(proba) * shares[c]))]
            top = top[margin[top] > claimed[top]]  # a point claimed by two classes keeps the larger margin
            labels[top], claimed[top] = c, margin[top]
        return labels
