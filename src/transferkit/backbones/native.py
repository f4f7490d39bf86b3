"""Small architectures this library trains itself on CPU: ``small-cnn`` and ``mlp``.

They are what ``transferkit pretrain --arch small-cnn|mlp`` trains on a source task and what
greedy layer-wise pre-training builds (an ``mlp`` with sigmoid units); stored in the zoo
(:mod:`transferkit.backbones.zoo`) they are backbones like any other. Everything needed to
rebuild one travels in its :class:`BackboneCfg` (``arch`` and ``extra``), so an entry is its
weights plus JSON, never code.

- ``small-cnn``: the architecture of the ``scratch`` baseline, so that "pre-trained" and "from
  scratch" compare the same network: conv32-conv32-pool-conv64-conv64-pool (3×3, BatchNorm,
  ReLU), average-pooled to at most a 7×7 grid, a 128-unit ReLU layer with dropout 0.5: a 128-d
  embedding. Reads images of any size.
- ``mlp``: Linear → activation (``relu`` or ``sigmoid``), repeated; reads images (flattened, at
  exactly the stored size) or feature vectors (standardised with the source data's mean and std).

Each has its source task's classifier as the ``classifier`` group, so :meth:`source_logits`
(and LEEP / NCE in ``rank``) work on its source classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.preprocess import ImagePreprocessor
from ..errors import DataError, TransferkitError
from ._base import Backbone
from ._config import BackboneCfg

__all__ = ["NATIVE_ARCHS", "NativeBackbone", "VectorPreprocessor", "build_native", "native_cfg"]

NATIVE_ARCHS = ("small-cnn", "mlp")
_CNN_WIDTHS = (32, 64)
_GRID = 7  # small-cnn: the last feature map is average-pooled to at most 7x7 before the embedding layer
_EMBED = 128
_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class VectorPreprocessor:
    """Feature vectors ``(B, D)`` → float tensor, standardised with the source data's statistics.

    Parameters
    ----------
    dim : int
        Width the backbone reads.
    mean, std : sequence of float, optional
        Per-feature statistics of the source data (``None``: used as given).
    """

    def __init__(self, dim: int, mean: Any = None, std: Any = None) -> None:
        self.dim = int(dim)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32)

    def __call__(self, batch: Any) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(batch, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DataError(f"this backbone reads feature vectors of shape (N, {self.dim}); got {tuple(x.shape)}")
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x  # (B, D)

    def describe(self) -> dict[str, Any]:
        """What determines the output; part of the feature-cache key."""
        stats = None if self.mean is None else [self.mean.tolist(), self.std.tolist()]
        return {"kind": "vector", "dim": self.dim, "stats": stats}


class NativeBackbone(Backbone):
    """A ``small-cnn`` or ``mlp`` behind the :class:`Backbone` contract.

    Parameters
    ----------
    cfg : BackboneCfg
        ``arch`` is ``small-cnn`` or ``mlp``; ``extra`` holds the shape (see :func:`native_cfg`).
    stages : list of (name, nn.Module)
        The body, input to output; each stage's output is a feature layer.
    classifier : nn.Linear or None
        The source task's head, ``(feature_dim → num_source_classes)``.
    """

    def __init__(self, cfg: BackboneCfg, stages: list[tuple[str, nn.Module]], classifier: nn.Linear | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.stages = nn.ModuleDict(stages)
        self.classifier = classifier

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) if self.cfg.arch == "mlp" else x

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if x.ndim == 4 else x  # (B, C, H, W) -> (B, C)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._flatten(x)  # mlp: (B, C*H*W) or (B, D)
        for stage in self.stages.values():
            x = stage(x)
        return self._pool(x)  # (B, D)

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the source task's classifier, ``(B, num_source_classes)``."""
        if self.classifier is None:
            raise TransferkitError(f"backbone {self.cfg.name!r} has no source-task classifier")
        return self.classifier(self.forward_features(x))

    def feature_layers(self) -> list[str]:
        return list(self.stages)

    def forward_layer(self, x: torch.Tensor, name: str) -> torch.Tensor:
        self._check_layer(name)
        x = self._flatten(x)
        for stage_name, stage in self.stages.items():
            x = stage(x)
            if stage_name == name:
                break
        return self._pool(x)  # (B, D_name)

    def layer_groups(self) -> list[tuple[str, list[nn.Module]]]:
        groups = [(name, [stage]) for name, stage in self.stages.items()]
        return groups + ([("classifier", [self.classifier])] if self.classifier is not None else [])

    def preprocessor(self, image_size: int | None = None) -> Any:
        if self.cfg.modality == "tabular":
            stats = self.cfg.extra.get("standardize")
            return VectorPreprocessor(int(self.cfg.extra["in_features"]), *(stats or (None, None)))
        channels, height, _ = self.cfg.input_size
        if self.cfg.arch == "mlp" and image_size is not None and int(image_size) != height:
            raise TransferkitError(
                f"backbone {self.cfg.name!r} is an MLP over {height}x{height} images; it cannot read "
                f"image_size={image_size} (leave image_size unset)"
            )
        return ImagePreprocessor(
            size=int(image_size or height), channels=channels, mean=tuple(self.cfg.mean), std=tuple(self.cfg.std)
        )


