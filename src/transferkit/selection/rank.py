"""Rank candidate backbones for a labelled target set before training anything.

Each candidate's features of the labelled examples are extracted once (and cached, so the
fit that follows reuses them) and scored with a transferability score; higher is better.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .._progress import quiet_unless
from ..backbones import backbone_cfg, create_backbone, list_backbones
from ..errors import DataError, TransferkitError, did_you_mean
from ..features import extract_features
from .scores import hscore, leep, logme, nce

__all__ = ["RankedBackbone", "SCORES", "candidate_backbones", "rank_backbones", "source_probabilities"]

# name -> (function, what it reads): "features" (the pooled embedding) or "source" (the source head's probabilities)
SCORES: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], str]] = {
    "logme": (logme, "features"),
    "hscore": (hscore, "features"),
    "leep": (leep, "source"),
    "nce": (lambda probs, labels: nce(probs.argmax(axis=1), labels), "source"),
}


@dataclass(frozen=True)
class RankedBackbone:
    """One candidate's score.

    Attributes
    ----------
    name : str
    rank : int
        1 for the best score.
    score : float
    extract_seconds, score_seconds : float
        Time to get the features (near 0 from the cache) and to compute the score.
    from_cache : bool
    feature_dim : int
    """

    name: str
    rank: int
    score: float
    extract_seconds: float
    score_seconds: float
    from_cache: bool
    feature_dim: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return asdict(self)


def _readable_at(names: list[str], image_size: int | None) -> list[str]:
    """``names`` less the zoo MLPs that read one image size only, when ``image_size`` is another (with a warning):
    "all" means every candidate that can be ranked at that size, not an error over one of them."""
    if image_size is None:
        return names
    from ..backbones.zoo import list_zoo

    fixed = {
        entry["name"]: entry["cfg"].input_size[1]
        for entry in list_zoo()
        if entry["cfg"].arch == "mlp" and entry["cfg"].modality == "image" and entry["cfg"].input_size
    }
    skipped = [name for name in names if name in fixed and fixed[name] != image_size]
    if skipped:
        warnings.warn(
            f"skipping {', '.join(skipped)}: an MLP over images of one size cannot read image_size={image_size}",
            stacklevel=3,
        )
    return [name for name in names if name not in skipped]


def _unscorable(backbone: Any, inputs: Any, reads: str) -> str | None:
    """Why ``backbone`` cannot be scored on ``inputs`` (checked before any extraction), or None."""
    cfg = backbone.cfg
    width = cfg.extra.get("in_features") if cfg.modality == "tabular" else None
    if width and np.ndim(inputs) == 2 and np.shape(inputs)[1] != width:
        return f"reads feature vectors of {width} columns but the data has {np.shape(inputs)[1]}"
    if reads == "source" and (not cfg.num_source_classes or not hasattr(backbone, "source_logits")):
        return "has no source-task classifier; LEEP and NCE need one (use --score logme or hscore)"
    return None


def candidate_backbones(modality: str) -> list[str]:
    """Registered backbones and ``zoo:`` models that read ``modality``."""
    from ..backbones.zoo import list_zoo

    names = [name for name in list_backbones() if backbone_cfg(name).modality == modality]
    return names + [entry["name"] for entry in list_zoo() if entry["cfg"].modality == modality]


def source_probabilities(
    backbone: Any, inputs: Any, *, image_size: int | None = None, batch_size: int = 32
) -> np.ndarray:
    """Softmax of the backbone's source-task head on ``inputs``, ``(N, Z)``.

    Raises
    ------
    TransferkitError
        When the backbone has no source head (``cfg.num_source_classes == 0``).
    """
    if not backbone.cfg.num_source_classes or not hasattr(backbone, "source_logits"):
        raise TransferkitError(
            f"backbone {backbone.cfg.name!r} has no source-task classifier; LEEP and NCE need one "
            "(use --score logme or hscore)"
        )
    preprocess = backbone.preprocessor(image_size=image_size)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            logits = backbone.source_logits(preprocess(inputs[start : start + batch_size]))  # (b, Z)
            chunks.append(torch.softmax(logits.float(), dim=1).numpy())
    return np.concatenate(chunks)  # (N, Z)


def rank_backbones(
    inputs: Any,
    labels: Any,
    backbones: str | Sequence[str] = "all",
    *,
    modality: str,
    score: str = "logme",
    image_size: int | None = None,
    batch_size: int = 32,
    cache: bool = True,
    cache_dir: str | None = None,
    verbose: bool = True,
) -> list[RankedBackbone]:
    """Score each candidate backbone on the labelled examples; best first.

    Parameters
    ----------
    inputs : array of images, list of paths, or list of str
        The labelled training examples (never the test set).
    labels : array-like of shape (N,)
    backbones : "all", str or sequence of str
        Candidate names, as a sequence or one comma-separated string; ``"all"`` means
        :func:`candidate_backbones` of ``modality``, less (with a warning) those that cannot be
        scored here: zoo MLPs of another input width, and for LEEP / NCE models without a source head.
    modality : str
        What ``inputs`` hold (``"image"`` or ``"text"``).
    score : {"logme", "hscore", "leep", "nce"}
    image_size : int, optional
        Resize images to this for every candidate (default: each backbone's own size).
    batch_size, cache, cache_dir, verbose
        As for :func:`transferkit.features.extract_features`.

    Returns
    -------
    list of RankedBackbone
        Sorted by score, best first.

    Raises
    ------
    UnknownNameError
        For an unknown score or backbone.
    DataError
        When a candidate reads another modality, a named one cannot be scored here (see ``backbones``),
        or the labels do not fit the inputs.
    """
    if score not in SCORES:
        raise did_you_mean("transferability score", score, SCORES)
    if backbones == "all":
        names = _readable_at(candidate_backbones(modality), image_size)
    elif isinstance(backbones, str):  # one name, or "a,b": not its letters
        names = [name.strip() for name in backbones.split(",") if name.strip()]
    else:
        names = list(backbones)
    if not names:
        raise DataError(f"no candidate backbones for {modality} data")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(inputs):
        raise DataError(f"labels must be 1-D with one label per input; got shape {labels.shape} for {len(inputs)}")
    function, reads = SCORES[score]
    candidates = {name: create_backbone(name) for name in names}  # every name checked before any extraction
    for name, backbone in candidates.items():
        if backbone.cfg.modality != modality:
            raise DataError(f"backbone {name!r} reads {backbone.cfg.modality} but the data is {modality}")
    unreadable = {name: why for name, backbone in candidates.items() if (why := _unscorable(backbone, inputs, reads))}
    if unreadable and backbones != "all":
        name, why = next(iter(unreadable.items()))
        raise DataError(f"backbone {name!r} {why}")
    if unreadable:  # "all": every candidate that can be scored here, not an error over one of them
        warnings.warn("skipping " + "; ".join(f"{name}: it {why}" for name, why in unreadable.items()), stacklevel=2)
        candidates = {name: backbone for name, backbone in candidates.items() if name not in unreadable}
        if not candidates:
            raise DataError(f"no candidate backbone can be scored with {score} on this {modality} data")
    results = []
    with quiet_unless(verbose):
        for name, backbone in candidates.items():
            started = time.perf_counter()
            if reads == "features":
                extracted = extract_features(
                    backbone,
                    inputs,
                    image_size=image_size,
                    batch_size=batch_size,
                    cache=cache,
                    cache_dir=cache_dir,
                    desc=f"features {name}",
                )
                values, from_cache = extracted.features, extracted.from_cache
            else:
                values, from_cache = source_probabilities(backbone, inputs, image_size=image_size), False
            extract_seconds = time.perf_counter() - started
            started = time.perf_counter()
            value = float(function(values, labels))
            results.append((name, value, extract_seconds, time.perf_counter() - started, from_cache, values.shape[1]))
    results.sort(key=lambda row: -row[1])
    return [RankedBackbone(name, rank, *rest) for rank, (name, *rest) in enumerate(results, start=1)]
