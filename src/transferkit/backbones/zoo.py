"""The local model zoo: backbones this library trained, kept for later transfer.

An entry is a folder ``$TRANSFERKIT_HOME/zoo/NAME`` (default ``~/.local/share/transferkit``)
holding ``weights.safetensors`` and ``backbone.json`` (its :class:`BackboneCfg`, the sha256 of
the weights and where the model came from). ``create_backbone("zoo:NAME")`` — or
``zoo:/path/to/entry`` — builds it offline, and ``transferkit list`` / ``rank`` see it.

Three kinds of entry: ``timm`` (any image backbone on a timm architecture, with its
source-task classifier), ``native`` (the ``small-cnn`` / ``mlp`` architectures of
:mod:`transferkit.backbones.native`, with theirs) and ``hf`` (a text encoder, kept as a Hugging
Face folder of safetensors, config and tokenizer; its source head is not kept).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from .._home import transferkit_home
from .._io import current_umask, is_plain_name
from ..errors import TransferkitError, did_you_mean
from ._config import BackboneCfg, sha256_file

__all__ = ["zoo_directory", "zoo_entry_folder", "list_zoo", "save_to_zoo", "create_zoo_backbone", "check_zoo_name"]

_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Where save_to_zoo sets an old entry aside while the new one moves in. Its staging folders (".NAME." and
# tempfile's letters, digits and "_") can never match, as tempfile's random part holds no "-".
_ASIDE = re.compile(r"^\.(?P<name>.+)\.old-[0-9a-f]{8}$")


def zoo_directory() -> Path:
    """``$TRANSFERKIT_HOME/zoo``, by default ``~/.local/share/transferkit/zoo``."""
    return transferkit_home() / "zoo"


def check_zoo_name(name: Any) -> None:
    """Raise unless ``name`` can name a zoo entry (a folder of the zoo, listed as ``zoo:NAME``).

    Parameters
    ----------
    name : str
        Letters, digits and ``_ . -``, starting with a letter or digit (so never a path or a dot-folder).

    Raises
    ------
    TransferkitError
        Naming the value and the rule.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        hint = f" (the name without 'zoo:': {name[4:]!r})" if isinstance(name, str) and name.startswith("zoo:") else ""
        raise TransferkitError(
            f"zoo name must be letters, digits and _ . - (not starting with one of those); got {name!r}{hint}"
        )


def _set_aside(root: Path, name: str) -> list[Path]:
    """The folders that overwrites of ``name`` set aside and left (killed before removing them), newest first."""
    found = []
    for folder in root.glob(f".{name}.old-*") if root.is_dir() else []:
        match = _ASIDE.match(folder.name)
        if match is None or match["name"] != name:
            continue
        try:
            if folder.is_dir():
                # a folder's mtime is when its last file was written: when that version of the entry was saved
                found.append((folder.stat().st_mtime_ns, folder.name, folder))
        except OSError:  # removed or restored by another process meanwhile
            continue
    return [folder for *_, folder in sorted(found, reverse=True)]


def _recover(root: Path, name: str) -> Path:
    """``root / name``, first moved back from its newest set-aside copy if only that is left."""
    target = root / name
    if os.path.lexists(target):
        return target
    asides = _set_aside(root, name)
    if not asides:
        return target
    newest = asides[0]
    try:
        os.rename(newest, target)  # atomic; and it never replaces an entry that appeared meanwhile
    except OSError as error:
        if os.path.lexists(target):  # another process restored it, or a save put the new entry in, meanwhile
            return target
        raise TransferkitError(
            f"The zoo entry {name!r} is missing and its copy {str(newest)!r}, set aside by an interrupted "
            f"overwrite, cannot be moved back ({error.strerror or error}). Rename it to {str(target)!r} by hand."
        ) from None
    older = f"; {len(asides) - 1} older set-aside copies are left until it is next overwritten" if asides[1:] else ""
    warnings.warn(
        f"The zoo entry {name!r} was missing: a save overwriting it was interrupted after setting the old entry "
        f"aside. Restored it from {str(newest)!r}{older}. Save again with overwrite to replace it.",
        stacklevel=3,
    )
    return target


