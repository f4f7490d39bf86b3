"""``transferkit rank`` and ``transferkit similarity``: choosing before training."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ._io import atomic_write_json
from .errors import TransferkitError


def add_parsers(commands: Any) -> None:
    """Add the ``rank`` and ``similarity`` sub-commands to ``commands``."""
    rank = commands.add_parser("rank", help="rank candidate backbones for a data set before training (LogME, ...)")
    rank.add_argument("data", nargs="?", help="built-in name or path (default fashion-mnist)")
    rank.add_argument(
        "--backbones", default="all", help="comma-separated names, or all (registered + zoo: of the data's modality)"
    )
    rank.add_argument("--score", default="logme", help="logme (default), hscore, leep or nce")
    rank.add_argument(
        "--labels-per-class",
        type=int,
        metavar="K",
        help="labelled examples per class (default all; 10 for the default data)",
    )
    rank.add_argument("--seed", type=int, default=0, help="seed of the labelled draw")
    rank.add_argument("--image-size", type=int, help="resize images to this for every candidate")
    rank.add_argument("--text-column")
    rank.add_argument("--label-column")
    rank.add_argument("--json", metavar="FILE", help="write the ranking to FILE")
    rank.add_argument("--quiet", action="store_true")

    similarity = commands.add_parser(
        "similarity", help="domain distance between two data sets on a backbone's features"
    )
    similarity.add_argument(
        "first",
        help="data set A: a built-in name or a path, labels not needed (a folder of images, a .txt of one text "
        "per line, a .csv with a text column, a .npz with X)",
    )
    similarity.add_argument("second", help="data set B, the same kinds")
    similarity.add_argument("--backbone", help="backbone whose features are compared (default by modality)")
    similarity.add_argument("--image-size", type=int)
    similarity.add_argument(
        "--max-examples",
        type=int,
        default=1000,
        metavar="N",
        help="examples drawn from each data set, a built-in one's training part (default 1000)",
    )
    similarity.add_argument("--text-column", help="the text column of a .csv (default text)")
    similarity.add_argument("--seed", type=int, default=0)
    similarity.add_argument("--json", metavar="FILE")
    similarity.add_argument("--quiet", action="store_true")


def command_rank(args: argparse.Namespace) -> int:
    """Score each candidate backbone on the labelled training examples and print the ranking."""
    from ._cli_fit import data_and_labels_per_class
    from .cli import _print_table, comma_names
    from .data import few_shot_indices, load_dataset
    from .selection import rank_backbones

    names = "all" if args.backbones == "all" else comma_names(args.backbones, "--backbones", "NAME,NAME or all")
    data, k = data_and_labels_per_class(args)
    split = load_dataset(data, text_column=args.text_column, label_column=args.label_column)
    train = (
        split.train
        if k is None
        else split.train.subset(few_shot_indices(split.train.labels, k, args.seed, split.train.classes))
    )
    print(
        f"transferkit rank: {data} ({train.modality}), {len(train)} labelled examples"
        + (f" ({k} per class, seed {args.seed})" if k is not None else "")
        + f", score {args.score}",
        flush=True,
    )
    started = time.perf_counter()
    ranking = rank_backbones(
        train.inputs,
        train.labels,
        names,
        modality=train.modality,
        score=args.score,
        image_size=args.image_size,
        verbose=not args.quiet,
    )
    total = time.perf_counter() - started
    rows = [["rank", "backbone", args.score, "features", "score time", "dim"]]
    for r in ranking:
        features = "cached" if r.from_cache else f"{r.extract_seconds:.1f} s"
        rows.append([str(r.rank), r.name, f"{r.score:.4f}", features, f"{r.score_seconds:.2f} s", str(r.feature_dim)])
    print()
    _print_table(rows)
    candidates = f"{len(ranking)} candidate{'s' if len(ranking) != 1 else ''}"
    print(f"\n{candidates} in {total:.1f} s; best: {ranking[0].name}. Higher {args.score} is better.")
    if args.json:
        record = {
            "dataset": data,
            "labels_per_class": k,
            "seed": args.seed,
            "n_examples": len(train),
            "score": args.score,
            "image_size": args.image_size,
            "seconds": total,
            "ranking": [r.to_dict() for r in ranking],
        }
        atomic_write_json(args.json, record)
    return 0


def command_similarity(args: argparse.Namespace) -> int:
    """Print MMD (linear, Gaussian) and the proxy A-distance of two data sets on one backbone's features."""
    from ._progress import quiet_unless
    from .backbones import DEFAULT_BACKBONES, create_backbone
    from .cli import _print_table
    from .data import load_unlabelled
    from .data._dataset import take
    from .features import extract_features
    from .selection import mmd, proxy_a_distance

    if args.max_examples < 2:
        raise TransferkitError(f"--max-examples must be at least 2; got {args.max_examples}")
    csv_given = [name for name in (args.first, args.second) if name.lower().endswith((".csv", ".tsv"))]
    if args.text_column is not None and not csv_given:
        raise TransferkitError(f"--text-column {args.text_column!r} only applies to a .csv data set")
    first, second = (  # a distance needs no labels
        load_unlabelled(name, text_column=args.text_column if name in csv_given else None)
        for name in (args.first, args.second)
    )
    if first.modality != second.modality:
        raise TransferkitError(
            f"{args.first!r} holds {first.modality} data but {args.second!r} holds {second.modality}; "
            "a domain distance needs one modality"
        )
    name = args.backbone or DEFAULT_BACKBONES.get(first.modality)
    if name is None:
        raise TransferkitError(f"no default backbone for {first.modality} data; name one with --backbone")
    backbone = create_backbone(name)
    if backbone.cfg.modality != first.modality:
        raise TransferkitError(f"backbone {name!r} reads {backbone.cfg.modality} but the data is {first.modality}")
    width = backbone.cfg.extra.get("in_features") if backbone.cfg.modality == "tabular" else None
    for label, dataset in ((args.first, first), (args.second, second)):
        if width and np.shape(dataset.inputs)[1:] != (width,):  # named here, not by a batch deep in extraction
            raise TransferkitError(
                f"backbone {name!r} reads feature vectors of {width} columns but {label!r} has shape "
                f"{np.shape(dataset.inputs)}"
            )
    rng = np.random.default_rng(args.seed)
    if args.first == args.second:  # a data set against itself: two disjoint halves, or the overlap looks like a shift
        order = rng.permutation(len(first))
        half = min(len(order) // 2, args.max_examples)
        draws = [np.sort(order[:half]), np.sort(order[half : 2 * half])]
    else:
        draws = [np.sort(rng.permutation(len(d))[: args.max_examples]) for d in (first, second)]
    features = []
    with quiet_unless(not args.quiet):
        for label, dataset, rows in ((args.first, first, draws[0]), (args.second, second, draws[1])):
            inputs = take(dataset.inputs, rows)
            extracted = extract_features(backbone, inputs, image_size=args.image_size, desc=f"features {label}")
            features.append(extracted.features)  # (n, D)
    a, b = features
    values = {
        "mmd_linear": mmd(a, b, kernel="linear"),
        "mmd_gaussian": mmd(a, b, kernel="gaussian"),
        "proxy_a_distance": proxy_a_distance(a, b, seed=args.seed),
    }
    print(
        f"transferkit similarity: {args.first} ({len(a)}) vs {args.second} ({len(b)}) "
        f"on {backbone.cfg.name} features ({a.shape[1]}-d)\n"
    )
    _print_table(
        [
            ["measure", "value", "reads"],
            ["MMD², linear kernel", f"{values['mmd_linear']:.4f}", "zero when the feature means agree"],
            [
                "MMD², Gaussian kernel",
                f"{values['mmd_gaussian']:.4f}",
                "about zero for one distribution (median bandwidth)",
            ],
            ["proxy A-distance", f"{values['proxy_a_distance']:.3f}", "about zero: indistinguishable; 2: separable"],
        ]
    )
    if args.json:
        record = {
            "first": args.first,
            "second": args.second,
            "backbone": backbone.cfg.name,
            "n_first": len(a),
            "n_second": len(b),
            **values,
        }
        atomic_write_json(args.json, record)
    return 0
