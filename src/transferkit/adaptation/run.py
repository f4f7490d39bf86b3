"""Fit any adaptation method on features, choose among them without target labels, compare.

Read top to bottom: :func:`fit_method` fits one method; :func:`reverse_validation_error`
scores a fitted candidate without target labels; :func:`select_adaptation` fits every
candidate (method × adaptation weight) and keeps the simplest one whose reverse-validation
error is within one standard error of the lowest; :func:`compare_adaptation` runs that over
seeds and, where the target's labels exist *for evaluation*, reports each method's target
accuracy against source-only.

**Label-free selection: reverse validation** (Zhong et al., ECML-PKDD 2010; used by Ganin
et al., JMLR 2016, section 5.1.2, to choose DANN's hyper-parameters). The source's labelled
examples are split 80/20. A candidate is trained on the 80 % and the unlabelled target, and
labels the target; a *reverse* model of the same method is then trained on the target with
those pseudo-labels, adapting towards the source, and its error on the held-out 20 % of the
source is the candidate's score. A candidate whose target labels are wrong cannot train a
reverse model that labels the source well. Target labels are never read.

**The one-standard-error rule** (Breiman, Friedman, Olshen & Stone, *Classification and
Regression Trees*, 1984; Hastie, Tibshirani & Friedman, *The Elements of Statistical
Learning*, section 7.10). With a few hundred held-out source examples, reverse errors of
different candidates often differ by less than their own noise, and the lowest one is then
largely luck. So, as for choosing a tree's size, the choice is the *simplest* candidate whose
error is within one standard error of the lowest, the standard error being that of the paired
per-example differences on the same held-out examples. Simplicity: a smaller adaptation weight
within a method; across methods, source-only, then the shallow methods (a linear classifier
fitted differently), then the deep ones (a trained network). ``rule="lowest"`` keeps the plain
minimum.

**A handful of labelled target examples** (``select_adaptation(..., target_labelled=...)``,
``adapt --target-labels-per-class K`` or ``--target-labelled DATA``), where the user has them,
choose instead: each candidate is fitted on the whole source and scored by its error on them,
under the same one-standard-error rule (with few examples the standard error is large, so a
method must lead clearly to beat source-only). They score, they train nothing. Reverse
validation measures how well pseudo-labels carry back to the source, not target accuracy; a
few target labels measure the thing itself, if noisily.

mSDA is fitted and scored on any features, but chosen only where every feature is
non-negative: its corruption (a feature dropped to zero) models a word missing from a
bag-of-words, the features it was designed for (Chen et al., 2012). On signed sentence
embeddings a zeroed coordinate is not a missing word, and there it lost to source-only both
on the MiniLM pairs' test parts and, measured separately, on their unlabelled training parts'
held-back labels (BENCHMARKS.md, notes).

Why not importance-weighted validation (DEV, :mod:`.validation`, also implemented): on the
image pairs here the two domains are perfectly separable, the density ratios rest on a
handful of source examples, and DEV ranked the candidates no better than chance (measured
on mnist → digits: DEV 0.049 for the candidate with 26.7 % target accuracy, 0.064 for the
one with 56.1 %).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._progress import progress
from ..errors import DataError, did_you_mean
from ..strategies.linear_probe import ProbeHead
from ._checks import check_features, check_label_indices, check_one_label_per_row
from .deep import AdaptationConfig, FeatureAdapter, dense_features
from .losses import ADAPTATION_LOSSES
from .msda import MarginalizedDenoisingClassifier, msda_features
from .shallow import CoralClassifier, ReweightedClassifier, SelfTrainingClassifier
from .validation import source_validation_split

__all__ = [
    "METHODS",
    "DEEP_METHODS",
    "SHALLOW_METHODS",
    "WEIGHTED_METHODS",
    "DEFAULT_WEIGHTS",
    "fit_method",
    "check_target_rows",
    "reverse_validation_error",
    "reverse_validation_misses",
    "select_adaptation",
    "choose_candidates",
    "SELECTION_RULES",
    "REVERSE_VALIDATION",
    "LABELLED_TARGET",
    "Candidate",
    "Selection",
    "DenoisedProbeHead",
    "dense_features",
]

DEEP_METHODS = ADAPTATION_LOSSES  # dann, coral, mmd, cdan: losses on a bottleneck network
SHALLOW_METHODS = ("shallow-coral", "kmm", "kliep", "self-training", "msda")
METHODS = ("source-only", *DEEP_METHODS, *SHALLOW_METHODS)
WEIGHTED_METHODS = (*DEEP_METHODS, "self-training", "msda")  # methods with an adaptation weight, tried at each
SELECTION_RULES = ("one-standard-error", "lowest")
REVERSE_VALIDATION, LABELLED_TARGET = "reverse validation", "labelled target examples"  # Selection.criterion
DEFAULT_WEIGHTS = (0.3, 1.0)  # adaptation weights tried per weighted method


def check_method(method: str) -> str:
    """Return ``method`` when it is known; raise with the closest names otherwise."""
    if method not in METHODS:
        raise did_you_mean("adaptation method", str(method), list(METHODS), hint="or 'all'")
    return method


def check_target_rows(target: Any) -> None:
    """Raise a :class:`DataError` unless ``target`` holds at least two examples.

    One example has no spread to match: CORAL's covariance and the domain distance need two, and
    the other methods would "adapt" to a single point without a word.

    Parameters
    ----------
    target : array or sparse matrix, shape (N_t, D)
        Unlabelled target features.

    Raises
    ------
    DataError
        Naming the number of examples, when it is below two.
    """
    rows = target.shape[0] if hasattr(target, "shape") else len(target)  # a sparse matrix has no len()
    if rows < 2:
        raise DataError(f"the target has {rows} unlabelled example(s); adaptation needs at least 2")


def fit_method(
    method: str,
    source: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    *,
    weight: float | None = None,
    settings: AdaptationConfig | None = None,
    random_state: int = 0,
) -> Any:
    """Fit one method on labelled source features and unlabelled target features.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    source : ndarray, shape (N_s, D)
    labels : ndarray of int, shape (N_s,)
        Label indices ``0 .. K-1``.
    target : ndarray, shape (N_t, D)
        Unlabelled.
    weight : float, optional
        Adaptation weight of a deep method (default: that of ``settings``), the sample weight
        of each pseudo-labelled target example in ``self-training`` (default 0.3), or the scale of
        the appended denoised features in ``msda`` (default 1); for the last two, 0 gives the
        source-only fit.
    settings : AdaptationConfig, optional
        Network and training settings of the deep methods.
    random_state : int

    Returns
    -------
    model
        With ``predict`` (label indices) and ``predict_proba`` on target features: a
        :class:`~transferkit.adaptation.deep.FeatureAdapter` for the deep methods, else a
        linear :class:`~transferkit.strategies.ProbeHead` (CORAL, the re-weighting and
        self-training change how the classifier is fitted, not how the target is read), and for
        ``msda`` a :class:`DenoisedProbeHead` (it reads the target through the learned layers).
    """
    check_method(method)
    if method == "source-only":  # the other methods check their inputs themselves
        check_features(source, "source")
        return ProbeHead().fit(source, check_one_label_per_row(labels, source.shape[0]))
    check_target_rows(target)
    if method in DEEP_METHODS:
        config = (settings or AdaptationConfig()).replace(method=method, weight=weight)
        return FeatureAdapter(config, random_state=random_state).fit(source, labels, target)
    if method == "shallow-coral":
        fitted = CoralClassifier().fit(source, labels, X_target=target)
    elif method in ("self-training", "msda"):
        if weight == 0:  # the source-only fit itself, so that weight 0 reproduces it exactly
            return ProbeHead().fit(source, labels)
        options = {} if weight is None else {"weight": float(weight)}
        if method == "msda":
            fitted = MarginalizedDenoisingClassifier(**options).fit(source, labels, X_target=target)
            return DenoisedProbeHead(fitted.mappings_, float(fitted.weight), _as_probe_head(fitted.estimator_))
        fitted = SelfTrainingClassifier(**options).fit(source, labels, X_target=target)
    else:
        fitted = ReweightedClassifier(method=method, random_state=random_state).fit(source, labels, X_target=target)
    return _as_probe_head(fitted.estimator_)


class DenoisedProbeHead:
    """A linear head on features with mSDA layers' outputs appended (the ``msda`` method's model).

    Parameters
    ----------
    mappings : list of ndarray of shape (d, d + 1)
        From :func:`~transferkit.adaptation.msda.msda_mappings`.
    scale : float
        Scale of the appended outputs.
    head : ProbeHead
        Fitted on :func:`~transferkit.adaptation.msda.msda_features` of the source.
    """

    def __init__(self, mappings: list[np.ndarray], scale: float, head: ProbeHead) -> None:
        self.mappings = mappings
        self.scale = scale
        self.head = head
        self.classes_ = head.classes_

    def features(self, features: np.ndarray) -> np.ndarray:
        """``(N, D)`` features to the ``(N, D (L + 1))`` the head reads."""
        return msda_features(features, self.mappings, self.scale)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)`` of ``(N, D)`` features, columns in the order of ``classes_``."""
        return self.head.predict_proba(self.features(features))  # (N, K)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Labels ``(N,)`` (values of ``classes_``) of ``(N, D)`` features."""
        return self.head.predict(self.features(features))

    def save_arrays(self) -> dict[str, np.ndarray]:
        """The mappings as ``msda.<i>`` and the head's arrays as ``head.<name>``."""
        layers = {f"msda.{i}": mapping for i, mapping in enumerate(self.mappings)}
        return {**layers, **{f"head.{k}": v for k, v in self.head.save_arrays().items()}}

    def config(self) -> dict[str, Any]:
        """The JSON ``model_config`` saved beside :meth:`save_arrays`: the number of layers and the scale."""
        return {"layers": len(self.mappings), "scale": self.scale}

    @classmethod
    def from_arrays(cls, model_config: dict[str, Any], arrays: dict[str, np.ndarray]) -> DenoisedProbeHead:
        """Rebuild from :meth:`config` and :meth:`save_arrays`.

        Parameters
        ----------
        model_config : dict
            What :meth:`config` returned.
        arrays : dict of str to ndarray
            What :meth:`save_arrays` returned.

        Returns
        -------
        DenoisedProbeHead
        """
        mappings = [arrays[f"msda.{i}"] for i in range(int(model_config["layers"]))]
        head = ProbeHead.from_arrays({k[len("head.") :]: v for k, v in arrays.items() if k.startswith("head.")})
        return cls(mappings, float(model_config["scale"]), head)


