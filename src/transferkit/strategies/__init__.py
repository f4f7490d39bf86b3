"""How to transfer: strategy configs, selectable by name."""

from ._base import Strategy, get_strategy, list_strategies, register_strategy, strategy_from_dict
from .finetune import L2SP, LPFT, FineTune, FineTuneStrategy, Freeze, GradualUnfreeze
from .linear_probe import LinearProbe, ProbeHead
from .lora import LoRA
from .target_only import Classical, Scratch

__all__ = [
    "Classical",
    "FineTune",
    "FineTuneStrategy",
    "Freeze",
    "GradualUnfreeze",
    "L2SP",
    "LPFT",
    "LinearProbe",
    "LoRA",
    "ProbeHead",
    "Scratch",
    "Strategy",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "strategy_from_dict",
]
