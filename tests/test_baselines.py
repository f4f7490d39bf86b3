"""The target-only baselines: learning, determinism, errors and the no-pickle round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from transferkit.errors import NotFittedError, TransferkitError, UnknownNameError
from transferkit.strategies._torch_baselines import tokenize
from transferkit.strategies.baselines import (
    BagOfEmbeddingsClassifier,
    PixelLogisticRegression,
    SmallCNNClassifier,
    StandardizedLogisticRegression,
    TabularMLPClassifier,
    TfidfLogisticRegression,
    baseline_for,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The toy networks are tiny: one thread avoids OpenMP spin-waiting on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- toy data


def _toy_images(n_per_class: int, seed: int, channels: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """16×16 uint8 images; the class is the row band (top/middle/bottom) of a bright square.

    The square is horizontally jittered, so horizontal flips and ±3 px shifts keep the classes apart.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, top in enumerate((0, 6, 12)):
        for _ in range(n_per_class):
            image = rng.integers(0, 60, size=(16, 16)).astype(np.uint8)
            left = 6 + int(rng.integers(-2, 3))
            image[top : top + 4, left : left + 4] = 255
            images.append(image)
            labels.append(label)
    x = np.stack(images)  # (N, 16, 16)
    if channels:
        x = np.repeat(x[..., None], channels, axis=-1)  # (N, 16, 16, C)
    return x, np.array(labels)


_POS = ["great", "lovely", "delicious", "friendly", "amazing", "perfect", "tasty", "excellent"]
_NEG = ["awful", "rude", "cold", "terrible", "bland", "dirty", "slow", "horrible"]
_FILLER = ["the", "food", "was", "and", "service", "place", "staff", "really", "very", "!", "."]


def _toy_texts(n_per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in enumerate((_NEG, _POS)):
        for _ in range(n_per_class):
            chosen = list(rng.choice(words, size=2)) + list(rng.choice(_FILLER, size=4))
            rng.shuffle(chosen)
            texts.append(" ".join(chosen).capitalize())
            labels.append(label)
    return texts, np.array(labels)


def _toy_table(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0, 0.0, 0.0, 100.0], [0.0, 3.0, 0.0, 0.0, 100.0], [0.0, 0.0, 3.0, 0.0, 100.0]])
    x = np.concatenate([c + rng.normal(size=(n_per_class, 5)) for c in centres])
    return x, np.repeat(np.arange(3), n_per_class)


def _images(n: int, seed: int):
    return _toy_images(n, seed)


def _texts(n: int, seed: int):
    return _toy_texts(n, seed)


def _table(n: int, seed: int):
    return _toy_table(n, seed)


# name -> (factory of a fast estimator, toy data maker)
CASES = {
    "cnn": (lambda **kw: SmallCNNClassifier(steps=60, verbose=False, **kw), _images),
    "boe": (lambda **kw: BagOfEmbeddingsClassifier(steps=60, verbose=False, **kw), _texts),
    "mlp": (lambda **kw: TabularMLPClassifier(steps=60, verbose=False, **kw), _table),
    "pixel_lr": (lambda **kw: PixelLogisticRegression(**kw), _images),
    "tfidf_lr": (lambda **kw: TfidfLogisticRegression(**kw), _texts),
    "std_lr": (lambda **kw: StandardizedLogisticRegression(**kw), _table),
}

_FITTED: dict = {}


def _fitted(name: str):
    """Fit each case once (on 12 examples per class) and share it between tests."""
    if name not in _FITTED:
        make, data = CASES[name]
        x, y = data(12, seed=0)
        _FITTED[name] = make(random_state=0).fit(x, y)
    return _FITTED[name]


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name", list(CASES))
def test_learns_toy_problem(name):
    model = _fitted(name)
    x_test, y_test = CASES[name][1](20, seed=1)
    chance = 1.0 / len(model.classes_)
    assert model.score(x_test, y_test) >= max(0.85, chance + 0.3)


@pytest.mark.parametrize("name", list(CASES))
def test_predict_proba_rows_sum_to_one(name):
    model = _fitted(name)
    x_test, _ = CASES[name][1](5, seed=2)
    proba = model.predict_proba(x_test)
    assert proba.shape == (len(x_test), len(model.classes_))
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(model.predict(x_test), model.classes_[proba.argmax(axis=1)])


