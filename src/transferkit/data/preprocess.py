"""Turn raw inputs into tensors the way a backbone's BackboneCfg says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DataError

__all__ = ["ImagePreprocessor", "TextPreprocessor", "load_image", "images_to_float", "as_rgb"]


def load_image(path: str, size: int | None = None) -> np.ndarray:
    """Read an image file as a uint8 RGB array ``(H, W, 3)``, resized to ``size`` × ``size`` if given."""
    try:
        with Image.open(path) as image:
            image = as_rgb(image, path)
            if size is not None:
                image = image.resize((size, size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read image {path!r}: {error}") from error


def as_rgb(image: Image.Image, path: str = "image") -> Image.Image:
    """``image`` as 8-bit RGB, its grey levels scaled from its own bit depth.

    PIL's ``convert("RGB")`` clips deeper greys to 0..255: a 16-bit PNG comes out almost white and
    a float TIFF in 0..1 almost black, silently. Here 16-bit greys are divided by 257 (65535 -> 255);
    32-bit integer greys are read as 8-bit when they lie in 0..255 and as 16-bit when in 0..65535;
    float greys are read as 0..1 when they lie in it, else as 0..255.

    Parameters
    ----------
    image : PIL.Image.Image
        An opened image of any mode.
    path : str, default="image"
        Where it came from, for the error message.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``.

    Raises
    ------
    DataError
        For a deep grey image with values outside those ranges (negative, NaN, or beyond 16 bits).
    """
    if not (image.mode.startswith("I") or image.mode == "F"):
        return image.convert("RGB")
    values = np.asarray(image, dtype=np.float64)  # (H, W)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16"):
        scale = 257.0
    elif image.mode == "F" and 0.0 <= low and high <= 1.0:
        scale = 1 / 255
    elif 0.0 <= low and high <= 255.0:  # also NaN-free: NaN fails every comparison
        scale = 1.0
    elif image.mode == "I" and 0.0 <= low and high <= 65535.0:
        scale = 257.0
    else:
        raise DataError(
            f"cannot read image {path!r}: its {image.mode!r} grey values run from {low} to {high}; "
            "expected 0..1 or 0..255 (float), 0..255 or 0..65535 (integer)"
        )
    grey = np.clip(np.rint(values / scale), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def images_to_float(batch: np.ndarray | list[str], size: int | None = None) -> torch.Tensor:
    """Raw images to a float tensor ``(B, C, H, W)`` in [0, 1].

    ``batch`` is a uint8 array ``(B, H, W)`` or ``(B, H, W, C)`` (pixels 0–255), a float
    array in [0, 1], or a list of image paths (read as RGB; ``size`` then resizes each one
    on load so that images of different sizes can be stacked).
    """
    if isinstance(batch, np.ndarray):
        array = batch
    else:
        array = np.stack([load_image(path, size) for path in batch])  # (B, H, W, 3)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype == torch.uint8:
        tensor = tensor.float().div_(255.0)
    else:
        tensor = tensor.float()
    if tensor.ndim == 3:  # (B, H, W) grey
        tensor = tensor.unsqueeze(1)
    elif tensor.ndim == 4:  # (B, H, W, C)
        tensor = tensor.permute(0, 3, 1, 2)
    else:
        raise DataError(f"images must be an array of shape (N, H, W) or (N, H, W, C); got shape {tuple(array.shape)}")
    return tensor.contiguous()  # (B, C, H, W)


@dataclass(frozen=True)
class ImagePreprocessor:
    """Scale to [0, 1], match channels, resize, normalise: ``(B, C, size, size)``.

    Grey images are repeated to three channels (and RGB averaged to one for one-channel
    backbones); the resize uses ``interpolation`` with antialiasing when shrinking.
    """

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    def __call__(self, batch: np.ndarray | list[str]) -> torch.Tensor:
        x = images_to_float(batch, size=self.size)  # (B, C0, H, W)
        if x.shape[1] == 4:  # drop alpha
            x = x[:, :3]
        if x.shape[1] not in (1, self.channels):
            x = x.mean(dim=1, keepdim=True)
        # Resize before matching channels: a grey image is resized once, not three times.
        if x.shape[-2:] != (self.size, self.size):
            shrinking = x.shape[-1] > self.size or x.shape[-2] > self.size
            x = F.interpolate(
                x, size=(self.size, self.size), mode=self.interpolation, align_corners=False, antialias=shrinking
            )
        # (x - mean) / std as one fused multiply-add that also broadcasts grey to every channel.
        scale = 1.0 / torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        shift = -torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1) * scale
        return torch.addcmul(shift, x, scale)  # (B, C, size, size): broadcasts (1, C, 1, 1) with (B, C0, S, S)

    def describe(self) -> dict[str, Any]:
        """What determines the output; part of the feature-cache key."""
        return {
            "kind": "image",
            "size": self.size,
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }


class TextPreprocessor:
    """Tokenise a list of strings into padded tensors for a transformer encoder."""

    def __init__(self, tokenizer: Any, max_length: int, name: str) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.name = name

    def __call__(self, batch: list[str]) -> dict[str, torch.Tensor]:
        if isinstance(batch, np.ndarray):
            batch = batch.tolist()
        return dict(
            self.tokenizer(list(batch), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        )

    def describe(self) -> dict[str, Any]:
        """What determines the output; part of the feature-cache key."""
        return {"kind": "text", "tokenizer": self.name, "max_length": self.max_length}
