"""Strategies: small config dataclasses that say how to transfer (after PEFT's configs)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import TransferkitError, did_you_mean

__all__ = ["Strategy", "register_strategy", "get_strategy", "list_strategies", "strategy_from_dict"]

_STRATEGIES: dict[str, type[Strategy]] = {}


@dataclass(frozen=True)
class Strategy:
    """Base of every strategy config.

    Class attributes
    ----------------
    name : str
        The registered name (``--strategy``).
    uses_backbone : bool
        False for the target-only baselines, which never see a pre-trained model.
    """

    name: ClassVar[str] = ""
    uses_backbone: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings, with the strategy's name under ``"strategy"``."""
        return {"strategy": self.name, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make ``cls`` selectable by ``cls.name``."""
    if not cls.name or cls.name in _STRATEGIES:
        raise ValueError(f"strategy name {cls.name!r} is empty or already registered")
    _STRATEGIES[cls.name] = cls
    return cls


def list_strategies() -> list[str]:
    """Registered strategy names."""
    return sorted(_STRATEGIES)


def get_strategy(name: str | Strategy, **params: Any) -> Strategy:
    """A strategy instance from its name and settings (an instance passes through).

    Parameters
    ----------
    name : str or Strategy
        A registered name (see :func:`list_strategies`), or a strategy instance, returned as it
        is (``params`` are then ignored).
    **params
        Field values of the strategy's dataclass; unset fields keep their defaults. They are not
        validated here beyond their names.

    Returns
    -------
    Strategy

    Raises
    ------
    UnknownNameError
        For an unknown name.
    TransferkitError
        For a setting the strategy does not have, or a value its own checks refuse.
    """
    if isinstance(name, Strategy):
        return name
    if name not in _STRATEGIES:
        raise did_you_mean("strategy", str(name), _STRATEGIES, hint="see `transferkit list`")
    cls = _STRATEGIES[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise TransferkitError(f"strategy {name!r} has no setting {unknown[0]!r}; its settings are {sorted(fields)}")
    strategy = cls(**params)
    if hasattr(strategy, "validate"):  # a bad setting is named here, not at the end of feature extraction
        strategy.validate()
    return strategy


def strategy_from_dict(data: dict[str, Any]) -> Strategy:
    """Inverse of :meth:`Strategy.to_dict`."""
    data = dict(data)
    return get_strategy(data.pop("strategy"), **data)
