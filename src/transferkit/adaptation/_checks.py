"""Input checks shared by the adaptation entry points (:func:`.run.fit_method`, :func:`.run.select_adaptation`,
:func:`.compare.compare_adaptation`, :class:`.deep.FeatureAdapter`): a :class:`DataError` naming the value,
never a numpy, torch or scikit-learn traceback from deep inside a fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["check_features", "check_label_indices", "check_one_label_per_row"]


def check_features(features: Any, name: str) -> None:
    """Raise unless ``features`` is a 2-D ``(N, D)`` array (or sparse matrix) of finite numbers, N, D >= 1."""
    values = features.data if hasattr(features, "toarray") else np.asarray(features)  # sparse: its stored entries
    shape = features.shape if hasattr(features, "toarray") else values.shape
    if len(shape) != 2 or 0 in shape:
        raise DataError(f"{name} has shape {tuple(shape)}; expected a 2-D (n_samples, n_features) array, both >= 1")
    if values.dtype.kind not in "biuf":
        raise DataError(f"{name} has dtype {values.dtype}; expected real numbers")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise DataError(f"{name} contains {int((~np.isfinite(values)).sum())} NaN or infinite values; expected finite")


def check_one_label_per_row(labels: Any, n_rows: int, name: str = "labels", rows_of: str = "the source") -> np.ndarray:
    """``labels`` as a 1-D array of ``n_rows`` labels without NaN; else :class:`DataError`."""
    array = np.asarray(labels)
    if array.shape != (n_rows,):
        raise DataError(f"{name} has shape {array.shape}; expected ({n_rows},), one label per row of {rows_of}")
    if array.dtype.kind in "fc" and np.isnan(array).any():
        raise DataError(f"{name} contains NaN at position {int(np.flatnonzero(np.isnan(array))[0])}; expected a label")
    return array


def check_label_indices(labels: Any, n_rows: int, name: str = "labels", rows_of: str = "the source") -> np.ndarray:
    """``labels`` as int64 class indices ``(n_rows,)``, each >= 0; else :class:`DataError`.

    Integer-valued floats are accepted (as before); a fractional value or a string would otherwise be
    truncated or fail inside ``astype``.
    """
    array = check_one_label_per_row(labels, n_rows, name, rows_of)
    whole = array.dtype.kind == "f" and bool(np.isfinite(array).all() and np.all(array == np.round(array)))
    if array.dtype.kind not in "biu" and not whole:
        example = array[~np.isfinite(array) | (array != np.round(array))][0] if array.dtype.kind == "f" else array[0]
        raise DataError(f"{name} has dtype {array.dtype} (e.g. {example!r}); expected class indices 0 .. K-1")
    if n_rows and array.min() < 0:
        raise DataError(f"{name} has minimum {array.min()}; expected class indices 0 .. K-1")
    return array.astype(np.int64)
