"""Learning curves: accuracy against the number of labels, transfer beside training from scratch.

:func:`run_curve` fits every method at every number of labels per class ``k`` and for every
seed (labelled draw) and scores it on one test set. A linear probe's features are extracted once
for all the labelled examples any draw uses and once for the test set, then sliced for each
``k`` and seed; other transfer strategies and the target-only baselines are fitted from the
inputs each time.

Each point gets the mean accuracy over seeds and a 95% interval over seeds *and* test examples
(:func:`transferkit.report.records.accuracy_interval`). "Labels saved"
(:func:`labels_saved`) reads the curves the other way: how many labels per class a target-only
baseline needs to reach what transfer reaches with ``k``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._progress import progress
from ..errors import DataError, TransferkitError
from .records import accuracy_interval, evaluation_record

__all__ = ["BASELINES", "DEFAULT_LABELS_PER_CLASS", "DEFAULT_STRATEGIES", "labels_saved", "matching_k", "run_curve"]

DEFAULT_LABELS_PER_CLASS = (1, 2, 5, 10, 20, 50)
DEFAULT_STRATEGIES = ("linear-probe", "scratch", "classical")
BASELINES = ("scratch", "classical")


def matching_k(target: float, ks: Sequence[float], accuracies: Sequence[float]) -> tuple[float, str]:
    """Labels per class at which a learning curve first reaches ``target``.

    The curve is taken as piecewise linear in ``log k`` between its measured points (learning
    curves are close to straight on that scale), and the first crossing is returned.

    Parameters
    ----------
    target : float
        The accuracy to reach.
    ks : sequence of float
        Labels per class of the curve's points, increasing.
    accuracies : sequence of float
        The curve's (mean) accuracy at each ``k``.

    Returns
    -------
    (k, relation) : tuple of (float, str)
        ``relation`` is ``"="`` (reached at ``k``, interpolated), ``"<="`` (reached already at the
        smallest ``k``: with that many or fewer) or ``">"`` (not reached: more than the largest ``k``,
        which is then returned).

    Raises
    ------
    DataError
        When the points are not increasing positive ``k`` with one accuracy each.
    """
    k_values = np.asarray(ks, dtype=np.float64)
    curve = np.asarray(accuracies, dtype=np.float64)
    if k_values.ndim != 1 or len(k_values) == 0 or curve.shape != k_values.shape:
        raise DataError(f"a curve needs one accuracy per k; got {len(curve)} accuracies for {len(k_values)} k")
    if k_values[0] <= 0 or np.any(np.diff(k_values) <= 0):
        raise DataError(f"the k of a curve must be positive and increasing; got {list(ks)}")
    if curve[0] >= target:
        return float(k_values[0]), "<="
    for i in range(len(curve) - 1):
        if curve[i + 1] >= target:  # first crossing: curve[i] < target <= curve[i + 1]
            t = (target - curve[i]) / (curve[i + 1] - curve[i])
            log_k = math.log(k_values[i]) + t * (math.log(k_values[i + 1]) - math.log(k_values[i]))
            return float(math.exp(log_k)), "="
    return float(k_values[-1]), ">"


def labels_saved(
    k: int, accuracy: float, ks: Sequence[int], baselines: dict[str, Sequence[float]], n_classes: int
) -> dict[str, Any]:
    """How many labels the best target-only baseline needs to match transfer's accuracy at ``k``.

    For every baseline curve :func:`matching_k` finds the labels per class ``k'`` where it reaches
    ``accuracy``; the baseline needing the fewest is the one reported, and the labels saved are
    ``(k' - k) * n_classes`` (negative when the baseline needs fewer labels than transfer).

    Parameters
    ----------
    k : int
        Labels per class transfer was given.
    accuracy : float
        Transfer's mean accuracy at ``k``.
    ks : sequence of int
        Labels per class of the baselines' points, increasing.
    baselines : dict of str to sequence of float
        Mean accuracy of each baseline at each of ``ks``.
    n_classes : int
        Classes of the task.

    Returns
    -------
    dict
        ``k``, ``accuracy``, ``baseline``, ``matched_at`` (``k'``), ``relation`` (``"="``, ``"<="``:
        ``labels_saved`` is an upper bound, ``">"``: a lower bound — more than the largest k) and
        ``labels_saved``.

    Raises
    ------
    DataError
        When there is no baseline curve.
    """
    if not baselines:
        raise DataError("labels saved needs at least one target-only baseline curve")
    found = {name: matching_k(accuracy, ks, curve) for name, curve in baselines.items()}
    # fewest labels first; "not reached" only when no baseline reaches it
    name = min(found, key=lambda n: (found[n][1] == ">", found[n][0]))
    k_match, relation = found[name]
    return {
        "k": int(k),
        "accuracy": float(accuracy),
        "baseline": name,
        "matched_at": k_match,
        "relation": relation,
        "labels_saved": (k_match - k) * n_classes,
    }


def describe_labels_saved(entry: dict[str, Any]) -> str:
    """One phrase for a :func:`labels_saved` entry, e.g. ``"scratch needs 23.4 per class: 134 labels saved"``."""
    saved, base, k_match = entry["labels_saved"], entry["baseline"], entry["matched_at"]
    if entry["relation"] == ">":
        if saved <= 0:  # transfer's own k is the largest: nothing to compare with beyond it
            return f"{base} does not reach it by k = {k_match:g}, the largest k measured"
        return f"{base} does not reach it by k = {k_match:g}: more than {saved:.0f} labels saved"
    if entry["relation"] == "<=":
        if saved < 0:  # k' <= the smallest k < transfer's k: transfer needs at least this many more
            more = f"transfer needs at least {-saved:.0f} labels more"
            return f"{base} reaches it with {k_match:g} per class or fewer: {more}"
        if saved == 0:
            return f"{base} reaches it with {k_match:g} per class or fewer: no labels saved"
        return f"{base} reaches it with {k_match:g} per class or fewer: at most {saved:.0f} labels saved"
    if round(saved) == 0:  # not "0 labels saved" nor "transfer needs 0 labels more"
        return f"{base} needs {k_match:.1f} per class: about as many labels as transfer"
    if saved < 0:
        return f"{base} needs only {k_match:.1f} per class: transfer needs {-saved:.0f} labels more"
    return f"{base} needs {k_match:.1f} per class: {saved:.0f} labels saved"


def _parse_strategies(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(transfer strategies, baselines), each checked against the registry."""
    from ..strategies import get_strategy

    if not names:
        raise TransferkitError("--strategies needs at least one strategy, e.g. linear-probe,scratch,classical")
    for name in names:
        if name != "auto":
            get_strategy(name)  # an unknown name raises, with the closest registered ones
    unique = list(dict.fromkeys(names))
    return [n for n in unique if n not in BASELINES], [n for n in unique if n in BASELINES]


def check_labels_per_class(values: Sequence[int]) -> list[int]:
    """The k of a curve, increasing and without repeats; each a positive int."""
    values = list(values)
    if not values or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in values):
        raise TransferkitError(f"--labels-per-class needs positive ints, e.g. 1,2,5,10; got {values}")
    return sorted({int(k) for k in values})


