"""Label descriptions as a zero-shot classifier, and as a prior for a few-shot head.

A label description is one or more sentences per class ("This review is positive.").
Their mean embedding is the class *prototype*; cosine similarity to the prototypes is a
zero-shot classifier, and with labelled examples it becomes a prior mixed into a logistic
regression with a weight chosen on the labelled examples only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from ..errors import DataError, NotFittedError, TransferkitError

__all__ = ["DescriptionPriorHead", "embed_descriptions", "read_label_descriptions"]

_EXPECTED = 'expected a JSON object mapping every class to a sentence or a list of sentences, e.g. {"positive": ["…"]}'


def read_label_descriptions(
    source: str | os.PathLike | Mapping[Any, Any], classes: Sequence[Hashable]
) -> dict[Hashable, list[str]]:
    """Read label descriptions and match them to ``classes``.

    Parameters
    ----------
    source : path-like or mapping
        A JSON file, or an already loaded mapping, of label → sentence or list of sentences.
        Labels are matched to ``classes`` by ``str(c)``.
    classes : sequence
        The classes of the data set, in label-index order.

    Returns
    -------
    dict
        ``{class: [sentence, ...]}`` for every class, in the order of ``classes``.

    Raises
    ------
    DataError
        Missing or unreadable file, invalid JSON, a class without description, a label that is
        not a class, an empty list of sentences, or a sentence that is not a non-empty string.
    """
    where = "label descriptions"
    if isinstance(source, Mapping):
        raw: Any = source
    else:
        path = os.fspath(source)
        where = f"label descriptions '{path}'"
        if not os.path.isfile(path):
            raise DataError(f"label descriptions file '{path}' not found; {_EXPECTED}")
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} is not valid JSON ({exc}); {_EXPECTED}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {where}: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise DataError(f"{where} is a {type(raw).__name__}; {_EXPECTED}")
    by_name = {str(c): c for c in classes}
    names = ", ".join(repr(name) for name in by_name)
    found: dict[str, list[str]] = {}
    for label, value in raw.items():
        if str(label) not in by_name:
            raise DataError(f"{where}: label {label!r} is not a class; the classes are {names}")
        sentences = [value] if isinstance(value, str) else value
        if not isinstance(sentences, list) or not sentences:
            raise DataError(
                f"{where}: the description of {label!r} is {value!r}; expected a sentence or a non-empty list of them"
            )
        for sentence in sentences:
            if not isinstance(sentence, str) or not sentence.strip():
                raise DataError(
                    f"{where}: the description of {label!r} contains {sentence!r}; expected non-empty strings"
                )
        found[str(label)] = [s.strip() for s in sentences]
    missing = [name for name in by_name if name not in found]
    if missing:
        missing_names = ", ".join(repr(m) for m in missing)
        raise DataError(f"{where}: no description for class(es) {missing_names}; expected one for each of {names}")
    return {by_name[name]: found[name] for name in by_name}


def embed_descriptions(
    backbone: torch.nn.Module, descriptions: Mapping[Hashable, Sequence[str]], classes: Sequence[Hashable]
) -> np.ndarray:
    """Class prototypes: the re-normalised mean of each class's L2-normalised sentence embeddings.

    Parameters
    ----------
    backbone : Backbone
        A text backbone; its ``preprocessor()`` and ``forward_features`` are used in eval mode.
    descriptions : mapping
        ``{class: [sentence, ...]}``, e.g. from :func:`read_label_descriptions`.
    classes : sequence
        Order of the rows of the result.

    Returns
    -------
    ndarray of float32, shape (K, D)
    """
    missing = [c for c in classes if c not in descriptions]
    if missing:
        raise DataError(f"no description for class(es) {', '.join(repr(c) for c in missing)}")
    preprocess = backbone.preprocessor()
    was_training = backbone.training
    backbone.eval()
    prototypes = []
    with torch.no_grad():
        for cls in classes:
            embedded = backbone.forward_features(preprocess(list(descriptions[cls]))).double()  # (S, D)
            embedded = torch.nn.functional.normalize(embedded, dim=-1).mean(dim=0)  # (D,)
            prototypes.append(torch.nn.functional.normalize(embedded, dim=0).numpy())
    backbone.train(was_training)
    return np.stack(prototypes).astype(np.float32)  # (K, D)


def _cosine(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)  # (N, 1)
    return (features / np.maximum(norms, 1e-12)) @ prototypes.T  # (N, K); prototypes are unit rows


def _fit_offset_lr(
    design: np.ndarray, labels: np.ndarray, offset: np.ndarray, C: float, init: np.ndarray | None, max_iter: int
) -> np.ndarray:
    """Multinomial LR with fixed per-row logit offsets: min C·Σ CE(ZWᵀ + b + offset) + ½(‖W‖² + ‖b‖²).

    Returns the flat parameters ``[W (K, r), b (K,)]``.
    """
    n, r = design.shape  # (N, r)
    k = offset.shape[1]
    onehot = np.eye(k)[labels]  # (N, K)

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = params[: k * r].reshape(k, r), params[k * r :]
        logits = design @ weights.T + bias + offset  # (N, K)
        logits = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1))  # (N,)
        loss = float((log_norm - (logits * onehot).sum(axis=1)).sum())
        residual = np.exp(logits - log_norm[:, None]) - onehot  # (N, K)
        grad = np.concatenate([(C * residual.T @ design + weights).ravel(), C * residual.sum(axis=0) + bias])
        return C * loss + 0.5 * float(params @ params), grad

    start = np.zeros(k * r + k) if init is None else init
    if n == 0:
        return start * 0.0
    return minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-6}).x


class DescriptionPriorHead:
    """Logistic regression whose logits start from a zero-shot prior of label descriptions.

    Logits are ``x Wᵀ + b + α · scale · cos(x, p_k)``. ``W`` and ``b`` are fitted with the prior
    as a fixed offset and an L2 penalty on both, so with few examples the head stays close to
    the zero-shot classifier (the penalty shrinks towards the prior, not towards zero); ``α = 0``
    is a plain L2 logistic regression (intercept penalised too). ``C`` and ``α`` are chosen by the
    mean held-out log-loss of leave-one-out on the labelled examples when there are at most
    ``loo_max`` of them, else of ``n_folds``-fold cross-validation (stratified, fixed seed 0);
    ties go to the earlier grid entry. Fits use the SVD projection of the training rows (the
    optimum lies in their span, also for every held-out subset), so leave-one-out costs a few
    milliseconds a fit.

    With no labelled examples the head is the zero-shot classifier ``scale · cos(x, p_k)``.

    Parameters
    ----------
    C_grid : sequence of float
        Inverse L2 strengths tried.
    alpha_grid : sequence of float
        Prior weights tried; include 0 so that a misleading prior can be switched off.
    scale : float
        Inverse temperature of the cosine similarities (20 = τ 0.05): it sets the sharpness of
        the zero-shot probabilities and the unit of ``α``; it does not change zero-shot predictions.
    loo_max : int
        Largest number of labelled examples for leave-one-out.
    n_folds : int
        Folds of the cross-validation used above ``loo_max``.
    max_iter : int
        L-BFGS iterations per fit.
    """

    def __init__(
        self,
        C_grid: Sequence[float] = (0.1, 1.0, 10.0),
        alpha_grid: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        scale: float = 20.0,
        loo_max: int = 64,
        n_folds: int = 10,
        max_iter: int = 500,
    ) -> None:
        self.C_grid = tuple(float(c) for c in C_grid)
        self.alpha_grid = tuple(float(a) for a in alpha_grid)
        self.scale = float(scale)
        self.loo_max, self.n_folds, self.max_iter = loo_max, n_folds, max_iter
        if not self.C_grid or any(not c > 0 for c in self.C_grid):
            raise TransferkitError(f"C_grid must hold values > 0; got {C_grid!r}")
        if not self.alpha_grid or any(not a >= 0 for a in self.alpha_grid):
            raise TransferkitError(f"alpha_grid must hold values >= 0; got {alpha_grid!r}")
        if not self.scale > 0:
            raise TransferkitError(f"scale must be > 0; got {scale!r}")

    def _folds(self, labels: np.ndarray) -> list[np.ndarray]:
        """Held-out index sets: one per example (leave-one-out), or stratified folds."""
        n = len(labels)
        if n <= self.loo_max:
            return [np.array([i]) for i in range(n)]
        rng, fold_of, position = np.random.default_rng(0), np.empty(n, dtype=np.int64), 0
        for cls in np.unique(labels):
            members = np.flatnonzero(labels == cls)
            fold_of[rng.permutation(members)] = (position + np.arange(len(members))) % self.n_folds
            position += len(members)
        return [np.flatnonzero(fold_of == f) for f in range(self.n_folds) if np.any(fold_of == f)]

    def fit(self, features: np.ndarray, labels: np.ndarray, prototypes: np.ndarray) -> DescriptionPriorHead:
        """Choose ``C`` and ``α`` on the labelled examples and fit the head on all of them.

        Parameters
        ----------
        features : ndarray, shape (N, D)
            Labelled examples (N may be 0: zero-shot).
        labels : ndarray of int, shape (N,)
            Class indices ``0 .. K-1``.
        prototypes : ndarray, shape (K, D)
            Class prototypes (e.g. from :func:`embed_descriptions`); rows are re-normalised.
        """
        prototypes = np.asarray(prototypes, dtype=np.float64)  # (K, D)
        if prototypes.ndim != 2 or prototypes.shape[0] < 2:
            raise TransferkitError(f"prototypes must have shape (K >= 2, D); got {prototypes.shape}")
        k, d = prototypes.shape
        features = np.asarray(features, dtype=np.float64)  # (N, D)
        if features.size == 0:
            features = features.reshape(0, d)
        labels = np.asarray(labels).reshape(-1)
        if features.ndim != 2 or features.shape[1] != d or len(features) != len(labels):
            raise TransferkitError(
                f"features {features.shape} and labels {labels.shape} do not match prototypes {prototypes.shape}; "
                "expected features (N, D), labels (N,) and prototypes (K, D)"
            )
        if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k):
            raise DataError(f"labels must be class indices 0..{k - 1}; got values {np.unique(labels)[:10]}")
        self.prototypes_ = prototypes / np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
        self.classes_ = np.arange(k)
        self.n_examples_ = n = len(labels)
        self.coef_, self.intercept_ = np.zeros((k, d)), np.zeros(k)  # (K, D), (K,)
        self.cv_scores_ = np.full((len(self.C_grid), len(self.alpha_grid)), np.nan)  # held-out log-loss
        self.cv_log_loss_ = None
        if n == 0:
            self.C_, self.alpha_, self.cv_ = None, 1.0, "none (zero-shot)"
            return self
        labels = labels.astype(np.int64)
        with threadpool_limits(limits=1, user_api="blas"):  # tiny problems: threads only add overhead
            basis, design = None, features
            if n < d:  # the optimum lies in the span of the rows: fit in r <= N coordinates
                _, singular, vt = np.linalg.svd(features, full_matrices=False)
                basis = vt[: int((singular > singular[0] * 1e-10).sum())].T  # (D, r)
                design = features @ basis  # (N, r)
            r = design.shape[1]
            prior = self.scale * _cosine(features, self.prototypes_)  # (N, K)
            folds = self._folds(labels)
            self.cv_ = "leave-one-out" if len(folds) == n else f"{len(folds)}-fold"
            best, fits = None, {}
            for i, C in enumerate(self.C_grid):
                for j, alpha in enumerate(self.alpha_grid):
                    offset = alpha * prior  # (N, K)
                    full = _fit_offset_lr(design, labels, offset, C, None, self.max_iter)
                    fits[i, j] = full
                    held_out = np.zeros((n, k))  # (N, K) logits of each example from a fit without it
                    for fold in folds:
                        keep = np.ones(n, dtype=bool)
                        keep[fold] = False
                        params = _fit_offset_lr(design[keep], labels[keep], offset[keep], C, full, self.max_iter)
                        held_out[fold] = design[fold] @ params[: k * r].reshape(k, r).T + params[k * r :] + offset[fold]
                    held_out -= held_out.max(axis=1, keepdims=True)
                    log_prob = held_out - np.log(np.exp(held_out).sum(axis=1, keepdims=True))
                    self.cv_scores_[i, j] = -float(log_prob[np.arange(n), labels].mean())
                    if best is None or self.cv_scores_[i, j] < self.cv_scores_[best] - 1e-12:
                        best = (i, j)
        params = fits[best]
        weights = params[: k * r].reshape(k, r)  # (K, r)
        self.coef_ = weights if basis is None else weights @ basis.T  # (K, D)
        self.intercept_ = params[k * r :]
        self.C_, self.alpha_ = self.C_grid[best[0]], self.alpha_grid[best[1]]
        self.cv_log_loss_ = float(self.cv_scores_[best])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this DescriptionPriorHead is not fitted yet; call fit(features, labels, prototypes)")

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Logits ``x Wᵀ + b + α · scale · cos(x, p)``, shape (N, K)."""
        self._check_fitted()
        features = np.asarray(features, dtype=np.float64)  # (N, D)
        if features.ndim != 2 or features.shape[1] != self.coef_.shape[1]:
            raise TransferkitError(f"features must have shape (N, {self.coef_.shape[1]}); got {features.shape}")
        prior = self.alpha_ * self.scale * _cosine(features, self.prototypes_)  # (N, K)
        return features @ self.coef_.T + self.intercept_ + prior

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Softmax of :meth:`decision_function`, shape (N, K)."""
        logits = self.decision_function(features)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)  # (N, K)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class indices, shape (N,)."""
        logits = self.decision_function(features)  # (N, K); checks that the head is fitted
        return self.classes_[logits.argmax(axis=1)]

    def config(self) -> dict[str, Any]:
        """The chosen settings and how they were chosen, JSON-able."""
        self._check_fitted()
        return {
            "C": self.C_,
            "alpha": self.alpha_,
            "scale": self.scale,
            "cv": self.cv_,
            "cv_log_loss": self.cv_log_loss_,
            "n_examples": int(self.n_examples_),
            "C_grid": list(self.C_grid),
            "alpha_grid": list(self.alpha_grid),
        }

    def save_arrays(self) -> dict[str, np.ndarray]:
        """Everything prediction needs, as arrays (for safetensors)."""
        self._check_fitted()
        return {
            "coef": np.ascontiguousarray(self.coef_, dtype=np.float64),
            "intercept": np.ascontiguousarray(self.intercept_, dtype=np.float64),
            "prototypes": np.ascontiguousarray(self.prototypes_, dtype=np.float64),
            "alpha": np.array([self.alpha_], dtype=np.float64),
            "scale": np.array([self.scale], dtype=np.float64),
            "C": np.array([np.nan if self.C_ is None else self.C_], dtype=np.float64),
            "n_examples": np.array([self.n_examples_], dtype=np.int64),
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any] | None = None
    ) -> DescriptionPriorHead:
        """Rebuild a fitted head from :meth:`save_arrays` (and optionally :meth:`config`); same predictions."""
        config = dict(config or {})
        grids = {key: config[key] for key in ("C_grid", "alpha_grid") if key in config}
        head = cls(scale=float(arrays["scale"][0]), **grids)
        head.coef_, head.intercept_ = np.asarray(arrays["coef"]), np.asarray(arrays["intercept"])
        head.prototypes_ = np.asarray(arrays["prototypes"])
        head.classes_ = np.arange(head.prototypes_.shape[0])
        head.alpha_ = float(arrays["alpha"][0])
        head.C_ = None if np.isnan(arrays["C"][0]) else float(arrays["C"][0])
        head.n_examples_ = int(arrays["n_examples"][0])
        head.cv_ = config.get("cv", "none (zero-shot)" if head.n_examples_ == 0 else "unknown")
        head.cv_log_loss_ = config.get("cv_log_loss")
        head.cv_scores_ = np.full((len(head.C_grid), len(head.alpha_grid)), np.nan)
        return head
