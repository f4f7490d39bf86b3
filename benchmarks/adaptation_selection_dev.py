"""How well each label-free selection rule chooses, scored on held-back labels that are not the test part.

For every built-in pair of a feature group and seeds 0-2, :func:`select_adaptation` fits every
candidate (method x weight) on the source's 80 % split and the unlabelled target. The script keeps
which held-out source examples each candidate's reverse model missed, and the candidate's accuracy
on the target's *training* part, whose labels the methods never read and which is separate from
the test part that BENCHMARKS.md's adaptation tables score. It then applies each rule of
:data:`SELECTION_RULES` (with mSDA eligible everywhere, and only on non-negative features) and
prints the chosen candidate's mean gain over source-only on those labels.

This is the development check behind the one-standard-error rule; it is not part of
``make bench``. Usage::

    python benchmarks/adaptation_selection_dev.py minilm_l6.sentence --out /tmp/dev_minilm.json
    python benchmarks/adaptation_selection_dev.py tfidf --out /tmp/dev_tfidf.json
    python benchmarks/adaptation_selection_dev.py images --out /tmp/dev_images.json
    python benchmarks/adaptation_selection_dev.py --rules-only /tmp/dev_minilm.json

Records written with the candidates' target probabilities (since 2026-11-24) are also scored by
the prediction-based criteria of :func:`score_criteria`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import adaptation  # noqa: E402
from transferkit.adaptation.pairs import load_pair  # noqa: E402
from transferkit.adaptation.run import (  # noqa: E402
    METHODS,
    SELECTION_RULES,
    Candidate,
    choose_candidates,
    not_chosen_automatically,
    select_adaptation,
)


def collect(group: str, seeds: int = 3, only: set[tuple[str, str]] | None = None) -> list[dict]:
    """One record per pair, seed and candidate: reverse-validation misses, held-back accuracy and
    the candidate's class probabilities on the unlabelled target (for prediction-based criteria)."""
    if group == "images":
        pairs, backbone, size, settings = (
            adaptation.IMAGE_PAIRS,
            "efficientnet_lite0.in1k",
            adaptation.IMAGE_SIZE,
            adaptation.SETTINGS,
        )
    else:
        pairs, backbone, size, settings = adaptation.TEXT_PAIRS, group, None, adaptation.TEXT_SETTINGS
    records = []
    for source_name, target_name in pairs:
        if only is not None and (source_name, target_name) not in only:
            continue
        pair = load_pair(source_name, target_name, backbone=backbone, image_size=size)
        xs, ys, xt = pair.source, np.asarray(pair.source_labels), pair.target
        held_back = np.asarray(pair.target_labels)  # the target's training labels: scoring only
        signed = bool(not_chosen_automatically(xs, xt))
        for seed in range(seeds):
            selection = select_adaptation(list(METHODS), xs, ys, xt, settings=settings, random_state=seed)
            for candidate in selection.candidates:
                predicted = np.asarray(candidate.model.predict(xt))
                probabilities = np.asarray(candidate.model.predict_proba(xt))  # (N_t, K)
                records.append(
                    {
                        "source": source_name,
                        "target": target_name,
                        "seed": seed,
                        "signed_features": signed,
                        "method": candidate.method,
                        "weight": candidate.weight,
                        "held_back_accuracy": float((predicted == held_back).mean()),
                        "misses": candidate.misses.astype(int).tolist(),
                        "probabilities": np.round(probabilities, 4).tolist(),
                        "held_back_labels": held_back.tolist(),
                    }
                )
            print(f"{source_name} -> {target_name} seed {seed} {time.strftime('%H:%M:%S')}", flush=True)
    return records


