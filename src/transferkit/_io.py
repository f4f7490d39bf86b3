"""Atomic file writes: a crash never leaves a half-written model or checkpoint."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import TransferkitError

__all__ = ["atomic_write", "atomic_write_json", "check_output_path", "current_umask", "is_plain_name"]


def is_plain_name(name: str) -> bool:
    """Whether ``name`` names a file or folder directly inside its folder: no ``/``, ``\\`` or ``..``.

    What a hand-edited index (a checkpoint's state file, a zoo entry's weights) may name, so that it
    can never make transferkit read a file outside the folder it describes.
    """
    return bool(name) and not any(part in name for part in ("/", "\\", ".."))


def current_umask() -> int:
    """The process's umask: the permission bits new files and folders do not get."""
    mask = os.umask(0)  # reading the umask means setting it; it is put back at once
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(temporary_path)`` then rename the result onto ``path`` (same folder, so atomic).

    The file gets the permissions of any file the user creates (0666 less the umask), not the
    owner-only 0600 of a temporary file.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically, creating the file's folder if needed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda temporary: Path(temporary).write_text(json.dumps(data, indent=2)))


def check_output_path(path: str | os.PathLike, option: str, *, folder: bool = False) -> None:
    """Raise before any work if ``path`` cannot be written as a file (or, with ``folder``, a folder).

    Missing folders on the way are fine (they are created when the output is written); a file where a
    folder must be, a folder where a file must be, or a folder without write permission are not.

    Parameters
    ----------
    path : str or os.PathLike
        Where the command will write.
    option : str
        The option that named it, for the message (e.g. ``"--json"``).
    folder : bool, default=False
        Whether ``path`` is a folder to write into rather than a file.

    Raises
    ------
    TransferkitError
        Naming the path and what is wrong with it.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise TransferkitError(f"{option} {str(path)!r} is a file; expected a folder to write into")
    if not folder and path.is_dir():
        raise TransferkitError(f"{option} {str(path)!r} is a folder; expected a file name")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TransferkitError(f"{option} {str(path)!r} cannot be written: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TransferkitError(f"{option} {str(path)!r} cannot be written: no permission to write in {str(existing)!r}")
