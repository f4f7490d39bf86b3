"""Run records: the JSON every command writes, read back for the report.

A run record is one JSON object. ``kind`` says which command wrote it (``"fit"``, ``"curve"``);
records written before ``kind`` existed, and the ``--json`` files of the other commands, are
recognised by their fields (``accuracy`` and ``baselines``: fit; ``ranking``: rank; ``methods``
with ``source`` and ``target``: adapt; ``rows`` with ``source`` and ``target``: transfer-lr;
``proxy_a_distance``: similarity; ``provenance`` with ``name`` and ``path``: pretrain).
:func:`check_record` refuses anything else, and a fit or curve record without the fields the
report reads.
What the report shows of the best model — its confusion matrix and a few misclassified test
examples — is stored in the record itself as ``evaluation`` (see :func:`evaluation_record`),
thumbnails included, so a report can be written again from the record alone.
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = [
    "RECORD_FILE",
    "REPORT_FILE",
    "KNOWN_KINDS",
    "accuracy_interval",
    "check_record",
    "evaluation_record",
    "load_record",
    "mean_std",
    "method_summary",
    "record_kind",
    "thumbnail",
]

RECORD_FILE = "run.json"
REPORT_FILE = "report.html"
THUMBNAIL_SIDE = 64  # pixels; larger images are shrunk so that a report stays small
TEXT_CHARS = 280  # characters of a misclassified text shown in the report
KNOWN_KINDS = ("fit", "curve", "rank", "adapt", "similarity", "transfer-lr", "pretrain")


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a run record from a run folder (its ``run.json``) or a JSON file.

    Parameters
    ----------
    path : path
        A folder written by ``transferkit fit --out`` / ``curve --out``, or a record file.

    Returns
    -------
    dict
        The record.

    Raises
    ------
    DataError
        When the path does not exist, holds no record, is not a JSON object, or is not a run record
        the report can show (see :func:`check_record`).
    """
    path = Path(path)
    file = path / RECORD_FILE if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        raise DataError(f"run folder {str(path)!r} has no {RECORD_FILE}; expected a folder written with --out")
    if not file.is_file():
        raise DataError(f"no such run folder or record file: {str(path)!r}")
    try:
        record = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"run record {str(file)!r} is not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise DataError(f"run record {str(file)!r} must hold a JSON object; got {type(record).__name__}")
    check_record(record, str(file))
    return record


def check_record(record: dict[str, Any], source: str) -> str:
    """Raise unless ``record`` is a run record the report can show; return its kind.

    Parameters
    ----------
    record : dict
        A run record, as read from its JSON file.
    source : str
        Where it came from, for the message.

    Returns
    -------
    str
        Its kind, one of :data:`KNOWN_KINDS`.

    Raises
    ------
    DataError
        When the record is of no kind transferkit writes (any other JSON file: a saved model's
        ``config.json``, ``{}``), or a fit or curve record lacks a field the report reads.
    """
    if "kind" in record and record["kind"] not in KNOWN_KINDS:
        raise DataError(
            f"{source!r} is not a transferkit run record: kind {record['kind']!r} is unknown; "
            f"expected one of {', '.join(KNOWN_KINDS)}"
        )
    kind = record_kind(record)
    if kind not in KNOWN_KINDS:
        raise DataError(
            f"{source!r} is not a transferkit run record: it has no 'kind' and not the fields of any record "
            f"({', '.join(KNOWN_KINDS)}); expected the run.json of `fit --out` / `curve --out` or a command's --json"
        )
    if kind == "fit":
        _check_fit(record, source)
    elif kind == "curve":
        _check_curve(record, source)
    return kind


def _fail(source: str, kind: str, field: str, expected: str) -> DataError:
    return DataError(f"{kind} record {source!r}: field {field!r} is missing or not {expected}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dicts(record: dict[str, Any], key: str, source: str, kind: str) -> list[dict[str, Any]]:
    value = record.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise _fail(source, kind, key, "a non-empty list of objects")
    return value


def _fields(entry: dict[str, Any], where: str, checks: dict[str, Any], source: str, kind: str) -> None:
    for key, (test, expected) in checks.items():
        if not test(entry.get(key)):
            raise _fail(source, kind, f"{where}{key}", expected)


_NUMBER = (_number, "a number")
_INTERVAL = (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_number, v)), "a pair of numbers [low, high]")
_NUMBERS = (lambda v: isinstance(v, list) and all(map(_number, v)), "a list of numbers")
_TEXT = (lambda v: isinstance(v, str), "a string")