def zoo_entry_folder(name: str) -> Path:
    """The folder of ``zoo:NAME``, restored first if an interrupted overwrite left the entry set aside.

    Overwriting an entry renames the old one to ``.NAME.old-XXXXXXXX``, renames the new one into
    place, then deletes the old one. A process killed between the two renames leaves no ``NAME``: the
    newest such folder is then renamed back to ``NAME``, with a warning. Nothing is deleted here.

    Parameters
    ----------
    name : str
        The entry's name, as :func:`check_zoo_name` allows.

    Returns
    -------
    Path
        ``zoo_directory() / name``; it exists if the entry does or could be restored.

    Raises
    ------
    TransferkitError
        When ``name`` is not a zoo name, or a set-aside copy is the entry's only one and cannot be moved back.
    """
    check_zoo_name(name)
    return _recover(zoo_directory(), name)


def _recreate(folder: Path) -> str:
    return f"re-create it with `transferkit pretrain DATA --out {folder.name} --overwrite`"


def _read_entry(folder: Path) -> dict[str, Any]:
    index = folder / "backbone.json"
    if not index.is_file():
        raise TransferkitError(f"{str(folder)!r} is not a zoo entry: it has no backbone.json")
    try:
        entry = json.loads(index.read_bytes().decode("utf-8"))
        if not isinstance(entry, dict) or "cfg" not in entry:
            raise TransferkitError("expected a JSON object with a 'cfg' field")
        entry["cfg"] = BackboneCfg.from_dict(entry["cfg"])
    except (ValueError, KeyError, TypeError) as error:  # JSON, UTF-8 and BackboneCfg's own field checks
        raise TransferkitError(
            f"zoo entry {str(folder)!r} is damaged: its backbone.json is unreadable ({error}); {_recreate(folder)}"
        ) from None
    weights = entry["cfg"].weights
    problem = None
    if not isinstance(entry.get("kind", "timm"), str):
        problem = f"'kind' is {entry['kind']!r}; expected timm, native or hf"
    elif not isinstance(entry.get("provenance", {}), dict):
        problem = f"'provenance' is {entry['provenance']!r}; expected an object"
    # a plain name, so that an edited entry cannot make create_backbone read weights from elsewhere
    elif not is_plain_name(weights):
        problem = f"cfg 'weights' is {weights!r}; expected a file or folder name inside the entry"
    if problem:
        raise TransferkitError(
            f"zoo entry {str(folder)!r} is damaged: its backbone.json {problem}; {_recreate(folder)}"
        )
    return entry


