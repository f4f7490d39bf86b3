"""What ``X`` is: the modality of the inputs given to :class:`~transferkit.TransferClassifier`, checked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data.user import check_image_array
from .errors import DataError

__all__ = ["BASELINE_IMAGE_SIZE", "as_inputs", "description_labels", "infer_modality"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Image files fed to a target-only baseline are read at this size (a from-scratch CNN on CPU).
BASELINE_IMAGE_SIZE = 64


def infer_modality(X: Any) -> str:
    """``"image"``, ``"text"`` or ``"tabular"`` from the form of ``X``.

    Image arrays are ``(N, H, W)`` or ``(N, H, W, C)``; a list of strings is image paths
    when they all end in an image suffix, text otherwise; a 2-D numeric array is tabular.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "uifb":
        if len(X) == 0:
            raise DataError(f"X has shape {X.shape}: no examples")
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


def as_inputs(X: Any, name: str = "X") -> np.ndarray | list[str]:
    if isinstance(X, np.ndarray) and X.dtype.kind in "uifb":
        if X.ndim == 2 and X.dtype.kind == "f" and not np.isfinite(X).all():
            raise DataError(f"{name} holds NaN or infinite values; expected finite features")
        return check_image_array(X, name) if X.ndim in (3, 4) else X
    return [str(item) for item in X]


def description_labels(source: str | dict[str, Any]) -> list[str]:
    """The labels a descriptions file or dict names, in its order (zero-shot: they are the classes)."""
    if isinstance(source, dict):
        return [str(key) for key in source]
    path = Path(source)
    if not path.is_file():
        raise DataError(f"label descriptions file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"label descriptions file {str(path)!r} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise DataError(f"label descriptions file {str(path)!r} must hold a JSON object of label -> sentences")
    return [str(key) for key in data]
