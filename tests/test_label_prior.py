"""Label descriptions: reading them, the zero-shot classifier and the prior head."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from transferkit.errors import DataError, NotFittedError, TransferkitError
from transferkit.strategies.label_prior import DescriptionPriorHead, embed_descriptions, read_label_descriptions

CLASSES = ["negative", "positive"]
SENTIMENT_JSON = Path(__file__).resolve().parents[1] / "benchmarks" / "descriptions" / "sentiment.json"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "descriptions.json"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ reading descriptions
def test_reads_file_and_dict_in_class_order(tmp_path):
    path = _write(tmp_path, json.dumps({"positive": "Good.", "negative": ["Bad.", " Awful. "]}))
    assert read_label_descriptions(path, CLASSES) == {"negative": ["Bad.", "Awful."], "positive": ["Good."]}
    assert list(read_label_descriptions(str(path), CLASSES)) == CLASSES
    # labels in the file are strings, matched to non-string classes by str(c)
    assert read_label_descriptions({"0": "zero", "1": ["one"]}, [0, 1]) == {0: ["zero"], 1: ["one"]}


def test_shipped_sentiment_descriptions_match_the_builtin_classes():
    descriptions = read_label_descriptions(SENTIMENT_JSON, CLASSES)
    assert [len(v) for v in descriptions.values()] == [3, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"negative": ["Bad."], "positive": ', "not valid JSON"),
        ('["Bad.", "Good."]', "is a list"),
        ('{"negative": ["Bad."]}', "no description for class(es) 'positive'"),
        ('{"negative": "Bad.", "positive": "Good.", "neutral": "Meh."}', "'neutral' is not a class"),
        ('{"negative": [], "positive": "Good."}', "non-empty list"),
        ('{"negative": ["Bad.", 3], "positive": "Good."}', "contains 3"),
        ('{"negative": ["  "], "positive": "Good."}', "non-empty strings"),
        ('{"negative": null, "positive": "Good."}', "is None"),
    ],
)
def test_bad_description_files_raise_clear_errors(tmp_path, content, message):
    with pytest.raises(DataError) as info:
        read_label_descriptions(_write(tmp_path, content), CLASSES)
    assert message in str(info.value)


def test_unknown_label_error_lists_the_classes():
    with pytest.raises(DataError, match=r"the classes are 'negative', 'positive'"):
        read_label_descriptions({"negative": "a", "positive": "b", "Positive": "c"}, CLASSES)


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="nope.json' not found"):
        read_label_descriptions(missing, CLASSES)


# --------------------------------------------------------------------------------------------- synthetic heads
def _blobs(seed: int, k: int = 3, d: int = 32, per_class: int = 4, n_test: int = 300, noise: float = 1.2):
    """Unit-norm features around random class directions; the directions are the true prototypes."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True)  # (K, D)

    def draw(labels):
        x = means[labels] + noise * rng.normal(size=(len(labels), d)) / np.sqrt(d)
        return x / np.linalg.norm(x, axis=1, keepdims=True)  # (N, D)

    train_labels = np.repeat(np.arange(k), per_class)
    test_labels = rng.integers(0, k, n_test)
    return draw(train_labels), train_labels, draw(test_labels), test_labels, means


@pytest.mark.parametrize("k", [2, 3])
def test_zero_shot_recovers_labels_from_known_prototypes(k):
    _, _, x_test, y_test, means = _blobs(0, k=k, noise=0.8)
    head = DescriptionPriorHead().fit(np.zeros((0, means.shape[1])), np.zeros(0, dtype=int), means)
    assert head.config()["C"] is None and head.alpha_ == 1.0
    assert (head.predict(x_test) == y_test).mean() > 0.95
    proba = head.predict_proba(x_test)
    assert proba.shape == (len(y_test), k) and np.allclose(proba.sum(axis=1), 1.0)
    # with the prototypes in another order the zero-shot classifier follows them
    assert (head.fit(np.zeros((0, means.shape[1])), [], means[::-1]).predict(x_test) == y_test).mean() < 0.6