def native_cfg(
    arch: str,
    *,
    name: str,
    input_size: tuple[int, int, int] | None = None,
    in_features: int | None = None,
    hidden: tuple[int, ...] = (256, 128),
    activation: str = "relu",
    num_source_classes: int = 0,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    standardize: tuple[list[float], list[float]] | None = None,
) -> BackboneCfg:
    """The :class:`BackboneCfg` of a native architecture.

    Parameters
    ----------
    arch : {"small-cnn", "mlp"}
    name : str
        The backbone's name (``zoo:NAME`` once stored).
    input_size : (channels, height, width), optional
        For images.
    in_features : int, optional
        For feature vectors (``mlp`` only; modality ``tabular``).
    hidden : tuple of int
        ``mlp``: widths of the hidden layers; the last is the embedding.
    activation : {"relu", "sigmoid"}
        ``mlp``: the unit after every layer.
    num_source_classes : int
        Width of the source classifier (0: none).
    mean, std : tuple of float, optional
        Per-channel image normalisation after scaling pixels to [0, 1]; default 0.5 / 0.5 for
        ``small-cnn`` and 0 / 1 (pixels in [0, 1], what autoencoders and RBMs expect) for ``mlp``.
    standardize : (mean, std) lists, optional
        Per-feature statistics for vector inputs.

    Returns
    -------
    BackboneCfg
    """
    if arch not in NATIVE_ARCHS:
        from ..errors import did_you_mean

        raise did_you_mean("native architecture", arch, NATIVE_ARCHS)
    if activation not in _ACTIVATIONS:
        raise TransferkitError(f"activation must be one of {', '.join(_ACTIVATIONS)}; got {activation!r}")
    if (input_size is None) == (in_features is None):
        raise TransferkitError("give exactly one of input_size (images) and in_features (feature vectors)")
    if in_features is not None and arch != "mlp":
        raise TransferkitError(f"--arch {arch} reads images; feature vectors need --arch mlp")
    if in_features is not None and int(in_features) < 1:
        raise DataError(f"the feature vectors have {in_features} features; an mlp needs at least 1")
    hidden = tuple(int(width) for width in hidden)
    if arch == "mlp" and (not hidden or min(hidden) < 1):
        raise TransferkitError(f"hidden layer widths must be positive ints; got {hidden}")
    channels = input_size[0] if input_size is not None else 1
    default_mean, default_std = ((0.5,), (0.5,)) if arch == "small-cnn" else ((0.0,), (1.0,))
    return BackboneCfg(
        name=name,
        arch=arch,
        modality="image" if input_size is not None else "tabular",
        feature_dim=_EMBED if arch == "small-cnn" else hidden[-1],
        input_size=tuple(int(v) for v in input_size) if input_size is not None else None,
        mean=tuple(mean or default_mean * channels) if input_size is not None else None,
        std=tuple(std or default_std * channels) if input_size is not None else None,
        weights="",
        source="transferkit (trained here)",
        num_source_classes=int(num_source_classes),
        extra={
            "hidden": list(hidden) if arch == "mlp" else list(_CNN_WIDTHS),
            "activation": activation if arch == "mlp" else "relu",
            "in_features": in_features,
            "standardize": [list(standardize[0]), list(standardize[1])] if standardize is not None else None,
        },
    )


def build_native(cfg: BackboneCfg, *, seed: int | None = None) -> NativeBackbone:
    """A randomly initialised :class:`NativeBackbone` of ``cfg``'s shape (load weights after).

    ``seed`` makes the initialisation reproducible without moving the caller's torch RNG.
    """

    def build() -> NativeBackbone:
        widths = cfg.extra["hidden"]
        if cfg.arch == "small-cnn":
            c_in = cfg.input_size[0]
            grid = min(_GRID, cfg.input_size[1] // 4) or 1
            stages = [
                ("stem", nn.Sequential(*_conv_bn_relu(c_in, widths[0]), *_conv_bn_relu(widths[0], widths[0]))),
                (
                    "stage1",
                    nn.Sequential(
                        nn.MaxPool2d(2), *_conv_bn_relu(widths[0], widths[1]), *_conv_bn_relu(widths[1], widths[1])
                    ),
                ),
                # Where a stroke is matters (a 6 and a 9 have the same average): keep a grid, not one mean.
                (
                    "embed",
                    nn.Sequential(
                        nn.MaxPool2d(2),
                        nn.AdaptiveAvgPool2d(grid),
                        nn.Flatten(),
                        nn.Linear(widths[1] * grid * grid, _EMBED),
                        nn.ReLU(),
                        nn.Dropout(0.5),
                    ),
                ),
            ]
        else:
            d_in = cfg.extra["in_features"] or int(np.prod(cfg.input_size))
            activation = _ACTIVATIONS[cfg.extra["activation"]]
            stages = []
            for index, width in enumerate(widths, start=1):
                stages.append((f"layer{index}", nn.Sequential(nn.Linear(d_in, width), activation())))
                d_in = width
        classifier = nn.Linear(cfg.feature_dim, cfg.num_source_classes) if cfg.num_source_classes else None
        return NativeBackbone(cfg, stages, classifier)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()
