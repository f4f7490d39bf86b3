"""The one training loop: every trainable method (fine-tuning strategies now, adaptation later) runs here.

Read top to bottom: split off validation → preprocess → strategy.prepare/apply → optimiser
and schedule → (resume) → epochs of shuffled, augmented batches → validate → checkpoint.

Determinism: the data order, augmentation and dropout of epoch ``e`` are drawn from
generators seeded by ``(seed, e)``, and model, optimiser and scheduler states are restored
exactly on resume, so a run killed at any point and resumed ends with bitwise the same
weights as an uninterrupted one (on CPU, same thread count).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._progress import progress, progress_enabled
from ..data._dataset import take
from ..errors import DataError, TransferkitError
from .augment import random_resized_crop
from .checkpoint import CHECKPOINT_INDEX, load_checkpoint, restore_rng, save_checkpoint
from .config import TrainConfig

__all__ = ["TrainResult", "train_network", "predict_logits", "set_train_mode", "validation_split"]

Preprocess = Callable[[Any], Any]
ExtraLoss = Callable[[nn.Module, Any, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainResult:
    """What happened in :func:`train_network`.

    Attributes
    ----------
    history : list of dict
        Per epoch: ``epoch``, ``loss``, ``val_accuracy`` (or None), ``lr``, ``seconds``.
    best_epoch : int or None
        Epoch whose weights were kept when early stopping is on.
    seconds : float
        Wall time of this call.
    resumed_from : int or None
        Last completed epoch found in the checkpoint folder, if the run resumed.
    stopped_early : bool
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    resumed_from: int | None = None
    stopped_early: bool = False


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) indices of the *labelled training* examples.

    Every class keeps at least one training example; classes with one example go to training.

    Parameters
    ----------
    labels : ndarray, shape (N,)
    fraction : float
        Share of each class held out, rounded per class.
    seed : int
        Seed of the draw.

    Returns
    -------
    train, validation : ndarray of int64
        Sorted indices into ``labels``; ``validation`` is empty when ``fraction`` is 0.

    Raises
    ------
    DataError
        When ``fraction > 0`` but no class is large enough to give a validation example.
    """
    rng = np.random.default_rng(seed + 7919)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = min(int(round(fraction * len(members))), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    if fraction > 0 and not val:
        raise DataError(f"val_fraction={fraction} leaves no validation examples; use more labels or a larger fraction")
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))


def set_train_mode(network: nn.Module, batchnorm: str) -> None:
    """``network.train()``, except BatchNorm layers that should keep their running statistics.

    A BatchNorm layer stays in inference mode when ``batchnorm == "eval"`` or when none of
    its parameters train (a frozen group must come out of training bitwise unchanged).

    Parameters
    ----------
    network : torch.nn.Module
        Switched in place.
    batchnorm : {"eval", "train"}
        ``"eval"``: every BatchNorm layer keeps its running statistics; ``"train"``: those with a
        trainable parameter update them.
    """
    network.train()
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            frozen = not any(p.requires_grad for p in module.parameters())
            if batchnorm == "eval" or frozen:
                module.eval()


def _lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        rise = max(1, int(0.3 * total))

        def onecycle(step: int) -> float:
            if step < rise:
                return 0.04 + 0.96 * step / rise
            return 0.5 * (1 + math.cos(math.pi * (step - rise) / max(1, total - rise)))

        return onecycle
    warmup = min(total - 1, int(round(config.warmup_epochs * steps_per_epoch)))

    def warm_then(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return warm_then


def _optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    param_groups = [
        {
            "params": group["params"],
            "lr": config.lr * group["lr_scale"],
            "weight_decay": group.get("weight_decay", config.weight_decay),
            "name": group["name"],
        }
        for group in groups
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(param_groups, lr=config.lr)


def _fingerprint(strategy: Any, config: TrainConfig, labels: np.ndarray, extra: dict[str, Any]) -> str:
    identity = {
        "strategy": strategy.to_dict(),
        "config": config.to_dict(),
        "labels": hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest(),
        **extra,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def predict_logits(
    network: nn.Module, inputs: Any, preprocess: Preprocess, batch_size: int = 64, desc: str = "predicting"
) -> torch.Tensor:
    """Logits ``(N, K)`` of ``network`` in inference mode, batch by batch.

    ``inputs`` are raw (preprocessed per batch) or, for images, an already preprocessed
    ``(N, C, H, W)`` tensor (``preprocess=None``).

    Parameters
    ----------
    network : torch.nn.Module
        Left in inference mode (``eval()``) afterwards.
    inputs : array, list or tensor
        Anything sliceable with ``len``.
    preprocess : callable or None
        Applied to each batch slice; ``None`` passes the slices as they are.
    batch_size : int, default=64
    desc : str, default="predicting"
        Label of the progress bar.

    Returns
    -------
    torch.Tensor of float32, shape (N, K)
        Computed without gradients; an empty ``(0,)`` tensor when ``inputs`` is empty.
    """
    network.eval()
    outputs = []
    starts = range(0, len(inputs), batch_size)
    with torch.no_grad():
        for start in progress(starts, total=len(starts), desc=desc, unit="batch"):
            batch = inputs[start : start + batch_size]
            x = batch if preprocess is None else preprocess(batch)
            outputs.append(network(x).float())
    return torch.cat(outputs) if outputs else torch.empty(0)


def _check_resumable(found: dict[str, Any], index: str, epochs: int, steps_per_epoch: int) -> tuple[list, dict]:
    """The checkpoint's (history, best) when they agree with its epoch and this run; else a TransferkitError.

    A matching fingerprint promises the same run, so a disagreement here can only be damage.
    """
    if found["epoch"] >= epochs:
        raise TransferkitError(
            f"checkpoint {index!r} says epoch {found['epoch'] + 1} is done, but this run has "
            f"{epochs} epochs; the checkpoint is damaged: choose an empty folder to start again"
        )
    history, best = found["meta"].get("history"), found["meta"].get("best")
    consistent = (
        isinstance(history, list)
        and len(history) == found["epoch"] + 1
        and all(isinstance(entry, dict) for entry in history)
        and isinstance(best, dict)
        and set(best) == {"accuracy", "epoch"}
        and isinstance(best["accuracy"], (int, float))
        and (best["epoch"] is None or isinstance(best["epoch"], int))
        and found["scheduler_state"].get("last_epoch") == (found["epoch"] + 1) * steps_per_epoch
    )
    if not consistent:
        raise TransferkitError(
            f"checkpoint {index!r} is damaged: its history, best epoch or schedule position do not match "
            f"epoch {found['epoch'] + 1} of this run; choose an empty folder to start again"
        )
    return history, best


def train_network(
    network: nn.Module,
    strategy: Any,
    inputs: Any,
    labels: np.ndarray,
    *,
    config: TrainConfig,
    preprocess: Preprocess,
    modality: str,
    context_features: Callable[[np.ndarray], np.ndarray] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    extra_loss: ExtraLoss | None = None,
    target_inputs: Any | None = None,
    adaptation: nn.Module | None = None,
    adaptation_weight: float = 1.0,
    fingerprint_extra: dict[str, Any] | None = None,
    prototypes: np.ndarray | None = None,
    desc: str = "training",
) -> TrainResult:
    """Train ``network`` on labelled examples the way ``strategy`` says.

    Parameters
    ----------
    network : TransferNetwork
        Backbone + head; trained in place.
    strategy : FineTuneStrategy
        Which groups train, their rates, their penalty (see :mod:`transferkit.strategies.finetune`).
    inputs : array or list
        Raw training inputs (images ``(N, H, W[, C])`` / paths / texts).
    labels : ndarray of int, shape (N,)
        Class indices ``0 .. K-1``.
    config : TrainConfig
    preprocess : callable
        The backbone's preprocessor (raw batch → tensor or dict of tensors).
    modality : str
        ``"image"`` turns augmentation on by default and preprocesses all images once.
    context_features : callable, optional
        ``indices -> (n, D)`` frozen features of those training examples (cached); strategies
        that fit a probe first (LP-FT) need it.
    checkpoint_dir : path, optional
        Write a checkpoint after every epoch here.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` (from scratch, with a warning, if there is none).
    extra_loss : callable, optional
        ``(network, x, logits, y) -> loss`` added at every step.
    target_inputs : array or list, optional
        Unlabelled target-domain inputs (raw, like ``inputs``) for domain adaptation: every step
        draws a target batch as large as the source batch (with replacement).
    adaptation : nn.Module, optional
        An adaptation loss (:mod:`transferkit.adaptation.losses`) called with the source and
        target features and logits; its own parameters (a domain discriminator) train with the
        network. Needs ``target_inputs``.
    adaptation_weight : float
        Trade-off of the adaptation loss; ``0`` trains exactly as without adaptation.
    fingerprint_extra : dict, optional
        More identity of the run (backbone, data) that a resumed checkpoint must match.
    prototypes : ndarray (K, D), optional
        Embedded label descriptions, handed to the strategy (LP-FT starts from the prior head).

    Returns
    -------
    TrainResult
    """
    from ..strategies.finetune import TrainContext

    started = time.perf_counter()
    config = config.validate()
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = int(network.head.out_features)
    train_idx, val_idx = validation_split(labels, config.val_fraction, config.seed)
    augment = config.augment if config.augment is not None else modality == "image"
    adapting = adaptation is not None and adaptation_weight > 0
    if adapting and (target_inputs is None or len(target_inputs) == 0):
        raise DataError("domain adaptation needs unlabelled target inputs (X_target); got none")
    if modality == "image":  # resize + normalise every image once; augmentation works on tensors
        inputs = _preprocess_all(inputs, preprocess)
        if adapting:
            target_inputs = _preprocess_all(target_inputs, preprocess)
        batch_input: Preprocess | None = None
    else:
        batch_input = preprocess
    y_all = torch.as_tensor(labels)

    torch.manual_seed(config.seed)
    network.head.reset_parameters()  # the new head's start depends on the seed alone
    context = TrainContext(
        features=(lambda: context_features(train_idx)) if context_features is not None else _no_features,
        labels=labels[train_idx],
        n_classes=n_classes,
        modality=modality,
        prototypes=prototypes,
    )
    strategy.prepare(network, context)
    groups = strategy.apply(network)
    if adapting and any(True for _ in adaptation.parameters()):
        groups.append({"name": "adaptation", "params": list(adaptation.parameters()), "lr_scale": 1.0})
    optimizer = _optimizer(groups, config)
    steps_per_epoch = math.ceil(len(train_idx) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config, steps_per_epoch))

    result = TrainResult()
    best = {"accuracy": -1.0, "epoch": None, "state": None}
    fingerprint = _fingerprint(strategy, config, labels, fingerprint_extra or {})
    start_epoch = 0
    if checkpoint_dir is not None:
        found = load_checkpoint(checkpoint_dir)
        if found is None and resume:  # a restart script may always pass resume=True: say so, do not fail
            warnings.warn(
                f"resume=True but {str(checkpoint_dir)!r} holds no checkpoint yet: training from the first epoch",
                stacklevel=2,
            )
        if found is not None and not resume:
            raise TransferkitError(
                f"{str(checkpoint_dir)!r} already holds a checkpoint (epoch {found['epoch'] + 1}); "
                "resume it (--resume) or choose an empty folder"
            )
        if found is not None:
            if found["meta"].get("fingerprint") != fingerprint:
                raise TransferkitError(
                    f"the checkpoint in {str(checkpoint_dir)!r} was written by a different run (other data, "
                    "strategy or settings); resume with the same command, or choose an empty folder"
                )
            index = str(Path(checkpoint_dir) / CHECKPOINT_INDEX)
            history, best_meta = _check_resumable(found, index, config.epochs, steps_per_epoch)
            try:
                model_state = found["model_state"]
                if adapting:
                    adaptation.load_state_dict(_split_prefixed(model_state, _ADAPTATION_PREFIX))
                network.load_state_dict(model_state)
                optimizer.load_state_dict(found["optimizer_state"])
                scheduler.load_state_dict(found["scheduler_state"])
                restore_rng(found["rng_tensors"], found["rng_meta"])
            except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as error:
                # tensors or states that do not fit the network a matching fingerprint promised
                detail = " ".join(str(error).split())[:200]
                raise TransferkitError(
                    f"checkpoint {index!r} does not fit this run ({detail}); it is damaged: choose an empty "
                    "folder to start again"
                ) from None
            result.history = history
            result.resumed_from = found["epoch"]
            best.update(best_meta)
            if found["extra_tensors"]:
                best["state"] = found["extra_tensors"]
            start_epoch = found["epoch"] + 1

    show = progress_enabled()
    patience_left = config.patience
    for epoch in range(start_epoch, config.epochs):
        epoch_started = time.perf_counter()
        strategy.on_epoch(epoch, network)
        set_train_mode(network, config.batchnorm)
        if adapting:
            adaptation.train()
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        torch.manual_seed(config.seed * 1_000_003 + epoch + 1)  # dropout
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total_loss, seen = 0.0, 0
        batches = range(0, len(order), config.batch_size)
        bar = _bar(len(batches), f"{desc} {epoch + 1}/{config.epochs}") if show else None
        for step, start in enumerate(batches):
            index = order[start : start + config.batch_size]
            x = _batch(inputs, index, batch_input, augment, generator, config)
            y = y_all[index]  # (B,)
            adaptation_loss = None
            if adapting:
                target_index = torch.randint(len(target_inputs), (len(index),), generator=generator).numpy()
                x_t = _batch(target_inputs, target_index, batch_input, augment, generator, config)
                progress_fraction = (epoch * steps_per_epoch + step) / (config.epochs * steps_per_epoch)
                logits, adaptation_loss = _adaptation_step(network, adaptation, x, x_t, progress_fraction)
            else:
                logits = network(x)  # (B, K)
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            if adaptation_loss is not None:
                loss = loss + adaptation_weight * adaptation_loss
            penalty = strategy.penalty(network)
            if penalty is not None:
                loss = loss + penalty
            if extra_loss is not None:
                loss = loss + extra_loss(network, x, logits, y)
            if not torch.isfinite(loss):
                raise TransferkitError(
                    f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower the learning rate "
                    f"(now {config.lr})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                trainable = [p for p in network.parameters() if p.grad is not None]
                nn.utils.clip_grad_norm_(trainable, config.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(index)
            seen += len(index)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / seen:.3f}", refresh=False)
        val_accuracy = None
        if len(val_idx):
            logits = predict_logits(network, take(inputs, val_idx), batch_input, desc="validating")
            val_accuracy = float((logits.argmax(1).numpy() == labels[val_idx]).mean())
        if bar is not None:
            bar.set_postfix(loss=f"{total_loss / max(seen, 1):.3f}", val=val_accuracy)
            bar.close()
        result.history.append(
            {
                "epoch": epoch,
                "loss": total_loss / max(seen, 1),
                "val_accuracy": val_accuracy,
                "lr": optimizer.param_groups[-1]["lr"],
                "seconds": time.perf_counter() - epoch_started,
            }
        )
        stop = False
        if config.patience is not None and val_accuracy is not None:
            if val_accuracy > best["accuracy"]:
                best.update(accuracy=val_accuracy, epoch=epoch, state=_copy_state(network))
                patience_left = config.patience
            else:
                patience_left -= 1
                stop = patience_left <= 0
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir,
                epoch=epoch,
                model_state=_with_adaptation(network, adaptation if adapting else None),
                optimizer_state=optimizer.state_dict(),
                scheduler_state=_json_safe(scheduler.state_dict()),
                extra_tensors=best["state"],
                meta={
                    "fingerprint": fingerprint,
                    "history": result.history,
                    "best": {"accuracy": best["accuracy"], "epoch": best["epoch"]},
                },
            )
        if stop:
            result.stopped_early = True
            break
    if config.patience is not None and best["state"] is not None:
        network.load_state_dict(best["state"])
        result.best_epoch = best["epoch"]
    network.eval()
    result.seconds = time.perf_counter() - started
    return result


_ADAPTATION_PREFIX = "__adaptation__."


def _preprocess_all(inputs: Any, preprocess: Preprocess) -> torch.Tensor:
    """Every image resized and normalised once, ``(N, C, S, S)``."""
    chunks = np.array_split(np.arange(len(inputs)), max(1, len(inputs) // 256))
    return torch.cat([preprocess(take(inputs, chunk)) for chunk in chunks])


def _batch(
    inputs: Any,
    index: np.ndarray,
    batch_input: Preprocess | None,
    augment: bool,
    generator: torch.Generator,
    config: TrainConfig,
) -> Any:
    """The network input of the examples at ``index``: preprocessed images (augmented) or a raw batch."""
    if batch_input is not None:
        return batch_input(take(inputs, index))
    x = inputs[index]  # (B, C, S, S)
    if augment:
        x = random_resized_crop(x, generator, scale=config.crop_scale, hflip=config.hflip)
    return x


def _adaptation_step(
    network: nn.Module, adaptation: nn.Module, x_s: Any, x_t: Any, progress_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source logits ``(B, K)`` and the adaptation loss of one source and one target batch.

    Tensor batches go through the network together, so BatchNorm layers see both domains in
    one batch (as in the papers' code); token batches, which pad differently, go one by one.
    """
    if isinstance(x_s, torch.Tensor):
        features = network.features(torch.cat([x_s, x_t]))  # (2B, D)
        f_s, f_t = features[: len(x_s)], features[len(x_s) :]
    else:
        f_s, f_t = network.features(x_s), network.features(x_t)  # (B, D) each
    logits_s, logits_t = network.head(f_s), network.head(f_t)  # (B, K) each
    return logits_s, adaptation(f_s, f_t, logits_s, logits_t, progress=progress_fraction)["loss"]


def _with_adaptation(network: nn.Module, adaptation: nn.Module | None) -> dict[str, torch.Tensor]:
    state = network.state_dict()
    if adaptation is not None:
        state.update({_ADAPTATION_PREFIX + k: v for k, v in adaptation.state_dict().items()})
    return state


def _split_prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove and return the entries of ``state`` whose keys start with ``prefix`` (prefix dropped)."""
    keys = [k for k in state if k.startswith(prefix)]
    return {k[len(prefix) :]: state.pop(k) for k in keys}


def _no_features() -> np.ndarray:
    raise TransferkitError("this strategy needs frozen features of the training data, but none were provided")


def _copy_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def _json_safe(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, default=lambda value: None))


def _bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)
