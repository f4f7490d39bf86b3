"""``transferkit fit``: transfer vs target-only baselines over several labelled draws, with the guard.

For each seed the labelled examples are drawn again (``--labels-per-class``), the transfer
model and the target-only baselines are fitted on them and scored on the same test set. The
gain over the best baseline gets an interval over seeds and test examples
(:func:`transferkit.selection.transfer_gain`); when transfer is worse with confidence, the
run says "negative transfer", and in auto mode the target-only model is what gets saved.
The saved model is the one of the first seed (``--seed``). The guard decides on the test split:
once it has chosen the target-only model, that split no longer gives an unbiased estimate for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_json
from .errors import TransferkitError

DEFAULT_DATA = "fashion-mnist"
DEFAULT_LABELS_PER_CLASS = 10  # used only with the built-in default data
BASELINE_DESCRIPTIONS = {
    ("scratch", "image"): "small CNN from scratch",
    ("scratch", "text"): "bag of embeddings from scratch",
    ("scratch", "tabular"): "MLP from scratch",
    ("classical", "image"): "logistic regression on pixels",
    ("classical", "text"): "TF-IDF + logistic regression",
    ("classical", "tabular"): "logistic regression",
}


def data_and_labels_per_class(args: argparse.Namespace) -> tuple[str, int | None]:
    """The data set and labels per class asked for; bare, the built-in default with its default k."""
    if args.data is None and args.labels_per_class is None:
        return DEFAULT_DATA, DEFAULT_LABELS_PER_CLASS
    return args.data or DEFAULT_DATA, args.labels_per_class


def _accuracies(run: dict[str, Any]) -> list[float]:
    """Test accuracy of each seed of one method."""
    return [float(correct.mean()) for correct in run["correct"]]


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def command_fit(args: argparse.Namespace) -> int:
    """Run ``transferkit fit``; see the module docstring."""
    from .cli import _checkpoint_from_args, _print_table, _strategy_from_args, _training_from_args
    from .data import few_shot_indices, load_dataset
    from .estimators import TransferClassifier
    from .selection import transfer_gain
    from .strategies import get_strategy

    started_command = time.perf_counter()
    _check_written_paths(args)
    data, k = data_and_labels_per_class(args)
    if k is not None and k < 0:
        raise TransferkitError(f"--labels-per-class must be >= 0; got {k}")
    if args.no_baseline and args.baselines is not None:
        raise TransferkitError(f"--baselines {args.baselines!r} and --no-baseline contradict each other; give one")
    if args.seeds < 1:
        raise TransferkitError(f"--seeds must be a positive number of labelled draws; got {args.seeds}")
    if k == 0 and not args.label_descriptions:
        raise TransferkitError("--labels-per-class 0 needs --label-descriptions FILE (a zero-shot classifier)")
    split = load_dataset(data, test_size=args.test_size, text_column=args.text_column, label_column=args.label_column)
    pool, test = split.train, split.test
    if args.label_descriptions:  # every class of the data described, nothing else
        from .strategies.label_prior import read_label_descriptions

        read_label_descriptions(args.label_descriptions, list(pool.classes))
    auto = args.strategy == "auto" or args.backbone == "auto"
    # Zero-shot draws nothing, and there is nothing to redraw.
    seeds = [args.seed] if k == 0 else [args.seed + i for i in range(args.seeds)]

    def draw(seed: int) -> Any:
        if k == 0:
            return pool.subset(np.zeros(0, dtype=np.int64))
        return pool.subset(few_shot_indices(pool.labels, k, seed, pool.classes)) if k is not None else pool

    first = draw(seeds[0])
    labels_note = f"{k} labels per class" if k is not None else "all labels"
    print(
        f"transferkit fit: {data} ({pool.modality}, {len(pool.classes)} classes), {labels_note} "
        f"= {len(first)} training examples, {len(test)} test examples, "
        + (f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]})"),
        flush=True,
    )
    class_names = np.asarray(pool.classes)  # models learn and predict names, not label indices
    _check_auto_options(args)
    strategy_spec = _with_probe_c(_strategy_from_args(args), args)
    training = _training_from_args(args)
    if args.strategy != "auto" and not getattr(get_strategy(args.strategy), "trains", False):
        if ignored := [option for option, given in _tuning_options(args) if given]:
            listed = ", ".join(ignored[:-1]) + " and " + ignored[-1] if len(ignored) > 1 else ignored[0]
            why = (
                "trains its own small network with tuned settings (--set steps=N sets its length)"
                if args.strategy == "scratch"
                else "trains no network"
            )
            warnings.warn(f"{listed} ignored: --strategy {args.strategy} {why}", stacklevel=1)
    checkpoint_dir, resume = _checkpoint_from_args(args)
    methods: list[tuple[Any, str | None]] = [(strategy_spec, args.backbone)]
    if not args.no_baseline and len(first) == 0:
        print("no target-only baseline can learn from 0 labelled examples: none is run", flush=True)
    elif not args.no_baseline:
        methods += [
            (name, None) for name in _baseline_names("scratch,classical" if args.baselines is None else args.baselines)
        ]
    runs: list[dict[str, Any]] = [
        {"correct": [], "fit_seconds": [], "eval_seconds": [], "model": None} for _ in methods
    ]
    choices = []
    for seed in seeds:
        train = draw(seed) if seed != seeds[0] else first
        for position, (strategy, backbone) in enumerate(methods):
            trains = strategy == "auto" or getattr(get_strategy(strategy), "trains", False)
            saved_run = seed == seeds[0]  # checkpoints cover the run whose model is saved
            model = TransferClassifier(
                backbone=backbone,
                strategy=strategy,
                layer=args.layer,
                image_size=args.image_size,
                C=1.0 if args.C is None else args.C,
                random_state=seed,
                verbose=not args.quiet,
                epochs=args.epochs if trains else None,
                lr=args.lr if trains else None,
                training=training if trains else None,
                checkpoint_dir=checkpoint_dir if trains and saved_run and strategy != "auto" else None,
                resume=resume and trains and saved_run,
                label_descriptions=args.label_descriptions if position == 0 else None,
            )
            model.fit(train.inputs, class_names[train.labels])
            started = time.perf_counter()
            predicted = model.predict(test.inputs)
            run = runs[position]
            run["correct"].append(predicted == class_names[test.labels])
            if seed == seeds[0]:  # the saved model's predictions, for the report
                run["predicted"] = predicted
            run["fit_seconds"].append(model.history_["fit_seconds"])
            run["eval_seconds"].append(time.perf_counter() - started)
            run["seed_strategy"] = model.strategy_.name  # auto may choose another for each seed
            if seed == seeds[0]:  # the name shown and recorded is the saved (first-seed) model's
                run["strategy"] = model.strategy_.name
            run["model"] = run["model"] or model
            if position == 0:
                choice = _report_choice(model, seed)
                if choice:
                    choices.append(choice)
        if len(seeds) > 1:
            print(
                f"seed {seed}: " + ", ".join(f"{r['seed_strategy']} {r['correct'][-1].mean():.3f}" for r in runs),
                flush=True,
            )

    transfer, baselines = runs[0], runs[1:]
    model = transfer["model"]
    accuracies = _accuracies(transfer)
    rows = [["method", "accuracy", "fit", "evaluate"]]
    name = transfer["strategy"] if model.backbone_ is None else f"{transfer['strategy']} ({model.backbone_.cfg.name})"
    if auto:
        name = f"auto: {name}" if len(seeds) == 1 else f"auto ({name} for seed {seeds[0]})"
    labelled = [(transfer, name)] + [
        (b, f"{b['strategy']} ({BASELINE_DESCRIPTIONS.get((b['strategy'], pool.modality), '')})") for b in baselines
    ]
    for run, label in labelled:
        rows.append(
            [
                label,
                _mean_std(_accuracies(run)),
                f"{np.mean(run['fit_seconds']):.1f} s",
                f"{np.mean(run['eval_seconds']):.1f} s",
            ]
        )
    print()
    _print_table(rows)
    if len(seeds) > 1:
        print(f"(mean ± std over {len(seeds)} seeds; times are per seed)")
    stored = model.history_.get("backbone_fine_tuning")
    if stored:
        used = model.history_.get("training") or {}  # the settings training ran with
        kept = ", ".join(f"{key} {value}" for key, value in stored.items() if used.get(key, value) == value)
        given = ", ".join(f"{key} {used[key]}" for key in stored if key in used and used[key] != stored[key])
        print(
            f"fine-tuned with the defaults stored with {model.backbone_.cfg.name}: {kept or 'none kept'}"
            + (f"; given instead: {given}" if given else "")
        )

    record: dict[str, Any] = {
        "dataset": data,
        "backbone": model.backbone_.cfg.name if model.backbone_ is not None else None,
        "strategy": transfer["strategy"],
        "auto": auto,
        "labels_per_class": k,
        "seed": seeds[0],
        "seeds": seeds,
        "n_train": len(first),
        "test_size": len(test),
        "image_size": args.image_size,
        "layer": args.layer,
        "accuracy": float(np.mean(accuracies)),
        "accuracy_per_seed": accuracies,
        "baselines": {b["strategy"]: float(np.mean(_accuracies(b))) for b in baselines},
        "baselines_per_seed": {b["strategy"]: _accuracies(b) for b in baselines},
        "baseline_fit_seconds": {b["strategy"]: float(np.mean(b["fit_seconds"])) for b in baselines},
        "gain": None,
        "gain_ci95": None,
        "negative_transfer": None,
        "returned": "transfer",
        "choices": choices,
        "fit_seconds": float(np.mean(transfer["fit_seconds"])),
        "evaluate_seconds": float(np.mean(transfer["eval_seconds"])),
        "extract_images_per_second": model.history_.get("extract_items_per_second"),
        "features_from_cache": model.history_.get("from_cache"),
        "strategy_settings": model.strategy_.to_dict(),
        "training": model.history_.get("training"),
        "backbone_fine_tuning": model.history_.get("backbone_fine_tuning"),  # defaults the weights asked for
        "epochs": model.history_.get("epochs"),
        "resumed_from_epoch": model.history_.get("resumed_from"),
        "classes": list(pool.classes),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    saved = model
    if baselines:
        best = max(baselines, key=lambda b: np.mean(_accuracies(b)))
        estimate = transfer_gain(np.stack(transfer["correct"]), np.stack(best["correct"]))
        record.update(
            gain=estimate.gain,
            gain_ci95=[estimate.low, estimate.high],
            gain_against=best["strategy"],
            gain_per_seed=estimate.per_seed,
            verdict=estimate.verdict,
            negative_transfer=estimate.negative,
        )
        over = f"over {len(seeds)} seed{'s' if len(seeds) > 1 else ''} and {estimate.n_test} test examples"
        print(
            f"\ngain over the best target-only baseline ({best['strategy']}): {100 * estimate.gain:+.1f} points "
            f"(95% interval {100 * estimate.low:+.1f} to {100 * estimate.high:+.1f} {over}): {estimate.verdict}."
            + (" One labelled draw: use --seeds 3 or more for the spread from the draw." if len(seeds) == 1 else "")
        )
        if estimate.negative:
            best_accuracy = np.mean(_accuracies(best))
            print(
                f"negative transfer: {name} scores {np.mean(accuracies):.3f}, {100 * -estimate.gain:.1f} points "
                f"below target-only {best['strategy']} ({best_accuracy:.3f}); the interval of the gain "
                f"({100 * estimate.low:+.1f} to {100 * estimate.high:+.1f}) excludes 0."
            )
            if auto:
                saved = best["model"]
                record["returned"] = best["strategy"]
                print(f"auto mode: the target-only model ({best['strategy']}) is returned instead.")
            else:
                print("use the target-only model, another backbone, or --strategy auto / --backbone auto.")
    _add_report_fields(record, labelled, pool, test)
    record["wall_seconds"] = time.perf_counter() - started_command
    if args.out:
        from .report import write_report

        out = Path(args.out)
        saved.save(out / "model")
        atomic_write_json(out / "run.json", record)
        print(
            f"\nmodel ({record['returned']}, seed {seeds[0]}) saved to {out / 'model'}; run record {out / 'run.json'}"
        )
        print(f"report: {write_report([out], out / 'report.html')}")
    if args.json:
        atomic_write_json(args.json, record)
    return 0


def _tuning_options(args: argparse.Namespace) -> list[tuple[str, bool]]:
    """(option, given?) of every option that only a strategy training a network through the loop reads."""
    values = ("epochs", "lr", "batch_size", "optimizer", "schedule", "val_fraction", "patience", "batchnorm")
    return [(f"--{name.replace('_', '-')}", getattr(args, name) is not None) for name in values] + [
        ("--no-augment", bool(args.no_augment)),
        ("--no-flip", bool(args.no_flip)),
        ("--checkpoint-dir", args.checkpoint_dir is not None),
        ("--resume", args.resume is not None),
    ]


def _check_auto_options(args: argparse.Namespace) -> None:
    """Refuse what ``--strategy auto`` cannot honour, rather than fail later with a message about a strategy 'auto'."""
    if args.strategy != "auto":
        return
    settings = [("--lr-decay", args.lr_decay is not None), ("--freeze-until", args.freeze_until is not None)]
    settings.append(("--set", bool(args.strategy_options)))
    if given := [option for option, present in settings if present]:
        raise TransferkitError(
            f"{given[0]} sets a setting of one strategy, but --strategy auto chooses among linear-probe, freeze, "
            "lp-ft and finetune with their defaults; name the strategy to set it"
        )
    if args.resume is not None:
        raise TransferkitError(
            f"--resume {args.resume!r}: a --strategy auto run keeps no checkpoints, so there is nothing to continue; "
            "name the strategy (the one the checkpoint was written by) to resume it"
        )


def _with_probe_c(strategy: Any, args: argparse.Namespace) -> Any:
    """``strategy`` with ``--C``: a linear-probe built from ``--set`` options would otherwise keep C's default."""
    from .strategies import LinearProbe

    if not isinstance(strategy, LinearProbe) or args.C is None:
        return strategy
    if any(option.partition("=")[0].strip() == "C" for option in args.strategy_options) and strategy.C != args.C:
        raise TransferkitError(f"--C {args.C} and --set C={strategy.C} contradict each other; give one")
    return dataclasses.replace(strategy, C=args.C)


