"""Label-free model selection for domain adaptation: deep embedded validation (DEV).

You et al., "Towards Accurate Model Selection in Deep Unsupervised Domain Adaptation",
ICML 2019. The target risk of a model is estimated from *held-out labelled source* examples,
each weighted by the density ratio ``w(x) = p_t(x) / p_s(x)``, which a domain classifier
estimates; a control variate removes most of the variance the weights bring:

    risk_DEV = mean(w·ℓ) + η·mean(w) − η,   η = −Cov(w·ℓ, w) / Var(w)

(``mean(w)`` is 1 in expectation, so the correction is unbiased). Target labels are never
read: only source labels and unlabelled target inputs.

Decisions, documented for the user:

- The domain classifier reads the *frozen* features every candidate starts from (backbone
  or TF-IDF), not each candidate's adapted features as in the paper, so that every
  candidate is scored with the same weights and the weights are computed once.
- It is a logistic regression on the first principal components of the standardised
  features (``n_components``), fitted on the source *training* part and the target, and
  applied to the held-out source part: weights are never estimated on the points they weigh.
- ``ℓ`` is the 0–1 error, so the risk reads as an estimated target error rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import DataError

__all__ = ["dev_risk", "importance_weights", "source_validation_split", "ImportanceWeights"]


def dev_risk(losses: np.ndarray, weights: np.ndarray) -> float:
    """The DEV estimate of the target risk from held-out source losses and density ratios.

    Parameters
    ----------
    losses : ndarray, shape (n,)
        Loss of each held-out *source* example (here the 0–1 error).
    weights : ndarray, shape (n,)
        Its estimated density ratio ``p_t / p_s``.

    Returns
    -------
    float
        ``mean(w·ℓ) + η·mean(w) − η`` with ``η = −Cov(w·ℓ, w) / Var(w)`` (``η = 0`` when the
        weights are constant, where DEV is the plain source validation risk).

    Raises
    ------
    DataError
        If the two are not 1-D arrays of the same non-zero length, or hold NaN or infinite values.
    """
    losses = np.asarray(losses, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if losses.ndim != 1 or weights.shape != losses.shape or len(losses) == 0:
        raise DataError(
            f"losses has shape {losses.shape} and weights {weights.shape}; expected two 1-D arrays of the same "
            "non-zero length, one loss and one weight per held-out source example"
        )
    if not (np.isfinite(losses).all() and np.isfinite(weights).all()):
        raise DataError("losses or weights contain NaN or infinite values; expected finite numbers")
    weighted = weights * losses  # (n,)
    variance = weights.var(ddof=1) if len(weights) > 1 else 0.0
    eta = 0.0 if variance <= 1e-12 else -np.cov(weighted, weights)[0, 1] / variance
    return float(weighted.mean() + eta * weights.mean() - eta)


def source_validation_split(labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train, validation)`` indices of the labelled source examples."""
    rng = np.random.default_rng(seed + 104729)
    train, validation = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = min(max(1, int(round(fraction * len(members)))), len(members) - 1)
        validation.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(validation, dtype=np.int64))


@dataclass
class ImportanceWeights:
    """Density ratios of the held-out source examples, and how separable the domains were.

    Attributes
    ----------
    weights : ndarray, shape (n_validation,)
        ``p_t / p_s`` estimates, normalised to mean 1.
    domain_accuracy : float
        Training accuracy of the domain classifier (0.5: indistinguishable, 1: disjoint).
    effective_sample_size : float
        ``(Σw)² / Σw²``: how many held-out examples the weighted estimate effectively rests on.
    """

    weights: np.ndarray
    domain_accuracy: float
    effective_sample_size: float


def importance_weights(
    source_train: np.ndarray,
    source_validation: np.ndarray,
    target: np.ndarray,
    *,
    n_components: int = 32,
    C: float = 0.1,
    max_weight: float = 50.0,
    random_state: int = 0,
) -> ImportanceWeights:
    """Estimate ``p_t(x) / p_s(x)`` at the held-out source examples with a domain classifier.

    Parameters
    ----------
    source_train : array, shape (n_s, D)
        Source features the classifier learns from (dense or scipy sparse).
    source_validation : array, shape (n_v, D)
        Held-out source features to weigh.
    target : array, shape (n_t, D)
        Unlabelled target features.
    n_components : int
        Principal components the classifier reads (truncated SVD for sparse input).
    C : float
        Inverse L2 regularisation of the logistic regression; small values keep the ratios
        from exploding where the domains barely overlap.
    max_weight : float
        Ratios are clipped here (relative to their mean) before normalising.
    random_state : int

    Returns
    -------
    ImportanceWeights
    """
    sparse = hasattr(source_train, "toarray")
    stacked = _stack(source_train, target, sparse)
    k = int(min(n_components, stacked.shape[1] - 1, stacked.shape[0] - 1))
    if sparse:
        embedding = make_pipeline(TruncatedSVD(n_components=k, random_state=random_state), StandardScaler())
    else:
        embedding = make_pipeline(StandardScaler(), PCA(n_components=k, random_state=random_state), StandardScaler())
    z = stacked
    for _, step in embedding.steps:  # fit, then transform: fit_transform's randomized-SVD shortcut is not X V
        z = step.fit(z).transform(z)  # ends (n_s + n_t, k)
    domain = np.r_[np.zeros(source_train.shape[0]), np.ones(target.shape[0])]  # 1 = target
    classifier = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(z, domain)
    p_target = classifier.predict_proba(embedding.transform(source_validation))[:, 1]  # (n_v,)
    # class_weight="balanced" makes the odds the ratio of densities, without the n_t / n_s prior.
    ratio = p_target / np.clip(1.0 - p_target, 1e-12, None)
    ratio = np.minimum(ratio, max_weight * ratio.mean())
    weights = ratio / ratio.mean()
    return ImportanceWeights(
        weights=weights,
        domain_accuracy=float(classifier.score(z, domain)),
        effective_sample_size=float(weights.sum() ** 2 / (weights**2).sum()),
    )


def _stack(a: np.ndarray, b: np.ndarray, sparse: bool) -> np.ndarray:
    if sparse:
        import scipy.sparse

        return scipy.sparse.vstack([a, b]).tocsr()
    return np.vstack([np.asarray(a), np.asarray(b)])
