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
        "--target",
        required=True,
        help="target data: labelled (its training part is used without labels, its test part scores the methods) "
        "or unlabelled (a folder of images, a .txt of one text per line, a .csv of texts, a .npz of X: "
        "adapted to as a whole, nothing scored)",
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
    adapt.add_argument(
        "--target-labels-per-class",
        type=int,
        metavar="K",
        help="choose the method with K labelled examples per class drawn from a labelled target's training part "
        "(per seed) instead of reverse validation; they train nothing (default: none, label-free)",
    )
    adapt.add_argument(
        "--target-labelled",
        metavar="DATA",
        help="a few labelled target examples (an image folder of classes, a .csv, a .npz) that choose the method "
        "instead of reverse validation; they train nothing (default: none, label-free)",
    )
    adapt.add_argument("--seeds", type=int, default=3, help="seeds to run (default 3)")
    adapt.add_argument("--seed", type=int, default=0, help="first seed")
    adapt.add_argument("--text-column")
    adapt.add_argument("--label-column")
    adapt.add_argument("--json", metavar="FILE", help="write the full record to FILE")
    adapt.add_argument(
        "--out",
        metavar="DIR",
        help="save the choice of the first seed, fitted on every source label and the target's unlabelled "
        "examples (a labelled target: its training part), "
        "as a model for `transferkit predict` (backbone features only, not tfidf)",
    )
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
        labelled_name=getattr(args, "target_labelled", None),
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
    from .adaptation.pairs import TFIDF
    from .adaptation.run import DEFAULT_WEIGHTS, LABELLED_TARGET
    from .cli import _print_table

    methods = _methods(args.method)
    if args.seeds < 1:
        raise TransferkitError(f"--seeds must be a positive int. Got {args.seeds} instead.")
    if args.weight is not None and args.weight < 0:
        raise TransferkitError(f"--weight must be a float >= 0. Got {args.weight} instead.")
    if args.target_labels_per_class is not None:
        if args.target_labels_per_class < 1:
            raise TransferkitError(
                f"--target-labels-per-class must be >= 1. Got {args.target_labels_per_class} instead."
            )
        if args.target_labelled:
            raise TransferkitError("give --target-labels-per-class or --target-labelled, not both")
    if args.steps is not None and args.steps < 1:
        raise TransferkitError(f"--steps must be a positive int. Got {args.steps} instead.")
    settings = AdaptationConfig().replace(steps=args.steps).validate()
    if args.out and args.backbone == TFIDF:
        raise TransferkitError(
            "--out saves a model on a backbone's features; tfidf features are not one (leave out --out)"
        )
    pair = pair_from_args(args)
    if args.target_labels_per_class is not None and pair.target_labels is None:
        raise TransferkitError(
            f"--target-labels-per-class draws from the target's labels, but {args.target!r} has none; "
            "give the few labelled examples with --target-labelled DATA"
        )
    if args.target_labels_per_class is not None:
        check_draw_fits("--target-labels-per-class", args.target_labels_per_class, pair)
    if args.out and pair.representation == "input":
        raise TransferkitError(
            f"--out saves a model on a backbone's features; {args.source!r} holds feature vectors (leave out --out)"
        )
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
        target_labels_per_class=args.target_labels_per_class,
        target_labelled=None if pair.labelled is None else (pair.labelled, pair.labelled_labels),
    )
    scored = pair.test is not None
    print(f"{args.source} -> {args.target} on {pair.representation} features" + "".join(f"; {n}" for n in pair.notes))
    if scored:
        print(
            f"source: {len(pair.source)} labelled; target: {len(pair.target)} unlabelled, "
            f"{len(pair.test)} held out (their labels only score the methods)"
        )
    else:
        print(
            f"source: {len(pair.source)} labelled; target: {len(pair.target)} without labels: nothing can be scored, "
            + (
                "the choice below is label-free and unverified"
                if pair.labelled is None
                else f"the choice below rests on the {len(pair.labelled)} examples of --target-labelled"
            )
        )
    before = record["distance_before"]
    print(f"domain distance before adaptation: MMD² {before['mmd']:.4f}, A-distance {before['a_distance']:.2f}")
    print()
    selected = record["selected"]
    by_labels = selected["criterion"] == LABELLED_TARGET
    _print_table(_method_rows(record, scored, "sel. error" if by_labels else "rev. error"))
    choices = ", ".join(_choice(c) for c in selected["choices"])
    print()
    how = (
        f"choice by {_labelled_count(args, pair)} labelled target examples" if by_labels else "label-free choice"
    ) + f" ({'' if by_labels else 'reverse validation, '}one-standard-error rule, per seed): {choices}"
    if scored:
        print(
            f"{how} -> {selected['accuracy']:.3f} ± {selected['accuracy_std']:.3f}, "
            f"{_gain_text(selected['gain'])} points over source-only: {selected['gain']['verdict']}"
        )
    else:
        print(how)
    for method, reason in selected.get("not_chosen", {}).items():
        print(f"{method} was scored but not eligible for the choice: {reason}")
    if "warning" in selected:
        print(f"warning: {selected['warning']}")
    if args.out:
        _save_choice(args, pair, selected["choices"][0], settings)
    if args.json:
        atomic_write_json(
            args.json,
            {
                "source": args.source,
                "target": args.target,
                "representation": pair.representation,
                "notes": pair.notes,
                "sizes": {
                    "source": len(pair.source),
                    "target": len(pair.target),
                    "test": len(pair.test) if scored else 0,
                },
                "target_has_labels": scored,
                "settings": settings.to_dict(),
                **json.loads(json.dumps(record, default=float)),
            },
        )
    return 0


