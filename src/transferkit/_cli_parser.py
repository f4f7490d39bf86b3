"""The ``transferkit`` argument parser: every sub-command and its options, in one place."""

from __future__ import annotations

import argparse

from ._cli_fit import DEFAULT_DATA
from ._cli_help import complete_help

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``transferkit`` parser with every sub-command, each option with its help and default."""
    parser = argparse.ArgumentParser(prog="transferkit", description="Transfer learning for small labelled data sets.")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="registered backbones, data sets and strategies")
    listing.add_argument("--json", action="store_true", help="print JSON instead of tables")

    fit = commands.add_parser("fit", help="fit a transfer model and compare it with target-only baselines")
    fit.add_argument("data", nargs="?", help=f"built-in name, image folder, .csv or .npz (default {DEFAULT_DATA})")
    fit.add_argument(
        "--backbone", help="backbone name, zoo:NAME, or auto (best LogME on the training labels); default by modality"
    )
    fit.add_argument(
        "--strategy",
        default="linear-probe",
        help="how to transfer (default linear-probe), or auto (chosen and explained)",
    )
    fit.add_argument(
        "--labels-per-class",
        type=int,
        metavar="K",
        help="labelled training examples per class (default: all; 10 for the built-in default data)",
    )
    fit.add_argument("--image-size", type=int, help="resize images to this many pixels (smaller is faster)")
    fit.add_argument("--layer", help="backbone layer to read features from (default the pooled embedding)")
    fit.add_argument("--C", type=float, dest="C", help="inverse regularisation of the probe (default 1.0)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the first labelled draw and of training")
    fit.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="labelled draws to run (seeds SEED, SEED+1, ...); the gain's interval covers them (default 3)",
    )
    fit.add_argument("--test-size", type=int, metavar="N", help="test examples (default: the data set's own)")
    fit.add_argument("--text-column", help="CSV column holding the text")
    fit.add_argument("--label-column", help="CSV column holding the label")
    tuning = fit.add_argument_group("fine-tuning (strategies finetune, freeze, lp-ft, gradual-unfreeze, l2sp, lora)")
    tuning.add_argument(
        "--epochs", type=int, help="passes over the training data (default: the strategy's, or a zoo entry's own)"
    )
    tuning.add_argument(
        "--lr", type=float, help="peak learning rate of the head (default: the strategy's, or a zoo entry's own)"
    )
    tuning.add_argument("--batch-size", type=int, help="examples per step (default: the strategy's)")
    tuning.add_argument(
        "--lr-decay", type=float, help="per-group rate factor going down from the head, e.g. 0.5 (default 1)"
    )
    tuning.add_argument("--freeze-until", metavar="GROUP", help="freeze: last frozen layer group, or a count")
    tuning.add_argument("--optimizer", choices=("adamw", "sgd"))
    tuning.add_argument("--schedule", choices=("cosine", "onecycle", "constant"))
    tuning.add_argument(
        "--val-fraction",
        type=float,
        help="share of the labelled training data held out for validation (default 0, or 0.2 with --patience)",
    )
    tuning.add_argument("--patience", type=int, help="early stopping: epochs without better validation accuracy")
    tuning.add_argument("--no-augment", action="store_true", help="no random crop / flip of images")
    tuning.add_argument("--no-flip", action="store_true", help="random crops but no horizontal flips (e.g. digits)")
    tuning.add_argument(
        "--batchnorm",
        choices=("eval", "train"),
        help="eval keeps the backbone's BatchNorm statistics, train re-estimates them on the target "
        "(default eval, or what a zoo entry stored)",
    )
    tuning.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="strategy_options",
        help="any other strategy setting, e.g. --set alpha=0.1 for l2sp or --set r=4 for lora (repeatable)",
    )
    tuning.add_argument("--checkpoint-dir", metavar="DIR", help="checkpoint every epoch here (default OUT/checkpoints)")
    tuning.add_argument(
        "--resume", metavar="DIR", help="continue the interrupted run checkpointed in DIR (or DIR/checkpoints)"
    )
    fit.add_argument(
        "--label-descriptions",
        metavar="FILE",
        help="text: JSON of label -> sentences; a zero-shot prior (with --labels-per-class 0: zero-shot alone)",
    )
    fit.add_argument("--no-baseline", action="store_true", help="skip the target-only baselines")
    fit.add_argument(
        "--baselines",
        help="target-only baselines to compare with: scratch and/or classical (default both)",
    )
    fit.add_argument("--out", help="folder for the model and the run record")
    fit.add_argument("--json", metavar="FILE", help="write the run record to FILE")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")

    predict = commands.add_parser("predict", help="classify inputs with a saved model")
    predict.add_argument("model_dir", help="folder written by `transferkit fit --out`")
    predict.add_argument(
        "inputs",
        nargs="+",
        help="image paths, a folder of images (every image under it), or texts (a .txt file: one text per line; "
        "a .csv: its text column)",
    )
    predict.add_argument("--text-column", help="the column of texts in a .csv input (default: text)")
    predict.add_argument("--quiet", action="store_true")

    export = commands.add_parser("export", help="export a saved model as ONNX or one safetensors file")
    export.add_argument("model_dir", help="folder written by `transferkit fit --out` (its model/ folder or the run)")
    export.add_argument(
        "--format", default="onnx", help="onnx (checked against PyTorch with onnxruntime) or safetensors"
    )
    export.add_argument("--out", help="file to write (default MODEL_DIR/model.onnx or model.safetensors)")
    export.add_argument("--quiet", action="store_true")

    from ._cli_adapt import add_parser as add_adapt_parser
    from ._cli_pretrain import add_parser as add_transfer_lr_parser
    from ._cli_pretrain import add_pretrain_parser
    from ._cli_select import add_parsers

    add_parsers(commands)
    add_adapt_parser(commands)
    from ._cli_report import add_parser as add_report_parsers

    add_report_parsers(commands)
    add_transfer_lr_parser(commands)
    add_pretrain_parser(commands)

    extract = commands.add_parser("extract", help="write a backbone's features of a data set to .npz")
    extract.add_argument(
        "data",
        help="a data set (built-in name or path); one without labels (a folder of images, a .txt, a text-only "
        ".csv, a .npz of X) gives one array X of all of it",
    )
    extract.add_argument("--backbone", help="backbone name (default by modality)")
    extract.add_argument("--out", required=True, metavar="FILE.npz")
    extract.add_argument("--layer")
    extract.add_argument("--image-size", type=int)
    extract.add_argument("--split", choices=("train", "test", "all"), default="all")
    extract.add_argument("--test-size", type=int, metavar="N")
    extract.add_argument("--text-column")
    extract.add_argument("--label-column")
    extract.add_argument("--quiet", action="store_true")
    return complete_help(parser)
