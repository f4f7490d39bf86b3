"""Linear parameter transfer (Chelba & Acero): Amazon → Yelp / IMDb with k labels per class.

Source: a logistic regression (C=1) on all 1,000 Amazon sentences. Target: per seed, k
sentences of each class drawn from the target's training part (seeded, `few_shot_indices`),
tested on its fixed test part (200). Features: MiniLM embeddings, or TF-IDF fitted on the
Amazon sentences and the target's training sentences together (no labels involved). Methods:
source-only (the Amazon model as it is), target-only (LR, C=1, on the k per class), and
`TransferLogisticRegression` with λ chosen by cross-validation on the k per class. The
negative-transfer guard's interval (`transfer_gain`) compares transfer with the better of the
two baselines.

Usage (through run.py): python benchmarks/run.py --only param-transfer
"""

from __future__ import annotations

import statistics
import time

from transferkit.adaptation.pairs import load_pair
from transferkit.pretraining.compare import compare_parameter_transfer

SOURCE = "sentiment-amazon"
TARGETS = ("sentiment-yelp", "sentiment-imdb")
KS = (4, 16, 64)
SEEDS = 5


def bench_parameter_transfer(seeds: int = SEEDS) -> list[dict]:
    """One row per (target, features, k): what `transferkit transfer-lr` computes, over ``seeds`` draws."""
    rows = []
    for target in TARGETS:
        for representation in ("minilm_l6.sentence", "tfidf"):
            pair = load_pair(SOURCE, target, backbone=representation)
            for k in KS:
                started = time.perf_counter()
                row = compare_parameter_transfer(
                    pair.source,
                    pair.source_labels,
                    pair.target,
                    pair.target_labels,
                    pair.test,
                    pair.test_labels,
                    k=k,
                    seeds=seeds,
                )
                rows.append(
                    {
                        "target": target,
                        "representation": representation,
                        **row,
                        "seconds": time.perf_counter() - started,
                    }
                )
                print(f"{target} {representation} k={k}: {row['gain']['verdict']}", flush=True)
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
