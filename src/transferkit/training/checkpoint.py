"""Training checkpoints as safetensors + JSON, written atomically, read without pickle.

A checkpoint folder holds ``state-<epoch>.safetensors`` (model weights, optimiser tensors,
RNG states) and ``checkpoint.json`` (epoch, optimiser hyper-parameters, scheduler state,
history, and the name of the state file). The state file is written first and the JSON
last, each by temp file + rename, and older state files are removed only afterwards: at
every instant the JSON names a complete state file.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._io import atomic_write, atomic_write_json, is_plain_name
from ..errors import TransferkitError

__all__ = ["save_checkpoint", "load_checkpoint", "capture_rng", "restore_rng", "CHECKPOINT_FORMAT", "CHECKPOINT_INDEX"]

CHECKPOINT_FORMAT = "transferkit.checkpoint"
CHECKPOINT_INDEX = "checkpoint.json"


def _optimizer_to_flat(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The torch, numpy and Python RNG states as (tensors, JSON)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state libraries use)
    version, internal, gauss = random.getstate()
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64))}
    meta = {
        "numpy": [kind, int(position), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`: set the global torch, numpy and Python RNG states.

    All three states are checked before any is set, so a malformed one changes none of them.

    Parameters
    ----------
    tensors : dict of str to Tensor
        Holding ``"rng.torch"`` (torch's generator state, a 1-D uint8 tensor) and ``"rng.numpy"``
        (numpy's MT19937 key, 624 int64 values in ``[0, 2**32)``); other keys are ignored.
    meta : dict
        Holding ``"numpy"`` (``[kind, position, has_gauss, cached_gaussian]``) and ``"python"``
        (``[version, internal_state, gauss]``), as :func:`capture_rng` returns them.

    Raises
    ------
    TransferkitError
        When a state is missing or malformed (wrong type, shape, dtype or range); the message names
        it, the value given and what was expected.
    """
    torch_state, numpy_state, python_state = _checked_rng(tensors, meta)
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)  # noqa: NPY002
    random.setstate(python_state)