@pytest.mark.parametrize("name", list(CASES))
def test_not_fitted(name):
    model = CASES[name][0]()
    x, _ = CASES[name][1](2, seed=0)
    for method in (model.predict, model.predict_proba):
        with pytest.raises(NotFittedError, match="not fitted"):
            method(x)
    with pytest.raises(NotFittedError):
        model.save_arrays()
    with pytest.raises(TransferkitError):  # NotFittedError is also a TransferkitError
        model.config()


@pytest.mark.parametrize("name", list(CASES))
def test_same_random_state_same_model(name):
    make, data = CASES[name]
    x, y = data(6, seed=3)
    x_test, _ = data(4, seed=4)
    first = make(random_state=7).fit(x, y).predict_proba(x_test)
    second = make(random_state=7).fit(x, y).predict_proba(x_test)
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-7)


def test_different_random_state_different_network():
    x, y = _toy_images(6, seed=3)
    first = SmallCNNClassifier(steps=10, verbose=False, random_state=1).fit(x, y).predict_proba(x)
    second = SmallCNNClassifier(steps=10, verbose=False, random_state=2).fit(x, y).predict_proba(x)
    assert not np.allclose(first, second)


def test_fit_leaves_global_torch_rng_alone():
    import torch

    x, y = _toy_images(3, seed=0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SmallCNNClassifier(steps=2, verbose=False).fit(x, y)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("name", list(CASES))
def test_from_arrays_round_trip(name):
    model = _fitted(name)
    x_test, _ = CASES[name][1](5, seed=5)
    config = json.loads(json.dumps(model.config()))  # must be JSON-able
    arrays = st_load(st_save(model.save_arrays()))  # and storable with safetensors
    rebuilt = type(model).from_arrays(config, arrays)
    np.testing.assert_array_equal(rebuilt.predict_proba(x_test), model.predict_proba(x_test))
    np.testing.assert_array_equal(rebuilt.classes_, model.classes_)
    assert rebuilt.get_params() == model.get_params()


def test_from_arrays_refuses_another_estimator():
    model = _fitted("pixel_lr")
    with pytest.raises(TransferkitError, match="PixelLogisticRegression"):
        SmallCNNClassifier.from_arrays(model.config(), model.save_arrays())


@pytest.mark.parametrize("name", list(CASES))
def test_string_labels(name):
    make, data = CASES[name]
    x, y = data(6, seed=0)
    names = np.array(["zebra", "ant", "moth"])[y]  # not in sorted order of the indices
    model = make().fit(x, names)
    assert model.classes_.tolist() == sorted(set(names.tolist()))
    assert set(model.predict(x).tolist()) <= set(names.tolist())
    rebuilt = type(model).from_arrays(json.loads(json.dumps(model.config())), model.save_arrays())
    np.testing.assert_array_equal(rebuilt.classes_, model.classes_)
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))


# --------------------------------------------------------------------------- parameters


def test_bad_param_message_is_sklearn_style():
    x, y = _toy_images(2, seed=0)
    with pytest.raises(TransferkitError) as info:
        SmallCNNClassifier(epochs=-3).fit(x, y)
    assert str(info.value) == (
        "The 'epochs' parameter of SmallCNNClassifier must be a positive int or None. Got -3 instead."
    )


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [
        ("cnn", "steps", 0),
        ("cnn", "batch_size", 2.5),
        ("cnn", "lr", -1.0),
        ("cnn", "weight_decay", -0.1),
        ("cnn", "augment", "yes"),
        ("cnn", "image_size", 2),
        ("cnn", "random_state", -1),
        ("boe", "embedding_dim", 0),
        ("boe", "ngram_range", (2, 1)),
        ("boe", "num_buckets", 0),
        ("boe", "dropout", 1.0),
        ("boe", "verbose", 1),
        ("mlp", "hidden_size", 0),
        ("pixel_lr", "C", 0.0),
        ("pixel_lr", "max_iter", 0),
        ("tfidf_lr", "ngram_range", (0, 1)),
        ("tfidf_lr", "min_df", 0),
        ("tfidf_lr", "sublinear_tf", None),
        ("std_lr", "C", float("nan")),
    ],
)
def test_bad_params_name_the_parameter(name, param, value):
    make, data = CASES[name]
    x, y = data(2, seed=0)
    model = make()
    model.set_params(**{param: value})
    with pytest.raises(TransferkitError, match=f"'{param}' parameter of {type(model).__name__}"):
        model.fit(x, y)
    assert not hasattr(model, "classes_")