def _check_fit(record: dict[str, Any], source: str) -> None:
    """The fields the report reads of a fit record: its methods, or (older records) ``accuracy``."""
    if not record.get("methods"):
        _fields(record, "", {"accuracy": _NUMBER}, source, "fit")
        return
    for i, method in enumerate(_dicts(record, "methods", source, "fit")):
        checks = {"accuracy": _NUMBER}
        if "ci95" in method:
            checks.update(ci95=_INTERVAL, label=_TEXT)  # both drawn in the plot
        _fields(method, f"methods[{i}].", checks, source, "fit")


def _check_curve(record: dict[str, Any], source: str) -> None:
    """The fields the report reads of a curve record: the budgets, and every method's point at each."""
    ks = record.get("labels_per_class")
    if not isinstance(ks, list) or not ks or not all(map(_number, ks)):
        raise _fail(source, "curve", "labels_per_class", "a non-empty list of numbers")
    point_checks = {"k": _NUMBER, "accuracy": _NUMBER, "ci95": _INTERVAL,
                    "fit_seconds_per_seed": _NUMBERS, "evaluate_seconds_per_seed": _NUMBERS}  # fmt: skip
    for i, method in enumerate(_dicts(record, "methods", source, "curve")):
        _fields(method, f"methods[{i}].", {"name": _TEXT, "label": _TEXT}, source, "curve")
        points = method.get("points")
        if not isinstance(points, list) or len(points) != len(ks) or not all(isinstance(p, dict) for p in points):
            raise _fail(source, "curve", f"methods[{i}].points", f"a list of {len(ks)} objects, one per k")
        for j, point in enumerate(points):
            _fields(point, f"methods[{i}].points[{j}].", point_checks, source, "curve")


def mean_std(values: Sequence[float]) -> str:
    """``"0.875 ± 0.059"``: the mean and the sample standard deviation of accuracies over seeds (0 for one seed).

    Parameters
    ----------
    values : sequence of float
        One accuracy per seed.

    Returns
    -------
    str
    """
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def record_kind(record: dict[str, Any]) -> str:
    """Which command wrote ``record``: ``"fit"``, ``"curve"``, ``"rank"``, ``"adapt"``, ... or ``"run"``.

    Only classifies; :func:`check_record` refuses a record of no known kind.

    Parameters
    ----------
    record : dict
        A run record.

    Returns
    -------
    str
        The record's ``kind``, else one inferred from its fields; ``"run"`` when nothing is known.
    """
    if isinstance(record.get("kind"), str):
        return record["kind"]
    if "accuracy" in record and "baselines" in record:
        return "fit"
    if "ranking" in record:
        return "rank"
    if "methods" in record and "source" in record and "target" in record:
        return "adapt"
    if "rows" in record and "source" in record and "target" in record:
        return "transfer-lr"
    if "proxy_a_distance" in record:
        return "similarity"
    if "provenance" in record and "name" in record and "path" in record:
        return "pretrain"
    return "run"


def accuracy_interval(correct: Any, level: float = 0.95) -> tuple[float, float, float]:
    """Mean accuracy and its interval over labelled draws (seeds) and test examples.

    This is the negative-transfer guard's interval (:func:`transferkit.selection.transfer_gain`)
    against a baseline that is never right: it then measures the accuracy itself, and its
    variance has the same two parts, the spread of the per-seed accuracies (``s² / S``) and the
    variance of the per-example correctness averaged over seeds (``var / n``). With one seed only
    the test-example part is left. Every example right (or every one wrong) gets the guard's
    pseudo-examples, so that ten test examples give an interval below 1, not a certain 1.0.

    Parameters
    ----------
    correct : array-like of shape (S, n) or (n,)
        Whether each test example was classified correctly, per seed.
    level : float
        Confidence level.

    Returns
    -------
    (mean, low, high) : tuple of float
        Accuracies as fractions; the interval is clipped to [0, 1].
    """
    from ..selection import transfer_gain

    matrix = np.asarray(correct, dtype=np.float64)
    estimate = transfer_gain(matrix, np.zeros_like(matrix), level=level)
    return estimate.gain, max(0.0, estimate.low), min(1.0, estimate.high)


