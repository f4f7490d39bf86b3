r"""Greedy layer-wise unsupervised pre-training: stacked denoising autoencoders and stacked RBMs.

A deep sigmoid network is pre-trained one layer at a time on *unlabelled* inputs, each
new layer learning to model the (deterministic) output of the frozen layers below it; the
encoder layers are then stacked into an MLP backbone (Linear → sigmoid, repeated) and
fine-tuned with the few labels there are.

* Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural
  Computation 18(7), 2006 — stacked RBMs.
* Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise training of deep networks",
  NIPS 2006 (2007) — the greedy procedure, with autoencoders in place of RBMs.
* Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with
  denoising autoencoders", ICML 2008; Vincent et al., "Stacked denoising autoencoders",
  JMLR 11, 2010 — masking noise.
* Hinton, "Training products of experts by minimizing contrastive divergence", Neural
  Computation 14(8), 2002; Hinton, "A practical guide to training restricted Boltzmann
  machines", UTML TR 2010-003 — CD-k and its settings.

**Denoising autoencoder** (``method="ae"``). For an input :math:`x \in [0, 1]^{D}` a share
``noise`` of its components, chosen at random, is set to 0 (:math:`\tilde x`); with *tied*
weights :math:`W (H, D)`, hidden bias :math:`b (H,)` and visible bias :math:`c (D,)`

.. math::

    h = \sigma(W \tilde x + b), \qquad \hat x = \sigma(W^\top h + c), \qquad
    L = -\frac{1}{D}\sum_j x_j \log \hat x_j + (1 - x_j) \log(1 - \hat x_j)

(binary cross-entropy against the *clean* input, minimised with Adam). :math:`W, b` become
the encoder layer.

**Restricted Boltzmann machine** (``method="rbm"``), Bernoulli visible and hidden units,
energy :math:`E(v, h) = -c^\top v - b^\top h - h^\top W v`. CD-k: from the data
:math:`v_0` (pixel intensities used as probabilities), :math:`h_0 \sim p(h \mid v_0) =
\sigma(W v_0 + b)` sampled, then ``k`` Gibbs steps whose visible states are the
probabilities :math:`v_t = \sigma(W^\top h_{t-1} + c)`; the update of a batch is

.. math::

    \Delta W \propto \langle p(h \mid v_0)\, v_0^\top \rangle - \langle p(h \mid v_k)\, v_k^\top \rangle
    - \lambda W

with SGD, momentum and weight decay :math:`\lambda` as in Hinton's guide. :math:`W, b`
become the encoder layer; :math:`c` is dropped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._progress import progress, quiet_unless
from ..errors import DataError, TransferkitError, did_you_mean

__all__ = [
    "LayerwiseConfig",
    "LayerwiseResult",
    "pretrain_layerwise",
    "encode",
    "METHODS",
    "DEFAULT_LR",
    "DEFAULT_WEIGHT_DECAY",
]

METHODS = ("ae", "rbm")

#: The learning rate used when ``LayerwiseConfig.lr`` is ``None``: Adam's usual rate for
#: the autoencoder; for the RBM the rate of Hinton & Salakhutdinov's MNIST code (gradients
#: averaged over the batch).
DEFAULT_LR = {"ae": 1e-3, "rbm": 0.1}

#: The weight decay used when ``LayerwiseConfig.weight_decay`` is ``None``: none for the
#: autoencoder (the tied weights and the noise regularise it; 1e-4 cost 3 points of
#: linear-probe accuracy on Fashion-MNIST); Hinton's 2e-4 for the RBM.
DEFAULT_WEIGHT_DECAY = {"ae": 0.0, "rbm": 2e-4}

_METRIC = {"ae": "reconstruction BCE", "rbm": "reconstruction MSE of one Gibbs step"}


@dataclass(frozen=True)
class LayerwiseConfig:
    """How to pre-train a stack of layers (a frozen dataclass that round-trips through JSON).

    Parameters
    ----------
    method : {"ae", "rbm"}
        ``"ae"``: denoising autoencoder with tied weights, masking noise, BCE and Adam.
        ``"rbm"``: Bernoulli-Bernoulli RBM trained with CD-k, SGD with momentum.
    layers : tuple of int
        Hidden widths from the input upward, e.g. ``(512, 256)``: a 784-512-256 stack.
    epochs : int
        Passes over the data for *each* layer. On Fashion-MNIST (60,000 images) 10 epochs
        gave no better features than 5 for either method.
    batch_size : int
        Examples per update (256 trains the AE ~25 % faster on CPU, features as good).
    lr : float or None
        Learning rate; ``None`` takes :data:`DEFAULT_LR` of the method (Adam 1e-3, SGD 0.1).
    noise : float
        ``"ae"`` only: share of each example's inputs set to 0 (masking noise), in ``[0, 1)``;
        Vincent et al. (2010) used 0.1–0.4. 0.5 measured no different on Fashion-MNIST.
    cd_k : int
        ``"rbm"`` only: Gibbs steps of contrastive divergence (1 works well for pre-training).
    momentum : float
        ``"rbm"`` only: SGD momentum once training has settled; the first epoch uses
        ``min(0.5, momentum)`` (Hinton's guide: 0.5 at first, then 0.9).
    weight_decay : float or None
        L2 penalty on the weights (not the biases); ``None`` takes :data:`DEFAULT_WEIGHT_DECAY`
        of the method (0 for ``"ae"``, 2e-4 for ``"rbm"``).
    """

    method: str = "ae"
    layers: tuple[int, ...] = (512, 256)
    epochs: int = 5
    batch_size: int = 64
    lr: float | None = None
    noise: float = 0.3
    cd_k: int = 1
    momentum: float = 0.9
    weight_decay: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.layers, list):  # JSON gives lists back; keep the dataclass hashable
            object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def resolved_lr(self) -> float:
        """The learning rate in use: ``lr`` or the method's default."""
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def resolved_weight_decay(self) -> float:
        """The weight decay in use: ``weight_decay`` or the method's default."""
        return float(self.weight_decay) if self.weight_decay is not None else DEFAULT_WEIGHT_DECAY[self.method]

    def validate(self) -> LayerwiseConfig:
        """Return ``self``; raise :class:`TransferkitError` on a bad setting."""
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise did_you_mean("layer-wise pre-training method", str(self.method), METHODS)

        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        def integer(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        checks = {
            "layers": (
                isinstance(self.layers, tuple)
                and len(self.layers) >= 1
                and all(integer(w) and w >= 1 for w in self.layers),
                "a non-empty tuple of ints >= 1",
            ),
            "epochs": (integer(self.epochs) and self.epochs >= 1, "an int >= 1"),
            "batch_size": (integer(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            "lr": (self.lr is None or (number(self.lr) and self.lr > 0), "None or a float > 0"),
            "noise": (number(self.noise) and 0 <= self.noise < 1, "a float in [0, 1)"),
            "cd_k": (integer(self.cd_k) and self.cd_k >= 1, "an int >= 1"),
            "momentum": (number(self.momentum) and 0 <= self.momentum < 1, "a float in [0, 1)"),
            "weight_decay": (
                self.weight_decay is None or (number(self.weight_decay) and self.weight_decay >= 0),
                "None or a float >= 0",
            ),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise TransferkitError(
                    f"The {name!r} parameter of LayerwiseConfig must be {expected}. "
                    f"Got {getattr(self, name)!r} instead."
                )
        return self

    def replace(self, **changes: Any) -> LayerwiseConfig:
        """A copy with ``changes``; ``None`` values are ignored, as in the other configs (so
        ``lr``/``weight_decay`` go back to the method's default with ``dataclasses.replace``)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (``layers`` as a list)."""
        data = dataclasses.asdict(self)
        data["layers"] = list(self.layers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerwiseConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TransferkitError(f"unknown LayerwiseConfig settings {unknown}; expected some of {sorted(known)}")
        return cls(**data).validate()


@dataclass
class LayerwiseResult:
    """What :func:`pretrain_layerwise` returns.

    Attributes
    ----------
    layers : list of nn.Linear
        The encoder layers from the input upward, ``Linear(d_in, d_out)``, each to be
        followed by a sigmoid. Ordinary trainable modules (``requires_grad`` on), ready to
        be fine-tuned.
    history : list of dict
        One record per layer: ``layer`` (index), ``in``, ``out`` (widths),
        ``loss_per_epoch`` (the mean training ``metric`` of each epoch), ``seconds`` and
        ``metric`` (``"reconstruction BCE"`` — of the clean input from the corrupted one —
        or ``"reconstruction MSE of one Gibbs step"``).
    config : LayerwiseConfig
    """

    layers: list[nn.Linear]
    history: list[dict[str, Any]] = field(default_factory=list)
    config: LayerwiseConfig = field(default_factory=LayerwiseConfig)


def _check_inputs(X: Any) -> torch.Tensor:
    """``X`` as a contiguous float32 tensor ``(N, D)`` in ``[0, 1]``; uint8 is divided by 255."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    array = np.asarray(X)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise DataError(f"X has dtype {array.dtype}; expected floats in [0, 1] (or uint8 pixels, divided by 255)")
    if array.ndim != 2:
        hint = "; flatten images first, e.g. X.reshape(len(X), -1)" if array.ndim > 2 else ""
        raise DataError(f"X has shape {array.shape}; expected a 2-D array (N examples, D inputs){hint}")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise DataError(f"X has shape {array.shape}; expected at least 2 examples and 1 input")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise DataError(f"X has {int((~np.isfinite(array)).sum())} NaN or infinite values; expected finite values")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise DataError(
            f"X has values in [{low:g}, {high:g}]; expected values in [0, 1] (scale pixels, e.g. X / 255, "
            "or pass uint8 pixels)"
        )
    return torch.from_numpy(array)


def _schedule(n: int, config: LayerwiseConfig, generator: torch.Generator, desc: str) -> Iterator[tuple[int, Any]]:
    """``(epoch, index (B,))`` for every batch of ``config.epochs`` shuffled passes over ``n`` examples, with a bar."""
    n_batches = -(-n // config.batch_size)

    def batches() -> Iterator[tuple[int, Any]]:
        for epoch in range(config.epochs):
            order = torch.randperm(n, generator=generator)  # drawn lazily, so the draws interleave as they're used
            for index in order.split(config.batch_size):
                yield epoch, index

    return progress(batches(), total=config.epochs * n_batches, desc=desc, unit="batch")


def _mask_noise(x: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Set ``round(share · D)`` components of each row of ``x`` ``(B, D)``, chosen at random, to 0."""
    n_zero = round(share * x.shape[1])
    if n_zero == 0:
        return x
    scores = torch.rand(x.shape, generator=generator)  # (B, D)
    threshold = scores.kthvalue(n_zero, dim=1, keepdim=True).values  # (B, 1)
    return x * (scores > threshold)


def _init_weight(d_in: int, d_out: int, method: str, generator: torch.Generator) -> torch.Tensor:
    """``(d_out, d_in)`` initial weights: Glorot-uniform for the AE (sigmoid units), N(0, 0.01²) for the RBM."""
    if method == "rbm":
        return torch.randn(d_out, d_in, generator=generator) * 0.01
    bound = 4.0 * math.sqrt(6.0 / (d_in + d_out))  # Glorot & Bengio's range for sigmoid units
    return (torch.rand(d_out, d_in, generator=generator) * 2 - 1) * bound


def _visible_bias(x: torch.Tensor) -> torch.Tensor:
    """``log(p / (1 - p))`` of each input's mean (Hinton's guide), ``(D,)``."""
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    return torch.log(p / (1 - p))


def _train_ae(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    config: LayerwiseConfig,
    generator: torch.Generator,
    desc: str,
) -> list[float]:
    """Train one tied denoising autoencoder on ``x`` ``(N, D)`` in place; return the mean BCE of each epoch."""
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    visible_bias = _visible_bias(x).requires_grad_(True)  # (D,)
    optimizer = torch.optim.Adam(
        [
            {"params": [weight], "weight_decay": config.resolved_weight_decay},
            {"params": [bias, visible_bias], "weight_decay": 0.0},
        ],
        lr=config.resolved_lr,
    )
    sums, counts = np.zeros(config.epochs), np.zeros(config.epochs)
    for epoch, index in _schedule(len(x), config, generator, desc):
        clean = x[index]  # (B, D)
        noisy = _mask_noise(clean, config.noise, generator)  # (B, D)
        hidden = torch.sigmoid(F.linear(noisy, weight, bias))  # (B, H)
        logits = F.linear(hidden, weight.t(), visible_bias)  # (B, D): x̂ = sigmoid(logits)
        loss = F.binary_cross_entropy_with_logits(logits, clean)  # mean over B·D
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums[epoch] += loss.item() * len(index)
        counts[epoch] += len(index)
    weight.requires_grad_(False)
    bias.requires_grad_(False)
    return (sums / counts).tolist()


@torch.no_grad()
def _train_rbm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    config: LayerwiseConfig,
    generator: torch.Generator,
    desc: str,
) -> list[float]:
    """Train one Bernoulli RBM on ``x`` ``(N, D)`` with CD-k in place; return the mean one-step MSE of each epoch."""
    visible_bias = _visible_bias(x)  # (D,)
    lr, decay = config.resolved_lr, config.resolved_weight_decay
    velocity = [torch.zeros_like(weight), torch.zeros_like(bias), torch.zeros_like(visible_bias)]
    sums, counts = np.zeros(config.epochs), np.zeros(config.epochs)
    for epoch, index in _schedule(len(x), config, generator, desc):
        momentum = min(0.5, config.momentum) if epoch == 0 else config.momentum
        v0 = x[index]  # (B, D): the data, intensities used as probabilities
        ph0 = torch.sigmoid(F.linear(v0, weight, bias))  # (B, H)
        h = torch.bernoulli(ph0, generator=generator)  # (B, H) sampled states
        for step in range(config.cd_k):
            v = torch.sigmoid(F.linear(h, weight.t(), visible_bias))  # (B, D) probabilities
            if step == 0:
                sums[epoch] += float(((v - v0) ** 2).mean()) * len(index)
                counts[epoch] += len(index)
            ph = torch.sigmoid(F.linear(v, weight, bias))  # (B, H)
            if step + 1 < config.cd_k:
                h = torch.bernoulli(ph, generator=generator)
        b = len(index)
        grads = (
            (ph0.t() @ v0 - ph.t() @ v) / b - decay * weight,  # (H, D): positive − negative statistics
            (ph0 - ph).mean(0),  # (H,)
            (v0 - v).mean(0),  # (D,)
        )
        for param, vel, grad in zip((weight, bias, visible_bias), velocity, grads):
            vel.mul_(momentum).add_(grad, alpha=lr)
            param.add_(vel)
    return (sums / counts).tolist()


@torch.no_grad()
def _encode_layer(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``sigmoid(x Wᵀ + b)`` ``(N, H)``, in chunks."""
    out = torch.empty(len(x), weight.shape[0])
    for start in range(0, len(x), batch_size):
        out[start : start + batch_size] = torch.sigmoid(F.linear(x[start : start + batch_size], weight, bias))
    return out


def pretrain_layerwise(
    X: Any, config: LayerwiseConfig | None = None, *, random_state: int = 0, verbose: bool = True
) -> LayerwiseResult:
    """Pre-train a stack of sigmoid layers greedily, one layer at a time, without labels.

    Layer ``i`` is trained (as a denoising autoencoder or an RBM, see the module docstring)
    on the deterministic output of layers ``0 .. i-1``, which are frozen and never change
    again: that output is computed once, ``sigmoid(W h + b)`` layer after layer.

    Parameters
    ----------
    X : array-like, shape (N, D)
        Unlabelled inputs, floats in ``[0, 1]`` (e.g. pixels / 255); a ``uint8`` array is
        divided by 255. At least 2 examples.
    config : LayerwiseConfig, optional
        Method and settings (default ``LayerwiseConfig()``: a 512-256 denoising autoencoder stack).
    random_state : int
        Seed of the initialisation, the batch order, the noise and the Gibbs samples. A
        private generator is used; the caller's global random state is not touched.
        Layer ``i``'s draws depend only on ``(random_state, i)``, so a deeper stack with the
        same seed and settings starts with exactly the same layers.
    verbose : bool
        Show a progress bar per layer (only on a terminal).

    Returns
    -------
    LayerwiseResult
        ``layers`` (``nn.Linear`` per layer), ``history`` (per layer: widths, per-epoch
        reconstruction error, seconds) and the validated ``config``.

    Raises
    ------
    TransferkitError
        On a bad setting of ``config``.
    DataError
        If ``X`` is not a finite 2-D array of at least 2 examples with values in ``[0, 1]``.

    Examples
    --------
    >>> result = pretrain_layerwise(X, LayerwiseConfig(method="rbm", layers=(256,)))  # doctest: +SKIP
    >>> features = encode(result.layers, X)  # (N, 256)  # doctest: +SKIP
    """
    config = (config or LayerwiseConfig()).validate()
    x = _check_inputs(X)  # (N, D)
    train = _train_ae if config.method == "ae" else _train_rbm
    layers: list[nn.Linear] = []
    history: list[dict[str, Any]] = []
    with quiet_unless(verbose), torch.random.fork_rng(devices=[]):
        for i, width in enumerate(config.layers):
            d_in = x.shape[1]
            generator = torch.Generator().manual_seed(int(random_state) * 1000003 + i)
            weight = _init_weight(d_in, width, config.method, generator)  # (H, D)
            bias = torch.zeros(width)  # (H,)
            start = time.perf_counter()
            desc = f"layer {i + 1}/{len(config.layers)} ({config.method} {d_in}→{width})"
            losses = train(x, weight, bias, config, generator, desc)
            seconds = time.perf_counter() - start
            layer = nn.Linear(d_in, width)
            with torch.no_grad():
                layer.weight.copy_(weight)
                layer.bias.copy_(bias)
            layers.append(layer)
            history.append(
                {
                    "layer": i,
                    "in": d_in,
                    "out": width,
                    "loss_per_epoch": losses,
                    "seconds": seconds,
                    "metric": _METRIC[config.method],
                }
            )
            if i + 1 < len(config.layers):
                x = _encode_layer(x, weight.detach(), bias.detach())  # (N, H): the next layer's data
    return LayerwiseResult(layers=layers, history=history, config=config)


@torch.no_grad()
def encode(layers: list[nn.Linear], X: Any, batch_size: int = 1024) -> np.ndarray:
    """The stack's deterministic output: ``sigmoid`` after every layer.

    Parameters
    ----------
    layers : list of nn.Linear
        E.g. :attr:`LayerwiseResult.layers`.
    X : ndarray or Tensor, shape (N, D)
        Inputs in ``[0, 1]`` (``uint8`` is divided by 255), ``D == layers[0].in_features``.
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    ndarray of float32, shape (N, layers[-1].out_features)
    """
    if not layers:
        raise TransferkitError(
            "The 'layers' parameter of encode must be a non-empty list of nn.Linear. Got [] instead."
        )
    x = _check_inputs(X)
    if x.shape[1] != layers[0].in_features:
        raise DataError(f"X has {x.shape[1]} inputs per example; the first layer reads {layers[0].in_features}")
    for layer in layers:
        x = _encode_layer(x, layer.weight.detach().cpu().float(), layer.bias.detach().cpu().float(), batch_size)
    return x.numpy()
