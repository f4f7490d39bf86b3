"""Linear parameter transfer (Chelba & Acero): Amazon → Yelp / IMDb with k labels per class.

Source: a logistic regression (C=1) on all 1,000 Amazon sentences. Target: per seed, k
sentences of each class drawn from the target's training part (seeded, `few_shot_indices`),
tested on its fixed test part (200). Features: MiniLM embeddings, or TF-IDF fitted on the
Amazon sentences and the target's sentences together (no labels involved). Methods:
source-only (the Amazon model as it is), target-only (LR, C=1, on the k per class), and
`TransferLogisticRegression` with λ chosen by cross-validation on the k per class. The
negative-transfer guard's interval (`transfer_gain`) compares transfer with the better of the
two baselines.

Usage (through run.py): python benchmarks/run.py --only param-transfer
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from transferkit.adaptation import tfidf_features
from transferkit.backbones import create_backbone
from transferkit.data import few_shot_indices, load_dataset
from transferkit.features import extract_features
from transferkit.pretraining import TransferLogisticRegression
from transferkit.selection.guard import transfer_gain

SOURCE = "sentiment-amazon"
TARGETS = ("sentiment-yelp", "sentiment-imdb")
KS = (4, 16, 64)
SEEDS = 5


def _features(representation: str, source: list[str], train: list[str], test: list[str]) -> list[np.ndarray]:
    if representation == "tfidf":
        return tfidf_features([*source, *train, *test], source, train, test)
    backbone = create_backbone(representation)
    return [extract_features(backbone, texts, cache=True).features for texts in (source, train, test)]


def bench_parameter_transfer(seeds: int = SEEDS) -> list[dict]:
    """One row per (target, features, k): accuracy per method over seeds, λ chosen, the guard's verdict."""
    source_split = load_dataset(SOURCE)
    source_texts = [*source_split.train.inputs, *source_split.test.inputs]
    source_labels = np.concatenate([source_split.train.labels, source_split.test.labels])
    rows = []
    for target in TARGETS:
        split = load_dataset(target)
        for representation in ("minilm_l6.sentence", "tfidf"):
            F_source, F_train, F_test = _features(
                representation, source_texts, list(split.train.inputs), list(split.test.inputs)
            )
            source_model = LogisticRegression(C=1.0, max_iter=2000).fit(F_source, source_labels)
            source_correct = source_model.predict(F_test) == split.test.labels  # (n_test,)
            for k in KS:
                correct = {"source-only": [], "target-only": [], "transfer": []}
                lambdas, started = [], time.perf_counter()
                for seed in range(seeds):
                    index = few_shot_indices(split.train.labels, k, seed)
                    X, y = F_train[index], split.train.labels[index]
                    target_model = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
                    transfer = TransferLogisticRegression(source_model, random_state=seed).fit(X, y)
                    lambdas.append(transfer.lam_)
                    correct["source-only"].append(source_correct)
                    correct["target-only"].append(target_model.predict(F_test) == split.test.labels)
                    correct["transfer"].append(transfer.predict(F_test) == split.test.labels)
                accuracy = {m: [float(c.mean()) for c in v] for m, v in correct.items()}
                best = max(("source-only", "target-only"), key=lambda m: statistics.mean(accuracy[m]))
                gain = transfer_gain(np.stack(correct["transfer"]), np.stack(correct[best]))
                rows.append(
                    {
                        "target": target,
                        "representation": representation,
                        "k": k,
                        "accuracy_per_seed": accuracy,
                        "lambdas": lambdas,
                        "best_baseline": best,
                        "gain": {"gain": gain.gain, "low": gain.low, "high": gain.high, "verdict": gain.verdict},
                        "beats_both": all(
                            statistics.mean(accuracy["transfer"]) > statistics.mean(accuracy[m])
                            for m in ("source-only", "target-only")
                        ),
                        "seconds": time.perf_counter() - started,
                    }
                )
                print(f"{target} {representation} k={k}: {rows[-1]['gain']['verdict']}", flush=True)
    return rows


def _cell(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def markdown_parameter_transfer(rows: list[dict]) -> list[str]:
    """The table: accuracy per method, λ chosen, the gain over the better baseline and the guard's verdict."""
    lines = [
        "| target | features | k | source-only | target-only | transfer LR | λ chosen (per seed) | "
        "gain vs better baseline (95%) | guard |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        acc, gain = row["accuracy_per_seed"], row["gain"]
        lambdas = ", ".join(f"{lam:g}" for lam in row["lambdas"])
        lines.append(
            f"| {row['target'].replace('sentiment-', '')} | {row['representation'].split('.')[0]} | {row['k']} | "
            f"{_cell(acc['source-only'])} | {_cell(acc['target-only'])} | {_cell(acc['transfer'])} | {lambdas} | "
            f"{100 * gain['gain']:+.1f} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f}) vs "
            f"{row['best_baseline']} | {gain['verdict']} |"
        )
    return lines
