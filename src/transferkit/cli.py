"""``transferkit`` command line: a thin shell over the Python API.

User mistakes print one line on stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_parser import build_parser
from ._io import atomic_write, check_output_path
from ._progress import quiet_unless
from .errors import TransferkitError


def _numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell[:1] in "+-." and cell[1:2].isdigit()


def _print_table(rows: list[list[str]], out: Any = None) -> None:
    out = out or sys.stdout
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [cell.rjust(w) if _numeric(cell) else cell.ljust(w) for cell, w in zip(row, widths)]
        print("  ".join(cells).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _command_list(args: argparse.Namespace) -> int:
    from .backbones import backbone_cfg, list_backbones
    from .data import list_datasets
    from .strategies import list_strategies

    backbones = []
    for name in list_backbones():
        cfg = backbone_cfg(name)
        size = "x".join(str(s) for s in cfg.input_size[1:]) if cfg.input_size else f"{cfg.max_length} tokens"
        backbones.append(
            {
                "name": name,
                "modality": cfg.modality,
                "input": size,
                "feature_dim": cfg.feature_dim,
                "weights": cfg.source,
                "installed": not cfg.weights or os.path.exists(cfg.weights),
            }
        )
    from .backbones.zoo import list_zoo

    for entry in list_zoo():
        cfg = entry["cfg"]
        backbones.append(
            {
                "name": entry["name"],
                "modality": cfg.modality,
                "input": _zoo_input(cfg),
                "feature_dim": cfg.feature_dim,
                "weights": _zoo_origin(entry["provenance"]),
                "installed": True,
                "fine_tuning": dict(cfg.fine_tuning),  # the defaults fit uses for it, unless told otherwise
            }
        )
    datasets = list_datasets()
    if args.json:
        print(json.dumps({"backbones": backbones, "datasets": datasets, "strategies": list_strategies()}, indent=2))
        return 0
    print("Backbones (also timm:<name>[@weights-file] and hf:<folder-or-cached-id>)")
    _print_table(
        [["name", "modality", "input", "dim", "weights"]]
        + [
            [
                b["name"],
                b["modality"],
                b["input"],
                str(b["feature_dim"]),
                b["weights"] + ("" if b["installed"] else " (NOT INSTALLED)"),
            ]
            for b in backbones
        ]
    )
    print("\nData sets (or a path: image folder with one sub-folder per class, .csv, .npz)")
    _print_table(
        [["name", "modality", "classes", "input", "available"]]
        + [
            [d["name"], d["modality"], str(d["n_classes"]), d["input"], "yes" if d["available"] else "no"]
            for d in datasets
        ]
    )
    print("\nStrategies: " + ", ".join(list_strategies()))
    return 0


def positive_ints(spec: str, option: str, example: str = "1,5,10", *, distinct: bool = False) -> list[int]:
    """``"512,256"`` -> ``[512, 256]``; a clear error naming ``option`` for anything else.

    Parameters
    ----------
    spec : str
        The option's value, comma-separated.
    option : str
        The option, for the message (e.g. ``"--labels-per-class"``).
    example : str, default="1,5,10"
        A valid value, shown in the message.
    distinct : bool, default=False
        Whether a value given twice is an error (a list of budgets) rather than meant (layer widths).

    Returns
    -------
    list of int

    Raises
    ------
    TransferkitError
        When ``spec`` holds no int, one below 1, or (with ``distinct``) one twice.
    """
    try:
        values = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise TransferkitError(
            f"{option} must be positive ints separated by commas, e.g. {example}. Got {spec!r} instead."
        )
    if distinct:
        _refuse_repeats(values, spec, option)
    return values


def comma_names(spec: str, option: str, example: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``: a list option's names, none missing and none twice.

    Parameters
    ----------
    spec : str
        The option's value, comma-separated.
    option : str
        The option, for the message (e.g. ``"--method"``).
    example : str
        A valid value, shown in the message.

    Returns
    -------
    list of str
        The names, stripped, in the order given.

    Raises
    ------
    TransferkitError
        When ``spec`` names nothing (``""``, ``","``) or a name twice.
    """
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise TransferkitError(f"{option} needs at least one name, e.g. {example}; got {spec!r}")
    _refuse_repeats(names, spec, option)
    return names


def _refuse_repeats(values: list[Any], spec: str, option: str) -> None:
    # A repeat is a typo, not a request: it would run (and report) the same thing twice, or be dropped unsaid.
    if repeated := [value for n, value in enumerate(values) if value in values[:n]]:
        raise TransferkitError(f"{option} names {repeated[0]!r} twice in {spec!r}; give each once")


def _zoo_input(cfg: Any) -> str:
    if cfg.input_size:
        return "x".join(str(s) for s in cfg.input_size[1:])
    if cfg.modality == "tabular":
        return f"{cfg.extra.get('in_features')} values"
    return f"{cfg.max_length} tokens" if cfg.max_length else ""


