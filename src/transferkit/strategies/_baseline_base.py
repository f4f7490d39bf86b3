"""Shared machinery of the target-only baselines.

:class:`_BaselineMixin` holds what every baseline shares (parameter checks, label encoding,
the ``config``/``save_arrays``/``from_arrays`` round trip without pickle);
:class:`_TorchClassifierBase` holds the single training loop of the PyTorch baselines.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from .._progress import progress
from ..data.user import check_labels
from ..errors import DataError, NotFittedError, TransferkitError

_PREDICT_BATCH = 256


# --------------------------------------------------------------------------- parameter checks


def _param_error(est: object, name: str, expected: str, value: Any) -> TransferkitError:
    return TransferkitError(
        f"The {name!r} parameter of {type(est).__name__} must be {expected}. Got {value!r} instead."
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_int(est: object, name: str, *, minimum: int = 1, allow_none: bool = False) -> None:
    value = getattr(est, name)
    if allow_none and value is None:
        return
    if not _is_int(value) or value < minimum:
        expected = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
        raise _param_error(est, name, expected + (" or None" if allow_none else ""), value)


def _check_real(est: object, name: str, *, low: float, low_inclusive: bool, high: float | None = None) -> None:
    value = getattr(est, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    ok = ok and (value >= low if low_inclusive else value > low) and (high is None or value < high)
    if not ok:
        if high is not None:
            expected = f"a float in the range {'[' if low_inclusive else '('}{low:g}, {high:g})"
        else:
            expected = f"a float {'>=' if low_inclusive else '>'} {low:g}"
        raise _param_error(est, name, expected, value)


def _check_bool(est: object, name: str) -> None:
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_)):
        raise _param_error(est, name, "a bool", value)


def _check_ngram_range(est: object, name: str = "ngram_range") -> None:
    value = getattr(est, name)
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value)
    if not ok or not 1 <= value[0] <= value[1]:
        raise _param_error(est, name, "a pair of ints (min_n, max_n) with 1 <= min_n <= max_n", value)


# --------------------------------------------------------------------------- shared mixin


class _BaselineMixin(ClassifierMixin, BaseEstimator):
    """Label handling, fitted checks and the array/config round trip shared by all baselines.

    Subclasses implement ``_check_params``, ``predict_proba``, ``_state_arrays``,
    ``_state_config`` and ``_load_state``.
    """

    def _check_params(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. "
                "Call 'fit' with appropriate arguments before using this estimator."
            )

    def _encode_labels(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Check ``y`` against ``X``; return ``(classes, label indices)`` without setting attributes."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise DataError(f"y must be a 1-D array of labels; got shape {y.shape}")
        if len(X) != len(y):
            raise DataError(f"X has {len(X)} examples but y has {len(y)} labels; expected one label per example")
        check_labels(y)  # NaN or continuous values would each become a class
        try:
            classes, indices = np.unique(y, return_inverse=True)
        except TypeError as exc:  # e.g. None mixed with strings
            raise DataError(f"labels must be mutually comparable (all numbers or all strings): {exc}") from None
        if len(classes) < 2:
            raise DataError(f"{type(self).__name__} needs at least 2 classes in y; got {len(classes)}")
        return classes, indices.reshape(-1).astype(np.int64)

    def predict(self, X: Any) -> np.ndarray:
        """Predict the most probable class of every example.

        Parameters
        ----------
        X : array-like
            Inputs, as for :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- saving without pickle ------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """JSON-able description of the fitted model: estimator name, parameters, classes.

        Returns
        -------
        dict
            ``{"estimator": ..., "params": ..., "classes": [...], "classes_dtype": ..., "state": {...}}``.
            Together with :meth:`save_arrays` it rebuilds the model with :meth:`from_arrays`.
        """
        self._check_fitted()
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params(deep=False).items()}
        return {
            "estimator": type(self).__name__,
            "params": params,
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str if self.classes_.dtype != object else "object",
            "state": self._state_config(),
        }

    def save_arrays(self) -> dict[str, np.ndarray]:
        """The fitted numeric state as named numpy arrays (safe to store with safetensors).

        Class labels are not among them (they may be strings): they are in :meth:`config`.

        Returns
        -------
        dict of str to ndarray
        """
        self._check_fitted()
        return {name: np.array(array, order="C", copy=True) for name, array in self._state_arrays().items()}

    @classmethod
    def from_arrays(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> _BaselineMixin:
        """Rebuild a fitted model from :meth:`config` and :meth:`save_arrays`.

        Parameters
        ----------
        config : dict
            The output of :meth:`config` (possibly after a JSON round trip).
        arrays : dict of str to ndarray
            The output of :meth:`save_arrays`.

        Returns
        -------
        estimator
            A fitted instance of ``cls`` predicting exactly as the saved one.
        """
        if config.get("estimator") != cls.__name__:
            raise TransferkitError(
                f"the saved model is a {config.get('estimator')!r}; it cannot be loaded as a {cls.__name__}"
            )
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config["params"].items()}
        est = cls(**params)
        est.classes_ = np.array(config["classes"], dtype=np.dtype(config["classes_dtype"]))
        est._load_state(config.get("state", {}), {k: np.asarray(v) for k, v in arrays.items()})
        return est

    def _state_config(self) -> dict[str, Any]:
        return {}

    def _state_arrays(self) -> dict[str, np.ndarray]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError


