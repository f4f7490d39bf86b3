"""Exceptions raised for user mistakes.

Every user-facing error is a :class:`TransferkitError`; the CLI prints its message as
one line on stderr and exits with status 2. Messages name the argument, the value
received and what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = ["TransferkitError", "DataError", "UnknownNameError", "NotFittedError", "did_you_mean"]


class TransferkitError(ValueError):
    """Base class of every error caused by the user's input or settings."""


class DataError(TransferkitError):
    """The data cannot be used as given (missing path, one class, too few examples, ...)."""


class UnknownNameError(TransferkitError, KeyError):
    """A backbone, data set or strategy name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(_SklearnNotFittedError, TransferkitError):
    """An estimator method that needs ``fit`` was called before it."""


def did_you_mean(kind: str, name: str, known: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build an :class:`UnknownNameError` with the closest registered names.

    Parameters
    ----------
    kind : str
        What was looked up, e.g. ``"backbone"``.
    name : str
        The name the user gave.
    known : iterable of str
        The registered names.
    hint : str, optional
        Appended to the message, e.g. ``"see `transferkit list`"``.

    Returns
    -------
    UnknownNameError
        The error, to be raised by the caller.
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    # equally close names in alphabetical order, so the message does not depend on registration order
    close.sort(key=lambda candidate: (-round(difflib.SequenceMatcher(None, name, candidate).ratio(), 6), candidate))
    if not close:
        close = [k for k in known if name.lower() in k.lower() or k.lower().startswith(name.lower()[:4])][:3]
    message = f"unknown {kind} {name!r}"
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif known:
        message += f"; expected one of {', '.join(known)}"
    else:
        message += f"; there is no {kind} yet"
    if hint:
        message += f" ({hint})"
    return UnknownNameError(message)
