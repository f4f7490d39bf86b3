"""Selection benchmarks (imported by run.py): ranking quality and auto vs fixed strategies.

Ranking: four image backbones (the three ImageNet ones and a randomly initialised Lite0), all
fed at 128 px, on three target data sets (Fashion-MNIST, MNIST, UCI digits), k = 10 and 50
labels per class, seeds 0-2. Every score is computed on the labelled training examples only;
the "truth" is each backbone's linear-probe accuracy on the test set (and, for k = 10 / seed 0,
its fine-tuned accuracy). Kendall's τ between a score's ordering and the accuracies is taken
per (data set, k, seed) and averaged.

Auto vs fixed: Fashion-MNIST (k = 5, 50; 96 px) and Yelp (k = 8, 32), seeds 0-2, every
strategy with its defaults. ``strategy="auto"`` makes its choice from the training labels
(``choose_strategy``); its final fit is the same deterministic computation as the fixed run
of the chosen strategy with the same seed and settings, so that run's accuracy is its accuracy.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from scipy import stats

from transferkit.backbones import create_backbone
from transferkit.data import Dataset, few_shot_indices, load_dataset
from transferkit.estimators import TransferClassifier
from transferkit.features import extract_features
from transferkit.selection import choose_strategy, hscore, leep, logme, nce
from transferkit.strategies import ProbeHead

RANK_BACKBONES = (
    "efficientnet_lite0.in1k",
    "efficientnet_lite1.in1k",
    "mobilenetv2_100.in1k",
    "efficientnet_lite0.random",
)
RANK_DATA = ("fashion-mnist", "mnist", "digits")
RANK_SIZE = 128
SCORE_NAMES = ("logme", "logme_reference", "hscore", "leep", "nce")
AUTO_FIXED = ("linear-probe", "freeze", "lp-ft", "finetune")
BASELINES = ("scratch", "classical")


def _source_probs(backbone, features: np.ndarray) -> np.ndarray:
    """The source head on pooled features: for these timm nets, logits = classifier(pooled)."""
    head = backbone.model.get_classifier()
    with torch.inference_mode():
        logits = head(torch.as_tensor(features))  # (N, 1000)
    return torch.softmax(logits.float(), dim=1).numpy()


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def bench_rank(ks=(10, 50), seeds=(0, 1, 2), finetune_k=10, finetune_seed=0) -> list[dict]:
    """Scores, probe accuracy and times per (data set, k, seed, backbone); fine-tuned accuracy for one draw."""
    rows = []
    for data in RANK_DATA:
        split = load_dataset(data)
        pool, test = split.train, split.test
        for name in RANK_BACKBONES:
            backbone = create_backbone(name)
            test_features = extract_features(backbone, test.inputs, image_size=RANK_SIZE, desc=f"{data} test")
            for seed in seeds:
                widest = few_shot_indices(pool.labels, max(ks), seed)  # a larger k extends a smaller one
                extracted = extract_features(backbone, pool.inputs[widest], image_size=RANK_SIZE, desc=f"{data} train")
                per_train_image = extracted.seconds / len(widest) if not extracted.from_cache else None
                for k in ks:
                    chosen = few_shot_indices(pool.labels, k, seed)
                    rows_of = {index: position for position, index in enumerate(widest)}
                    features = extracted.features[[rows_of[i] for i in chosen]]  # (kC, D)
                    labels = pool.labels[chosen]
                    probs = _source_probs(backbone, features)
                    scores, seconds = {}, {}
                    scores["logme"], seconds["logme"] = _timed(logme, features, labels)
                    scores["logme_reference"], seconds["logme_reference"] = _timed(
                        logme, features, labels, reference=True
                    )
                    scores["hscore"], seconds["hscore"] = _timed(hscore, features, labels)
                    scores["leep"], seconds["leep"] = _timed(leep, probs, labels)
                    scores["nce"], seconds["nce"] = _timed(nce, probs.argmax(axis=1), labels)
                    probe, probe_fit = _timed(ProbeHead(C=1.0).fit, features, labels)
                    probabilities, probe_predict = _timed(probe.predict_proba, test_features.features)
                    predicted = probabilities.argmax(axis=1)
                    rows.append(
                        {
                            "dataset": data,
                            "k": k,
                            "seed": seed,
                            "backbone": name,
                            "scores": scores,
                            "score_seconds": seconds,
                            "probe_accuracy": float(np.mean(predicted == test.labels)),
                            "probe_seconds": probe_fit + probe_predict,
                            "extract_seconds_per_image": per_train_image,
                            "test_extract_seconds": test_features.seconds if not test_features.from_cache else None,
                            "n_train": len(chosen),
                            "n_test": len(test),
                        }
                    )
                    print(f"rank {data} k={k} seed={seed} {name}: " + _line(rows[-1]), flush=True)
            if finetune_k:
                chosen = few_shot_indices(pool.labels, finetune_k, finetune_seed)
                model = TransferClassifier(name, "finetune", image_size=RANK_SIZE, random_state=finetune_seed)
                model.set_params(verbose=False).fit(pool.inputs[chosen], pool.labels[chosen])
                accuracy = float(model.score(test.inputs, test.labels))
                rows.append(
                    {
                        "dataset": data,
                        "k": finetune_k,
                        "seed": finetune_seed,
                        "backbone": name,
                        "finetune_accuracy": accuracy,
                        "finetune_seconds": model.history_["fit_seconds"],
                    }
                )
                print(f"finetune {data} k={finetune_k} {name}: {accuracy:.3f}", flush=True)
    return rows


def _line(row: dict) -> str:
    return f"probe {row['probe_accuracy']:.3f}, " + ", ".join(f"{k} {v:.3f}" for k, v in row["scores"].items())


def _tau(scores: list[float], accuracies: list[float]) -> float:
    return float(stats.kendalltau(scores, accuracies).statistic)


def summarize_rank(rows: list[dict]) -> dict:
    """Kendall τ per score (mean over draws, and per data set), and ranking vs probing times."""
    probe_rows = [r for r in rows if "scores" in r]
    draws = dict.fromkeys((r["dataset"], r["k"], r["seed"]) for r in probe_rows)
    taus: dict[str, list] = {s: [] for s in SCORE_NAMES}
    by_draw = []
    for draw in draws:
        group = [r for r in probe_rows if (r["dataset"], r["k"], r["seed"]) == draw]
        accuracies = [r["probe_accuracy"] for r in group]
        entry = {"dataset": draw[0], "k": draw[1], "seed": draw[2]}
        for score in SCORE_NAMES:
            tau = _tau([r["scores"][score] for r in group], accuracies)
            taus[score].append(tau)
            entry[score] = tau
        by_draw.append(entry)
    finetune_taus = {}
    tuned = [r for r in rows if "finetune_accuracy" in r]
    for data in dict.fromkeys(r["dataset"] for r in tuned):
        group = [r for r in tuned if r["dataset"] == data]
        matching = {
            r["backbone"]: r
            for r in probe_rows
            if (r["dataset"], r["k"], r["seed"]) == (data, group[0]["k"], group[0]["seed"])
        }
        accuracies = [r["finetune_accuracy"] for r in group]
        finetune_taus[data] = {
            score: _tau([matching[r["backbone"]]["scores"][score] for r in group], accuracies) for score in SCORE_NAMES
        }
        finetune_taus[data]["linear-probe accuracy"] = _tau(
            [matching[r["backbone"]]["probe_accuracy"] for r in group], accuracies
        )
    per_dataset = {
        (data, k): {
            score: statistics.mean(e[score] for e in by_draw if (e["dataset"], e["k"]) == (data, k))
            for score in SCORE_NAMES
        }
        for data, k, _ in draws
    }
    return {
        "tau_mean": {s: statistics.mean(v) for s, v in taus.items()},
        "tau_std": {s: statistics.pstdev(v) for s, v in taus.items()},
        "tau_per_dataset": {f"{d} k={k}": v for (d, k), v in per_dataset.items()},
        "finetune_tau": finetune_taus,
        "logme_seconds_mean": statistics.mean(r["score_seconds"]["logme"] for r in probe_rows),
        "probe_seconds_mean": statistics.mean(r["probe_seconds"] for r in probe_rows),
        "by_draw": by_draw,
    }


def _fixed_and_auto(name: str, backbone: str, pool: Dataset, test_of, k: int, seed: int, image_size) -> list[dict]:
    chosen = few_shot_indices(pool.labels, k, seed)
    train, test = pool.subset(chosen), test_of(chosen)
    rows = []
    common = {"backbone": backbone, "image_size": image_size, "random_state": seed, "verbose": False}
    for strategy in AUTO_FIXED + BASELINES:
        model = TransferClassifier(strategy=strategy, **common).fit(train.inputs, train.labels)
        accuracy = float(model.score(test.inputs, test.labels))
        rows.append(
            {
                "dataset": name,
                "k": k,
                "seed": seed,
                "strategy": strategy,
                "accuracy": accuracy,
                "fit_seconds": model.history_["fit_seconds"],
            }
        )
        print(f"auto-bench {name} k={k} seed={seed} {strategy}: {accuracy:.3f}", flush=True)
    started = time.perf_counter()
    choice = choose_strategy(
        train.inputs,
        train.labels,
        make_estimator=lambda strategy: TransferClassifier(strategy=strategy, **common),
        backbone=create_backbone(backbone),
        image_size=image_size,
        random_state=seed,
    )
    fixed = next(r for r in rows if r["strategy"] == choice.strategy)
    rows.append(
        {
            "dataset": name,
            "k": k,
            "seed": seed,
            "strategy": "auto",
            "accuracy": fixed["accuracy"],
            "fit_seconds": fixed["fit_seconds"] + time.perf_counter() - started,
            "choice": choice.to_dict(),
        }
    )
    print(f"auto-bench {name} k={k} seed={seed} auto -> {choice.strategy}: {fixed['accuracy']:.3f}", flush=True)
    return rows


def bench_auto(which=("fmnist", "yelp"), seeds=(0, 1, 2)) -> list[dict]:
    """Every fixed strategy and auto, on Fashion-MNIST k=5/50 (96 px) and Yelp k=8/32."""
    import finetune  # the shared Yelp pool

    rows = []
    if "fmnist" in which:
        split = load_dataset("fashion-mnist")
        for k in (5, 50):
            for seed in seeds:
                rows += _fixed_and_auto(
                    "fashion-mnist", "efficientnet_lite0.in1k", split.train, lambda c: split.test, k, seed, 96
                )
    if "yelp" in which:
        pool = finetune.yelp_pool()
        rest = lambda chosen: pool.subset(np.setdiff1d(np.arange(len(pool)), chosen))  # noqa: E731
        for k in (8, 32):
            for seed in seeds:
                rows += _fixed_and_auto("sentiment-yelp", "minilm_l6.sentence", pool, rest, k, seed, None)
    return rows


def markdown_rank(part: dict) -> list[str]:
    summary = summarize_rank(part["rows"])
    lines = [
        "| score | mean Kendall τ vs linear-probe accuracy | std over draws | "
        + " | ".join(summary["tau_per_dataset"])
        + " |",
        "|---|---|---|" + "---|" * len(summary["tau_per_dataset"]),
    ]
    for score in SCORE_NAMES:
        lines.append(
            f"| {score} | {summary['tau_mean'][score]:+.2f} | {summary['tau_std'][score]:.2f} | "
            + " | ".join(f"{v[score]:+.2f}" for v in summary["tau_per_dataset"].values())
            + " |"
        )
    lines += ["", "Kendall τ against the **fine-tuned** accuracy (k=10, seed 0, one draw per data set):", ""]
    columns = list(SCORE_NAMES) + ["linear-probe accuracy"]
    lines += ["| data | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for data, taus in summary["finetune_tau"].items():
        lines.append(f"| {data} | " + " | ".join(f"{taus[c]:+.2f}" for c in columns) + " |")
    probe_rows = [r for r in part["rows"] if "scores" in r]
    lines += ["", "Accuracies behind it (mean over seeds; LogME in brackets):", ""]
    lines += ["| data | k | " + " | ".join(RANK_BACKBONES) + " |", "|---|---|" + "---|" * len(RANK_BACKBONES)]
    for data, k in dict.fromkeys((r["dataset"], r["k"]) for r in probe_rows):
        cells = []
        for name in RANK_BACKBONES:
            group = [r for r in probe_rows if (r["dataset"], r["k"], r["backbone"]) == (data, k, name)]
            cells.append(
                f"{statistics.mean(r['probe_accuracy'] for r in group):.3f} "
                f"({statistics.mean(r['scores']['logme'] for r in group):.3f})"
            )
        lines.append(f"| {data} | {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Time: LogME {summary['logme_seconds_mean']:.3f} s per candidate on average vs "
        f"{summary['probe_seconds_mean']:.2f} s to fit and evaluate a linear probe on the same cached features "
        f"(ratio {summary['logme_seconds_mean'] / summary['probe_seconds_mean']:.3f}); both need the training "
        "features, the probe also the test features (see the extraction notes below).",
    ]
    return lines


def markdown_auto(part: dict) -> list[str]:
    rows = part["rows"]
    lines = [
        "| data | k | " + " | ".join(AUTO_FIXED) + " | auto | auto − best fixed | auto's choices |",
        "|---|---|" + "---|" * (len(AUTO_FIXED) + 3),
    ]
    gaps = []
    versus = [
        "| data | k | best target-only baseline | auto − baseline, 95% t-interval over seeds |",
        "|---|---|---|---|",
    ]
    for data, k in dict.fromkeys((r["dataset"], r["k"]) for r in rows):
        means = {}
        cells = []
        for strategy in (*AUTO_FIXED, "auto"):
            values = [r["accuracy"] for r in rows if (r["dataset"], r["k"], r["strategy"]) == (data, k, strategy)]
            means[strategy] = statistics.mean(values)
            cells.append(f"{means[strategy]:.3f} ± {statistics.pstdev(values):.3f}")
        gap = means["auto"] - max(means[s] for s in AUTO_FIXED)
        gaps.append(gap)
        baseline = max(BASELINES, key=lambda b: statistics.mean(_accuracies(rows, data, k, b)))
        differences = np.subtract(_accuracies(rows, data, k, "auto"), _accuracies(rows, data, k, baseline))
        half = stats.t.ppf(0.975, len(differences) - 1) * differences.std(ddof=1) / len(differences) ** 0.5
        versus.append(
            f"| {data} | {k} | {baseline} {statistics.mean(_accuracies(rows, data, k, baseline)):.3f} | "
            f"{100 * differences.mean():+.1f} pts [{100 * (differences.mean() - half):+.1f}, "
            f"{100 * (differences.mean() + half):+.1f}] |"
        )
        choices = [r["choice"]["strategy"] for r in rows if (r["dataset"], r["k"], r["strategy"]) == (data, k, "auto")]
        lines.append(f"| {data} | {k} | " + " | ".join(cells) + f" | {100 * gap:+.1f} pts | {', '.join(choices)} |")
    lines += ["", f"Mean of auto − best fixed over the settings: {100 * statistics.mean(gaps):+.1f} points.", ""]
    return lines + versus


def _accuracies(rows: list[dict], data: str, k: int, strategy: str) -> list[float]:
    return [r["accuracy"] for r in rows if (r["dataset"], r["k"], r["strategy"]) == (data, k, strategy)]


def bench_rank_reference(ks=(10, 100), seeds=(0, 1, 2)) -> list[dict]:
    """The issue's reference: Fashion-MNIST k=10 and 100; Lite0 at 224 and 128 px, pixels, random Lite0 at 224."""
    split = load_dataset("fashion-mnist")
    pool, test = split.train, split.test
    lite0, random_lite0 = create_backbone("efficientnet_lite0.in1k"), create_backbone("efficientnet_lite0.random")
    candidates = {
        "lite0-224": lambda x: extract_features(lite0, x, image_size=224, desc="lite0 224").features,
        "lite0-128": lambda x: extract_features(lite0, x, image_size=128, desc="lite0 128").features,
        "pixels": lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0,
        "random-lite0-224": lambda x: extract_features(random_lite0, x, image_size=224, desc="random 224").features,
    }
    rows = []
    for k, seed in ((k, seed) for k in ks for seed in seeds):
        chosen = few_shot_indices(pool.labels, k, seed)
        for name, features_of in candidates.items():
            features, labels = features_of(pool.inputs[chosen]), pool.labels[chosen]
            score, seconds = _timed(logme, features, labels)
            probe, probe_fit = _timed(ProbeHead(C=1.0).fit, features, labels)
            accuracy = float(np.mean(probe.predict_proba(features_of(test.inputs)).argmax(axis=1) == test.labels))
            rows.append(
                {
                    "k": k,
                    "seed": seed,
                    "candidate": name,
                    "logme": score,
                    "logme_seconds": seconds,
                    "probe_accuracy": accuracy,
                    "probe_fit_seconds": probe_fit,
                }
            )
            print(f"rank-reference k={k} seed={seed} {name}: logme {score:.3f}, probe {accuracy:.3f}", flush=True)
    return rows


def markdown_rank_reference(part: dict) -> list[str]:
    rows = part["rows"]
    names = list(dict.fromkeys(r["candidate"] for r in rows))
    lines = [
        "| k | seed | " + " | ".join(names) + " | LogME order = probe order | τ |",
        "|---|---|" + "---|" * (len(names) + 2),
    ]
    for k, seed in dict.fromkeys((r["k"], r["seed"]) for r in rows):
        group = {r["candidate"]: r for r in rows if (r["k"], r["seed"]) == (k, seed)}
        by_score = sorted(names, key=lambda n: -group[n]["logme"])
        by_accuracy = sorted(names, key=lambda n: -group[n]["probe_accuracy"])
        tau = _tau([group[n]["logme"] for n in names], [group[n]["probe_accuracy"] for n in names])
        cells = [f"{group[n]['probe_accuracy']:.3f} ({group[n]['logme']:.3f})" for n in names]
        lines.append(
            f"| {k} | {seed} | " + " | ".join(cells) + f" | {'yes' if by_score == by_accuracy else 'no'} | {tau:+.2f} |"
        )
    return lines
