"""Target-only baselines: what every transfer result is compared against.

Two kinds per modality, both trained on the target data alone:

* ``"scratch"`` — a neural network from random initialisation
  (:class:`SmallCNNClassifier`, :class:`BagOfEmbeddingsClassifier`,
  :class:`TabularMLPClassifier`);
* ``"classical"`` — a linear model on hand-made features
  (:class:`PixelLogisticRegression`, :class:`TfidfLogisticRegression`,
  :class:`StandardizedLogisticRegression`).

All are scikit-learn-style classifiers (``fit``/``predict``/``predict_proba``/``score``,
``classes_``) and save without pickle: ``config()`` is JSON-able, ``save_arrays()`` holds
numeric arrays only, and ``Class.from_arrays(config, arrays)`` rebuilds the fitted model.
:func:`baseline_for` picks the right one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ..errors import DataError, TransferkitError, did_you_mean
from ._baseline_base import _BaselineMixin, _check_int, _check_ngram_range, _check_real, _is_int, _param_error
from ._torch_baselines import BagOfEmbeddingsClassifier, SmallCNNClassifier, TabularMLPClassifier, _images_to_tensor

__all__ = [
    "SmallCNNClassifier",
    "BagOfEmbeddingsClassifier",
    "TabularMLPClassifier",
    "PixelLogisticRegression",
    "TfidfLogisticRegression",
    "StandardizedLogisticRegression",
    "baseline_for",
    "BASELINE_KINDS",
]

BASELINE_KINDS = ("scratch", "classical")


class _LinearBaseline(_BaselineMixin):
    """Features from ``_features(X, fit)`` → ``LogisticRegression`` (lbfgs) on label indices."""

    model_: LogisticRegression

    def _check_params(self) -> None:
        _check_real(self, "C", low=0.0, low_inclusive=False)
        _check_int(self, "max_iter")
        _check_int(self, "random_state", minimum=0)

    def _features(self, X: Any, fit: bool) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _new_model(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)

    def fit(self, X: Any, y: Any) -> _LinearBaseline:
        """Fit the features and the logistic regression on ``(X, y)``.

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
        features = self._features(X, fit=True)
        self.model_ = self._new_model().fit(features, y_idx)
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the logistic regression.

        Parameters
        ----------
        X : array-like
            Inputs, as for :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; rows sum to 1.
        """
        self._check_fitted()
        return self.model_.predict_proba(self._features(X, fit=False))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"coef_": self.model_.coef_, "intercept_": self.model_.intercept_, **self._extra_arrays()}

    def _load_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._load_extra(state, arrays)
        model = self._new_model()
        model.coef_ = np.asarray(arrays["coef_"], dtype=np.float64)
        model.intercept_ = np.asarray(arrays["intercept_"], dtype=np.float64)
        model.classes_ = np.arange(len(self.classes_))
        model.n_features_in_ = model.coef_.shape[1]
        model.n_iter_ = np.zeros(1, dtype=np.int32)
        self.model_ = model

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        pass


class PixelLogisticRegression(_LinearBaseline):
    """Multinomial logistic regression on raw pixels scaled to [0, 1].

    Images larger than 32 px on a side are first resized to 32×32 (bilinear, antialiased)
    so that the number of features stays small; colour channels are kept.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength.
    max_iter : int, default=1000
        Iterations of lbfgs.
    random_state : int, default=0
        Passed to ``LogisticRegression`` (lbfgs itself is deterministic).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    model_ : sklearn.linear_model.LogisticRegression
        The fitted model (its own ``classes_`` are label indices).
    input_shape_ : tuple of int
        ``(C, H, W)`` of the images after resizing.
    """

    _MAX_SIDE = 32

    def __init__(self, C: float = 1.0, max_iter: int = 1000, random_state: int = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def _features(self, X: Any, fit: bool) -> np.ndarray:
        array = np.asarray(X)
        if array.ndim not in (3, 4) or array.dtype == object:
            raise DataError(f"images must be an array of shape (N, H, W) or (N, H, W, C); got shape {array.shape}")
        if fit:
            h, w = array.shape[1:3]
            side = self._MAX_SIDE
            size = (side, side) if h > side or w > side else (h, w)
            self.input_shape_ = (1 if array.ndim == 3 else int(array.shape[3]), int(size[0]), int(size[1]))
        elif (1 if array.ndim == 3 else array.shape[3]) != self.input_shape_[0]:
            raise DataError(
                f"{type(self).__name__} was fitted on images with {self.input_shape_[0]} channel(s); "
                f"got an array of shape {array.shape}"
            )
        images = _images_to_tensor(array, self.input_shape_[1:])  # (N, C, H, W) in [0, 1]
        return images.reshape(len(images), -1).double().numpy()  # (N, C*H*W)

    def _state_config(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape_)}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.input_shape_ = tuple(int(s) for s in state["input_shape"])


class TfidfLogisticRegression(_LinearBaseline):
    """TF-IDF of words and word n-grams → logistic regression.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength.
    ngram_range : tuple of (int, int), default=(1, 2)
        Smallest and largest word n-gram.
    min_df : int or float, default=1
        Minimum document frequency of a term (a count, or a fraction when a float in (0, 1]).
    sublinear_tf : bool, default=True
        Use ``1 + log(tf)``.
    max_iter : int, default=1000
        Iterations of lbfgs.
    random_state : int, default=0
        Passed to ``LogisticRegression`` (lbfgs itself is deterministic).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    vectorizer_ : sklearn.feature_extraction.text.TfidfVectorizer
        The fitted vectoriser.
    model_ : sklearn.linear_model.LogisticRegression
        The fitted model (its own ``classes_`` are label indices).
    """

    def __init__(
        self,
        C: float = 1.0,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 1,
        sublinear_tf: bool = True,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        _check_ngram_range(self)
        min_df = self.min_df
        ok_int = _is_int(min_df) and min_df >= 1
        ok_float = isinstance(min_df, float) and 0.0 < min_df <= 1.0
        if not (ok_int or ok_float):
            raise _param_error(self, "min_df", "a positive int or a float in the range (0, 1]", min_df)
        if not isinstance(self.sublinear_tf, (bool, np.bool_)):
            raise _param_error(self, "sublinear_tf", "a bool", self.sublinear_tf)

    def _new_vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            sublinear_tf=bool(self.sublinear_tf),
            vocabulary=vocabulary,
        )

    def _features(self, X: Any, fit: bool) -> Any:
        if isinstance(X, str) or (isinstance(X, np.ndarray) and X.ndim != 1):
            raise DataError(f"{type(self).__name__} expects a list of strings, one per example")
        texts = [str(t) for t in X]
        if not fit:
            return self.vectorizer_.transform(texts)
        self.vectorizer_ = self._new_vectorizer()
        try:
            return self.vectorizer_.fit_transform(texts)
        except ValueError as exc:  # empty vocabulary, min_df too high, ...
            raise DataError(f"{type(self).__name__} cannot build a vocabulary: {exc}") from None

    def _state_config(self) -> dict[str, Any]:
        return {"vocabulary": {term: int(i) for term, i in self.vectorizer_.vocabulary_.items()}}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"idf_": self.vectorizer_.idf_}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        vectorizer = self._new_vectorizer(vocabulary={term: int(i) for term, i in state["vocabulary"].items()})
        vectorizer.idf_ = np.asarray(arrays["idf_"], dtype=np.float64)
        self.vectorizer_ = vectorizer


class StandardizedLogisticRegression(_LinearBaseline):
    """Logistic regression on features standardised by the training mean and standard deviation.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength.
    max_iter : int, default=1000
        Iterations of lbfgs.
    random_state : int, default=0
        Passed to ``LogisticRegression`` (lbfgs itself is deterministic).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    mean_, scale_ : ndarray of shape (n_features,)
        Feature statistics of the training set (``scale_`` is 1 where a feature is constant).
    model_ : sklearn.linear_model.LogisticRegression
        The fitted model (its own ``classes_`` are label indices).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000, random_state: int = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state

    def _features(self, X: Any, fit: bool) -> np.ndarray:
        try:
            x = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{type(self).__name__} expects numeric features: {exc}") from None
        if x.ndim != 2:
            raise DataError(f"features must be a 2-D array (n_samples, n_features); got shape {x.shape}")
        if not np.isfinite(x).all():
            raise DataError(f"{type(self).__name__} got NaN or infinite features; expected finite values")
        if fit:
            self.mean_ = x.mean(axis=0)
            std = x.std(axis=0)
            self.scale_ = np.where(std > 1e-12, std, 1.0)
        elif x.shape[1] != len(self.mean_):
            raise DataError(f"{type(self).__name__} was fitted on {len(self.mean_)} features; got {x.shape[1]}")
        return (x - self.mean_) / self.scale_  # (N, D)

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"mean_": self.mean_, "scale_": self.scale_}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.mean_ = np.asarray(arrays["mean_"], dtype=np.float64)
        self.scale_ = np.asarray(arrays["scale_"], dtype=np.float64)


