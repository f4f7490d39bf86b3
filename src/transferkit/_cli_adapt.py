"""``transferkit adapt``: labelled source, unlabelled target — does adaptation help, and which?"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from .errors import TransferkitError


def add_parser(commands: Any) -> None:
    """Add the ``adapt`` sub-command to ``commands``."""
    adapt = commands.add_parser("adapt", help="adapt to an unlabelled target domain; every method against source-only")
    adapt.add_argument("--source", required=True, help="labelled source data (built-in name or path)")
    adapt.add_argument(
        "--target", required=True, help="target data (its training part is used without labels; its test part scores)"
    )
    adapt.add_argument(
        "--method",
        default="all",
        help="dann, coral, mmd, cdan, shallow-coral, kmm, kliep, self-training, msda, a comma-separated list, "
        "or all (default)",
    )
    adapt.add_argument(
        "--backbone", help="backbone whose features are adapted, or tfidf for text (default by modality)"
    )
    adapt.add_argument("--image-size", type=int, help="resize images to this for the backbone")
    adapt.add_argument(
        "--weight",
        type=float,
        help="adaptation weight of the deep methods, self-training and msda (default: chosen, 0.3 or 1)",
    )
    adapt.add_argument("--steps", type=int, help="training steps of the deep methods (default 600)")
    adapt.add_argument("--seeds", type=int, default=3, help="seeds to run (default 3)")
    adapt.add_argument("--seed", type=int, default=0, help="first seed")
    adapt.add_argument("--text-column")
    adapt.add_argument("--label-column")
    adapt.add_argument("--json", metavar="FILE", help="write the full record to FILE")
    adapt.add_argument("--quiet", action="store_true")


def pair_from_args(args: argparse.Namespace) -> Any:
    """The ``DomainPair`` named by ``--source``, ``--target``, ``--backbone``, ``--image-size`` and the CSV columns."""
    from .adaptation.pairs import load_pair

    options = {"text_column": args.text_column, "label_column": args.label_column}
    return load_pair(
        args.source,
        args.target,
        backbone=args.backbone,
        image_size=args.image_size,
        load_options={k: v for k, v in options.items() if v is not None},
    )


def _methods(spec: str) -> list[str]:
    from .adaptation.run import METHODS, check_method
    from .cli import comma_names

    if spec == "all":
        return list(METHODS)
    return [check_method(name) for name in comma_names(spec, "--method", "dann,coral or all")]


def command_adapt(args: argparse.Namespace) -> int:
    """Load the pair, run every method over the seeds, print the comparison."""
    from ._io import atomic_write_json
    from .adaptation import AdaptationConfig, compare_adaptation
    from .adaptation.run import DEFAULT_WEIGHTS
    from .cli import _print_table

    methods = _methods(args.method)
    if args.seeds < 1:
        raise TransferkitError(f"--seeds must be a positive int. Got {args.seeds} instead.")
    if args.weight is not None and args.weight < 0:
        raise TransferkitError(f"--weight must be a float >= 0. Got {args.weight} instead.")
    settings = AdaptationConfig().replace(steps=args.steps).validate()
    pair = pair_from_args(args)
    record = compare_adaptation(
        pair.source,
        pair.source_labels,
        pair.target,
        methods=methods,
        seeds=args.seeds,
        seed=args.seed,
        target_test=pair.test,
        test_labels=pair.test_labels,
        target_labels=pair.target_labels,
        weights=DEFAULT_WEIGHTS if args.weight is None else (args.weight,),
        settings=settings,
    )
    print(f"{args.source} -> {args.target} on {pair.representation} features" + "".join(f"; {n}" for n in pair.notes))
    print(
        f"source: {len(pair.source)} labelled; target: {len(pair.target)} unlabelled, "
        f"{len(pair.test)} held out (their labels only score the methods)"
    )
    before = record["distance_before"]
    print(f"domain distance before adaptation: MMD² {before['mmd']:.4f}, A-distance {before['a_distance']:.2f}")
    print()
    rows = [["method", "weight", "target accuracy", "gain vs source-only (95%)", "A-dist. after", "rev. error", "time"]]
    for method, row in record["methods"].items():
        gain = row.get("gain")
        after = row["distance_after"]
        rows.append(
            [
                method,
                _weights(row["weights"]),
                f"{row['accuracy']:.3f} ± {row['accuracy_std']:.3f}",
                "—" if gain is None else _gain_text(gain),
                "n/a" if after is None else f"{after['a_distance']:.2f}",
                f"{np.mean(row['reverse_error']):.3f}",
                f"{sum(row['seconds']):.1f} s",
            ]
        )
    if "oracle" in record:
        rows.append(
            ["target oracle", "-", f"{record['oracle']['accuracy']:.3f}", "(trained on target labels)", "", "", ""]
        )
    _print_table(rows)
    selected = record["selected"]
    choices = ", ".join(_choice(c) for c in selected["choices"])
    print()
    print(
        "label-free choice (reverse validation, one-standard-error rule, per seed): "
        f"{choices} -> {selected['accuracy']:.3f} "
        f"± {selected['accuracy_std']:.3f}, {_gain_text(selected['gain'])} points over source-only: "
        f"{selected['gain']['verdict']}"
    )
    for method, reason in selected.get("not_chosen", {}).items():
        print(f"{method} was scored but not eligible for the choice: {reason}")
    if "warning" in selected:
        print(f"warning: {selected['warning']}")
    if args.json:
        atomic_write_json(
            args.json,
            {
                "source": args.source,
                "target": args.target,
                "representation": pair.representation,
                "notes": pair.notes,
                "sizes": {"source": len(pair.source), "target": len(pair.target), "test": len(pair.test)},
                "settings": settings.to_dict(),
                **json.loads(json.dumps(record, default=float)),
            },
        )
    return 0


def _weights(weights: list[float | None]) -> str:
    values = sorted({w for w in weights if w is not None})
    return "/".join(f"{w:g}" for w in values) if values else "-"


def _choice(candidate: dict[str, Any]) -> str:
    return candidate["method"] + ("" if candidate["weight"] is None else f" {candidate['weight']:g}")


def _gain_text(gain: dict[str, float]) -> str:
    return f"{100 * gain['gain']:+.1f} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f})"