_WORKER_TEST: Any = None  # the test inputs, sent once to each worker process


def _start_worker(test_inputs: Any) -> None:
    """Worker set-up: one thread each (the workers share the cores), quiet, the test inputs kept."""
    global _WORKER_TEST
    import torch

    from .._progress import set_quiet

    torch.set_num_threads(1)
    set_quiet(True)
    _WORKER_TEST = test_inputs


def _fit_predict(
    name: str,
    backbone: str | None,
    settings: dict[str, Any],
    train_inputs: Any,
    train_labels: np.ndarray,
    seed: int,
    test_inputs: Any = None,
    verbose: bool = False,
) -> tuple[np.ndarray, float, float]:
    """Fit one strategy on one labelled draw; its test predictions (label indices), fit and evaluate seconds."""
    from ..estimators import TransferClassifier
    from ..strategies import get_strategy

    strategy: Any = name
    if name == "scratch" and settings.get("scratch_steps") is not None:
        strategy = get_strategy("scratch", steps=int(settings["scratch_steps"]))
    estimator = TransferClassifier(
        backbone=backbone,
        strategy=strategy,
        layer=settings.get("layer"),
        image_size=settings.get("image_size"),
        C=float(settings.get("C", 1.0)),
        random_state=seed,
        verbose=verbose,
    )
    started = time.perf_counter()
    estimator.fit(train_inputs, train_labels)
    fitted = time.perf_counter()
    predicted = estimator.predict(_WORKER_TEST if test_inputs is None else test_inputs)
    return np.asarray(predicted, dtype=np.int64), fitted - started, time.perf_counter() - fitted