# --------------------------------------------------------------------------- torch base


class _TorchClassifierBase(_BaselineMixin):
    """One training loop for the torch baselines: AdamW, one-cycle schedule, cross-entropy.

    Subclasses define ``_prepare(X, fit)`` (inputs → a data object, setting any normalisation
    statistics when ``fit``), ``_batch(data, idx, generator)`` (the module's inputs for the rows
    ``idx``; augmented when ``generator`` is given), ``_build_module(n_classes)``, and may add
    state with ``_extra_arrays``/``_state_config``/``_load_extra``.
    """

    def _check_common_params(self) -> None:
        _check_int(self, "epochs", allow_none=True)
        _check_int(self, "steps")
        _check_int(self, "batch_size")
        _check_real(self, "lr", low=0.0, low_inclusive=False)
        _check_real(self, "weight_decay", low=0.0, low_inclusive=True)
        _check_int(self, "random_state", minimum=0)
        _check_bool(self, "verbose")

    def _prepare(self, X: Any, fit: bool) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _batch(self, data: Any, idx: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError  # pragma: no cover

    def _build_module(self, n_classes: int) -> nn.Module:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> _TorchClassifierBase:
        """Train the network on ``(X, y)`` from a random initialisation seeded by ``random_state``.

        Training runs ``steps`` optimiser steps (rounded up to whole epochs) unless ``epochs``
        is given. The global torch random state is left untouched.

        Parameters
        ----------
        X : array-like
            Training inputs.
        y : array-like of shape (n_samples,)
            Labels of any comparable type; ``classes_`` holds them sorted.

        Returns
        -------
        self
        """
        self._check_params()
        classes, y_idx = self._encode_labels(X, y)
        data = self._prepare(X, fit=True)
        targets = torch.from_numpy(y_idx)  # (N,)
        n = len(targets)
        batch_size = min(self.batch_size, n)
        per_epoch = math.ceil(n / batch_size)
        epochs = self.epochs if self.epochs is not None else max(1, math.ceil(self.steps / per_epoch))
        total_steps = epochs * per_epoch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            generator = torch.Generator().manual_seed(self.random_state)
            module = self._build_module(len(classes))
            optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=total_steps)
            epoch_losses: list[float] = []
            module.train()
            epoch_iter = range(epochs)
            if self.verbose:
                epoch_iter = progress(epoch_iter, total=epochs, desc=type(self).__name__, unit="epoch")
            for _ in epoch_iter:
                order = torch.randperm(n, generator=generator)  # (N,)
                running = 0.0
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]  # (B,)
                    logits = module(*self._batch(data, idx, generator))  # (B, n_classes)
                    loss = F.cross_entropy(logits, targets[idx])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    running += float(loss.detach()) * len(idx)
                epoch_losses.append(running / n)
        self.model_ = module.eval()
        self.n_epochs_ = epochs
        self.n_steps_ = total_steps
        self.loss_curve_ = epoch_losses
        self.classes_ = classes
        return self

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the network's outputs, in eval mode).

        Parameters
        ----------
        X : array-like
            Inputs, as for :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            Columns follow ``classes_``; rows sum to 1.
        """
        self._check_fitted()
        data = self._prepare(X, fit=False)
        n = len(data)
        self.model_.eval()
        chunks = []
        for start in range(0, n, _PREDICT_BATCH):
            idx = torch.arange(start, min(start + _PREDICT_BATCH, n))  # (B,)
            logits = self.model_(*self._batch(data, idx, None))  # (B, n_classes)
            chunks.append(torch.softmax(logits.double(), dim=1).numpy())
        if not chunks:
            return np.zeros((0, len(self.classes_)))
        proba = np.concatenate(chunks)
        return proba / proba.sum(axis=1, keepdims=True)

    # -- saving --------------------------------------------------------------------------

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        arrays.update(self._extra_arrays())
        return arrays

    def _load_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._load_extra(state, arrays)
        module = self._build_module(len(self.classes_))
        prefix = "model."
        module.load_state_dict(
            {k[len(prefix) :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
        )
        self.model_ = module.eval()

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        pass


class _StandardizerMixin:
    """Per-channel (or per-feature) mean/std stored as ``mean_``/``std_`` and saved as arrays."""

    mean_: np.ndarray
    std_: np.ndarray

    def _fit_standardizer(self, x: torch.Tensor, dims: tuple[int, ...]) -> None:
        self.mean_ = x.double().mean(dim=dims).numpy().astype(np.float32)
        std = x.double().std(dim=dims, unbiased=False).numpy().astype(np.float32)
        self.std_ = np.where(std > 1e-6, std, 1.0).astype(np.float32)

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"mean_": self.mean_, "std_": self.std_}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.mean_ = np.asarray(arrays["mean_"], dtype=np.float32)
        self.std_ = np.asarray(arrays["std_"], dtype=np.float32)


# --------------------------------------------------------------------------- images
