"""TransferClassifier: the scikit-learn-style entry point."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator, ClassifierMixin

from ._progress import quiet_unless
from .backbones import DEFAULT_BACKBONES, create_backbone
from .backbones._config import BackboneCfg
from .data.preprocess import load_image
from .errors import DataError, NotFittedError, TransferkitError
from .features import extract_features
from .strategies import ProbeHead, Strategy, get_strategy, strategy_from_dict

__all__ = ["TransferClassifier", "infer_modality"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_FORMAT = "transferkit.TransferClassifier"
_FORMAT_VERSION = 1
# Image files fed to a target-only baseline are read at this size (a from-scratch CNN on CPU).
_BASELINE_IMAGE_SIZE = 64


def infer_modality(X: Any) -> str:
    """``"image"``, ``"text"`` or ``"tabular"`` from the form of ``X``.

    Image arrays are ``(N, H, W)`` or ``(N, H, W, C)``; a list of strings is image paths
    when they all end in an image suffix, text otherwise; a 2-D numeric array is tabular.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "uifb":
        if X.ndim in (3, 4):
            return "image"
        if X.ndim == 2:
            return "tabular"
        raise DataError(f"X has shape {X.shape}; expected (N, H, W[, C]) images or (N, D) features")
    items = list(X)
    if items and all(isinstance(item, (str, os.PathLike)) for item in items):
        if all(str(item).lower().endswith(_IMAGE_SUFFIXES) for item in items):
            return "image"
        return "text"
    raise DataError("X must be an image array, a list of image paths or a list of strings")


def _as_inputs(X: Any) -> np.ndarray | list[str]:
    if isinstance(X, np.ndarray) and X.dtype.kind in "uifb":
        return X
    return [str(item) for item in X]


