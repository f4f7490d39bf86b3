"""Export a trained network for inference without transferkit: ONNX or a safetensors state dict.

The exported graph maps *preprocessed* inputs to logits; the preprocessing it expects
(image size and mean/std, or the tokenizer) travels in the file's metadata.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._io import atomic_write
from .errors import TransferkitError, did_you_mean

__all__ = ["FORMATS", "TEXT_INPUTS", "export_onnx", "check_onnx", "export_safetensors", "export_model"]

FORMATS = {"onnx": ".onnx", "safetensors": ".safetensors"}
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # ONNX input order for text models
_SENTENCES = ["a short example sentence", "another one", "and a third, somewhat longer example sentence here"]


class _TextInputs(nn.Module):
    """Positional token tensors → the dict a text network takes (ONNX graphs have no dict inputs)."""

    def __init__(self, network: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.network, self.names = network, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.network(dict(zip(self.names, tensors)))  # (B, K)


def _input_names(modality: str, example: torch.Tensor | dict[str, torch.Tensor]) -> tuple[str, ...]:
    if modality == "image":
        if not isinstance(example, torch.Tensor) or example.ndim != 4:
            raise TransferkitError("an image model's example input must be a float tensor (B, C, H, W)")
        return ("pixels",)
    if modality != "text":
        raise TransferkitError(f"cannot export a {modality!r} model to ONNX; expected modality 'image' or 'text'")
    if not isinstance(example, dict) or not {"input_ids", "attention_mask"} <= set(example):
        raise TransferkitError("a text model's example input must be a dict with input_ids and attention_mask")
    unknown = set(example) - set(TEXT_INPUTS)
    if unknown:
        raise TransferkitError(f"cannot export text inputs {sorted(unknown)}; supported: {', '.join(TEXT_INPUTS)}")
    return tuple(name for name in TEXT_INPUTS if name in example)


def _input_spec(modality: str, example: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, Any]:
    """``{name: {"shape": [...], "dtype": ...}}`` of the exported inputs; dynamic axes are named."""
    names = _input_names(modality, example)
    tensors = [example] if modality == "image" else [example[name] for name in names]
    spec = {}
    for name, tensor in zip(names, tensors):
        shape = ["batch", *tensor.shape[1:]] if modality == "image" else ["batch", "sequence"]
        spec[name] = {"shape": [d if isinstance(d, str) else int(d) for d in shape], "dtype": str(tensor.dtype)[6:]}
    return spec


def export_onnx(
    network: nn.Module,
    modality: str,
    example: torch.Tensor | dict[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Export ``network`` (preprocessed inputs → logits) to one self-contained ONNX file.

    Parameters
    ----------
    network : nn.Module
        E.g. a :class:`~transferkit.training.network.TransferNetwork`; exported in eval mode.
    modality : {"image", "text"}
        Images give one input ``pixels`` ``(batch, C, H, W)``; text gives ``input_ids``,
        ``attention_mask`` (and ``token_type_ids`` when ``example`` has it), ``(batch, sequence)``.
    example : Tensor or dict of Tensor
        A preprocessed batch to trace with; a batch of one is repeated (a traced size of 1 is
        specialised by the exporter and would not stay dynamic).
    path : path-like
        The ``.onnx`` file, written atomically (weights embedded, no ``.data`` file).
    metadata : dict, optional
        Stored in the model's ``metadata_props``; non-string values are JSON-encoded.

    Returns
    -------
    Path
        ``path``. The output is ``logits`` ``(batch, K)``.

    Notes
    -----
    Uses ``torch.onnx.export(dynamo=True)`` (torch.export), falling back to the legacy
    TorchScript exporter only if that fails; the exporter used is recorded as
    ``transferkit.exporter``.
    """
    import onnx

    names = _input_names(modality, example)
    tensors = (example,) if modality == "image" else tuple(example[name] for name in names)
    if tensors[0].shape[0] == 1:
        tensors = tuple(torch.cat([t, t]) for t in tensors)
    module = network if modality == "image" else _TextInputs(network, names)
    was_training = network.training
    network.eval()
    errors = []
    try:
        for dynamo in (True, False):
            try:
                proto = _export(module, tensors, names, modality, dynamo)
                break
            except Exception as error:  # any exporter failure: try the other, then report both
                errors.append(f"{'dynamo' if dynamo else 'torchscript'} exporter: {type(error).__name__}: {error}")
        else:
            raise TransferkitError("cannot export the network to ONNX; " + " | ".join(e[:500] for e in errors))
    finally:
        network.train(was_training)
    if errors:
        warnings.warn(f"dynamo ONNX exporter failed, used TorchScript's: {errors[0][:300]}", stacklevel=2)
    props = {p.key: p.value for p in proto.metadata_props}
    props["transferkit.exporter"] = "dynamo" if not errors else "torchscript"
    props["transferkit.inputs"] = json.dumps(_input_spec(modality, example))
    props["transferkit.modality"] = modality
    for key, value in (metadata or {}).items():
        props[key] = value if isinstance(value, str) else json.dumps(value)
    onnx.helper.set_model_props(proto, props)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temporary: onnx.save_model(proto, temporary))
    return path


