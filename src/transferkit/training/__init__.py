"""The one training loop every trainable method uses, its settings and checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .loop import TrainResult, predict_logits, set_train_mode, train_network, validation_split
from .network import TransferNetwork, trainable_groups

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TransferNetwork",
    "load_checkpoint",
    "predict_logits",
    "save_checkpoint",
    "set_train_mode",
    "train_network",
    "trainable_groups",
    "validation_split",
]
