"""transferkit: transfer learning for small labelled data sets."""

from ._compat import ensure_torchvision_ops

# Before anything imports timm or torchvision (see _compat).
ensure_torchvision_ops()

from .backbones import Backbone, BackboneCfg, backbone_cfg, create_backbone, list_backbones  # noqa: E402
from .data import Dataset, DataSplit, few_shot_indices, list_datasets, load_dataset  # noqa: E402
from .errors import DataError, NotFittedError, TransferkitError, UnknownNameError  # noqa: E402
from .estimators import TransferClassifier  # noqa: E402
from .features import extract_features  # noqa: E402
from .strategies import get_strategy, list_strategies  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "BackboneCfg",
    "DataError",
    "DataSplit",
    "Dataset",
    "NotFittedError",
    "TransferClassifier",
    "TransferkitError",
    "UnknownNameError",
    "backbone_cfg",
    "create_backbone",
    "extract_features",
    "few_shot_indices",
    "get_strategy",
    "list_backbones",
    "list_datasets",
    "list_strategies",
    "load_dataset",
]
