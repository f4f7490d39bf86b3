"""Run records and the HTML report: learning curves, plots, and one self-contained page.

- :func:`run_curve` — accuracy against labels per class for transfer and the target-only baselines;
  :func:`labels_saved` reads it as "how many labels the baseline needs to match transfer".
- :func:`curve_figure` / :func:`methods_figure` / :func:`save_figure` — matplotlib plots of records.
- :func:`write_report` / :func:`render_report` — the HTML page of any run records (``fit``,
  ``curve``, ``rank``, ``adapt``), with nothing loaded from outside.
"""

from .curve import DEFAULT_LABELS_PER_CLASS, DEFAULT_STRATEGIES, labels_saved, matching_k, run_curve
from .html import render_report, write_report
from .plot import curve_figure, figure_data_uri, methods_figure, save_figure
from .records import (
    RECORD_FILE,
    REPORT_FILE,
    accuracy_interval,
    check_record,
    evaluation_record,
    load_record,
    method_summary,
    record_kind,
    thumbnail,
)

__all__ = [
    "DEFAULT_LABELS_PER_CLASS",
    "DEFAULT_STRATEGIES",
    "RECORD_FILE",
    "REPORT_FILE",
    "accuracy_interval",
    "check_record",
    "curve_figure",
    "evaluation_record",
    "figure_data_uri",
    "labels_saved",
    "load_record",
    "matching_k",
    "method_summary",
    "methods_figure",
    "record_kind",
    "render_report",
    "run_curve",
    "save_figure",
    "thumbnail",
    "write_report",
]
