"""Saving and loading a TransferClassifier: safetensors + JSON, written atomically, never pickle."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._io import current_umask
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

    Both files are serialised in memory, written to temporary names, and only then renamed
    over any earlier save, so a failure part-way leaves the earlier model as it was;
    ``config.json`` holds the weights' sha256, so a crash between the two renames is found on
    loading. The backbone is referenced by name and sha256, not copied.
    """
    from safetensors.numpy import save

    self._check_fitted()
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TransferkitError(f"cannot save into {str(directory)!r}: it is a file; expected a folder")
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(self.model_, torch.nn.Module):
        arrays = {k: v.detach().contiguous().numpy() for k, v in _module_arrays(self.model_).items()}
    else:
        arrays = {k: np.ascontiguousarray(v) for k, v in self.model_.save_arrays().items()}
    weights = save(arrays)
    config = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "params": {k: _json_param(v) for k, v in self.get_params().items() if k not in _UNSAVED_PARAMS},
        "strategy": self.strategy_.to_dict(),
        "modality": self.modality_,
        "classes": self.classes_.tolist(),
        "classes_dtype": "object" if self.classes_.dtype == object else self.classes_.dtype.str,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "backbone": self.backbone_.cfg.to_dict() if self.backbone_ is not None else None,
        "model_class": type(self.model_).__name__,
        "model_config": _model_config(self.model_),
        "history": self.history_,
    }
    try:
        text = json.dumps(config, indent=2, default=_json_default)
    except (TypeError, ValueError) as error:
        raise TransferkitError(f"cannot save this model: a setting cannot be written as JSON ({error})") from error
    _write_together({directory / "weights.safetensors": weights, directory / "config.json": text.encode()})
    for name in _EXPORTED_NAMES:
        if (directory / name).exists():  # an export of the model this save replaced, or of none
            warnings.warn(
                f"{str(directory / name)!r} was not exported from the model just saved and no longer matches it; "
                "run `transferkit export` again (or delete it)",
                stacklevel=3,
            )
    return directory


_EXPORTED_NAMES = ("model.onnx", "model.safetensors")  # what `transferkit export` writes into a model folder


def _write_together(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary name in its folder, then rename them all onto their names.

    A failure while writing (a full disk, an interrupt) replaces none of the files.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, content in files.items():
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((temporary, path))
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
            os.chmod(temporary, 0o666 & ~current_umask())  # a user's file, not mkstemp's owner-only 0600
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.unlink(temporary)


def load_estimator(cls: type[TransferClassifier], directory: str | os.PathLike) -> TransferClassifier:
    """Rebuild a classifier written by :func:`save_estimator`.

    Raises
    ------
    TransferkitError
        When the folder is not a saved transferkit model or its backbone's weights changed.
    """
    from safetensors.numpy import load

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
    weights = weights_path.read_bytes()
    try:
        arrays = load(weights)
    except Exception as error:  # safetensors raises its own SafetensorError for damaged or truncated files
        raise TransferkitError(
            f"{str(weights_path)!r} cannot be read as safetensors ({error}); save the model again"
        ) from error
    digest = hashlib.sha256(weights).hexdigest()
    if config.get("weights_sha256", digest) != digest:  # models saved before the digest was recorded have none
        raise TransferkitError(
            f"{str(weights_path)!r} does not match {str(config_path)!r}: it was changed or comes from another "
            "save (an interrupted one?); save the model again"
        )
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
    estimator.classes_ = np.asarray(config["classes"], dtype=config.get("classes_dtype"))  # int32 stays int32
    estimator.modality_ = config["modality"]
    estimator.strategy_ = strategy
    estimator.history_ = config.get("history", {})
    return estimator


def _json_param(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value  # TrainConfig, AdaptationConfig


def _json_default(value: Any) -> Any:
    """Values the parameters allow that JSON lacks: paths (``cache_dir``), numpy numbers (``random_state``)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable")


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
