"""Parameter transfer against its two baselines over labelled draws: what ``transferkit transfer-lr`` prints."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from ..data import few_shot_indices
from ..selection.guard import transfer_gain
from .linear import TransferLogisticRegression

__all__ = ["compare_parameter_transfer", "BASELINES"]

BASELINES = ("source-only", "target-only")


def compare_parameter_transfer(
    source: np.ndarray,
    source_labels: np.ndarray,
    target: np.ndarray,
    target_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    *,
    k: int,
    seeds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """Source-only, target-only and the transfer LR on ``k`` target labels per class, over seeds.

    Parameters
    ----------
    source, source_labels : arrays ``(N_s, D)``, ``(N_s,)``
        The source task, all labelled.
    target, target_labels : arrays ``(N_t, D)``, ``(N_t,)``
        The target's training part; ``k`` per class are drawn per seed.
    test, test_labels : arrays ``(N_e, D)``, ``(N_e,)``
        The target's test part.
    k : int
    seeds : int
    seed : int
        First seed of the draws.
    C : float
        Inverse L2 strength of every logistic regression.
    classes : list of str, optional
        Class names by label index, for the message when a class has fewer than ``k`` examples.

    Returns
    -------
    dict
        ``accuracy_per_seed`` per method, ``lambdas`` chosen, the better baseline and the gain
        over it with the negative-transfer guard's 95 % interval, ``beats_both``.
    """
    source_model = LogisticRegression(C=C, max_iter=2000).fit(source, source_labels)
    source_correct = source_model.predict(test) == test_labels  # (N_e,)
    correct: dict[str, list[np.ndarray]] = {"source-only": [], "target-only": [], "transfer": []}
    lambdas = []
    for s in range(seed, seed + seeds):
        index = few_shot_indices(target_labels, k, s, classes)
        X, y = target[index], target_labels[index]
        transfer = TransferLogisticRegression(source_model, C=C, random_state=s).fit(X, y)
        lambdas.append(transfer.lam_)
        correct["source-only"].append(source_correct)
        correct["target-only"].append(LogisticRegression(C=C, max_iter=2000).fit(X, y).predict(test) == test_labels)
        correct["transfer"].append(transfer.predict(test) == test_labels)
    accuracy = {method: [float(c.mean()) for c in rows] for method, rows in correct.items()}
    best = max(BASELINES, key=lambda method: statistics.mean(accuracy[method]))
    gain = transfer_gain(np.stack(correct["transfer"]), np.stack(correct[best]))
    return {
        "k": k,
        "accuracy_per_seed": accuracy,
        "lambdas": lambdas,
        "best_baseline": best,
        "gain": {"gain": gain.gain, "low": gain.low, "high": gain.high, "verdict": gain.verdict},
        "negative_transfer": gain.negative,
        "beats_both": all(
            statistics.mean(accuracy["transfer"]) > statistics.mean(accuracy[method]) for method in BASELINES
        ),
    }
