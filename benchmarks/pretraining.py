"""Train to reuse: source-task pre-training and greedy layer-wise unsupervised pre-training.

Part ``pretrain-source``: a ``small-cnn`` pre-trained on one source (Fashion-MNIST's 60,000
training images, or the ``mnist`` subset's 4,000) with `pretrain_supervised` — the code behind
``transferkit pretrain DATA --arch small-cnn`` — transferred to the other data set with k labels
per class (k = 5, 10, 50, seeds 0-2), as a linear probe and fine-tuned whole. Compared with the
same network from random initialisation trained on the k per class, the target-only baselines
(`scratch`, a small CNN with augmentation; `classical`, logistic regression on pixels) and the
ImageNet backbones as linear probes at 128 px.

Part ``pretrain-unsupervised``: 784-512-256 sigmoid MLPs pre-trained layer by layer on the 60,000
Fashion-MNIST training images *without labels* (stacked denoising autoencoders; stacked RBMs,
CD-1), then given k = 10 or 100 labels per class (drawn from the same training images), as a
linear probe and fine-tuned; versus the same network from random initialisation.

Every model is tested on the target's fixed test part (Fashion-MNIST 2,000, mnist 1,000).
Zoo entries are written to a temporary TRANSFERKIT_HOME, not the user's zoo.

Usage (through run.py): python benchmarks/run.py --only pretrain-source,pretrain-unsupervised
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from transferkit.backbones.native import build_native, native_cfg
from transferkit.backbones.zoo import save_to_zoo
from transferkit.data import few_shot_indices, load_dataset
from transferkit.estimators import TransferClassifier
from transferkit.selection.guard import transfer_gain

SOURCE_KS = (5, 10, 50)
# A sigmoid MLP from random initialisation trains better without the loop's default warm-up, cosine
# decay, weight decay and clipping (0.676 vs 0.638 at k=10, seed 0): every network gets both recipes.
PLAIN_ADAM = {
    "strategy": "finetune",
    "epochs": 200,
    "lr": 1e-3,
    "training": {
        "augment": False,
        "weight_decay": 0.0,
        "clip_grad_norm": None,
        "schedule": "constant",
        "warmup_epochs": 0.0,
        "batch_size": 20,
    },
}
UNSUPERVISED_KS = (10, 100)
FINETUNE_EPOCHS = 80
IMAGENET = ("efficientnet_lite0.in1k", "mobilenetv2_100.in1k")
# (source, target, pre-training epochs): about 1,270 steps of 128 on Fashion-MNIST, 420 on mnist's 3,600
DIRECTIONS = (("fashion-mnist", "mnist", 3), ("mnist", "fashion-mnist", 15))


@contextmanager
def _temporary_zoo() -> Any:
    previous = os.environ.get("TRANSFERKIT_HOME")
    with tempfile.TemporaryDirectory(prefix="tk-bench-zoo-") as home:
        os.environ["TRANSFERKIT_HOME"] = home
        try:
            yield home
        finally:
            if previous is None:
                os.environ.pop("TRANSFERKIT_HOME", None)
            else:
                os.environ["TRANSFERKIT_HOME"] = previous


def _random_entry(name: str, cfg_kwargs: dict[str, Any], seed: int) -> str:
    """Store a randomly initialised network (the 'same network from scratch') as ``zoo:NAME``."""
    backbone = build_native(native_cfg(name=f"zoo:{name}", **cfg_kwargs), seed=seed)
    save_to_zoo(backbone, name, provenance={"method": "random initialisation", "seed": seed}, overwrite=True)
    return f"zoo:{name}"


def _evaluate(methods: dict[str, dict[str, Any]], split: Any, ks: tuple[int, ...], seeds: int) -> list[dict]:
    """Fit every method at every (k, seed); per-example correctness kept for the gain intervals."""
    train, test = split.train, split.test
    rows = []
    for k in ks:
        for method, params in methods.items():
            correct, seconds = [], []
            for seed in range(seeds):
                subset = few_shot_indices(train.labels, k=k, seed=seed)
                started = time.perf_counter()
                model = TransferClassifier(random_state=seed, verbose=False, **params)
                model.fit(train.inputs[subset], train.labels[subset])
                correct.append(model.predict(test.inputs) == test.labels)
                seconds.append(time.perf_counter() - started)
            accuracy = [float(c.mean()) for c in correct]
            print(f"  k={k} {method}: {statistics.mean(accuracy):.3f}", flush=True)
            rows.append(
                {
                    "k": k,
                    "method": method,
                    "accuracy_per_seed": accuracy,
                    "seconds_per_seed": seconds,
                    "_correct": np.stack(correct),
                }
            )
    return rows


def _best(at_k: dict[str, dict], names: tuple[str, ...]) -> dict:
    return max((at_k[n] for n in names if n in at_k), key=lambda r: statistics.mean(r["accuracy_per_seed"]))


def _gains(rows: list[dict], transfer: tuple[str, ...], baselines: tuple[str, ...]) -> list[dict]:
    """Best transfer method vs the best baseline at each k, with the guard's 95% interval."""
    out = []
    for k in sorted({row["k"] for row in rows}):
        at_k = {row["method"]: row for row in rows if row["k"] == k}

        t, b = _best(at_k, transfer), _best(at_k, baselines)
        estimate = transfer_gain(t["_correct"], b["_correct"])
        out.append(
            {
                "k": k,
                "transfer": t["method"],
                "baseline": b["method"],
                "gain": estimate.gain,
                "low": estimate.low,
                "high": estimate.high,
                "verdict": estimate.verdict,
            }
        )
    return out


