"""Progress bars that stay quiet off a terminal or when asked to."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = os.environ.get("TRANSFERKIT_QUIET", "") not in ("", "0")


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _QUIET
    _QUIET = bool(quiet)


def progress_enabled() -> bool:
    """Whether progress bars are shown: not quiet and stderr is a terminal."""
    return not _QUIET and sys.stderr.isatty()


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when :func:`progress_enabled`, else pass it through."""
    if not progress_enabled():
        yield from iterable
        return
    yield from tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


class quiet_unless:
    """Context manager: silence progress bars inside unless ``verbose`` is true."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def __enter__(self) -> None:
        global _QUIET
        self._previous = _QUIET
        _QUIET = _QUIET or not self.verbose

    def __exit__(self, *exc: object) -> None:
        global _QUIET
        _QUIET = self._previous