_BASELINES: dict[str, dict[str, type[_BaselineMixin]]] = {
    "image": {"scratch": SmallCNNClassifier, "classical": PixelLogisticRegression},
    "text": {"scratch": BagOfEmbeddingsClassifier, "classical": TfidfLogisticRegression},
    "tabular": {"scratch": TabularMLPClassifier, "classical": StandardizedLogisticRegression},
}


def baseline_for(modality: str, kind: str, random_state: int = 0, verbose: bool = True) -> _BaselineMixin:
    """The target-only baseline of a modality, with its default (tuned) settings.

    Parameters
    ----------
    modality : {"image", "text", "tabular"}
        What the inputs are.
    kind : {"scratch", "classical"}
        ``"scratch"``: a network trained from random initialisation; ``"classical"``: a
        logistic regression on pixels, TF-IDF or standardised features.
    random_state : int, default=0
        Seed of the baseline.
    verbose : bool, default=True
        Progress bar for the networks (the classical models have none).

    Returns
    -------
    estimator
        An unfitted classifier.

    Raises
    ------
    UnknownNameError
        If ``modality`` or ``kind`` is not one of the above.
    """
    if modality not in _BASELINES:
        raise did_you_mean("modality", str(modality), _BASELINES)
    if kind not in BASELINE_KINDS:
        raise did_you_mean("baseline kind", str(kind), BASELINE_KINDS)
    if not _is_int(random_state) or random_state < 0:
        raise TransferkitError(f"random_state must be a non-negative int; got {random_state!r}")
    cls = _BASELINES[modality][kind]
    if kind == "scratch":
        return cls(random_state=random_state, verbose=verbose)
    return cls(random_state=random_state)
