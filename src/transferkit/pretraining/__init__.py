"""Train to reuse: parameter transfer for linear models (source pre-training and greedy
layer-wise unsupervised pre-training are to come, issue 6)."""

from .linear import DEFAULT_LAMBDAS, TransferLogisticRegression

__all__ = ["DEFAULT_LAMBDAS", "TransferLogisticRegression"]
