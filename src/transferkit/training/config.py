"""Settings of the one training loop, as a JSON-serialisable dataclass."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import TransferkitError

__all__ = ["TrainConfig"]

_OPTIMIZERS = ("adamw", "sgd")
_SCHEDULES = ("cosine", "onecycle", "constant")
_BATCHNORM = ("eval", "train")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, batches, validation and augmentation.

    Parameters
    ----------
    epochs : int
        Passes over the training examples.
    lr : float
        Peak learning rate of the head; strategies scale it per layer group.
    batch_size : int
        Examples per optimiser step.
    optimizer : {"adamw", "sgd"}
        AdamW, or SGD with Nesterov momentum ``momentum``.
    weight_decay : float
        Decoupled weight decay (AdamW) or L2 (SGD); strategies such as L2-SP set it to 0 where
        their own penalty replaces it.
    momentum : float
        SGD momentum.
    schedule : {"cosine", "onecycle", "constant"}
        ``cosine``: linear warm-up over ``warmup_epochs`` then cosine decay to 0;
        ``onecycle``: 30% rise then cosine decay; ``constant``: warm-up then flat.
    warmup_epochs : float
        Length of the linear warm-up, in epochs.
    clip_grad_norm : float or None
        Clip the global gradient norm to this value.
    val_fraction : float
        Share of the labelled training examples held out (stratified) for validation accuracy
        and early stopping. Never the test set. ``0`` trains on everything.
    patience : int or None
        Stop after this many epochs without a better validation accuracy and restore the best
        weights; needs ``val_fraction > 0``.
    augment : bool or None
        Random resized crop and horizontal flip of images; ``None`` means on for images.
    crop_scale : tuple of float
        Range of the crop's area relative to the image.
    hflip : bool
        Whether augmentation flips horizontally.
    batchnorm : {"eval", "train"}
        ``eval`` keeps every BatchNorm layer on its pre-trained running statistics (the stable
        choice with few labels); ``train`` updates them in trainable groups.
    label_smoothing : float
        Cross-entropy label smoothing.
    seed : int
        Seed of data order, augmentation, dropout and the validation split.
    """

    epochs: int = 15
    lr: float = 1e-3
    batch_size: int = 32
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    clip_grad_norm: float | None = 1.0
    val_fraction: float = 0.0
    patience: int | None = None
    augment: bool | None = None
    crop_scale: tuple[float, float] = (0.6, 1.0)
    hflip: bool = True
    batchnorm: str = "eval"
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_scale", tuple(float(v) for v in self.crop_scale))

    def validate(self) -> TrainConfig:
        """Raise :class:`TransferkitError` naming the first bad setting; return ``self``."""

        def bad(name: str, expected: str) -> TransferkitError:
            return TransferkitError(
                f"The {name!r} training setting must be {expected}. Got {getattr(self, name)!r} instead."
            )

        def positive_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if not positive_int(self.epochs):
            raise bad("epochs", "a positive int")
        if not number(self.lr) or not 0 < self.lr <= 1:
            raise bad("lr", "a float in (0, 1]")
        if not positive_int(self.batch_size):
            raise bad("batch_size", "a positive int")
        if self.optimizer not in _OPTIMIZERS:
            raise bad("optimizer", f"one of {_OPTIMIZERS}")
        if self.schedule not in _SCHEDULES:
            raise bad("schedule", f"one of {_SCHEDULES}")
        if self.batchnorm not in _BATCHNORM:
            raise bad("batchnorm", f"one of {_BATCHNORM}")
        if not number(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "a float >= 0")
        if not number(self.warmup_epochs) or self.warmup_epochs < 0:
            raise bad("warmup_epochs", "a float >= 0")
        if self.clip_grad_norm is not None and (not number(self.clip_grad_norm) or self.clip_grad_norm <= 0):
            raise bad("clip_grad_norm", "None or a float > 0")
        if not number(self.val_fraction) or not 0 <= self.val_fraction < 1:
            raise bad("val_fraction", "a float in [0, 1)")
        if self.patience is not None and not positive_int(self.patience):
            raise bad("patience", "None or a positive int")
        if self.patience is not None and self.val_fraction == 0:
            raise TransferkitError("early stopping (patience) needs a validation split: set val_fraction > 0")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise bad("crop_scale", "(low, high) with 0 < low <= high <= 1")
        if not number(self.label_smoothing) or not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "a float in [0, 1)")
        return self

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TransferkitError(f"unknown training setting {unknown[0]!r}; the settings are {sorted(known)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        data = dataclasses.asdict(self)
        data["crop_scale"] = list(self.crop_scale)
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON, keys sorted."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return cls().replace(**data)