def _zoo_origin(provenance: dict[str, Any]) -> str:
    """``zoo: fashion-mnist (small-cnn, supervised, source accuracy 0.912)``."""
    details = [str(provenance[key]) for key in ("arch", "method") if provenance.get(key)]
    if isinstance(accuracy := provenance.get("accuracy"), (int, float)):  # provenance is informative, not checked
        details.append(f"source accuracy {accuracy:.3f}")
    return f"zoo: {provenance.get('data', 'trained here')}" + (f" ({', '.join(details)})" if details else "")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _strategy_from_args(args: argparse.Namespace) -> Any:
    """The strategy name, or an instance when the command line sets any of its settings."""
    from .strategies import get_strategy

    params: dict[str, Any] = {}
    if args.lr_decay is not None:
        params["lr_decay"] = args.lr_decay
    if args.freeze_until is not None:
        params["freeze_until"] = int(args.freeze_until) if args.freeze_until.isdigit() else args.freeze_until
    for option in args.strategy_options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise TransferkitError(f"--set expects KEY=VALUE; got {option!r}")
        params[key.strip().replace("-", "_")] = _option_value(value.strip())
    if not params:
        return args.strategy
    strategy = get_strategy(args.strategy, **params)
    if hasattr(strategy, "validate"):
        strategy.validate()
    return strategy


def _training_from_args(args: argparse.Namespace) -> dict[str, Any]:
    training = {
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "val_fraction": args.val_fraction,
        "patience": args.patience,
        "augment": False if args.no_augment else None,
        "hflip": False if args.no_flip else None,
        "batchnorm": args.batchnorm,
    }
    if args.patience is not None and args.val_fraction is None:
        training["val_fraction"] = 0.2
    return {k: v for k, v in training.items() if v is not None}


def _checkpoint_from_args(args: argparse.Namespace) -> tuple[str | None, bool]:
    """(checkpoint folder, resume?) from --resume, --checkpoint-dir and --out."""
    if args.resume:
        folder = Path(args.resume)
        if (folder / "checkpoints" / "checkpoint.json").is_file():
            folder = folder / "checkpoints"
        if not (folder / "checkpoint.json").is_file():
            raise TransferkitError(f"--resume {args.resume!r}: no checkpoint there (expected checkpoint.json)")
        if args.checkpoint_dir and os.path.realpath(args.checkpoint_dir) != os.path.realpath(folder):
            # the resumed run goes on writing where its checkpoint is; a second folder would be ignored
            raise TransferkitError(
                f"--resume {args.resume!r} continues the checkpoint in {str(folder)!r}, which --checkpoint-dir "
                f"{args.checkpoint_dir!r} contradicts; leave out --checkpoint-dir"
            )
        return str(folder), True
    if args.checkpoint_dir:
        return args.checkpoint_dir, False
    if args.out:
        return str(Path(args.out) / "checkpoints"), False
    return None, False


def _model_folder(path: str) -> Path:
    """The saved model's folder: ``path`` itself, or its ``model/`` when ``path`` is the run folder of ``fit --out``."""
    folder = Path(path)
    return folder / "model" if (folder / "model" / "config.json").is_file() else folder


def _command_predict(args: argparse.Namespace) -> int:
    from .estimators import TransferClassifier

    model = TransferClassifier.load(_model_folder(args.model_dir))
    model.verbose = not args.quiet
    from ._inputs import _IMAGE_SUFFIXES
    from .data import load_unlabelled

    inputs: list[str] = []
    if args.text_column is not None and not any(item.lower().endswith((".csv", ".tsv")) for item in args.inputs):
        raise TransferkitError(f"--text-column {args.text_column!r} names a column of a .csv input; none was given")
    for item in args.inputs:
        text_file = item.lower().endswith((".txt", ".csv", ".tsv"))
        readable = model.modality_ == "image" and os.path.isdir(item)
        readable |= model.modality_ == "text" and text_file and os.path.isfile(item)
        if readable:  # a folder of images, a .txt of texts, a CSV's text column: read as unlabelled data
            column = args.text_column if item.lower().endswith((".csv", ".tsv")) else None  # a .txt has no columns
            inputs += list(load_unlabelled(item, text_column=column).inputs)
        elif model.modality_ == "image" and not os.path.isfile(item):
            raise TransferkitError(f"no such image file or folder: {item!r}")
        elif model.modality_ == "image" and not item.lower().endswith(_IMAGE_SUFFIXES):
            suffixes = ", ".join(_IMAGE_SUFFIXES)
            raise TransferkitError(f"{item!r} is not an image file; expected a name ending in {suffixes}")
        elif model.modality_ == "text" and (os.path.isdir(item) or (text_file and not os.path.exists(item))):
            # classified as a sentence, a mistyped path would give a confident, meaningless answer
            what = "is a folder" if os.path.isdir(item) else "does not exist"
            raise TransferkitError(f"{item!r} {what}; expected texts, or a .txt, .csv or .tsv file of them")
        else:
            inputs.append(item)
    if model.modality_ not in ("image", "text"):
        raise TransferkitError(f"`transferkit predict` reads images or texts; this model reads {model.modality_} data")
    probabilities = model.predict_proba(inputs)
    for item, row in zip(inputs, probabilities):
        best = int(row.argmax())
        # one line per input: a tab or line break inside a text would split or shift the columns
        shown = item.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        print(f"{model.classes_[best]}\t{row[best]:.3f}\t{shown}")
    return 0