def _public(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if not key.startswith("_")} for row in rows]


def _whole_network(strategy: Any) -> dict[str, Any]:
    """The loop's recipe for a small CNN: every layer at one rate, BatchNorm statistics of the target.

    No flips: they would change digits, and on Fashion-MNIST they cost the mnist-pre-trained network
    2.5 points in the pilot (k = 10, seeds 0-1).
    """
    return {
        "strategy": strategy,
        "epochs": FINETUNE_EPOCHS,
        "lr": 1e-3,
        "training": {"augment": True, "hflip": False, "batchnorm": "train"},
    }


def _pretrained_sources(sources: tuple[str, ...] | None) -> Any:
    """Yield ``(source, target, PretrainResult)`` per direction: a small CNN pre-trained on the source.

    The entries live in a temporary zoo that lasts while the caller iterates.
    """
    from transferkit.pretraining.source import pretrain_supervised

    with _temporary_zoo():
        for source, target, epochs in DIRECTIONS:
            if sources is not None and source not in sources:
                continue
            print(f"pre-training small-cnn on {source} ({epochs} epochs)", flush=True)
            train = load_dataset(source).train
            result = pretrain_supervised(
                train.inputs,
                train.labels,
                f"{source}-cnn",
                arch="small-cnn",
                epochs=epochs,
                data_name=source,
                verbose=False,
            )
            yield source, target, result


