"""Fine-tuning strategies: which layer groups train, at what rate, with what penalty.

Each is a small frozen dataclass (after PEFT's configs). None owns a training loop: the
one loop in :mod:`transferkit.training` calls, in order,

- :meth:`FineTuneStrategy.prepare` once, before training (fit a probe head, remember w⁰, …);
- :meth:`FineTuneStrategy.apply` once: sets ``requires_grad`` and returns parameter groups
  with their learning-rate scale;
- :meth:`FineTuneStrategy.on_epoch` at the start of every epoch (gradual unfreezing);
- :meth:`FineTuneStrategy.penalty` at every step (L2-SP), added to the loss.

Groups are the network's ``layer_groups()``: the backbone's, shallow → deep, then ``head``.
BatchNorm layers of groups that do not train stay in inference mode (the loop sees to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..backbones._config import fine_tuning_defaults
from ..errors import TransferkitError, did_you_mean
from ._base import Strategy, register_strategy

if TYPE_CHECKING:
    from ..training.network import TransferNetwork

__all__ = ["FineTuneStrategy", "FineTune", "Freeze", "LPFT", "GradualUnfreeze", "L2SP", "TrainContext"]


@dataclass
class TrainContext:
    """What :meth:`FineTuneStrategy.prepare` may use: the labelled training data only.

    Attributes
    ----------
    features : callable
        Returns the frozen backbone's features of the training examples, ``(N, D)`` (cached).
    labels : ndarray of int, shape (N,)
    n_classes : int
    modality : str
    prototypes : ndarray of shape (K, D), optional
        Embedded label descriptions (text), for strategies that start from a probe.
    """

    features: Any
    labels: np.ndarray
    n_classes: int
    modality: str
    prototypes: np.ndarray | None = None


def _params(modules: list[nn.Module]) -> list[nn.Parameter]:
    return [p for m in modules for p in m.parameters()]


def _set_trainable(modules: list[nn.Module], trainable: bool) -> None:
    for param in _params(modules):
        param.requires_grad_(trainable)


@dataclass(frozen=True)
class FineTuneStrategy(Strategy):
    """Base of the strategies that train the network (not registered itself).

    Parameters
    ----------
    lr_decay : float
        Discriminative learning rates: the head trains at the full rate, the deepest backbone
        group at ``lr_decay`` times it, the next at ``lr_decay**2`` … (ULMFiT's and fastai's
        per-layer rates). ``1`` gives every group the same rate.
    body_lr_scale : float or None
        Extra factor on every backbone group's rate (a new head usually wants a larger rate
        than pre-trained weights). ``None``: the backbone's own preference if its config has one
        (``BackboneCfg.fine_tuning``, e.g. 1 for the small networks ``transferkit pretrain``
        trains), else 0.1 for image backbones and 0.01 for text ones (the text head sits on
        L2-normalised features and needs a high rate; the transformer a low one).
    """

    trains: ClassVar[bool] = True
    lr_decay: float = 1.0
    body_lr_scale: float | None = None

    def body_scale(self, modality: str, preferred: float | None = None) -> float:
        """The backbone's rate factor: this strategy's, else the backbone's ``preferred``, else by ``modality``.

        Parameters
        ----------
        modality : str
            The backbone's modality: ``"text"`` gives 0.01 by default, anything else 0.1.
        preferred : float, optional
            The backbone config's own factor (``BackboneCfg.fine_tuning``), if it has one.

        Returns
        -------
        float
            ``body_lr_scale`` if set, else ``preferred`` if given, else the modality's default.
        """
        if self.body_lr_scale is not None:
            return float(self.body_lr_scale)
        if preferred is not None:
            return float(preferred)
        return 0.01 if modality == "text" else 0.1

    def validate(self) -> None:
        """Raise :class:`TransferkitError` on a bad setting."""
        for name in ("lr_decay", "body_lr_scale"):
            value = getattr(self, name)
            if value is None and name == "body_lr_scale":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise TransferkitError(
                    f"The {name!r} parameter of {self.name} must be a float in (0, 1]. Got {value!r} instead."
                )

    def train_defaults(self, modality: str) -> dict[str, Any]:
        """Training settings this strategy prefers for ``modality`` (the user's settings win)."""
        if modality == "text":  # measured on Yelp k=8: lr 1e-3 / 10 epochs left the head untrained
            return {"lr": 5e-3, "epochs": 20, "batch_size": 16, "weight_decay": 0.01}
        return {"lr": 1e-3, "epochs": 15, "batch_size": 32, "weight_decay": 0.01}

    # -- hooks the training loop calls ---------------------------------------------------
    def prepare(self, network: TransferNetwork, context: TrainContext) -> None:
        """Set-up before training; by default nothing.

        Parameters
        ----------
        network : TransferNetwork
            The network about to train (new head, pre-trained backbone).
        context : TrainContext
            The labelled training data, for strategies that fit something first.
        """

    def trainable_groups(self, names: list[str]) -> set[str]:
        """Names of the groups that train from the first epoch."""
        return set(names)

    def apply(self, network: TransferNetwork) -> list[dict[str, Any]]:
        """Set ``requires_grad`` per group and return optimiser parameter groups.

        Returns
        -------
        list of dict
            One per layer group: ``{"name", "params", "lr_scale"}`` (and ``"weight_decay"`` where
            the strategy overrides it). Frozen groups are included with ``requires_grad`` off, so
            that a strategy can unfreeze them later without rebuilding the optimiser.
        """
        groups = network.layer_groups()
        names = [name for name, _ in groups]
        trainable = self.trainable_groups(names)
        depth = len(groups) - 1  # the head is last, at distance 0
        cfg = network.backbone.cfg
        body = self.body_scale(cfg.modality, fine_tuning_defaults(cfg)[1])
        param_groups = []
        for position, (name, modules) in enumerate(groups):
            _set_trainable(modules, name in trainable)
            scale = 1.0 if name == "head" else body * self.lr_decay ** (depth - position)
            param_groups.append({"name": name, "params": _params(modules), "lr_scale": scale})
        return [g for g in param_groups if g["params"]]

    def on_epoch(self, epoch: int, network: TransferNetwork) -> None:
        """Called at the start of every epoch (0-based); by default nothing.

        Parameters
        ----------
        epoch : int
            The epoch about to run, from 0 (a resumed run starts at the epoch after its checkpoint).
        network : TransferNetwork
            The network being trained.
        """

    def penalty(self, network: TransferNetwork) -> torch.Tensor | None:
        """A regulariser added to the loss at every step; by default none."""
        return None


@register_strategy
@dataclass(frozen=True)
class FineTune(FineTuneStrategy):
    """A new head on the backbone; every layer trains."""

    name = "finetune"


@register_strategy
@dataclass(frozen=True)
class Freeze(FineTuneStrategy):
    """Keep the first layer groups frozen (generic features); train the rest and a new head.

    Parameters
    ----------
    freeze_until : str or int or None
        A group name (that group and every one before it stay frozen), or a count of groups
        from the input. ``None`` freezes the first half of the backbone's groups.
    """

    name = "freeze"
    freeze_until: str | int | None = None

    def frozen_names(self, names: list[str]) -> list[str]:
        """The frozen group names, given every group's name (the head last)."""
        body = [n for n in names if n != "head"]
        if self.freeze_until is None:
            return body[: len(body) // 2]
        if isinstance(self.freeze_until, bool):
            raise TransferkitError(f"freeze_until must be a group name or a count. Got {self.freeze_until!r} instead.")
        if isinstance(self.freeze_until, int) or str(self.freeze_until).isdigit():
            count = int(self.freeze_until)
            if not 0 <= count <= len(body):
                raise TransferkitError(
                    f"The 'freeze_until' parameter of freeze must be a count in [0, {len(body)}] or a group name "
                    f"({', '.join(body)}). Got {self.freeze_until!r} instead."
                )
            return body[:count]
        if self.freeze_until not in body:
            raise did_you_mean("layer group", str(self.freeze_until), body, hint=f"the groups are {', '.join(body)}")
        return body[: body.index(self.freeze_until) + 1]

    def trainable_groups(self, names: list[str]) -> set[str]:
        return set(names) - set(self.frozen_names(names))


def _probe_head(context: TrainContext, normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit a linear probe on frozen features; return it as ``(K, D)`` weights and ``(K,)`` bias.

    With label-description prototypes and L2-normalised features (``normalized``), the probe
    is the description-prior head, whose cosine term is then linear: ``α·s·cos(x, p) = α·s·p·x``.
    """
    from .linear_probe import ProbeHead

    features = context.features()  # (N, D)
    if context.prototypes is not None and normalized:
        from .label_prior import DescriptionPriorHead

        prior = DescriptionPriorHead().fit(features, context.labels, context.prototypes)
        coef = prior.coef_ + prior.alpha_ * prior.scale * prior.prototypes_  # (K, D)
        return torch.as_tensor(coef, dtype=torch.float32), torch.as_tensor(prior.intercept_, dtype=torch.float32)
    probe = ProbeHead().fit(features, context.labels)
    coef, intercept = probe.coef_, probe.intercept_  # (K or 1, D), (K or 1,)
    if coef.shape[0] == 1:  # binary: softmax over (-s/2, s/2) equals sigmoid(s)
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    return torch.as_tensor(coef, dtype=torch.float32), torch.as_tensor(intercept, dtype=torch.float32)


@register_strategy
@dataclass(frozen=True)
class LPFT(FineTuneStrategy):
    """Linear probe first, then fine-tune everything from that head.

    Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
    Out-of-Distribution", ICLR 2022: starting from a fitted head, the first gradient steps
    no longer tear the features apart to fix a random head. The fine-tuning stage uses a
    smaller rate than plain fine-tuning. With label descriptions (text), the probe is the
    description-prior head.
    """

    name = "lp-ft"
    body_lr_scale: float = 1.0

    def train_defaults(self, modality: str) -> dict[str, Any]:
        defaults = super().train_defaults(modality)
        defaults["lr"] = 1e-4 if modality == "image" else 5e-5
        return defaults

    def prepare(self, network: TransferNetwork, context: TrainContext) -> None:
        """Fit a linear probe on the frozen features and copy it into ``network``'s head.

        Parameters
        ----------
        network : TransferNetwork
            Its head is overwritten.
        context : TrainContext
            ``features()`` and ``labels`` fit the probe; with ``prototypes`` and a backbone with
            L2-normalised features, it is the description-prior head.
        """
        network.set_head(*_probe_head(context, normalized=bool(network.backbone.cfg.normalize)))


@register_strategy
@dataclass(frozen=True)
class GradualUnfreeze(FineTuneStrategy):
    """Train the head alone, then unfreeze one more group per epoch from the top.

    Howard & Ruder, "Universal Language Model Fine-tuning for Text Classification"
    (ULMFiT), ACL 2018. At epoch ``e`` the head and the ``e * groups_per_epoch`` deepest
    backbone groups train.
    """

    name = "gradual-unfreeze"
    groups_per_epoch: int = 1

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.groups_per_epoch, int) or isinstance(self.groups_per_epoch, bool):
            raise TransferkitError(
                f"The 'groups_per_epoch' parameter of gradual-unfreeze must be a positive int. "
                f"Got {self.groups_per_epoch!r} instead."
            )
        if self.groups_per_epoch < 1:
            raise TransferkitError(
                f"The 'groups_per_epoch' parameter of gradual-unfreeze must be a positive int. "
                f"Got {self.groups_per_epoch!r} instead."
            )

    def trainable_groups(self, names: list[str]) -> set[str]:
        return {"head"}

    def on_epoch(self, epoch: int, network: TransferNetwork) -> None:
        """Unfreeze the ``epoch * groups_per_epoch`` deepest backbone groups and freeze the others.

        Parameters
        ----------
        epoch : int
            The epoch about to run, from 0 (epoch 0: the head alone).
        network : TransferNetwork
            Its backbone groups' ``requires_grad`` is set; the head is left as it is.
        """
        groups = network.layer_groups()
        body = [(name, modules) for name, modules in groups if name != "head"]
        thawed = min(len(body), epoch * self.groups_per_epoch)
        for position, (_, modules) in enumerate(body):
            _set_trainable(modules, position >= len(body) - thawed)


@register_strategy
@dataclass(frozen=True)
class L2SP(FineTuneStrategy):
    """Fine-tune everything with a pull toward the pre-trained weights.

    Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
    Convolutional Networks", ICML 2018. The loss gains

        Ω(w) = α/2 · ‖w_S − w_S⁰‖²  +  β/2 · ‖w_head‖²

    over the transferred parameters ``w_S`` (starting point ``w_S⁰``) and the new head's
    weights. The head starts at zero, so Ω is exactly zero at initialisation; weight decay
    is switched off, Ω takes its place.

    Parameters
    ----------
    alpha : float
        Strength of the pull toward the pre-trained weights.
    beta : float
        L2 strength on the new head.
    """

    name = "l2sp"
    alpha: float = 0.01
    beta: float = 0.01

    def validate(self) -> None:
        super().validate()
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            # NaN or infinity would only surface later as a 'diverged' loss blamed on the learning rate
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise TransferkitError(
                    f"The {name!r} parameter of l2sp must be a float >= 0 and finite. Got {value!r} instead."
                )

    def prepare(self, network: TransferNetwork, context: TrainContext) -> None:
        """Zero the head and keep a copy of the backbone's weights, ``w_S⁰``, for :meth:`penalty`.

        Parameters
        ----------
        network : TransferNetwork
            Its head is zeroed; the copy is stored on it, outside its ``state_dict``.
        context : TrainContext
            Unused.
        """
        nn.init.zeros_(network.head.weight)
        nn.init.zeros_(network.head.bias)
        anchor = {name: p.detach().clone() for name, p in network.backbone.named_parameters()}
        object.__setattr__(network, "_l2sp_anchor", anchor)  # not a buffer: kept out of state_dict

    def apply(self, network: TransferNetwork) -> list[dict[str, Any]]:
        groups = super().apply(network)
        for group in groups:
            group["weight_decay"] = 0.0
        return groups

    def penalty(self, network: TransferNetwork) -> torch.Tensor:
        anchor = getattr(network, "_l2sp_anchor", None)
        if anchor is None:
            raise TransferkitError("l2sp.penalty called before l2sp.prepare")
        pull = sum(
            ((p - anchor[name]) ** 2).sum() for name, p in network.backbone.named_parameters() if p.requires_grad
        )
        head = (network.head.weight**2).sum()
        return self.alpha / 2 * pull + self.beta / 2 * head
