"""Train to reuse: source-task pre-training into the zoo, greedy layer-wise unsupervised
pre-training (stacked denoising autoencoders and RBMs), and parameter transfer for linear models."""

from .layerwise import LayerwiseConfig, LayerwiseResult, encode, pretrain_layerwise
from .linear import DEFAULT_LAMBDAS, TransferLogisticRegression
from .source import PretrainResult, pretrain_supervised, pretrain_unsupervised

__all__ = [
    "DEFAULT_LAMBDAS",
    "LayerwiseConfig",
    "LayerwiseResult",
    "PretrainResult",
    "TransferLogisticRegression",
    "encode",
    "pretrain_layerwise",
    "pretrain_supervised",
    "pretrain_unsupervised",
]
