"""Fit any adaptation method on features, choose among them without target labels, compare.

Read top to bottom: :func:`fit_method` fits one method; :func:`reverse_validation_error`
scores a fitted candidate without target labels; :func:`select_adaptation` fits every
candidate (method × adaptation weight) and keeps the one with the lowest reverse-validation
error; :func:`compare_adaptation` runs that over seeds and, where the target's labels exist
*for evaluation*, reports each method's target accuracy against source-only.

**Label-free selection: reverse validation** (Zhong et al., ECML-PKDD 2010; used by Ganin
et al., JMLR 2016, section 5.1.2, to choose DANN's hyper-parameters). The source's labelled
examples are split 80/20. A candidate is trained on the 80 % and the unlabelled target, and
labels the target; a *reverse* model of the same method is then trained on the target with
those pseudo-labels, adapting towards the source, and its error on the held-out 20 % of the
source is the candidate's score. A candidate whose target labels are wrong cannot train a
reverse model that labels the source well. Target labels are never read.

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

from ..errors import DataError, did_you_mean
from ..strategies.linear_probe import ProbeHead
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
    "reverse_validation_error",
    "select_adaptation",
    "Candidate",
    "Selection",
    "DenoisedProbeHead",
    "dense_features",
]

DEEP_METHODS = ADAPTATION_LOSSES  # dann, coral, mmd, cdan: losses on a bottleneck network
SHALLOW_METHODS = ("shallow-coral", "kmm", "kliep", "self-training", "msda")
METHODS = ("source-only", *DEEP_METHODS, *SHALLOW_METHODS)
WEIGHTED_METHODS = (*DEEP_METHODS, "self-training", "msda")  # methods with an adaptation weight, tried at each
DEFAULT_WEIGHTS = (0.3, 1.0)  # adaptation weights tried per weighted method


def check_method(method: str) -> str:
    """Return ``method`` when it is known; raise with the closest names otherwise."""
    if method not in METHODS:
        raise did_you_mean("adaptation method", str(method), list(METHODS), hint="or 'all'")
    return method


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
    if method == "source-only":
        return ProbeHead().fit(source, labels)
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
        return self.head.predict_proba(self.features(features))  # (N, K)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.head.predict(self.features(features))

    def save_arrays(self) -> dict[str, np.ndarray]:
        layers = {f"msda.{i}": mapping for i, mapping in enumerate(self.mappings)}
        return {**layers, **{f"head.{k}": v for k, v in self.head.save_arrays().items()}}

    def config(self) -> dict[str, Any]:  # noqa: D102 - the model_config the estimator saves
        return {"layers": len(self.mappings), "scale": self.scale}

    @classmethod
    def from_arrays(cls, model_config: dict[str, Any], arrays: dict[str, np.ndarray]) -> DenoisedProbeHead:
        """Rebuild from :meth:`config` and :meth:`save_arrays`."""
        mappings = [arrays[f"msda.{i}"] for i in range(int(model_config["layers"]))]
        head = ProbeHead.from_arrays({k[len("head.") :]: v for k, v in arrays.items() if k.startswith("head.")})
        return cls(mappings, float(model_config["scale"]), head)


def _as_probe_head(logistic: Any) -> ProbeHead:
    head = ProbeHead()
    head.coef_ = np.asarray(logistic.coef_, dtype=np.float64)  # (K or 1, D)
    head.intercept_ = np.asarray(logistic.intercept_, dtype=np.float64)
    head.classes_ = np.asarray(logistic.classes_)
    return head


def reverse_validation_error(
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
) -> float:
    """Error on held-out source labels of a model trained on the target's pseudo-labels.

    ``model`` (trained on ``source_train``) labels ``target``; a model of the same method
    learns from those labels, adapting towards ``source_train``, and predicts
    ``source_validation``. Pseudo-labels of a single class give error 1.
    """
    pseudo = np.asarray(model.predict(target))  # (N_t,)
    if len(np.unique(pseudo)) < 2:
        return 1.0
    reverse = fit_method(
        method, target, pseudo, source_train, weight=weight, settings=settings, random_state=random_state + 1
    )
    return float((np.asarray(reverse.predict(source_validation)) != validation_labels).mean())


@dataclass
class Candidate:
    """One fitted method and weight, with its label-free score.

    Attributes
    ----------
    method : str
    weight : float or None
        Adaptation weight (deep methods and self-training).
    reverse_error : float
        Reverse-validation error on held-out source labels (lower is better).
    seconds : float
        Fit and scoring time.
    model : object
        The fitted model (trained on the source training part).
    """

    method: str
    weight: float | None
    reverse_error: float
    seconds: float
    model: Any = field(repr=False, default=None)

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
        The lowest reverse error of each method (ties: the smaller weight).
    best : Candidate
        The lowest reverse error overall (ties: source-only, then the order of ``methods``).
    train_index, validation_index : ndarray
        The source split used.
    """

    candidates: list[Candidate]
    per_method: dict[str, Candidate]
    best: Candidate
    train_index: np.ndarray
    validation_index: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "criterion": "reverse validation",
            "candidates": [c.to_dict() for c in self.candidates],
            "selected": self.best.to_dict(),
        }


def select_adaptation(
    methods: list[str] | tuple[str, ...],
    source: Any,
    labels: np.ndarray,
    target: Any,
    *,
    weights: tuple[float, ...] = DEFAULT_WEIGHTS,
    settings: AdaptationConfig | None = None,
    validation_fraction: float = 0.2,
    random_state: int = 0,
) -> Selection:
    """Fit every candidate and choose one by reverse validation (no target labels).

    Parameters
    ----------
    methods : sequence of str
        Methods to try (from :data:`METHODS`); those of :data:`WEIGHTED_METHODS` at every weight of
        ``weights``.
    source : array, shape (N_s, D)
    labels : ndarray of int, shape (N_s,)
    target : array, shape (N_t, D)
        Unlabelled target features.
    weights : tuple of float
        Adaptation weights tried for each method of :data:`WEIGHTED_METHODS`.
    settings : AdaptationConfig, optional
    validation_fraction : float
        Share of the source held out for scoring.
    random_state : int

    Returns
    -------
    Selection
    """
    source, target = dense_features(source), dense_features(target)
    labels = np.asarray(labels, dtype=np.int64)
    if source.shape[1] != target.shape[1]:
        raise DataError(f"source features have {source.shape[1]} columns but target features {target.shape[1]}")
    if len(np.unique(labels)) < 2:
        raise DataError("the source has one class; adaptation needs a labelled source with at least two")
    train, validation = source_validation_split(labels, validation_fraction, random_state)
    candidates = []
    for method in dict.fromkeys(check_method(m) for m in methods):
        for weight in weights if method in WEIGHTED_METHODS else (None,):
            started = time.perf_counter()
            common = {"weight": weight, "settings": settings, "random_state": random_state}
            model = fit_method(method, source[train], labels[train], target, **common)
            error = reverse_validation_error(
                method, model, source[train], source[validation], labels[validation], target, **common
            )
            candidates.append(Candidate(method, weight, error, time.perf_counter() - started, model))
    per_method: dict[str, Candidate] = {}
    for candidate in candidates:  # weights ascend, so ties keep the smaller one
        if candidate.method not in per_method or candidate.reverse_error < per_method[candidate.method].reverse_error:
            per_method[candidate.method] = candidate
    order = sorted(per_method.values(), key=lambda c: (c.reverse_error, c.method != "source-only"))
    return Selection(candidates, per_method, order[0], train, validation)
