"""Input checks of :class:`~transferkit.TransferClassifier` that scikit-learn users rely on.

What the estimator does with an array-like that is not a numpy array (a DataFrame, a list of
rows, a sparse matrix), and how a new ``fit`` drops what an earlier one learned.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["as_array_like", "reset_fitted"]


def as_array_like(X: Any, name: str = "X", *, allow_empty: bool = False) -> Any:
    """``X`` as a numpy array when it holds numbers in another container; strings and paths as given.

    scikit-learn passes lists of rows and DataFrames where a numpy array would do; iterating a
    DataFrame yields its column names, which would be read as texts, so such inputs are converted first.

    Parameters
    ----------
    X : array-like
        What the user passed as ``X``.
    name : str, default="X"
        The argument's name, for messages.
    allow_empty : bool, default=False
        Let an empty ``X`` through (a zero-shot ``fit([], [])``).

    Returns
    -------
    ndarray or the input
        A numeric array when ``X`` converts to one, else ``X`` unchanged.

    Raises
    ------
    DataError
        On a sparse matrix or (unless ``allow_empty``) an empty ``X``.
    """
    from scipy import sparse

    if sparse.issparse(X):
        raise DataError(f"sparse input is not supported: {name} is a {type(X).__name__}; pass {name}.toarray()")
    if X is None or isinstance(X, (str, bytes, os.PathLike)):
        raise DataError(f"{name} must be an array or a list of examples; got {type(X).__name__}")
    if hasattr(X, "columns") and hasattr(X, "iloc") and not _numeric_frame(X):  # a DataFrame of texts or paths
        if len(X.columns) != 1:
            raise DataError(
                f"{name} is a DataFrame with {len(X.columns)} columns {list(X.columns)[:5]}; pass the one column "
                f"of texts or image paths, e.g. {name}[{str(X.columns[0])!r}]"
            )
        X = X.iloc[:, 0].tolist()
    converted = X
    if not isinstance(X, np.ndarray) and (
        hasattr(X, "__array__") or not all(isinstance(item, (str, os.PathLike)) for item in X)
    ):
        try:
            array = np.asarray(X)
        except ValueError:  # ragged rows: left for the modality check to name
            array = None
        if array is not None and array.dtype.kind in "uifb":
            converted = array
    if not allow_empty and len(converted) == 0:
        raise DataError(f"{name} is empty: no examples")
    return converted


def _numeric_frame(frame: Any) -> bool:
    """Whether every column of a DataFrame holds numbers (features), not texts or paths."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype  # only reached with a pandas DataFrame

    return all(is_numeric_dtype(dtype) or is_bool_dtype(dtype) for dtype in frame.dtypes)


def reset_fitted(estimator: Any) -> None:
    """Delete every learned attribute (``name_``) of ``estimator``.

    A new ``fit`` starts from nothing: a choice recorded by an earlier ``strategy="auto"`` fit does
    not survive it, and a fit that fails part-way leaves an unfitted estimator rather than the
    earlier model mixed with a new backbone.
    """
    for name in [name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")]:
        delattr(estimator, name)
