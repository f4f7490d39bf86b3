"""The parameters of :class:`~transferkit.TransferClassifier`, as one table of constraints.

After scikit-learn's ``_parameter_constraints``: every constructor argument has a row (a test
keeps the table and the signature in step), ``fit`` checks them all before any work whatever the
strategy, so a setting the chosen strategy would ignore is still refused when it is wrong, and
every message has one form: "The 'lr' parameter of TransferClassifier must be a float in (0, 1].
Got -3 instead."
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import TransferkitError, did_you_mean

__all__ = ["PARAMETER_CONSTRAINTS", "adaptation_config", "check_parameters", "training_overrides"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_flag(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or test(value)


def _is_strategy(value: Any) -> bool:
    from .strategies import Strategy

    return isinstance(value, (str, Strategy))


def _is_training(value: Any) -> bool:
    from .training import TrainConfig

    return value is None or isinstance(value, (TrainConfig, dict))


def _is_adaptation_settings(value: Any) -> bool:
    from .adaptation.deep import AdaptationConfig

    return value is None or isinstance(value, (AdaptationConfig, dict))


# name -> (test, what the test accepts, in words)
PARAMETER_CONSTRAINTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "backbone": (_optional(lambda v: isinstance(v, str)), "None or a backbone name (see `transferkit list`)"),
    "strategy": (_is_strategy, "a strategy name (see `transferkit list`) or a Strategy"),
    "layer": (_optional(lambda v: isinstance(v, str)), "None or a layer name of the backbone"),
    "image_size": (_optional(lambda v: _is_int(v) and 16 <= v <= 1024), "None or an int in [16, 1024]"),
    "C": (lambda v: _is_number(v) and v > 0, "a float > 0"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "a positive int"),
    "cache": (_is_flag, "a bool"),
    "cache_dir": (_optional(_is_path), "None or a folder path"),
    "random_state": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "verbose": (lambda v: _is_flag(v) or _is_int(v), "a bool"),
    "epochs": (_optional(lambda v: _is_int(v) and v >= 1), "None or a positive int"),
    "lr": (_optional(lambda v: _is_number(v) and 0 < v <= 1), "None or a float in (0, 1]"),
    "training": (_is_training, "None, a TrainConfig or a dict of its settings"),
    "checkpoint_dir": (_optional(_is_path), "None or a folder path"),
    "resume": (_is_flag, "a bool"),
    "label_descriptions": (_optional(lambda v: _is_path(v) or isinstance(v, dict)), "None, a JSON file or a dict"),
    "adaptation": (_optional(lambda v: isinstance(v, str)), "None or an adaptation method name"),
    "adaptation_weight": (_optional(lambda v: _is_number(v) and v >= 0), "None or a float >= 0"),
    "adaptation_settings": (_is_adaptation_settings, "None, an AdaptationConfig or a dict of its settings"),
}


def check_parameters(estimator: Any) -> None:
    """Raise :class:`TransferkitError` naming the first parameter of ``estimator`` that breaks its constraint.

    Beyond the table: the adaptation method must be a known one, and the contents of
    ``training`` and ``adaptation_settings`` must be valid settings (their own ``validate``).
    """
    for name, (test, expected) in PARAMETER_CONSTRAINTS.items():
        value = getattr(estimator, name)
        if not test(value):
            raise TransferkitError(
                f"The {name!r} parameter of TransferClassifier must be {expected}. Got {value!r} instead."
            )
    if estimator.adaptation is not None:
        from .adaptation.run import METHODS

        if estimator.adaptation not in (*METHODS, "auto"):
            raise did_you_mean("adaptation method of TransferClassifier", estimator.adaptation, [*METHODS, "auto"])
    from .training import TrainConfig

    TrainConfig().replace(**training_overrides(estimator.training)).validate()
    adaptation_config(estimator.adaptation_settings)


def training_overrides(training: Any) -> dict[str, Any]:
    """The settings of the ``training`` parameter as a dict; a ``TrainConfig``'s seed is left out
    (``random_state`` sets it), a dict's is kept, as the user wrote it."""
    from .training import TrainConfig

    if training is None:
        return {}
    if isinstance(training, TrainConfig):
        return {key: value for key, value in training.to_dict().items() if key != "seed"}
    return dict(training)


def adaptation_config(settings: Any) -> Any:
    """The ``adaptation_settings`` parameter as a validated ``AdaptationConfig``, or ``None``."""
    from .adaptation.deep import AdaptationConfig

    if isinstance(settings, dict):
        return AdaptationConfig.from_dict(settings).validate()
    return settings.validate() if settings is not None else None
