"""Deep adaptation on frozen features: a bottleneck and a head trained with an adaptation loss.

The fast path, and the default on CPU: the backbone's features of source and target are
extracted once (cached), and only a small network on top learns, on the one training loop
(:func:`transferkit.training.train_network`) with the loss of the chosen method
(:mod:`transferkit.adaptation.losses`) added at every step. The same losses also run on a
whole backbone (``TransferClassifier(strategy="finetune", adaptation=...)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import DataError, NotFittedError, TransferkitError, did_you_mean
from ..training import TrainConfig, predict_logits, train_network
from ._checks import check_features
from .losses import ADAPTATION_LOSSES, make_adaptation_loss

__all__ = ["AdaptationConfig", "BottleneckNetwork", "FeatureAdapter"]


@dataclass(frozen=True)
class AdaptationConfig:
    """How to adapt (after PEFT's configs: a frozen dataclass that round-trips through JSON).

    Parameters
    ----------
    method : {"dann", "coral", "mmd", "cdan"}
        The adaptation loss.
    weight : float
        Its trade-off against the source classification loss; ``0`` is source-only training.
    bottleneck_dim : int
        Width of the adapted feature layer (feature path only).
    dropout : float
        Dropout after the bottleneck (feature path only).
    steps : int
        Optimisation steps on the feature path (epochs follow from the source size).
    lr : float
        Peak AdamW learning rate on the feature path.
    batch_size : int
        Source examples per step (and as many target examples).
    """

    method: str = "dann"
    weight: float = 1.0
    bottleneck_dim: int = 256
    dropout: float = 0.5
    steps: int = 600  # what the benchmark measured on the image pairs (BENCHMARKS.md)
    lr: float = 1e-3
    batch_size: int = 64

    def validate(self) -> AdaptationConfig:
        """Return ``self``; raise :class:`TransferkitError` on a bad setting."""
        if self.method not in ADAPTATION_LOSSES:
            raise did_you_mean("adaptation method", str(self.method), list(ADAPTATION_LOSSES))
        checks = {
            "weight": (isinstance(self.weight, (int, float)) and self.weight >= 0, "a float >= 0"),
            "bottleneck_dim": (isinstance(self.bottleneck_dim, int) and self.bottleneck_dim >= 1, "an int >= 1"),
            "dropout": (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1, "a float in [0, 1)"),
            "steps": (isinstance(self.steps, int) and self.steps >= 1, "an int >= 1"),
            "lr": (isinstance(self.lr, (int, float)) and self.lr > 0, "a float > 0"),
            "batch_size": (isinstance(self.batch_size, int) and self.batch_size >= 2, "an int >= 2"),
        }
        for name, (ok, expected) in checks.items():
            if not ok or isinstance(getattr(self, name), bool):
                raise TransferkitError(
                    f"The {name!r} parameter of AdaptationConfig must be {expected}. "
                    f"Got {getattr(self, name)!r} instead."
                )
        return self

    def replace(self, **changes: Any) -> AdaptationConfig:
        """A copy with ``changes`` (``None`` values ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptationConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TransferkitError(f"unknown AdaptationConfig settings {unknown}; expected some of {sorted(known)}")
        return cls(**data).validate()


class BottleneckNetwork(nn.Module):
    """Frozen features ``(B, D_in)`` → bottleneck ``(B, D)`` → logits ``(B, K)``.

    The bottleneck (linear, BatchNorm, ReLU, dropout) is the adapted representation whose
    source and target distributions the adaptation loss pulls together, as in TLlib's
    image classifiers.
    """

    def __init__(self, in_dim: int, n_classes: int, bottleneck_dim: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.bottleneck = nn.Sequential(
            nn.Linear(in_dim, bottleneck_dim), nn.BatchNorm1d(bottleneck_dim), nn.ReLU(), nn.Dropout(dropout)
        )
        self.head = nn.Linear(bottleneck_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The adapted representation, ``(B, bottleneck_dim)``."""
        return self.bottleneck(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, K)

    def layer_groups(self) -> list[tuple[str, list[nn.Module]]]:
        """``bottleneck`` then ``head``."""
        return [("bottleneck", [self.bottleneck]), ("head", [self.head])]


@dataclass(frozen=True)
class _TrainEverything:
    """The strategy the training loop runs on a :class:`BottleneckNetwork`: every group, one rate."""

    name: ClassVar[str] = "bottleneck"
    trains: ClassVar[bool] = True

    def prepare(self, network: nn.Module, context: Any) -> None:
        """Nothing to prepare."""

    def apply(self, network: BottleneckNetwork) -> list[dict[str, Any]]:
        """Every parameter trains at the full rate."""
        return [
            {"name": name, "params": [p for m in modules for p in m.parameters()], "lr_scale": 1.0}
            for name, modules in network.layer_groups()
        ]

    def on_epoch(self, epoch: int, network: nn.Module) -> None:
        """No schedule."""

    def penalty(self, network: nn.Module) -> None:
        """No regulariser."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON identity (the loop's checkpoint fingerprint)."""
        return {"strategy": self.name}


def dense_features(features: Any) -> np.ndarray:
    """``features`` as a dense float32 ``(N, D)`` array (TF-IDF comes sparse)."""
    if hasattr(features, "toarray"):
        features = features.toarray()
    if np.iscomplexobj(features):  # the cast would drop the imaginary part without a word
        raise DataError("features hold complex numbers; expected real numbers")
    try:
        return np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"features could not be read as numbers ({exc}); expected a numeric (N, D) array") from None


def _as_float32(features: Any) -> torch.Tensor:
    return torch.as_tensor(dense_features(features))


def bottleneck_train_config(config: AdaptationConfig, n_examples: int, seed: int) -> TrainConfig:
    """The training loop's settings for a :class:`BottleneckNetwork`: ``config.steps`` steps over ``n_examples``."""
    steps_per_epoch = -(-n_examples // config.batch_size)
    return TrainConfig(
        seed=int(seed),
        epochs=max(1, round(config.steps / steps_per_epoch)),
        lr=config.lr,
        batch_size=config.batch_size,
        weight_decay=1e-3,
        warmup_epochs=0.0,
        val_fraction=0.0,
        augment=False,
        batchnorm="train",
    )


class FeatureAdapter:
    """A bottleneck network trained on frozen source features (labelled) and target features (not).

    Parameters
    ----------
    adaptation : AdaptationConfig, optional
        The method and its settings (default ``AdaptationConfig()``: DANN).
    random_state : int
        Seed of the initialisation, the batch order and dropout.

    Attributes
    ----------
    network_ : BottleneckNetwork
    history_ : list of dict
        The training loop's per-epoch record.
    """

    def __init__(self, adaptation: AdaptationConfig | None = None, random_state: int = 0) -> None:
        self.adaptation = adaptation
        self.random_state = random_state

    def fit(self, source_features: Any, labels: np.ndarray, target_features: Any) -> FeatureAdapter:
        """Train on labelled ``source_features`` ``(N_s, D_in)`` and unlabelled ``target_features`` ``(N_t, D_in)``.

        Parameters
        ----------
        source_features : array-like or sparse matrix, shape (N_s, D_in)
            Made dense float32.
        labels : ndarray of int, shape (N_s,)
            Label indices ``0 .. K-1``; the head has ``K = labels.max() + 1`` outputs.
        target_features : array-like or sparse matrix, shape (N_t, D_in)
            Unlabelled; each step draws as many target rows as source rows, with replacement.

        Returns
        -------
        self

        Raises
        ------
        TransferkitError
            On a bad :class:`AdaptationConfig` setting, or when the two feature sets are not 2-D with the
            same width.
        DataError
            When ``target_features`` has no rows.
        """
        config = (self.adaptation or AdaptationConfig()).validate()
        x_s, x_t = _as_float32(source_features), _as_float32(target_features)
        if x_s.ndim != 2 or x_t.ndim != 2 or x_s.shape[1] != x_t.shape[1]:
            raise TransferkitError(
                "source and target features must be 2-D with the same width; "
                f"got {tuple(x_s.shape)} and {tuple(x_t.shape)}"
            )
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) == 0 or labels.min() < 0:
            raise DataError(
                f"labels must be a non-empty 1-D array of class indices 0 .. K-1; got {labels.dtype} of shape "
                f"{labels.shape}"
                + (f" with minimum {labels.min()}" if labels.size and labels.dtype.kind in "iu" else "")
            )
        if len(labels) != x_s.shape[0]:  # the loop would index the first len(labels) rows only, silently
            raise DataError(f"labels has {len(labels)} entries but source_features {len(x_s)} rows; expected one each")
        check_features(x_s.numpy(), "source_features")
        if len(x_t):  # no rows: the training loop's own error says what is missing
            check_features(x_t.numpy(), "target_features")
        labels = labels.astype(np.int64)
        n_classes = int(labels.max()) + 1
        torch.manual_seed(self.random_state)
        network = BottleneckNetwork(x_s.shape[1], n_classes, config.bottleneck_dim, config.dropout)
        loss = make_adaptation_loss(config.method, config.bottleneck_dim, n_classes)
        result = train_network(
            network,
            _TrainEverything(),
            x_s,
            labels,
            config=bottleneck_train_config(config, len(labels), self.random_state),
            preprocess=lambda batch: batch,
            modality="tabular",
            target_inputs=x_t,
            adaptation=loss,
            adaptation_weight=float(config.weight),
            desc=f"adapting ({config.method})",
        )
        self.network_ = network.eval()
        self.history_ = result.history
        self.n_features_in_ = int(x_s.shape[1])
        self.config_ = config
        return self

    def decision_function(self, features: Any) -> np.ndarray:
        """Logits ``(N, K)``."""
        if not hasattr(self, "network_"):
            raise NotFittedError("This FeatureAdapter instance is not fitted yet; call 'fit' first")
        x = _as_float32(features)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise DataError(f"features have shape {tuple(x.shape)}; expected (N, {self.n_features_in_}) as in fit")
        return predict_logits(self.network_, x, lambda batch: batch, batch_size=1024).numpy()

    def predict_proba(self, features: Any) -> np.ndarray:
        """Class probabilities ``(N, K)``."""
        logits = torch.as_tensor(self.decision_function(features))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, features: Any) -> np.ndarray:
        """Label indices ``(N,)``."""
        return self.decision_function(features).argmax(1)

    # -- persistence (safetensors arrays + JSON, never pickle) --------------------------
    def save_arrays(self) -> dict[str, np.ndarray]:
        """The network's tensors as numpy arrays."""
        return {k: v.detach().numpy() for k, v in self.network_.state_dict().items()}

    def config(self) -> dict[str, Any]:
        """The JSON ``model_config`` saved beside :meth:`save_arrays`: settings, ``in_dim``, ``n_classes``, seed."""
        return {
            "adaptation": self.config_.to_dict(),
            "in_dim": self.n_features_in_,
            "n_classes": int(self.network_.head.out_features),
            "random_state": self.random_state,
        }

    @classmethod
    def from_arrays(cls, model_config: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeatureAdapter:
        """Rebuild from :meth:`config` and :meth:`save_arrays`.

        Parameters
        ----------
        model_config : dict
            What :meth:`config` returned.
        arrays : dict of str to ndarray
            What :meth:`save_arrays` returned.

        Returns
        -------
        FeatureAdapter
            In inference mode, with an empty ``history_``.
        """
        config = AdaptationConfig.from_dict(model_config["adaptation"])
        adapter = cls(config, model_config.get("random_state", 0))
        network = BottleneckNetwork(
            model_config["in_dim"], model_config["n_classes"], config.bottleneck_dim, config.dropout
        )
        network.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        adapter.network_ = network.eval()
        adapter.config_ = config
        adapter.n_features_in_ = int(model_config["in_dim"])
        adapter.history_ = []
        return adapter
