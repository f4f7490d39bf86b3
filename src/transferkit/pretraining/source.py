"""Train to reuse: train a backbone on a data-rich source task and keep it in the zoo.

Two ways, both ending in a zoo entry (:func:`transferkit.backbones.zoo.save_to_zoo`) that any
later run uses as ``zoo:NAME`` — ``fit``, ``rank`` and ``list`` see it like a registered backbone:

- :func:`pretrain_supervised`: a ``small-cnn`` (images) or ``mlp`` (images or vectors) from random
  initialisation, or any registered backbone fine-tuned, trained on the source labels with the
  one training loop; the source classifier is kept with it (so LEEP / NCE can rank it).
- :func:`pretrain_unsupervised`: greedy layer-wise pre-training of a sigmoid ``mlp`` on unlabelled
  inputs, stacked denoising autoencoders or RBMs (:mod:`transferkit.pretraining.layerwise`).

Each entry's provenance records the data, its size, the settings, the time and — for supervised
pre-training — the accuracy on a stratified held-out share of the source that training never saw.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from .._progress import quiet_unless
from ..backbones import create_backbone
from ..backbones.native import NATIVE_ARCHS, build_native, native_cfg
from ..backbones.zoo import check_zoo_name, save_to_zoo, zoo_entry_folder
from ..errors import DataError, TransferkitError
from ..training import TrainConfig, TransferNetwork, predict_logits, train_network

__all__ = [
    "LAYERWISE_FINE_TUNING",
    "NATIVE_FINE_TUNING",
    "PretrainResult",
    "pretrain_supervised",
    "pretrain_unsupervised",
]

# How a small network trained here from random initialisation wants to be fine-tuned, stored with
# the entry (BackboneCfg.fine_tuning): every layer at the head's rate, not the 0.1x that protects
# ImageNet features; BatchNorm statistics re-estimated on the target rather than kept from the
# source; no flips, as in its pre-training; and 80 epochs, not the 15 sized for ImageNet backbones
# (at 10 images per class that is 30 steps). The recipe of BENCHMARKS.md's source pre-training
# section; its "Fine-tuning a zoo entry with its own defaults" measures it against the old defaults.
# The peak rate 1e-3 is finetune's own default, stored so that lp-ft uses it too instead of its 1e-4
# for ImageNet features: on a Fashion-MNIST network fine-tuned to mnist (k = 10, seeds 3-7, held-out
# mnist training images) lp-ft scored 0.842 at 1e-4 and 0.901 at 1e-3 (finetune 0.925).
NATIVE_FINE_TUNING: dict[str, Any] = {
    "body_lr_scale": 1.0,
    "batchnorm": "train",
    "hflip": False,
    "epochs": 80,
    "lr": 1e-3,
}
# How a layer-wise pre-trained sigmoid stack wants to be fine-tuned: 200 epochs (15 at 10 images per
# class are 60 steps) on the inputs it was pre-trained on, so no random crops. The recipe of
# BENCHMARKS.md's layer-wise section; the body keeps the strategies' rate factor, as measured there.
LAYERWISE_FINE_TUNING: dict[str, Any] = {"epochs": 200, "augment": False}


@dataclass
class PretrainResult:
    """A stored zoo entry and how it was made.

    Attributes
    ----------
    name : str
        ``zoo:NAME``, usable as ``backbone=`` anywhere.
    path : Path
        The entry's folder.
    backbone : Backbone
        The trained backbone (in memory).
    provenance : dict
        What was stored with it (data, settings, accuracy, time).
    """

    name: str
    path: Path
    backbone: Any
    provenance: dict[str, Any]


def _image_shape(X: np.ndarray, image_size: int | None) -> tuple[int, int, int]:
    channels = 1 if X.ndim == 3 else int(X.shape[-1])
    if channels == 4:
        channels = 3  # the preprocessor drops alpha
    if channels not in (1, 3):
        raise DataError(f"images must have 1, 3 or 4 channels; got shape {X.shape}")
    size = int(image_size or X.shape[1])
    return channels, size, size


def _modality(X: Any) -> str:
    from ..estimators import infer_modality

    return infer_modality(X)


def _check_name(name: str, overwrite: bool) -> None:
    check_zoo_name(name)  # the rule save_to_zoo applies, checked before training rather than after it
    folder = zoo_entry_folder(name)  # an entry an interrupted overwrite set aside counts as existing
    if not overwrite and folder.exists():
        raise TransferkitError(
            f"zoo entry {name!r} already exists at {str(folder)!r}; choose another name or overwrite it (--overwrite)"
        )


def _holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, held-out) indices; no held-out share when ``fraction`` is 0."""
    if fraction == 0:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    if not 0 < fraction < 1:
        raise TransferkitError(f"holdout must be a float in [0, 1); got {fraction!r}")
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    if counts.min() < 2:
        raise DataError(
            f"every class needs at least 2 examples to hold some out; one has {counts.min()}: use holdout=0 "
            "(--holdout 0)"
        )
    n_held = max(int(round(fraction * len(labels))), len(counts))
    if len(labels) - n_held < len(counts):  # a stratified split needs one training example of every class
        raise DataError(
            f"holdout {fraction:g} holds out {n_held} of the {len(labels)} source examples, leaving fewer than one "
            f"per class ({len(counts)}) to train on; hold out a smaller share or none (--holdout 0)"
        )
    train, held = train_test_split(np.arange(len(labels)), test_size=n_held, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(held)


def pretrain_supervised(
    X: Any,
    y: Any,
    name: str,
    *,
    arch: str = "small-cnn",
    hidden: tuple[int, ...] = (256, 128),
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    augment: bool = False,
    holdout: float = 0.1,
    data_name: str | None = None,
    random_state: int = 0,
    verbose: bool = True,
    overwrite: bool = False,
) -> PretrainResult:
    """Train a backbone on a labelled source task and store it as ``zoo:NAME``.

    Parameters
    ----------
    X : image array ``(N, H, W[, C])``, list of image paths or strings, or ``(N, D)`` array
        The source inputs.
    y : array-like of shape (N,)
        The source labels.
    name : str
        Zoo entry name (letters, digits, ``_ . -``).
    arch : str
        ``"small-cnn"`` (images), ``"mlp"`` (images or vectors), both from random initialisation,
        or a registered backbone name (fine-tuned whole on the source, e.g. ``efficientnet_lite0.in1k``).
    hidden : tuple of int
        ``mlp`` hidden widths.
    epochs, lr, batch_size : optional
        Training length, peak learning rate and batch; default 5 epochs at 3e-3 with 128 per batch
        for ``small-cnn`` / ``mlp``, the ``finetune`` strategy's settings for a backbone.
    image_size : int, optional
        Train (and store the entry) at this image size instead of the data's / backbone's.
    augment : bool
        Random crop (and flip) of images during training; off by default (flips change digits).
    holdout : float
        Stratified share of the source held out to measure the source accuracy (provenance).
    data_name : str, optional
        How the provenance names the data (a built-in name or a path).
    random_state : int
        Seed of the initialisation, the held-out split and training.
    verbose : bool
        Progress bars (on a terminal).
    overwrite : bool
        Replace an existing entry of that name.

    Returns
    -------
    PretrainResult
    """
    _check_name(name, overwrite)
    modality = _modality(X)
    inputs = X if isinstance(X, np.ndarray) else [str(item) for item in X]
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(inputs):
        raise DataError(f"y must be 1-D with one label per example; got shape {labels.shape} for {len(inputs)} inputs")
    classes, encoded = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"y has only one class ({classes[0]!r}); a source task needs at least two")
    native = arch in NATIVE_ARCHS
    if native:
        if modality == "text":
            raise TransferkitError(
                f"--arch {arch} reads images or vectors; for text fine-tune a text backbone "
                "(e.g. --arch minilm_l6.sentence)"
            )
        if modality == "image" and not isinstance(inputs, np.ndarray):
            raise DataError("small-cnn / mlp pre-training reads image arrays; load the folder into an array first")
        shape = dict(input_size=_image_shape(inputs, image_size)) if modality == "image" else {}
        if modality == "tabular":
            features = inputs.astype(np.float32)
            std = features.std(axis=0)
            shape = dict(
                in_features=features.shape[1],
                standardize=(features.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()),
            )
        cfg = native_cfg(arch, name=f"zoo:{name}", hidden=hidden, num_source_classes=len(classes), **shape)
        backbone = build_native(cfg, seed=random_state)
    else:
        from ..backbones import list_backbones

        if ":" not in str(arch) and arch not in list_backbones():
            from ..errors import did_you_mean

            raise did_you_mean("architecture", str(arch), [*NATIVE_ARCHS, *list_backbones()], hint="or zoo:/timm:/hf:")
        backbone = create_backbone(arch)
        if backbone.cfg.modality != modality:
            raise DataError(f"backbone {arch!r} reads {backbone.cfg.modality} but the source holds {modality} data")
    train_idx, held_idx = _holdout(encoded, float(holdout), int(random_state))
    from ..data._dataset import take
    from ..strategies import get_strategy

    # The strategy's own rate factor by modality (0.1 for images), not the one a zoo entry stores for
    # fine-tuning it later: pre-training from random initialisation with the body at the full rate made
    # the source networks transfer worse (Fashion-MNIST -> mnist, same fine-tuning recipe, 3 seeds:
    # 0.778 against 0.840 at k = 5, 0.900 against 0.918 at k = 10).
    body_lr_scale = get_strategy("finetune").body_scale(modality)
    strategy = get_strategy("finetune", body_lr_scale=body_lr_scale)
    config = TrainConfig(seed=int(random_state)).replace(**strategy.train_defaults(modality))
    if native:  # from random initialisation: larger steps, and BatchNorm must learn its statistics
        config = config.replace(epochs=5, lr=3e-3, batch_size=128, batchnorm="train", warmup_epochs=0.5)
    config = config.replace(epochs=epochs, lr=lr, batch_size=batch_size, augment=augment, hflip=False).validate()
    network = TransferNetwork(backbone, len(classes))
    preprocess = backbone.preprocessor(image_size if not native else None)
    started = time.perf_counter()
    with quiet_unless(verbose):
        result = train_network(
            network,
            strategy,
            take(inputs, train_idx),
            encoded[train_idx],
            config=config,
            preprocess=preprocess,
            modality=modality,
            desc=f"pretraining {name}",
        )
        accuracy = None
        if len(held_idx):
            logits = predict_logits(network, take(inputs, held_idx), preprocess, desc="held-out source")
            accuracy = float((logits.argmax(1).numpy() == encoded[held_idx]).mean())
    _keep_source_head(backbone, network, image_size)
    if native:  # how later fine-tuning should treat it, stored with it
        backbone.cfg = dataclasses.replace(backbone.cfg, fine_tuning=dict(NATIVE_FINE_TUNING))
    provenance = {
        "method": "supervised",
        "arch": arch,
        "data": data_name or "arrays",
        "modality": modality,
        "n_train": int(len(train_idx)),
        "n_holdout": int(len(held_idx)),
        "classes": [str(c) for c in classes],
        "accuracy": accuracy,
        "accuracy_on": f"stratified held-out {100 * holdout:g}% of the source (seed {random_state})",
        "training": config.to_dict(),
        "body_lr_scale": body_lr_scale,
        "epochs": config.epochs,
        "loss_per_epoch": [round(float(epoch["loss"]), 5) for epoch in result.history],
        "image_size": image_size,
        "seconds": round(time.perf_counter() - started, 1),
        "seed": int(random_state),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "transferkit": __version__,
    }
    if not native:
        provenance["from_backbone"] = {"name": arch, "sha256": backbone.cfg.sha256}
    path = save_to_zoo(backbone, name, provenance=provenance, overwrite=overwrite)
    return PretrainResult(f"zoo:{name}", path, backbone.eval(), provenance)