def _command_export(args: argparse.Namespace) -> int:
    from .export import export_model

    model_dir = _model_folder(args.model_dir)
    if args.out and args.out.endswith(os.sep):  # Path() would drop the separator and write a file named like the folder
        raise TransferkitError(f"--out {args.out!r} names a folder; expected a file name, e.g. {args.out}model.onnx")
    out = Path(args.out) if args.out else model_dir
    written = export_model(model_dir, out, format=args.format)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
    return 0


def _command_extract(args: argparse.Namespace) -> int:
    from .backbones import DEFAULT_BACKBONES, create_backbone
    from .data import has_labels, load_dataset, load_unlabelled
    from .features import extract_features

    if args.out.endswith(os.sep):  # Path() would drop the separator and write a file named like the folder
        raise TransferkitError(f"--out {args.out!r} names a folder; expected a file name, e.g. {args.out}features.npz")
    # (name in the file, inputs, labels or None) of each part to extract
    if has_labels(args.data, label_column=args.label_column):
        split = load_dataset(
            args.data, test_size=args.test_size, text_column=args.text_column, label_column=args.label_column
        )
        wanted = ("train", "test") if args.split == "all" else (args.split,)
        parts = [(f"_{name}", getattr(split, name).inputs, getattr(split, name).labels) for name in wanted]
        modality, classes = split.train.modality, split.train.classes
    else:
        for given, option in ((args.split != "all", "--split"), (args.test_size is not None, "--test-size")):
            if given:
                raise TransferkitError(f"{args.data!r} has no labels, so no train/test split: leave out {option}")
        if args.label_column is not None:
            raise TransferkitError(f"--label-column {args.label_column!r} is not a column of {args.data!r}")
        data = load_unlabelled(args.data, text_column=args.text_column)
        parts, modality, classes = [("", data.inputs, None)], data.modality, None
    name = args.backbone or DEFAULT_BACKBONES.get(modality)
    backbone = create_backbone(name)
    if backbone.cfg.modality != modality:
        raise TransferkitError(
            f"backbone {name!r} reads {backbone.cfg.modality} but {args.data!r} holds {modality} data; "
            f"choose {'an' if modality[0] in 'aeiou' else 'a'} {modality} backbone (see `transferkit list`)"
        )
    arrays: dict[str, np.ndarray] = {}
    for suffix, inputs, labels in parts:
        shown = suffix.lstrip("_") or "all (no labels)"
        result = extract_features(
            backbone, inputs, layer=args.layer, image_size=args.image_size, desc=f"extracting {shown}"
        )
        arrays[f"X{suffix}"] = result.features
        if labels is not None:
            arrays[f"y{suffix}"] = labels
        print(
            f"{shown}: {result.features.shape[0]} x {result.features.shape[1]} features "
            f"({'cache' if result.from_cache else f'{result.items_per_second:.1f} items/s'})"
        )
    if classes is not None:
        arrays["classes"] = np.asarray(classes)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:  # np.savez given a name would append .npz to one without it
            np.savez(handle, **arrays)

    atomic_write(out, write)
    print(f"wrote {out}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"transferkit: warning: {message}", file=sys.stderr)


# (argument, option, is a folder) of every path a command writes; pretrain's --out is a zoo name, not a path
_OUTPUT_OPTIONS = {
    "fit": [("out", "--out", True), ("checkpoint_dir", "--checkpoint-dir", True), ("json", "--json", False)],
    "curve": [("out", "--out", True), ("json", "--json", False)],
    "report": [("out", "--out", False)],
    "extract": [("out", "--out", False)],
    "export": [("out", "--out", False)],
    "adapt": [("out", "--out", True), ("json", "--json", False)],
    **{name: [("json", "--json", False)] for name in ("rank", "similarity", "pretrain", "transfer-lr")},
}
# what a command writes inside an output folder, checked against its inputs as well
_WRITTEN_INSIDE = {
    ("fit", "out"): ("run.json", "report.html", "model", "checkpoints"),
    ("curve", "out"): ("run.json", "report.html", "curve.png", "curve.svg"),
    ("adapt", "out"): ("config.json", "weights.safetensors"),
}
# (argument, what it is) of every path a command reads; "runs" and "model_dir" stand for the files read inside
_INPUT_ARGUMENTS = {
    "fit": [("data", "the input data {kind}"), ("label_descriptions", "the --label-descriptions file")],
    **{name: [("data", "the input data {kind}")] for name in ("curve", "extract", "rank", "pretrain")},
    "similarity": [("first", "the first data {kind}"), ("second", "the second data {kind}")],
    "adapt": [
        ("source", "the --source data {kind}"),
        ("target", "the --target data {kind}"),
        ("target_labelled", "the --target-labelled data {kind}"),
    ],
    "transfer-lr": [("source", "the --source data {kind}"), ("target", "the --target data {kind}")],
    "report": [("runs", "the run record that report reads")],
    "export": [("model_dir", "a file of the saved model that export reads")],
}


def _input_paths(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(path, what it is) of every existing file or folder the command will read."""
    from .report.records import RECORD_FILE

    paths = []
    for attribute, what in _INPUT_ARGUMENTS.get(args.command, ()):
        values = getattr(args, attribute, None)
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str):
                continue
            if attribute == "runs" and os.path.isdir(value):
                value = os.path.join(value, RECORD_FILE)
            if attribute == "model_dir":
                folder = _model_folder(value)
                paths += [(str(folder / name), what) for name in ("config.json", "weights.safetensors")]
                continue
            paths.append((value, what))
    return [(path, what) for path, what in paths if os.path.exists(path)]


def _check_outputs_spare_inputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that would replace (or write into the folder of) an input."""
    inputs = [(os.path.realpath(path), path, what) for path, what in _input_paths(args)]
    for attribute, option, _ in _OUTPUT_OPTIONS.get(args.command, ()):
        if not isinstance(value := getattr(args, attribute, None), str):
            continue
        written = [value] + [os.path.join(value, name) for name in _WRITTEN_INSIDE.get((args.command, attribute), ())]
        for target in written:
            real = os.path.realpath(target)
            for input_real, input_path, what in inputs:
                folder_input = os.path.isdir(input_path)
                what = what.format(kind="folder" if folder_input else "file")
                if real == input_real or (os.path.exists(target) and os.path.samefile(target, input_path)):
                    place = f"is {what}" if target == value else f"would overwrite {what} {target!r}"
                    raise TransferkitError(f"{option} {value!r} {place}; choose another output path")
                if folder_input and real.startswith(input_real.rstrip(os.sep) + os.sep):
                    # new files in a data folder change the data: an image folder would gain a class
                    raise TransferkitError(
                        f"{option} {value!r} is inside {what} {input_path!r}; choose another output path"
                    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for user mistakes)."""
    args = build_parser().parse_args(argv)
    # --quiet and the one-line warnings last for this call only: a caller running main in-process keeps its own
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        with quiet_unless(not getattr(args, "quiet", False)):
            return _run_command(args)
    finally:
        warnings.showwarning = previous_showwarning


def _run_command(args: argparse.Namespace) -> int:
    """Dispatch the parsed command; user mistakes become one line on stderr and exit status 2."""
    from ._cli_adapt import command_adapt
    from ._cli_fit import command_fit
    from ._cli_pretrain import command_pretrain, command_transfer_lr
    from ._cli_report import command_curve, command_report
    from ._cli_select import command_rank, command_similarity

    commands = {
        "adapt": command_adapt,
        "curve": command_curve,
        "report": command_report,
        "transfer-lr": command_transfer_lr,
        "pretrain": command_pretrain,
        "list": _command_list,
        "fit": command_fit,
        "rank": command_rank,
        "similarity": command_similarity,
        "predict": _command_predict,
        "extract": _command_extract,
        "export": _command_export,
    }
    try:
        for attribute, option, folder in _OUTPUT_OPTIONS.get(args.command, ()):
            if isinstance(value := getattr(args, attribute, None), str):  # checked before hours of work, not after
                check_output_path(value, option, folder=folder)
        _check_outputs_spare_inputs(args)
        if (size := getattr(args, "image_size", None)) is not None and size < 1:
            raise TransferkitError(f"--image-size must be a positive number of pixels; got {size}")
        if (seed := getattr(args, "seed", None)) is not None and seed < 0:
            raise TransferkitError(f"--seed must be 0 or more; got {seed}")
        if (C := getattr(args, "C", None)) is not None and not C > 0:
            raise TransferkitError(f"--C must be a float > 0. Got {C} instead.")
        return commands[args.command](args)
    except TransferkitError as error:
        print(f"transferkit: error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as error:
        print(f"transferkit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transferkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
