"""BackboneCfg: everything needed to feed a backbone, travelling with its weights."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import TransferkitError

__all__ = ["BackboneCfg", "fine_tuning_defaults", "sha256_file", "verify_weights"]


@dataclass(frozen=True)
class BackboneCfg:
    """How to feed a backbone and where its weights come from (after timm's pretrained cfg).

    Attributes
    ----------
    name : str
        Registered name, ``arch.tag`` (``efficientnet_lite0.in1k``) or a pass-through name.
    arch : str
        Architecture it is built from (a timm model name, or ``bert`` for text encoders).
    modality : {"image", "text", "audio", "tabular"}
        What the backbone reads.
    feature_dim : int
        Width of :meth:`Backbone.forward_features`'s output.
    input_size : tuple of int, optional
        ``(channels, height, width)`` the weights were trained at (images).
    mean, std : tuple of float, optional
        Per-channel normalisation applied after scaling pixels to [0, 1] (images).
    interpolation : str
        Resize filter for images (``"bilinear"``).
    max_length : int, optional
        Token limit (text).
    weights : str
        Path of the weights file or folder.
    sha256 : str, optional
        Expected sha256 of the weights file; checked when the backbone is created.
    source : str
        Where the weights come from, for people (a package name, a path).
    num_source_classes : int
        Classes of the source task's head (1000 for ImageNet), 0 when there is none.
    pooling : str
        How token or spatial outputs become one vector (``"avg"``, ``"mean"``).
    normalize : bool
        Whether the embedding is L2-normalised (sentence-transformers models).
    extra : dict
        Architecture details a builder needs (native networks' widths, a random init's seed).
    fine_tuning : dict
        How these weights want to be fine-tuned, where that differs from the strategies'
        ImageNet-minded defaults: :class:`~transferkit.training.TrainConfig` settings and the
        strategies' ``body_lr_scale``. They replace the strategy's defaults; the user's own
        settings replace them (see :func:`fine_tuning_defaults`). Empty for registry backbones.
    """

    name: str
    arch: str
    modality: str
    feature_dim: int
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str = "bilinear"
    max_length: int | None = None
    weights: str = ""
    sha256: str | None = None
    source: str = ""
    num_source_classes: int = 0
    pooling: str = "avg"
    normalize: bool = False
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    fine_tuning: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneCfg:
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Parameters
        ----------
        data : dict
            Fields of a :class:`BackboneCfg`, as JSON types (lists for tuples).

        Returns
        -------
        BackboneCfg

        Raises
        ------
        TransferkitError
            When ``data`` is not a dict, lacks ``name``, ``arch``, ``modality`` or ``feature_dim``,
            or a field has the wrong type; the message names the field, its value and what was expected.
        """
        if not isinstance(data, dict):
            raise TransferkitError(
                f"backbone settings are {_short(data)}; expected a JSON object of BackboneCfg fields"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        missing = [name for name in _REQUIRED if name not in values]
        if missing:
            raise TransferkitError(f"backbone settings lack {', '.join(repr(m) for m in missing)}")
        for key, value in values.items():
            valid, expected = _FIELD_TYPES[key]
            if not valid(value):
                raise TransferkitError(f"backbone setting {key!r} is {_short(value)}; expected {expected}")
        for key in ("input_size", "mean", "std"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _optional(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_REQUIRED = ("name", "arch", "modality", "feature_dim")
_MODALITIES = ("image", "text", "audio", "tabular")
# Checked when a cfg is read from JSON (a zoo entry, a saved model): a hand-edited or damaged file must
# fail with the field named, not as a TypeError deep inside the network builder or the preprocessor.
_FIELD_TYPES: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "arch": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "modality": (lambda v: v in _MODALITIES, f"one of {', '.join(_MODALITIES)}"),
    "feature_dim": (lambda v: _is_int(v, 1), "a positive int"),
    "input_size": (
        _optional(lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_int(s, 1) for s in v)),
        "null or [channels, height, width], three positive ints",
    ),
    "mean": (
        _optional(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_number(x) for x in v)),
        "null or a list of numbers, one per channel",
    ),
    "std": (
        _optional(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_number(x) and x > 0 for x in v)),
        "null or a list of positive numbers, one per channel",
    ),
    "interpolation": (lambda v: isinstance(v, str), "a string"),
    "max_length": (_optional(lambda v: _is_int(v, 1)), "null or a positive int"),
    "weights": (lambda v: isinstance(v, str), "a string"),
    "sha256": (_optional(lambda v: isinstance(v, str)), "null or a hex string"),
    "source": (lambda v: isinstance(v, str), "a string"),
    "num_source_classes": (lambda v: _is_int(v, 0), "an int >= 0"),
    "pooling": (lambda v: isinstance(v, str), "a string"),
    "normalize": (lambda v: isinstance(v, bool), "true or false"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
    "fine_tuning": (lambda v: isinstance(v, dict), "an object"),
}


def fine_tuning_defaults(cfg: BackboneCfg) -> tuple[dict[str, Any], float | None]:
    """Split ``cfg.fine_tuning`` into training settings and the backbone's rate factor.

    Parameters
    ----------
    cfg : BackboneCfg

    Returns
    -------
    settings : dict
        Keys of :class:`~transferkit.training.TrainConfig`.
    body_lr_scale : float or None
        The factor on the backbone groups' rate that fine-tuning strategies use when the user
        set none; ``None`` leaves the strategy's own default.

    Raises
    ------
    TransferkitError
        When a key is neither a training setting nor ``body_lr_scale`` (a hand-edited or newer entry).
    """
    from ..training.config import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed"}
    settings = dict(getattr(cfg, "fine_tuning", None) or {})  # duck-typed cfgs of custom backbones have none
    body_lr_scale = settings.pop("body_lr_scale", None)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TransferkitError(
            f"backbone {cfg.name!r} asks for fine-tuning setting {unknown[0]!r}, which is not one of "
            f"{sorted(known | {'body_lr_scale'})}"
        )
    if body_lr_scale is not None:
        ok = isinstance(body_lr_scale, (int, float)) and not isinstance(body_lr_scale, bool) and 0 < body_lr_scale <= 1
        if not ok:
            raise TransferkitError(
                f"backbone {cfg.name!r} asks for body_lr_scale {body_lr_scale!r}; expected a float in (0, 1]"
            )
        body_lr_scale = float(body_lr_scale)
    return settings, body_lr_scale


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str) -> str:
    """sha256 of a file, remembered per (path, size, mtime) within the process."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def verify_weights(cfg: BackboneCfg, path: str) -> None:
    """Raise if the weights file at ``path`` does not have ``cfg.sha256``.

    Raises
    ------
    TransferkitError
        When the file is missing or its content differs from what was registered.
    """
    if not os.path.isfile(path):
        raise TransferkitError(f"weights for backbone {cfg.name!r} not found at {path!r}; install {cfg.source}")
    if cfg.sha256 is None:
        return
    actual = sha256_file(path)
    if actual != cfg.sha256:
        raise TransferkitError(
            f"weights for backbone {cfg.name!r} at {path!r} have sha256 {actual[:16]}…, expected "
            f"{cfg.sha256[:16]}…; the file is corrupt or a different version: reinstall {cfg.source}"
        )
