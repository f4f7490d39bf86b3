"""Unlabelled data: the target domain of adaptation, or either side of a domain distance.

Domain adaptation's target has no labels, and a distance between two domains needs none, so
these readers take what :func:`transferkit.data.load_dataset` takes and more: a folder of
images with or without class sub-folders, a ``.txt`` of one text per line, a CSV with only a
text column, a ``.npz`` with only ``X``. Labels that are there are ignored.
"""

from __future__ import annotations

import csv
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .user import IMAGE_EXTENSIONS, _class_images, _to_images, csv_rows

__all__ = ["UnlabelledData", "load_unlabelled", "has_labels"]

_TEXT_SUFFIXES = (".txt",)
_CSV_SUFFIXES = (".csv", ".tsv")


@dataclass
class UnlabelledData:
    """Inputs of one modality, without labels.

    Attributes
    ----------
    name : str
        Where the data came from (a built-in name or a path).
    modality : {"image", "text", "tabular"}
    inputs : ndarray or list of str
        As in :class:`transferkit.data.Dataset`: image arrays or paths, texts, feature rows.
    """

    name: str
    modality: str
    inputs: np.ndarray | list[str]

    def __len__(self) -> int:
        return len(self.inputs)


def has_labels(source: str, *, label_column: str | None = None) -> bool:
    """Whether ``source`` carries labels :func:`~transferkit.data.load_dataset` can read.

    Decided from the structure alone, before anything is loaded: a built-in name; a folder with
    sub-folders (read as classes) and no image beside them; a CSV whose header has the label column; a ``.npz`` holding
    ``y``. A ``.txt``, a folder of images alone, a CSV of texts alone or a ``.npz`` of ``X``
    alone has none, and neither has a file of a type neither reader takes.

    Parameters
    ----------
    source : str
        A built-in name or a path.
    label_column : str, optional
        The CSV's label column; by default ``"label"`` or ``"class"``.

    Returns
    -------
    bool
    """
    from .builtin import BUILTIN_DATASETS

    if source in BUILTIN_DATASETS:
        return True
    path = Path(source).expanduser()
    if path.is_dir():  # class sub-folders, and no image beside them (which a class layout would leave out)
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        loose = any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in entries)
        return not loose and any(p.is_dir() for p in entries)
    suffix = path.suffix.lower()
    if not path.is_file() or suffix in _TEXT_SUFFIXES:
        return False
    if suffix in _CSV_SUFFIXES:
        columns = _csv_header(path)
        wanted = [label_column] if label_column is not None else ["label", "class"]
        return any(c in columns for c in wanted)
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return "y" in archive.files
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return False  # load_unlabelled names what is wrong with it
    return False  # an unknown file type: load_unlabelled's error names every type either reader takes


def load_unlabelled(
    source: str,
    *,
    text_column: str | None = None,
    data_dir: str | None = None,
) -> UnlabelledData:
    """Read the inputs of a data set, with or without labels (labels present are ignored).

    Parameters
    ----------
    source : str
        A built-in name (its training part), or a path: a folder of images (every readable image
        under it, class sub-folders or not; ``train/`` and ``test/`` both), a ``.txt`` (one text
        per non-empty line, UTF-8), a ``.csv``/``.tsv`` with a text column, or a ``.npz`` with ``X``.
    text_column : str, optional
        The CSV's text column; default ``"text"``.
    data_dir : str, optional
        Folder searched first for a built-in data set's files.

    Returns
    -------
    UnlabelledData

    Raises
    ------
    DataError
        If the path is missing or holds no usable input.
    UnknownNameError
        If ``source`` is neither a built-in name nor a path.
    """
    from . import load_dataset
    from .builtin import BUILTIN_DATASETS

    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise DataError(f"data set must be a built-in name or a path; got {source!r} (see `transferkit list`)")
    source = str(source)
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if text_column is not None and not (path.is_file() and suffix in _CSV_SUFFIXES):
        raise DataError(f"--text-column {text_column!r} only applies to a .csv data set; got data set {source!r}")
    if source in BUILTIN_DATASETS or not path.exists():
        # built-in names, and the clear errors for a missing path or an unknown name
        train = load_dataset(source, data_dir=data_dir).train
        return UnlabelledData(source, train.modality, train.inputs)
    if path.is_dir():
        return UnlabelledData(source, "image", _folder_images(path))
    if suffix in _TEXT_SUFFIXES:
        return UnlabelledData(source, "text", _text_lines(path))
    if suffix in _CSV_SUFFIXES:
        return UnlabelledData(source, "text", _csv_texts(path, text_column or "text"))
    if suffix == ".npz":
        modality, inputs = _npz_inputs(path)
        return UnlabelledData(source, modality, inputs)
    raise DataError(
        f"unsupported file type {suffix or '(none)'!r} for {source!r}; expected an image folder, a .txt (one text "
        "per line), a .csv (a text column) or a .npz (array X)"
    )


