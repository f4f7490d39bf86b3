"""Data sets: the built-in ones and the user's own (image folder, CSV, ``.npz``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError, did_you_mean
from ._dataset import Dataset, DataSplit, concat_inputs, content_hash, few_shot_indices
from .builtin import BUILTIN_DATASETS, list_datasets, load_builtin
from .unlabelled import UnlabelledData, has_labels, load_unlabelled
from .user import load_csv, load_image_folder, load_npz, read_csv_examples, read_folder_examples, read_npz_examples

__all__ = [
    "Dataset",
    "DataSplit",
    "few_shot_indices",
    "content_hash",
    "load_dataset",
    "read_examples",
    "load_unlabelled",
    "has_labels",
    "UnlabelledData",
    "list_datasets",
    "BUILTIN_DATASETS",
]

_CSV_SUFFIXES = (".csv", ".tsv")
# suffixes that make a missing name read as a path rather than a misspelt data set name
_FILE_SUFFIXES = _CSV_SUFFIXES + (
    ".npz",
    ".npy",
    ".json",
    ".txt",
    ".zip",
    ".gz",
    ".tar",
    ".parquet",
    ".pkl",
    ".png",
    ".jpg",
    ".jpeg",
    ".xlsx",
    ".h5",
    ".hdf5",
)


def _near_files(source: str) -> list[str]:
    """Existing files whose name without extension is ``source``'s name, e.g. reviews.csv for "reviews"."""
    path = Path(source).expanduser()
    try:
        return sorted(str(path.parent / p.name) for p in path.parent.iterdir() if p.stem == path.name)[:3]
    except OSError:
        return []


def _looks_like_path(source: str) -> bool:
    if "/" in source or os.sep in source or source.startswith(("~", ".")):
        return True
    return Path(source).suffix.lower() in _FILE_SUFFIXES or bool(_near_files(source))


def _check_split(split: DataSplit, source: str) -> None:
    """Raise a DataError if a split cannot train and evaluate a classifier."""
    for part, dataset in (("train", split.train), ("test", split.test)):
        if len(dataset) == 0:
            raise DataError(f"data set {source!r} has no {part} examples; expected at least one per class")
        if dataset.labels.min() < 0 or dataset.labels.max() >= len(dataset.classes):
            raise DataError(f"data set {source!r} has {part} labels outside 0..{len(dataset.classes) - 1}")
    present = np.unique(split.train.labels)
    if len(present) < 2:
        only = split.train.classes[int(present[0])]
        raise DataError(f"data set {source!r} has only one class ({only!r}); a classifier needs at least two")


def load_dataset(
    source: str,
    *,
    test_size: int | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    data_dir: str | None = None,
) -> DataSplit:
    """Load a built-in data set or the user's data from a path.

    Parameters
    ----------
    source : str
        A name from :data:`BUILTIN_DATASETS`, or a path: a folder of images with one
        sub-folder per class (optionally under ``train/`` and ``test/``), a ``.csv`` of
        texts and labels, or a ``.npz`` with arrays ``X`` and ``y``.
    test_size : int, optional
        Number of test examples. By default 2,000 (200 per class) for Fashion-MNIST and a
        stratified 20 % (seeded 12345) for data without an official test split.
    text_column, label_column : str, optional
        CSV columns of the texts and the labels (default ``"text"`` and ``"label"`` or ``"class"``).
    data_dir : str, optional
        Folder searched first for a built-in data set's files.

    Returns
    -------
    DataSplit
        Train and test sets with the same classes.

    Raises
    ------
    DataError
        If the path is missing or unusable, the data has a single class, or a setting does not fit.
    UnknownNameError
        If ``source`` is neither a built-in name nor a path.
    """
    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise DataError(f"data set must be a built-in name or a path; got {source!r} (see `transferkit list`)")
    source = str(source)
    path = Path(source).expanduser()
    is_csv = path.suffix.lower() in _CSV_SUFFIXES and path.is_file()
    for flag, value in (("--text-column", text_column), ("--label-column", label_column)):
        if value is not None and not is_csv:
            raise DataError(f"{flag} {value!r} only applies to a .csv data set; got data set {source!r}")
    if source in BUILTIN_DATASETS:  # a name wins over a same-named folder; write ./name for the folder
        split = load_builtin(source, test_size=test_size, data_dir=data_dir)
    elif path.is_dir():
        split = load_image_folder(source, test_size=test_size)
    elif path.is_file():
        suffix = path.suffix.lower()
        if is_csv:
            split = load_csv(source, text_column=text_column, label_column=label_column, test_size=test_size)
        elif suffix == ".npz":
            split = load_npz(source, test_size=test_size)
        else:
            raise DataError(
                f"unsupported file type {suffix or '(none)'!r} for {source!r}; expected an image folder, "
                "a .csv (texts and labels) or a .npz (arrays X and y)"
            )
    elif _looks_like_path(source):
        near = _near_files(source)
        hint = "; did you mean " + " or ".join(repr(n) for n in near) + "?" if near else ""
        raise DataError(f"no such file or folder: {source!r}{hint}")
    else:
        raise did_you_mean(
            "data set",
            source,
            BUILTIN_DATASETS,
            hint="or give a path to an image folder, a .csv or a .npz; see `transferkit list`",
        )
    _check_split(split, source)
    return split


def read_examples(source: str, *, text_column: str | None = None, label_column: str | None = None) -> Dataset:
    """Every labelled example of a data set, with no train/test split and no check of the class count.

    For a handful of labelled examples (one per class, or of one class) that only score, never
    train: :func:`load_dataset` would refuse to split them.

    Parameters
    ----------
    source : str
        A built-in name (training and test parts together), or a path: a folder of class
        sub-folders, a ``.csv`` of texts and labels, a ``.npz`` of ``X`` and ``y``.
    text_column, label_column : str, optional
        A CSV's columns, as for :func:`load_dataset`.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        If the path is missing or unusable.
    """
    path = Path(str(source)).expanduser()
    is_csv = path.suffix.lower() in _CSV_SUFFIXES and path.is_file()
    if source not in BUILTIN_DATASETS and path.is_dir():
        return read_folder_examples(path)
    if source not in BUILTIN_DATASETS and is_csv:
        return read_csv_examples(path, text_column=text_column, label_column=label_column)
    if source not in BUILTIN_DATASETS and path.is_file() and path.suffix.lower() == ".npz":
        return read_npz_examples(path)
    split = load_dataset(source, text_column=text_column, label_column=label_column)  # names, and its errors
    inputs = concat_inputs(split.train.inputs, split.test.inputs)
    labels = np.concatenate([split.train.labels, split.test.labels])
    return Dataset(str(source), split.train.modality, inputs, labels, list(split.train.classes))
