"""Domain distance between two feature sets: maximum mean discrepancy and proxy A-distance.

Both take two ``(N, D)`` and ``(M, D)`` arrays of features (e.g. a backbone's embeddings of
the source and of the target images); larger means further apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import DataError
from .scores import _as_matrix

__all__ = ["mmd", "proxy_a_distance"]

_KERNELS = ("gaussian", "linear")
_FOLDS = 5


def _pair(a: Any, b: Any, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as finite float64 matrices with the same number of columns and >= ``min_rows`` rows."""
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")  # (N, D), (M, D)
    if a.shape[1] != b.shape[1]:
        raise DataError(f"a has {a.shape[1]} columns but b has {b.shape[1]}; expected features of the same dimension")
    for name, x in (("a", a), ("b", b)):
        if len(x) < min_rows:
            raise DataError(f"{name} has {len(x)} row(s); expected at least {min_rows}")
    return a, b


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(N, M)`` squared Euclidean distances between the rows of x ``(N, D)`` and y ``(M, D)``."""
    sq = (x**2).sum(axis=1)[:, None] + (y**2).sum(axis=1)[None, :] - 2.0 * x @ y.T  # (N, M)
    return np.clip(sq, 0.0, None)


def _median_bandwidth(pooled: np.ndarray) -> float:
    """Median Euclidean distance between distinct rows of ``pooled`` ``(N + M, D)``; 1.0 if all coincide."""
    dist = np.sqrt(_squared_distances(pooled, pooled)[np.triu_indices(len(pooled), k=1)])  # (P,) pairs i < j
    positive = dist[dist > 0]
    if len(positive) == 0:
        return 1.0
    median = float(np.median(dist))
    return median if median > 0 else float(np.median(positive))


def mmd(a: Any, b: Any, *, kernel: str = "gaussian", bandwidth: float | None = None) -> float:
    r"""Squared maximum mean discrepancy between the samples ``a`` and ``b``.

    ``kernel="gaussian"``: the unbiased U-statistic of MMD² (Gretton et al. 2012, Lemma 6) with
    :math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 h^2))`,

    .. math::
        \mathrm{MMD}^2_u = \frac{1}{N(N-1)}\sum_{i \ne j} k(a_i, a_j)
        + \frac{1}{M(M-1)}\sum_{i \ne j} k(b_i, b_j) - \frac{2}{NM}\sum_{i, j} k(a_i, b_j).

    It is unbiased, so it can be slightly negative when the two distributions are equal.
    ``kernel="linear"``: :math:`k(x, y) = x^\top y`, for which the biased (V-statistic) MMD²
    is the squared distance of the means :math:`\lVert \bar a - \bar b\rVert^2`, always >= 0 and
    biased upwards (by :math:`\mathrm{tr}\,\mathrm{cov}(a)/N + \mathrm{tr}\,\mathrm{cov}(b)/M` in expectation).

    Parameters
    ----------
    a : array-like, shape (N, D)
        First sample (N >= 2).
    b : array-like, shape (M, D)
        Second sample (M >= 2), same D.
    kernel : {"gaussian", "linear"}, default "gaussian"
    bandwidth : float, optional
        Gaussian kernel width h. ``None`` (default): the median heuristic, the median
        Euclidean distance between distinct rows of the pooled sample (Gretton et al. 2012);
        this costs O((N + M)²) memory. Ignored for the linear kernel.

    Returns
    -------
    float
        MMD² as described above (not its square root).

    Raises
    ------
    DataError
        If a sample is not a finite 2-D array with at least two rows, the dimensions differ,
        the kernel is unknown or the bandwidth is not a positive finite number.

    References
    ----------
    .. [1] Gretton, A., Borgwardt, K. M., Rasch, M. J., Schölkopf, B., Smola, A. "A Kernel
       Two-Sample Test", JMLR 13, 2012.
    """
    if kernel not in _KERNELS:
        raise DataError(f"kernel is {kernel!r}; expected one of {', '.join(map(repr, _KERNELS))}")
    a, b = _pair(a, b, min_rows=2)  # (N, D), (M, D)
    if kernel == "linear":
        gap = a.mean(axis=0) - b.mean(axis=0)  # (D,)
        return float(gap @ gap)
    if bandwidth is None:
        bandwidth = _median_bandwidth(np.vstack([a, b]))
    elif (
        isinstance(bandwidth, (bool, np.bool_))
        or not isinstance(bandwidth, (int, float, np.integer, np.floating))
        or not (np.isfinite(bandwidth) and bandwidth > 0)
    ):
        raise DataError(f"bandwidth is {bandwidth!r}; expected a positive finite number or None")
    scale = 2.0 * float(bandwidth) ** 2
    k_aa = np.exp(-_squared_distances(a, a) / scale)  # (N, N)
    k_bb = np.exp(-_squared_distances(b, b) / scale)  # (M, M)
    k_ab = np.exp(-_squared_distances(a, b) / scale)  # (N, M)
    n, m = len(a), len(b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (n * (n - 1))  # off-diagonal mean
    within_b = (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def proxy_a_distance(a: Any, b: Any, *, seed: int = 0) -> float:
    r"""Proxy A-distance: how well a linear classifier tells the two samples apart.

    .. math::
        \hat d_A = 2 (1 - 2 \varepsilon)

    where :math:`\varepsilon` is the held-out balanced error (the mean of the two per-domain
    error rates, so that chance is 0.5 even when N != M) of an L2 logistic regression (C = 1) on
    standardised features predicting the domain, from stratified k-fold cross-validation
    (k = 5, or fewer when a sample has fewer than 5 rows; folds shuffled with ``seed``).

    The value lies in [-2, 2] and is not clipped: about 0 when the domains cannot be told
    apart (slightly negative values are chance), 2 when they are perfectly separable.

    Parameters
    ----------
    a : array-like, shape (N, D)
        First sample (N >= 2).
    b : array-like, shape (M, D)
        Second sample (M >= 2), same D.
    seed : int, default 0
        Seed of the fold shuffling, in [0, 2**32 - 1] (the classifier itself is deterministic).

    Returns
    -------
    float
        The proxy A-distance.

    Raises
    ------
    DataError
        If a sample is not a finite 2-D array with at least two rows, the dimensions differ or the
        seed is out of range.

    References
    ----------
    .. [1] Ben-David, S., Blitzer, J., Crammer, K., Pereira, F. "Analysis of Representations
       for Domain Adaptation", Advances in NIPS 19, 2007.
    .. [2] Ganin, Y. et al. "Domain-Adversarial Training of Neural Networks", JMLR 17, 2016.
    """
    a, b = _pair(a, b, min_rows=2)  # (N, D), (M, D)
    x = np.vstack([a, b])  # (N + M, D)
    domain = np.repeat([0, 1], [len(a), len(b)])  # (N + M,)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise DataError(f"seed is {seed!r}; expected an int >= 0 and < 2**32")
    folds = StratifiedKFold(n_splits=min(_FOLDS, len(a), len(b)), shuffle=True, random_state=seed)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, class_weight="balanced"))
    predicted = cross_val_predict(classifier, x, domain, cv=folds)  # (N + M,)
    error = 0.5 * (np.mean(predicted[domain == 0] != 0) + np.mean(predicted[domain == 1] != 1))
    return float(2.0 * (1.0 - 2.0 * error))