def _as_probe_head(logistic: Any) -> ProbeHead:
    head = ProbeHead()
    head.coef_ = np.asarray(logistic.coef_, dtype=np.float64)  # (K or 1, D)
    head.intercept_ = np.asarray(logistic.intercept_, dtype=np.float64)
    head.classes_ = np.asarray(logistic.classes_)
    return head


def reverse_validation_misses(
    method: str,
    model: Any,
    source_train: np.ndarray,
    source_validation: np.ndarray,
    validation_labels: np.ndarray,
    target: np.ndarray,
    *,
    weight: float | None = None,
    settings: AdaptationConfig | None = None,
    random_state: int = 0,
) -> np.ndarray:
    """Which held-out source examples a model trained on the target's pseudo-labels gets wrong.

    ``model`` (trained on ``source_train``) labels ``target``; a model of the same method
    learns from those labels, adapting towards ``source_train``, and predicts
    ``source_validation``. Pseudo-labels of a single class count every example as missed.

    Returns
    -------
    ndarray of bool, shape (N_validation,)
    """
    pseudo = np.asarray(model.predict(target))  # (N_t,)
    if len(np.unique(pseudo)) < 2:
        return np.ones(len(validation_labels), dtype=bool)
    reverse = fit_method(
        method, target, pseudo, source_train, weight=weight, settings=settings, random_state=random_state + 1
    )
    return np.asarray(reverse.predict(source_validation)) != np.asarray(validation_labels)