def _export(module: nn.Module, tensors: tuple[torch.Tensor, ...], names: tuple[str, ...], modality: str, dynamo: bool):
    axes = {0: "batch"} if modality == "image" else {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter chatter: deprecations, tracer and axis-naming notes
        if dynamo:
            dims = {axis: torch.export.Dim(name) for axis, name in axes.items()}
            shapes = (dims,) if modality == "image" else ((dims,) * len(tensors),)  # text: one *args parameter
            program = torch.onnx.export(
                module, tensors, None, dynamo=True, input_names=list(names), output_names=["logits"],
                dynamic_shapes=shapes, verbose=False, external_data=False,
            )  # fmt: skip
            return program.model_proto
        import io

        import onnx

        buffer = io.BytesIO()
        dynamic_axes = {name: axes for name in names} | {"logits": {0: "batch"}}
        torch.onnx.export(
            module, tensors, buffer, dynamo=False, input_names=list(names), output_names=["logits"],
            dynamic_axes=dynamic_axes, opset_version=18,
        )  # fmt: skip
        return onnx.load_from_string(buffer.getvalue())


def _feeds(session: Any, inputs: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    wanted = [i.name for i in session.get_inputs()]
    given = {wanted[0]: inputs} if isinstance(inputs, torch.Tensor) else inputs
    missing = [name for name in wanted if name not in given]
    if missing:
        raise TransferkitError(f"the ONNX model needs inputs {wanted}; missing {missing}")
    return {name: given[name].detach().cpu().numpy() for name in wanted}


def check_onnx(
    path: str | os.PathLike,
    network: nn.Module,
    inputs: torch.Tensor | dict[str, torch.Tensor],
    atol: float = 1e-4,
) -> float:
    """Run the ONNX file with onnxruntime and compare its logits with ``network``'s.

    Parameters
    ----------
    path : path-like
        A file written by :func:`export_onnx`.
    network : nn.Module
        The PyTorch network (run in eval mode, without gradients).
    inputs : Tensor or dict of Tensor
        A preprocessed batch, as ``network`` takes it.
    atol : float
        Largest allowed absolute difference.

    Returns
    -------
    float
        The largest absolute difference between the two sets of logits.

    Raises
    ------
    TransferkitError
        When the difference exceeds ``atol`` (or is not finite), or the shapes differ.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], _feeds(session, inputs))
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            torch_logits = network(inputs).float().cpu().numpy()  # (B, K)
    finally:
        network.train(was_training)
    if onnx_logits.shape != torch_logits.shape:
        raise TransferkitError(f"ONNX logits have shape {onnx_logits.shape}, PyTorch's {torch_logits.shape}")
    difference = float(np.max(np.abs(onnx_logits - torch_logits))) if torch_logits.size else 0.0
    if not difference <= atol:
        raise TransferkitError(f"ONNX model {str(path)!r} differs from PyTorch by {difference:.3g} (> atol {atol:g})")
    return difference


def export_safetensors(network: nn.Module, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write ``network``'s full state dict (backbone and head) as one safetensors file.

    Parameters
    ----------
    network : nn.Module
        The network; every tensor is saved contiguous and unshared, so
        ``network.load_state_dict(safetensors.torch.load_file(path))`` restores it (no pickle).
    path : path-like
        The file, written atomically.
    metadata : dict
        JSON-encoded into the header under ``"transferkit"`` (read it with ``safe_open(...).metadata()``).

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.torch import save_file

    state = {key: value.detach().cpu().contiguous().clone() for key, value in network.state_dict().items()}
    header = {"format": "pt", "transferkit": json.dumps(metadata)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temporary: save_file(state, temporary, metadata=header))
    return path


def export_model(model_dir: str | os.PathLike, out: str | os.PathLike, format: str = "onnx") -> Path:
    """Export a saved :class:`~transferkit.TransferClassifier` folder.

    Parameters
    ----------
    model_dir : path-like
        A folder written by ``TransferClassifier.save``.
    out : path-like
        The file to write; an existing folder gets ``model.onnx`` / ``model.safetensors``.
    format : {"onnx", "safetensors"}
        ONNX graph (preprocessed inputs → logits, checked against PyTorch with onnxruntime),
        or the network's state dict.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    UnknownNameError
        For an unknown ``format``.
    TransferkitError
        When ``model_dir`` is not a saved model, or the model has no network (a target-only baseline).
    """
    from .estimators import TransferClassifier

    if format not in FORMATS:
        raise did_you_mean("export format", str(format), FORMATS)
    suffix = Path(out).suffix.lower()
    if suffix in (".onnx", ".safetensors") and suffix != f".{format}":
        raise TransferkitError(f"out {str(out)!r} ends in {suffix} but the format is {format!r}; expected .{format}")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise TransferkitError(f"model folder {str(model_dir)!r} does not exist")
    try:
        classifier = TransferClassifier.load(model_dir)
    except TransferkitError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise TransferkitError(f"{str(model_dir)!r} is not a valid saved transferkit model: {error!r}") from error
    make_network = getattr(classifier, "network", None)
    network = make_network() if callable(make_network) else None
    if network is None:
        strategy = getattr(getattr(classifier, "strategy_", None), "name", "?")
        raise TransferkitError(
            f"this model has no network to export (target-only baseline {strategy!r} in {str(model_dir)!r}); "
            "only models with a pre-trained backbone can be exported"
        )
    preprocessor = classifier.preprocessor()
    modality = classifier.modality_
    out = Path(out)
    if out.is_dir():
        out = out / f"model{FORMATS[format]}"
    metadata = _metadata(classifier, network, preprocessor, model_dir)
    if format == "safetensors":
        return export_safetensors(network, out, metadata)
    if modality == "image":
        generator = torch.Generator().manual_seed(0)
        shape = (preprocessor.channels, preprocessor.size, preprocessor.size)
        example, check = torch.zeros(2, *shape), torch.randn(3, *shape, generator=generator)
    else:
        example, check = preprocessor(_SENTENCES[:2]), preprocessor(_SENTENCES)
    export_onnx(network, modality, example, out, {f"transferkit.{k}": v for k, v in metadata.items()})
    check_onnx(out, network, check)
    return out


def _metadata(classifier: Any, network: nn.Module, preprocessor: Any, model_dir: Path) -> dict[str, Any]:
    """What a user of the exported file needs: classes, preprocessing, how logits become probabilities."""
    classes = np.asarray(classifier.classes_).tolist()
    head = getattr(network, "head", None)
    width = getattr(head, "out_features", len(classes))
    cfg = getattr(getattr(network, "backbone", None), "cfg", None)
    preprocessing = dict(preprocessor.describe())
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if tokenizer is not None:
        preprocessing["tokenizer_path"] = str(getattr(tokenizer, "name_or_path", ""))
    return {
        "classes": classes,
        "modality": classifier.modality_,
        "backbone": cfg.name if cfg is not None else None,
        "strategy": classifier.strategy_.to_dict() if hasattr(classifier.strategy_, "to_dict") else None,
        "preprocessing": preprocessing,
        "probabilities": "sigmoid(logits[:, 0]) is P(classes[1])" if width == 1 else "softmax(logits) over classes",
        "source_model": str(model_dir),
    }
