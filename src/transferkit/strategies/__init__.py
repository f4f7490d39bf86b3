"""How to transfer: strategy configs, selectable by name."""

from ._base import Strategy, get_strategy, list_strategies, register_strategy, strategy_from_dict
from .linear_probe import LinearProbe, ProbeHead
from .target_only import Classical, Scratch

__all__ = [
    "Classical",
    "LinearProbe",
    "ProbeHead",
    "Scratch",
    "Strategy",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "strategy_from_dict",
]
