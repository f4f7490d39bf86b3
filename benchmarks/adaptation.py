"""Domain adaptation on every built-in pair: each method vs source-only, 3 seeds.

Pairs: mnist ↔ digits (both at 8×8, the smaller resolution) and mnist → mnist-m with
EfficientNet-Lite0 features at 128 px; the six directed pairs of Amazon, IMDb and Yelp on
MiniLM features and on TF-IDF features (fitted on source + unlabelled target). The source
lends all its labelled examples, the target's training part is unlabelled, its test part is
scored. A seed changes the source's 80/20 split (for reverse validation), the networks'
initialisation and the batch order.

Usage (through run.py): python benchmarks/run.py --only adapt-images,adapt-minilm,adapt-tfidf
"""

from __future__ import annotations

import time

from transferkit.adaptation import AdaptationConfig, compare_adaptation
from transferkit.adaptation.pairs import load_pair
from transferkit.adaptation.run import DEFAULT_WEIGHTS, METHODS

IMAGE_PAIRS = [("mnist", "digits"), ("digits", "mnist"), ("mnist", "mnist-m")]
SENTIMENT = ["sentiment-amazon", "sentiment-imdb", "sentiment-yelp"]
TEXT_PAIRS = [(s, t) for s in SENTIMENT for t in SENTIMENT if s != t]
IMAGE_SIZE = 128
SETTINGS = AdaptationConfig(steps=600)
TEXT_SETTINGS = AdaptationConfig(steps=300)  # ~1,000 source sentences: 300 steps of 64 are ~19 epochs


def bench_pairs(
    pairs: list[tuple[str, str]],
    backbone: str,
    seeds: int = 3,
    image_size: int | None = None,
    settings: AdaptationConfig = SETTINGS,
    target_labels_per_class: int | None = None,
) -> list[dict]:
    """One record per pair: :func:`~transferkit.adaptation.compare_adaptation` plus timings.

    With ``target_labels_per_class``, that many labelled examples per class, drawn per seed from
    the target's training part, choose instead of reverse validation (the test part still scores).
    """
    rows = []
    for source, target in pairs:
        pair = load_pair(source, target, backbone=backbone, image_size=image_size)
        started = time.perf_counter()
        record = compare_adaptation(
            pair.source,
            pair.source_labels,
            pair.target,
            methods=list(METHODS),
            seeds=seeds,
            target_test=pair.test,
            test_labels=pair.test_labels,
            target_labels=pair.target_labels,
            settings=settings,
            target_labels_per_class=target_labels_per_class,
        )
        rows.append(
            {
                "source": source,
                "target": target,
                "representation": backbone,
                "image_size": image_size,
                "notes": pair.notes,
                "sizes": {"source": len(pair.source), "target": len(pair.target), "test": len(pair.test)},
                "seconds": time.perf_counter() - started,
                "settings": settings.to_dict(),
                "weights_tried": list(DEFAULT_WEIGHTS),
                "target_labels_per_class": target_labels_per_class,
                **record,
            }
        )
        print(f"{source} -> {target} [{backbone}]: {rows[-1]['seconds']:.0f} s", flush=True)
    return rows


def bench_images(seeds: int = 3) -> list[dict]:
    return bench_pairs(IMAGE_PAIRS, "efficientnet_lite0.in1k", seeds, IMAGE_SIZE)


def bench_minilm(seeds: int = 3) -> list[dict]:
    return bench_pairs(TEXT_PAIRS, "minilm_l6.sentence", seeds, settings=TEXT_SETTINGS)


def bench_tfidf(seeds: int = 3) -> list[dict]:
    return bench_pairs(TEXT_PAIRS, "tfidf", seeds, settings=TEXT_SETTINGS)


# A handful of labelled target examples choose: about 50 images (10 classes) and 40 sentences (2 classes).
FEW_IMAGES, FEW_TEXT = 5, 20


def bench_images_few(seeds: int = 3) -> list[dict]:
    return bench_pairs(IMAGE_PAIRS, "efficientnet_lite0.in1k", seeds, IMAGE_SIZE, target_labels_per_class=FEW_IMAGES)


