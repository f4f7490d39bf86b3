"""Train-to-reuse commands: ``transferkit pretrain`` (a source model into the zoo) and
``transferkit transfer-lr`` (a logistic regression that starts from a source model's weights)."""

from __future__ import annotations

import argparse
from typing import Any

from .errors import TransferkitError


def add_pretrain_parser(commands: Any) -> None:
    """Add the ``pretrain`` sub-command to ``commands``."""
    command = commands.add_parser(
        "pretrain",
        help="train a backbone on a source task (or layer-wise without labels) and keep it in the zoo as zoo:NAME",
    )
    command.add_argument("data", help="source data: built-in name or path; its training part is used")
    command.add_argument("--out", required=True, metavar="NAME", help="zoo entry name; then use --backbone zoo:NAME")
    command.add_argument(
        "--arch",
        default=None,
        help="small-cnn (images), mlp (images or vectors), or a registered backbone to fine-tune on the source "
        "(default small-cnn for images, mlp for vectors)",
    )
    command.add_argument("--hidden", help="--arch mlp: hidden widths (default 256,128)")
    command.add_argument(
        "--unsupervised",
        choices=("ae", "rbm"),
        help="greedy layer-wise pre-training without labels: stacked denoising autoencoders or RBMs (CD-k)",
    )
    command.add_argument("--layers", help="--unsupervised: layer widths (default 512,256)")
    command.add_argument("--noise", type=float, help="--unsupervised ae: masking-noise share (default 0.3)")
    command.add_argument("--cd-k", type=int, dest="cd_k", help="--unsupervised rbm: Gibbs steps per update (default 1)")
    command.add_argument(
        "--epochs",
        type=int,
        help="passes over the source (default: the architecture's; 5 per layer with --unsupervised)",
    )
    command.add_argument("--lr", type=float)
    command.add_argument("--batch-size", type=int)
    command.add_argument("--image-size", type=int, help="train and store the model at this image size")
    command.add_argument("--augment", action="store_true", help="random crop of images while training")
    command.add_argument(
        "--holdout", type=float, default=0.1, help="share of the source held out for its accuracy (default 0.1)"
    )
    command.add_argument("--max-examples", type=int, metavar="N", help="use a random N of the source examples")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--overwrite", action="store_true", help="replace an existing zoo entry of that name")
    command.add_argument("--text-column")
    command.add_argument("--label-column")
    command.add_argument("--json", metavar="FILE", help="write the entry's provenance here too")
    command.add_argument("--quiet", action="store_true")


def _default_arch(modality: str) -> str:
    return "mlp" if modality == "tabular" else "small-cnn"


def _refuse_options_that_would_be_ignored(args: argparse.Namespace) -> None:
    """An option that only another mode reads is an error, not a setting dropped without a word."""
    only_with = {
        "layers": ("--unsupervised", args.unsupervised is not None, "for a supervised mlp use --hidden"),
        "noise": ("--unsupervised ae", args.unsupervised == "ae", ""),
        "cd_k": ("--unsupervised rbm", args.unsupervised == "rbm", ""),
        "hidden": ("supervised training", args.unsupervised is None, "for --unsupervised use --layers"),
        "augment": ("supervised training", args.unsupervised is None, "layer-wise pre-training does not augment"),
    }
    for option, (mode, active, hint) in only_with.items():
        value = getattr(args, option)
        if value not in (None, False) and not active:
            flag = "--" + option.replace("_", "-")
            raise TransferkitError(
                f"{flag} is only read with {mode}; it would be ignored here" + (f" ({hint})" if hint else "")
            )


def _image_array(paths: list[str], image_size: int | None) -> Any:
    """The image files as one uint8 array ``(N, H, W, 3)``, each resized to ``image_size`` if given."""
    import numpy as np

    from .data.preprocess import load_image

    images = [load_image(path, image_size) for path in paths]
    sizes = sorted({image.shape[:2] for image in images})
    if len(sizes) > 1:
        raise TransferkitError(
            f"the source images have {len(sizes)} different sizes ({', '.join(f'{h}x{w}' for h, w in sizes[:3])}"
            f"{', ...' if len(sizes) > 3 else ''}); a network trained from scratch reads one: pass --image-size"
        )
    return np.stack(images)


