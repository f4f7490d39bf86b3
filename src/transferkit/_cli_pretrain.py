"""``transferkit transfer-lr``: a logistic regression that starts from a source model's weights."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from .errors import TransferkitError


def add_parser(commands: Any) -> None:
    """Add the ``transfer-lr`` sub-command to ``commands``."""
    command = commands.add_parser(
        "transfer-lr",
        help="parameter transfer for logistic regression: source weights as the prior, against both baselines",
    )
    command.add_argument("--source", required=True, help="source data, all labels used (built-in name or path)")
    command.add_argument("--target", required=True, help="target data: k labels per class drawn from its training part")
    command.add_argument(
        "--labels-per-class", default="16", metavar="K[,K...]", help="target labels per class (default 16)"
    )
    command.add_argument("--backbone", help="backbone whose features are used, or tfidf for text (default by modality)")
    command.add_argument("--image-size", type=int)
    command.add_argument("--seeds", type=int, default=5, help="labelled draws (default 5)")
    command.add_argument("--seed", type=int, default=0, help="first seed")
    command.add_argument("--C", type=float, default=1.0, dest="C", help="inverse L2 strength of every model")
    command.add_argument("--text-column")
    command.add_argument("--label-column")
    command.add_argument("--json", metavar="FILE")
    command.add_argument("--quiet", action="store_true")


def _ks(spec: str) -> list[int]:
    try:
        ks = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise TransferkitError(f"--labels-per-class must be positive ints separated by commas. Got {spec!r} instead.")
    return ks


def command_transfer_lr(args: argparse.Namespace) -> int:
    """Run source-only, target-only and the transfer LR at every k; print the table and the guard's verdict."""
    from ._cli_adapt import pair_from_args
    from ._io import atomic_write_json
    from .cli import _print_table
    from .pretraining.compare import compare_parameter_transfer

    ks = _ks(args.labels_per_class)
    if args.seeds < 1:
        raise TransferkitError(f"--seeds must be a positive int. Got {args.seeds} instead.")
    if not args.C > 0:
        raise TransferkitError(f"--C must be a float > 0. Got {args.C} instead.")
    pair = pair_from_args(args)
    rows = [
        compare_parameter_transfer(
            pair.source,
            pair.source_labels,
            pair.target,
            pair.target_labels,
            pair.test,
            pair.test_labels,
            k=k,
            seeds=args.seeds,
            seed=args.seed,
            C=args.C,
        )
        for k in ks
    ]
    print(f"{args.source} -> {args.target} on {pair.representation} features" + "".join(f"; {n}" for n in pair.notes))
    table = [["k", "source-only", "target-only", "transfer LR", "λ (per seed)", "gain vs better baseline (95%)"]]
    for row in rows:
        accuracy, gain = row["accuracy_per_seed"], row["gain"]
        table.append(
            [
                str(row["k"]),
                *(_mean_std(accuracy[m]) for m in ("source-only", "target-only", "transfer")),
                ", ".join(f"{lam:g}" for lam in row["lambdas"]),
                f"{100 * gain['gain']:+.1f} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f}) vs "
                f"{row['best_baseline']}: {gain['verdict']}",
            ]
        )
    _print_table(table)
    for row in rows:
        if row["negative_transfer"]:
            gain = row["gain"]
            print(
                f"negative transfer at k={row['k']}: the transfer LR scores {-100 * gain['gain']:.1f} points below "
                f"{row['best_baseline']} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f})"
            )
    if args.json:
        atomic_write_json(
            args.json,
            {"source": args.source, "target": args.target, "representation": pair.representation, "rows": rows},
        )
    return 0


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"