def list_zoo() -> list[dict[str, Any]]:
    """Entries of the zoo: dicts with ``name`` (``zoo:NAME``), ``cfg`` and ``provenance``; broken ones skipped.

    Dot-folders are skipped too: they are the staging and set-aside folders of :func:`save_to_zoo`
    (left behind when it was killed), never entries. An entry found only set aside is restored first
    (see :func:`zoo_entry_folder`).

    Returns
    -------
    list of dict
        One per readable entry, sorted by name.
    """
    root = zoo_directory()
    folders = list(root.iterdir()) if root.is_dir() else []
    set_aside = {match["name"] for folder in folders if (match := _ASIDE.match(folder.name))}
    for name in sorted(name for name in set_aside if _NAME.match(name)):
        try:
            _recover(root, name)
        except TransferkitError as error:  # one entry that cannot be restored must not hide the others
            warnings.warn(str(error), stacklevel=2)
    entries = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith("."):
            continue
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
    backbone : TimmBackbone, NativeBackbone or TransformerBackbone
        The backbone to keep (for the first two its source-task classifier goes with it).
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

    Notes
    -----
    An entry an interrupted overwrite left only set aside is restored first (see :func:`zoo_entry_folder`),
    so it counts as existing; set-aside copies of older versions are deleted once the new entry is in place.
    """
    from .native import NativeBackbone
    from .text import TransformerBackbone
    from .vision import TimmBackbone

    check_zoo_name(name)
    kinds = {TimmBackbone: "timm", NativeBackbone: "native", TransformerBackbone: "hf"}
    kind = next((k for cls, k in kinds.items() if isinstance(backbone, cls)), None)
    if kind is None:
        raise TransferkitError(
            f"the zoo stores timm, native (small-cnn, mlp) and Hugging Face text backbones; got "
            f"{type(backbone).__name__} ({backbone.cfg.name})"
        )
    root = zoo_directory()
    target = _recover(root, name)
    if target.exists() and not overwrite:
        raise TransferkitError(
            f"zoo entry {name!r} already exists at {str(target)!r}; pass overwrite=True to replace it"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    staging.chmod(0o777 & ~current_umask())  # an entry others can read, as any folder the user makes
    try:
        if kind == "hf":
            weights = "model"
            backbone.encoder.save_pretrained(str(staging / weights), safe_serialization=True)
            backbone.tokenizer.save_pretrained(str(staging / weights))
            digest = sha256_file(str(staging / weights / "model.safetensors"))
            source_classes = 0
        else:
            weights = "weights.safetensors"
            module = backbone.model if kind == "timm" else backbone
            state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            save_file(state, str(staging / weights))
            digest = sha256_file(str(staging / weights))
            source_classes = int(getattr(backbone.model, "num_classes", 0)) if kind == "timm" else None
        fields = {"name": f"zoo:{name}", "weights": weights, "sha256": digest, "source": f"transferkit zoo ({name})"}
        if source_classes is not None:
            fields["num_source_classes"] = source_classes
        cfg = BackboneCfg.from_dict({**backbone.cfg.to_dict(), **fields})
        index = {"format": _FORMAT, "kind": kind, "cfg": cfg.to_dict(), "provenance": provenance or {}}
        (staging / "backbone.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        leftovers = _set_aside(root, name)  # superseded versions, from overwrites killed before their cleanup
        # The old entry is set aside (renamed, not deleted) until the new one is in place: a kill at any
        # instant leaves it whole, at its name or in a dot-folder beside it (which lookups move back).
        for attempt in (1, 2):
            aside = root / f".{name}.old-{secrets.token_hex(4)}" if target.exists() else None
            if aside is not None:
                os.rename(target, aside)
            try:
                os.replace(staging, target)  # the entry appears whole or not at all
                break
            except BaseException as error:
                if aside is not None and not os.path.lexists(target):
                    os.rename(aside, target)
                # A lookup in another process restored the old entry in the instant between the two renames:
                # set it aside again rather than throw the new one away.
                elif attempt == 1 and isinstance(error, OSError) and aside is not None and not aside.exists():
                    continue
                raise
        if aside is not None:  # the new entry is in place: these are superseded copies, no longer the only ones
            for old in (aside, *leftovers):
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def create_zoo_backbone(spec: str) -> Any:
    """Build ``zoo:NAME`` (or ``zoo:/path/to/entry``) offline, with its weights checked."""
    folder = Path(spec) if os.sep in spec or spec.startswith(".") else zoo_directory() / spec
    if _NAME.match(folder.name):
        folder = _recover(folder.parent, folder.name)
    if not folder.is_dir():
        known = [entry["name"].removeprefix("zoo:") for entry in list_zoo()]
        raise did_you_mean("zoo model", spec, known, hint=f"the zoo is {str(zoo_directory())!r}")
    entry = _read_entry(folder)
    stored = entry["cfg"]
    kind = entry.get("kind", "timm")
    weights = str(folder / stored.weights)
    cfg = BackboneCfg.from_dict({**stored.to_dict(), "name": f"zoo:{spec}", "weights": weights})
    if kind == "hf":
        from .text import _build

        _verify_entry_weights(folder, stored, os.path.join(weights, "model.safetensors"))
        return _build(cfg)
    _verify_entry_weights(folder, stored, weights)
    from .vision import load_state_dict_file

    state = load_state_dict_file(weights)
    if kind == "native":
        from .native import build_native

        backbone = build_native(cfg)
        module = backbone
    elif kind == "timm":
        import timm

        from .vision import TimmBackbone

        module = timm.create_model(stored.arch, pretrained=False, num_classes=stored.num_source_classes)
        backbone = None
    else:
        raise TransferkitError(f"zoo entry {str(folder)!r} has an unknown kind {kind!r}; expected timm, native or hf")
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TransferkitError(
            f"zoo entry {str(folder)!r} does not fit its architecture {stored.arch}: "
            f"{len(missing)} missing and {len(unexpected)} unexpected tensors"
        )
    return backbone.eval() if backbone is not None else TimmBackbone(cfg, module.eval())


def _verify_entry_weights(folder: Path, stored: BackboneCfg, path: str) -> None:
    """Like :func:`verify_weights`, but the message names the entry and how to repair it, not an install."""
    if not os.path.isfile(path):
        raise TransferkitError(
            f"zoo entry {str(folder)!r} is damaged: its weights file {path!r} is missing; {_recreate(folder)}"
        )
    actual = sha256_file(path)
    if stored.sha256 is not None and actual != stored.sha256:
        raise TransferkitError(
            f"zoo entry {str(folder)!r} is damaged: its weights {path!r} have sha256 {actual[:16]}…, expected "
            f"{stored.sha256[:16]}… (the file is corrupt or was replaced); {_recreate(folder)}"
        )
