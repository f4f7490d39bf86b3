"""LoRA: train low-rank updates of the backbone's projections and a new head; the backbone stays frozen.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022. A targeted layer
``W x`` becomes ``W x + (alpha / r) · B A x`` with ``A`` ``(r, d_in)`` (random) and ``B``
``(d_out, r)`` (zero, so training starts from the pre-trained network); only ``A``, ``B`` and
the new head train. The adapters come from the ``peft`` library
(:func:`peft.inject_adapter_in_model` on the backbone's inner timm model or ``transformers``
encoder, so the :class:`~transferkit.training.TransferNetwork` and its backbone keep their
structure).

Targets (``target="auto"``):

- text backbones: the ``nn.Linear`` projections of the attention blocks (BERT/MiniLM: ``query``,
  ``key``, ``value`` and ``attention.output.dense`` of every layer);
- image backbones: every 1×1 ``nn.Conv2d`` with ``groups == 1`` (pointwise expansions and
  projections, ``conv_head``) and every ``nn.Linear`` of the timm model, the source task's
  classifier excepted. Depthwise convolutions are skipped: peft adapts a grouped convolution
  only when the rank is a multiple of ``groups`` (the channel count for a depthwise one, so the
  update would not be low-rank) and cannot merge such an adapter.

A fitted model is saved either as its adapters (the LoRA tensors and the head, a small file;
loading rebuilds the backbone from its own weights and injects them again) or merged
(``W + (alpha / r) · B A`` folded into plain weights: a state dict of an ordinary
:class:`~transferkit.training.TransferNetwork`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import TransferkitError, did_you_mean
from ._base import register_strategy
from .finetune import FineTuneStrategy, TrainContext

if TYPE_CHECKING:
    from ..backbones._base import Backbone
    from ..training.network import TransferNetwork

__all__ = ["LoRA", "lora_targets", "merged_state_dict", "adapter_state_dict"]

ADAPTER = "default"
_SAVE_MODES = ("adapters", "merged")
_ATTENTION_WORDS = ("attention", "attn")


def _peft() -> Any:
    import peft

    import transferkit  # noqa: F401  (torchvision shim: peft imports transformers, which imports torchvision)

    return peft


def _root(backbone: Backbone) -> tuple[str, nn.Module]:
    """The module peft adapts: ``("model", timm model)`` or ``("encoder", transformers encoder)``."""
    from ..backbones.text import TransformerBackbone

    if isinstance(backbone, TransformerBackbone):
        return "encoder", backbone.encoder
    from ..backbones.vision import TimmBackbone

    if isinstance(backbone, TimmBackbone):
        return "model", backbone.model
    raise TransferkitError(
        f"lora adapts timm and Hugging Face backbones; {type(backbone).__name__} ({backbone.cfg.name!r}) is neither"
    )


def _source_classifier(backbone: Backbone, root: nn.Module) -> set[int]:
    """Ids of the source task's classifier modules (never adapted: they are not in forward_features)."""
    get_classifier = getattr(root, "get_classifier", None)
    if backbone.cfg.modality != "image" or get_classifier is None:
        return set()
    return {id(module) for module in get_classifier().modules()}