def test_bad_data_raise_transferkit_errors():
    x, y = _toy_images(2, seed=0)
    with pytest.raises(TransferkitError, match="at least 2 classes"):
        SmallCNNClassifier(steps=1, verbose=False).fit(x, np.zeros(len(x)))
    with pytest.raises(TransferkitError, match="one label per example"):
        PixelLogisticRegression().fit(x, y[:-1])
    with pytest.raises(TransferkitError, match="shape"):
        SmallCNNClassifier(steps=1, verbose=False).fit(x[:, 0], y)
    model = SmallCNNClassifier(steps=1, verbose=False).fit(x, y)
    with pytest.raises(TransferkitError, match="channel"):
        model.predict(np.repeat(x[..., None], 3, axis=-1))


# --------------------------------------------------------------------------- details


def test_cnn_colour_and_resize():
    x, y = _toy_images(3, seed=0, channels=3)
    big = np.repeat(np.repeat(x, 5, axis=1), 5, axis=2)  # (N, 80, 80, 3)
    model = SmallCNNClassifier(steps=2, verbose=False).fit(big, y)
    assert model.input_shape_ == (3, 64, 64)
    assert model.mean_.shape == (3,)
    assert model.predict_proba(big).shape == (len(big), 3)
    small = SmallCNNClassifier(steps=2, image_size=20, verbose=False).fit(x, y)
    assert small.input_shape_ == (3, 20, 20)


def test_cnn_reference_size_and_training_length():
    x = np.random.default_rng(0).integers(0, 256, size=(12, 28, 28)).astype(np.uint8)
    y = np.arange(12) % 10  # 10 classes at 28×28: the reference network
    model = SmallCNNClassifier(steps=7, batch_size=5, verbose=False).fit(x, y)
    assert sum(p.numel() for p in model.model_.parameters()) == 468_202
    assert model.n_epochs_ == 3 and model.n_steps_ == 9  # 3 batches per epoch, 7 steps rounded up to epochs
    assert len(model.loss_curve_) == 3
    model = SmallCNNClassifier(epochs=2, batch_size=5, verbose=False).fit(x[:, :12, :12], y)
    assert model.n_epochs_ == 2 and model.n_steps_ == 6


def test_pixel_lr_resizes_large_images():
    x, y = _toy_images(3, seed=0, channels=3)
    big = np.repeat(np.repeat(x, 3, axis=1), 3, axis=2)  # (N, 48, 48, 3)
    model = PixelLogisticRegression().fit(big, y)
    assert model.input_shape_ == (3, 32, 32)
    assert model.model_.coef_.shape == (3, 3 * 32 * 32)


def test_tokenize_and_unseen_text():
    assert tokenize("Wow... Loved THIS place!") == ["wow", ".", ".", ".", "loved", "this", "place", "!"]
    model = _fitted("boe")
    proba = model.predict_proba(["", "completely unknown words"])  # no known n-gram: still a distribution
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_tfidf_rebuilt_vectorizer_matches():
    model = _fitted("tfidf_lr")
    texts, _ = _toy_texts(5, seed=9)
    rebuilt = TfidfLogisticRegression.from_arrays(model.config(), model.save_arrays())
    difference = rebuilt.vectorizer_.transform(texts) - model.vectorizer_.transform(texts)
    assert abs(difference).max() == 0


def test_baseline_for():
    expected = {
        ("image", "scratch"): SmallCNNClassifier,
        ("image", "classical"): PixelLogisticRegression,
        ("text", "scratch"): BagOfEmbeddingsClassifier,
        ("text", "classical"): TfidfLogisticRegression,
        ("tabular", "scratch"): TabularMLPClassifier,
        ("tabular", "classical"): StandardizedLogisticRegression,
    }
    for (modality, kind), cls in expected.items():
        model = baseline_for(modality, kind, random_state=3, verbose=False)
        assert type(model) is cls and model.random_state == 3
    assert baseline_for("image", "scratch", verbose=False).verbose is False
    with pytest.raises(UnknownNameError, match="did you mean 'image'"):
        baseline_for("imag", "scratch")
    with pytest.raises(UnknownNameError, match="did you mean 'scratch'"):
        baseline_for("text", "scrach")
