r"""mSDA: features that a marginalized denoising autoencoder learned on both domains, appended to the source's.

Chen, Xu, Weinberger & Sha, "Marginalized Denoising Autoencoders for Domain Adaptation", ICML 2012.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np

from ..errors import DataError, NotFittedError
from .shallow import _AdaptedClassifier, _check, _matrix

__all__ = ["MarginalizedDenoisingClassifier", "msda_features", "msda_mappings"]

_MSDA_MAX_FEATURES = 8192  # the closed form solves a (d + 1) x (d + 1) system per layer


def msda_mappings(X: Any, noise: float = 0.7, layers: int = 1, reg: float = 1e-5) -> list[np.ndarray]:
    r"""Learn the layers of a marginalized stacked denoising autoencoder (mSDA) on unlabelled rows.

    Chen, Xu, Weinberger & Sha, "Marginalized Denoising Autoencoders for Domain Adaptation", ICML 2012,
    section 3. Each feature of :math:`\bar x = [x; 1]` is dropped with probability :math:`p` (the bias
    never); the linear map :math:`W` that best rebuilds :math:`x` from its corrupted copies, averaged over
    infinitely many corruptions, has the closed form :math:`W = P Q^{-1}` with :math:`S = \bar X^\top \bar X`,
    :math:`q = (1 - p, \dots, 1 - p, 1)`,

    .. math::

        Q_{ij} = S_{ij} q_i q_j \ (i \ne j), \quad Q_{ii} = S_{ii} q_i, \quad P_{ij} = S_{ij} q_j
        \ (i \le d).

    The layer's output :math:`h = \tanh(W \bar x)` is the next layer's input. Fitted on source and target
    rows together, :math:`W` rebuilds a word seen only in one domain from words the two share, which is
    what carries a source classifier over (the paper's Amazon-review experiments).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Unlabelled rows (source and target pooled).
    noise : float, default=0.7
        :math:`p`, in [0, 1).
    layers : int, default=1
        Number of stacked layers (>= 1).
    reg : float, default=1e-5
        Ridge added to :math:`Q`'s diagonal, relative to its mean diagonal.

    Returns
    -------
    list of ndarray of shape (d, d + 1)
        :math:`W` of each layer; the last column multiplies the bias.
    """
    owner = "msda_mappings"
    _check(owner, "noise", noise, isinstance(noise, Real) and 0 <= noise < 1, "a float in [0, 1)")
    _check(owner, "layers", layers, isinstance(layers, Integral) and layers >= 1, "an int >= 1")
    _check(owner, "reg", reg, isinstance(reg, Real) and reg > 0, "a float > 0")
    hidden = _matrix(X, "X").astype(np.float64)  # (n, d)
    if hidden.shape[1] > _MSDA_MAX_FEATURES:
        raise DataError(
            f"X has {hidden.shape[1]} features; mSDA solves a (d + 1)-square system per layer, so expected at "
            f"most {_MSDA_MAX_FEATURES} (reduce the features first, e.g. TF-IDF max_features)"
        )
    mappings = []
    for _ in range(int(layers)):
        biased = np.hstack([hidden, np.ones((len(hidden), 1))])  # (n, d + 1)
        scatter = biased.T @ biased  # (d + 1, d + 1)
        keep = np.full(len(scatter), 1.0 - noise)  # (d + 1,)
        keep[-1] = 1.0
        q_matrix = scatter * np.outer(keep, keep)
        np.fill_diagonal(q_matrix, keep * np.diag(scatter))
        q_matrix[np.diag_indices_from(q_matrix)] += reg * max(float(np.diag(q_matrix).mean()), 1e-12)
        p_matrix = scatter[:-1] * keep[None, :]  # (d, d + 1)
        mapping = np.linalg.solve(q_matrix, p_matrix.T).T  # W = P Q^-1, Q symmetric: (d, d + 1)
        mappings.append(mapping)
        hidden = np.tanh(biased @ mapping.T)  # (n, d)
    return mappings


def msda_features(X: Any, mappings: list[np.ndarray], scale: float = 1.0) -> np.ndarray:
    """``X`` with each mSDA layer's output appended: ``[X, scale h_1, ..., scale h_L]``, shape ``(n, d (L + 1))``.

    ``scale=0`` appends zero columns, which an L2-penalised linear model ignores (its weights there stay 0).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Finite features.
    mappings : list of ndarray of shape (d, d + 1)
        From :func:`msda_mappings`; each layer reads the previous one's (unscaled) output.
    scale : float, default=1.0
        Factor on the appended outputs.

    Returns
    -------
    ndarray of float64, shape (n, d (L + 1))
        ``L = len(mappings)``.

    Raises
    ------
    DataError
        When ``X`` is not a finite, non-empty 2-D array or a mapping's shape does not fit its input.
    """
    X = _matrix(X, "X")
    parts, hidden = [X.astype(np.float64)], X.astype(np.float64)
    for mapping in mappings:
        if mapping.shape != (hidden.shape[1], hidden.shape[1] + 1):
            raise DataError(f"X has {hidden.shape[1]} features but an mSDA layer maps {mapping.shape[1] - 1}")
        hidden = np.tanh(hidden @ mapping[:, :-1].T + mapping[:, -1])  # (n, d)
        parts.append(scale * hidden)
    return np.hstack(parts)


class MarginalizedDenoisingClassifier(_AdaptedClassifier):
    """A classifier fitted on source features with mSDA features learned on source and target appended.

    See :func:`msda_mappings` (Chen et al., ICML 2012). Predictions read target features through the same
    layers. ``weight`` scales the appended features; at ``weight=0`` they are zero columns, so an L2-penalised
    linear estimator (the default) fits the source-alone model, up to solver tolerance.

    Parameters
    ----------
    estimator : classifier, optional
        Cloned before fitting; default ``LogisticRegression(C=1.0, max_iter=2000)``.
    noise : float, default=0.7
        Drop probability of each feature in the marginalized corruption.
    layers : int, default=1
    weight : float, default=1.0
        Scale of the appended denoised features (>= 0).

    Attributes
    ----------
    estimator_, classes_ : the fitted clone and ``estimator_.classes_``.
    mappings_ : list of ndarray of shape (d, d + 1)
    """

    def __init__(self, estimator: Any = None, noise: float = 0.7, layers: int = 1, weight: float = 1.0) -> None:
        self.estimator = estimator
        self.noise = noise
        self.layers = layers
        self.weight = weight

    def _adapt(self, X: np.ndarray, X_target: np.ndarray) -> tuple[np.ndarray, None]:
        owner = type(self).__name__
        _check(owner, "weight", self.weight, isinstance(self.weight, Real) and self.weight >= 0, "a float >= 0")
        _check(owner, "noise", self.noise, isinstance(self.noise, Real) and 0 <= self.noise < 1, "a float in [0, 1)")
        ok = isinstance(self.layers, Integral) and self.layers >= 1
        _check(owner, "layers", self.layers, ok, "an int >= 1")
        self.mappings_ = msda_mappings(np.concatenate([X, X_target]), self.noise, self.layers)
        return msda_features(X, self.mappings_, float(self.weight)), None

    def transform(self, X: Any) -> np.ndarray:
        """The features the estimator reads: ``X`` ``(n, d)`` with the scaled mSDA outputs appended."""
        if not hasattr(self, "mappings_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first")
        return msda_features(X, self.mappings_, float(self.weight))

    def _estimator_input(self, X: np.ndarray) -> np.ndarray:
        return self.transform(X)