def _adaptable(module: nn.Module) -> str | None:
    """Why peft's LoRA cannot (or should not) adapt ``module``; ``None`` when it can."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        if module.groups != 1:
            return (
                f"a grouped convolution (groups={module.groups}): peft needs the rank to be a multiple of groups "
                "and cannot merge it"
            )
        return None
    if isinstance(module, (nn.Linear, nn.Embedding)):
        return None
    return f"a {type(module).__name__}, which LoRA does not adapt here (Linear, Conv, Embedding only)"


def _auto_targets(backbone: Backbone, modules: dict[str, nn.Module]) -> list[str]:
    if backbone.cfg.modality == "text":
        linear = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
        attention = [
            name
            for name in linear
            if any(word in part.lower() for part in name.split(".") for word in _ATTENTION_WORDS)
        ]
        return attention or linear
    return [
        name
        for name, m in modules.items()
        if (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1) or isinstance(m, nn.Linear)
    ]


def lora_targets(backbone: Backbone, target: str | tuple[str, ...] = "auto") -> list[str]:
    """Names (relative to the backbone's inner model) of the modules LoRA adapts.

    Parameters
    ----------
    backbone : Backbone
        A timm (``.model``) or Hugging Face (``.encoder``) backbone, not yet adapted.
    target : "auto" or tuple of str
        ``"auto"`` (see the module's notes), or module names: each picks every module whose
        qualified name equals it or ends with ``"." + name`` (peft's rule), e.g. ``("query",
        "value")`` or ``("conv_pwl",)``.

    Returns
    -------
    list of str
        Qualified module names, in the model's order.

    Raises
    ------
    TransferkitError
        When nothing can be targeted, a name matches no module, or it matches a module LoRA cannot adapt.
    """
    _, root = _root(backbone)
    skip = _source_classifier(backbone, root)
    modules = {name: m for name, m in root.named_modules() if name and id(m) not in skip}
    if target == "auto":
        names = _auto_targets(backbone, modules)
        if not names:
            raise TransferkitError(
                f"backbone {backbone.cfg.name!r} has no module that lora can adapt (no "
                f"{'linear layer' if backbone.cfg.modality == 'text' else '1x1 convolution or linear layer'} "
                "outside the source classifier); choose another strategy or name targets with target=(...)"
            )
        return names
    chosen: list[str] = []
    for wanted in target:
        matched = [name for name in modules if name == wanted or name.endswith("." + wanted)]
        if not matched:
            short = {name.rpartition(".")[2] for name, m in modules.items() if _adaptable(m) is None}
            raise did_you_mean(
                f"lora target of backbone {backbone.cfg.name!r}", wanted, short, hint="give module names (or suffixes)"
            )
        for name in matched:
            reason = _adaptable(modules[name])
            if reason is not None:
                raise TransferkitError(f"lora cannot adapt {name!r} of backbone {backbone.cfg.name!r}: it is {reason}")
            if name not in chosen:
                chosen.append(name)
    order = list(modules)
    return sorted(chosen, key=order.index)


def _lora_layers(network: nn.Module) -> dict[str, nn.Module]:
    """peft's LoRA layers in ``network``, by qualified name."""
    from peft.tuners.lora import LoraLayer

    return {name: module for name, module in network.named_modules() if isinstance(module, LoraLayer)}


def _lora_parameters(network: nn.Module) -> list[nn.Parameter]:
    params = []
    for layer in _lora_layers(network).values():
        for adapters in (layer.lora_A, layer.lora_B):
            if ADAPTER in adapters:
                params.extend(adapters[ADAPTER].parameters())
    return params


def adapter_state_dict(network: TransferNetwork) -> dict[str, torch.Tensor]:
    """The LoRA tensors (peft's key names, under the backbone's inner model) and the head.

    Keys look like ``backbone.encoder.encoder.layer.0.attention.self.query.lora_A.weight`` and
    ``head.weight``; :meth:`LoRA.restore_network` reads them back.
    """
    peft = _peft()
    attribute, root = _root(network.backbone)
    adapters = peft.get_peft_model_state_dict(root, adapter_name=ADAPTER)
    state = {f"backbone.{attribute}.{key}": value.detach().clone() for key, value in adapters.items()}
    state.update({f"head.{key}": value.detach().clone() for key, value in network.head.state_dict().items()})
    return state


def merged_state_dict(network: TransferNetwork) -> dict[str, torch.Tensor]:
    """The state dict of a plain :class:`~transferkit.training.TransferNetwork` with every update merged.

    Each adapted weight becomes ``W + (alpha / r) · B A`` (peft's ``get_delta_weight``, the
    term its ``merge`` adds); the network itself is left untouched, so training can go on.
    """
    layers = _lora_layers(network)
    renamed: dict[str, str] = {}
    dropped: set[str] = set()
    delta: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, layer in layers.items():
            for key in layer.state_dict():
                full = f"{name}.{key}"
                if key.startswith("base_layer."):
                    renamed[full] = f"{name}.{key[len('base_layer.') :]}"
                else:
                    dropped.add(full)
            if ADAPTER in layer.lora_A:
                delta[f"{name}.weight"] = layer.get_delta_weight(ADAPTER)
        state = {}
        for key, value in network.state_dict().items():
            if key in dropped:
                continue
            key = renamed.get(key, key)
            value = value.detach()
            if key in delta:
                value = value + delta[key].to(value.dtype)
            state[key] = value.contiguous().clone()
    return state


class _SaveState:
    """``network.transferkit_save_state``: what ``TransferClassifier.save`` writes for a LoRA network."""

    def __init__(self, network: TransferNetwork, save: str) -> None:
        self.network = network
        self.save = save

    def __call__(self) -> dict[str, torch.Tensor]:
        if self.save == "merged":
            return merged_state_dict(self.network)
        return adapter_state_dict(self.network)


@register_strategy
@dataclass(frozen=True)
class LoRA(FineTuneStrategy):
    """Low-rank adapters on the frozen backbone (via ``peft``) and a new linear head.

    Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022: each targeted
    weight ``W`` is used as ``W + (alpha / r) · B A``; ``A`` starts random, ``B`` at zero, and
    only ``A``, ``B`` and the head train. BatchNorm layers stay in inference mode (their
    parameters are frozen).

    Parameters
    ----------
    r : int
        Rank of the update.
    alpha : float
        Scale numerator: the update is multiplied by ``alpha / r``.
    dropout : float or None
        Dropout on the adapters' input; ``None``: 0.1 for text, 0 for images.
    target : "auto" or tuple of str
        Modules to adapt: ``"auto"`` (text: the attention projections; images: every 1×1
        convolution with ``groups == 1`` and every linear layer, the source classifier
        excepted), or module names / name suffixes (e.g. ``("query", "value")``).
    save : {"adapters", "merged"}
        What ``TransferClassifier.save`` writes: the LoRA tensors and the head (small; loading
        injects them again), or the merged weights of a plain network.
    lr_decay : float
        Discriminative rates over the backbone's layer groups, as in
        :class:`~transferkit.strategies.FineTuneStrategy` (applied to the adapters in each group).
    body_lr_scale : float
        Factor on the adapters' rate relative to the head's.
    """

    name = "lora"
    r: int = 8
    alpha: float = 16.0
    dropout: float | None = None
    target: str | tuple[str, ...] = "auto"
    save: str = "adapters"
    body_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.target, list):  # from JSON
            object.__setattr__(self, "target", tuple(self.target))

    def validate(self) -> None:
        """Raise :class:`TransferkitError` on a bad setting."""
        super().validate()
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise TransferkitError(f"The 'r' parameter of lora must be a positive int. Got {self.r!r} instead.")
        # infinity times the zero-initialised B is NaN: refuse it here, not as a 'diverged' loss later
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < math.inf:
            raise TransferkitError(
                f"The 'alpha' parameter of lora must be a float > 0 and finite. Got {self.alpha!r} instead."
            )
        dropout = self.dropout
        if dropout is not None and (
            isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1
        ):
            raise TransferkitError(
                f"The 'dropout' parameter of lora must be None or a float in [0, 1). Got {dropout!r} instead."
            )
        if self.save not in _SAVE_MODES:
            raise TransferkitError(
                f"The 'save' parameter of lora must be 'adapters' or 'merged'. Got {self.save!r} instead."
            )
        target = self.target
        named = (
            isinstance(target, tuple)
            and len(target) > 0
            and all(isinstance(t, str) and t.strip() and t == t.strip() for t in target)
        )
        if target != "auto" and not named:
            raise TransferkitError(
                "The 'target' parameter of lora must be 'auto' or a non-empty tuple of module names "
                f"(e.g. ('query', 'value')). Got {target!r} instead."
            )

    def train_defaults(self, modality: str) -> dict[str, Any]:
        """Training settings this strategy prefers for ``modality`` (the user's settings win)."""
        defaults = super().train_defaults(modality)
        if modality == "text":  # Yelp, 8 labels a class, MiniLM: lr 1e-3 x 10 epochs left the head undertrained
            defaults.update(lr=5e-3, epochs=20)
        else:
            defaults["lr"] = 1e-3
        return defaults

    # -- adapters --------------------------------------------------------------------------
    def _dropout(self, modality: str) -> float:
        if self.dropout is not None:
            return float(self.dropout)
        return 0.1 if modality == "text" else 0.0

    def inject(self, network: TransferNetwork, targets: list[str] | None = None) -> list[str]:
        """Put peft's LoRA layers into ``network``'s backbone (once); return the adapted module names.

        Parameters
        ----------
        network : TransferNetwork
            Its backbone (timm or Hugging Face) is modified in place. If it already holds adapters,
            nothing changes and their names are returned (``targets`` is then ignored).
        targets : list of str, optional
            Module names relative to the backbone's inner model; default :func:`lora_targets` of
            ``self.target``.

        Returns
        -------
        list of str
            The adapted module names, relative to the backbone's inner model.

        Raises
        ------
        TransferkitError
            When the backbone is neither timm nor Hugging Face, nothing can be targeted, a target
            cannot be adapted, or peft adapted another number of modules than ``targets`` names.
        UnknownNameError
            When a name in ``self.target`` matches no module.
        """
        existing = _lora_layers(network)
        attribute, root = _root(network.backbone)
        if existing:
            prefix = f"backbone.{attribute}."
            return [name[len(prefix) :] for name in existing]
        if targets is None:
            targets = lora_targets(network.backbone, self.target)
        peft = _peft()
        config = peft.LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self._dropout(network.backbone.cfg.modality),
            target_modules=list(targets),
            bias="none",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft's notes on non-transformers models
            peft.inject_adapter_in_model(config, root, adapter_name=ADAPTER)
        if network.backbone.cfg.modality == "image":  # the backbone runs channels-last; so do the adapters
            for layer in _lora_layers(root).values():
                layer.lora_A.to(memory_format=torch.channels_last)
                layer.lora_B.to(memory_format=torch.channels_last)
        adapted = len(_lora_layers(root))
        if adapted != len(targets):
            raise TransferkitError(f"peft adapted {adapted} modules, expected {len(targets)} ({targets[:3]} ...)")
        self._attach(network, targets)
        return list(targets)

    def _attach(self, network: TransferNetwork, targets: list[str]) -> None:
        network.transferkit_save_state = _SaveState(network, self.save)
        network.transferkit_config = {"lora_saved_as": self.save, "lora_targets": list(targets)}

    # -- hooks the training loop calls ---------------------------------------------------
    def prepare(self, network: TransferNetwork, context: TrainContext) -> None:
        """Inject the adapters (``A`` drawn from the seeded global generator, ``B`` zero).

        Parameters
        ----------
        network : TransferNetwork
            Adapted in place by :meth:`inject`.
        context : TrainContext
            Unused.
        """
        self.inject(network)

    def apply(self, network: TransferNetwork) -> list[dict[str, Any]]:
        """Freeze every weight but the adapters and the head; adapters grouped by backbone layer group."""
        self.inject(network)
        for param in network.parameters():
            param.requires_grad_(False)
        lora = _lora_parameters(network)
        for param in [*lora, *network.head.parameters()]:
            param.requires_grad_(True)
        lora_ids = {id(p) for p in lora}
        groups = network.layer_groups()
        body = [(name, modules) for name, modules in groups if name != "head"]
        param_groups, covered = [], set()
        for position, (name, modules) in enumerate(body):
            params = [p for m in modules for p in m.parameters() if id(p) in lora_ids and id(p) not in covered]
            covered.update(id(p) for p in params)
            scale = self.body_lr_scale * self.lr_decay ** (len(body) - position)
            if params:
                param_groups.append({"name": f"lora:{name}", "params": params, "lr_scale": scale})
        rest = [p for p in lora if id(p) not in covered]
        if rest:  # adapters outside every listed group (should not happen): the rate of the deepest group
            param_groups.append({"name": "lora", "params": rest, "lr_scale": self.body_lr_scale * self.lr_decay})
        param_groups.append({"name": "head", "params": list(network.head.parameters()), "lr_scale": 1.0})
        return param_groups

    # -- loading -----------------------------------------------------------------------------
    def restore_network(
        self, network: TransferNetwork, state: dict[str, torch.Tensor], model_config: dict[str, Any]
    ) -> TransferNetwork:
        """Rebuild a saved LoRA network from a fresh one (the backbone's own weights and a new head).

        Parameters
        ----------
        network : TransferNetwork
            Fresh, not yet adapted.
        state : dict of Tensor
            What ``transferkit_save_state`` returned at saving.
        model_config : dict
            ``lora_saved_as`` and ``lora_targets`` as written at saving.

        Returns
        -------
        TransferNetwork

        Raises
        ------
        TransferkitError
            When the tensors do not fit (a missing or unexpected adapter tensor, a wrong shape).
        """
        saved_as = model_config.get("lora_saved_as", "merged")
        if saved_as not in _SAVE_MODES:
            raise TransferkitError(f"unknown lora save mode {saved_as!r} in the saved model")
        if saved_as == "merged":
            try:
                network.load_state_dict(state)
            except RuntimeError as error:
                raise TransferkitError(f"saved merged lora weights do not fit the network: {error}") from error
            network.transferkit_config = {"lora_saved_as": "merged"}
            return network
        targets = model_config.get("lora_targets")
        if not isinstance(targets, list) or not targets:
            raise TransferkitError("the saved lora adapters lack their target modules ('lora_targets')")
        self.inject(network, [str(t) for t in targets])
        expected = set(adapter_state_dict(network))
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise TransferkitError(
                f"saved lora adapters do not fit the network: {len(missing)} missing "
                f"({missing[:2]}), {len(unexpected)} unexpected ({unexpected[:2]}) tensors"
            )
        peft = _peft()
        attribute, root = _root(network.backbone)
        prefix = f"backbone.{attribute}."
        adapters = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        try:
            result = peft.set_peft_model_state_dict(root, adapters, adapter_name=ADAPTER)
            network.head.load_state_dict({k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")})
        except RuntimeError as error:
            raise TransferkitError(f"saved lora adapters do not fit the network: {error}") from error
        if result.unexpected_keys:
            raise TransferkitError(f"peft did not place saved adapter tensors: {result.unexpected_keys[:3]}")
        network.transferkit_config = {"lora_saved_as": "adapters", "lora_targets": list(targets)}
        network.transferkit_save_state = _SaveState(network, "adapters")
        return network
