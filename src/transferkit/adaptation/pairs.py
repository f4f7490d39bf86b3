"""Two data sets as a domain-adaptation pair: labelled source, unlabelled target, features of both.

The source lends all its labelled examples; the target's training part is the unlabelled
data the methods adapt to, and its test part (with labels) is used only to score them. Both
must have the same label set; images of different resolutions are brought to the smaller one.
A target without labels (a folder of images, a ``.txt`` of texts, ...) is adapted to as a
whole, and nothing is scored: see :func:`transferkit.data.load_unlabelled`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data._dataset import concat_inputs
from ..errors import DataError
from .compare import check_same_labels, match_resolution, tfidf_features

__all__ = ["DomainPair", "load_pair", "TFIDF"]

TFIDF = "tfidf"  # the representation name that means TF-IDF features instead of a backbone


@dataclass
class DomainPair:
    """Features of a source and a target domain.

    Attributes
    ----------
    source, target : ndarray, shape (N, D)
        Labelled source, unlabelled target (a labelled target's training part).
    test : ndarray, shape (N, D) or None
        A labelled target's test part; ``None`` when the target has no labels.
    source_labels : ndarray of int
    target_labels, test_labels : ndarray of int or None
        Serve the oracle and the scoring only; ``None`` when the target has no labels.
    classes : list of str
    representation : str
        Backbone name or ``"tfidf"``.
    notes : list of str
        What was done to make the pair comparable (resizing).
    extract_seconds : float
    labelled, labelled_labels : ndarray or None
        Features and label indices of a few labelled target examples given apart (``labelled_name``).
    source_inputs, target_inputs : ndarray or list of str
        The inputs the features came from (images after resizing), to fit a model on them.
    """

    source: np.ndarray
    source_labels: np.ndarray
    target: np.ndarray
    target_labels: np.ndarray | None
    test: np.ndarray | None
    test_labels: np.ndarray | None
    classes: list[str]
    representation: str
    notes: list[str] = field(default_factory=list)
    extract_seconds: float = 0.0
    labelled: np.ndarray | None = None
    labelled_labels: np.ndarray | None = None
    source_inputs: Any = None
    target_inputs: Any = None


def load_pair(
    source_name: str,
    target_name: str,
    *,
    backbone: str | None = None,
    image_size: int | None = None,
    cache: bool = True,
    load_options: dict[str, Any] | None = None,
    labelled_name: str | None = None,
) -> DomainPair:
    """Load two data sets (built-in names or paths) and extract the features of both.

    Parameters
    ----------
    source_name : str
        Labelled data: anything :func:`transferkit.data.load_dataset` accepts.
    target_name : str
        The same, or data without labels: anything :func:`transferkit.data.load_unlabelled`
        accepts (decided by :func:`transferkit.data.has_labels`).
    backbone : str, optional
        Backbone name, or ``"tfidf"`` for text; default by modality. Tabular data (feature
        vectors, e.g. an ``.npz`` of ``X`` and ``y``) are adapted as they are.
    image_size : int, optional
        Resize images to this for the backbone.
    cache : bool
        Use the feature cache.
    load_options : dict, optional
        Passed to ``load_dataset`` (``text_column``, ``label_column``, ...).
    labelled_name : str, optional
        A few labelled examples of the target domain (anything ``load_dataset`` accepts; all of
        it is used, its classes among the source's), to choose the method with.

    Returns
    -------
    DomainPair
    """
    from ..backbones import DEFAULT_BACKBONES, create_backbone
    from ..data import has_labels, load_dataset, load_unlabelled
    from ..features import extract_features

    options = load_options or {}
    csv_given = [name for name in (source_name, target_name, labelled_name) if _is_csv(name)]
    source_split = load_dataset(source_name, **_options_for(source_name, options, csv_given))
    target_options = _options_for(target_name, options, csv_given)
    labelled = has_labels(target_name, label_column=target_options.get("label_column"))
    if labelled:
        target_split = load_dataset(target_name, **target_options)
        target_modality = target_split.train.modality
        target_inputs, test_inputs = target_split.train.inputs, target_split.test.inputs
        target_labels, test_labels = target_split.train.labels, target_split.test.labels
    else:
        if (column := target_options.get("label_column")) is not None:  # a CSV target: was it meant to have labels?
            raise DataError(
                f"--label-column {column!r} is not a column of target {target_name!r}; it names the label column of "
                "the source and target CSVs alike (to adapt to this CSV without labels, name the source's 'label' "
                "and leave out --label-column)"
            )
        unlabelled = load_unlabelled(target_name, text_column=target_options.get("text_column"))
        target_modality, target_inputs = unlabelled.modality, unlabelled.inputs
        test_inputs = target_labels = test_labels = None
    if source_split.train.modality != target_modality:
        raise DataError(
            f"source {source_name!r} holds {source_split.train.modality} data but target {target_name!r} "
            f"holds {target_modality} data; a pair needs one modality"
        )
    if labelled:
        try:
            check_same_labels(source_split.train.classes, target_split.train.classes)
        except DataError as error:
            if os.path.isdir(target_name):  # sub-folders by date or camera read as classes, which they are not
                raise DataError(
                    f"{error}; the target folder's sub-folders are read as its classes: to adapt to its images "
                    "without labels, put them in one folder without sub-folders"
                ) from None
            raise
    modality = source_split.train.modality
    source_inputs = concat_inputs(source_split.train.inputs, source_split.test.inputs)
    source_labels = np.concatenate([source_split.train.labels, source_split.test.labels])
    few_inputs, few_labels = (None, None)
    if labelled_name is not None:
        few_options = _options_for(labelled_name, options, csv_given)
        few_inputs, few_labels = _labelled_examples(labelled_name, source_split.train.classes, modality, few_options)
        if test_inputs is not None:
            _check_apart_from_test(labelled_name, few_inputs, test_inputs, modality)
    notes = []
    if modality == "image":  # files are read at the backbone's size, each as it is; arrays are matched here
        parts = {"source": source_inputs, "target": target_inputs, "test": test_inputs, "labelled": few_inputs}
        arrays = {part: x for part, x in parts.items() if isinstance(x, np.ndarray)}
        # all together, the labelled examples too: a set left at another resolution than the domains would
        # score the candidates on images unlike those they adapted to
        matched = dict(zip(arrays, match_resolution(*arrays.values())))
        source_inputs, target_inputs = matched.get("source", source_inputs), matched.get("target", target_inputs)
        test_inputs, few_inputs = matched.get("test", test_inputs), matched.get("labelled", few_inputs)
        domains = [part for part in ("source", "target") if part in arrays]
        resized = [part for part in domains if matched[part] is not arrays[part]]
        if len(domains) == 2 and resized:
            size = "x".join(map(str, np.shape(source_inputs)[1:3]))
            smallest = len(resized) == 2 and "labelled" in arrays and matched["labelled"] is arrays["labelled"]
            why = "that of the labelled target examples, smaller than both" if smallest else "the smaller resolution"
            notes.append(f"both domains brought to {size} px ({why}) before the backbone")
    started = time.perf_counter()
    name = backbone or DEFAULT_BACKBONES.get(modality)
    parts = {"source": source_inputs, "target": target_inputs, "target test": test_inputs, "labelled": few_inputs}
    present = {part: inputs for part, inputs in parts.items() if inputs is not None}
    if modality == "tabular":  # features already: adapt them as they are
        if backbone is not None:
            raise DataError(f"{source_name!r} holds feature vectors; leave out the backbone ({backbone!r})")
        name = "input"  # printed as "on input features"
        features = {part: np.asarray(inputs, dtype=np.float32) for part, inputs in present.items()}
        for part, rows in features.items():
            if rows.shape[1] != features["source"].shape[1]:
                raise DataError(
                    f"source features have {features['source'].shape[1]} columns but {part} features {rows.shape[1]}"
                )
    elif name == TFIDF:
        if modality != "text":
            raise DataError(f"'tfidf' features need text data; {source_name!r} holds {modality} data")
        matrices = tfidf_features([*source_inputs, *target_inputs], *present.values())
        features = dict(zip(present, matrices))
    else:
        if name is None:
            raise DataError(f"no default backbone for {modality} data; name one with --backbone")
        model = create_backbone(name)
        if model.cfg.modality != modality:
            raise DataError(f"backbone {name!r} reads {model.cfg.modality} but the data are {modality}")
        features = {}
        for part, inputs in present.items():
            extracted = extract_features(model, inputs, image_size=image_size, cache=cache, desc=f"extracting {part}")
            features[part] = extracted.features
    return DomainPair(
        source=features["source"],
        source_labels=source_labels,
        target=features["target"],
        target_labels=target_labels,
        test=features.get("target test"),
        test_labels=test_labels,
        classes=list(source_split.train.classes),
        representation=name,
        notes=notes,
        extract_seconds=time.perf_counter() - started,
        labelled=features.get("labelled"),
        labelled_labels=few_labels,
        source_inputs=source_inputs,
        target_inputs=target_inputs,
    )


def _is_csv(name: str | None) -> bool:
    return name is not None and str(name).lower().endswith((".csv", ".tsv"))


def _options_for(name: str, options: dict[str, Any], csv_given: list[str]) -> dict[str, Any]:
    """``options`` without the CSV columns unless ``name`` is a CSV: they name the columns of the CSVs among the
    data, so a source CSV's text column sits beside a ``.txt`` or built-in target (as in ``similarity``)."""
    if name in csv_given or not csv_given:  # no CSV at all: load_dataset names the option that applies to none
        return options
    return {key: value for key, value in options.items() if key not in ("text_column", "label_column")}


def _labelled_examples(name: str, classes: list[str], modality: str, options: dict[str, Any]) -> tuple[Any, np.ndarray]:
    """All inputs of the labelled data set ``name`` and their labels as indices into the source's ``classes``."""
    from ..data import read_examples

    examples = read_examples(name, **options)  # a handful: no split, one class will do
    if examples.modality != modality:
        raise DataError(f"labelled target examples {name!r} hold {examples.modality} data; the pair's are {modality}")
    unknown = sorted(set(examples.classes) - set(classes))
    if unknown:
        raise DataError(
            f"labelled target examples {name!r} have classes the source lacks: {unknown}; expected among {classes}"
        )
    index = np.asarray([classes.index(c) for c in examples.classes])  # its label index -> the source's
    return examples.inputs, index[examples.labels]


def _check_apart_from_test(name: str, few_inputs: Any, test_inputs: Any, modality: str) -> None:
    """Refuse labelled target examples that are also in the target's test part: the choice would read the labels
    that then score it, and its accuracy would be overstated without a word."""

    def keys(inputs: Any) -> list[Any]:
        if isinstance(inputs, np.ndarray):
            return [row.tobytes() for row in np.ascontiguousarray(inputs)]
        return [os.path.realpath(x) if modality == "image" else x for x in inputs]  # image files, or texts

    test = set(keys(test_inputs))
    shared = [i for i, key in enumerate(keys(few_inputs)) if key in test]
    if shared:
        first = shared[0]
        example = f"row {first}" if isinstance(few_inputs, np.ndarray) else repr(str(few_inputs[first])[:80])
        raise DataError(
            f"{len(shared)} of the {len(few_inputs)} labelled target examples {name!r} are also in the target's test "
            f"part (e.g. {example}), whose labels only score the methods; give examples apart from it, "
            "or draw them from the target's training part with --target-labels-per-class K"
        )
