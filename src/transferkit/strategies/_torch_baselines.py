"""Target-only baselines trained from random initialisation with PyTorch.

The models here define only their network and input handling; training, label encoding and
saving come from :mod:`transferkit.strategies._baseline_base`. The public classes are
re-exported by :mod:`transferkit.strategies.baselines`.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from ._baseline_base import (
    _check_bool,
    _check_int,
    _check_ngram_range,
    _check_real,
    _StandardizerMixin,
    _TorchClassifierBase,
)

__all__ = ["SmallCNNClassifier", "BagOfEmbeddingsClassifier", "TabularMLPClassifier", "tokenize"]


def _images_to_tensor(X: Any, size: tuple[int, int] | None) -> torch.Tensor:
    """Images ``(N, H, W)`` or ``(N, H, W, C)`` → float tensor ``(N, C, H', W')``.

    Integer pixels are divided by 255; float pixels are taken as they are (expected in
    [0, 1]). When ``size`` differs from ``(H, W)`` the images are resized (bilinear,
    antialiased).
    """
    array = np.asarray(X)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.dtype == object:
        raise DataError(f"images must be an array of shape (N, H, W) or (N, H, W, C); got shape {array.shape}")
    scale = 255.0 if np.issubdtype(array.dtype, np.integer) else 1.0
    images = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)  # (N, C, H, W)
    if size is None or tuple(images.shape[2:]) == tuple(size):
        return images.float().div_(scale) if scale != 1.0 else images.float().contiguous()
    chunks = []
    for start in range(0, len(images), 512):
        chunk = images[start : start + 512].float() / scale  # (B, C, H, W)
        chunks.append(F.interpolate(chunk, size=size, mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(chunks) if chunks else images.float().reshape(0, images.shape[1], *size)


def _random_shift_flip(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift every image by up to ``shift`` pixels (zero padding + random crop) and flip half of them."""
    b, c, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))  # (B, C, H + 2s, W + 2s)
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=generator)  # (B,)
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=generator)  # (B,)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b)[:, None, None]  # (B, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols]  # (B, H, W, C)
    out = out.permute(0, 3, 1, 2)  # (B, C, H, W)
    flip = torch.rand(b, generator=generator) < 0.5  # (B,)
    return torch.where(flip[:, None, None, None], out.flip(-1), out).contiguous()


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class _SmallCNN(nn.Module):
    """conv32-conv32-pool-conv64-conv64-pool (3×3, BatchNorm, ReLU) → FC 128 → dropout → classes."""

    def __init__(self, in_channels: int, n_classes: int, feature_hw: tuple[int, int], dropout: float = 0.5) -> None:
        super().__init__()
        pooled = (min(7, feature_hw[0]), min(7, feature_hw[1]))  # 7×7 at most: ~468k parameters at 28×28
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, 32),
            *_conv_bn_relu(32, 32),
            nn.MaxPool2d(2),
            *_conv_bn_relu(32, 64),
            *_conv_bn_relu(64, 64),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(pooled) if pooled != tuple(feature_hw) else nn.Identity(),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * pooled[0] * pooled[1], 128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        return self.head(self.features(x))  # (B, n_classes)


