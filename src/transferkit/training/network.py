"""A backbone with a new classification head: the module every fine-tuning strategy trains."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..backbones._base import Backbone

__all__ = ["TransferNetwork", "trainable_groups", "SOURCE_HEAD_GROUPS"]

# Layer groups that hold the *source* task's classifier: it is not part of forward_features,
# so no strategy ever trains it and it is left out of the groups strategies see.
SOURCE_HEAD_GROUPS = ("classifier",)


class TransferNetwork(nn.Module):
    """``backbone.forward_features`` followed by a linear head: preprocessed input → logits.

    Parameters
    ----------
    backbone : Backbone
        The pre-trained body; its parameters are shared, not copied.
    n_classes : int
        Width of the new head.

    Notes
    -----
    ``layer_groups()`` are the backbone's groups (shallow → deep, without the source-task
    classifier) followed by ``("head", [head])``: what strategies freeze and give rates to.
    """

    def __init__(self, backbone: Backbone, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.cfg.feature_dim, n_classes)

    def forward(self, x: Any) -> torch.Tensor:
        return self.head(self.backbone.forward_features(x))  # (B, K)

    def features(self, x: Any) -> torch.Tensor:
        """The backbone's pooled embedding, ``(B, D)``."""
        return self.backbone.forward_features(x)

    def layer_groups(self) -> list[tuple[str, list[nn.Module]]]:
        """Backbone groups shallow → deep, then the new head."""
        return trainable_groups(self.backbone) + [("head", [self.head])]

    def set_head(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Copy a fitted linear head in (e.g. a linear probe's), ``weight`` ``(K, D)``, ``bias`` ``(K,)``.

        Parameters
        ----------
        weight : torch.Tensor, shape (K, D)
            ``K`` the head's classes, ``D`` the backbone's ``feature_dim``.
        bias : torch.Tensor, shape (K,)

        Raises
        ------
        RuntimeError
            From torch, when a shape does not fit the head's.
        """
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)


def trainable_groups(backbone: Backbone) -> list[tuple[str, list[nn.Module]]]:
    """``backbone.layer_groups()`` without the source-task classifier."""
    return [(name, modules) for name, modules in backbone.layer_groups() if name not in SOURCE_HEAD_GROUPS]
