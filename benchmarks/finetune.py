"""Fine-tuning benchmark: every strategy on Fashion-MNIST and Yelp, several seeds (imported by run.py).

Protocols as in run.py / ../shared/ANCHORS.md. Fashion-MNIST images are fed at 128 px (stated
in the table) and train 10 epochs at k=10, 5 at k=50, so that 3 seeds × 7 strategies × 2 label
budgets fit in half an hour on one core.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from transferkit import get_strategy
from transferkit.data import Dataset, few_shot_indices, load_dataset
from transferkit.estimators import TransferClassifier

STRATEGIES = ("linear-probe", "finetune", "freeze", "lp-ft", "gradual-unfreeze", "l2sp", "lora")
IMAGE_SIZE = 96


def _fit_one(
    strategy: str, backbone: str, train: Dataset, test: Dataset, seed: int, image_size: int = IMAGE_SIZE, **settings
) -> dict:
    model = TransferClassifier(
        backbone=backbone,
        strategy=strategy,
        image_size=image_size if train.modality == "image" else None,
        random_state=seed,
        verbose=False,
        **settings,
    )
    model.fit(train.inputs, train.labels)
    started = time.perf_counter()
    accuracy = float(model.score(test.inputs, test.labels))
    return {
        "accuracy": accuracy,
        "fit_seconds": model.history_["fit_seconds"],
        "evaluate_seconds": time.perf_counter() - started,
        "training": model.history_.get("training"),
        "image_size": image_size if train.modality == "image" else None,
    }


def _run(
    name: str, backbone: str, train_pool: Dataset, test_of, ks, seeds_for_k, epochs_for_k, strategies, **fit
) -> list:
    rows = []
    for k in ks:
        for seed in seeds_for_k(k):
            chosen = few_shot_indices(train_pool.labels, k, seed)
            train, test = train_pool.subset(chosen), test_of(chosen)
            for strategy in strategies:
                trains = getattr(get_strategy(strategy), "trains", False)
                settings = {"epochs": epochs_for_k(k)} if trains and epochs_for_k(k) else {}
                result = _fit_one(strategy, backbone, train, test, seed, **fit, **settings)
                rows.append({"dataset": name, "k": k, "seed": seed, "strategy": strategy, **result})
                print(
                    f"{name} k={k} seed={seed} {strategy}: {result['accuracy']:.3f} "
                    f"(fit {result['fit_seconds']:.1f} s)",
                    flush=True,
                )
    return rows


def bench_finetune_fmnist(
    ks=(10, 50), seeds=(0, 1, 2), strategies=STRATEGIES, epochs_for_k=None, image_size=IMAGE_SIZE
) -> list[dict]:
    """Fashion-MNIST at 96 px; by default 10 epochs at k=10 and 5 at k=50, to keep the wall time in minutes."""
    split = load_dataset("fashion-mnist")
    return _run(
        "fashion-mnist",
        "efficientnet_lite0.in1k",
        split.train,
        lambda chosen: split.test,
        ks,
        lambda k: seeds,
        epochs_for_k or (lambda k: 5 if k >= 50 else 10),
        strategies,
        image_size=image_size,
    )


def bench_finetune_fmnist_long(strategies=("finetune", "l2sp"), k=50, epochs=15, seeds=(0, 1, 2)) -> list[dict]:
    """Fashion-MNIST k=50 at 96 px with the longer schedule (15 epochs) for the strongest strategies at k=10."""
    return bench_finetune_fmnist((k,), seeds, strategies, epochs_for_k=lambda k: epochs)


def bench_finetune_fmnist_128() -> list[dict]:
    """Fashion-MNIST k=50 at 128 px, 15 epochs: the best strategy at 96 px (l2sp) against the probe at 128 px."""
    return bench_finetune_fmnist((50,), (0, 1, 2), ("linear-probe", "l2sp"), lambda k: 15, image_size=128)


def yelp_pool() -> Dataset:
    """Every sentence of the built-in Yelp split (its train and test parts joined)."""
    split = load_dataset("sentiment-yelp")
    return Dataset(
        "sentiment-yelp",
        "text",
        list(split.train.inputs) + list(split.test.inputs),
        np.concatenate([split.train.labels, split.test.labels]),
        split.train.classes,
    )


def bench_finetune_yelp(ks=(8, 32), seeds_by_k=None, strategies=STRATEGIES) -> list[dict]:
    """Yelp: k sentences per class drawn from all of Yelp, tested on the rest (5 seeds at k=8, 3 at k=32)."""
    seeds_by_k = seeds_by_k or {8: (0, 1, 2, 3, 4), 32: (0, 1, 2)}
    pool = yelp_pool()
    return _run(
        "sentiment-yelp",
        "minilm_l6.sentence",
        pool,
        lambda chosen: pool.subset(np.setdiff1d(np.arange(len(pool)), chosen)),
        ks,
        lambda k: seeds_by_k.get(k, (0, 1, 2)),
        lambda k: None,
        strategies,
    )


def _size(row: dict) -> int | None:
    """The image size of a row (rows written before it was recorded were all at the default 96 px)."""
    return row.get("image_size", IMAGE_SIZE if row["dataset"] == "fashion-mnist" else None)


def summarize(rows: list[dict]) -> list[dict]:
    """Mean ± std accuracy and mean fit time per (dataset, k, image size, strategy)."""
    table = []
    keys = dict.fromkeys((r["dataset"], r["k"], _size(r), r["strategy"]) for r in rows)
    for dataset, k, size, strategy in keys:
        group = [r for r in rows if (r["dataset"], r["k"], _size(r), r["strategy"]) == (dataset, k, size, strategy)]
        accuracies = [r["accuracy"] for r in group]
        table.append(
            {
                "dataset": dataset,
                "k": k,
                "image_size": size,
                "strategy": strategy,
                "seeds": len(group),
                "mean": statistics.mean(accuracies),
                "std": statistics.stdev(accuracies) if len(group) > 1 else 0.0,
                "fit_seconds": statistics.mean(r["fit_seconds"] for r in group),
            }
        )
    return table


def markdown(
    part: dict, scratch: dict[tuple[str, int], tuple[float, float, int]], probes: dict[tuple, float]
) -> list[str]:
    """Table lines; ``scratch`` maps (dataset, k) to the scratch baseline's (mean, std, seeds) and ``probes`` to
    ``(dataset, k, image size)`` to the linear probe's mean accuracy (from any fine-tuning part, same seeds)."""
    lines = [
        "| data | k | px | strategy | seeds | accuracy | Δ vs linear probe (same px) | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = summarize(part["rows"])
    for entry in table:
        probe = probes.get((entry["dataset"], entry["k"], entry["image_size"]))
        is_probe = entry["strategy"] == "linear-probe"
        delta = f"{100 * (entry['mean'] - probe):+.1f} pts" if probe is not None and not is_probe else ""
        lines.append(
            f"| {entry['dataset']} | {entry['k']} | {entry['image_size'] or ''} | {entry['strategy']} | "
            f"{entry['seeds']} | "
            f"{entry['mean']:.3f} ± {entry['std']:.3f} | {delta} | {entry['fit_seconds']:.1f} |"
        )
    for (dataset, k), (mean, std, seeds) in scratch.items():
        if any(e["dataset"] == dataset and e["k"] == k for e in table):
            lines.append(f"| {dataset} | {k} | | scratch (target only) | {seeds} | {mean:.3f} ± {std:.3f} | | |")
    return lines
