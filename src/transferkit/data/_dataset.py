"""The in-memory data set every part of transferkit passes around."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["Dataset", "DataSplit", "few_shot_indices", "content_hash"]

MODALITIES = ("image", "text", "tabular")


@dataclass
class Dataset:
    """Labelled examples of one modality.

    Attributes
    ----------
    name : str
        Where the data came from (a built-in name or a path).
    modality : {"image", "text", "tabular"}
        What the inputs are.
    inputs : ndarray or list of str
        Images: a uint8 array ``(N, H, W)`` (grey) or ``(N, H, W, C)``, or a list of image
        file paths. Text: a list of strings. Tabular: a float array ``(N, D)``.
    labels : ndarray of int64, shape (N,)
        Indices into ``classes``.
    classes : list of str
        Class names, in label-index order.
    """

    name: str
    modality: str
    inputs: np.ndarray | list[str]
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DataError(f"modality must be one of {MODALITIES}; got {self.modality!r}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.inputs) != len(self.labels):
            raise DataError(
                f"data set {self.name!r} has {len(self.inputs)} inputs but {len(self.labels)} labels; "
                "expected one label per input"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> Dataset:
        """The examples at ``indices``, in that order, with the same classes."""
        indices = np.asarray(indices, dtype=np.int64)
        return Dataset(self.name, self.modality, take(self.inputs, indices), self.labels[indices], list(self.classes))


def take(inputs: Any, indices: np.ndarray) -> Any:
    """The inputs at ``indices``: array (or tensor) indexing, or a list for lists of paths/strings."""
    if isinstance(inputs, np.ndarray) or hasattr(inputs, "index_select"):
        return inputs[indices]
    return [inputs[i] for i in indices]


def concat_inputs(a: Any, b: Any) -> Any:
    """Two parts' inputs as one: arrays concatenated, lists (of paths or strings) joined."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.concatenate([a, b])
    return [*a, *b]


@dataclass
class DataSplit:
    """A train set and a held-out test set drawn from the same source."""

    train: Dataset
    test: Dataset


def few_shot_indices(labels: np.ndarray, k: int, seed: int, classes: list[str] | None = None) -> np.ndarray:
    """Draw ``k`` examples of every class, reproducibly.

    For each class (in label order) the class's indices are permuted with a generator
    seeded by ``seed`` and the first ``k`` are taken, so a larger ``k`` with the same
    seed extends a smaller one.

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
        Label of every example.
    k : int
        Examples per class, at least 1.
    seed : int
        Seed of the draw (>= 0).
    classes : list of str, optional
        Class names by label index, for error messages.

    Returns
    -------
    ndarray of int64, shape (k * n_classes,)
        Indices into ``labels``, grouped by class.

    Raises
    ------
    DataError
        If ``k`` is not a positive integer, ``seed`` is negative or a class has fewer than ``k`` examples.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"labels per class must be a positive integer; got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"the seed of a labelled draw must be an integer >= 0; got {seed!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"labels have shape {labels.shape}; expected a non-empty 1-D array, one label per example")
    if labels.dtype.kind in "fc" and np.isnan(labels).any():
        raise DataError(f"labels hold NaN at position {int(np.flatnonzero(np.isnan(labels))[0])}; expected a label")
    try:
        unique = np.unique(labels)
    except TypeError as exc:
        raise DataError(f"labels mix values that cannot be compared ({exc}); expected labels of one type") from None
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in unique:
        members = np.flatnonzero(labels == cls)
        if len(members) < k:
            # classes names label indices; any other label (a string, an index past the list) names itself
            named = classes is not None and labels.dtype.kind in "iu" and 0 <= cls < len(classes)
            name = classes[cls] if named else cls.item()
            raise DataError(
                f"class {name!r} has only {len(members)} training examples but {k} labels per class were asked for; "
                f"use --labels-per-class {len(members)} or fewer"
            )
        chosen.append(members[rng.permutation(len(members))[:k]])
    return np.concatenate(chosen).astype(np.int64)


def content_hash(inputs: np.ndarray | list[str], path_inputs: bool = False) -> str:
    """A sha256 of the inputs' content (array bytes and shape, the strings, or the files).

    Parameters
    ----------
    inputs : ndarray or list of str
        An array is hashed by dtype, shape and bytes; any other sequence item by item, as ``str(item)``.
    path_inputs : bool, default=False
        Items are file paths: each existing file's bytes are hashed, not its name, so two folders
        of files with the same names (and times, as ``cp -p`` or ``tar`` keep them) but other
        pixels never share a cache entry, and a moved folder keeps its entry.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    if isinstance(inputs, np.ndarray):
        array = np.ascontiguousarray(inputs)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    else:
        for item in inputs:
            if path_inputs and os.path.isfile(item):
                file_digest = hashlib.sha256()
                with open(item, "rb") as stream:
                    for block in iter(lambda: stream.read(1 << 20), b""):
                        file_digest.update(block)
                digest.update(file_digest.digest())
            else:
                digest.update(str(item).encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
    return digest.hexdigest()
