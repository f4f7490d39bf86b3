"""Automatic choice of backbone and strategy from the labelled training data alone.

``backbone="auto"`` ranks the candidates with LogME and takes the best.

``strategy="auto"`` chooses among ``linear-probe``, ``freeze``, ``lp-ft`` and ``finetune``:

1. **Too few labels to tune.** With fewer than ``MIN_PER_CLASS_TO_TUNE`` examples in the
   smallest class, take ``linear-probe``: nothing can be held out, and a fine-tuned network
   has no data to be checked on.
2. **The rule** proposes one fine-tuning strategy from the *domain distance* — the mean
   normalised entropy ``H(p(z|x)) / log Z`` of the backbone's source-task head on the training
   inputs (1: the source classes say nothing about these inputs; 0: each input looks like
   one source class) — and the labels per class ``k``:

   - near (distance < ``NEAR``, or a backbone without a source head such as a sentence
     encoder trained on broad text): ``lp-ft`` — the features already fit, so keep them and
     only adapt them gently after the head has converged (Kumar et al., ICLR 2022);
   - far, ``k < FREEZE_BELOW``: ``freeze`` — lower layers are general, upper ones specific
     (Yosinski et al., NeurIPS 2014); with few labels, train only the upper ones;
   - far, more labels: ``finetune``.
3. **The held-out check.** A stratified quarter of the labelled training examples (at
   least one per class) is carved off; the proposal and ``linear-probe`` are fitted on the
   rest and scored on it. The proposal is kept unless the probe is ahead by more than one
   standard error of the paired per-example difference (the one-standard-error rule: a
   held-out part of a few dozen examples overturns the rule only when it clearly disagrees).

The test set is never read: the inputs and labels passed in are the training examples.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..data._dataset import take
from .rank import RankedBackbone, rank_backbones, source_probabilities

__all__ = ["StrategyChoice", "BackboneChoice", "choose_strategy", "choose_backbone", "domain_distance", "resolve_auto"]

AUTO_STRATEGIES = ("linear-probe", "freeze", "lp-ft", "finetune")
MIN_PER_CLASS_TO_TUNE = 4
NEAR = 0.5
FREEZE_BELOW = 25
HELD_OUT_FRACTION = 0.25


@dataclass
class StrategyChoice:
    """What ``strategy="auto"`` chose and why.

    Attributes
    ----------
    strategy : str
        The chosen strategy.
    proposed : str
        What the rule proposed before the held-out check.
    reasons : list of str
        The rule's steps, in words with their numbers.
    domain_distance : float or None
    labels_per_class : int
        Size of the smallest class.
    held_out : dict
        Held-out accuracy of each checked strategy.
    held_out_size : int
    seconds : float
    """

    strategy: str
    proposed: str
    reasons: list[str]
    domain_distance: float | None
    labels_per_class: int
    held_out: dict[str, float] = field(default_factory=dict)
    held_out_size: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return asdict(self)


@dataclass
class BackboneChoice:
    """What ``backbone="auto"`` chose: the best of ``ranking`` by ``score``."""

    backbone: str
    score: str
    ranking: list[RankedBackbone]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict, ``ranking`` as a list of :meth:`RankedBackbone.to_dict`."""
        return {"backbone": self.backbone, "score": self.score, "ranking": [r.to_dict() for r in self.ranking]}


def domain_distance(backbone: Any, inputs: Any, *, image_size: int | None = None) -> float | None:
    """Mean normalised entropy of the source head on ``inputs``, in [0, 1]; ``None`` without a head.

    ``H(p) / log Z`` averaged over inputs, with ``p = softmax(source_logits(x))`` over the ``Z``
    source classes.

    Parameters
    ----------
    backbone : Backbone
        Needs ``source_logits`` and ``cfg.num_source_classes > 0`` for a value.
    inputs : array of images or list of str
        Raw inputs of the backbone's modality.
    image_size : int, optional
        Resize images to this (default: the backbone's own size).

    Returns
    -------
    float or None
        In [0, 1]; ``None`` when the backbone has no source-task head.
    """
    if not getattr(backbone.cfg, "num_source_classes", 0) or not hasattr(backbone, "source_logits"):
        return None
    probs = source_probabilities(backbone, inputs, image_size=image_size)  # (N, Z)
    entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=1)  # (N,)
    return float(entropy.mean() / np.log(probs.shape[1]))


