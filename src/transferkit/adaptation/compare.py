"""Compare adaptation methods with source-only on a pair of domains, over seeds.

What ``transferkit adapt`` prints and ``benchmarks/adaptation.py`` measures: for every
method, the target accuracy (when the target's labels are there *for evaluation*), the
domain distance before and after, the time; the label-free choice and its gain over
source-only with a 95 % interval; and the target-oracle (trained on the target's labels)
as the ceiling.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .._progress import progress
from ..data._dataset import few_shot_indices
from ..errors import DataError
from ..selection.distance import mmd, proxy_a_distance
from ..selection.guard import transfer_gain
from ..strategies.linear_probe import ProbeHead
from ._checks import check_features, check_label_indices
from .deep import AdaptationConfig, FeatureAdapter
from .run import (
    DEFAULT_WEIGHTS,
    DenoisedProbeHead,
    check_target_rows,
    dense_features,
    fit_method,
    select_adaptation,
)
from .shallow import coral_transform

__all__ = ["compare_adaptation", "domain_distance", "match_resolution", "tfidf_features", "check_same_labels"]

_DISTANCE_ROWS = 600  # per domain: enough for a stable A-distance, fast enough for every method


def check_same_labels(source_classes: list[str], target_classes: list[str]) -> None:
    """Raise a :class:`DataError` naming the difference when the two label sets differ.

    Parameters
    ----------
    source_classes, target_classes : list of str
        Class names of the two domains; they must be equal in the same order, as label indices
        are positions in these lists.

    Raises
    ------
    DataError
        When the lists differ, also when only their order does.
    """
    if list(source_classes) == list(target_classes):
        return
    only_source = sorted(set(source_classes) - set(target_classes))
    only_target = sorted(set(target_classes) - set(source_classes))
    detail = f"only in the source: {only_source or 'none'}; only in the target: {only_target or 'none'}"
    if not only_source and not only_target:
        repeated = sorted(
            {
                c
                for c in [*source_classes, *target_classes]
                if list(source_classes).count(c) > 1 or list(target_classes).count(c) > 1
            }
        )
        detail = (
            f"a label named more than once: {repeated}"
            if repeated
            else f"same labels in a different order: {list(source_classes)} vs {list(target_classes)}"
        )
    raise DataError(f"the source and target label sets differ ({detail}); domain adaptation needs the same labels")


def match_resolution(*images: Any) -> tuple[Any, ...]:
    """Bring image arrays to the smallest one's resolution (area averaging).

    A classifier cannot be asked to read detail one domain never has: ``mnist`` (28×28)
    against ``digits`` (8×8) compares digits at 8×8, as the issue's reference does.

    Parameters
    ----------
    *images : ndarray of uint8, shape (N, H, W) or (N, H, W, C)
        Pixel values in 0..255: the source and the target, and any other part of the pair that
        must be read as they are (a few labelled target examples). When any is not an array (a
        list of file paths), all are returned unchanged.

    Returns
    -------
    tuple of ndarray of uint8
        In the order given: each array with more pixels (``H * W``) than the smallest resized to
        its ``(H, W)`` by area interpolation, rounded and clipped to 0..255; the others unchanged.
    """
    if not images or not all(isinstance(x, np.ndarray) for x in images):
        return images
    smallest = min((x.shape[1:3] for x in images), key=lambda hw: hw[0] * hw[1])
    return tuple(_shrink(x, smallest) for x in images)


def _shrink(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if images.shape[1:3] == tuple(size):
        return images
    x = torch.as_tensor(images, dtype=torch.float32)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)
    x = torch.nn.functional.interpolate(x, size=tuple(size), mode="area").round().clamp(0, 255).to(torch.uint8)
    return (x[:, 0] if images.ndim == 3 else x.permute(0, 2, 3, 1)).numpy()


def tfidf_features(fit_texts: list[str], *texts: list[str], max_features: int = 2000) -> list[np.ndarray]:
    """TF-IDF (words and bigrams, sublinear tf) fitted on ``fit_texts``, applied to each of ``texts``.

    Fit it on the source and the unlabelled target together: both are known at adaptation time.

    Parameters
    ----------
    fit_texts : list of str
        The texts the vocabulary and IDF weights are fitted on (a term must occur in at least two).
    *texts : list of str
        The texts to transform.
    max_features : int, default=2000
        Vocabulary size: the most frequent terms.

    Returns
    -------
    list of ndarray of float32, shape (N_i, V)
        One dense matrix per entry of ``texts``, ``V <= max_features``.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=max_features)
    vectorizer.fit(list(fit_texts))
    return [dense_features(vectorizer.transform(list(t))) for t in texts]


