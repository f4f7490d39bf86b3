"""Adapted models on frozen features as one ``torch`` module: preprocessed input → logits ``(B, K)``.

What :meth:`transferkit.TransferClassifier.network` returns (and ``transferkit export`` writes)
for the feature-path methods that are not a linear head on the backbone's features: the deep
methods' bottleneck network (:class:`~transferkit.adaptation.FeatureAdapter`) and mSDA's
denoising layers under a linear head (:class:`~transferkit.adaptation.DenoisedProbeHead`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .deep import FeatureAdapter
from .run import DenoisedProbeHead

__all__ = ["FeatureModelNetwork", "DenoisedLinear", "feature_model_network"]


class FeatureModelNetwork(nn.Module):
    """A frozen backbone, then a module over its pooled features.

    Parameters
    ----------
    backbone : Backbone
        Provides ``forward_features`` ``(B, ...) → (B, D)``, what feature extraction reads.
    on_features : nn.Module
        ``(B, D) → (B, K)`` logits.
    """

    def __init__(self, backbone: Any, on_features: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.on_features = on_features

    def forward(self, x: Any) -> torch.Tensor:
        return self.on_features(self.backbone.forward_features(x))  # (B, D) -> (B, K)


class DenoisedLinear(nn.Module):
    """mSDA's layers and a linear head: ``z = [x, s h_1, ..., s h_L]``, ``h_l = tanh(W_l [h_{l-1}; 1])``, ``z A^T + b``.

    Parameters
    ----------
    model : DenoisedProbeHead
        Its ``mappings`` (each ``(D, D + 1)``), ``scale`` and linear ``head``; a binary head's one
        logit ``s`` becomes ``(-s/2, s/2)``, which gives the same probabilities under softmax.
    """

    def __init__(self, model: DenoisedProbeHead) -> None:
        super().__init__()
        for i, mapping in enumerate(model.mappings):
            self.register_buffer(f"mapping_{i}", torch.as_tensor(mapping, dtype=torch.float32))  # (D, D + 1)
        self.layers = len(model.mappings)
        self.scale = float(model.scale)
        coef, intercept = model.head.coef_, model.head.intercept_  # (K or 1, D (L + 1)), (K or 1,)
        if coef.shape[0] == 1:
            coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        self.head = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts, hidden = [x], x  # (B, D)
        for i in range(self.layers):
            mapping = getattr(self, f"mapping_{i}")
            hidden = torch.tanh(hidden @ mapping[:, :-1].T + mapping[:, -1])  # (B, D)
            parts.append(self.scale * hidden)
        return self.head(torch.cat(parts, dim=1))  # (B, D (L + 1)) -> (B, K)


def feature_model_network(backbone: Any, model: Any) -> FeatureModelNetwork | None:
    """The backbone and ``model`` as one module, for the models above; ``None`` for any other model.

    Parameters
    ----------
    backbone : Backbone
    model : object
        A fitted model on the backbone's features.

    Returns
    -------
    FeatureModelNetwork or None
    """
    if isinstance(model, FeatureAdapter):
        return FeatureModelNetwork(backbone, model.network_)
    if isinstance(model, DenoisedProbeHead):
        return FeatureModelNetwork(backbone, DenoisedLinear(model))
    return None