def _save_choice(args: argparse.Namespace, pair: Any, choice: dict[str, Any], settings: Any) -> None:
    """Fit ``TransferClassifier`` with the first seed's choice on every source label and the target; save it."""
    from .estimators import TransferClassifier

    method = choice["method"]
    model = TransferClassifier(
        pair.representation,
        "linear-probe",
        image_size=args.image_size,
        random_state=args.seed,  # the first seed: the one whose choice this is
        verbose=not args.quiet,
        adaptation=None if method == "source-only" else method,
        adaptation_weight=choice["weight"],
        adaptation_settings=None if method == "source-only" else settings,
    )
    labels = np.asarray(pair.classes)[pair.source_labels]  # class names, so predictions read as names
    model.fit(pair.source_inputs, labels, X_target=None if method == "source-only" else pair.target_inputs)
    model.save(args.out)
    print(f"saved the choice of seed {args.seed} ({_choice(choice)}) to {args.out}")
    print(f"predict with: transferkit predict {args.out} FILES")
    if pair.notes:
        print(f"note: {'; '.join(pair.notes)}: give predict images of that size too")


def check_draw_fits(option: str, k: int, pair: Any) -> None:
    """Refuse ``option`` K larger than a class of the target's training part, naming the class and the option
    (the draw's own error names fit's --labels-per-class and a label index), before anything is fitted."""
    counts = np.bincount(pair.target_labels, minlength=len(pair.classes))  # (K,)
    fewest = int(counts.argmin())
    if counts[fewest] < k:
        raise TransferkitError(
            f"{option} {k}: class {pair.classes[fewest]!r} has only {counts[fewest]} examples in "
            f"the target's training part; use {option} {counts[fewest]} or fewer"
        )


def _labelled_count(args: argparse.Namespace, pair: Any) -> str:
    if pair.labelled is not None:
        return str(len(pair.labelled))
    return f"{args.target_labels_per_class} x {len(pair.classes)}"


def _method_rows(record: dict[str, Any], scored: bool, error: str) -> list[list[str]]:
    """The table of methods: accuracy and gain when the target's labels score them, else what is seen without.

    ``error`` heads the selection error's column: reverse validation's, or that on labelled target examples.
    """
    head = ["method", "weight"]
    head += ["target accuracy", "gain vs source-only (95%)"] if scored else ["predictions changed"]
    rows = [[*head, "A-dist. after", error, "time"]]
    for method, row in record["methods"].items():
        after = row["distance_after"]
        cells = [method, _weights(row["weights"])]
        if scored:
            gain = row.get("gain")
            cells += [f"{row['accuracy']:.3f} ± {row['accuracy_std']:.3f}", "—" if gain is None else _gain_text(gain)]
        else:
            cells.append(f"{100 * np.mean(row['changed']):.1f} %")
        cells += [
            "n/a" if after is None else f"{after['a_distance']:.2f}",
            f"{np.mean(row['reverse_error']):.3f}",
            f"{sum(row['seconds']):.1f} s",
        ]
        rows.append(cells)
    if "oracle" in record:
        rows.append(
            ["target oracle", "-", f"{record['oracle']['accuracy']:.3f}", "(trained on target labels)", "", "", ""]
        )
    return rows


def _weights(weights: list[float | None]) -> str:
    values = sorted({w for w in weights if w is not None})
    return "/".join(f"{w:g}" for w in values) if values else "-"


def _choice(candidate: dict[str, Any]) -> str:
    return candidate["method"] + ("" if candidate["weight"] is None else f" {candidate['weight']:g}")


def _gain_text(gain: dict[str, float]) -> str:
    return f"{100 * gain['gain']:+.1f} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f})"
