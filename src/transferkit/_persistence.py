"""Saving and loading a TransferClassifier: safetensors + JSON, written atomically, never pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._io import atomic_write as _atomic_write
from .backbones import create_backbone
from .backbones._config import BackboneCfg
from .errors import TransferkitError
from .strategies import ProbeHead, Strategy, strategy_from_dict
from .training import TransferNetwork

if TYPE_CHECKING:
    from .estimators import TransferClassifier

__all__ = ["save_estimator", "load_estimator"]

_FORMAT = "transferkit.TransferClassifier"
_FORMAT_VERSION = 1
# Settings of how a run was driven, not of the model: not saved with it.
_UNSAVED_PARAMS = ("strategy", "checkpoint_dir", "resume")


def save_estimator(self: TransferClassifier, directory: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``weights.safetensors`` into ``directory`` (no pickle).

    Each file is written to a temporary name and renamed, so a crash never leaves a
    half-written model; the backbone is referenced by name and sha256, not copied.
    """
    from safetensors.numpy import save_file

    self._check_fitted()
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TransferkitError(f"cannot save into {str(directory)!r}: it is a file; expected a folder")
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(self.model_, torch.nn.Module):
        arrays = {k: v.detach().contiguous().numpy() for k, v in _module_arrays(self.model_).items()}
    else:
        arrays = {k: np.ascontiguousarray(v) for k, v in self.model_.save_arrays().items()}
    config = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "params": {k: _json_param(v) for k, v in self.get_params().items() if k not in _UNSAVED_PARAMS},
        "strategy": self.strategy_.to_dict(),
        "modality": self.modality_,
        "classes": self.classes_.tolist(),
        "backbone": self.backbone_.cfg.to_dict() if self.backbone_ is not None else None,
        "model_class": type(self.model_).__name__,
        "model_config": _model_config(self.model_),
        "history": self.history_,
    }
    _atomic_write(directory / "weights.safetensors", lambda path: save_file(arrays, path))
    _atomic_write(directory / "config.json", lambda path: Path(path).write_text(json.dumps(config, indent=2)))
    return directory


def load_estimator(cls: type[TransferClassifier], directory: str | os.PathLike) -> TransferClassifier:
    """Rebuild a classifier written by :func:`save_estimator`.

    Raises
    ------
    TransferkitError
        When the folder is not a saved transferkit model or its backbone's weights changed.
    """
    from safetensors.numpy import load_file

    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "weights.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise TransferkitError(f"{str(directory)!r} is not a saved transferkit model (no config.json and weights)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise TransferkitError(f"{str(config_path)!r} is not valid JSON: {error}") from error
    if config.get("format") != _FORMAT or config.get("format_version", 0) > _FORMAT_VERSION:
        raise TransferkitError(f"{str(directory)!r} holds format {config.get('format')!r}, not {_FORMAT!r} v1")
    try:
        arrays = load_file(str(weights_path))
    except Exception as error:  # safetensors raises its own SafetensorError for damaged or truncated files
        raise TransferkitError(
            f"{str(weights_path)!r} cannot be read as safetensors ({error}); save the model again"
        ) from error
    strategy = strategy_from_dict(config["strategy"])
    estimator = cls(strategy=strategy, **config["params"])
    if config["backbone"] is not None:
        saved = BackboneCfg.from_dict(config["backbone"])
        estimator.backbone_ = create_backbone(saved.name)
        if saved.sha256 and estimator.backbone_.cfg.sha256 != saved.sha256:
            raise TransferkitError(f"backbone {saved.name!r} now has different weights than when this model was saved")
        if config["model_class"] == "TransferNetwork":
            try:
                estimator.model_ = _load_network(estimator.backbone_, config["model_config"], arrays, strategy)
            except (RuntimeError, KeyError) as error:  # torch's load_state_dict: missing keys, other shapes
                raise TransferkitError(
                    f"the weights in {str(weights_path)!r} do not fit the network that config.json describes: "
                    f"{str(error).splitlines()[0]}"
                ) from error
        elif config["model_class"] == "FeatureAdapter":
            from .adaptation.deep import FeatureAdapter

            estimator.model_ = FeatureAdapter.from_arrays(config["model_config"], arrays)
        elif config["model_class"] == "DenoisedProbeHead":
            from .adaptation.run import DenoisedProbeHead

            estimator.model_ = DenoisedProbeHead.from_arrays(config["model_config"], arrays)
        elif config["model_class"] == "DescriptionPriorHead":
            from .strategies.label_prior import DescriptionPriorHead

            estimator.model_ = DescriptionPriorHead.from_arrays(arrays, config["model_config"])
        else:
            estimator.model_ = ProbeHead.from_arrays(arrays)
    else:
        from .strategies import baselines

        model_class = getattr(baselines, config["model_class"], None)
        if model_class is None or not hasattr(model_class, "from_arrays"):
            raise TransferkitError(f"unknown model class {config['model_class']!r} in {str(config_path)!r}")
        estimator.backbone_ = None
        estimator.model_ = model_class.from_arrays(config["model_config"], arrays)
    estimator.classes_ = np.asarray(config["classes"])
    estimator.modality_ = config["modality"]
    estimator.strategy_ = strategy
    estimator.history_ = config.get("history", {})
    return estimator


def _json_param(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value  # TrainConfig, AdaptationConfig


def _module_arrays(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state to save: the network's own state unless the strategy saves less (LoRA adapters)."""
    save_state = getattr(network, "transferkit_save_state", None)
    return save_state() if save_state is not None else network.state_dict()


def _model_config(model: Any) -> dict[str, Any]:
    if isinstance(model, TransferNetwork):
        return {"n_classes": int(model.head.out_features), **getattr(model, "transferkit_config", {})}
    return model.config() if hasattr(model, "config") else {}


def _load_network(
    backbone: Any, model_config: dict[str, Any], arrays: dict[str, np.ndarray], strategy: Strategy
) -> Any:
    network = TransferNetwork(backbone, int(model_config["n_classes"]))
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    restore = getattr(strategy, "restore_network", None)
    if restore is not None:
        return restore(network, state, model_config).eval()
    missing, unexpected = network.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TransferkitError(
            f"saved weights do not fit the network: {len(missing)} missing, {len(unexpected)} unexpected tensors"
        )
    return network.eval()
