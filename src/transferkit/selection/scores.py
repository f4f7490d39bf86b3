"""Transferability scores, higher is better, pure numpy: :func:`logme` and :func:`hscore` read the
target examples' features, :func:`leep` the source head's probabilities, :func:`nce` its hard labels.

Labels may be any hashable values; they are mapped to ``0..C-1`` with :func:`numpy.unique`,
so no score depends on how the classes are named.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["logme", "leep", "nce", "hscore"]

# exact LogME: the evidence profiled over beta, maximised over log(alpha / beta) by a grid and golden-section steps
_GRID, _GOLDEN_STEPS = 241, 32
_TINY = np.finfo(np.float64).tiny  # guards a division by an exactly zero norm


def _as_matrix(values: Any, name: str) -> np.ndarray:
    """``values`` as a finite float64 ``(N, D)`` array with N, D >= 1 and a usable scale, else :class:`DataError`."""
    if np.iscomplexobj(values):  # a cast to float would drop the imaginary part without a word
        raise DataError(f"{name} holds complex numbers; expected a real (N, D) array")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} could not be read as numbers ({exc}); expected a numeric (N, D) array") from None
    if array.ndim != 2 or 0 in array.shape:
        raise DataError(f"{name} has shape {array.shape} (ndim {array.ndim}); expected a 2-D (N, D) array, N, D >= 1")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise DataError(f"{name} contains {bad} NaN or infinite values; expected finite numbers")
    if (largest := float(np.abs(array).max())) > 1e100:  # squares and Gram matrices would overflow to inf
        raise DataError(f"{name} holds values as large as {largest:.3g}; scale them (e.g. standardise) first")
    if 0 < largest < 1e-100:  # squares underflow to 0: the spectrum would vanish though the values are not zero
        raise DataError(f"{name} holds values no larger than {largest:.3g}; scale them (e.g. standardise) first")
    return array


def _as_codes(labels: Any, name: str, n_rows: int | None, rows_of: str, min_classes: int) -> tuple[np.ndarray, int]:
    """Map hashable labels to integer codes ``(N,)`` in ``0..C-1``; check the length (unless None) and classes."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise DataError(f"{name} has shape {array.shape} (ndim {array.ndim}); expected a 1-D array of labels")
    if n_rows is not None and len(array) != n_rows:
        raise DataError(f"{rows_of} has {n_rows} rows but {name} has {len(array)}; expected one label per row")
    if array.dtype.kind in "fc" and np.isnan(array).any():
        raise DataError(f"{name} contains NaN; expected a label for every row")
    if array.dtype.kind in "fc" and (fractional := array[array != np.round(array)]).size:
        raise DataError(  # every distinct float would be a class of its own: probabilities given by mistake
            f"{name} holds non-integer numbers such as {fractional[0].real:.4g}; expected class labels "
            "(a classifier's predicted labels, not its scores or probabilities)"
        )
    try:
        classes, codes = np.unique(array, return_inverse=True)
    except TypeError as exc:
        raise DataError(f"{name} mixes labels that cannot be compared ({exc}); expected labels of one type") from None
    if len(classes) < min_classes:
        raise DataError(
            f"{name} has {len(classes)} distinct value(s) {classes.tolist()}; expected at least {min_classes} classes"
        )
    return codes.reshape(-1), len(classes)


