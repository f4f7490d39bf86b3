"""The target-only baselines as strategies: what you get without any transfer."""

from __future__ import annotations

from dataclasses import dataclass

from ._base import Strategy, register_strategy

__all__ = ["Scratch", "Classical"]


@register_strategy
@dataclass(frozen=True)
class Scratch(Strategy):
    """A compact network of the data's modality trained from random initialisation.

    Images: a small CNN with shift/flip augmentation; text: a bag of hashed word and
    bigram embeddings; tabular: a small MLP. See :mod:`transferkit.strategies.baselines`.
    """

    name = "scratch"
    uses_backbone = False
    steps: int | None = None  # optimiser steps; None keeps the baseline's tuned default


@register_strategy
@dataclass(frozen=True)
class Classical(Strategy):
    """Logistic regression on raw pixels (images), TF-IDF (text) or standardised columns."""

    name = "classical"
    uses_backbone = False
