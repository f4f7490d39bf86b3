"""The user's own data: an image folder, a CSV of texts or a ``.npz`` of arrays."""

from __future__ import annotations

import csv
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._dataset import Dataset, DataSplit
from .builtin import stratified_split

__all__ = [
    "IMAGE_EXTENSIONS",
    "check_image_array",
    "check_labels",
    "load_image_folder",
    "load_csv",
    "load_npz",
    "read_folder_examples",
    "read_csv_examples",
    "read_npz_examples",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_INT = re.compile(r"^[+-]?\d+$")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_image(path: Path) -> str | None:
    """None if PIL can read the whole file, else the reason it cannot.

    PNG's chunk checksums let ``verify`` find damage without decoding; other formats (a JPEG
    cut short passes ``verify``) are decoded, a JPEG at 1/8 scale, which still reads all of
    its data. So a damaged file is skipped here, with a warning, and never aborts a run later.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()
            else:
                image.draft("RGB", (1, 1))
                image.load()
    except Exception as exc:  # PIL raises many kinds of error for a bad file
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _class_images(class_dir: Path) -> tuple[list[str], list[str]]:
    """Valid and corrupt image files under ``class_dir`` (recursively, hidden entries ignored)."""
    valid: list[str] = []
    corrupt: list[str] = []
    for root, dirs, files in os.walk(class_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(root) / name
            reason = _check_image(path)
            if reason is None:
                valid.append(str(path))
            else:
                warnings.warn(f"skipping corrupt image {path}: {reason}", stacklevel=3)
                corrupt.append(str(path))
    return valid, corrupt


def _read_class_folders(folder: Path, name: str) -> tuple[list[str], list[str], list[str]]:
    """Image paths, their class names and the sorted class names of a folder of class sub-folders."""
    classes = [d.name for d in _visible_dirs(folder)]
    if not classes:
        has_images = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())
        raise DataError(
            f"image folder '{folder}' has no class sub-folders"
            + (" (its images lie directly in it)" if has_images else "")
            + "; expected one sub-folder per class, e.g. cats/ and dogs/, each holding that class's images"
        )
    loose = [
        p.name
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if loose:
        warnings.warn(
            f"{len(loose)} image(s) lie directly in '{folder}', outside any class sub-folder, and are left out "
            f"(e.g. {sorted(loose)[0]}); move them into their class's folder",
            stacklevel=3,
        )
    paths: list[str] = []
    names: list[str] = []
    for cls in classes:
        valid, corrupt = _class_images(folder / cls)
        if not valid:
            if corrupt:
                shown = ", ".join(corrupt[:3]) + (f" and {len(corrupt) - 3} more" if len(corrupt) > 3 else "")
                raise DataError(
                    f"class folder '{folder / cls}' of data set {name!r} has no readable image; "
                    f"every image is corrupt: {shown}"
                )
            raise DataError(
                f"class folder '{folder / cls}' of data set {name!r} has no images; expected files "
                f"ending in {', '.join(IMAGE_EXTENSIONS)}"
            )
        paths += valid
        names += [cls] * len(valid)
    return paths, names, classes


def load_image_folder(path: str | os.PathLike, test_size: int | None = None) -> DataSplit:
    """Load a folder of images with one sub-folder per class.

    A folder holding ``train/`` and ``test/`` sub-folders, each with class sub-folders, is
    used as its own split; otherwise the images are split 80/20, stratified, seeded 12345.

    Parameters
    ----------
    path : path-like
        The folder.
    test_size : int, optional
        Number of test images, when the folder has no ``test/`` split.

    Returns
    -------
    DataSplit
        Inputs are lists of image file paths; classes are the sorted sub-folder names.

    Raises
    ------
    DataError
        If the folder is empty, a class has no readable image, or the split cannot be made.
    """
    folder = Path(path).expanduser()
    name = str(path)
    if not folder.is_dir():
        raise DataError(f"no such folder: '{path}'; expected a folder with one sub-folder of images per class")
    if not any(not p.name.startswith(".") for p in folder.iterdir()):
        raise DataError(f"image folder '{folder}' is empty; expected one sub-folder of images per class")
    train_dir, test_dir = folder / "train", folder / "test"
    if train_dir.is_dir() and test_dir.is_dir() and _visible_dirs(train_dir):
        if test_size is not None:
            raise DataError(
                f"image folder '{folder}' has its own train/ and test/ split; got test_size={test_size}, "
                "which only applies to data without a test split (leave it out)"
            )
        train_paths, train_names, classes = _read_class_folders(train_dir, name)
        test_paths, test_names, test_classes = _read_class_folders(test_dir, name)
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise DataError(
                f"'{test_dir}' has classes {', '.join(unknown)} that '{train_dir}' lacks; "
                f"expected test classes among: {', '.join(classes)}"
            )
        index = {c: i for i, c in enumerate(classes)}
        return DataSplit(
            Dataset(name, "image", train_paths, [index[c] for c in train_names], list(classes)),
            Dataset(name, "image", test_paths, [index[c] for c in test_names], list(classes)),
        )
    paths, names, classes = _read_class_folders(folder, name)
    index = {c: i for i, c in enumerate(classes)}
    return stratified_split(Dataset(name, "image", paths, [index[c] for c in names], list(classes)), test_size)


def read_folder_examples(path: str | os.PathLike) -> Dataset:
    """Every image of a folder of class sub-folders, unsplit (a ``train/`` and ``test/`` layout merged).

    Parameters
    ----------
    path : path-like
        The folder.

    Returns
    -------
    Dataset
        Image file paths; classes are the sorted sub-folder names.

    Raises
    ------
    DataError
        If the folder has no class sub-folders or a class has no readable image.
    """
    folder = Path(path).expanduser()
    name = str(path)
    if not folder.is_dir():
        raise DataError(f"no such folder: '{path}'; expected a folder with one sub-folder of images per class")
    parts = [folder / "train", folder / "test"]
    if not all(p.is_dir() and _visible_dirs(p) for p in parts):
        parts = [folder]
    read = [_read_class_folders(part, name) for part in parts]
    classes = sorted({c for _, _, part_classes in read for c in part_classes})
    index = {c: i for i, c in enumerate(classes)}
    paths = [p for part_paths, _, _ in read for p in part_paths]
    return Dataset(name, "image", paths, [index[c] for _, names, _ in read for c in names], classes)


def _encode_labels(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Label indices and class names: sorted strings, or sorted numerically when all are integers."""
    unique = set(values)
    if all(_INT.match(v) for v in unique):
        classes = sorted(unique, key=lambda v: (int(v), v))
    else:
        classes = sorted(unique)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in values], dtype=np.int64), classes


