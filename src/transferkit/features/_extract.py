"""Stream inputs through a backbone once; keep the features on disk for every later run."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write, atomic_write_json
from .._progress import progress
from ..backbones import Backbone
from ..backbones._config import sha256_file
from ..data._dataset import content_hash
from ..errors import TransferkitError

__all__ = ["FeatureResult", "extract_features", "feature_cache_key", "cache_directory"]

_CACHE_FORMAT = 1  # bump when the meaning of cached features changes


@dataclass
class FeatureResult:
    """Extracted features and how they were obtained.

    Attributes
    ----------
    features : ndarray of float32, shape (N, D)
    seconds : float
        Wall time of this call (reading the cache, or extracting).
    items_per_second : float
        Extraction throughput; for a cache hit, that of the run that wrote the cache.
    from_cache : bool
    key : str
        The cache key (sha256 hex).
    """

    features: np.ndarray
    seconds: float
    items_per_second: float
    from_cache: bool
    key: str


def cache_directory(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where features are cached: ``cache_dir``, else ``$TRANSFERKIT_CACHE``, else ``~/.cache/transferkit``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("TRANSFERKIT_CACHE"):
        return Path(os.environ["TRANSFERKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "transferkit"


def _weights_identity(backbone: Backbone) -> str:
    cfg = backbone.cfg
    if cfg.sha256:
        return cfg.sha256
    if os.path.isfile(cfg.weights):
        return sha256_file(cfg.weights)
    # Weights without a file (a model built in memory): hash the tensors themselves.
    digest = hashlib.sha256()
    for name, tensor in backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def feature_cache_key(
    backbone: Backbone, inputs: np.ndarray | list[str], layer: str, preprocess_description: dict
) -> str:
    """sha256 over (weights, layer, preprocessing, data content): equal keys mean equal features.

    Parameters
    ----------
    backbone : Backbone
        Identified by its name and weights (``cfg.sha256``, else the weight file's hash, else its tensors').
    inputs : ndarray or list of str
        Hashed by :func:`~transferkit.data.content_hash`; image paths by their size and modification time.
    layer : str
        The feature layer's name.
    preprocess_description : dict
        JSON-able description of the preprocessing (the preprocessor's ``describe()``).

    Returns
    -------
    str
        The hex digest.
    """
    path_inputs = backbone.cfg.modality == "image" and not isinstance(inputs, np.ndarray)
    payload = {
        "format": _CACHE_FORMAT,
        "backbone": backbone.cfg.name,
        "weights": _weights_identity(backbone),
        "layer": layer,
        "preprocess": preprocess_description,
        "data": content_hash(inputs, path_inputs=path_inputs),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _write_atomically(path: Path, features: np.ndarray, meta: dict) -> None:
    """The metadata, then the array, each by temp file + rename: a reader never sees half an entry."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_array(temporary: str) -> None:
        with open(temporary, "wb") as stream:  # a handle: np.save on a name would append ".npy"
            np.save(stream, features, allow_pickle=False)

    atomic_write_json(path.with_suffix(".json"), meta)
    atomic_write(path, write_array)


def extract_features(
    backbone: Backbone,
    inputs: np.ndarray | list[str],
    *,
    layer: str | None = None,
    image_size: int | None = None,
    batch_size: int = 32,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    desc: str = "extracting",
) -> FeatureResult:
    """Features of ``inputs`` at ``layer``, from the on-disk cache when it has them.

    Parameters
    ----------
    backbone : Backbone
        Used in eval mode, without gradients.
    inputs : ndarray or list of str
        Raw inputs of the backbone's modality (images as arrays or paths, or strings).
    layer : str, optional
        One of ``backbone.feature_layers()``; default the pooled embedding.
    image_size : int, optional
        Resize images to this instead of the backbone's native size.
    batch_size : int
        Examples per forward pass.
    cache : bool
        Read and write the cache.
    cache_dir : path, optional
        See :func:`cache_directory`.
    desc : str
        Label of the progress bar.

    Returns
    -------
    FeatureResult
    """
    if not isinstance(backbone, Backbone):
        raise TransferkitError(
            "The 'backbone' parameter of extract_features must be a Backbone (from create_backbone). "
            f"Got {backbone!r} instead."
        )
    for name, value in (("image_size", image_size), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            expected = "None or a positive int" if name == "image_size" else "a positive int"
            raise TransferkitError(
                f"The {name!r} parameter of extract_features must be {expected}. Got {value!r} instead."
            )
    layer = layer or backbone.feature_layers()[-1]
    backbone._check_layer(layer)
    preprocess = backbone.preprocessor(image_size=image_size)
    key = feature_cache_key(backbone, inputs, layer, preprocess.describe())
    path = cache_directory(cache_dir) / "features" / f"{key}.npy"
    started = time.perf_counter()
    if cache and path.is_file():
        try:
            features = np.load(path, allow_pickle=False)
            meta = json.loads(path.with_suffix(".json").read_text())
            return FeatureResult(features, time.perf_counter() - started, float(meta["items_per_second"]), True, key)
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed and overwritten
    was_training = backbone.training
    backbone.eval()
    chunks = []
    n = len(inputs)
    with torch.inference_mode():
        for start in progress(range(0, n, batch_size), total=-(-n // batch_size), desc=desc, unit="batch"):
            batch = preprocess(inputs[start : start + batch_size])
            chunks.append(backbone.forward_layer(batch, layer).float().numpy())  # (b, D)
    backbone.train(was_training)
    features = np.concatenate(chunks) if chunks else np.zeros((0, backbone.cfg.feature_dim), np.float32)
    seconds = time.perf_counter() - started
    rate = n / seconds if seconds > 0 else float("inf")
    if cache:
        _write_atomically(
            path, features, {"items_per_second": rate, "n": n, "layer": layer, "backbone": backbone.cfg.name}
        )
    return FeatureResult(features, seconds, rate, False, key)
