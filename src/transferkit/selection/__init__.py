"""Choosing what to transfer and how, and catching negative transfer.

- :mod:`.scores`: transferability scores (LogME, LEEP, NCE, H-score), pure numpy.
- :mod:`.distance`: domain distance (MMD, proxy A-distance) between two feature sets.
- :mod:`.rank`: score candidate backbones on the labelled examples before training.
- :mod:`.guard`: the gain of transfer over target-only training, with its interval.
- :mod:`.auto`: ``backbone="auto"`` and ``strategy="auto"``.
"""

from .auto import BackboneChoice, StrategyChoice, choose_backbone, choose_strategy, domain_distance
from .distance import mmd, proxy_a_distance
from .guard import GainEstimate, transfer_gain
from .rank import SCORES, RankedBackbone, candidate_backbones, rank_backbones
from .scores import hscore, leep, logme, nce

__all__ = [
    "BackboneChoice",
    "GainEstimate",
    "RankedBackbone",
    "SCORES",
    "StrategyChoice",
    "candidate_backbones",
    "choose_backbone",
    "choose_strategy",
    "domain_distance",
    "hscore",
    "leep",
    "logme",
    "mmd",
    "nce",
    "proxy_a_distance",
    "rank_backbones",
    "transfer_gain",
]
