"""Plots of run records with matplotlib (no display needed; nothing global is changed).

:func:`curve_figure` draws a curve record — accuracy against labels per class, one line per
method, the 95% interval shaded; :func:`methods_figure` draws a fit record — each method's
accuracy with its interval. :func:`save_figure` writes PNG or SVG files and :func:`figure_data_uri`
an SVG ``data:`` URI for a self-contained page.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["curve_figure", "figure_data_uri", "methods_figure", "save_figure"]

# Transfer strategies in strong colours and solid lines, baselines dashed in muted ones.
_TRANSFER_COLOURS = ("#1f6fb4", "#d1495b", "#2a9d5c", "#8e44ad")
_BASELINE_COLOURS = ("#e08a1e", "#6c757d", "#8c564b", "#b5a300")
# Fixed hash salt and no date: the same record gives the same SVG bytes.
_SVG_SETTINGS = {"svg.hashsalt": "transferkit", "svg.fonttype": "path"}


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # a canvas of its own: pyplot's global state and backend are left alone
    return figure


def _colours(methods: list[dict[str, Any]]) -> list[str]:
    transfer = iter(_TRANSFER_COLOURS * 4)
    baseline = iter(_BASELINE_COLOURS * 4)
    return [next(baseline) if m.get("role") == "baseline" else next(transfer) for m in methods]


def curve_figure(record: dict[str, Any]) -> Any:
    """Accuracy against labels per class (log scale), one line per method, 95% interval shaded.

    Parameters
    ----------
    record : dict
        A curve run record (``kind = "curve"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    methods = record.get("methods") or []
    if not methods or not all(m.get("points") for m in methods):
        raise DataError("a curve record needs methods with points to plot")
    figure = _new_figure(7.2, 4.4)
    axes = figure.add_subplot()
    for method, colour in zip(methods, _colours(methods)):
        ks = [p["k"] for p in method["points"]]
        mean = [p["accuracy"] for p in method["points"]]
        low = [p["ci95"][0] for p in method["points"]]
        high = [p["ci95"][1] for p in method["points"]]
        dashed = method.get("role") == "baseline"
        axes.fill_between(ks, low, high, color=colour, alpha=0.18, linewidth=0)
        axes.plot(ks, mean, marker="o", markersize=4, color=colour, linestyle="--" if dashed else "-",
                  label=method.get("label", method["name"]))  # fmt: skip
    ks = record["labels_per_class"]
    axes.set_xscale("log")
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.minorticks_off()
    axes.set_xlabel("labelled examples per class (log scale)")
    axes.set_ylabel("test accuracy")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=9, frameon=True)
    seeds = len(record.get("seeds", []))
    axes.set_title(
        f"{record.get('dataset', '')}: {record.get('test_size', '?')} test examples, {seeds} seed{'s' * (seeds != 1)}; "
        "shaded: 95% interval",
        fontsize=10,
    )
    return figure


def methods_figure(record: dict[str, Any]) -> Any:
    """Each method's accuracy with its 95% interval (a fit record), as horizontal bars.

    Parameters
    ----------
    record : dict
        A fit run record with ``methods`` (name, accuracy, ci95).

    Returns
    -------
    matplotlib.figure.Figure
    """
    methods = record.get("methods") or []
    if not methods:
        raise DataError("a fit record needs methods to plot")
    figure = _new_figure(7.2, 0.6 + 0.55 * len(methods))
    axes = figure.add_subplot()
    positions = list(range(len(methods)))[::-1]  # the first method on top
    for position, method, colour in zip(positions, methods, _colours(methods)):
        low, high = method["ci95"]
        axes.barh(position, method["accuracy"], color=colour, alpha=0.8, height=0.6)
        axes.errorbar(method["accuracy"], position, xerr=[[method["accuracy"] - low], [high - method["accuracy"]]],
                      color="black", capsize=4, linewidth=1)  # fmt: skip
        axes.text(high + 0.01, position, f"{method['accuracy']:.3f}", va="center", fontsize=9)
    axes.set_yticks(positions, [m["label"] for m in methods], fontsize=9)
    axes.set_xlim(0, 1.08)
    axes.set_xlabel("test accuracy (bar: mean over seeds; line: 95% interval)")
    axes.grid(True, axis="x", alpha=0.3)
    return figure


def save_figure(figure: Any, path: str | os.PathLike) -> Path:
    """Write ``figure`` to ``path``; the format follows the suffix (``.png`` at 150 dpi, ``.svg``).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : path

    Returns
    -------
    Path
    """
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix.lower() == ".svg" else {}
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure.savefig(path, dpi=150, metadata=metadata)
    return path


def figure_data_uri(figure: Any) -> str:
    """``figure`` as an SVG ``data:`` URI, for an ``<img>`` in a page that loads nothing from outside."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
