"""The one folder transferkit keeps its own things in: the model zoo and data it was given."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["transferkit_home"]


def transferkit_home() -> Path:
    """``$TRANSFERKIT_HOME``, by default ``~/.local/share/transferkit`` (the XDG data folder).

    The zoo is its ``zoo/`` and built-in data sets may be placed in its ``data/``; features are
    cached elsewhere (:func:`transferkit.features.cache_directory`), as a cache can be deleted.
    """
    value = os.environ.get("TRANSFERKIT_HOME")
    return Path(value).expanduser() if value else Path.home() / ".local" / "share" / "transferkit"
