"""Label descriptions on Yelp: zero-shot, linear probe and the description-prior head on frozen MiniLM.

Protocol (the one of ``benchmarks/run.py`` and ../shared/ANCHORS.md): the pool is every Yelp sentence
of the built-in ``sentiment-yelp`` (its 80/20 train and test parts joined: 996 sentences once the
duplicates are dropped); per seed, ``few_shot_indices(labels, k, seed)`` draws k sentences of each
class and the test set is the rest (980 at k=8). k=0 is the zero-shot classifier, tested on all 996.
The descriptions are ``benchmarks/descriptions/sentiment.json``, written before any test accuracy.

Usage: python benchmarks/label_descriptions.py [--seeds 0,1,2,3,4] [--ks 0,8,32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import transferkit  # noqa: F401
from transferkit.backbones import create_backbone
from transferkit.data import few_shot_indices, load_dataset
from transferkit.features import extract_features
from transferkit.strategies import ProbeHead
from transferkit.strategies.label_prior import DescriptionPriorHead, embed_descriptions, read_label_descriptions

DESCRIPTIONS = Path(__file__).resolve().parent / "descriptions" / "sentiment.json"


def _summary(accuracies: list[float], seconds: list[float], extra: dict | None = None) -> dict:
    return {
        "accuracy_mean": statistics.mean(accuracies),
        "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "fit_seconds_mean": statistics.mean(seconds),
        "per_seed": accuracies,
        **(extra or {}),
    }


def run(seeds: tuple[int, ...] = (0, 1, 2, 3, 4), ks: tuple[int, ...] = (0, 8, 32)) -> dict:
    """Accuracy (mean ± sample std over seeds) and fit time of each method at each k.

    Parameters
    ----------
    seeds : tuple of int
        Seeds of the labelled draw.
    ks : tuple of int
        Labelled sentences per class; 0 is zero-shot only.

    Returns
    -------
    dict
        JSON-able: protocol, one-off times, and ``results["k=<k>"][method]``.
    """
    split = load_dataset("sentiment-yelp")
    texts = list(split.train.inputs) + list(split.test.inputs)
    labels = np.concatenate([split.train.labels, split.test.labels])  # (996,)
    classes = split.train.classes
    backbone = create_backbone("minilm_l6.sentence")
    extracted = extract_features(backbone, texts)  # (996, 384), cached on disk after the first run
    features = extracted.features.astype(np.float64)
    started = time.perf_counter()
    prototypes = embed_descriptions(backbone, read_label_descriptions(DESCRIPTIONS, classes), classes)  # (2, 384)
    embed_seconds = time.perf_counter() - started
    results: dict[str, dict] = {}
    for k in ks:
        if k == 0:
            started = time.perf_counter()
            head = DescriptionPriorHead().fit(features[:0], labels[:0], prototypes)
            seconds = time.perf_counter() - started
            accuracy = float((head.predict(features) == labels).mean())
            results["k=0"] = {"zero-shot": _summary([accuracy], [seconds], {"test_size": len(labels)})}
            continue
        rows: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in ("linear-probe", "prior-head")}
        zero_shot, chosen = [], []
        for seed in seeds:
            train = few_shot_indices(labels, k, seed)
            test = np.setdiff1d(np.arange(len(labels)), train)
            for method in rows:
                started = time.perf_counter()
                if method == "linear-probe":  # LinearProbe's default C=1
                    head = ProbeHead(C=1.0).fit(features[train], labels[train])
                else:
                    head = DescriptionPriorHead().fit(features[train], labels[train], prototypes)
                    chosen.append({"seed": seed, "C": head.C_, "alpha": head.alpha_})
                rows[method][1].append(time.perf_counter() - started)
                rows[method][0].append(float((head.predict(features[test]) == labels[test]).mean()))
            zero_shot_head = DescriptionPriorHead().fit(features[:0], labels[:0], prototypes)
            zero_shot.append(float((zero_shot_head.predict(features[test]) == labels[test]).mean()))
        results[f"k={k}"] = {
            "linear-probe": _summary(*rows["linear-probe"]),
            "prior-head": _summary(*rows["prior-head"], {"chosen": chosen}),
            "zero-shot (same test rows)": _summary(zero_shot, [0.0] * len(zero_shot)),
            "test_size": int(len(labels) - k * len(classes)),
        }
    return {
        "dataset": "sentiment-yelp (train + test of the built-in split, 996 sentences)",
        "backbone": "minilm_l6.sentence (frozen)",
        "descriptions": str(DESCRIPTIONS.relative_to(DESCRIPTIONS.parents[2])),
        "seeds": list(seeds),
        "feature_seconds": extracted.seconds,
        "feature_from_cache": extracted.from_cache,
        "embed_descriptions_seconds": embed_seconds,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--ks", default="0,8,32")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    ks = tuple(int(k) for k in args.ks.split(","))
    print(json.dumps(run(seeds, ks), indent=2))


if __name__ == "__main__":
    main()