def _spectrum(features: np.ndarray, *, reference: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero squared singular values ``sigma`` ``(r,)`` and left singular vectors ``u`` ``(N, r)`` of F.

    From eigh of the smaller Gram matrix (``F F^T`` if N <= D, else ``F^T F``): twice as fast as
    an SVD of F. Kept: ``sigma > sigma_max * max(N, D) * eps``; with ``reference=True`` the rule
    of thuml/LogME instead: all ``min(N, D)`` values if N <= D, else singular values > 1e-10.
    """
    n, d = features.shape
    if n <= d:
        sigma, u = np.linalg.eigh(features @ features.T)  # (N,), (N, N)
    else:
        sigma, v = np.linalg.eigh(features.T @ features)  # (D,), (D, D)
        u = features @ v  # (N, D): u * s, normalised below
    sigma = np.clip(sigma, 0.0, None)
    if reference and n <= d:
        keep = np.ones_like(sigma, dtype=bool)
    elif reference:
        keep = np.sqrt(sigma) > 1e-10
    else:
        keep = sigma > sigma.max() * max(n, d) * np.finfo(np.float64).eps
    sigma, u = sigma[keep], u[:, keep]  # (r,), (N, r)
    if n > d:
        u = u / np.sqrt(sigma)  # (N, r) orthonormal columns
    return sigma, u


def _posterior_terms(sigma: np.ndarray, x2: np.ndarray, rest: Any, t: Any) -> tuple[Any, Any, Any]:
    """gamma, ||m||^2 and ||F m - y||^2 at ``t = alpha / beta``, in the singular basis of F.

    ``sigma`` ``(r,)`` or ``(r, 1)``; ``x2``, the squared targets in that basis, ``(r,)`` or ``(r, C)``;
    sums over axis 0, so ``rest`` (||y||^2 outside the basis) and ``t`` are scalars or ``(C,)``.
    """
    gamma = np.sum(sigma / (sigma + t), axis=0)
    m2 = np.sum(sigma * x2 / (t + sigma) ** 2, axis=0)
    res2 = np.sum(x2 / (1.0 + sigma / t) ** 2, axis=0) + rest
    return gamma, m2, res2


def _evidence(alpha: Any, beta: Any, m2: Any, res2: Any, log_det_a: Any, n: int, d: int) -> Any:
    """L(alpha, beta) / N from its parts (see :func:`logme`), elementwise over scalars or ``(C,)`` arrays."""
    fit = n / 2 * np.log(beta) - beta / 2 * res2 - n / 2 * np.log(2 * np.pi)
    return (fit + d / 2 * np.log(alpha) - alpha / 2 * m2 - log_det_a / 2) / n


def _max_evidence_reference(sigma: np.ndarray, x2: np.ndarray, rest: float, n: int, d: int) -> float:
    """Per-sample evidence of one class as thuml/LogME ``_fit_fixed_point`` computes it (see :func:`logme`)."""
    alpha, beta = 1.0, 1.0
    for _ in range(11):
        t = alpha / beta
        gamma, m2, res2 = _posterior_terms(sigma, x2, rest, t)
        alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
        if abs(alpha / beta - t) / t <= 1e-3:
            break
    # as in the reference: m2 and res2 of the last t, not of the final (alpha, beta); log|A| over r terms only
    return float(_evidence(alpha, beta, m2, res2, np.sum(np.log(alpha + beta * sigma)), n, d))


def _profile_evidence(log_t: np.ndarray, sigma: np.ndarray, x2: np.ndarray, rest: np.ndarray, n: int) -> np.ndarray:
    r"""Exact L / N at ``t = alpha / beta`` with beta at its optimum for that t, ``(T, C)``.

    ``log_t`` is ``(T, C)`` (a t per class), or ``(T,)`` shared by every class (then the
    log-determinant is computed once per t and E(t) is one matrix product).

    With :math:`E(t) = \lVert Fm - y\rVert^2 + t\lVert m\rVert^2 = \sum_i x_i^2\, t / (t + \sigma_i) + \text{rest}`,
    :math:`\partial L / \partial\beta = 0` gives :math:`\beta = N / E(t)` and
    :math:`L(t) = -\tfrac N2 \log E(t) + \tfrac r2 \log t - \tfrac12\sum_{i \le r}\log(t + \sigma_i)
    + \tfrac N2(\log N - 1 - \log 2\pi)`: the (D - r) zero eigenvalues cancel exactly.
    """
    t = np.exp(log_t)[..., None]  # (T, 1) shared, or (T, C, 1)
    if log_t.ndim == 1:
        energy = (t / (t + sigma)) @ x2 + rest  # (T, C)
        log_det = np.log(t + sigma).sum(axis=-1, keepdims=True)  # (T, 1)
        log_t = log_t[:, None]  # (T, 1)
    else:
        energy = np.einsum("tcr,rc->tc", t / (t + sigma), x2) + rest  # (T, C)
        log_det = np.log(t + sigma).sum(axis=-1)  # (T, C)
    value = -n / 2 * np.log(np.maximum(energy, _TINY)) + len(sigma) / 2 * log_t - log_det / 2
    return (value + n / 2 * (np.log(n) - 1 - np.log(2 * np.pi))) / n


def _max_evidence_exact(sigma: np.ndarray, x2: np.ndarray, rest: np.ndarray, n: int, d: int) -> np.ndarray:
    """Per-sample maximum evidence ``(C,)`` of all classes at once, exact log|A| (see :func:`logme`).

    ``x2`` is ``(r, C)``, ``rest`` ``(C,)``. L is profiled over beta (closed form), leaving one
    variable, log t: a grid of ``_GRID`` points spanning e^-28 to e^14 times the largest eigenvalue
    finds the best bracket of every class, and golden-section steps refine it to ~1e-7 in log t (the
    evidence, flat at its maximum, to ~1e-13).
    Where the evidence only approaches a supremum at an end of the range (rank-N features that
    fit the targets exactly, or no signal), the end value is that supremum to ~1e-9.
    """
    top = np.log(sigma.max())
    grid = np.linspace(top - 28.0, top + 14.0, _GRID)  # (T,)
    values = _profile_evidence(grid, sigma, x2, rest, n)  # (T, C)
    best = values.argmax(axis=0)  # (C,)
    low, high = grid[np.maximum(best - 1, 0)], grid[np.minimum(best + 1, _GRID - 1)]  # (C,) brackets
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(_GOLDEN_STEPS):
        left, right = high - golden * (high - low), low + golden * (high - low)  # (C,)
        at = _profile_evidence(np.stack([left, right]), sigma, x2, rest, n)  # (2, C)
        keep_left = at[0] > at[1]
        high, low = np.where(keep_left, right, high), np.where(keep_left, low, left)
    refined = _profile_evidence(((low + high) / 2)[None], sigma, x2, rest, n)[0]  # (C,)
    return np.maximum(refined, values.max(axis=0))


def logme(features: Any, labels: Any, *, reference: bool = False) -> float:
    r"""LogME: the log maximum evidence of a Bayesian linear model on the features.

    For each class ``k`` the one-vs-rest targets :math:`y \in \{0, 1\}^N` are fitted by
    :math:`y = F w + \varepsilon` with prior :math:`w \sim N(0, \alpha^{-1} I)` and noise
    :math:`\varepsilon \sim N(0, \beta^{-1} I)`. The log evidence is

    .. math::
        L(\alpha, \beta) = \tfrac{N}{2}\log\beta + \tfrac{D}{2}\log\alpha - \tfrac{N}{2}\log 2\pi
        - \tfrac{\beta}{2}\lVert F m - y\rVert^2 - \tfrac{\alpha}{2}\lVert m\rVert^2 - \tfrac12\log|A|,

    with :math:`A = \alpha I + \beta F^\top F` and :math:`m = \beta A^{-1} F^\top y`. It is
    maximised by the fixed point :math:`\gamma = \sum_i \beta\sigma_i / (\alpha + \beta\sigma_i)`,
    :math:`\alpha = \gamma / \lVert m\rVert^2`, :math:`\beta = (N - \gamma) / \lVert F m - y\rVert^2`
    over the eigenvalues :math:`\sigma_i` of :math:`F^\top F`, all in the singular basis of F,
    which is computed once and shared by the classes. The score is the mean over classes of
    :math:`L / N`. The exact mode maximises the same L without the fixed point: for a given
    :math:`t = \alpha/\beta` the best :math:`\beta` has a closed form, and the remaining
    one-dimensional profile :math:`L(t)` is maximised globally on a grid plus golden-section
    steps (the fixed point can take thousands of steps where N < D, and can stop at a lower
    stationary point).

    Parameters
    ----------
    features : array-like, shape (N, D)
        Pre-trained features of the labelled target examples (not centred or scaled here).
    labels : array-like, shape (N,)
        Target labels, any hashable values; at least two classes.
    reference : bool, default False
        ``False``: the exact evidence, with :math:`\log|A| = \sum_{i \le r}\log(\alpha + \beta\sigma_i)
        + (D - r)\log\alpha` (r = rank of F), at its maximum over (α, β) (see above).
        ``True``: reproduce thuml/LogME ``LogME._fit_fixed_point`` (the numbers published
        with the paper): at most 11 iterations stopping when the relative change of
        :math:`\alpha/\beta` is at most 1e-3, ``+1e-5`` in the update denominators, and,
        where N < D, :math:`\log|A|` summed over the ``min(N, D)`` non-zero eigenvalues only,
        which leaves out :math:`(D - r)/2 \cdot \log\alpha` and inflates the score (often to
        tens per sample). Where N > D the modes agree (to ~1e-6 on standardised features)
        unless the reference stops short or :math:`\lVert m\rVert^2` is near its 1e-5: the
        reference depends on the scale of the features, the exact evidence does not.

    Returns
    -------
    float
        LogME, the mean over classes of the maximum log evidence per sample; higher is better.

    Raises
    ------
    DataError
        If ``features`` is not a finite 2-D array or all zero, ``labels`` is not 1-D, the
        lengths differ, or there is only one class.

    References
    ----------
    .. [1] You, K., Liu, Y., Wang, J., Long, M. "LogME: Practical Assessment of Pre-trained
       Models for Transfer Learning", ICML 2021.
    """
    f = _as_matrix(features, "features")  # (N, D)
    n, d = f.shape
    codes, n_classes = _as_codes(labels, "labels", n, "features", min_classes=2)
    if not f.any():
        raise DataError(f"features of shape {f.shape} are all zero; expected informative features")
    sigma, u = _spectrum(f, reference=reference)  # (r,), (N, r)
    targets = np.eye(n_classes)[codes]  # (N, C)
    x = u.T @ targets  # (r, C): targets in the singular basis
    rest = targets.sum(axis=0) - (x**2).sum(axis=0)  # (C,): ||y||^2 outside the column space of F
    if reference:
        return float(np.mean([_max_evidence_reference(sigma, x[:, k] ** 2, rest[k], n, d) for k in range(n_classes)]))
    rest = np.zeros(n_classes) if len(sigma) == n else np.clip(rest, 0.0, None)  # rounding noise removed
    return float(np.mean(_max_evidence_exact(sigma, x**2, rest, n, d)))


def leep(source_probs: Any, labels: Any) -> float:
    r"""LEEP: the log expected empirical prediction of the source head on the target labels.

    With source probabilities :math:`\theta(x_i)` over source classes z,

    .. math::
        P(y, z) = \tfrac1N \sum_i \theta(x_i)_z 1[y_i = y], \quad P(y \mid z) = P(y, z) / P(z),
        \quad \mathrm{LEEP} = \tfrac1N \sum_i \log \sum_z P(y_i \mid z)\, \theta(x_i)_z.

    Parameters
    ----------
    source_probs : array-like, shape (N, Z)
        The source head's class probabilities of each target example; non-negative, each
        row summing to 1 within 1e-3 (rows are then renormalised exactly).
    labels : array-like, shape (N,)
        Target labels, any hashable values; at least two classes.

    Returns
    -------
    float
        LEEP, at most 0 (the average log-likelihood of the labels); higher is better.

    Raises
    ------
    DataError
        If ``source_probs`` is not a finite 2-D array, has negative entries or rows not
        summing to 1, or ``labels`` is not 1-D, of another length, or has one class.

    References
    ----------
    .. [1] Nguyen, C. V., Hassner, T., Seeger, M., Archambeau, C. "LEEP: A New Measure to
       Evaluate Transferability of Learned Representations", ICML 2020.
    """
    theta = _as_matrix(source_probs, "source_probs")  # (N, Z)
    codes, n_classes = _as_codes(labels, "labels", theta.shape[0], "source_probs", min_classes=2)
    if (theta < 0).any():
        raise DataError(f"source_probs has minimum {theta.min():.4g}; expected probabilities >= 0")
    row_sums = theta.sum(axis=1)  # (N,)
    worst = int(np.argmax(np.abs(row_sums - 1.0)))
    if abs(row_sums[worst] - 1.0) > 1e-3:
        raise DataError(f"source_probs row {worst} sums to {row_sums[worst]:.6g}; expected each row to sum to 1")
    theta = theta / row_sums[:, None]  # (N, Z)
    joint = np.eye(n_classes)[codes].T @ theta / len(theta)  # (C, Z): P(y, z)
    marginal = joint.sum(axis=0)  # (Z,): P(z)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # (C, Z): P(y | z)
    expected = np.einsum("iz,iz->i", theta, conditional[codes])  # (N,): sum_z P(y_i | z) theta_iz
    return float(np.mean(np.log(expected)))


def nce(source_labels: Any, labels: Any) -> float:
    r"""NCE: the negative conditional entropy of the target labels given the source labels.

    From the empirical joint distribution of source labels Z and target labels Y:

    .. math::
        \mathrm{NCE} = -H(Y \mid Z) = \sum_{y, z} P(y, z) \log \frac{P(y, z)}{P(z)}

    in nats. It is 0 when Y is a function of Z and :math:`-H(Y)` when they are independent.

    Parameters
    ----------
    source_labels : array-like, shape (N,)
        The source model's predicted (hard) label of each target example, any hashable.
    labels : array-like, shape (N,)
        Target labels, any hashable values; at least two classes.

    Returns
    -------
    float
        NCE, at most 0; higher is better.

    Raises
    ------
    DataError
        If either argument is not 1-D, they differ in length, or ``labels`` has one class.

    References
    ----------
    .. [1] Tran, A. T., Nguyen, C. V., Hassner, T. "Transferability and Hardness of
       Supervised Classification Tasks", ICCV 2019.
    """
    z, n_source = _as_codes(source_labels, "source_labels", None, "", min_classes=1)  # (N,)
    y, n_classes = _as_codes(labels, "labels", len(z), "source_labels", min_classes=2)  # (N,)
    joint = np.bincount(z * n_classes + y, minlength=n_source * n_classes).reshape(n_source, n_classes) / len(z)
    marginal = joint.sum(axis=1, keepdims=True)  # (Z, 1): P(z) > 0, joint above is (Z, C): P(z, y)
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log((joint / marginal)[seen])))


def hscore(features: Any, labels: Any, *, shrinkage: float | str | None = "ledoit-wolf") -> float:
    r"""H-score: how much of the feature covariance the class-conditional means explain.

    .. math::
        H(f) = \mathrm{tr}\left(\mathrm{cov}(f)^{+}\, \mathrm{cov}(E[f \mid y])\right)

    with population (1/N) moments and the pseudo-inverse :math:`^{+}` (rank threshold
    ``sigma_max * max(N, D) * eps``), computed without a D x D inverse as
    :math:`H = \sum_c \lVert U^\top 1_c \rVert^2 / N_c`, :math:`F_c = U S V^\top` the centred
    features. It lies in [0, C - 1] and equals C - 1 for any labels where :math:`F_c` has rank
    N - 1 (e.g. N <= D): it only separates backbones when N is well above D.

    Parameters
    ----------
    features : array-like, shape (N, D)
        Pre-trained features of the labelled target examples.
    labels : array-like, shape (N,)
        Target labels, any hashable values; at least two classes.
    shrinkage : "ledoit-wolf", float in [0, 1], or None
        The shrinkage-based H-score of Ibrahim et al. [2]_, which stays informative when
        N <= D: cov(f) is replaced by :math:`\Sigma_\alpha = (1-\alpha)\Sigma + \alpha\mu I`
        (:math:`\mu = \mathrm{tr}\,\Sigma / D`), and the score is
        :math:`\mathrm{tr}(\Sigma_\alpha^{-1} (1-\alpha)\,\mathrm{cov}(E[f\mid y]))`
        :math:`= (1-\alpha) \sum_i \lambda_i p_i / ((1-\alpha)\lambda_i + \alpha\mu)` with
        :math:`\lambda_i` the eigenvalues of :math:`\Sigma`, :math:`p_i = \sum_c (u_i^\top 1_c)^2 / N_c`.
        ``"ledoit-wolf"`` (default) takes α from the Ledoit-Wolf estimate; ``None`` or 0 gives the
        original H-score above.

    Returns
    -------
    float
        H-score, higher is better.

    Raises
    ------
    DataError
        If ``features`` is not a finite 2-D array or is constant, ``labels`` is not 1-D,
        the lengths differ, or there is only one class.

    References
    ----------
    .. [1] Bao, Y., Li, Y., Huang, S.-L., Zhang, L., Zheng, L., Zamir, A., Guibas, L.
       "An Information-Theoretic Approach to Transferability in Task Transfer Learning",
       ICIP 2019.
    .. [2] Ibrahim, S., Ponomareva, N., Mazumder, R. "Newer is not always better: Rethinking
       transferability metrics, their peculiarities, stability and performance", ECML PKDD 2022.
    """
    f = _as_matrix(features, "features")  # (N, D)
    codes, n_classes = _as_codes(labels, "labels", f.shape[0], "features", min_classes=2)
    if (f == f[0]).all():
        raise DataError(f"features of shape {f.shape} are the same for every row; expected varying features")
    centred = f - f.mean(axis=0)  # (N, D)
    sigma, u = _spectrum(centred)  # (r,), (N, r): sigma = N * eigenvalues of cov(f)
    targets = np.eye(n_classes)[codes]  # (N, C)
    projected = u.T @ targets  # (r, C): U^T 1_c
    share = (projected**2 / targets.sum(axis=0)).sum(axis=1)  # (r,): p_i
    if shrinkage == "ledoit-wolf":
        from sklearn.covariance import ledoit_wolf_shrinkage

        # scale-free, but its fourth powers overflow (to NaN) for |f| above ~1e75; only then is f rescaled
        largest = float(np.abs(f).max())
        alpha = float(ledoit_wolf_shrinkage(f / largest if largest > 1e50 else f))
    elif shrinkage is None:
        alpha = 0.0
    elif isinstance(shrinkage, (int, float)) and not isinstance(shrinkage, bool) and 0 <= shrinkage <= 1:
        alpha = float(shrinkage)
    else:
        raise DataError(f"shrinkage must be 'ledoit-wolf', a float in [0, 1] or None; got {shrinkage!r}")
    if alpha == 0.0:
        return float(share.sum())
    eigen = sigma / f.shape[0]  # (r,)
    mu = eigen.sum() / f.shape[1]
    return float((1 - alpha) * np.sum(eigen * share / ((1 - alpha) * eigen + alpha * mu)))