def method_summary(
    name: str, label: str, role: str, correct: Any, fit_seconds: Sequence[float], evaluate_seconds: Sequence[float]
) -> dict[str, Any]:
    """One method of a run: accuracy per seed, mean, 95% interval (:func:`accuracy_interval`) and times.

    Parameters
    ----------
    name, label : str
        The strategy's name and how the report shows it (``"linear-probe (efficientnet_lite0.in1k)"``).
    role : {"transfer", "baseline"}
        Whether the method transfers or is a target-only baseline.
    correct : array-like of shape (S, n)
        Test-example correctness per seed.
    fit_seconds, evaluate_seconds : sequence of float
        Time of each seed.

    Returns
    -------
    dict
    """
    matrix = np.atleast_2d(np.asarray(correct, dtype=np.float64))
    mean, low, high = accuracy_interval(matrix)
    return {
        "name": name,
        "label": label,
        "role": role,
        "accuracy": mean,
        "ci95": [low, high],
        "accuracy_per_seed": [float(row.mean()) for row in matrix],
        "fit_seconds": float(np.mean(fit_seconds)),
        "evaluate_seconds": float(np.mean(evaluate_seconds)),
    }


def thumbnail(item: Any, side: int = THUMBNAIL_SIDE) -> str:
    """A small PNG of one image as a ``data:`` URI, for a page that loads nothing from outside.

    Parameters
    ----------
    item : ndarray or path
        An image array ``(H, W)`` / ``(H, W, C)`` (uint8, or floats in [0, 1]) or an image file.
    side : int
        Largest side of the thumbnail; smaller images keep their size (the page enlarges them).

    Returns
    -------
    str
        ``data:image/png;base64,...``
    """
    from PIL import Image

    from ..data.preprocess import as_rgb

    if isinstance(item, np.ndarray):
        array = item if item.dtype == np.uint8 else np.clip(np.asarray(item, np.float64) * 255, 0, 255)
        array = np.asarray(array, dtype=np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        image = Image.fromarray(array)
    else:
        try:
            with Image.open(item) as opened:
                image = as_rgb(opened, str(item))
        except (OSError, DataError) as error:
            raise DataError(f"cannot read image {str(item)!r} for the report: {error}") from error
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shown(item: Any, modality: str) -> dict[str, str]:
    """What the report shows of one test example: a thumbnail, the text, or the first values."""
    if modality == "image":
        return {"thumbnail": thumbnail(item)}
    if modality == "text":
        text = str(item)
        return {"text": text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"}
    values = np.asarray(item, dtype=np.float64).ravel()
    return {"text": ", ".join(f"{v:.3g}" for v in values[:8]) + (", …" if len(values) > 8 else "")}


def _misclassified(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` misclassified test indices, taken in turn from each true class (first in test order),
    so that the examples shown are not all of the one class the model finds hardest."""
    queues = [list(np.flatnonzero((y_true == c) & (y_pred != c))) for c in np.unique(y_true)]
    chosen: list[int] = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(int(queue.pop(0)))
    return chosen


def evaluation_record(
    classes: Sequence[str],
    y_true: Any,
    y_pred: Any,
    inputs: Any,
    *,
    modality: str,
    model: str,
    n_examples: int = 8,
) -> dict[str, Any]:
    """What the report shows of one model on the test set.

    Parameters
    ----------
    classes : sequence of str
        Class names in label-index order.
    y_true, y_pred : array-like of int, shape (n,)
        True and predicted label indices of the test examples.
    inputs : ndarray or list
        The test inputs (images, image paths, texts or feature rows), in the same order.
    modality : {"image", "text", "tabular"}
        How to show an example: a thumbnail, or text.
    model : str
        Which model this is, e.g. ``"linear-probe (efficientnet_lite0.in1k), 50 labels per class, seed 0"``.
    n_examples : int
        Misclassified examples to keep.

    Returns
    -------
    dict
        ``model``, ``accuracy``, ``confusion`` (rows: true class, columns: predicted), ``y_true``,
        ``y_pred`` and ``misclassified`` (index, true and predicted class, thumbnail or text).

    Raises
    ------
    DataError
        When the labels and inputs do not line up or a label is outside the classes.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n_classes = len(classes)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(inputs) != len(y_true):
        raise DataError(
            f"evaluation needs one true and one predicted label per test input; got {y_true.shape}, "
            f"{y_pred.shape} and {len(inputs)} inputs"
        )
    if len(y_true) and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= n_classes):
        raise DataError(f"labels must be class indices in 0..{n_classes - 1}")
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    examples = []
    for index in _misclassified(y_true, y_pred, n_examples):
        examples.append(
            {
                "index": index,
                "true": str(classes[y_true[index]]),
                "predicted": str(classes[y_pred[index]]),
                **_shown(inputs[index], modality),
            }
        )
    return {
        "model": model,
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "classes": [str(c) for c in classes],
        "confusion": confusion.tolist(),
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
        "misclassified": examples,
    }