class TransferClassifier(ClassifierMixin, BaseEstimator):
    """Classify with what a pre-trained backbone learned, or with a target-only baseline.

    Parameters
    ----------
    backbone : str, optional
        Registered name, ``timm:<name>`` or ``hf:<id-or-path>``; default by modality
        (``efficientnet_lite0.in1k`` for images, ``minilm_l6.sentence`` for text).
    strategy : str or Strategy
        ``"linear-probe"`` (transfer), or the baselines ``"scratch"`` and ``"classical"``.
    layer : str, optional
        Backbone layer to read features from; default the pooled embedding.
    image_size : int, optional
        Resize images to this instead of the backbone's native size (faster when smaller).
    C : float
        Inverse regularisation of the linear probe.
    batch_size : int
        Examples per forward pass during extraction.
    cache : bool
        Cache extracted features on disk (see :func:`transferkit.features.cache_directory`).
    cache_dir : str, optional
        Cache location.
    random_state : int
        Seed of everything random in ``fit``.
    verbose : bool
        Show progress bars (on a terminal).

    Attributes
    ----------
    classes_ : ndarray
        Class labels seen in ``fit``.
    modality_ : str
    strategy_ : Strategy
    backbone_ : Backbone or None
        The frozen backbone (``None`` for the baselines).
    model_ : object
        The fitted head or baseline, trained on label indices ``0 .. n_classes-1``.
    history_ : dict
        Timings: ``fit_seconds``, ``extract_seconds``, ``extract_items_per_second``, ``from_cache``.
    """

    def __init__(
        self,
        backbone: str | None = None,
        strategy: str | Strategy = "linear-probe",
        *,
        layer: str | None = None,
        image_size: int | None = None,
        C: float = 1.0,
        batch_size: int = 32,
        cache: bool = True,
        cache_dir: str | None = None,
        random_state: int = 0,
        verbose: bool = True,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.layer = layer
        self.image_size = image_size
        self.C = C
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.verbose = verbose

    # -- checks -----------------------------------------------------------------
    def _check_params(self) -> None:
        def bad(name: str, expected: str) -> TransferkitError:
            return TransferkitError(
                f"The {name!r} parameter of TransferClassifier must be {expected}. Got {getattr(self, name)!r} instead."
            )

        if (
            not isinstance(self.batch_size, (int, np.integer))
            or isinstance(self.batch_size, bool)
            or self.batch_size < 1
        ):
            raise bad("batch_size", "a positive int")
        if self.image_size is not None and (
            not isinstance(self.image_size, (int, np.integer)) or not 16 <= self.image_size <= 1024
        ):
            raise bad("image_size", "None or an int in [16, 1024]")
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise bad("C", "a float > 0")
        if self.backbone is not None and not isinstance(self.backbone, str):
            raise bad("backbone", "None or a backbone name (see `transferkit list`)")

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This TransferClassifier instance is not fitted yet. Call 'fit' with appropriate arguments first."
            )

    def _make_strategy(self) -> Strategy:
        if isinstance(self.strategy, Strategy):
            return self.strategy
        params = {"C": float(self.C)} if self.strategy == "linear-probe" else {}
        strategy = get_strategy(self.strategy, **params)
        if hasattr(strategy, "validate"):
            strategy.validate()
        return strategy

    # -- fitting ----------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> TransferClassifier:
        """Fit on labelled examples.

        Parameters
        ----------
        X : array of images ``(N, H, W[, C])``, list of image paths, list of strings, or ``(N, D)`` array
        y : array-like of shape (N,)

        Returns
        -------
        self
        """
        self._check_params()
        started = time.perf_counter()
        modality = infer_modality(X)
        inputs = _as_inputs(X)
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(inputs):
            raise DataError(
                f"y must be 1-D with one label per example of X; got shape {labels.shape} for {len(inputs)} examples"
            )
        classes, encoded = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"y has only one class ({classes[0]!r}); a classifier needs at least two")
        strategy = self._make_strategy()
        self.history_: dict[str, Any] = {}
        with quiet_unless(self.verbose):
            if strategy.uses_backbone:
                name = self.backbone or DEFAULT_BACKBONES.get(modality)
                if name is None:
                    raise DataError(f"no default backbone for {modality} data; name one with backbone=...")
                backbone = create_backbone(name)
                if backbone.cfg.modality != modality:
                    raise DataError(
                        f"backbone {name!r} reads {backbone.cfg.modality} but X holds {modality} data; "
                        f"choose a {modality} backbone (see `transferkit list`)"
                    )
                self.backbone_ = backbone
                features = self._features(inputs, "extracting train")
                model = ProbeHead(C=strategy.C, max_iter=strategy.max_iter).fit(features, encoded)
            else:
                from .strategies.baselines import baseline_for

                self.backbone_ = None
                model = baseline_for(modality, strategy.name, random_state=self.random_state, verbose=self.verbose)
                if getattr(strategy, "steps", None) is not None:
                    model.set_params(steps=strategy.steps)
                model.fit(self._baseline_inputs(inputs, modality), encoded)
        self.classes_ = classes
        self.modality_ = modality
        self.strategy_ = strategy
        self.model_ = model
        self.history_["fit_seconds"] = time.perf_counter() - started
        return self

    def _features(self, inputs: np.ndarray | list[str], desc: str) -> np.ndarray:
        result = extract_features(
            self.backbone_,
            inputs,
            layer=self.layer,
            image_size=self.image_size,
            batch_size=int(self.batch_size),
            cache=self.cache,
            cache_dir=self.cache_dir,
            desc=desc,
        )
        self.history_.update(
            extract_seconds=result.seconds,
            extract_items_per_second=result.items_per_second,
            from_cache=result.from_cache,
        )
        return result.features

    def _baseline_inputs(self, inputs: np.ndarray | list[str], modality: str) -> Any:
        """Image files become one array for the baselines: at their own size when all share one
        no larger than 64 px, else resized to 64 px; the size chosen in ``fit`` is kept for predicting."""
        if modality != "image" or isinstance(inputs, np.ndarray):
            return inputs
        if "baseline_image_size" not in self.history_:
            sizes = set()
            for path in inputs:
                try:
                    with Image.open(path) as image:
                        sizes.add(image.size)
                except OSError as error:
                    raise DataError(f"cannot read image {path!r}: {error}") from error
            width, height = next(iter(sizes))
            uniform = len(sizes) == 1 and width == height and width <= _BASELINE_IMAGE_SIZE
            self.history_["baseline_image_size"] = width if uniform else _BASELINE_IMAGE_SIZE
        size = self.history_["baseline_image_size"]
        return np.stack([load_image(path, size) for path in inputs])  # (N, S, S, 3)

    # -- prediction -------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``, shape ``(N, n_classes)``."""
        self._check_fitted()
        modality = infer_modality(X)
        if modality != self.modality_:
            raise DataError(f"this model was fitted on {self.modality_} data but X holds {modality} data")
        inputs = _as_inputs(X)
        with quiet_unless(self.verbose):
            if self.backbone_ is not None:
                return self.model_.predict_proba(self._features(inputs, "extracting"))
            return self.model_.predict_proba(self._baseline_inputs(inputs, modality))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels, shape ``(N,)``."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    # -- persistence ------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory`` (no pickle).

        Each file is written to a temporary name and renamed, so a crash never leaves a
        half-written model; the backbone is referenced by name and sha256, not copied.
        """
        from safetensors.numpy import save_file

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(v) for k, v in self.model_.save_arrays().items()}
        config = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": {k: v for k, v in self.get_params().items() if k != "strategy"},
            "strategy": self.strategy_.to_dict(),
            "modality": self.modality_,
            "classes": self.classes_.tolist(),
            "backbone": self.backbone_.cfg.to_dict() if self.backbone_ is not None else None,
            "model_class": type(self.model_).__name__,
            "model_config": self.model_.config() if hasattr(self.model_, "config") else {},
            "history": self.history_,
        }
        _atomic_write(directory / "weights.safetensors", lambda path: save_file(arrays, path))
        _atomic_write(directory / "config.json", lambda path: Path(path).write_text(json.dumps(config, indent=2)))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TransferClassifier:
        """Rebuild a classifier written by :meth:`save`.

        Raises
        ------
        TransferkitError
            When the folder is not a saved transferkit model or its backbone's weights changed.
        """
        from safetensors.numpy import load_file

        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "weights.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise TransferkitError(f"{str(directory)!r} is not a saved transferkit model (no config.json and weights)")
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise TransferkitError(f"{str(config_path)!r} is not valid JSON: {error}") from error
        if config.get("format") != _FORMAT or config.get("format_version", 0) > _FORMAT_VERSION:
            raise TransferkitError(f"{str(directory)!r} holds format {config.get('format')!r}, not {_FORMAT!r} v1")
        arrays = load_file(str(weights_path))
        strategy = strategy_from_dict(config["strategy"])
        estimator = cls(strategy=strategy, **config["params"])
        if config["backbone"] is not None:
            saved = BackboneCfg.from_dict(config["backbone"])
            estimator.backbone_ = create_backbone(saved.name)
            if saved.sha256 and estimator.backbone_.cfg.sha256 != saved.sha256:
                raise TransferkitError(
                    f"backbone {saved.name!r} now has different weights than when this model was saved"
                )
            estimator.model_ = ProbeHead.from_arrays(arrays)
        else:
            from .strategies import baselines

            model_class = getattr(baselines, config["model_class"], None)
            if model_class is None or not hasattr(model_class, "from_arrays"):
                raise TransferkitError(f"unknown model class {config['model_class']!r} in {str(config_path)!r}")
            estimator.backbone_ = None
            estimator.model_ = model_class.from_arrays(config["model_config"], arrays)
        estimator.classes_ = np.asarray(config["classes"])
        estimator.modality_ = config["modality"]
        estimator.strategy_ = strategy
        estimator.history_ = config.get("history", {})
        return estimator


def _atomic_write(path: Path, write: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