def load_csv(
    path: str | os.PathLike,
    text_column: str | None = None,
    label_column: str | None = None,
    test_size: int | None = None,
) -> DataSplit:
    """Load texts and labels from a CSV file with a header row, split 80/20 (see :func:`read_csv_examples`).

    Parameters
    ----------
    path : path-like
        The ``.csv`` (comma-separated) or ``.tsv`` (tab-separated) file, UTF-8.
    text_column, label_column : str, optional
        As in :func:`read_csv_examples`.
    test_size : int, optional
        Number of test rows; by default 20 %, stratified, seeded 12345.

    Returns
    -------
    DataSplit
    """
    return stratified_split(read_csv_examples(path, text_column, label_column), test_size)


def read_csv_examples(
    path: str | os.PathLike, text_column: str | None = None, label_column: str | None = None
) -> Dataset:
    """Every text and label of a CSV file with a header row, unsplit.

    Parameters
    ----------
    path : path-like
        The ``.csv`` (comma-separated) or ``.tsv`` (tab-separated) file, UTF-8.
    text_column : str, optional
        Column of the texts; default ``"text"``.
    label_column : str, optional
        Column of the labels; default ``"label"``, or ``"class"`` when there is no ``"label"``.

    Returns
    -------
    Dataset
        Text data; rows with an empty text are dropped.

    Raises
    ------
    DataError
        If a column is missing, the file is not valid UTF-8 CSV, a row has more fields than the
        header, a label is empty, or a quote left open swallowed the rows after it.
    """
    path = Path(path).expanduser()
    text_col = text_column if text_column is not None else "text"
    _, label_col, rows, delimiter = csv_rows(path, text_col, label_column, labelled=True)
    texts: list[str] = []
    values: list[str] = []
    spanning: list[tuple[int, int, str]] = []  # (first line, last line, text) of texts over several lines
    for first_line, last_line, row in rows:
        text, label = row.get(text_col) or "", (row.get(label_col) or "").strip()
        if not text.strip():
            continue
        if not label:
            raise DataError(
                f"CSV '{path}' line {last_line} has an empty {label_col!r}; expected a label on every row with a text"
            )
        texts.append(text)
        values.append(label)
        if last_line > first_line:
            spanning.append((first_line, last_line, text))
    if not texts:
        raise DataError(f"CSV '{path}' has no rows with a non-empty {text_col!r}")
    _check_no_swallowed_rows(path, spanning, set(values), delimiter)
    labels, classes = _encode_labels(values)
    return Dataset(str(path), "text", texts, labels, classes)