@pytest.mark.parametrize("k", [2, 3])
def test_prior_weight_is_used_when_informative_and_dropped_when_misleading(k):
    informative, misleading, gains = [], [], []
    for seed in range(3):
        x, y, x_test, y_test, means = _blobs(seed, k=k, noise=2.0)
        good = DescriptionPriorHead().fit(x, y, means)
        bad = DescriptionPriorHead().fit(x, y, np.roll(means, 1, axis=0))  # every class described as another
        plain = DescriptionPriorHead(alpha_grid=[0.0]).fit(x, y, means)
        informative.append(good.alpha_)
        misleading.append(bad.alpha_)
        gains.append((good.predict(x_test) == y_test).mean() - (plain.predict(x_test) == y_test).mean())
        if bad.alpha_ == 0:  # the misleading prior switched off: a plain logistic regression
            assert np.array_equal(bad.predict(x_test), plain.predict(x_test))
    assert min(informative) > 0 and sum(gains) > 0.05, (informative, gains)
    assert max(misleading) <= 0.1, misleading


def test_save_arrays_round_trip_gives_identical_predictions(tmp_path):
    x, y, x_test, _, means = _blobs(1)
    for head in (DescriptionPriorHead().fit(x, y, means), DescriptionPriorHead().fit(x[:0], y[:0], means)):
        path = tmp_path / "head.safetensors"
        save_file(head.save_arrays(), str(path))
        config = json.loads(json.dumps(head.config()))
        restored = DescriptionPriorHead.from_arrays(load_file(str(path)), config)
        assert np.array_equal(restored.decision_function(x_test), head.decision_function(x_test))
        assert np.array_equal(restored.predict_proba(x_test), head.predict_proba(x_test))
        assert restored.config() == config


def test_selection_is_leave_one_out_on_the_labelled_examples_only():
    assert list(inspect.signature(DescriptionPriorHead.fit).parameters) == ["self", "features", "labels", "prototypes"]
    x, y, _, _, means = _blobs(2, k=2, per_class=3)
    head = DescriptionPriorHead(C_grid=[1.0], alpha_grid=[0.5]).fit(x, y, means)
    assert head.cv_ == "leave-one-out"
    losses = []
    for i in range(len(y)):  # refit on the other labelled examples; score the one left out
        keep = np.arange(len(y)) != i
        fold = DescriptionPriorHead(C_grid=[1.0], alpha_grid=[0.5]).fit(x[keep], y[keep], means)
        losses.append(-np.log(fold.predict_proba(x[i : i + 1])[0, y[i]]))
    assert head.cv_scores_[0, 0] == pytest.approx(np.mean(losses), rel=1e-3)


def test_k_fold_above_loo_max_and_fast_enough():
    x, y, x_test, y_test, means = _blobs(3, k=2, per_class=12)
    head = DescriptionPriorHead(loo_max=10).fit(x, y, means)
    assert head.cv_ == "10-fold" and np.isfinite(head.cv_scores_).all()
    assert (head.predict(x_test) == y_test).mean() > 0.8


def test_bad_inputs_raise():
    x, y, _, _, means = _blobs(0, k=2)
    with pytest.raises(DataError, match="class indices 0..1"):
        DescriptionPriorHead().fit(x, y + 1, means)
    with pytest.raises(TransferkitError, match="do not match prototypes"):
        DescriptionPriorHead().fit(x[:, :5], y, means)
    with pytest.raises(TransferkitError, match="C_grid"):
        DescriptionPriorHead(C_grid=[0.0])
    with pytest.raises(TransferkitError, match="alpha_grid"):
        DescriptionPriorHead(alpha_grid=[-1.0])
    with pytest.raises(NotFittedError):
        DescriptionPriorHead().predict(x)


# ------------------------------------------------------------------------------------------------ real MiniLM
@pytest.mark.slow
def test_minilm_zero_shot_on_obvious_sentences(backbone_factory):
    backbone = backbone_factory("minilm_l6.sentence")
    descriptions = read_label_descriptions(SENTIMENT_JSON, CLASSES)
    prototypes = embed_descriptions(backbone, descriptions, CLASSES)  # (2, 384)
    assert prototypes.shape == (2, 384) and np.allclose(np.linalg.norm(prototypes, axis=1), 1.0, atol=1e-5)
    sentences = [
        "The food was delicious and the staff were wonderful.",
        "Best pizza in town, we will definitely be back!",
        "Absolutely loved this place.",
        "The service was slow and the food was cold.",
        "Worst meal I have ever had, never again.",
        "Rude waiter and a dirty table.",
    ]
    from transferkit.features import extract_features

    features = extract_features(backbone, sentences, cache=False).features  # (6, 384)
    head = DescriptionPriorHead().fit(features[:0], np.zeros(0, dtype=int), prototypes)
    assert head.predict(features).tolist() == [1, 1, 1, 0, 0, 0]
