"""What is transferred from: a registry of pre-trained backbones behind one contract."""

from ._base import Backbone
from ._config import BackboneCfg, fine_tuning_defaults
from ._registry import DEFAULT_BACKBONES, backbone_cfg, create_backbone, list_backbones, register_backbone

__all__ = [
    "Backbone",
    "BackboneCfg",
    "DEFAULT_BACKBONES",
    "backbone_cfg",
    "create_backbone",
    "fine_tuning_defaults",
    "list_backbones",
    "register_backbone",
]