def held_out_split(labels: np.ndarray, seed: int, fraction: float = HELD_OUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, held-out) indices: ``max(1, round(fraction·count))`` of each class held out."""
    rng = np.random.default_rng([seed, 0xC0FFEE])
    train, held = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_held = max(1, int(round(fraction * len(members))))
        held.append(members[:n_held])
        train.append(members[n_held:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def choose_strategy(
    inputs: Any,
    labels: Any,
    *,
    make_estimator: Any,
    backbone: Any,
    image_size: int | None = None,
    random_state: int = 0,
) -> StrategyChoice:
    """Choose among ``linear-probe``, ``freeze``, ``lp-ft`` and ``finetune`` (see the module docstring).

    Parameters
    ----------
    inputs, labels
        The labelled training examples only.
    make_estimator : callable
        ``make_estimator(strategy_name) -> TransferClassifier`` with every other setting fixed.
    backbone : Backbone
        The backbone that will be transferred (for the domain distance).
    image_size : int, optional
    random_state : int
        Seed of the held-out carving.

    Returns
    -------
    StrategyChoice
    """
    started = time.perf_counter()
    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    k = int(counts.min())
    reasons = []
    if k < MIN_PER_CLASS_TO_TUNE:
        reasons.append(
            f"the smallest class has {k} labelled examples (< {MIN_PER_CLASS_TO_TUNE}): too few to hold any out "
            "or to fine-tune safely, so linear-probe"
        )
        return StrategyChoice("linear-probe", "linear-probe", reasons, None, k, seconds=time.perf_counter() - started)
    distance = domain_distance(backbone, inputs, image_size=image_size)  # None without a source head
    if distance is None:
        reasons.append(
            f"{backbone.cfg.name} has no source-task head to measure the domain distance with; "
            "taken as near (a general-purpose encoder)"
        )
        proposed = "lp-ft"
    elif distance < NEAR:
        reasons.append(f"domain distance {distance:.2f} < {NEAR} (source head fairly sure on these inputs): near")
        proposed = "lp-ft"
    else:
        reasons.append(f"domain distance {distance:.2f} >= {NEAR} (source head unsure on these inputs): far")
        proposed = "freeze" if k < FREEZE_BELOW else "finetune"
    reasons.append(
        {
            "lp-ft": "near: propose lp-ft (keep the features, adapt them after the head)",
            "freeze": f"far with {k} < {FREEZE_BELOW} labels per class: propose freeze (train the upper layers only)",
            "finetune": f"far with {k} >= {FREEZE_BELOW} labels per class: propose finetune",
        }[proposed]
    )
    fit_part, held_part = held_out_split(labels, random_state)
    correct = {}
    with torch.random.fork_rng(devices=[]):  # the check must not change what the final fit draws
        for name in ("linear-probe", proposed):
            model = make_estimator(name).fit(take(inputs, fit_part), labels[fit_part])
            correct[name] = model.predict(take(inputs, held_part)) == labels[held_part]  # (H,)
    held_out = {name: float(c.mean()) for name, c in correct.items()}
    difference = correct["linear-probe"].astype(float) - correct[proposed]  # (H,)
    standard_error = float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0
    # A lead of one single example is exactly one standard error: it keeps the proposal (no float coin flip).
    chosen = "linear-probe" if difference.mean() > standard_error + 1e-9 else proposed
    reasons.append(
        f"held-out check on {len(held_part)} of the {len(labels)} labelled examples: "
        + ", ".join(f"{name} {acc:.3f}" for name, acc in held_out.items())
        + f" (probe ahead by {difference.mean():+.3f}, one standard error {standard_error:.3f}): {chosen}"
    )
    return StrategyChoice(
        chosen, proposed, reasons, distance, k, held_out, len(held_part), time.perf_counter() - started
    )


def choose_backbone(
    inputs: Any,
    labels: Any,
    *,
    modality: str,
    candidates: str | list[str] = "all",
    score: str = "logme",
    **rank_options: Any,
) -> BackboneChoice:
    """Rank ``candidates`` on the labelled training examples and take the best (LogME by default).

    Parameters
    ----------
    inputs : array of images, list of paths, or list of str
        The labelled training examples (never the test set).
    labels : array-like of shape (N,)
    modality : str
        What ``inputs`` hold (``"image"`` or ``"text"``).
    candidates : "all", str or list of str
        Backbone names (a list or one comma-separated string); ``"all"``: every registered and zoo
        backbone of ``modality``.
    score : {"logme", "hscore", "leep", "nce"}
    **rank_options
        ``image_size``, ``batch_size``, ``cache``, ``cache_dir``, ``verbose``, passed to
        :func:`~transferkit.selection.rank_backbones`.

    Returns
    -------
    BackboneChoice
        The top-ranked name, the score's name and the whole ranking.

    Raises
    ------
    UnknownNameError
        For an unknown score or backbone.
    DataError
        When there is no candidate, one reads another modality, or the labels do not fit the inputs.
    """
    ranking = rank_backbones(inputs, labels, candidates, modality=modality, score=score, **rank_options)
    return BackboneChoice(ranking[0].name, score, ranking)


def resolve_auto(estimator: Any, inputs: Any, labels: np.ndarray, modality: str) -> tuple[Any, Any]:
    """The backbone name and strategy a ``TransferClassifier`` fits, its ``"auto"`` ones chosen here.

    Sets ``estimator.backbone_choice_`` / ``estimator.strategy_choice_`` and records them in
    ``estimator.history_``. Only the training ``inputs`` and ``labels`` are read.
    """
    from .._progress import quiet_unless
    from ..backbones import DEFAULT_BACKBONES, create_backbone
    from ..errors import DataError, TransferkitError

    backbone_name, strategy_spec = estimator.backbone, estimator.strategy
    if estimator.label_descriptions is not None:
        raise TransferkitError("backbone='auto' and strategy='auto' do not take label_descriptions")
    if backbone_name == "auto":
        estimator.backbone_choice_ = choose_backbone(
            inputs,
            labels,
            modality=modality,
            image_size=estimator.image_size,
            batch_size=int(estimator.batch_size),
            cache=estimator.cache,
            cache_dir=estimator.cache_dir,
            verbose=estimator.verbose,
        )
        backbone_name = estimator.backbone_choice_.backbone
        estimator.history_["backbone_choice"] = estimator.backbone_choice_.to_dict()
    if strategy_spec == "auto":
        name = backbone_name or DEFAULT_BACKBONES.get(modality)
        if name is None:
            raise DataError(f"no default backbone for {modality} data; name one with backbone=...")
        settings = {**estimator.get_params(), "backbone": name, "resume": False, "checkpoint_dir": None}
        with quiet_unless(estimator.verbose):
            estimator.strategy_choice_ = choose_strategy(
                inputs,
                labels,
                make_estimator=lambda strategy: type(estimator)(**{**settings, "strategy": strategy}),
                backbone=create_backbone(name),
                image_size=estimator.image_size,
                random_state=int(estimator.random_state),
            )
        strategy_spec = estimator.strategy_choice_.strategy
        estimator.history_["strategy_choice"] = estimator.strategy_choice_.to_dict()
    return backbone_name, strategy_spec