def domain_distance(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Gaussian MMD² and proxy A-distance of two feature sets (at most 600 rows of each).

    Parameters
    ----------
    a : ndarray, shape (N, D)
    b : ndarray, shape (M, D)
    seed : int, default=0
        Seed of the row subsampling and of the A-distance's folds.

    Returns
    -------
    dict
        ``"mmd"``: :func:`~transferkit.selection.mmd` (unbiased, median-heuristic bandwidth);
        ``"a_distance"``: :func:`~transferkit.selection.proxy_a_distance`.

    Raises
    ------
    DataError
        When a set has fewer than two rows, is not finite, or the widths differ.
    """
    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))[:_DISTANCE_ROWS]]
    b = b[rng.permutation(len(b))[:_DISTANCE_ROWS]]
    return {"mmd": mmd(a, b), "a_distance": proxy_a_distance(a, b, seed=seed)}


def _adapted_pair(
    method: str, model: Any, source: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Source and target as the adapted model reads them; ``None`` where features do not move."""
    if isinstance(model, FeatureAdapter):
        network = model.network_.eval()
        with torch.no_grad():
            return tuple(network.features(torch.as_tensor(x)).numpy() for x in (source, target))
    if method == "shallow-coral":
        return coral_transform(source, target), target
    if isinstance(model, DenoisedProbeHead):
        return model.features(source), model.features(target)
    return None  # re-weighting and self-training change which examples count, not the features


def compare_adaptation(
    source: Any,
    labels: np.ndarray,
    target: Any,
    *,
    methods: list[str],
    seeds: int = 3,
    target_test: Any = None,
    test_labels: np.ndarray | None = None,
    target_labels: np.ndarray | None = None,
    weights: tuple[float, ...] = DEFAULT_WEIGHTS,
    settings: AdaptationConfig | None = None,
    seed: int = 0,
    target_labels_per_class: int | None = None,
    target_labelled: tuple[Any, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Run the label-free selection over ``seeds`` and score every method on the target.

    Per seed, :func:`~transferkit.adaptation.run.select_adaptation` chooses each method's weight
    (and the overall method) on an 80/20 split of the source; each method is then refitted at its
    chosen weight on *every* source label and scored, which is the model
    ``TransferClassifier(adaptation=...)`` returns.

    Parameters
    ----------
    source : array, shape (N_s, D)
        Labelled source features.
    labels : ndarray of int, shape (N_s,)
    target : array, shape (N_t, D)
        Unlabelled target features the methods adapt to.
    methods : list of str
        Methods to compare; ``source-only`` is always added.
    seeds : int
        Seeds ``seed .. seed + seeds - 1`` (source split, initialisation, batch order).
    target_test : array, shape (N_e, D), optional
        Held-out target features to score on; with ``test_labels``, used *only* for scoring.
    test_labels : ndarray, optional
    target_labels : ndarray, optional
        Labels of ``target``, for the target-oracle only (never for fitting a method).
    weights, settings
        See :func:`~transferkit.adaptation.run.select_adaptation`.
    seed : int
    target_labels_per_class : int, optional
        Choose with a few labelled target examples instead of reverse validation: per seed, this
        many of each class are drawn from ``target`` with their ``target_labels`` (seeded by the
        seed) and score the candidates; they train nothing, and the test part is never read.
    target_labelled : (array of shape (N_l, D), ndarray of int), optional
        Or: a few labelled target examples given apart (features, label indices), the same for
        every seed; see :func:`~transferkit.adaptation.run.select_adaptation`.

    Returns
    -------
    dict
        ``methods`` (per method: weights chosen, reverse error, share of the target's predictions
        that differ from source-only's (``changed``), accuracy per seed, mean, std, distance after,
        seconds; the accuracies only with ``test_labels``), ``selected`` (choices per seed,
        accuracy, gain over source-only with a 95 % interval, ``warning`` when it loses more than
        2 points, ``not_chosen``: methods scored but not eligible for the choice on these
        features, with the reason), ``oracle``, ``distance_before``.
    """
    source, target = dense_features(source), dense_features(target)
    check_target_rows(target)  # before the domain distance, whose error would name its own arguments
    check_features(source, "source")
    check_features(target, "target")
    labels = check_label_indices(labels, len(source))
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise DataError(f"seeds is {seeds!r}; expected an int >= 1 (the number of seeds to run)")
    methods = ["source-only", *[m for m in dict.fromkeys(methods) if m != "source-only"]]
    scored = target_test is not None and test_labels is not None
    if scored:
        target_test = dense_features(target_test)
        check_features(target_test, "target_test")
        if target_test.shape[1] != source.shape[1]:
            raise DataError(f"target_test has {target_test.shape[1]} columns; the source's {source.shape[1]}")
        if np.ndim(test_labels) == 1 and len(target_test) != len(test_labels):
            raise DataError(f"{len(target_test)} target test examples but {len(test_labels)} test labels")
        test_labels = check_label_indices(test_labels, len(target_test), "test_labels", "target_test")
    record: dict[str, Any] = {"distance_before": domain_distance(source, target, seed)}
    rows = {
        m: {
            "weights": [],
            "reverse_error": [],
            "accuracy_per_seed": [],
            "correct": [],
            "seconds": [],
            "changed": [],
            "distance_after": None,
        }
        for m in methods
    }
    if target_labels_per_class is not None and target_labels is None:
        raise DataError("choosing with labelled target examples needs the target's labels (target_labels)")
    if target_labels_per_class is not None and target_labelled is not None:
        raise DataError("give target_labels_per_class or target_labelled, not both")
    selected = {"choices": [], "accuracy_per_seed": [], "correct": []}
    for s in range(seed, seed + seeds):
        few = target_labelled
        if target_labels_per_class is not None:
            drawn = few_shot_indices(np.asarray(target_labels), target_labels_per_class, s)
            few = (target[drawn], np.asarray(target_labels, dtype=np.int64)[drawn])
        selection = select_adaptation(
            methods, source, labels, target, weights=weights, settings=settings, random_state=s, target_labelled=few
        )
        selected["criterion"] = selection.criterion
        for method in progress(methods, total=len(methods), desc=f"refitting and scoring, seed {s}", unit="method"):
            candidate = selection.per_method[method]
            row = rows[method]
            row["weights"].append(candidate.weight)
            started = time.perf_counter()
            # Refit at the chosen weight on every source label, as TransferClassifier does: the 80/20
            # split only serves the choice (like scikit-learn's refit after a grid search). Labelled
            # target examples hold no source out, so their candidates are fitted on it all already.
            model = candidate.model
            if len(selection.validation_index):
                model = fit_method(
                    method, source, labels, target, weight=candidate.weight, settings=settings, random_state=s
                )
            fitting = sum(c.seconds for c in selection.candidates if c.method == method)
            row["seconds"].append(fitting + time.perf_counter() - started)
            row["reverse_error"].append(candidate.reverse_error)
            predicted = np.asarray(model.predict(target))  # (N_t,): what adaptation changes, seen without labels
            if method == "source-only":
                source_only_predicted = predicted
            row["changed"].append(float(np.mean(predicted != source_only_predicted)))
            if method == "source-only":
                row["distance_after"] = record["distance_before"]
            elif row["distance_after"] is None:  # first seed: enough to show the direction
                pair = _adapted_pair(method, model, source, target)
                row["distance_after"] = None if pair is None else domain_distance(*pair, seed)
            if scored:
                correct = np.asarray(model.predict(target_test)) == test_labels  # (N_e,)
                row["correct"].append(correct)
                row["accuracy_per_seed"].append(float(correct.mean()))
        best = selection.best
        selected["not_chosen"] = dict(selection.not_chosen)  # depends on the features only, not the seed
        selected["choices"].append({"method": best.method, "weight": best.weight, "reverse_error": best.reverse_error})
        if scored:
            selected["correct"].append(rows[best.method]["correct"][-1])
            selected["accuracy_per_seed"].append(rows[best.method]["accuracy_per_seed"][-1])
    if scored:
        for row in [*rows.values(), selected]:
            row["accuracy"] = float(np.mean(row["accuracy_per_seed"]))
            row["accuracy_std"] = float(np.std(row["accuracy_per_seed"], ddof=1)) if seeds > 1 else 0.0
        for method, row in rows.items():
            if method != "source-only":
                row["gain"] = _gain(row["correct"], rows["source-only"]["correct"])
        selected["gain"] = _gain(selected["correct"], rows["source-only"]["correct"])
        if selected["gain"]["gain"] < -0.02:
            selected["warning"] = (
                f"the chosen method scores {-100 * selected['gain']['gain']:.1f} points below source-only "
                f"on the target's labels: {selected['criterion']} chose badly here"
            )
    if scored and target_labels is not None:
        started = time.perf_counter()
        oracle = ProbeHead().fit(target, np.asarray(target_labels, dtype=np.int64))
        record["oracle"] = {
            "accuracy": float((oracle.predict(target_test) == test_labels).mean()),
            "seconds": time.perf_counter() - started,
            "note": "linear probe trained on the target's own labels: a ceiling, not a method",
        }
    for row in [*rows.values(), selected]:
        row.pop("correct", None)
    record["methods"] = rows
    record["selected"] = selected
    return record


def _gain(transfer_correct: list[np.ndarray], baseline_correct: list[np.ndarray]) -> dict[str, Any]:
    estimate = transfer_gain(np.stack(transfer_correct), np.stack(baseline_correct))
    return {"gain": estimate.gain, "low": estimate.low, "high": estimate.high, "verdict": estimate.verdict}
