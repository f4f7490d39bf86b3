r"""Parameter transfer for logistic regression: a prior centred on the source model's weights.

Chelba & Acero, "Adaptation of maximum entropy capitalizer: Little data can help a lot",
Computer Speech & Language 20(4), 2006. A model trained on a data-rich source task becomes
the *mean* of a Gaussian prior on the target model's weights, so the few target labels only
have to pay for moving away from it. The target weights :math:`W (K, D)` and biases
:math:`b (K,)` minimise

.. math::

    \sum_i \mathrm{CE}(y_i, W x_i + b) + \frac{1}{2C}\lVert W\rVert^2
    + \lambda\big(\lVert W - W_s\rVert^2 + \lVert b - b_s\rVert^2\big)

(binary problems: one weight vector and the logistic loss, as in scikit-learn). ``λ = 0`` is
the target-only logistic regression (scikit-learn's, with the same ``C``); ``λ → ∞`` returns
the source model. ``λ`` is chosen by stratified cross-validation of the log-loss on the
*target* labels.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold

from .._estimator_checks import reset_fitted
from ..data.user import check_labels
from ..errors import DataError, NotFittedError, TransferkitError

__all__ = ["TransferLogisticRegression", "DEFAULT_LAMBDAS"]

DEFAULT_LAMBDAS = (0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)


def _source_parameters(source: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(coef (K or 1, D), intercept (K or 1,), classes)`` of a fitted linear classifier or a dict of them."""
    if isinstance(source, dict):
        coef, intercept, classes = source.get("coef"), source.get("intercept"), source.get("classes")
    else:
        coef, intercept = getattr(source, "coef_", None), getattr(source, "intercept_", None)
        classes = getattr(source, "classes_", None)
    if coef is None or intercept is None or classes is None:
        raise TransferkitError(
            "The 'source' parameter of TransferLogisticRegression must be a fitted linear classifier (coef_, "
            "intercept_, classes_) or a dict with 'coef', 'intercept' and 'classes'. "
            f"Got {type(source).__name__} instead."
        )
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    return coef, np.atleast_1d(np.asarray(intercept, dtype=np.float64)), np.asarray(classes)


def _fit_weights(
    X: np.ndarray, codes: np.ndarray, prior: np.ndarray, C: float, lam: float, max_iter: int
) -> np.ndarray:
    """Minimise the objective above; parameters packed as ``(K', D + 1)`` rows ``[W | b]``, K' = 1 for binary."""
    n, d = X.shape
    k = prior.shape[0]
    Xb = np.hstack([X, np.ones((n, 1))])  # (n, D + 1)
    l2_mask = np.r_[np.ones(d), 0.0]  # the plain L2 leaves the bias alone, as scikit-learn does
    if k == 1:
        sign = np.where(codes == 1, 1.0, -1.0)  # (n,)

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            theta = flat.reshape(1, d + 1)
            z = Xb @ theta[0]  # (n,)
            loss = -log_expit(sign * z).sum()
            grad = (-(sign * expit(-sign * z)) @ Xb)[None, :]  # (1, D + 1)
            return _penalised(loss, grad, theta, prior, l2_mask, C, lam)
    else:
        onehot = np.eye(k)[codes]  # (n, K)

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            theta = flat.reshape(k, d + 1)
            z = Xb @ theta.T  # (n, K)
            log_norm = logsumexp(z, axis=1)  # (n,)
            loss = (log_norm - (z * onehot).sum(1)).sum()
            grad = (np.exp(z - log_norm[:, None]) - onehot).T @ Xb  # (K, D + 1)
            return _penalised(loss, grad, theta, prior, l2_mask, C, lam)

    start = prior if lam > 0 else np.zeros_like(prior)
    result = minimize(
        objective,
        start.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-13},
    )
    return result.x.reshape(prior.shape)


