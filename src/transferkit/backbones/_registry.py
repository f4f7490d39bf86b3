"""The backbone registry: names to factories, with pass-through prefixes."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import TransferkitError, did_you_mean
from ._base import Backbone
from ._config import BackboneCfg

__all__ = ["register_backbone", "create_backbone", "list_backbones", "backbone_cfg", "DEFAULT_BACKBONES"]

_FACTORIES: dict[str, tuple[Callable[[BackboneCfg], Backbone], Callable[[], BackboneCfg]]] = {}
_BUILTIN_MODULES = ("transferkit.backbones.vision", "transferkit.backbones.text")
# prefix -> "module:function" building a backbone from the rest of the name, offline
_PREFIXES = {
    "timm": "transferkit.backbones.vision:create_timm_backbone",
    "hf": "transferkit.backbones.text:create_hf_backbone",
    "zoo": "transferkit.backbones.zoo:create_zoo_backbone",
}
DEFAULT_BACKBONES = {"image": "efficientnet_lite0.in1k", "text": "minilm_l6.sentence"}


def register_backbone(name: str, factory: Callable[[BackboneCfg], Backbone], cfg: Callable[[], BackboneCfg]) -> None:
    """Register a backbone under ``name``.

    Parameters
    ----------
    name : str
        ``arch.tag``; must be new.
    factory : callable
        Builds the backbone (loading and checking weights) from its cfg.
    cfg : callable
        Returns the :class:`BackboneCfg` cheaply, without loading weights.
    """
    if name in _FACTORIES:
        raise ValueError(f"backbone {name!r} is already registered")
    _FACTORIES[name] = (factory, cfg)


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_backbones() -> list[str]:
    """Names of the registered backbones (pass-through prefixes not included)."""
    _load_builtins()
    return sorted(_FACTORIES)


def _lookup(name: str) -> tuple[Callable[[BackboneCfg], Backbone], Callable[[], BackboneCfg]]:
    _load_builtins()
    if name not in _FACTORIES:
        raise did_you_mean(
            "backbone", name, _FACTORIES, hint="see `transferkit list`; or use timm:<name> or hf:<id-or-path>"
        )
    return _FACTORIES[name]


def backbone_cfg(name: str) -> BackboneCfg:
    """The :class:`BackboneCfg` of a registered backbone, without loading its weights."""
    return _lookup(name)[1]()


def create_backbone(name: str) -> Backbone:
    """Build a backbone by name, in eval mode, with its weights checked.

    Parameters
    ----------
    name : str
        A registered name (``efficientnet_lite0.in1k``), ``timm:<name>[@file]``,
        ``hf:<id-or-path>`` or ``zoo:<name-or-folder>`` (see :mod:`transferkit.backbones.zoo`).

    Returns
    -------
    Backbone

    Raises
    ------
    UnknownNameError
        For an unknown name, with the closest registered names.
    TransferkitError
        When weights are missing, corrupt or would have to be downloaded.
    """
    if not isinstance(name, str):
        raise TransferkitError(f"a backbone name must be a string (see `transferkit list`); got {name!r}")
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _PREFIXES:
        module, function = _PREFIXES[prefix].split(":")
        return getattr(importlib.import_module(module), function)(rest).eval()
    factory, cfg = _lookup(name)
    return factory(cfg()).eval()