def _check_written_paths(args: argparse.Namespace) -> None:
    """Refuse, before any work, outputs that cannot be written or that would replace another output of this run."""
    if args.out:
        out = Path(args.out)
        if (out / "model").exists() and not (out / "model").is_dir():
            raise TransferkitError(f"--out {args.out!r} holds a file 'model' where the model folder goes; move it")
        for name in ("run.json", "report.html"):
            if (out / name).is_dir():
                raise TransferkitError(f"--out {args.out!r} holds a folder {name!r} where that file goes; move it")
    if not args.json:
        return
    record = os.path.realpath(args.json)
    # the record may go to OUT/run.json (the same record), not onto the model, the report or a checkpoint
    places = [(args.checkpoint_dir, "--checkpoint-dir")]
    if args.out:
        places += [(os.path.join(args.out, name), "--out") for name in ("model", "checkpoints", "report.html")]
        if record == os.path.realpath(args.out):
            raise TransferkitError(f"--json {args.json!r} is the --out folder; choose a file name")
    for place, option in places:
        real = os.path.realpath(place) if place else None
        if real and (record == real or record.startswith(real.rstrip(os.sep) + os.sep)):
            raise TransferkitError(
                f"--json {args.json!r} would overwrite what {option} writes in {place!r}; choose another file"
            )


