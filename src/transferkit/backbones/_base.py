"""The contract every backbone follows (after timm's model contract)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._config import BackboneCfg

__all__ = ["Backbone"]


class Backbone(nn.Module):
    """A pre-trained network that turns inputs into a vector per example.

    Subclasses set ``cfg`` and implement :meth:`forward_features`, :meth:`layer_groups`,
    :meth:`feature_layers`, :meth:`forward_layer` and :meth:`preprocessor`.
    """

    cfg: BackboneCfg

    def forward_features(self, x: Any) -> torch.Tensor:
        """The pooled embedding used for transfer, ``(B, cfg.feature_dim)``."""
        raise NotImplementedError

    def forward(self, x: Any) -> torch.Tensor:
        return self.forward_features(x)

    def layer_groups(self) -> list[tuple[str, list[nn.Module]]]:
        """Named groups of modules, ordered from input to output.

        Every parameter of the backbone belongs to exactly one group. Strategies freeze,
        unfreeze and set learning rates per group.
        """
        raise NotImplementedError

    def feature_layers(self) -> list[str]:
        """Names accepted by :meth:`forward_layer`, shallow to deep; the last is the default."""
        raise NotImplementedError

    def forward_layer(self, x: Any, name: str) -> torch.Tensor:
        """Pooled activations after the layer ``name``, ``(B, D_name)``.

        Parameters
        ----------
        x : Any
            A batch as :meth:`preprocessor` returns it (what :meth:`forward_features` takes).
        name : str
            One of :meth:`feature_layers`.

        Returns
        -------
        torch.Tensor
            Shape ``(B, D_name)``.

        Raises
        ------
        UnknownNameError
            For a ``name`` not in :meth:`feature_layers` (the built-in backbones check it).
        NotImplementedError
            On the base class itself.
        """
        raise NotImplementedError

    def preprocessor(self, image_size: int | None = None) -> Any:
        """A callable turning a list/array of raw inputs into what :meth:`forward_features` takes."""
        raise NotImplementedError

    def _check_layer(self, name: str) -> None:
        from ..errors import did_you_mean

        if name not in self.feature_layers():
            raise did_you_mean(f"layer of backbone {self.cfg.name!r}", name, self.feature_layers())
