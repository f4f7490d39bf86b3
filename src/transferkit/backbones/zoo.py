"""The local model zoo: backbones this library trained, kept for later transfer.

An entry is a folder ``$TRANSFERKIT_HOME/zoo/NAME`` (default ``~/.local/share/transferkit``)
holding ``weights.safetensors`` and ``backbone.json`` (its :class:`BackboneCfg`, the sha256 of
the weights and where the model came from). ``create_backbone("zoo:NAME")`` — or
``zoo:/path/to/entry`` — builds it offline, and ``transferkit list`` / ``rank`` see it.

Entries built on timm architectures (every image backbone here) are supported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ..errors import TransferkitError, did_you_mean
from ._config import BackboneCfg, sha256_file, verify_weights

__all__ = ["zoo_directory", "list_zoo", "save_to_zoo", "create_zoo_backbone"]

_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def zoo_directory() -> Path:
    """``$TRANSFERKIT_HOME/zoo``, by default ``~/.local/share/transferkit/zoo``."""
    home = os.environ.get("TRANSFERKIT_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share", "transferkit")
    return Path(home) / "zoo"


def _read_entry(folder: Path) -> dict[str, Any]:
    index = folder / "backbone.json"
    if not index.is_file():
        raise TransferkitError(f"{str(folder)!r} is not a zoo entry: it has no backbone.json")
    try:
        entry = json.loads(index.read_text())
        entry["cfg"] = BackboneCfg.from_dict(entry["cfg"])
    except (ValueError, KeyError, TypeError) as error:
        raise TransferkitError(f"zoo entry {str(folder)!r} has an unreadable backbone.json ({error})") from None
    return entry


def list_zoo() -> list[dict[str, Any]]:
    """Entries of the zoo: dicts with ``name`` (``zoo:NAME``), ``cfg`` and ``provenance``; broken ones skipped."""
    root = zoo_directory()
    entries = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_dir() and (folder / "backbone.json").is_file():
            try:
                entry = _read_entry(folder)
            except TransferkitError:
                continue
            entries.append(
                {"name": f"zoo:{folder.name}", "cfg": entry["cfg"], "provenance": entry.get("provenance", {})}
            )
    return entries


def save_to_zoo(backbone: Any, name: str, *, provenance: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Store a trained backbone as ``zoo:NAME``.

    Parameters
    ----------
    backbone : TimmBackbone
        The backbone to keep (its source-task classifier goes with it).
    name : str
        Letters, digits, ``_ . -``.
    provenance : dict, optional
        Where it came from (data, epochs, accuracy, ...); stored as JSON.
    overwrite : bool
        Replace an existing entry of that name.

    Returns
    -------
    Path
        The entry's folder.
    """
    from .vision import TimmBackbone

    if not isinstance(name, str) or not _NAME.match(name):
        raise TransferkitError(
            f"zoo name must be letters, digits and _ . - (not starting with one of those); got {name!r}"
        )
    if not isinstance(backbone, TimmBackbone):
        raise TransferkitError(
            f"the zoo stores backbones built on timm architectures; got {type(backbone).__name__} ({backbone.cfg.name})"
        )
    root = zoo_directory()
    target = root / name
    if target.exists() and not overwrite:
        raise TransferkitError(
            f"zoo entry {name!r} already exists at {str(target)!r}; pass overwrite=True to replace it"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in backbone.model.state_dict().items()}
        save_file(state, str(staging / "weights.safetensors"))
        cfg = BackboneCfg.from_dict(
            {
                **backbone.cfg.to_dict(),
                "name": f"zoo:{name}",
                "weights": "weights.safetensors",
                "sha256": sha256_file(str(staging / "weights.safetensors")),
                "source": f"transferkit zoo ({name})",
                "num_source_classes": int(getattr(backbone.model, "num_classes", 0)),
            }
        )
        index = {"format": _FORMAT, "kind": "timm", "cfg": cfg.to_dict(), "provenance": provenance or {}}
        (staging / "backbone.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # the entry appears whole or not at all
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def create_zoo_backbone(spec: str) -> Any:
    """Build ``zoo:NAME`` (or ``zoo:/path/to/entry``) offline, with its weights checked."""
    import timm

    from .vision import TimmBackbone, load_state_dict_file

    folder = Path(spec) if os.sep in spec or spec.startswith(".") else zoo_directory() / spec
    if not folder.is_dir():
        known = [entry["name"].removeprefix("zoo:") for entry in list_zoo()]
        raise did_you_mean("zoo model", spec, known, hint=f"the zoo is {str(zoo_directory())!r}")
    entry = _read_entry(folder)
    stored = entry["cfg"]
    weights = str(folder / stored.weights)
    verify_weights(stored, weights)
    model = timm.create_model(stored.arch, pretrained=False, num_classes=stored.num_source_classes)
    missing, unexpected = model.load_state_dict(load_state_dict_file(weights), strict=False)
    if missing or unexpected:
        raise TransferkitError(
            f"zoo entry {str(folder)!r} does not fit timm:{stored.arch}: "
            f"{len(missing)} missing and {len(unexpected)} unexpected tensors"
        )
    cfg = BackboneCfg.from_dict({**stored.to_dict(), "name": f"zoo:{spec}", "weights": weights})
    return TimmBackbone(cfg, model.eval())