def _folder_images(folder: Path) -> list[str]:
    valid, corrupt = _class_images(folder)  # recursive; corrupt files skipped with a warning
    if not valid:
        has_files = any(not p.name.startswith(".") for p in folder.iterdir())
        detail = f"only corrupt images ({len(corrupt)})" if corrupt else "no image files"
        raise DataError(
            f"folder '{folder}' holds {detail if has_files else 'nothing'}; expected images (files ending in "
            ".png, .jpg, ...) directly in it or in sub-folders"
        )
    return valid


def _text_lines(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not UTF-8 text ({exc}); save it as UTF-8") from exc
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise DataError(f"'{path}' has no non-empty line; expected one text per line")
    return texts


def _csv_header(path: Path) -> list[str]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return list(next(csv.reader(handle, delimiter=delimiter), None) or [])
    except (UnicodeDecodeError, csv.Error, OSError):
        return []  # the reader itself reports the problem


def _csv_texts(path: Path, text_column: str) -> list[str]:
    columns, _, rows, delimiter = csv_rows(path, text_column, labelled=False)
    seen: dict[str, set[str]] = {c: set() for c in columns if c != text_column}  # the other columns' values
    spanning = []  # (first line, last line, text) of texts over several lines
    for first_line, last_line, row in rows:
        for column, values in seen.items():
            values.add((row.get(column) or "").strip())
        if last_line > first_line:
            spanning.append((first_line, last_line, row.get(text_column) or ""))
    if seen:
        _check_not_swallowed(path, spanning, columns, seen, delimiter)
    texts = [text for _, _, row in rows if (text := row.get(text_column) or "").strip()]
    if not texts:
        raise DataError(f"CSV '{path}' has no rows with a non-empty {text_column!r}")
    return texts


def _check_not_swallowed(
    path: Path, spanning: list[tuple[int, int, str]], columns: list[str], seen: dict[str, set[str]], delimiter: str
) -> None:
    """Refuse a text over several lines that holds a line reading as a whole row, its other columns holding
    values those columns hold elsewhere: rows a quote left open swallowed (the csv module reads on to the
    next quote without a word). A text that merely spans lines, a review with paragraphs, passes."""
    for first, last, text in spanning:
        for inner in text.splitlines()[1:]:
            fields = next(csv.reader([inner], delimiter=delimiter), [])
            if len(fields) == len(columns) and all(
                fields[i].strip() in seen[c] for i, c in enumerate(columns) if c in seen
            ):
                raise DataError(
                    f"CSV '{path}' lines {first}-{last} are read as one text, which holds what looks like a row "
                    f"({inner.strip()[:60]!r}); is a quote left open on line {first}?"
                )


def _npz_inputs(path: Path) -> tuple[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive.files:
                raise DataError(
                    f"'{path}' has no array X; arrays found: {', '.join(archive.files) or 'none'} (expected X)"
                )
            X = archive["X"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read '{path}' as a .npz of numeric arrays: {exc}") from exc
    if len(X) == 0:
        raise DataError(f"'{path}': X is empty; expected at least one example")
    if X.ndim in (3, 4):
        return "image", _to_images(X, path)
    if X.ndim == 2 and (np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.bool_)):
        features = X.astype(np.float32)
        if not np.isfinite(features).all():
            raise DataError(f"'{path}': X holds NaN or infinite values; expected finite numbers")
        return "tabular", features
    raise DataError(
        f"'{path}': X has shape {X.shape} and dtype {X.dtype}; expected (N, D) numbers or (N, H, W[, C]) images"
    )
