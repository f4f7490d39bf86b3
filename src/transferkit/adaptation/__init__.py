"""Domain adaptation (transductive transfer): labelled source, unlabelled target, the same labels.

- :mod:`.losses` — DANN, Deep CORAL, DAN (multi-kernel MMD), CDAN as loss modules for the one
  training loop;
- :mod:`.deep` — a bottleneck network trained with one of them on frozen features (the fast path);
- :mod:`.shallow` — CORAL re-colouring, KMM and KLIEP re-weighting, class-balanced self-training for any
  scikit-learn classifier;
- :mod:`.msda` — marginalized stacked denoising autoencoder features learned on both domains;
- :mod:`.run` — fit any method, and choose among them without target labels (reverse validation);
- :mod:`.validation` — importance-weighted validation (DEV), for comparison;
- :mod:`.compare` — every method against source-only over seeds, with domain distances.
"""

from .compare import check_same_labels, compare_adaptation, domain_distance, match_resolution, tfidf_features
from .deep import AdaptationConfig, BottleneckNetwork, FeatureAdapter
from .losses import (
    ADAPTATION_LOSSES,
    ConditionalAdversarialLoss,
    CoralLoss,
    DomainAdversarialLoss,
    GradientReversal,
    MultiKernelMMDLoss,
    make_adaptation_loss,
)
from .msda import MarginalizedDenoisingClassifier, msda_features, msda_mappings
from .run import (
    DEEP_METHODS,
    METHODS,
    SHALLOW_METHODS,
    WEIGHTED_METHODS,
    Candidate,
    DenoisedProbeHead,
    Selection,
    fit_method,
    select_adaptation,
)
from .shallow import (
    CoralClassifier,
    ReweightedClassifier,
    SelfTrainingClassifier,
    coral_transform,
    kliep_weights,
    kmm_weights,
)
from .validation import dev_risk, importance_weights

__all__ = [
    "ADAPTATION_LOSSES",
    "AdaptationConfig",
    "BottleneckNetwork",
    "Candidate",
    "ConditionalAdversarialLoss",
    "CoralClassifier",
    "CoralLoss",
    "DEEP_METHODS",
    "DenoisedProbeHead",
    "DomainAdversarialLoss",
    "FeatureAdapter",
    "GradientReversal",
    "METHODS",
    "MarginalizedDenoisingClassifier",
    "MultiKernelMMDLoss",
    "ReweightedClassifier",
    "SHALLOW_METHODS",
    "Selection",
    "SelfTrainingClassifier",
    "WEIGHTED_METHODS",
    "check_same_labels",
    "compare_adaptation",
    "coral_transform",
    "dev_risk",
    "domain_distance",
    "fit_method",
    "importance_weights",
    "kliep_weights",
    "kmm_weights",
    "make_adaptation_loss",
    "match_resolution",
    "msda_features",
    "msda_mappings",
    "select_adaptation",
    "tfidf_features",
]