def csv_rows(
    path: Path, text_column: str, label_column: str | None = None, *, labelled: bool
) -> tuple[list[str], str | None, list[tuple[int, int, dict[str, str]]], str]:
    """The rows of a UTF-8 CSV (or TSV) with a header, with the checks every CSV reader here shares.

    Parameters
    ----------
    path : Path
    text_column : str
        Must be a column.
    label_column : str, optional
        With ``labelled``, must be a column; default ``"label"``, or ``"class"`` when there is none.
    labelled : bool
        Whether a label column is needed.

    Returns
    -------
    columns : list of str
    label_column : str or None
        The one resolved, with ``labelled``.
    rows : list of (int, int, dict)
        First line, last line and fields of each row (a quoted text may span lines).
    delimiter : str

    Raises
    ------
    DataError
        If the file is empty, not UTF-8 or malformed, a column is missing, or a row has more
        fields than the header (an unquoted delimiter in a text).
    """
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter, strict=True)
            columns = [c for c in (reader.fieldnames or []) if c is not None]
            if not columns:
                example = "text,label" if labelled else "text"
                raise DataError(f"CSV '{path}' is empty; expected a header row such as: {example}")
            shown = ", ".join(columns)
            if text_column not in columns:
                raise DataError(f"CSV '{path}' has no column {text_column!r}; columns are: {shown} (use --text-column)")
            if labelled:
                label_column = label_column or ("label" if "label" in columns else "class")
                if label_column not in columns:
                    raise DataError(
                        f"CSV '{path}' has no column {label_column!r}; columns are: {shown} (use --label-column)"
                    )
                if label_column == text_column:  # the model would read each answer as its input: a silent 100 %
                    raise DataError(
                        f"CSV '{path}': the text column and the label column are both {text_column!r}; "
                        "name different columns with --text-column and --label-column"
                    )
            rows = []
            last_line = reader.line_num
            for row in reader:
                first_line, last_line = last_line + 1, reader.line_num
                if None in row:  # more fields than the header: an unquoted delimiter would shift the fields
                    raise DataError(
                        f"CSV '{path}' line {last_line} has {len(columns) + len(row[None])} fields but the "
                        f'header has {len(columns)}; quote a text that contains {delimiter!r}, e.g. "good, cheap"'
                    )
                rows.append((first_line, last_line, row))
    except UnicodeDecodeError as exc:
        raise DataError(f"CSV '{path}' is not UTF-8 text ({exc}); save it as UTF-8") from exc
    except csv.Error as exc:
        raise DataError(f"CSV '{path}' is malformed: {exc}") from exc
    return columns, label_column if labelled else None, rows, delimiter


def _check_no_swallowed_rows(
    path: Path, spanning: list[tuple[int, int, str]], labels: set[str], delimiter: str
) -> None:
    """Refuse a text over several lines that holds lines ending in a delimiter and a label: rows an
    unclosed quote swallowed (the csv module reads on to the next quote without a word). A text
    that merely spans lines, a review with paragraphs, passes."""
    for first, last, text in spanning:
        for inner in text.splitlines()[1:]:
            head, found, tail = inner.rpartition(delimiter)
            if found and head.strip() and tail.strip() in labels:
                raise DataError(
                    f"CSV '{path}' lines {first}-{last} are read as one text, which holds what looks like a row "
                    f"({inner.strip()[:60]!r}); is a quote left open on line {first}?"
                )


def check_image_array(X: np.ndarray, name: str = "X") -> np.ndarray:
    """An image array checked and put in a form the preprocessing reads: uint8 0..255, or float 0..1.

    ``(N, H, W)`` or ``(N, H, W, C)`` with C 1 (dropped) or 3. Integers must lie in 0..255 (returned as
    uint8); floats must be finite and in 0..1 (returned as they are) or 0..255 (divided by 255), so
    pixels are never read on the wrong scale without a word.

    Raises
    ------
    DataError
        Naming ``name``, what it holds and what was expected.
    """
    if X.ndim == 4:
        if X.shape[-1] not in (1, 3):
            raise DataError(
                f"{name} has shape {X.shape}; 4-D images must be (N, H, W, C) with C 1 or 3 "
                "(channels first? pass X.transpose(0, 2, 3, 1))"
            )
        if X.shape[-1] == 1:
            X = X[..., 0]
    if X.size == 0:
        return X.astype(np.uint8)
    if np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.bool_):
        low, high = int(X.min()), int(X.max())
        if low < 0 or high > 255:
            raise DataError(f"{name} holds integers from {low} to {high}; expected pixel values 0..255")
        return X.astype(np.uint8)
    if not np.isfinite(X).all():
        raise DataError(f"{name} holds NaN or infinite values; expected pixel values 0..255 or 0..1")
    low, high = float(X.min()), float(X.max())
    if low >= 0 and high <= 1:
        return X
    if low >= 0 and high <= 255:
        return (X / 255.0).astype(np.float32)
    raise DataError(f"{name} holds values from {low:g} to {high:g}; expected pixel values 0..255 or 0..1")