def run_curve(
    split: Any,
    *,
    dataset: str,
    labels_per_class: Sequence[int] = DEFAULT_LABELS_PER_CLASS,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    seeds: Sequence[int] = (0, 1, 2),
    backbone: str | None = None,
    layer: str | None = None,
    image_size: int | None = None,
    C: float = 1.0,
    scratch_steps: int | None = None,
    jobs: int = 1,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit every strategy at every ``k`` and seed; the run record of the learning curve.

    Parameters
    ----------
    split : DataSplit
        Labelled pool (``train``) and test set.
    dataset : str
        Name of the data, for the record.
    labels_per_class : sequence of int
        The ``k`` of the curve.
    strategies : sequence of str
        Transfer strategies (``linear-probe``, ``finetune``, ...) and target-only baselines
        (``scratch``, ``classical``).
    seeds : sequence of int
        One labelled draw per seed; draws with the same seed are nested (a larger ``k`` extends a smaller one).
    backbone, layer, image_size, C
        As for :class:`transferkit.TransferClassifier`.
    scratch_steps : int, optional
        Optimiser steps of the ``scratch`` baseline (default: its tuned setting).
    jobs : int
        Fits run at once, each in its own process with one thread (the linear probe always runs
        here). On a shared or small machine this beats one fit on several threads: PyTorch's
        threads wait for each other when another process takes a core.
    verbose : bool
        Progress bars.
    log : callable, optional
        Called with one line per fit (method, k, seed, accuracy, time) as fits finish.

    Returns
    -------
    dict
        The run record (``kind = "curve"``): settings, every method's points (per-seed accuracies,
        mean, 95% interval, times), the gain of each transfer strategy over the best baseline at each
        ``k``, labels saved, the feature extraction and the best model's ``evaluation``.

    Raises
    ------
    TransferkitError
        On a bad setting or data that cannot give ``max(labels_per_class)`` examples of every class.
    """
    from .._cli_fit import BASELINE_DESCRIPTIONS
    from ..backbones import DEFAULT_BACKBONES, create_backbone
    from ..data import few_shot_indices
    from ..data._dataset import take
    from ..features import extract_features
    from ..selection import transfer_gain
    from ..strategies import ProbeHead, get_strategy

    started = time.perf_counter()
    ks = check_labels_per_class(labels_per_class)
    seeds = [int(s) for s in seeds]
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise TransferkitError(f"jobs must be a positive int; got {jobs!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise TransferkitError(f"seeds must be distinct and at least one; got {seeds}")
    transfer, baselines = _parse_strategies(list(strategies))
    pool, test = split.train, split.test
    classes, modality, n_classes = list(pool.classes), pool.modality, len(pool.classes)
    draws = {(k, seed): few_shot_indices(pool.labels, k, seed, pool.classes) for k in ks for seed in seeds}
    backbone_name = backbone or DEFAULT_BACKBONES.get(modality)
    if transfer and backbone_name is None:
        raise DataError(f"no default backbone for {modality} data; name one with --backbone")

    extraction: dict[str, Any] | None = None
    pool_features = test_features = union = None
    if "linear-probe" in transfer:
        model = create_backbone(backbone_name)
        if model.cfg.modality != modality:
            raise DataError(f"backbone {backbone_name!r} reads {model.cfg.modality} but the data is {modality}")
        # Only the examples some draw uses: the whole pool (60,000 Fashion-MNIST images) would take
        # ~25 minutes to extract on 2 cores, the union of the draws a minute.
        union = np.unique(np.concatenate(list(draws.values())))
        options = {"layer": layer, "image_size": image_size}
        pool_result = extract_features(model, take(pool.inputs, union), desc="extracting train", **options)
        test_result = extract_features(model, test.inputs, desc="extracting test", **options)
        pool_features, test_features = pool_result.features, test_result.features
        extraction = {
            "backbone": model.cfg.name,
            "n_train": len(union),
            "n_test": len(test),
            "seconds": pool_result.seconds + test_result.seconds,
            "items_per_second": test_result.items_per_second,
            "from_cache": pool_result.from_cache and test_result.from_cache,
        }
        backbone_name = model.cfg.name

    labels = {n: f"{n} ({backbone_name})" for n in transfer}
    labels.update({n: f"{n} ({BASELINE_DESCRIPTIONS.get((n, modality), 'target only')})" for n in baselines})
    methods = transfer + baselines
    settings = {"layer": layer, "image_size": image_size, "C": float(C), "scratch_steps": scratch_steps}
    results: dict[tuple[str, int, int], tuple[np.ndarray, float, float]] = {}  # predictions, fit s, evaluate s

    def done(name: str, k: int, seed: int, result: tuple[np.ndarray, float, float]) -> None:
        results[(name, k, seed)] = result
        if log is not None:
            accuracy = float((result[0] == test.labels).mean())
            log(f"{name} k={k} seed {seed}: {accuracy:.3f} (fit {result[1]:.1f} s)")

    probe = get_strategy("linear-probe", C=float(C))
    for k in ks:  # the probe on features extracted above: a fraction of a second each, in this process
        for seed in seeds if "linear-probe" in transfer else []:
            rows = np.searchsorted(union, draws[(k, seed)])
            fit_started = time.perf_counter()
            head = ProbeHead(C=probe.C, max_iter=probe.max_iter).fit(pool_features[rows], pool.labels[draws[(k, seed)]])
            fitted = time.perf_counter()
            predicted = np.asarray(head.predict(test_features), dtype=np.int64)
            done("linear-probe", k, seed, (predicted, fitted - fit_started, time.perf_counter() - fitted))
    tasks = [(n, k, seed) for k in ks for seed in seeds for n in methods if n != "linear-probe"]
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # Fresh interpreters (spawn): forking a process whose PyTorch thread pool has run can hang.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(test.inputs,)) as pool_:
            futures = {
                pool_.submit(
                    _fit_predict, name, None if name in BASELINES else backbone_name, settings,
                    take(pool.inputs, draws[(k, seed)]), pool.labels[draws[(k, seed)]], seed,
                ): (name, k, seed)
                for name, k, seed in tasks
            }  # fmt: skip
            for future in progress(as_completed(futures), total=len(futures), desc="fitting", unit="fit"):
                done(*futures[future], future.result())
    else:
        for name, k, seed in progress(tasks, total=len(tasks), desc="fitting", unit="fit"):
            train_inputs, train_labels = take(pool.inputs, draws[(k, seed)]), pool.labels[draws[(k, seed)]]
            backbone_arg = None if name in BASELINES else backbone_name
            result = _fit_predict(name, backbone_arg, settings, train_inputs, train_labels, seed, test.inputs, verbose)
            done(name, k, seed, result)
    correct = {(n, k): [results[(n, k, s)][0] == test.labels for s in seeds] for n in methods for k in ks}
    seconds = {(n, k): [list(results[(n, k, s)][1:]) for s in seeds] for n in methods for k in ks}
    first_predictions = {n: results[(n, ks[-1], seeds[0])][0] for n in methods}

    record_methods = []
    for name in methods:
        points = []
        for k in ks:
            mean, low, high = accuracy_interval(np.stack(correct[(name, k)]))
            points.append(
                {
                    "k": k,
                    "n_train": k * n_classes,
                    "accuracy": mean,
                    "ci95": [low, high],
                    "accuracy_per_seed": [float(c.mean()) for c in correct[(name, k)]],
                    "fit_seconds_per_seed": [s[0] for s in seconds[(name, k)]],
                    "evaluate_seconds_per_seed": [s[1] for s in seconds[(name, k)]],
                }
            )
        role = "baseline" if name in BASELINES else "transfer"
        record_methods.append({"name": name, "label": labels[name], "role": role, "points": points})

    gains, saved = [], []
    mean_of = {(m["name"], p["k"]): p["accuracy"] for m in record_methods for p in m["points"]}
    for name in transfer:
        for k in ks:
            if baselines:
                best = max(baselines, key=lambda b: mean_of[(b, k)])
                estimate = transfer_gain(np.stack(correct[(name, k)]), np.stack(correct[(best, k)]))
                gains.append(
                    {
                        "method": name,
                        "k": k,
                        "against": best,
                        "gain": estimate.gain,
                        "ci95": [estimate.low, estimate.high],
                        "verdict": estimate.verdict,
                    }
                )
                curves = {b: [mean_of[(b, kk)] for kk in ks] for b in baselines}
                saved.append({"method": name, **labels_saved(k, mean_of[(name, k)], ks, curves, n_classes)})

    best_name = max(methods, key=lambda n: mean_of[(n, ks[-1])])
    evaluation = evaluation_record(
        classes,
        test.labels,
        first_predictions[best_name],
        test.inputs,
        modality=modality,
        model=f"{labels[best_name]}, {ks[-1]} labels per class, seed {seeds[0]}",
    )
    import torch

    return {
        "kind": "curve",
        "dataset": dataset,
        "modality": modality,
        "classes": classes,
        "n_classes": n_classes,
        "test_size": len(test),
        "backbone": backbone_name if transfer else None,
        "layer": layer,
        "image_size": image_size,
        "C": float(C),
        "scratch_steps": scratch_steps,
        "jobs": jobs,
        "labels_per_class": ks,
        "seeds": seeds,
        "strategies": methods,
        "interval": "95% interval of the mean accuracy over seeds (labelled draws) and test examples",
        "methods": record_methods,
        "gains": gains,
        "labels_saved": saved,
        "extraction": extraction,
        "evaluation": evaluation,
        "seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
