"""``transferkit curve`` (accuracy against labels per class) and ``transferkit report`` (the HTML page).

``curve`` runs transfer and the target-only baselines at every k and seed (see
:func:`transferkit.report.run_curve`), prints the comparison, and writes into ``--out`` the run
record ``run.json``, the plot ``curve.png`` / ``curve.svg`` and ``report.html``. ``report`` writes
one self-contained page from any run records.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ._io import atomic_write_json
from .errors import TransferkitError

DEFAULT_CURVE_DATA = "fashion-mnist"


def add_parser(commands: Any) -> None:
    """Add the ``curve`` and ``report`` sub-commands to ``commands``."""
    from .report.curve import DEFAULT_LABELS_PER_CLASS, DEFAULT_STRATEGIES

    curve = commands.add_parser(
        "curve", help="learning curve: accuracy against labels per class, transfer vs training from scratch"
    )
    curve.add_argument("data", nargs="?", help=f"built-in name or path (default {DEFAULT_CURVE_DATA})")
    curve.add_argument(
        "--labels-per-class",
        default=",".join(str(k) for k in DEFAULT_LABELS_PER_CLASS),
        metavar="K,K,...",
        help="labelled examples per class at each point (default %(default)s)",
    )
    curve.add_argument(
        "--strategies",
        default=",".join(DEFAULT_STRATEGIES),
        help="transfer strategies and target-only baselines (scratch, classical) to draw (default %(default)s)",
    )
    curve.add_argument("--backbone", help="backbone of the transfer strategies (default by modality)")
    curve.add_argument("--layer", help="backbone layer to read features from (default the pooled embedding)")
    curve.add_argument("--image-size", type=int, help="resize images for the backbone (smaller is faster)")
    curve.add_argument("--C", type=float, default=1.0, dest="C", help="inverse regularisation of the probe")
    curve.add_argument("--seed", type=int, default=0, help="seed of the first labelled draw")
    curve.add_argument("--seeds", type=int, default=3, help="labelled draws at every k (default 3)")
    curve.add_argument("--scratch-steps", type=int, metavar="N", help="optimiser steps of the scratch baseline")
    curve.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="fits at once, one process and thread each (2 on a 2-core machine: faster than 2 threads)",
    )
    curve.add_argument("--test-size", type=int, metavar="N", help="test examples (default: the data set's own)")
    curve.add_argument("--text-column", help="CSV column holding the text")
    curve.add_argument("--label-column", help="CSV column holding the label")
    curve.add_argument("--out", metavar="DIR", help="folder for run.json, curve.png/.svg, report.html "
                       "(default runs/curve-DATA)")  # fmt: skip
    curve.add_argument("--json", metavar="FILE", help="write the run record to FILE too")
    curve.add_argument("--quiet", action="store_true", help="no progress bars")

    report = commands.add_parser("report", help="one self-contained HTML page from run records (fit, curve, ...)")
    report.add_argument("runs", nargs="+", metavar="RUN", help="run folders (holding run.json) or record files")
    report.add_argument("--out", metavar="FILE.html", help="page to write (default RUN/report.html for one run folder)")
    report.add_argument("--title", help="page title")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(text).name or "data").strip("-") or "data"


def _refuse_ignored_options(args: argparse.Namespace, strategies: list[str]) -> None:
    """An option no method of the curve reads is an error, not a setting the record shows but nothing used."""
    from .report.curve import BASELINES

    if args.scratch_steps is not None and "scratch" not in strategies:
        raise TransferkitError(
            f"--scratch-steps sets the scratch baseline, which --strategies {args.strategies!r} leaves out; "
            "it would be ignored"
        )
    if all(name in BASELINES for name in strategies):
        for option, value in (("--backbone", args.backbone), ("--layer", args.layer)):
            if value is not None:
                raise TransferkitError(
                    f"{option} is read by transfer strategies, and --strategies {args.strategies!r} names only "
                    "target-only baselines; it would be ignored"
                )


def _check_curve_outputs(out: Path, json_file: str | None) -> None:
    """Refuse, before any fit, outputs that cannot be written or that one output of the run would overwrite.

    Parameters
    ----------
    out : Path
        The ``--out`` folder.
    json_file : str or None
        The ``--json`` file; it may be ``OUT/run.json`` (the same record), not another file of ``--out``.

    Raises
    ------
    TransferkitError
        Naming the path and what is in the way.
    """
    from .report.records import RECORD_FILE, REPORT_FILE

    if out.exists() and not out.is_dir():
        raise TransferkitError(f"--out {str(out)!r} is a file; expected a folder for the curve's files")
    written = (RECORD_FILE, "curve.png", "curve.svg", REPORT_FILE)
    for name in written:
        if (out / name).is_dir():
            raise TransferkitError(f"--out {str(out)!r} holds a folder {name!r} where that file goes; move it")
    if (out / RECORD_FILE).is_file():  # an earlier curve is replaced as meant; another run's record would be lost
        try:
            kind = json.loads((out / RECORD_FILE).read_text()).get("kind")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            kind = None
        if kind != "curve":
            what = f"the run record of a {kind!r} run" if isinstance(kind, str) else "a file that is no curve record"
            raise TransferkitError(
                f"--out {str(out)!r} holds {RECORD_FILE}, {what}, which the curve would replace; choose another folder"
            )
    if not json_file:
        return
    record = os.path.realpath(json_file)
    if record == os.path.realpath(out):
        raise TransferkitError(f"--json {json_file!r} is the --out folder; choose a file name")
    for name in written[1:]:
        if record == os.path.realpath(out / name):
            raise TransferkitError(
                f"--json {json_file!r} would overwrite the {name} that --out writes; choose another file"
            )


def command_curve(args: argparse.Namespace) -> int:
    """Run ``transferkit curve``; see the module docstring."""
    from .cli import _print_table, comma_names, positive_ints
    from .data import load_dataset
    from .report import curve_figure, save_figure, write_report
    from .report.curve import describe_labels_saved, run_curve
    from .report.records import RECORD_FILE, REPORT_FILE

    started = time.perf_counter()
    ks = positive_ints(args.labels_per_class, "--labels-per-class", distinct=True)
    if args.seeds < 1:
        raise TransferkitError(f"--seeds must be a positive number of labelled draws; got {args.seeds}")
    if args.jobs < 1:
        raise TransferkitError(f"--jobs must be a positive number of processes; got {args.jobs}")
    if args.scratch_steps is not None and args.scratch_steps < 1:
        raise TransferkitError(f"--scratch-steps must be a positive number of steps; got {args.scratch_steps}")
    strategies = comma_names(args.strategies, "--strategies", "linear-probe,scratch,classical")
    _refuse_ignored_options(args, strategies)
    data = args.data or DEFAULT_CURVE_DATA
    out = Path(args.out or Path("runs") / f"curve-{_slug(data)}")
    _check_curve_outputs(out, args.json)
    split = load_dataset(data, test_size=args.test_size, text_column=args.text_column, label_column=args.label_column)
    seeds = [args.seed + i for i in range(args.seeds)]
    print(
        f"transferkit curve: {data} ({split.train.modality}, {len(split.train.classes)} classes), "
        f"k = {', '.join(map(str, sorted(set(ks))))} labels per class, {len(seeds)} seed{'s' * (len(seeds) > 1)}, "
        f"{len(split.test)} test examples; {', '.join(strategies)}",
        flush=True,
    )
    record = run_curve(
        split,
        dataset=data,
        labels_per_class=ks,
        strategies=strategies,
        seeds=seeds,
        backbone=args.backbone,
        layer=args.layer,
        image_size=args.image_size,
        C=args.C,
        scratch_steps=args.scratch_steps,
        jobs=args.jobs,
        verbose=not args.quiet,
        log=lambda line: print(line, flush=True),
    )
    _print_curve(record, _print_table)
    for entry in record["labels_saved"]:
        print(f"k={entry['k']}: {entry['method']} {entry['accuracy']:.3f}; {describe_labels_saved(entry)}")
    figure = curve_figure(record)
    out.mkdir(parents=True, exist_ok=True)  # only now: a run refused or failing leaves no empty folder behind
    for suffix in ("png", "svg"):
        save_figure(figure, out / f"curve.{suffix}")
    record["plots"] = ["curve.png", "curve.svg"]
    record["wall_seconds"] = time.perf_counter() - started
    if hasattr(os, "getloadavg"):  # whether the machine was shared while this ran (1, 5, 15 minutes)
        record["load_average"] = [round(value, 2) for value in os.getloadavg()]
    atomic_write_json(out / RECORD_FILE, record)
    if args.json:
        atomic_write_json(args.json, record)
    report = write_report([out], out / REPORT_FILE)
    print(f"\n{record['wall_seconds'] / 60:.1f} min; run record {out / RECORD_FILE}; plot {out / 'curve.png'}")
    print(f"report: {report}")
    return 0


def _print_curve(record: dict[str, Any], print_table: Any) -> None:
    """The accuracy of every method at every k with its interval, and transfer's gain."""
    methods = record["methods"]
    gains = {(g["method"], g["k"]): g for g in record["gains"]}
    transfer = [m["name"] for m in methods if m["role"] == "transfer"]
    rows = [["k", *[m["name"] for m in methods], *[f"gain of {name}" for name in transfer]]]
    for i, k in enumerate(record["labels_per_class"]):
        row = [str(k)]
        for method in methods:
            point = method["points"][i]
            row.append(f"{point['accuracy']:.3f} ({point['ci95'][0]:.3f}-{point['ci95'][1]:.3f})")
        for name in transfer:
            gain = gains.get((name, k))
            row.append(
                f"{100 * gain['gain']:+.1f} ({100 * gain['ci95'][0]:+.1f} to {100 * gain['ci95'][1]:+.1f})"
                if gain
                else "-"
            )
        rows.append(row)
    print()
    print_table(rows)
    print(f"(accuracy: mean over seeds, {record['interval']}; gain in points over the best baseline at that k)\n")


def command_report(args: argparse.Namespace) -> int:
    """Run ``transferkit report``: write the HTML page of the given run records."""
    from .report import load_record, write_report
    from .report.records import REPORT_FILE

    for run in args.runs:  # a missing or unreadable record is named before anything else
        load_record(run)
    if args.out:
        out = Path(args.out)
    elif len(args.runs) == 1 and Path(args.runs[0]).is_dir():
        out = Path(args.runs[0]) / REPORT_FILE
    else:
        raise TransferkitError(
            f"--out FILE.html is needed for {' '.join(args.runs)!r}: only a single run folder "
            "gets its report.html by default"
        )
    written = write_report(args.runs, out, title=args.title)
    print(f"report: {written} ({written.stat().st_size / 1e3:.0f} kB)")
    return 0