def check_labels(y: np.ndarray, name: str = "y") -> None:
    """Refuse labels that are not class labels: missing values, continuous numbers, mixed types.

    Raises
    ------
    DataError
        Naming ``name``, the first offending position and what was expected.
    """
    expected = "expected a class label (an integer or a string) for every example"
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            at = int(np.flatnonzero(~np.isfinite(y))[0])
            raise DataError(f"{name} holds {y[at]} at position {at}; {expected}")
        if not np.all(y == np.round(y)):
            at = int(np.flatnonzero(y != np.round(y))[0])
            raise DataError(f"{name} holds continuous values such as {y[at]:g} (position {at}); {expected}")
    if y.dtype.kind == "O":
        for at, value in enumerate(y):
            if value is None or (isinstance(value, float) and not np.isfinite(value)):
                raise DataError(f"{name} holds {value!r} at position {at}; {expected}")
        kinds = sorted({"string" if isinstance(v, str) else type(v).__name__ for v in y})
        if len(kinds) > 1:
            raise DataError(f"{name} mixes label types ({', '.join(kinds)}); {expected}, all of one type")


def _to_images(X: np.ndarray, path: Path) -> np.ndarray:
    X = check_image_array(X, f"'{path}': X")
    return X if X.dtype == np.uint8 else np.rint(X * 255.0).astype(np.uint8)


def load_npz(path: str | os.PathLike, test_size: int | None = None) -> DataSplit:
    """Load arrays ``X`` and ``y`` from a ``.npz`` file, split 80/20 (see :func:`read_npz_examples`).

    Parameters
    ----------
    path : path-like
        The file. ``X`` of shape ``(N, H, W)`` or ``(N, H, W, C)`` (C 1 or 3) holds images
        (0..255, or floats in 0..1); ``X`` of shape ``(N, D)`` holds tabular features.
    test_size : int, optional
        Number of test examples; by default 20 %, stratified, seeded 12345.

    Returns
    -------
    DataSplit
    """
    return stratified_split(read_npz_examples(path), test_size)


def read_npz_examples(path: str | os.PathLike) -> Dataset:
    """Every example of a ``.npz`` file's arrays ``X`` and ``y``, unsplit.

    Parameters
    ----------
    path : path-like
        The file. ``X`` of shape ``(N, H, W)`` or ``(N, H, W, C)`` (C 1 or 3) holds images
        (0..255, or floats in 0..1); ``X`` of shape ``(N, D)`` holds tabular features.

    Returns
    -------
    Dataset
        Images as uint8, tabular data as float32; classes are the sorted unique ``y`` as strings.

    Raises
    ------
    DataError
        If ``X`` or ``y`` is missing or their shapes or values do not fit.
    """
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            missing = [k for k in ("X", "y") if k not in keys]
            if missing:
                raise DataError(
                    f"'{path}' has no array {' or '.join(missing)}; arrays found: "
                    f"{', '.join(keys) or 'none'} (expected X with the inputs and y with the labels)"
                )
            X, y = archive["X"], archive["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read '{path}' as a .npz of numeric arrays: {exc}") from exc
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"'{path}': y has shape {y.shape} for X of shape {X.shape}; expected ({len(X)},)")
    if X.ndim in (3, 4):
        inputs, modality = _to_images(X, path), "image"
    elif X.ndim == 2:
        if not (np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.bool_)):
            raise DataError(f"'{path}': X has dtype {X.dtype}; expected numbers")
        inputs, modality = X.astype(np.float32), "tabular"
        if not np.isfinite(inputs).all():
            raise DataError(f"'{path}': X holds NaN or infinite values; expected finite numbers")
    else:
        raise DataError(f"'{path}': X has shape {X.shape}; expected (N, D) features or (N, H, W[, C]) images")
    check_labels(y, f"'{path}': y")
    if np.issubdtype(y.dtype, np.floating):  # whole numbers by now
        y = y.astype(np.int64)
    unique, labels = np.unique(y, return_inverse=True)
    return Dataset(str(path), modality, inputs, labels.reshape(-1), [str(v) for v in unique])