def bench_text_few(seeds: int = 3) -> list[dict]:
    common = {"settings": TEXT_SETTINGS, "target_labels_per_class": FEW_TEXT}
    return bench_pairs(TEXT_PAIRS, "tfidf", seeds, **common) + bench_pairs(
        TEXT_PAIRS, "minilm_l6.sentence", seeds, **common
    )


def markdown_few(rows: list[dict], label_free: list[dict]) -> list[str]:
    """The choice by a few labelled target examples per pair, against the label-free choice's gain."""
    free = {(r["source"], r["target"], r["representation"]): r["selected"]["gain"]["gain"] for r in label_free}
    lines = [
        "| pair | features | labels per class | chosen (per seed) | accuracy | gain vs source-only | "
        "label-free choice's gain | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        selected, gain = row["selected"], row["selected"]["gain"]
        chosen = ", ".join(
            c["method"] + (f" {c['weight']:g}" if c["weight"] is not None else "") for c in selected["choices"]
        )
        other = free.get((row["source"], row["target"], row["representation"]))
        lines.append(
            f"| {_short(row['source'])} → {_short(row['target'])} | {_short(row['representation'])} | "
            f"{row['target_labels_per_class']} | {chosen} | {_cell(selected)} | "
            f"{100 * gain['gain']:+.1f} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f})"
            f"{' ⚠' if 'warning' in selected else ''} | "
            f"{'—' if other is None else f'{100 * other:+.1f}'} | {row['seconds']:.0f} s |"
        )
    return lines


def _short(name: str) -> str:
    return name.replace("sentiment-", "")


def _cell(row: dict) -> str:
    if "accuracy" not in row:
        return "—"
    return f"{row['accuracy']:.3f} ± {row['accuracy_std']:.3f}"


def markdown_adaptation(rows: list[dict]) -> list[str]:
    """Two tables: target accuracy per method and pair; the label-free choice, its gain, distances."""
    methods = list(dict.fromkeys(m for row in rows for m in row["methods"]))  # "—" where a part predates a method
    lines = [
        "| pair | features | " + " | ".join(methods) + " | target oracle |",
        "|" + "---|" * (len(methods) + 3),
    ]
    for row in rows:
        cells = [_cell(row["methods"].get(m, {})) for m in methods]
        oracle = row.get("oracle", {}).get("accuracy")
        lines.append(
            f"| {_short(row['source'])} → {_short(row['target'])} | {_short(row['representation'])} | "
            + " | ".join(cells)
            + f" | {oracle:.3f} |"
        )
    lines += [
        "",
        "Label-free choice (reverse validation, one-standard-error rule) per pair, its gain over source-only "
        "(95% interval over seeds and test examples), the A-distance between the domains before and after "
        "(source-only vs the chosen method's representation, first seed), and the wall time of all candidates"
        " over all seeds:",
        "",
        "| pair | features | chosen (per seed) | accuracy | gain vs source-only | A-distance before → after | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        selected = row["selected"]
        chosen = ", ".join(
            c["method"] + (f" {c['weight']:g}" if c["weight"] is not None else "") for c in selected["choices"]
        )
        gain = selected["gain"]
        first = selected["choices"][0]["method"]
        after = row["methods"][first]["distance_after"]
        after_text = f"{after['a_distance']:.2f}" if after else "n/a (features unchanged)"
        warning = " ⚠" if "warning" in selected else ""
        lines.append(
            f"| {_short(row['source'])} → {_short(row['target'])} | {_short(row['representation'])} | {chosen} | "
            f"{_cell(selected)} | {100 * gain['gain']:+.1f} ({100 * gain['low']:+.1f} to {100 * gain['high']:+.1f})"
            f"{warning} | {row['distance_before']['a_distance']:.2f} → {after_text} | {row['seconds']:.0f} s |"
        )
    return lines


def group_gains(rows: list[dict]) -> dict[str, float]:
    """Mean gain of the label-free choice over source-only per group of pairs (the issue's targets)."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        key = "images" if row["representation"].startswith("efficientnet") else _short(row["representation"])
        groups.setdefault(key, []).append(row["selected"]["gain"]["gain"])
    return {key: sum(values) / len(values) for key, values in groups.items()}
