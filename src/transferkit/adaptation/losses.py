"""Domain-adaptation losses (after TLlib): modules that read source and target features.

Every loss is an ``nn.Module`` called as ``loss(f_s, f_t, logits_s, logits_t)`` with

- ``f_s`` ``(B_s, D)``, ``f_t`` ``(B_t, D)``: features of a labelled source batch and an
  unlabelled target batch, from the same network;
- ``logits_s`` ``(B_s, K)``, ``logits_t`` ``(B_t, K)``: that network's class scores;

and returns a dict with at least ``loss`` (a scalar to *add*, unweighted: the training loop
multiplies it by the adaptation weight) and, for the adversarial ones, ``domain_accuracy``.
The classification loss on the source labels is the training loop's, not the module's.

``progress`` (0 → 1 over training) drives the warm start of the gradient-reversal
coefficient, ``λ(p) = 2 / (1 + exp(−10 p)) − 1`` (Ganin et al. 2016, section 5.2.2).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GradientReversal",
    "grl_coefficient",
    "DomainAdversarialLoss",
    "CoralLoss",
    "MultiKernelMMDLoss",
    "ConditionalAdversarialLoss",
    "ADAPTATION_LOSSES",
    "make_adaptation_loss",
]


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-coefficient`` backward (Ganin & Lempitsky, ICML 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def grl_coefficient(progress: float) -> float:
    """``2 / (1 + exp(−10 p)) − 1``: 0 at the start of training, → 1 at the end."""
    return 2.0 / (1.0 + math.exp(-10.0 * float(progress))) - 1.0


def _discriminator(in_dim: int, hidden: int) -> nn.Sequential:
    """The domain classifier of TLlib's DANN/CDAN: two hidden layers with BatchNorm, one logit."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def _domain_loss(
    d_s: torch.Tensor, d_t: torch.Tensor, w_s: torch.Tensor | None = None, w_t: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Binary cross-entropy of the domain logits (source = 1, target = 0), averaged over the two domains."""
    loss_s = F.binary_cross_entropy_with_logits(d_s.squeeze(1), torch.ones(len(d_s)), weight=w_s)
    loss_t = F.binary_cross_entropy_with_logits(d_t.squeeze(1), torch.zeros(len(d_t)), weight=w_t)
    correct = torch.cat([(d_s > 0).float(), (d_t <= 0).float()])
    return {"loss": 0.5 * (loss_s + loss_t), "domain_accuracy": correct.mean().detach()}


class DomainAdversarialLoss(nn.Module):
    r"""DANN: features that a domain classifier cannot tell apart.

    Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 17(59), 2016.
    A discriminator :math:`D` learns to tell source from target features; a gradient-reversal
    layer makes the feature extractor maximise the same loss:

    .. math:: \mathcal{L} = \tfrac12\big[\mathrm{BCE}(D(R_\lambda f_s), 1) + \mathrm{BCE}(D(R_\lambda f_t), 0)\big]

    with :math:`R_\lambda` identity forward and :math:`-\lambda\,\nabla` backward.

    Parameters
    ----------
    feature_dim : int
        ``D``, the width of ``f_s`` and ``f_t``.
    hidden : int
        Width of the discriminator's two hidden layers.
    """

    def __init__(self, feature_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.discriminator = _discriminator(feature_dim, hidden)

    def forward(
        self,
        f_s: torch.Tensor,
        f_t: torch.Tensor,
        logits_s: torch.Tensor,
        logits_t: torch.Tensor,
        progress: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """The domain-discrimination loss of a source and a target batch.

        The signature every adaptation loss shares; the training loop calls it at each step.

        Parameters
        ----------
        f_s : torch.Tensor, shape (B_s, D)
            Features of the labelled source batch.
        f_t : torch.Tensor, shape (B_t, D)
            Features of the unlabelled target batch, from the same network.
        logits_s : torch.Tensor, shape (B_s, K)
            The network's class scores of the source batch (unused here; read by CDAN).
        logits_t : torch.Tensor, shape (B_t, K)
            The same for the target batch.
        progress : float, default=1.0
            Fraction of training done, from 0 to 1 (step / total steps); sets the gradient-reversal
            coefficient :func:`grl_coefficient` (ignored by CORAL and MMD).

        Returns
        -------
        dict of str to torch.Tensor
            ``"loss"``: a scalar, unweighted (the loop multiplies it by the adaptation weight);
            ``"domain_accuracy"``: the discriminator's accuracy on both batches, detached.
        """
        coefficient = grl_coefficient(progress)
        d = self.discriminator(GradientReversal.apply(torch.cat([f_s, f_t]), coefficient))  # (B_s + B_t, 1)
        return _domain_loss(d[: len(f_s)], d[len(f_s) :])


class ConditionalAdversarialLoss(nn.Module):
    r"""CDAN: adversarial alignment of features *conditioned on the predictions*.

    Long et al., "Conditional Adversarial Domain Adaptation", NeurIPS 2018. The discriminator
    sees the multilinear map :math:`h = f \otimes g` of features and class probabilities
    :math:`g = \mathrm{softmax}(\text{logits})` (not back-propagated through, as in the authors'
    code), so that it aligns the class-conditional distributions, not only the marginals:

    .. math:: \mathcal{L} = \tfrac12\big[\mathrm{BCE}(D(R_\lambda h_s), 1) + \mathrm{BCE}(D(R_\lambda h_t), 0)\big]

    When :math:`D K` exceeds ``max_outer``, the randomised map
    :math:`h = (R_f f) \odot (R_g g) / \sqrt{d}` with fixed Gaussian ``R_f (d, D)``, ``R_g (d, K)``
    replaces the outer product (the paper's section 3.2). With ``entropy_conditioning`` (CDAN+E)
    each example is weighted by :math:`1 + e^{-H(g)}`, so confident predictions count more.

    Parameters
    ----------
    feature_dim, n_classes : int
    hidden : int
        Width of the discriminator's hidden layers.
    max_outer : int
        Largest ``D * K`` for the exact outer product.
    random_dim : int
        ``d`` of the randomised map.
    entropy_conditioning : bool
    """

    def __init__(
        self,
        feature_dim: int,
        n_classes: int,
        hidden: int = 256,
        max_outer: int = 4096,
        random_dim: int = 1024,
        entropy_conditioning: bool = False,
    ) -> None:
        super().__init__()
        self.randomized = feature_dim * n_classes > max_outer
        self.entropy_conditioning = entropy_conditioning
        if self.randomized:
            generator = torch.Generator().manual_seed(0)  # fixed maps: the same at every run and resume
            self.register_buffer("map_f", torch.randn(feature_dim, random_dim, generator=generator))
            self.register_buffer("map_g", torch.randn(n_classes, random_dim, generator=generator))
            in_dim = random_dim
        else:
            in_dim = feature_dim * n_classes
        self.discriminator = _discriminator(in_dim, hidden)

    def _map(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.randomized:
            return (f @ self.map_f) * (g @ self.map_g) / math.sqrt(self.map_f.shape[1])  # (B, d)
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)  # (B, K * D)

    def forward(
        self,
        f_s: torch.Tensor,
        f_t: torch.Tensor,
        logits_s: torch.Tensor,
        logits_t: torch.Tensor,
        progress: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """CDAN's loss; arguments and result as in :meth:`DomainAdversarialLoss.forward`.

        Parameters
        ----------
        f_s, f_t : torch.Tensor, shapes (B_s, D) and (B_t, D)
        logits_s, logits_t : torch.Tensor, shapes (B_s, K) and (B_t, K)
            Turned into class probabilities, not back-propagated through.
        progress : float, default=1.0
        """
        g = F.softmax(torch.cat([logits_s, logits_t]), dim=1).detach()  # (B_s + B_t, K)
        h = self._map(torch.cat([f_s, f_t]), g)
        d = self.discriminator(GradientReversal.apply(h, grl_coefficient(progress)))  # (B_s + B_t, 1)
        w_s = w_t = None
        if self.entropy_conditioning:
            entropy = -(g * torch.log(g + 1e-5)).sum(1)  # (B_s + B_t,)
            weight = 1.0 + torch.exp(-entropy)
            w_s, w_t = weight[: len(f_s)], weight[len(f_s) :]
            w_s, w_t = w_s / w_s.sum() * len(w_s), w_t / w_t.sum() * len(w_t)
        return _domain_loss(d[: len(f_s)], d[len(f_s) :], w_s, w_t)


class CoralLoss(nn.Module):
    r"""Deep CORAL: match the second-order statistics of source and target features.

    Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016
    workshops:

    .. math:: \mathcal{L} = \frac{1}{4D^2}\,\lVert C_s - C_t \rVert_F^2

    with :math:`C` the ``(D, D)`` covariance of a batch's features.
    """

    def forward(
        self,
        f_s: torch.Tensor,
        f_t: torch.Tensor,
        logits_s: torch.Tensor,
        logits_t: torch.Tensor,
        progress: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """Deep CORAL's loss; arguments as in :meth:`DomainAdversarialLoss.forward`, returns ``{"loss"}`` only.

        Parameters
        ----------
        f_s, f_t : torch.Tensor, shapes (B_s, D) and (B_t, D)
            A batch of one row counts as having zero covariance.
        logits_s, logits_t, progress
            Unused.
        """
        d = f_s.shape[1]
        c_s, c_t = _covariance(f_s), _covariance(f_t)  # (D, D)
        return {"loss": (c_s - c_t).pow(2).sum() / (4 * d * d)}


def _covariance(f: torch.Tensor) -> torch.Tensor:
    centred = f - f.mean(0, keepdim=True)  # (B, D)
    return centred.T @ centred / max(1, len(f) - 1)  # (D, D)


class MultiKernelMMDLoss(nn.Module):
    r"""DAN: multi-kernel maximum mean discrepancy between source and target features.

    Long et al., "Learning Transferable Features with Deep Adaptation Networks", ICML 2015.
    The squared MMD of a sum of Gaussian kernels :math:`k = \sum_u k_{\sigma_u}`,

    .. math:: \mathcal{L} = \overline{k(f_s, f_s')} + \overline{k(f_t, f_t')} - 2\,\overline{k(f_s, f_t)}

    (the batch estimate, diagonals included, as in TLlib), with bandwidths
    :math:`\sigma_u^2 = 2^u \bar{d}^2`, :math:`u \in` ``scales``, around the batch's mean
    squared distance :math:`\bar{d}^2` (not back-propagated through). The kernel weights are
    equal rather than optimised, a common simplification.

    Parameters
    ----------
    scales : tuple of int
        Exponents ``u`` of the bandwidths.
    """

    def __init__(self, scales: tuple[int, ...] = (-3, -2, -1, 0, 1)) -> None:
        super().__init__()
        self.scales = tuple(scales)
        if not self.scales:  # the kernel would be the integer 0, and the loss fail at the first step
            from ..errors import TransferkitError

            raise TransferkitError("The 'scales' parameter of MultiKernelMMDLoss must hold at least one exponent")

    def forward(
        self,
        f_s: torch.Tensor,
        f_t: torch.Tensor,
        logits_s: torch.Tensor,
        logits_t: torch.Tensor,
        progress: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """The MK-MMD loss; arguments as in :meth:`DomainAdversarialLoss.forward`, returns ``{"loss"}`` only.

        Parameters
        ----------
        f_s, f_t : torch.Tensor, shapes (B_s, D) and (B_t, D)
        logits_s, logits_t, progress
            Unused.
        """
        f = torch.cat([f_s, f_t])  # (B_s + B_t, D)
        squared = torch.cdist(f, f).pow(2)  # (B, B)
        mean_squared = squared.detach().mean().clamp_min(1e-12)
        kernel = sum(torch.exp(-squared / (2.0**u * mean_squared)) for u in self.scales)
        n = len(f_s)
        mmd = kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
        return {"loss": mmd}


ADAPTATION_LOSSES = ("dann", "coral", "mmd", "cdan")


def make_adaptation_loss(method: str, feature_dim: int, n_classes: int) -> nn.Module:
    """The loss module of ``method`` (``"dann"``, ``"coral"``, ``"mmd"`` or ``"cdan"``) for these shapes.

    Parameters
    ----------
    method : str
        One of :data:`ADAPTATION_LOSSES`.
    feature_dim : int
        ``D``, the width of the features the loss reads (used by ``"dann"`` and ``"cdan"``).
    n_classes : int
        ``K``, the number of classes (used by ``"cdan"``).

    Returns
    -------
    torch.nn.Module
        With default settings; the adversarial ones hold a discriminator that trains with the network.

    Raises
    ------
    UnknownNameError
        For an unknown ``method``.
    """
    from ..errors import did_you_mean

    if method == "dann":
        return DomainAdversarialLoss(feature_dim)
    if method == "cdan":
        return ConditionalAdversarialLoss(feature_dim, n_classes)
    if method == "coral":
        return CoralLoss()
    if method == "mmd":
        return MultiKernelMMDLoss()
    raise did_you_mean("deep adaptation method", method, list(ADAPTATION_LOSSES))
