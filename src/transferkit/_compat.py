"""Make ``import timm`` work when torchvision's compiled operators cannot load.

On machines where PyTorch is a CPU build but torchvision from the package index is
a CUDA build, ``import torchvision`` fails with ``operator torchvision::nms does not
exist``: torchvision's ``_C`` extension does not load, yet its Python side registers
fake kernels for ``torchvision::nms`` and ``torchvision::qnms`` unconditionally.
timm imports torchvision, so it fails too.

:func:`ensure_torchvision_ops` must run before timm or torchvision is imported. Where
torchvision's extension loads, it does nothing. Where it does not, it defines the two
operators torchvision needs at import time with pure-PyTorch CPU kernels, so that
importing works and ``torch.ops.torchvision.nms`` gives correct results. The other
compiled operators (RoI align/pool, deformable convolution) stay unavailable, exactly
as torchvision reports them: transferkit does not use them.
"""

from __future__ import annotations

import glob
import importlib.util
import os

import torch

__all__ = ["ensure_torchvision_ops", "nms_reference"]

_FALLBACK_LIBRARY: torch.library.Library | None = None
_STATE: str | None = None  # "native", "fallback" or "absent", once decided


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression in plain PyTorch.

    Parameters
    ----------
    boxes : Tensor of shape (N, 4)
        Boxes as ``(x1, y1, x2, y2)``.
    scores : Tensor of shape (N,)
        One score per box.
    iou_threshold : float
        Boxes overlapping a kept box with IoU strictly above this are discarded.

    Returns
    -------
    Tensor of shape (K,), int64
        Indices of the kept boxes, by decreasing score (torchvision's contract).
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(dim=1)  # each (N,)
    areas = (x2 - x1) * (y2 - y1)  # (N,)
    order = torch.argsort(scores, descending=True, stable=True)  # (N,)
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep: list[int] = []
    for position in range(order.numel()):
        i = int(order[position])
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[position + 1 :]  # (M,)
        width = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        height = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = width * height  # (M,)
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def _quantized_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return nms_reference(boxes.dequantize(), scores.dequantize(), iou_threshold)


def _native_ops_load() -> bool:
    """Try to load torchvision's compiled extension without importing torchvision."""
    if hasattr(torch.ops.torchvision, "nms"):
        return True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for location in spec.submodule_search_locations:
        for library in glob.glob(os.path.join(location, "_C*.so")) + glob.glob(os.path.join(location, "_C*.pyd")):
            try:
                torch.ops.load_library(library)
            except (OSError, RuntimeError, ImportError):
                continue
            if hasattr(torch.ops.torchvision, "nms"):
                return True
    return False


def ensure_torchvision_ops() -> str:
    """Make torchvision importable; idempotent and cheap after the first call.

    Returns
    -------
    str
        ``"native"`` when torchvision's own compiled operators loaded (nothing was
        changed), ``"fallback"`` when the pure-PyTorch operators were registered, or
        ``"absent"`` when torchvision is not installed.
    """
    global _FALLBACK_LIBRARY, _STATE
    if _STATE is not None:
        return _STATE
    if importlib.util.find_spec("torchvision") is None:
        _STATE = "absent"
    elif _native_ops_load():
        _STATE = "native"
    else:
        library = torch.library.Library("torchvision", "DEF")
        for name, kernel in (("nms", nms_reference), ("qnms", _quantized_nms)):
            library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            library.impl(name, kernel, "CPU")
        _FALLBACK_LIBRARY = library  # keep a reference: the registration lives as long as it does
        _STATE = "fallback"
    return _STATE