def _add_report_fields(record: dict[str, Any], labelled: list[tuple[dict, str]], pool: Any, test: Any) -> None:
    """What the report shows: every method with its 95% interval, and the saved model on the test set."""
    from .report import evaluation_record, method_summary

    record["kind"] = "fit"
    record["methods"] = [
        method_summary(
            run["strategy"],
            label,
            "transfer" if position == 0 else "baseline",
            np.stack(run["correct"]),
            run["fit_seconds"],
            run["eval_seconds"],
        )
        for position, (run, label) in enumerate(labelled)
    ]
    returned = record["returned"]
    run, label = next(((r, n) for r, n in labelled[1:] if r["strategy"] == returned), labelled[0])
    index = {name: i for i, name in enumerate(pool.classes)}
    record["evaluation"] = evaluation_record(
        pool.classes,
        test.labels,
        [index[name] for name in run["predicted"]],
        test.inputs,
        modality=pool.modality,
        model=f"{label}, seed {record['seed']}",
    )


def _baseline_names(text: str) -> list[str]:
    from .cli import comma_names

    names = comma_names(text, "--baselines", "scratch,classical")
    if any(name not in ("scratch", "classical") for name in names):
        raise TransferkitError(f"--baselines takes scratch and/or classical, comma-separated; got {text!r}")
    return names


def _report_choice(model: Any, seed: int) -> dict[str, Any] | None:
    """Print what auto mode chose for this seed and why; the record of it."""
    choice: dict[str, Any] = {}
    if hasattr(model, "backbone_choice_"):
        ranked = model.backbone_choice_
        print(
            f"seed {seed}: backbone auto chose {ranked.backbone} ("
            + ", ".join(f"{r.name} {r.score:.3f}" for r in ranked.ranking)
            + f"; {ranked.score})",
            flush=True,
        )
        choice["backbone"] = ranked.to_dict()
    if hasattr(model, "strategy_choice_"):
        picked = model.strategy_choice_
        print(f"seed {seed}: strategy auto chose {picked.strategy}: " + "; ".join(picked.reasons), flush=True)
        choice["strategy"] = picked.to_dict()
    return {"seed": seed, **choice} if choice else None
