"""TransferClassifier: the scikit-learn-style entry point."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.base import BaseEstimator, ClassifierMixin

from ._estimator_checks import as_array_like, reset_fitted
from ._estimator_params import adaptation_config, check_parameters, training_overrides
from ._inputs import BASELINE_IMAGE_SIZE, as_inputs, description_labels, infer_modality
from ._progress import quiet_unless
from .backbones import DEFAULT_BACKBONES, create_backbone
from .data._dataset import content_hash, take
from .data.preprocess import load_image
from .data.user import check_labels
from .errors import DataError, NotFittedError, TransferkitError
from .features import extract_features
from .strategies import ProbeHead, Strategy, get_strategy
from .training import TrainConfig, TransferNetwork, predict_logits, train_network

__all__ = ["TransferClassifier", "infer_modality"]

# Strategies that use label descriptions: the probe, and LP-FT (whose probe stage they shape).
_DESCRIBED = ("linear-probe", "lp-ft")


class TransferClassifier(ClassifierMixin, BaseEstimator):
    """Classify with what a pre-trained backbone learned, or with a target-only baseline.

    Parameters
    ----------
    backbone : str, optional
        Registered name, ``timm:<name>``, ``hf:<id-or-path>`` or ``zoo:<name>``; default by
        modality (``efficientnet_lite0.in1k`` for images, ``minilm_l6.sentence`` for text).
        ``"auto"`` ranks every candidate of the data's modality with LogME on the training
        examples and takes the best (see :mod:`transferkit.selection.auto`).
    strategy : str or Strategy
        ``"linear-probe"`` (frozen features), a fine-tuning strategy (``"finetune"``, ``"freeze"``,
        ``"lp-ft"``, ``"gradual-unfreeze"``, ``"l2sp"``, ``"lora"``; pass an instance from
        :func:`transferkit.get_strategy` for their settings), the target-only baselines
        ``"scratch"`` and ``"classical"``, or ``"auto"``: a rule from the labels per class and the
        domain distance, refined by a held-out check carved from the training examples.
    layer : str, optional
        Backbone layer to read features from; default the pooled embedding.
    image_size : int, optional
        Resize images to this instead of the backbone's native size (faster when smaller).
    C : float
        Inverse regularisation of the linear probe.
    batch_size : int
        Examples per forward pass during extraction.
    cache : bool
        Cache extracted features on disk (see :func:`transferkit.features.cache_directory`).
    cache_dir : str, optional
        Cache location.
    random_state : int
        Seed of everything random in ``fit``.
    verbose : bool
        Show progress bars (on a terminal).
    epochs, lr : int, float, optional
        Training length and peak learning rate of the fine-tuning strategies (``finetune``,
        ``freeze``, ``lp-ft``, ``gradual-unfreeze``, ``l2sp``, ``lora``); default: the strategy's.
    training : TrainConfig or dict, optional
        Any other setting of the training loop (optimizer, schedule, val_fraction, patience,
        augment, batchnorm, ...); see :class:`transferkit.training.TrainConfig`.
    checkpoint_dir : str, optional
        Write a checkpoint after every epoch into this folder.
    resume : bool
        Continue the run whose checkpoint is in ``checkpoint_dir``; with none there yet, train from
        the start (with a warning).
    label_descriptions : str or dict, optional
        Text only, with ``linear-probe`` or ``lp-ft``: a JSON file (or dict) of label → one or more
        sentences ("This review is positive."). With no labelled examples (``fit([], [])``) the
        model is a zero-shot classifier over the described labels; with some, the descriptions are
        a prior mixed into the probe with a weight chosen by leave-one-out on the labelled examples
        only (see :class:`transferkit.strategies.label_prior.DescriptionPriorHead`); LP-FT then
        fine-tunes from that head.
    adaptation : str, optional
        Domain adaptation to the unlabelled ``X_target`` given to :meth:`fit`: ``"dann"``,
        ``"coral"``, ``"mmd"``, ``"cdan"`` (losses on a bottleneck over frozen features with
        ``linear-probe``, the fast default; on the whole network with a fine-tuning strategy),
        ``"shallow-coral"``, ``"kmm"``, ``"kliep"``, ``"self-training"``, ``"msda"`` (frozen features only), or
        ``"auto"``: every method and ``source-only``, chosen by reverse validation without target
        labels, with the one-standard-error rule in favour of simpler methods (see
        :mod:`transferkit.adaptation.run`).
    adaptation_weight : float, optional
        Trade-off of the adaptation loss (for ``"self-training"``: the sample weight of each
        pseudo-labelled target example; for ``"msda"``: the scale of the denoised features);
        ``None`` chooses it among 0.3 and 1 by reverse validation on frozen features, and uses 1
        when fine-tuning the network.
    adaptation_settings : AdaptationConfig or dict, optional
        The bottleneck network and its training on frozen features (``steps``, ``lr``,
        ``bottleneck_dim``, ...); see :class:`transferkit.adaptation.AdaptationConfig`.

    Attributes
    ----------
    classes_ : ndarray
        Class labels seen in ``fit``, sorted (zero-shot: the described labels, sorted).
    modality_ : str
    strategy_ : Strategy
    backbone_ : Backbone or None
        The frozen backbone (``None`` for the baselines).
    model_ : object
        The fitted probe head, trained :class:`~transferkit.training.TransferNetwork`, or baseline;
        it works on label indices ``0 .. n_classes-1``.
    history_ : dict
        Timings: ``fit_seconds``, ``extract_seconds``, ``extract_items_per_second``, ``from_cache``.
    backbone_choice_ : BackboneChoice
        With ``backbone="auto"``: the ranking and the choice.
    strategy_choice_ : StrategyChoice
        With ``strategy="auto"``: the choice and its reasons.
    """

    def __init__(
        self,
        backbone: str | None = None,
        strategy: str | Strategy = "linear-probe",
        *,
        layer: str | None = None,
        image_size: int | None = None,
        C: float = 1.0,
        batch_size: int = 32,
        cache: bool = True,
        cache_dir: str | None = None,
        random_state: int = 0,
        verbose: bool = True,
        epochs: int | None = None,
        lr: float | None = None,
        training: TrainConfig | dict[str, Any] | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        label_descriptions: str | dict[str, Any] | None = None,
        adaptation: str | None = None,
        adaptation_weight: float | None = None,
        adaptation_settings: Any = None,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.layer = layer
        self.image_size = image_size
        self.C = C
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.verbose = verbose
        self.epochs = epochs
        self.lr = lr
        self.training = training
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.label_descriptions = label_descriptions
        self.adaptation = adaptation
        self.adaptation_weight = adaptation_weight
        self.adaptation_settings = adaptation_settings

    # -- checks -----------------------------------------------------------------
    def _check_params(self) -> None:
        check_parameters(self)  # every parameter, whatever the strategy (_estimator_params.PARAMETER_CONSTRAINTS)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This TransferClassifier instance is not fitted yet. Call 'fit' with appropriate arguments first."
            )

    def _make_strategy(self, spec: str | Strategy) -> Strategy:
        if isinstance(spec, Strategy):
            strategy = spec
        else:
            params = {"C": float(self.C)} if spec == "linear-probe" else {}
            strategy = get_strategy(spec, **params)
        if hasattr(strategy, "validate"):
            strategy.validate()
        return strategy

    # -- fitting ----------------------------------------------------------------
    def fit(self, X: Any, y: Any, X_target: Any = None, target_labelled: Any = None) -> TransferClassifier:
        """Fit on labelled examples (and, with ``adaptation``, unlabelled target-domain examples).

        Parameters
        ----------
        X : array of images ``(N, H, W[, C])``, list of image paths, list of strings, or ``(N, D)`` array
        y : array-like of shape (N,)
        X_target : same form as ``X``, optional
            Unlabelled examples of the target domain; required with ``adaptation``.
        target_labelled : (X_few, y_few), optional
            A few labelled target-domain examples (``y_few`` among the classes of ``y``). With
            ``adaptation="auto"``, or a weighted method without ``adaptation_weight``, on frozen
            features, they choose the method and weight instead of reverse validation; they train
            nothing (see :func:`transferkit.adaptation.select_adaptation`).

        Returns
        -------
        self
            Fitted anew: nothing learned by an earlier ``fit`` is kept, and a ``fit`` that raises
            leaves the estimator unfitted.
        """
        reset_fitted(self)
        self._check_params()
        started = time.perf_counter()
        if y is None:
            raise DataError("TransferClassifier requires y to be passed, but the target y is None")
        X = as_array_like(X, allow_empty=self.label_descriptions is not None)
        zero_shot = self.label_descriptions is not None and len(X) == 0
        modality = "text" if zero_shot else infer_modality(X)
        inputs = [] if zero_shot else as_inputs(X)
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(inputs):
            one_image = modality == "tabular" and labels.size == 1  # (H, W) is read as H rows of W features
            raise DataError(
                f"y must be 1-D with one label per example of X; got shape {labels.shape} for {len(inputs)} examples"
                + (f"; X of shape {X.shape} is read as tabular rows, for one image pass X[None]" if one_image else "")
            )
        check_labels(labels)
        target_inputs = self._check_target(X_target, modality)
        if zero_shot:
            classes = np.asarray(sorted(description_labels(self.label_descriptions)))
            encoded = np.zeros(0, dtype=np.int64)
        else:
            classes, encoded = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"y has only one class ({classes.tolist()[0]!r}); a classifier needs at least two")
        self.history_: dict[str, Any] = {}
        backbone_name, strategy_spec = self.backbone, self.strategy
        if "auto" in (backbone_name, strategy_spec):
            from .selection.auto import resolve_auto

            backbone_name, strategy_spec = resolve_auto(self, inputs, labels, modality)
        strategy = self._make_strategy(strategy_spec)
        if self.label_descriptions is not None and (modality != "text" or strategy.name not in _DESCRIBED):
            raise TransferkitError(
                f"label_descriptions work with text data and the strategies {', '.join(_DESCRIBED)}; "
                f"got {modality} data and strategy {strategy.name!r}"
            )
        if zero_shot and strategy.name != "linear-probe":
            raise TransferkitError(f"with no labelled examples only 'linear-probe' can be used, not {strategy.name!r}")
        if target_labelled is not None and (self.adaptation is None or getattr(strategy, "trains", False)):
            raise TransferkitError(
                "target_labelled chooses a domain-adaptation method on frozen features: it needs adaptation= "
                f"and a strategy that trains no network (e.g. 'linear-probe'); got adaptation={self.adaptation!r}, "
                f"strategy {strategy.name!r}"
            )
        with quiet_unless(self.verbose):
            if strategy.uses_backbone:
                name = backbone_name or DEFAULT_BACKBONES.get(modality)
                if name is None:
                    raise DataError(
                        f"no pre-trained backbone reads {modality} data (feature vectors): fit a classifier on "
                        "them with strategy 'classical' (--strategy classical), or name a zoo mlp trained on such "
                        "vectors with backbone='zoo:NAME' (--backbone zoo:NAME)"
                    )
                backbone = create_backbone(name)
                if backbone.cfg.modality != modality:
                    raise DataError(
                        f"backbone {name!r} reads {backbone.cfg.modality} but X holds {modality} data; "
                        f"choose {'an' if modality[0] in 'aeiou' else 'a'} {modality} backbone (see `transferkit list`)"
                    )
                self.backbone_ = backbone
                prototypes = None  # (K, D) embedded label descriptions
                if self.label_descriptions is not None:
                    from .strategies.label_prior import embed_descriptions, read_label_descriptions

                    descriptions = read_label_descriptions(self.label_descriptions, list(classes))
                    prototypes = embed_descriptions(backbone, descriptions, list(classes))
                if self.adaptation is not None and not getattr(strategy, "trains", False):
                    model = self._adapt_features(inputs, encoded, target_inputs, classes, target_labelled)
                elif getattr(strategy, "trains", False):
                    model = self._train(strategy, inputs, encoded, len(classes), modality, prototypes, target_inputs)
                elif prototypes is not None:
                    from .strategies.label_prior import DescriptionPriorHead

                    features = self._features(inputs, "extracting train") if len(inputs) else np.zeros((0, 1))
                    model = DescriptionPriorHead().fit(features, encoded, prototypes)
                else:
                    features = self._features(inputs, "extracting train")
                    model = ProbeHead(C=strategy.C, max_iter=strategy.max_iter).fit(features, encoded)
            else:
                from .strategies.baselines import baseline_for

                if self.adaptation is not None:
                    raise TransferkitError(
                        f"adaptation={self.adaptation!r} needs a backbone; the target-only baseline "
                        f"{strategy.name!r} has none"
                    )
                self.backbone_ = None
                model = baseline_for(modality, strategy.name, random_state=self.random_state, verbose=self.verbose)
                if getattr(strategy, "steps", None) is not None:
                    model.set_params(steps=strategy.steps)
                model.fit(self._baseline_inputs(inputs, modality), encoded)
        self.classes_ = classes
        self.modality_ = modality
        self.strategy_ = strategy
        self.model_ = model
        self.history_["fit_seconds"] = time.perf_counter() - started
        return self

    def _train_config(self, strategy: Strategy, modality: str) -> TrainConfig:
        """The strategy's defaults, then the backbone's fine-tuning preferences, then the user's settings."""
        from .backbones import fine_tuning_defaults

        config = TrainConfig(seed=int(self.random_state)).replace(**strategy.train_defaults(modality))
        preferred, _ = fine_tuning_defaults(self.backbone_.cfg)  # the rate factor is the strategy's to apply
        config = config.replace(**preferred)
        stored = getattr(self.backbone_.cfg, "fine_tuning", None)
        if stored:
            self.history_["backbone_fine_tuning"] = dict(stored)
        config = config.replace(**training_overrides(self.training))
        return config.replace(epochs=self.epochs, lr=self.lr).validate()

    def _train(
        self,
        strategy: Strategy,
        inputs: np.ndarray | list[str],
        encoded: np.ndarray,
        n_classes: int,
        modality: str,
        prototypes: np.ndarray | None = None,
        target_inputs: Any = None,
    ) -> TransferNetwork:
        config = self._train_config(strategy, modality)
        if self.resume and self.checkpoint_dir is None:
            raise TransferkitError("resume=True needs checkpoint_dir, the folder holding the run's checkpoints")
        network = TransferNetwork(self.backbone_, n_classes)
        adaptation, weight = None, 1.0
        if self.adaptation is not None:
            from .adaptation import DEEP_METHODS, make_adaptation_loss

            if self.adaptation not in DEEP_METHODS:
                raise TransferkitError(
                    f"adaptation={self.adaptation!r} works on frozen features (strategy='linear-probe'); "
                    f"fine-tuning {strategy.name!r} takes one of {', '.join(DEEP_METHODS)}"
                )
            adaptation = make_adaptation_loss(self.adaptation, self.backbone_.cfg.feature_dim, n_classes)
            weight = 1.0 if self.adaptation_weight is None else float(self.adaptation_weight)
            self.history_["adaptation"] = {"method": self.adaptation, "weight": weight, "path": "network"}
        result = train_network(
            network,
            strategy,
            inputs,
            encoded,
            config=config,
            preprocess=self.backbone_.preprocessor(self.image_size),
            modality=modality,
            context_features=lambda indices: self._features(take(inputs, indices), "extracting train"),
            checkpoint_dir=self.checkpoint_dir,
            resume=bool(self.resume),
            prototypes=prototypes,
            target_inputs=target_inputs,
            adaptation=adaptation,
            adaptation_weight=weight,
            fingerprint_extra={
                "adaptation": [self.adaptation, weight],
                "target": None if target_inputs is None else _content_hash(target_inputs, modality),
                "backbone": self.backbone_.cfg.name,
                "sha256": self.backbone_.cfg.sha256,
                "image_size": self.image_size,
                "descriptions": None if prototypes is None else content_hash(np.asarray(prototypes, dtype=np.float32)),
                "inputs": _content_hash(inputs, modality),
            },
            desc="training",
        )
        self.history_.update(
            training=config.to_dict(),
            epochs=result.history,
            train_seconds=result.seconds,
            resumed_from=result.resumed_from,
            best_epoch=result.best_epoch,
            stopped_early=result.stopped_early,
        )
        return network

    def _check_target(self, X_target: Any, modality: str) -> Any:
        """``X_target`` as inputs, checked against ``adaptation`` and the modality of ``X``."""
        if self.adaptation is None:
            if X_target is not None:
                raise TransferkitError(
                    "X_target is only used for domain adaptation; set adaptation= (e.g. 'dann') or leave it out"
                )
            return None
        if X_target is None or len(X_target) == 0:
            raise DataError(
                f"adaptation={self.adaptation!r} needs unlabelled target examples: call fit(X, y, X_target=...)"
            )
        target_modality = infer_modality(X_target)
        if target_modality != modality:
            raise DataError(f"X holds {modality} data but X_target holds {target_modality} data; expected the same")
        return as_inputs(X_target, "X_target")

    def _adapt_features(
        self, inputs: Any, encoded: np.ndarray, target_inputs: Any, classes: np.ndarray, target_labelled: Any
    ) -> Any:
        """Adapt on frozen features: choose the method / weight (without target labels, or with the few given),
        then fit on all of X."""
        from .adaptation.run import DEFAULT_WEIGHTS, METHODS, WEIGHTED_METHODS, fit_method, select_adaptation

        settings = adaptation_config(self.adaptation_settings)
        method, weight, selection = self.adaptation, self.adaptation_weight, None
        chooses = method == "auto" or (method in WEIGHTED_METHODS and weight is None)
        if target_labelled is not None and not chooses:
            raise TransferkitError(
                f"target_labelled only chooses the method and weight; adaptation={method!r} with "
                f"adaptation_weight={weight!r} leaves nothing to choose (use 'auto', or leave the weight None)"
            )
        few = None if target_labelled is None else self._labelled_target(target_labelled, classes)  # checked first
        source = self._features(inputs, "extracting source")
        target = self._features(target_inputs, "extracting target")
        if few is not None:
            few = (self._features(few[0], "extracting labelled target"), few[1])
        common = {"settings": settings, "random_state": int(self.random_state)}
        if chooses:
            methods = list(METHODS) if method == "auto" else [method]
            weights = DEFAULT_WEIGHTS if weight is None else (float(weight),)
            chosen = select_adaptation(methods, source, encoded, target, weights=weights, target_labelled=few, **common)
            method, weight, selection = chosen.best.method, chosen.best.weight, chosen.to_dict()
        # labelled target examples hold no source out: their choice is fitted on all of it already
        model = (
            chosen.best.model
            if few is not None
            else fit_method(method, source, encoded, target, weight=weight, **common)
        )
        self.history_["adaptation"] = {"method": method, "weight": weight, "path": "features", "selection": selection}
        return model

    def _labelled_target(self, target_labelled: Any, classes: np.ndarray) -> tuple[Any, np.ndarray]:
        """Inputs and label indices of ``target_labelled = (X_few, y_few)``, checked before any extraction."""
        if not isinstance(target_labelled, (tuple, list)) or len(target_labelled) != 2:
            raise DataError(f"target_labelled must be a pair (X_few, y_few); got {type(target_labelled).__name__}")
        few_inputs, few_labels = as_inputs(target_labelled[0], "target_labelled X"), np.asarray(target_labelled[1])
        if few_labels.ndim != 1 or len(few_labels) != len(few_inputs) or len(few_labels) == 0:
            raise DataError(
                f"target_labelled has {len(few_inputs)} examples and labels of shape {few_labels.shape}; "
                "expected one label per example, at least one"
            )
        unknown = sorted({str(v) for v in few_labels} - {str(c) for c in classes})
        if unknown:
            raise DataError(f"target_labelled has labels not in y: {unknown}; expected among {classes.tolist()}")
        if (few_modality := infer_modality(few_inputs)) != self.backbone_.cfg.modality:
            raise DataError(f"target_labelled holds {few_modality} data; X holds {self.backbone_.cfg.modality} data")
        index = {str(c): i for i, c in enumerate(classes)}
        return few_inputs, np.asarray([index[str(v)] for v in few_labels], dtype=np.int64)

    def _features(self, inputs: np.ndarray | list[str], desc: str) -> np.ndarray:
        result = extract_features(
            self.backbone_,
            inputs,
            layer=self.layer,
            image_size=self.image_size,
            batch_size=int(self.batch_size),
            cache=self.cache,
            cache_dir=self.cache_dir,
            desc=desc,
        )
        self.history_.update(
            extract_seconds=result.seconds,
            extract_items_per_second=result.items_per_second,
            from_cache=result.from_cache,
        )
        return result.features

    def _baseline_inputs(self, inputs: np.ndarray | list[str], modality: str) -> Any:
        """Image files become one array for the baselines: at their own size when all share one
        no larger than 64 px, else resized to 64 px; the size chosen in ``fit`` is kept for predicting."""
        if modality != "image" or isinstance(inputs, np.ndarray):
            return inputs
        if "baseline_image_size" not in self.history_:
            sizes = set()
            for path in inputs:
                try:
                    with Image.open(path) as image:
                        sizes.add(image.size)
                except OSError as error:
                    raise DataError(f"cannot read image {path!r}: {error}") from error
            width, height = next(iter(sizes))
            uniform = len(sizes) == 1 and width == height and width <= BASELINE_IMAGE_SIZE
            self.history_["baseline_image_size"] = width if uniform else BASELINE_IMAGE_SIZE
        size = self.history_["baseline_image_size"]
        return np.stack([load_image(path, size) for path in inputs])  # (N, S, S, 3)

    # -- prediction -------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``, shape ``(N, n_classes)``."""
        self._check_fitted()
        X = as_array_like(X)
        modality = infer_modality(X)
        if modality != self.modality_:
            raise DataError(f"this model was fitted on {self.modality_} data but X holds {modality} data")
        inputs = as_inputs(X)
        with quiet_unless(self.verbose):
            if isinstance(self.model_, torch.nn.Module):
                logits = predict_logits(self.model_, inputs, self.preprocessor(), int(self.batch_size))
                return torch.softmax(logits, dim=1).numpy().astype(np.float64)
            if self.backbone_ is not None:
                return self.model_.predict_proba(self._features(inputs, "extracting"))
            return self.model_.predict_proba(self._baseline_inputs(inputs, modality))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels, shape ``(N,)``."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    # -- the network ------------------------------------------------------------
    def preprocessor(self) -> Any:
        """The backbone's preprocessor as fitted (image size included): raw batch → network input."""
        self._check_fitted()
        if self.backbone_ is None:
            raise TransferkitError("a target-only baseline has no backbone preprocessor")
        return self.backbone_.preprocessor(self.image_size)

    def network(self) -> TransferNetwork | None:
        """The fitted model as one ``torch`` module, preprocessed input → logits ``(B, K)``.

        For a linear probe, the backbone with the probe's weights as its head (a binary probe's
        single logit ``s`` becomes ``(-s/2, s/2)``, which gives the same probabilities); for a
        fine-tuned model, the trained network; for adaptation on frozen features, the backbone
        under the adapted model (:mod:`transferkit.adaptation.networks`); ``None`` for a
        target-only baseline. A head on an inner ``layer``'s features has no such network and raises
        :class:`~transferkit.errors.TransferkitError`.
        """
        self._check_fitted()
        if isinstance(self.model_, torch.nn.Module):
            return self.model_.eval()
        if self.backbone_ is None:
            return None
        if self.layer is not None and self.layer != self.backbone_.feature_layers()[-1]:
            # the network computes the pooled embedding; a head fitted on another layer would read other features
            # (silently on a text backbone, whose layers all have the embedding's width)
            raise TransferkitError(
                f"this model reads the features of layer {self.layer!r} of {self.backbone_.cfg.name!r}, but its "
                f"network would compute the pooled embedding ({self.backbone_.feature_layers()[-1]!r}); only models "
                "fitted on it become one network: fit again without --layer (layer=None)"
            )
        from .adaptation.networks import feature_model_network

        adapted = feature_model_network(self.backbone_, self.model_)  # a bottleneck or mSDA over the features
        if adapted is not None:
            return adapted.eval()
        coef, intercept = self.model_.coef_, self.model_.intercept_  # (K or 1, D), (K or 1,)
        if not isinstance(self.model_, ProbeHead):  # the description-prior head: cos(x, p) is linear when |x| = 1
            if not self.backbone_.cfg.normalize:
                raise TransferkitError(
                    f"a {type(self.model_).__name__} on a backbone without L2-normalised features is not linear; "
                    "it cannot be turned into one network"
                )
            coef = coef + self.model_.alpha_ * self.model_.scale * self.model_.prototypes_  # (K, D)
        if coef.shape[0] == 1:
            coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        network = TransferNetwork(self.backbone_, coef.shape[0])
        network.set_head(torch.as_tensor(coef, dtype=torch.float32), torch.as_tensor(intercept, dtype=torch.float32))
        return network.eval()

    # -- persistence ------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory`` (no pickle).

        Both files are written to temporary names before either replaces an earlier save, so a
        failure part-way loses nothing; the backbone is referenced by name and sha256, not copied.
        """
        from ._persistence import save_estimator

        return save_estimator(self, directory)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TransferClassifier:
        """Rebuild a classifier written by :meth:`save`.

        Raises
        ------
        TransferkitError
            When the folder is not a saved transferkit model or its backbone's weights changed.
        """
        from ._persistence import load_estimator

        return load_estimator(cls, directory)


def _content_hash(inputs: Any, modality: str) -> str:
    """What identifies the inputs of a run: image files by their size and time as well as their paths."""
    return content_hash(inputs, path_inputs=modality == "image" and not isinstance(inputs, np.ndarray))