def _keep_source_head(backbone: Any, network: TransferNetwork, image_size: int | None) -> None:
    """Put the trained head where the backbone keeps its source classifier (none for text encoders)."""
    from ..backbones.native import NativeBackbone
    from ..backbones.vision import TimmBackbone

    weight, bias = network.head.weight.detach(), network.head.bias.detach()  # (K, D), (K,)
    if isinstance(backbone, NativeBackbone):
        with torch.no_grad():
            backbone.classifier.weight.copy_(weight)
            backbone.classifier.bias.copy_(bias)
    elif isinstance(backbone, TimmBackbone):
        backbone.model.reset_classifier(weight.shape[0])
        with torch.no_grad():
            backbone.model.get_classifier().weight.copy_(weight)
            backbone.model.get_classifier().bias.copy_(bias)
        if image_size:  # the entry's native size is the one it was trained at
            channels = backbone.cfg.input_size[0]
            backbone.cfg = dataclasses.replace(backbone.cfg, input_size=(channels, int(image_size), int(image_size)))


def _check_finite(X: np.ndarray) -> None:
    """Refuse NaN or infinite inputs before the source statistics spread them over whole columns."""
    if X.dtype.kind in "fc" and not np.isfinite(X).all():
        raise DataError(f"X has {int((~np.isfinite(X)).sum())} NaN or infinite values; expected finite values")