def command_pretrain(args: argparse.Namespace) -> int:
    """Train the source model, store it in the zoo, print where and how well."""
    import numpy as np

    from ._io import atomic_write_json
    from .backbones.native import NATIVE_ARCHS
    from .cli import positive_ints
    from .data import load_dataset
    from .data._dataset import take
    from .pretraining.source import pretrain_supervised, pretrain_unsupervised

    for option in ("epochs", "batch_size", "image_size", "max_examples", "cd_k"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise TransferkitError(f"--{option.replace('_', '-')} must be a positive int. Got {value} instead.")
    if args.lr is not None and not args.lr > 0:
        raise TransferkitError(f"--lr must be a float > 0. Got {args.lr} instead.")
    if args.unsupervised and args.arch not in (None, "mlp"):
        raise TransferkitError(
            f"--unsupervised trains an mlp layer by layer; --arch {args.arch} cannot be used with it"
        )
    _refuse_options_that_would_be_ignored(args)
    train = load_dataset(args.data, text_column=args.text_column, label_column=args.label_column).train
    if args.hidden is not None and not args.unsupervised and (args.arch or _default_arch(train.modality)) != "mlp":
        raise TransferkitError(
            f"--hidden sets the widths of --arch mlp; {args.arch or _default_arch(train.modality)} has its own"
        )
    inputs, labels = train.inputs, np.asarray(train.classes)[train.labels]
    if args.max_examples and args.max_examples < len(labels):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(labels), args.max_examples, replace=False))
        inputs, labels = take(inputs, keep), labels[keep]
    if train.modality == "image" and not isinstance(inputs, np.ndarray) and (args.arch or "small-cnn") in NATIVE_ARCHS:
        inputs = _image_array(inputs, args.image_size)  # small-cnn / mlp and layer-wise stacks read arrays, not files
    if args.unsupervised:
        settings = {
            "method": args.unsupervised,
            "layers": positive_ints("512,256" if args.layers is None else args.layers, "--layers", "512,256"),
        }
        settings.update(
            {
                k: v
                for k, v in (
                    ("epochs", args.epochs),
                    ("lr", args.lr),
                    ("batch_size", args.batch_size),
                    ("noise", args.noise),
                    ("cd_k", args.cd_k),
                )
                if v is not None
            }
        )
        result = pretrain_unsupervised(
            inputs,
            args.out,
            settings,
            image_size=args.image_size,
            data_name=args.data,
            random_state=args.seed,
            overwrite=args.overwrite,
        )
        losses = [round(layer["loss_per_epoch"][-1], 4) for layer in result.provenance["history"]]
        summary = f"final reconstruction loss per layer {losses}; no labels used"
    else:
        result = pretrain_supervised(
            inputs,
            labels,
            args.out,
            arch=args.arch or _default_arch(train.modality),
            hidden=tuple(positive_ints("256,128" if args.hidden is None else args.hidden, "--hidden", "256,128")),
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            image_size=args.image_size,
            augment=args.augment,
            holdout=args.holdout,
            data_name=args.data,
            random_state=args.seed,
            overwrite=args.overwrite,
        )
        accuracy = result.provenance["accuracy"]
        summary = "source accuracy " + (
            f"{accuracy:.3f} on {result.provenance['accuracy_on']}"
            if accuracy is not None
            else "not measured (--holdout 0)"
        )
    provenance = result.provenance
    print(
        f"{result.name}: {provenance['arch']} ({provenance['method']}) trained on {provenance['n_train']} examples of "
        f"{args.data} in {provenance['seconds']:.0f} s; {summary}"
    )
    print(f"stored in {result.path}; use it with --backbone {result.name} (fit, rank, adapt) or see `transferkit list`")
    preferred = result.backbone.cfg.fine_tuning
    if preferred:
        settings = ", ".join(f"{key} {value}" for key, value in preferred.items())
        print(f"fine-tuning it defaults to {settings} (the user's settings win, e.g. --batchnorm eval)")
    if args.json:
        atomic_write_json(args.json, {"name": result.name, "path": str(result.path), "provenance": provenance})
    return 0


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


def command_transfer_lr(args: argparse.Namespace) -> int:
    """Run source-only, target-only and the transfer LR at every k; print the table and the guard's verdict."""
    from ._cli_adapt import pair_from_args
    from ._io import atomic_write_json
    from .cli import _print_table, positive_ints
    from .pretraining.compare import compare_parameter_transfer
    from .report.records import mean_std

    ks = positive_ints(args.labels_per_class, "--labels-per-class", "4,16,64", distinct=True)
    if args.seeds < 1:
        raise TransferkitError(f"--seeds must be a positive int. Got {args.seeds} instead.")
    pair = pair_from_args(args)  # --C > 0: checked in cli.main for every command
    _check_target_labels(args.target, pair, ks)
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
            classes=pair.classes,
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
                *(mean_std(accuracy[m]) for m in ("source-only", "target-only", "transfer")),
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


def _check_target_labels(target: str, pair: Any, ks: list[int]) -> None:
    """Every k drawable from the target's labelled training part, checked before any model is fitted."""
    from ._cli_adapt import check_draw_fits

    if pair.target_labels is None:
        raise TransferkitError(
            f"--target {target!r} has no labels; transfer-lr draws k labelled examples per class from it "
            "(a folder of class sub-folders, a CSV with a label column, a .npz with y)"
        )
    if min(ks) < 2:  # λ is chosen by cross-validation over the drawn labels: 2 folds need 2 of every class
        raise TransferkitError(
            f"--labels-per-class {min(ks)} is too few: the transfer LR chooses λ by cross-validation, "
            "which needs at least 2 labelled examples per class"
        )
    check_draw_fits("--labels-per-class", max(ks), pair)