def reverse_validation_error(*args: Any, **kwargs: Any) -> float:
    """Error on held-out source labels of a model trained on the target's pseudo-labels.

    The mean of :func:`reverse_validation_misses`, which takes the same parameters; pseudo-labels
    of a single class give error 1.
    """
    return float(reverse_validation_misses(*args, **kwargs).mean())


@dataclass
class Candidate:
    """One fitted method and weight, with its label-free score.

    Attributes
    ----------
    method : str
    weight : float or None
        Adaptation weight (deep methods and self-training).
    reverse_error : float
        The selection error (lower is better): reverse-validation error on held-out source labels,
        or, where the selection had a few labelled target examples (``Selection.criterion``), the
        error on those.
    seconds : float
        Fit and scoring time.
    model : object
        The fitted model (trained on the source training part; on the whole source when the
        labelled target examples choose, as no source is held out then).
    misses : ndarray of bool, shape (N_validation,), optional
        Which held-out examples were got wrong (for paired standard errors).
    """

    method: str
    weight: float | None
    reverse_error: float
    seconds: float
    model: Any = field(repr=False, default=None)
    misses: np.ndarray | None = field(repr=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, without the model."""
        return {
            "method": self.method,
            "weight": self.weight,
            "reverse_error": self.reverse_error,
            "seconds": self.seconds,
        }


@dataclass
class Selection:
    """Every candidate, each method's best weight, and the label-free choice.

    Attributes
    ----------
    candidates : list of Candidate
    per_method : dict of str to Candidate
        Each method at its chosen weight (see ``rule``).
    best : Candidate
        The label-free choice, one of ``per_method``'s values.
    train_index, validation_index : ndarray
        The source split used.
    rule : str
        One of :data:`SELECTION_RULES`.
    not_chosen : dict of str to str
        Methods fitted and scored but not eligible as ``best`` on these features, with the reason.
    criterion : str
        ``"reverse validation"`` (no target labels), or ``"labelled target examples"`` (a few).
    """

    candidates: list[Candidate]
    per_method: dict[str, Candidate]
    best: Candidate
    train_index: np.ndarray
    validation_index: np.ndarray
    rule: str = "one-standard-error"
    not_chosen: dict[str, str] = field(default_factory=dict)
    criterion: str = REVERSE_VALIDATION

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "criterion": self.criterion,
            "rule": self.rule,
            "not_chosen": dict(self.not_chosen),
            "candidates": [c.to_dict() for c in self.candidates],
            "selected": self.best.to_dict(),
        }


def _check_rule(rule: str) -> None:
    if rule not in SELECTION_RULES:
        raise did_you_mean("selection rule", str(rule), list(SELECTION_RULES))


def _complexity(candidate: Candidate) -> int:
    if candidate.method == "source-only":
        return 0
    return 2 if candidate.method in DEEP_METHODS else 1


def _paired_standard_error(candidate: Candidate, reference: Candidate) -> float:
    if candidate.misses is None or reference.misses is None or len(candidate.misses) < 2:
        return 0.0
    difference = candidate.misses.astype(np.float64) - reference.misses.astype(np.float64)  # (N_validation,)
    return float(difference.std(ddof=1) / np.sqrt(len(difference)))


def _within_one_standard_error(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates whose reverse error is within one paired standard error of the lowest."""
    lowest = min(candidates, key=lambda c: c.reverse_error)
    return [
        c for c in candidates if c.reverse_error <= lowest.reverse_error + _paired_standard_error(c, lowest) + 1e-12
    ]


def not_chosen_automatically(source: np.ndarray, target: np.ndarray) -> dict[str, str]:
    """Methods fitted but left out of the label-free choice on these features, with the reason."""
    if min(float(source.min(initial=0.0)), float(target.min(initial=0.0))) < 0:
        return {"msda": "features take negative values; mSDA's corruption models missing words (non-negative)"}
    return {}


def choose_candidates(
    candidates: list[Candidate], rule: str = "one-standard-error", exclude: Any = ()
) -> tuple[dict[str, Candidate], Candidate]:
    """Each method's weight and the overall choice, by ``rule`` (see the module docstring).

    Parameters
    ----------
    candidates : list of Candidate
        In the order tried.
    rule : str
        ``"one-standard-error"``: per method, the smallest weight within one standard error of
        that method's lowest error; overall, among those, the simplest kind of method (source-only,
        shallow, deep) within one standard error of the lowest, and of that kind the lowest error.
        ``"lowest"``: the lowest error (ties: the smaller weight; source-only, then the order tried).
    exclude : collection of str
        Methods that keep their weight in ``per_method`` but cannot be ``best``.

    Returns
    -------
    per_method : dict of str to Candidate
    best : Candidate
    """
    _check_rule(rule)
    methods = list(dict.fromkeys(c.method for c in candidates))
    per_method: dict[str, Candidate] = {}
    for method in methods:
        tried = [c for c in candidates if c.method == method]
        if rule == "lowest":
            per_method[method] = min(tried, key=lambda c: c.reverse_error)  # ties: the first tried
        else:
            per_method[method] = min(_within_one_standard_error(tried), key=lambda c: c.weight or 0.0)
    chosen = [c for m, c in per_method.items() if m not in exclude] or list(per_method.values())
    if rule == "lowest":
        return per_method, min(chosen, key=lambda c: (c.reverse_error, c.method != "source-only"))
    pool = _within_one_standard_error(chosen)
    simplest = min(_complexity(c) for c in pool)
    best = min((c for c in pool if _complexity(c) == simplest), key=lambda c: c.reverse_error)
    return per_method, best


def select_adaptation(
    methods: str | list[str] | tuple[str, ...],
    source: Any,
    labels: np.ndarray,
    target: Any,
    *,
    weights: tuple[float, ...] = DEFAULT_WEIGHTS,
    settings: AdaptationConfig | None = None,
    validation_fraction: float = 0.2,
    rule: str = "one-standard-error",
    random_state: int = 0,
    target_labelled: tuple[Any, np.ndarray] | None = None,
) -> Selection:
    """Fit every candidate and choose one by reverse validation (no target labels), or by a few labelled ones.

    Parameters
    ----------
    methods : sequence of str, or str
        Methods to try (from :data:`METHODS`), or one method's name; those of :data:`WEIGHTED_METHODS`
        at every weight of ``weights``.
    source : array, shape (N_s, D)
    labels : ndarray of int, shape (N_s,)
    target : array, shape (N_t, D)
        Unlabelled target features.
    weights : tuple of float
        Adaptation weights tried for each method of :data:`WEIGHTED_METHODS`.
    settings : AdaptationConfig, optional
    validation_fraction : float
        Share of the source held out for scoring.
    rule : {"one-standard-error", "lowest"}
        How the reverse errors choose; see :func:`choose_candidates`.
    random_state : int
    target_labelled : (array of shape (N_l, D), ndarray of int of shape (N_l,)), optional
        A few labelled target examples. When given, they choose instead of reverse validation:
        each candidate is fitted on the *whole* source (nothing is held out, so the chosen model
        needs no refit) and scored by its error on them, under the same ``rule``. They train
        nothing; include their features in ``target`` as well, like any target example.

    Returns
    -------
    Selection
    """
    source, target = dense_features(source), dense_features(target)
    check_target_rows(target)
    check_features(source, "source")
    check_features(target, "target")
    labels = check_label_indices(labels, len(source))
    if source.shape[1] != target.shape[1]:
        raise DataError(f"source features have {source.shape[1]} columns but target features {target.shape[1]}")
    if len(np.unique(labels)) < 2:
        raise DataError("the source has one class; adaptation needs a labelled source with at least two")
    _check_rule(rule)  # before any fitting
    if not isinstance(validation_fraction, (int, float, np.floating)) or not 0 <= validation_fraction <= 1:
        raise DataError(f"validation_fraction is {validation_fraction!r}; expected a share of the source in [0, 1]")
    checked = _checked_target_labelled(target_labelled, source.shape[1], labels)
    if checked is None:
        train, validation = source_validation_split(labels, validation_fraction, random_state)
        if len(validation) == 0:  # a class of one example keeps it for training
            raise DataError("reverse validation needs a class with at least 2 source examples, to hold one out")
    else:
        train, validation = np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    if isinstance(methods, str):  # one name, not a sequence of its letters
        methods = [methods]
    methods = list(dict.fromkeys(check_method(m) for m in methods))
    if not len(weights) and any(m in WEIGHTED_METHODS for m in methods):
        raise DataError(f"weights is empty; methods {[m for m in methods if m in WEIGHTED_METHODS]} need one or more")
    tries = [(method, weight) for method in methods for weight in (weights if method in WEIGHTED_METHODS else (None,))]
    candidates = []
    for method, weight in progress(
        tries, total=len(tries), desc=f"adaptation candidates, seed {random_state}", unit="fit"
    ):
        started = time.perf_counter()
        common = {"weight": weight, "settings": settings, "random_state": random_state}
        model = fit_method(method, source[train], labels[train], target, **common)
        if checked is None:
            misses = reverse_validation_misses(
                method, model, source[train], source[validation], labels[validation], target, **common
            )
        else:
            misses = np.asarray(model.predict(checked[0])) != checked[1]  # (N_l,)
        seconds = time.perf_counter() - started
        candidates.append(Candidate(method, weight, float(misses.mean()), seconds, model, misses))
    tried = {c.method for c in candidates}
    left_out = {m: why for m, why in not_chosen_automatically(source, target).items() if m in tried}
    per_method, best = choose_candidates(candidates, rule, exclude=left_out)
    criterion = REVERSE_VALIDATION if checked is None else LABELLED_TARGET
    return Selection(candidates, per_method, best, train, validation, rule, left_out, criterion)


def _checked_target_labelled(
    target_labelled: tuple[Any, np.ndarray] | None, n_features: int, source_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(features (N_l, D), labels (N_l,))`` of the labelled target examples, checked; or None."""
    if target_labelled is None:
        return None
    if not isinstance(target_labelled, (tuple, list)) or len(target_labelled) != 2:
        raise DataError(
            "target_labelled must be a pair (features, labels) of a few labelled target examples; "
            f"got {type(target_labelled).__name__}"
        )
    features, labels = dense_features(target_labelled[0]), np.asarray(target_labelled[1])
    if labels.ndim != 1 or len(labels) != len(features) or len(labels) == 0:
        raise DataError(
            f"the labelled target examples have {len(features)} feature rows and labels of shape {labels.shape}; "
            "expected one label per row, at least one row"
        )
    if features.shape[1] != n_features:
        raise DataError(f"labelled target features have {features.shape[1]} columns; the source's {n_features}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > source_labels.max():
        raise DataError(
            f"labelled target examples need label indices of the source's classes (0..{int(source_labels.max())}); "
            f"got {labels.dtype} values {np.unique(labels)[:5].tolist()}"
        )
    return features, labels.astype(np.int64)