def _penalised(
    loss: float, grad: np.ndarray, theta: np.ndarray, prior: np.ndarray, mask: np.ndarray, C: float, lam: float
) -> tuple[float, np.ndarray]:
    shrink = theta * mask  # (K', D + 1)
    moved = theta - prior
    value = loss + 0.5 * (shrink**2).sum() / C + lam * (moved**2).sum()
    return value, (grad + shrink / C + 2 * lam * moved).ravel()


class TransferLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression pulled toward a source model's weights by ``λ‖w − w_source‖²``.

    Parameters
    ----------
    source : fitted linear classifier or dict
        Anything with ``coef_``, ``intercept_`` and ``classes_`` (a scikit-learn
        ``LogisticRegression``, a :class:`~transferkit.strategies.ProbeHead`), trained on the
        source task over the same features and the same classes.
    lam : float or "cv"
        The pull toward the source; ``"cv"`` chooses it from ``lambdas`` by stratified
        cross-validation of the log-loss on the target labels.
    lambdas : tuple of float
        Candidates for ``"cv"``.
    C : float
        Inverse strength of the ordinary L2 penalty (the target-only model's).
    cv : int
        Folds for ``"cv"`` (fewer when a class has fewer examples).
    max_iter : int
    random_state : int

    Attributes
    ----------
    coef_ : ndarray, shape (K, D) or (1, D)
    intercept_ : ndarray
    classes_ : ndarray
    lam_ : float
        The ``λ`` used.
    cv_scores_ : dict of float to float
        Mean held-out log-loss per candidate (``"cv"`` only).
    """

    def __init__(
        self,
        source: Any = None,
        *,
        lam: float | str = "cv",
        lambdas: tuple[float, ...] = DEFAULT_LAMBDAS,
        C: float = 1.0,
        cv: int = 5,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.source = source
        self.lam = lam
        self.lambdas = lambdas
        self.C = C
        self.cv = cv
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self) -> None:
        def bad(name: str, expected: str) -> TransferkitError:
            return TransferkitError(
                f"The {name!r} parameter of TransferLogisticRegression must be {expected}. "
                f"Got {getattr(self, name)!r} instead."
            )

        if not (self.lam == "cv" or (isinstance(self.lam, Real) and not isinstance(self.lam, bool) and self.lam >= 0)):
            raise bad("lam", "'cv' or a float >= 0 (math.inf: the source model)")
        if not isinstance(self.C, Real) or isinstance(self.C, bool) or not self.C > 0:
            raise bad("C", "a float > 0")
        if not isinstance(self.cv, int) or isinstance(self.cv, bool) or self.cv < 2:
            raise bad("cv", "an int >= 2")
        lambdas = self.lambdas
        if (
            not isinstance(lambdas, (tuple, list, np.ndarray))
            or len(lambdas) == 0
            or any(not isinstance(v, Real) or isinstance(v, bool) or not v >= 0 for v in lambdas)  # NaN: not >= 0
        ):
            raise bad("lambdas", "a non-empty tuple of floats >= 0")
        if not isinstance(self.max_iter, Integral) or isinstance(self.max_iter, bool) or self.max_iter < 1:
            raise bad("max_iter", "a positive int")
        if self.random_state is not None and (
            not isinstance(self.random_state, Integral) or isinstance(self.random_state, bool) or self.random_state < 0
        ):
            raise bad("random_state", "None or an int >= 0")

    def __sklearn_clone__(self) -> TransferLogisticRegression:
        """An unfitted copy that shares ``source``: the fitted source model is the prior, not a sub-estimator.

        ``sklearn.base.clone`` would otherwise clone the source into an unfitted model, which breaks
        ``cross_val_score`` and grid searches.
        """
        from sklearn.base import clone

        params = self.get_params(deep=False)
        return type(self)(**{k: v if k == "source" else clone(v, safe=False) for k, v in params.items()})

    def _check_X(self, X: Any, n_features: int) -> np.ndarray:
        """``X`` as a finite float array ``(n, n_features)`` with at least one row, else a :class:`DataError`."""
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise DataError(f"X must hold numeric features: {error}") from None
        if X.ndim != 2 or X.shape[1] != n_features:
            raise DataError(f"X has shape {X.shape}; the source model reads {n_features} features")
        if len(X) == 0:
            raise DataError("X is empty: no examples")
        if not np.isfinite(X).all():
            raise DataError("X holds NaN or infinite values; expected finite features")
        return X

    def fit(self, X: Any, y: Any) -> TransferLogisticRegression:
        """Fit on the target's labelled examples ``X`` ``(n, D)``, ``y`` ``(n,)``.

        Parameters
        ----------
        X : array-like of shape (n, D)
            ``D`` as the source model's features.
        y : array-like of shape (n,)
            At least two classes, the same as the source model's ``classes_``.

        Returns
        -------
        self

        Raises
        ------
        TransferkitError
            On a bad setting, or a ``source`` without ``coef``, ``intercept`` and ``classes``.
        DataError
            When ``X`` or ``y`` does not fit, ``y`` has one class or other classes than the source's, or
            ``lam="cv"`` finds a class with fewer than two examples.
        """
        reset_fitted(self)  # a refit keeps nothing of the last one (cv_scores_), and a failed one leaves no model
        self._check_params()
        coef, intercept, source_classes = _source_parameters(self.source)
        X = self._check_X(X, coef.shape[1])
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise DataError(f"y has shape {y.shape} for {len(X)} examples; expected one label per example")
        check_labels(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"y has only one class ({classes.tolist()[0]!r}); a classifier needs at least two")
        if classes.tolist() != np.asarray(source_classes).tolist():
            raise DataError(
                f"the target's classes {classes.tolist()} differ from the source model's "
                f"{np.asarray(source_classes).tolist()}; parameter transfer needs the same classes"
            )
        prior = np.hstack([coef, intercept[:, None]])  # (K', D + 1)
        cv_scores = self._cross_validate(X, codes, prior) if self.lam == "cv" else None
        lam = min(cv_scores, key=lambda lam: (cv_scores[lam], -lam)) if cv_scores is not None else float(self.lam)
        theta = prior.copy() if math.isinf(lam) else _fit_weights(X, codes, prior, self.C, lam, self.max_iter)
        if cv_scores is not None:
            self.cv_scores_ = cv_scores
        self.classes_, self.lam_ = classes, lam
        self.coef_, self.intercept_ = theta[:, :-1], theta[:, -1]
        return self

    def _cross_validate(self, X: np.ndarray, codes: np.ndarray, prior: np.ndarray) -> dict[float, float]:
        folds = min(self.cv, int(np.bincount(codes).min()))
        if folds < 2:
            raise DataError("lam='cv' needs at least two labelled examples of every class; pass a number for lam")
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        scores = {}
        for lam in self.lambdas:
            losses = []
            for train, held in splitter.split(X, codes):
                theta = (
                    prior
                    if math.isinf(lam)
                    else _fit_weights(X[train], codes[train], prior, self.C, lam, self.max_iter)
                )
                losses.append(_log_loss(X[held] @ theta[:, :-1].T + theta[:, -1], codes[held]))
            scores[float(lam)] = float(np.mean(losses))
        return scores

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores ``(n, K)``, or ``(n,)`` for two classes."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("This TransferLogisticRegression instance is not fitted yet. Call 'fit' first.")
        scores = self._check_X(X, self.coef_.shape[1]) @ self.coef_.T + self.intercept_  # (n, K')
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, K)``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = expit(scores)
            return np.stack([1 - positive, positive], axis=1)
        return np.exp(scores - logsumexp(scores, axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels ``(n,)``."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(1)]


def _log_loss(scores: np.ndarray, codes: np.ndarray) -> float:
    """Mean cross-entropy of scores ``(n, K')`` (one column: binary logits)."""
    if scores.shape[1] == 1:
        sign = np.where(codes == 1, 1.0, -1.0)
        return float(-log_expit(sign * scores[:, 0]).mean())
    return float((logsumexp(scores, axis=1) - scores[np.arange(len(codes)), codes]).mean())