def bench_source(seeds: int = 3, sources: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Pre-train a small CNN on each source, transfer to the other; every comparison at k = 5, 10, 50.

    ``sources`` picks directions by their source (all by default), so the two can run as two processes.
    """
    from transferkit.strategies.finetune import L2SP, FineTune

    directions = []
    for source, target, result in _pretrained_sources(sources):
        split = load_dataset(target)
        channels_size = (1, 28, 28)
        scratch_entry = _random_entry(f"{target}-cnn-random", {"arch": "small-cnn", "input_size": channels_size}, 0)
        one_rate = FineTune(body_lr_scale=1.0)
        methods: dict[str, dict[str, Any]] = {
            f"{source} small-cnn, linear probe": {"backbone": result.name},
            f"{source} small-cnn, fine-tuned": {**_whole_network(one_rate), "backbone": result.name},
            f"{source} small-cnn, L2-SP": {
                **_whole_network(L2SP(body_lr_scale=1.0)),
                "backbone": result.name,
            },
            "same small-cnn from random init, same recipe": {
                **_whole_network(one_rate),
                "backbone": scratch_entry,
            },
            "scratch (the same architecture, baseline recipe)": {"strategy": "scratch"},
            "classical (LR on pixels)": {"strategy": "classical"},
        }
        methods.update({f"{name} linear probe @128": {"backbone": name, "image_size": 128} for name in IMAGENET})
        print(f"{source} -> {target}", flush=True)
        rows = _evaluate(methods, split, SOURCE_KS, seeds)
        transfer = tuple(list(methods)[:3])
        scratch = tuple(list(methods)[3:6])
        directions.append(
            {
                "source": source,
                "target": target,
                "finetune_epochs": FINETUNE_EPOCHS,
                "pretraining": {
                    key: result.provenance[key]
                    for key in ("n_train", "n_holdout", "accuracy", "epochs", "seconds", "loss_per_epoch")
                },
                "rows": _public(rows),
                "vs_scratch": _gains(rows, transfer, scratch),
                "vs_imagenet": _gains(rows, transfer, tuple(f"{n} linear probe @128" for n in IMAGENET)),
            }
        )
    return {"directions": directions}


# What `fit --backbone zoo:NAME --strategy S` did before entries carried their own fine-tuning defaults
# (BackboneCfg.fine_tuning): the backbone at 0.1x the head's rate, the source's BatchNorm statistics, flips,
# 15 epochs.
IMAGENET_MINDED = {"batchnorm": "eval", "hflip": True, "epochs": 15}


def bench_zoo_defaults(seeds: int = 3, sources: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``fit --backbone zoo:NAME`` with the entry's stored defaults vs the strategies' ImageNet-minded ones.

    Each direction's source is pre-trained as in :func:`bench_source`; then ``finetune`` and ``lp-ft``
    run with no settings but the strategy (the entry's defaults apply) and with the settings that were
    the defaults before (``IMAGENET_MINDED``, and ``body_lr_scale=0.1`` for ``finetune``, ``lr=1e-4``
    for ``lp-ft``).
    """
    from transferkit.pretraining.source import NATIVE_FINE_TUNING
    from transferkit.strategies.finetune import FineTune

    directions = []
    for source, target, result in _pretrained_sources(sources):
        entry = result.name
        methods: dict[str, dict[str, Any]] = {
            "finetune, strategy defaults (before)": {
                "strategy": FineTune(body_lr_scale=0.1),
                "training": IMAGENET_MINDED,
                "backbone": entry,
            },
            "finetune, the entry's defaults": {"strategy": "finetune", "backbone": entry},
            "lp-ft, strategy defaults (before)": {
                "strategy": "lp-ft",
                "lr": 1e-4,  # lp-ft's own default, which the entry's stored 1e-3 now replaces
                "training": IMAGENET_MINDED,
                "backbone": entry,
            },
            "lp-ft, the entry's defaults": {"strategy": "lp-ft", "backbone": entry},
        }
        print(f"{source} -> {target}", flush=True)
        rows = _evaluate(methods, load_dataset(target), SOURCE_KS, seeds)
        names = list(methods)
        directions.append(
            {
                "source": source,
                "target": target,
                "entry_defaults": NATIVE_FINE_TUNING,
                "rows": _public(rows),
                "finetune_gain": _gains(rows, (names[1],), (names[0],)),
                "lp_ft_gain": _gains(rows, (names[3],), (names[2],)),
            }
        )
    return {"directions": directions}


def bench_zoo_defaults_stacks(seeds: int = 3) -> dict[str, Any]:
    """``fit --backbone zoo:STACK --strategy finetune`` with the stack's stored defaults vs the strategy's.

    The AE and RBM stacks of :func:`bench_unsupervised` (Fashion-MNIST without labels), then k labels per
    class; before, ``finetune`` ran its 15 epochs with random crops and flips.
    """
    from transferkit.pretraining.layerwise import LayerwiseConfig
    from transferkit.pretraining.source import LAYERWISE_FINE_TUNING, pretrain_unsupervised

    split = load_dataset("fashion-mnist")
    methods: dict[str, dict[str, Any]] = {}
    with _temporary_zoo():
        for method in ("ae", "rbm"):
            print(f"layer-wise {method} on {len(split.train.inputs)} unlabelled images", flush=True)
            config = LayerwiseConfig(method=method, layers=(512, 256))
            entry = pretrain_unsupervised(split.train.inputs, f"fmnist-{method}", config, verbose=False).name
            label = f"{method.upper()} stack"
            methods[f"{label}, finetune, strategy defaults (before)"] = {
                "strategy": "finetune",
                "training": {"epochs": 15, "augment": True},
                "backbone": entry,
            }
            methods[f"{label}, finetune, the entry's defaults"] = {"strategy": "finetune", "backbone": entry}
        rows = _evaluate(methods, split, UNSUPERVISED_KS, seeds)
    names = list(methods)
    return {
        "entry_defaults": LAYERWISE_FINE_TUNING,
        "rows": _public(rows),
        "gains": [g for i in (0, 2) for g in _gains(rows, (names[i + 1],), (names[i],))],
    }


_BETTER = {"transfer helped": "better", "negative transfer": "worse", "no clear difference": "no clear difference"}


def _defaults_line(gain: dict) -> str:
    """A gain line that reads as one setting against another (the guard's verdict words speak of transfer)."""
    return _gain_line({**gain, "verdict": _BETTER.get(gain["verdict"], gain["verdict"])})


def _same_cells(
    rows: list[dict], reference: list[dict], method: str, reference_method: str, where: str = "the section above"
) -> str:
    """Whether ``method``'s accuracies equal ``reference_method``'s (in section ``where``) at every (k, seed)."""
    ours = {row["k"]: row["accuracy_per_seed"] for row in rows if row["method"] == method}
    theirs = {row["k"]: row["accuracy_per_seed"] for row in reference if row["method"] == reference_method}
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return ""
    differ = [k for k in shared if ours[k] != theirs[k]]
    if not differ:
        return (
            f"`{method}` equals {where}'s `{reference_method}` at every k and seed "
            "(the same pre-trained network and settings)."
        )
    return f"`{method}` differs from {where}'s `{reference_method}` at k = {', '.join(map(str, differ))}."


def markdown_zoo_defaults(part: dict[str, Any], source_part: dict[str, Any] | None = None) -> list[str]:
    """Per direction: the accuracy table, the gain of the entry's defaults, a check against ``source_part``."""
    earlier = {d["source"]: d for d in (source_part or {}).get("directions", [])}
    lines = []
    for d in part["directions"]:
        check = ""
        if d["source"] in earlier:
            reference = earlier[d["source"]]["rows"]
            check = _same_cells(
                d["rows"], reference, "finetune, the entry's defaults", f"{d['source']} small-cnn, fine-tuned"
            )
        lines += [
            f"### {d['source']} → {d['target']}",
            "",
            *_table(d["rows"], SOURCE_KS),
            "",
            "The entry's defaults vs the strategy's (95% interval over seeds and test examples):",
            "",
            *[f"- {_defaults_line(g)}" for g in d["finetune_gain"] + d["lp_ft_gain"]],
            "",
            *([check, ""] if check else []),
            f"Measured {d['date']} on {d['machine']} with `{d['command']}`.",
            "",
        ]
    return lines


def markdown_zoo_defaults_stacks(part: dict[str, Any], unsupervised_part: dict[str, Any] | None = None) -> list[str]:
    """The accuracy table, each stack's gain from its stored defaults, a check against ``unsupervised_part``."""
    checks = []
    for stack in ("AE stack", "RBM stack"):
        check = _same_cells(
            part["rows"],
            (unsupervised_part or {}).get("rows", []),
            f"{stack}, finetune, the entry's defaults",
            f"{stack}, fine-tuned",
            where="the layer-wise section",
        )
        checks += [check] if check else []
    return [
        *_table(part["rows"], UNSUPERVISED_KS),
        "",
        "The entry's defaults vs the strategy's (95% interval over seeds and test examples):",
        "",
        *[f"- {_defaults_line(g)}" for g in part["gains"]],
        "",
        *[line for check in checks for line in (check, "")],
    ]


def bench_unsupervised(seeds: int = 3) -> dict[str, Any]:
    """AE and RBM stacks pre-trained without labels on Fashion-MNIST, then k = 10 / 100 labels per class."""
    from transferkit.pretraining.layerwise import LayerwiseConfig
    from transferkit.pretraining.source import pretrain_unsupervised

    split = load_dataset("fashion-mnist")
    stacks = {}
    with _temporary_zoo():
        for method in ("ae", "rbm"):
            print(f"layer-wise {method} on {len(split.train.inputs)} unlabelled images", flush=True)
            config = LayerwiseConfig(method=method, layers=(512, 256))
            result = pretrain_unsupervised(
                split.train.inputs, f"fmnist-{method}", config, data_name="fashion-mnist", verbose=False
            )
            stacks[method] = {
                "entry": result.name,
                "config": config.to_dict(),
                "history": result.provenance["history"],
                "seconds": result.provenance["seconds"],
            }
        shape = {"arch": "mlp", "input_size": (1, 28, 28), "hidden": (512, 256), "activation": "sigmoid"}
        random_entry = _random_entry("fmnist-mlp-random", shape, 0)
        tune = {"strategy": "finetune", "epochs": 200, "lr": 1e-3, "training": {"augment": False}}
        entries = {"AE stack": stacks["ae"]["entry"], "RBM stack": stacks["rbm"]["entry"], "random init": random_entry}
        methods: dict[str, dict[str, Any]] = {}
        for label, entry in entries.items():
            methods[f"{label}, linear probe"] = {"backbone": entry}
            methods[f"{label}, fine-tuned"] = {**tune, "backbone": entry}
            methods[f"{label}, fine-tuned (plain Adam)"] = {**PLAIN_ADAM, "backbone": entry}
        rows = _evaluate(methods, split, UNSUPERVISED_KS, seeds)
    recipes = ("linear probe", "fine-tuned", "fine-tuned (plain Adam)")
    comparisons = {
        stack: _gains(rows, tuple(f"{stack}, {r}" for r in recipes), tuple(f"random init, {r}" for r in recipes))
        for stack in ("AE stack", "RBM stack")
    }
    return {
        "stacks": {m: {k: v for k, v in s.items() if k != "entry"} for m, s in stacks.items()},
        "rows": _public(rows),
        "vs_random": comparisons,
        "finetune": {key: value for key, value in tune.items() if key != "strategy"},
        "plain_adam": PLAIN_ADAM["training"],
    }


def _cell(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _table(rows: list[dict], ks: tuple[int, ...]) -> list[str]:
    methods = list(dict.fromkeys(row["method"] for row in rows))
    by = {(row["method"], row["k"]): row for row in rows}
    lines = [
        "| method | " + " | ".join(f"k={k}" for k in ks) + " | time per fit (k max) |",
        "|---" * (len(ks) + 2) + "|",
    ]
    for method in methods:
        cells = [_cell(by[(method, k)]["accuracy_per_seed"]) for k in ks]
        lines.append(
            f"| {method} | "
            + " | ".join(cells)
            + f" | {statistics.mean(by[(method, ks[-1])]['seconds_per_seed']):.1f} s |"
        )
    return lines


def _gain_line(gain: dict) -> str:
    return (
        f"k={gain['k']}: {gain['transfer']} vs {gain['baseline']}: {100 * gain['gain']:+.1f} points "
        f"({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f}), {gain['verdict']}"
    )


def _imagenet_summary(direction: dict[str, Any]) -> str:
    """One sentence: where the source-pre-trained network loses to an ImageNet probe (on the mean)."""
    behind = [g for g in direction["vs_imagenet"] if g["gain"] < 0]
    if not behind:
        return f"Pre-training on {direction['source']} beats the ImageNet probes (on the mean) at every k."
    where = ", ".join(f"k = {g['k']} ({100 * g['gain']:+.1f}, {g['verdict']})" for g in behind)
    return f"Pre-training on {direction['source']} loses to an ImageNet backbone (on the mean) at {where}."


def markdown_source(part: dict[str, Any]) -> list[str]:
    """Per direction: pre-training figures, the accuracy table, the gains over scratch and ImageNet."""
    lines = []
    for d in part["directions"]:
        p = d["pretraining"]
        lines += [
            f"### {d['source']} → {d['target']}",
            "",
            f"Pre-training: small-cnn on {p['n_train']} {d['source']} training images, {p['epochs']} epochs, "
            f"{p['seconds']:.0f} s; source accuracy {p['accuracy']:.3f} on {p['n_holdout']} held-out source images.",
            "",
            *_table(d["rows"], SOURCE_KS),
            "",
            "Best transfer row vs the best from-scratch row (same network from random init, `scratch`, `classical`):",
            "",
            *[f"- {_gain_line(g)}" for g in d["vs_scratch"]],
            "",
            "Best transfer row vs the better ImageNet linear probe:",
            "",
            *[f"- {_gain_line(g)}" for g in d["vs_imagenet"]],
            "",
            _imagenet_summary(d),
            "",
            f"Measured {d['date']} on {d['machine']} with `{d['command']}`.",
            "",
        ]
    return lines


def markdown_unsupervised(part: dict[str, Any]) -> list[str]:
    """Pre-training figures, the accuracy table and each stack's gain over random init."""
    lines = []
    for method, stack in part["stacks"].items():
        losses = [round(h["loss_per_epoch"][-1], 4) for h in stack["history"]]
        cfg = stack["config"]
        lines.append(
            f"- {method.upper()} stack: layers {cfg['layers']}, {cfg['epochs']} epochs per layer, "
            f"{stack['seconds']:.0f} s on 60,000 unlabelled images; final reconstruction loss per layer {losses}."
        )
    lines += ["", *_table(part["rows"], UNSUPERVISED_KS), ""]
    for stack, gains in part["vs_random"].items():
        lines += [f"- {stack}: " + "; ".join(_gain_line(g) for g in gains)]
    return lines + [""]