_MT_WORDS = 624  # MT19937 (numpy's and Python's generator) keeps 624 32-bit words and a position in them
_NUMPY_RNG: tuple[tuple[str, Any, str], ...] = (
    ("kind", lambda v: isinstance(v, str) and v == "MT19937", "'MT19937'"),
    ("position", lambda v: _is_int(v) and 0 <= v <= _MT_WORDS, f"an int from 0 to {_MT_WORDS}"),
    ("has_gauss", lambda v: _is_int(v) and v in (0, 1), "0 or 1"),
    ("cached_gaussian", lambda v: _is_number(v), "a float"),
)
_PYTHON_RNG: tuple[tuple[str, Any, str], ...] = (
    ("version", lambda v: _is_int(v) and v == random.Random.VERSION, f"{random.Random.VERSION}"),
    (
        "internal_state",
        lambda v: (
            isinstance(v, (list, tuple))
            and len(v) == _MT_WORDS + 1
            and all(_is_int(word) and 0 <= word < 2**32 for word in v[:_MT_WORDS])
            and _is_int(v[_MT_WORDS])
            and 0 <= v[_MT_WORDS] <= _MT_WORDS
        ),
        f"a list of {_MT_WORDS} ints in [0, 2**32) and a position from 0 to {_MT_WORDS}",
    ),
    ("gauss", lambda v: v is None or _is_number(v), "null or a float"),
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _described(value: Any) -> str:
    """``value`` in a few words for an error message: tensors by dtype and shape, long lists by length."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"a tensor of dtype {dtype}, shape {tuple(value.shape)}, on {value.device}"
    if isinstance(value, Mapping):
        keys = ", ".join(repr(key) for key in sorted(map(str, value))[:6]) + (", ..." if len(value) > 6 else "")
        return f"a {type(value).__name__} with keys [{keys}]" if value else f"an empty {type(value).__name__}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"a {type(value).__name__} of {len(value)} values"
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _bad_rng(what: str, expected: str, value: Any, got: str | None = None) -> TransferkitError:
    got = _described(value) if got is None else got
    return TransferkitError(f"The RNG state {what} must be {expected}. Got {got} instead.")


def _checked_fields(where: str, value: Any, fields: tuple[tuple[str, Any, str], ...]) -> tuple[Any, ...]:
    """``value``, a list of ``len(fields)`` items each checked by its (name, test, expected)."""
    names = ", ".join(name for name, _, _ in fields)
    if not isinstance(value, (list, tuple)) or len(value) != len(fields):
        raise _bad_rng(where, f"a list of {len(fields)} values [{names}] (as capture_rng returns)", value)
    for index, (item, (name, valid, expected)) in enumerate(zip(value, fields)):
        if not valid(item):
            raise _bad_rng(f"{where}[{index}] ({name})", expected, item)
    return tuple(value)


def _checked_rng(tensors: Any, meta: Any) -> tuple[torch.Tensor, tuple[Any, ...], tuple[Any, ...]]:
    """The torch, numpy and Python states of ``restore_rng``'s arguments, each checked and ready to set.

    Each is also tried on a scratch generator, so that whatever these checks miss (torch's state size
    differs between versions) fails here with this module's error, not later with a half-restored state.
    """
    for name, value, keys in (("tensors", tensors, _RNG_TENSORS), ("meta", meta, ("numpy", "python"))):
        if not isinstance(value, Mapping) or any(key not in value for key in keys):
            expected = f"a dict holding {' and '.join(repr(key) for key in keys)} (as capture_rng returns)"
            raise _bad_rng(name, expected, value)

    torch_state = tensors["rng.torch"]
    size = torch.get_rng_state().numel()
    expected = f"a 1-D uint8 tensor on cpu of {size} bytes (torch's generator state)"
    if not (
        isinstance(torch_state, torch.Tensor)
        and torch_state.dtype == torch.uint8
        and torch_state.dim() == 1
        and torch_state.device.type == "cpu"
    ):
        raise _bad_rng("tensors['rng.torch']", expected, torch_state)
    try:
        torch.Generator().set_state(torch_state)
    except RuntimeError:
        raise _bad_rng("tensors['rng.torch']", expected, torch_state) from None

    keys = tensors["rng.numpy"]
    expected = f"a 1-D int64 tensor on cpu of {_MT_WORDS} values in [0, 2**32) (numpy's MT19937 key)"
    if not (
        isinstance(keys, torch.Tensor)
        and keys.dtype == torch.int64
        and tuple(keys.shape) == (_MT_WORDS,)
        and keys.device.type == "cpu"
    ):
        raise _bad_rng("tensors['rng.numpy']", expected, keys)
    if int(keys.min()) < 0 or int(keys.max()) >= 2**32:
        low, high = int(keys.min()), int(keys.max())
        raise _bad_rng("tensors['rng.numpy']", expected, keys, f"{_described(keys)} with values from {low} to {high}")
    kind, position, has_gauss, cached = _checked_fields("meta['numpy']", meta["numpy"], _NUMPY_RNG)
    numpy_state = (kind, keys.numpy().astype(np.uint32), position, has_gauss, cached)
    version, internal, gauss = _checked_fields("meta['python']", meta["python"], _PYTHON_RNG)
    python_state = (version, tuple(internal), gauss)
    try:
        np.random.RandomState().set_state(numpy_state)  # noqa: NPY002 (the legacy state format capture_rng reads)
        random.Random().setstate(python_state)
    except (ValueError, TypeError, OverflowError) as error:
        raise TransferkitError(
            f"The RNG states in meta are malformed ({error}). Got {_described(meta)} instead."
        ) from None
    return torch_state, numpy_state, python_state


def save_checkpoint(
    directory: str | os.PathLike,
    *,
    epoch: int,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the state after ``epoch`` (0-based, completed) into ``directory``.

    The global torch, numpy and Python RNG states are saved too; state files of other epochs are
    removed once the index names the new one.

    Parameters
    ----------
    directory : path
        Created if missing.
    epoch : int
        The last completed epoch, 0-based.
    model_state : dict of str to Tensor
        ``network.state_dict()``.
    optimizer_state : dict
        ``optimizer.state_dict()``: its tensors go to the state file, the rest to the JSON index.
    scheduler_state : dict
        ``scheduler.state_dict()``; must be JSON-able.
    extra_tensors : dict of str to Tensor, optional
        More tensors (e.g. the best epoch's weights), read back as ``extra_tensors``.
    meta : dict, optional
        JSON-able run information (fingerprint, history, ...), read back as ``meta``.

    Returns
    -------
    Path
        The index file, ``directory / "checkpoint.json"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    optimizer_tensors, optimizer_meta = _optimizer_to_flat(optimizer_state)
    rng_tensors, rng_meta = capture_rng()
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model_state.items()}
    tensors.update(optimizer_tensors)
    tensors.update(rng_tensors)
    tensors.update({f"extra.{k}": v.detach().clone().contiguous() for k, v in (extra_tensors or {}).items()})
    state_name = f"state-{epoch:04d}.safetensors"
    atomic_write(directory / state_name, lambda path: save_file(tensors, path))
    index = {
        "format": CHECKPOINT_FORMAT,
        "format_version": 1,
        "epoch": epoch,
        "state_file": state_name,
        "optimizer": optimizer_meta,
        "scheduler": scheduler_state,
        "rng": rng_meta,
        "meta": meta or {},
    }
    atomic_write_json(directory / CHECKPOINT_INDEX, index)
    for old in directory.glob("state-*.safetensors"):
        if old.name != state_name:
            old.unlink(missing_ok=True)
    return directory / CHECKPOINT_INDEX


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What each field of the index must be, checked before any of it is used: a hand-edited or damaged
# index must fail here with its file named, not deep inside torch, numpy or the loop.
_FIELDS: dict[str, tuple[Any, str]] = {
    "epoch": (lambda v: _is_int(v) and v >= 0, "the last completed epoch, an int >= 0"),
    "state_file": (lambda v: isinstance(v, str) and bool(v), "the name of a state file in the same folder"),
    "optimizer": (
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("param_groups"), list)
            and all(isinstance(group, dict) for group in v["param_groups"])
            and isinstance(v.get("scalars"), dict)
            and all(isinstance(entry, dict) for entry in v["scalars"].values())
        ),
        "an object with 'param_groups' (a list of objects) and 'scalars' (an object of objects)",
    ),
    "scheduler": (lambda v: isinstance(v, dict), "an object (the scheduler's state)"),
    "rng": (
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("numpy"), list)
            and len(v["numpy"]) == 4
            and isinstance(v.get("python"), list)
            and len(v["python"]) == 3
            and isinstance(v["python"][1], list)
        ),
        "an object with 'numpy' (4 values) and 'python' (3 values) RNG states",
    ),
    "meta": (lambda v: isinstance(v, dict), "an object (the run's information)"),
}
_RNG_TENSORS = ("rng.torch", "rng.numpy")


def _read_index(index_path: Path) -> dict[str, Any]:
    """The checked JSON index of a checkpoint."""
    where = str(index_path)
    try:
        text = index_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise TransferkitError(
            f"checkpoint {where!r} is not UTF-8 text (byte {error.object[error.start]:#04x} at position "
            f"{error.start}); it is damaged: resume needs the checkpoint.json that transferkit wrote"
        ) from None
    except OSError as error:
        raise TransferkitError(f"checkpoint {where!r} cannot be read: {error.strerror or error}") from None
    try:
        index = json.loads(text)
    except json.JSONDecodeError as error:
        raise TransferkitError(f"{where!r} is not valid JSON: {error}") from error
    if not isinstance(index, dict):
        raise TransferkitError(
            f"checkpoint {where!r} holds {_shorten(index)}; expected a JSON object with the checkpoint's fields"
        )
    if index.get("format") != CHECKPOINT_FORMAT:
        raise TransferkitError(f"{where!r} is not a transferkit checkpoint")
    for key, (valid, expected) in _FIELDS.items():
        if key not in index:
            raise TransferkitError(f"checkpoint {where!r} has no {key!r} field; it is damaged (expected {expected})")
        if not valid(index[key]):
            raise TransferkitError(
                f"checkpoint {where!r} has {key!r} = {_shorten(index[key])}; it is damaged (expected {expected})"
            )
    name = index["state_file"]
    # only a plain name: an edited index must not make resume read a file outside the checkpoint folder
    if not is_plain_name(name) or name.startswith("."):
        raise TransferkitError(
            f"checkpoint {where!r} names state file {name!r}; expected a plain file name inside the "
            "checkpoint folder (no '/', '\\' or '..', not starting with '.')"
        )
    return index


def _shorten(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any] | None:
    """Read the latest checkpoint of ``directory``; ``None`` when there is none yet.

    Parameters
    ----------
    directory : path
        The checkpoint folder (holding ``checkpoint.json``).

    Returns
    -------
    dict or None
        ``epoch``, ``model_state``, ``optimizer_state``, ``scheduler_state``, ``extra_tensors``,
        ``meta``, ``rng_tensors`` and ``rng_meta`` (pass both to :func:`restore_rng`).

    Raises
    ------
    TransferkitError
        When the index exists but is not a transferkit checkpoint, is damaged (not UTF-8 JSON, a
        field missing or of the wrong type), names a state file outside the folder or a missing
        one, or when the state file is not a complete safetensors file with the tensors a
        checkpoint holds. The message names the file and what is wrong.
    """
    directory = Path(directory)
    index_path = directory / CHECKPOINT_INDEX
    if not index_path.is_file():
        return None
    index = _read_index(index_path)
    state_path = directory / index["state_file"]
    if not state_path.is_file():
        raise TransferkitError(f"checkpoint {str(index_path)!r} names {index['state_file']!r}, which is missing")
    try:
        tensors = load_file(str(state_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise TransferkitError(
            f"checkpoint state file {str(state_path)!r} cannot be read ({error}); it is damaged or incomplete"
        ) from None
    missing = [name for name in _RNG_TENSORS if name not in tensors]
    if not any(name.startswith("model.") for name in tensors):
        missing.insert(0, "model.*")
    if missing:
        raise TransferkitError(
            f"checkpoint state file {str(state_path)!r} lacks the tensors {', '.join(missing)}; it is damaged"
        )
    try:
        optimizer_state = _optimizer_from_flat(tensors, index["optimizer"])
    except ValueError:  # a tensor name or a scalars key that is not a parameter index
        raise TransferkitError(
            f"checkpoint {str(index_path)!r} holds optimizer state not indexed by parameter number; it is damaged"
        ) from None
    return {
        "epoch": index["epoch"],
        "model_state": {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")},
        "optimizer_state": optimizer_state,
        "scheduler_state": index["scheduler"],
        "extra_tensors": {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")},
        "rng_tensors": {k: v for k, v in tensors.items() if k.startswith("rng.")},
        "rng_meta": index["rng"],
        "meta": index["meta"],
    }