class SmallCNNClassifier(_StandardizerMixin, _TorchClassifierBase):
    """A small convolutional network trained from random initialisation on images.

    Four 3×3 convolutions (32, 32, 64, 64 channels) with BatchNorm and ReLU, max-pooling
    after the second and fourth, average-pooled to at most 7×7, then a 128-unit layer,
    dropout 0.5 and the output layer (about 468k parameters for 28×28 grey images).
    Trained with AdamW under a one-cycle learning-rate schedule, with random shifts of up
    to 3 pixels and horizontal flips.

    Parameters
    ----------
    epochs : int or None, default=None
        Passes over the training set; when None, ``steps`` decides.
    steps : int, default=1000
        Total optimiser steps when ``epochs`` is None (rounded up to whole epochs).
    batch_size : int, default=20
        Images per step.
    lr : float, default=1e-3
        Peak learning rate of the one-cycle schedule.
    weight_decay : float, default=5e-4
        AdamW's decoupled weight decay.
    augment : bool, default=True
        Random shift (±3 px) and horizontal flip of training images.
    image_size : int or None, default=None
        Side to which images are resized; when None, only images larger than 64 px on a
        side are resized (to 64×64).
    random_state : int, default=0
        Seed of the initialisation, shuffling, augmentation and dropout.
    verbose : bool, default=True
        Show a progress bar over epochs (only on a terminal).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    model_ : torch.nn.Module
        The trained network (in eval mode).
    mean_, std_ : ndarray of shape (n_channels,)
        Per-channel statistics of the training pixels (scaled to [0, 1]).
    input_shape_ : tuple of int
        ``(C, H, W)`` of the network's input after resizing.
    n_epochs_, n_steps_ : int
        Epochs and optimiser steps actually run.
    loss_curve_ : list of float
        Mean training loss of every epoch.
    """

    _MAX_SIDE: ClassVar[int] = 64
    _SHIFT: ClassVar[int] = 3

    def __init__(
        self,
        epochs: int | None = None,
        steps: int = 1000,
        batch_size: int = 20,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        augment: bool = True,
        image_size: int | None = None,
        random_state: int = 0,
        verbose: bool = True,
    ) -> None:
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.augment = augment
        self.image_size = image_size
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        self._check_common_params()
        _check_bool(self, "augment")
        _check_int(self, "image_size", minimum=4, allow_none=True)

    def _target_size(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        if self.image_size is not None:
            return (self.image_size, self.image_size)
        h, w = shape[1], shape[2]
        if h > self._MAX_SIDE or w > self._MAX_SIDE:
            return (self._MAX_SIDE, self._MAX_SIDE)
        return None

    def _prepare(self, X: Any, fit: bool) -> torch.Tensor:
        array = np.asarray(X)
        if fit:
            if array.ndim not in (3, 4):
                raise DataError(f"images must be an array of shape (N, H, W) or (N, H, W, C); got shape {array.shape}")
            images = _images_to_tensor(array, self._target_size(array.shape))  # (N, C, H, W)
            if min(images.shape[2:]) < 4:
                raise DataError(f"{type(self).__name__} needs images of at least 4×4 pixels; got {array.shape[1:3]}")
            self.input_shape_ = tuple(int(s) for s in images.shape[1:])
            self._fit_standardizer(images, dims=(0, 2, 3))
            return images
        channels = 1 if array.ndim == 3 else array.shape[-1]
        if array.ndim not in (3, 4) or channels != self.input_shape_[0]:
            raise DataError(
                f"{type(self).__name__} was fitted on images with {self.input_shape_[0]} channel(s); "
                f"got an array of shape {array.shape}"
            )
        return _images_to_tensor(array, self.input_shape_[1:])  # (N, C, H, W)

    def _batch(self, data: torch.Tensor, idx: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor]:
        x = data[idx]  # (B, C, H, W)
        if generator is not None and self.augment:
            x = _random_shift_flip(x, self._SHIFT, generator)
        mean = torch.from_numpy(self.mean_)[None, :, None, None]  # (1, C, 1, 1)
        std = torch.from_numpy(self.std_)[None, :, None, None]  # (1, C, 1, 1)
        return (((x - mean) / std).contiguous(memory_format=torch.channels_last),)  # faster convolutions on CPU

    def _build_module(self, n_classes: int) -> nn.Module:
        c, h, w = self.input_shape_
        return _SmallCNN(c, n_classes, (h // 4, w // 4)).to(memory_format=torch.channels_last)

    def _state_config(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape_)}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._load_extra(state, arrays)
        self.input_shape_ = tuple(int(s) for s in state["input_shape"])


# --------------------------------------------------------------------------- text

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (regex ``\\w+|[^\\w\\s]``)."""
    return _TOKEN.findall(str(text).lower())


def _hashed_ngrams(text: str, ngram_range: tuple[int, int], num_buckets: int) -> np.ndarray:
    """Bucket ids of the word n-grams of ``text`` (stable across runs: CRC-32, not ``hash``)."""
    tokens = tokenize(text)
    ids = []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        for i in range(len(tokens) - n + 1):
            ids.append(zlib.crc32(" ".join(tokens[i : i + n]).encode("utf-8")) % num_buckets)
    return np.asarray(ids, dtype=np.int64)


class _BagOfEmbeddings(nn.Module):
    """Mean of n-gram embeddings → dropout → linear."""

    def __init__(self, num_buckets: int, dim: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(num_buckets, dim, mode="mean")
        nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:  # ids: (T,), offsets: (B,)
        return self.linear(self.dropout(self.embedding(ids, offsets)))  # (B, n_classes)


class BagOfEmbeddingsClassifier(_TorchClassifierBase):
    """Mean of hashed word and word-n-gram embeddings with a linear output, from random init.

    Texts are lower-cased and split into word and punctuation tokens; their n-grams are
    hashed into ``num_buckets`` buckets with CRC-32, embedded with ``nn.EmbeddingBag``
    (mean), passed through dropout and a linear layer (a fastText-style classifier).

    Parameters
    ----------
    embedding_dim : int, default=64
        Size of every bucket's embedding.
    ngram_range : tuple of (int, int), default=(1, 2)
        Smallest and largest word n-gram.
    num_buckets : int, default=2**18
        Hash buckets.
    epochs : int or None, default=None
        Passes over the training set; when None, ``steps`` decides.
    steps : int, default=300
        Total optimiser steps when ``epochs`` is None (rounded up to whole epochs).
    batch_size : int, default=16
        Texts per step.
    lr : float, default=0.02
        Peak learning rate of the one-cycle schedule.
    weight_decay : float, default=0.01
        AdamW's decoupled weight decay.
    dropout : float, default=0.2
        Dropout on the mean embedding.
    random_state : int, default=0
        Seed of the initialisation, shuffling and dropout.
    verbose : bool, default=True
        Show a progress bar over epochs (only on a terminal).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    model_ : torch.nn.Module
        The trained network (in eval mode).
    n_epochs_, n_steps_ : int
        Epochs and optimiser steps actually run.
    loss_curve_ : list of float
        Mean training loss of every epoch.
    """

    def __init__(
        self,
        embedding_dim: int = 64,
        ngram_range: tuple[int, int] = (1, 2),
        num_buckets: int = 2**18,
        epochs: int | None = None,
        steps: int = 300,
        batch_size: int = 16,
        lr: float = 0.02,
        weight_decay: float = 0.01,
        dropout: float = 0.2,
        random_state: int = 0,
        verbose: bool = True,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.ngram_range = ngram_range
        self.num_buckets = num_buckets
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        self._check_common_params()
        _check_int(self, "embedding_dim")
        _check_ngram_range(self)
        _check_int(self, "num_buckets")
        _check_real(self, "dropout", low=0.0, low_inclusive=True, high=1.0)

    def _prepare(self, X: Any, fit: bool) -> list[torch.Tensor]:
        if isinstance(X, str) or (isinstance(X, np.ndarray) and X.ndim != 1):
            raise DataError(f"{type(self).__name__} expects a list of strings, one per example")
        ngram_range = (int(self.ngram_range[0]), int(self.ngram_range[1]))
        hashed = [_hashed_ngrams(t, ngram_range, self.num_buckets) for t in X]
        if fit:
            # only buckets seen in training can learn anything: keep a row for each of them
            self.bucket_ids_ = np.unique(np.concatenate(hashed + [np.zeros(0, np.int64)]))
        docs = []
        for ids in hashed:
            rows = np.minimum(np.searchsorted(self.bucket_ids_, ids), max(len(self.bucket_ids_) - 1, 0))  # (T,)
            if len(self.bucket_ids_):
                rows = rows[self.bucket_ids_[rows] == ids]  # n-grams never seen in training are left out
            else:
                rows = rows[:0]
            docs.append(torch.from_numpy(rows.astype(np.int64)))
        return docs

    def _batch(
        self, data: list[torch.Tensor], idx: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        docs = [data[i] for i in idx.tolist()]
        lengths = torch.tensor([len(d) for d in docs], dtype=torch.int64)  # (B,)
        offsets = torch.cumsum(lengths, 0) - lengths  # (B,)
        ids = torch.cat(docs) if docs else torch.zeros(0, dtype=torch.int64)  # (T,)
        return ids, offsets

    def _build_module(self, n_classes: int) -> nn.Module:
        return _BagOfEmbeddings(max(1, len(self.bucket_ids_)), self.embedding_dim, n_classes, self.dropout)

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"bucket_ids_": self.bucket_ids_}

    def _load_extra(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.bucket_ids_ = np.asarray(arrays["bucket_ids_"], dtype=np.int64)


# --------------------------------------------------------------------------- tabular


class _MLP(nn.Module):
    def __init__(self, n_features: int, hidden: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, D)
        return self.net(x)  # (B, n_classes)


class TabularMLPClassifier(_StandardizerMixin, _TorchClassifierBase):
    """A two-hidden-layer perceptron on standardised features, from random initialisation.

    Parameters
    ----------
    hidden_size : int, default=128
        Units of both hidden layers.
    epochs : int or None, default=None
        Passes over the training set; when None, ``steps`` decides.
    steps : int, default=500
        Total optimiser steps when ``epochs`` is None (rounded up to whole epochs).
    batch_size : int, default=32
        Rows per step.
    lr : float, default=3e-3
        Peak learning rate of the one-cycle schedule.
    weight_decay : float, default=1e-3
        AdamW's decoupled weight decay.
    dropout : float, default=0.1
        Dropout after each hidden layer.
    random_state : int, default=0
        Seed of the initialisation, shuffling and dropout.
    verbose : bool, default=True
        Show a progress bar over epochs (only on a terminal).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    model_ : torch.nn.Module
        The trained network (in eval mode).
    mean_, std_ : ndarray of shape (n_features,)
        Feature statistics of the training set.
    n_epochs_, n_steps_ : int
        Epochs and optimiser steps actually run.
    loss_curve_ : list of float
        Mean training loss of every epoch.
    """

    def __init__(
        self,
        hidden_size: int = 128,
        epochs: int | None = None,
        steps: int = 500,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        dropout: float = 0.1,
        random_state: int = 0,
        verbose: bool = True,
    ) -> None:
        self.hidden_size = hidden_size
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        self._check_common_params()
        _check_int(self, "hidden_size")
        _check_real(self, "dropout", low=0.0, low_inclusive=True, high=1.0)

    def _prepare(self, X: Any, fit: bool) -> torch.Tensor:
        try:
            array = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{type(self).__name__} expects numeric features: {exc}") from None
        if array.ndim != 2:
            raise DataError(f"features must be a 2-D array (n_samples, n_features); got shape {array.shape}")
        if not np.isfinite(array).all():  # NaN would train and predict silently
            raise DataError(f"{type(self).__name__} got NaN or infinite features; expected finite values")
        x = torch.from_numpy(np.ascontiguousarray(array))  # (N, D)
        if fit:
            self._fit_standardizer(x, dims=(0,))
        elif x.shape[1] != len(self.mean_):
            raise DataError(f"{type(self).__name__} was fitted on {len(self.mean_)} features; got {x.shape[1]}")
        return (x - torch.from_numpy(self.mean_)) / torch.from_numpy(self.std_)  # (N, D)

    def _batch(self, data: torch.Tensor, idx: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor]:
        return (data[idx],)  # (B, D)

    def _build_module(self, n_classes: int) -> nn.Module:
        return _MLP(len(self.mean_), self.hidden_size, n_classes, self.dropout)