def _check_unit_pixels(X: np.ndarray) -> None:
    """Images other than uint8 must already be pixels in [0, 1].

    The stack is trained on the pixels clamped to [0, 1] (resizing may overshoot by a rounding
    error) but fine-tuned on them unclamped: 0-255 or 0-16 floats would be trained on as nearly
    binary images and then read as something else, without a word.
    """
    if X.dtype == np.uint8 or X.size == 0:
        return
    low, high = float(X.min()), float(X.max())
    if low < 0 or high > 1:
        raise DataError(
            f"X holds images with values in [{low:g}, {high:g}] (dtype {X.dtype}); layer-wise pre-training reads "
            "pixels as uint8 (0-255) or as floats in [0, 1]: scale them first (e.g. X / 255 for 0-255 pixels)"
        )


def _unit_interval(backbone: Any, inputs: np.ndarray) -> torch.Tensor:
    """The inputs as the backbone reads them, flattened: ``(N, D)`` in [0, 1]."""
    preprocess = backbone.preprocessor()
    chunks = [preprocess(inputs[start : start + 4096]).flatten(1) for start in range(0, len(inputs), 4096)]
    return torch.cat(chunks)  # (N, D)


def pretrain_unsupervised(
    X: np.ndarray,
    name: str,
    config: Any = None,
    *,
    image_size: int | None = None,
    data_name: str | None = None,
    random_state: int = 0,
    verbose: bool = True,
    overwrite: bool = False,
) -> PretrainResult:
    """Greedy layer-wise pre-training of a sigmoid MLP on unlabelled inputs, stored as ``zoo:NAME``.

    Parameters
    ----------
    X : image array ``(N, H, W[, C])`` or ``(N, D)`` array
        Unlabelled source inputs. Images are read as pixels in [0, 1]; vectors are scaled to
        [0, 1] with the source's per-feature minimum and range (kept in the entry).
    name : str
        Zoo entry name.
    config : LayerwiseConfig or dict, optional
        Method (``"ae"`` / ``"rbm"``), layer widths, epochs, ... (see
        :class:`transferkit.pretraining.layerwise.LayerwiseConfig`).
    image_size : int, optional
        Resize images to this first (the MLP then reads exactly this size).
    data_name : str, optional
        How the provenance names the data.
    random_state : int
    verbose : bool
    overwrite : bool

    Returns
    -------
    PretrainResult
    """
    from .layerwise import LayerwiseConfig, pretrain_layerwise

    _check_name(name, overwrite)
    if config is None:
        config = LayerwiseConfig()
    elif isinstance(config, dict):
        config = LayerwiseConfig.from_dict(config)
    elif not isinstance(config, LayerwiseConfig):
        raise TransferkitError(f"config must be a LayerwiseConfig, a dict of its settings or None; got {config!r}")
    config.validate()
    modality = _modality(X)
    if modality not in ("image", "tabular") or not isinstance(X, np.ndarray):
        got = "image paths (load them into an array first)" if modality == "image" else f"{modality} data"
        raise DataError(f"layer-wise pre-training reads image arrays or (N, D) feature arrays; got {got}")
    _check_finite(X)
    if modality == "image":
        _check_unit_pixels(X)
        shape: dict[str, Any] = dict(input_size=_image_shape(X, image_size))
    else:
        features = X.astype(np.float32)
        low, span = features.min(axis=0), np.ptp(features, axis=0)
        shape = dict(in_features=features.shape[1], standardize=(low.tolist(), np.where(span > 0, span, 1.0).tolist()))
    cfg = native_cfg(
        "mlp", name=f"zoo:{name}", hidden=tuple(config.layers), activation="sigmoid", num_source_classes=0, **shape
    )
    cfg = dataclasses.replace(cfg, fine_tuning=dict(LAYERWISE_FINE_TUNING))  # only read when it is fine-tuned
    backbone = build_native(cfg, seed=random_state)
    started = time.perf_counter()
    with torch.no_grad():
        unit = _unit_interval(backbone, X).clamp_(0.0, 1.0)  # (N, D)
    with quiet_unless(verbose):
        result = pretrain_layerwise(unit.numpy(), config, random_state=random_state, verbose=verbose)
    with torch.no_grad():
        for stage, layer in zip(backbone.stages.values(), result.layers):
            stage[0].weight.copy_(layer.weight)
            stage[0].bias.copy_(layer.bias)
    provenance = {
        "method": f"layerwise-{config.method}",
        "arch": "mlp",
        "data": data_name or "arrays",
        "modality": modality,
        "n_train": int(len(X)),
        "labels_used": 0,
        "layerwise": config.to_dict(),
        "history": result.history,
        "image_size": image_size,
        "seconds": round(time.perf_counter() - started, 1),
        "seed": int(random_state),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "transferkit": __version__,
    }
    path = save_to_zoo(backbone, name, provenance=provenance, overwrite=overwrite)
    return PretrainResult(f"zoo:{name}", path, backbone.eval(), provenance)