def _draws(records: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """The records of each (source, target, seed), in the order collected."""
    return {k: list(v) for k, v in itertools.groupby(records, key=lambda r: (r["source"], r["target"], r["seed"]))}


def _mean_and_worst(gains: dict[tuple[str, str], list[float]]) -> tuple[float, float]:
    """Mean gain over every draw and the lowest pair mean, in points."""
    return 100 * np.mean([g for v in gains.values() for g in v]), 100 * min(np.mean(v) for v in gains.values())


def score_rules(records: list[dict]) -> list[str]:
    """Mean gain over source-only on the held-back labels of each rule's choice, and its worst pair."""
    draws = _draws(records)
    lines = [f"{len(draws)} pair-seeds"]
    for msda_everywhere in (True, False):
        for rule in SELECTION_RULES:
            gains: dict[tuple[str, str], list[float]] = {}
            for key, rows in draws.items():
                candidates = [
                    Candidate(
                        r["method"], r["weight"], float(np.mean(r["misses"])), 0.0, r, np.asarray(r["misses"], bool)
                    )
                    for r in rows
                ]
                exclude = () if msda_everywhere or not rows[0]["signed_features"] else ("msda",)
                per_method, best = choose_candidates(candidates, rule, exclude=exclude)
                baseline = per_method["source-only"].model["held_back_accuracy"]
                gains.setdefault(key[:2], []).append(best.model["held_back_accuracy"] - baseline)
            mean, worst = _mean_and_worst(gains)
            where = "mSDA eligible everywhere" if msda_everywhere else "mSDA only on non-negative features"
            lines.append(f"{rule:>20s}, {where}: mean gain {mean:+.2f} points, worst pair {worst:+.2f}")
    return lines


def _soft_neighbourhood_density(probabilities: np.ndarray, temperature: float = 0.05, rows: int = 2000) -> float:
    """SND (Saito et al., "Tune it the Right Way", ICCV 2021): the entropy of each target point's
    softmax over its similarities to the others, in the space of normalised class probabilities."""
    p = probabilities[np.random.default_rng(0).permutation(len(probabilities))[:rows]]  # (N, K)
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    similarity = p @ p.T / temperature  # (N, N)
    np.fill_diagonal(similarity, -np.inf)
    similarity -= similarity.max(axis=1, keepdims=True)
    neighbours = np.exp(similarity)
    neighbours /= neighbours.sum(axis=1, keepdims=True)
    return float(-(neighbours * np.log(neighbours + 1e-12)).sum(axis=1).mean())


def score_criteria(records: list[dict]) -> list[str]:
    """Prediction-based label-free alternatives to reverse validation, scored like :func:`score_rules`.

    ``ensemble``: the mean of every eligible candidate's target probabilities, used as the model
    (no choice); ``EnsV``: the candidate that agrees most with that ensemble's labels (Hu et al.,
    NeurIPS 2024 Datasets and Benchmarks); ``SND``: the highest soft neighbourhood density;
    ``entropy``: the lowest mean prediction entropy on the target.
    """
    draws = _draws(records)
    gains: dict[str, dict[tuple[str, str], list[float]]] = {}
    for key, rows in draws.items():
        rows = [r for r in rows if not (r["method"] == "msda" and r["signed_features"])]
        held_back = np.asarray(rows[0]["held_back_labels"])
        baseline = next(r for r in rows if r["method"] == "source-only")["held_back_accuracy"]
        probabilities = [np.asarray(r["probabilities"], dtype=np.float64) for r in rows]  # each (N_t, K)
        ensemble = np.mean(probabilities, axis=0).argmax(axis=1)  # (N_t,)
        agreement = [float((p.argmax(axis=1) == ensemble).mean()) for p in probabilities]
        entropy = [float(-(p * np.log(p + 1e-12)).sum(axis=1).mean()) for p in probabilities]
        density = [_soft_neighbourhood_density(p) for p in probabilities]
        accuracy = {
            "ensemble": float((ensemble == held_back).mean()),
            "EnsV": rows[int(np.argmax(agreement))]["held_back_accuracy"],
            "SND": rows[int(np.argmax(density))]["held_back_accuracy"],
            "entropy": rows[int(np.argmin(entropy))]["held_back_accuracy"],
            "best candidate (labels)": max(r["held_back_accuracy"] for r in rows),
        }
        for name, value in accuracy.items():
            gains.setdefault(name, {}).setdefault(key[:2], []).append(value - baseline)
    lines = []
    for name, per_pair in gains.items():
        mean, worst = _mean_and_worst(per_pair)
        lines.append(f"{name:>24s}: mean gain {mean:+.2f} points, worst pair {worst:+.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group", help="images, tfidf or a text backbone (minilm_l6.sentence); or a JSON file")
    parser.add_argument("--out", type=Path, help="write the records here")
    parser.add_argument("--rules-only", action="store_true", help="GROUP is a JSON file written before")
    parser.add_argument("--pairs", help="only these pairs, e.g. digits:mnist,mnist:mnist-m")
    args = parser.parse_args()
    if args.rules_only:
        records = json.loads(Path(args.group).read_text())
    else:
        only = {tuple(p.split(":")) for p in args.pairs.split(",")} if args.pairs else None
        records = collect(args.group, only=only)
        if args.out:
            args.out.write_text(json.dumps(records))
    print("\n".join(score_rules(records)))
    if records and "probabilities" in records[0]:
        print("\n".join(score_criteria(records)))


if __name__ == "__main__":
    main()
