"""Stream inputs through a backbone once; keep the features on disk for every later run."""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write, atomic_write_json
from .._progress import progress
from ..backbones import Backbone
from ..data._dataset import content_hash
from ..data.user import check_image_array
from ..errors import DataError, TransferkitError

__all__ = ["FeatureResult", "extract_features", "feature_cache_key", "cache_directory"]

_CACHE_FORMAT = 2  # bump when the meaning of cached features changes (2: image files hashed by their bytes)


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


# backbone -> (fingerprint of its tensors' storage and in-place versions, digest of their bytes)
_TENSOR_DIGESTS: weakref.WeakKeyDictionary[Backbone, tuple[tuple, str]] = weakref.WeakKeyDictionary()


def _weights_identity(backbone: Backbone) -> str:
    # The tensors in memory, not cfg.sha256 or the weights file: a backbone fine-tuned in place (or loaded
    # with a saved model's fine-tuned weights) keeps the cfg of its pre-trained file, and must not be served
    # the pre-trained features. Hashed once per backbone while no tensor is replaced or changed in place.
    state = backbone.state_dict()
    try:
        fingerprint: tuple | None = tuple((name, t.data_ptr(), t._version) for name, t in state.items())
    except RuntimeError:  # tensors made under inference_mode have no version counter: hash them every time
        fingerprint = None
    remembered = _TENSOR_DIGESTS.get(backbone)
    if fingerprint is not None and remembered is not None and remembered[0] == fingerprint:
        return remembered[1]
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    if fingerprint is not None:
        _TENSOR_DIGESTS[backbone] = (fingerprint, digest.hexdigest())
    return digest.hexdigest()


def feature_cache_key(
    backbone: Backbone, inputs: np.ndarray | list[str], layer: str, preprocess_description: dict
) -> str:
    """sha256 over (weights, layer, preprocessing, data content): equal keys mean equal features.

    Parameters
    ----------
    backbone : Backbone
        Identified by its name and the bytes of its tensors as they are now (fine-tuned weights included).
    inputs : ndarray or list of str
        Hashed by :func:`~transferkit.data.content_hash`; image paths by their files' bytes.
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


def _array_sha256(features: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(features).data).hexdigest()


def _write_atomically(path: Path, features: np.ndarray, meta: dict) -> None:
    """The metadata, then the array, each by temp file + rename: a reader never sees half an entry.

    A cache that cannot be written (a read-only or full disk, a file where the folder should be)
    costs the next run its speed, not this run its features: a warning, and the features are
    returned all the same.
    """

    def write_array(temporary: str) -> None:
        with open(temporary, "wb") as stream:  # a handle: np.save on a name would append ".npy"
            np.save(stream, features, allow_pickle=False)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path.with_suffix(".json"), meta)
        atomic_write(path, write_array)
    except OSError as error:
        warnings.warn(
            f"cannot write the feature cache in {str(path.parent)!r} ({error}); these features are not cached. "
            "Point $TRANSFERKIT_CACHE or cache_dir at a writable folder, or pass cache=False",
            stacklevel=3,
        )


def _read_cached(path: Path, n_rows: int) -> tuple[np.ndarray, float] | None:
    """The cached features and the rate that wrote them, or None when the entry is missing, damaged or
    not what was asked for (another row count, a changed array): it is then recomputed and overwritten."""
    try:
        features = np.load(path, allow_pickle=False)
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(rate := meta.get("items_per_second"), (int, float)):
        return None
    if features.ndim != 2 or len(features) != n_rows or features.dtype != np.float32:
        return None
    if meta.get("sha256") != _array_sha256(features):
        return None
    return features, float(rate)


def _checked_inputs(inputs: Any, modality: str) -> np.ndarray | list[str]:
    """``inputs`` in a form the backbone's preprocessor reads, or a DataError saying what they should be."""
    expected = {
        "text": "a list of texts",
        "image": "a list of image paths or an image array (N, H, W[, C])",
        "tabular": "a 2-D array of feature vectors (N, D)",
    }.get(modality, "a list or an array")
    if isinstance(inputs, str) or not isinstance(inputs, (np.ndarray, list, tuple)):
        raise DataError(f"inputs must be {expected}; got {type(inputs).__name__} {str(inputs)[:40]!r}")
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "UO" and inputs.ndim == 1:
        inputs = inputs.tolist()  # an array of strings is read as the list it holds
    if modality == "tabular":
        if not isinstance(inputs, np.ndarray) or inputs.dtype.kind not in "uif" or inputs.ndim != 2:
            raise DataError(f"inputs must be {expected}; got {type(inputs).__name__} of shape {np.shape(inputs)}")
        if not np.isfinite(inputs).all():
            raise DataError("inputs hold NaN or infinite values; expected finite feature vectors")
        return inputs
    if isinstance(inputs, np.ndarray):
        if modality != "image" or inputs.dtype.kind not in "uif":
            raise DataError(f"inputs must be {expected}; got an array of {inputs.dtype} {inputs.shape}")
        return check_image_array(inputs, "inputs") if inputs.ndim in (3, 4) else inputs
    if not all(isinstance(item, (str, os.PathLike)) for item in inputs):
        bad = next(item for item in inputs if not isinstance(item, (str, os.PathLike)))
        raise DataError(f"inputs hold {type(bad).__name__} {str(bad)[:40]!r}; expected strings only")
    return [str(item) for item in inputs] if modality == "image" else list(inputs)


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
    inputs = _checked_inputs(inputs, backbone.cfg.modality)
    layer = layer or backbone.feature_layers()[-1]
    backbone._check_layer(layer)
    preprocess = backbone.preprocessor(image_size=image_size)
    key = feature_cache_key(backbone, inputs, layer, preprocess.describe())
    path = cache_directory(cache_dir) / "features" / f"{key}.npy"
    started = time.perf_counter()
    if cache and path.is_file() and (cached := _read_cached(path, len(inputs))) is not None:
        return FeatureResult(cached[0], time.perf_counter() - started, cached[1], True, key)
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
    if not np.isfinite(features).all():  # never cached: a NaN feature is a wrong input, not a result
        raise DataError(
            f"the {backbone.cfg.name!r} features of {int((~np.isfinite(features).all(1)).sum())} input(s) are NaN "
            "or infinite; check the inputs (NaN or infinite pixels?)"
        )
    seconds = time.perf_counter() - started
    rate = n / seconds if seconds > 0 else float("inf")
    if cache:
        _write_atomically(
            path,
            features,
            {
                "items_per_second": rate,
                "n": n,
                "layer": layer,
                "backbone": backbone.cfg.name,
                "sha256": _array_sha256(features),
            },
        )
    return FeatureResult(features, seconds, rate, False, key)
