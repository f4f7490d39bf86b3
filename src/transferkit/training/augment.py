"""Batched image augmentation on preprocessed tensors: random resized crop and horizontal flip."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["random_resized_crop"]


def random_resized_crop(
    images: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: bool = True,
) -> torch.Tensor:
    """Crop a random box of each image and resize it back, flipping half of them.

    One affine resampling per batch (``F.affine_grid`` + bilinear ``grid_sample``), so it
    costs about as much as a resize. The box's area is ``scale`` of the image and its aspect
    ``ratio`` (log-uniform), as in torchvision's ``RandomResizedCrop``.

    Parameters
    ----------
    images : Tensor
        ``(B, C, H, W)`` already normalised.
    generator : torch.Generator
        Source of randomness (seeded per epoch by the training loop, so runs repeat exactly).

    Returns
    -------
    Tensor
        ``(B, C, H, W)``.
    """
    batch = images.shape[0]
    area = torch.empty(batch).uniform_(scale[0], scale[1], generator=generator)  # (B,)
    log_ratio = torch.empty(batch).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    width = torch.sqrt(area * aspect).clamp(max=1.0)  # (B,) fraction of the image width
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    # centre anywhere that keeps the box inside the image; grid coordinates run over [-1, 1]
    centre_x = (torch.rand(batch, generator=generator) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(batch, generator=generator) * 2 - 1) * (1 - height)
    flip = torch.ones(batch)
    if hflip:
        flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
