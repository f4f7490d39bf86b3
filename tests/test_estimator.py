"""TransferClassifier follows scikit-learn's rules and round-trips through save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from transferkit.errors import DataError, NotFittedError, TransferkitError, UnknownNameError
from transferkit.estimators import TransferClassifier, infer_modality
from transferkit.strategies import get_strategy
from transferkit.training import TrainConfig


def _toy_images(n_per_class=6, seed=0):
    """Two classes a pre-trained network tells apart at once: dark vs bright vertical stripes."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in ("stripes", "plain"):
        for _ in range(n_per_class):
            image = rng.integers(0, 40, size=(24, 24)).astype(np.uint8)
            if label == "stripes":
                image[:, ::4] = 250
            images.append(image)
            labels.append(label)
    return np.stack(images), np.array(labels)


SMALL = dict(image_size=64, batch_size=8)


def test_init_only_stores_arguments():
    model = TransferClassifier(backbone="no-such-backbone", strategy="nope", C=-1)
    assert model.get_params()["backbone"] == "no-such-backbone"
    assert clone(model).get_params()["C"] == -1


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        TransferClassifier().predict(np.zeros((1, 8, 8), np.uint8))


def test_linear_probe_learns_and_keeps_original_labels():
    X, y = _toy_images()
    model = TransferClassifier(**SMALL)
    assert model.fit(X, y) is model
    assert set(model.classes_) == {"plain", "stripes"}
    X_test, y_test = _toy_images(seed=1)
    assert model.score(X_test, y_test) >= 0.9
    proba = model.predict_proba(X_test)
    assert proba.shape == (12, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert model.backbone_.cfg.name == "efficientnet_lite0.in1k"
    assert model.history_["fit_seconds"] > 0


def test_save_load_round_trip_gives_identical_probabilities(tmp_path):
    X, y = _toy_images()
    model = TransferClassifier(**SMALL).fit(X, y)
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["backbone"]["sha256"]
    assert not list((tmp_path / "m").glob("*.tmp"))
    loaded = TransferClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)
    assert list(loaded.classes_) == list(model.classes_)


def test_load_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(TransferkitError, match="not a saved transferkit model"):
        TransferClassifier.load(tmp_path)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(C=-3), "The 'C' parameter of TransferClassifier must be a float > 0. Got -3 instead."),
        (dict(batch_size=0), "'batch_size'"),
        (dict(image_size=5), "'image_size'"),
        (dict(lr=-3), "The 'lr' parameter of TransferClassifier must be None or a float in (0, 1]. Got -3 instead."),
        (dict(epochs=-1), "'epochs' parameter of TransferClassifier must be None or a positive int. Got -1"),
        (dict(random_state=-1), "'random_state' parameter of TransferClassifier must be an int >= 0. Got -1"),
        # settings the linear probe does not use are refused all the same
        (dict(training={"bogus": 1}), "unknown training setting 'bogus'"),
        (dict(training={"optimizer": "adam"}), "The 'optimizer' training setting must be one of"),
        (dict(training="fast"), "'training' parameter of TransferClassifier must be None, a TrainConfig or a dict"),
        (dict(adaptation_settings={"steps": 0}), "The 'steps' parameter of AdaptationConfig must be an int >= 1"),
        (dict(adaptation_settings={"step": 5}), "unknown AdaptationConfig settings"),
        (dict(resume="yes"), "The 'resume' parameter of TransferClassifier must be a bool. Got 'yes' instead."),
        (dict(cache=None), "The 'cache' parameter of TransferClassifier must be a bool. Got None instead."),
        (dict(checkpoint_dir=3), "'checkpoint_dir' parameter of TransferClassifier must be None or a folder path"),
        (dict(label_descriptions=["good"]), "'label_descriptions' parameter of TransferClassifier must be None, a"),
        (dict(strategy=None), "'strategy' parameter of TransferClassifier must be a strategy name"),
        (dict(layer=2), "'layer' parameter of TransferClassifier must be None or a layer name"),
        (dict(C=True), "'C' parameter of TransferClassifier must be a float > 0. Got True instead."),
    ],
)
def test_bad_parameters_are_named_in_fit(params, message):
    X, y = _toy_images(2)
    with pytest.raises(TransferkitError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        TransferClassifier(**params).fit(X, y)


def test_every_parameter_has_a_constraint_and_the_defaults_pass():
    import inspect

    from transferkit._estimator_params import PARAMETER_CONSTRAINTS, check_parameters

    signature = [name for name in inspect.signature(TransferClassifier.__init__).parameters if name != "self"]
    assert sorted(PARAMETER_CONSTRAINTS) == sorted(signature)
    check_parameters(TransferClassifier())  # raises nothing
    check_parameters(TransferClassifier(training=TrainConfig(epochs=2), adaptation_settings={"steps": 5}))


def test_unknown_strategy_and_backbone_names():
    X, y = _toy_images(2)
    with pytest.raises(UnknownNameError, match="did you mean 'linear-probe'"):
        TransferClassifier(strategy="linear_probe").fit(X, y)
    with pytest.raises(UnknownNameError, match="mobilenetv2_100.in1k"):
        TransferClassifier(backbone="mobilenetv2").fit(X, y)


def test_one_class_and_mismatched_lengths_are_data_errors():
    X, y = _toy_images(3)
    with pytest.raises(DataError, match="only one class"):
        TransferClassifier(**SMALL).fit(X, np.zeros(len(X)))
    with pytest.raises(DataError, match="one label per example"):
        TransferClassifier(**SMALL).fit(X, y[:-1])
    with pytest.raises(DataError, match=r"X of shape \(8, 8\) is read as tabular rows, for one image pass X\[None\]"):
        TransferClassifier(**SMALL).fit(np.zeros((8, 8), np.uint8), [1])


def test_backbone_of_the_wrong_modality_is_refused():
    with pytest.raises(DataError, match="reads image but X holds text"):
        TransferClassifier(backbone="efficientnet_lite0.in1k").fit(["good", "bad"], [1, 0])


def test_modality_inference():
    assert infer_modality(np.zeros((2, 8, 8), np.uint8)) == "image"
    assert infer_modality(np.zeros((2, 8, 8, 3), np.uint8)) == "image"
    assert infer_modality(np.zeros((2, 5))) == "tabular"
    assert infer_modality(["a.png", "b.JPG"]) == "image"
    assert infer_modality(["a nice day", "b.png"]) == "text"
    with pytest.raises(DataError):
        infer_modality([1, "a"])


def test_text_linear_probe_on_minilm():
    texts = [
        "I loved it, wonderful",
        "great, really enjoyed it",
        "excellent and friendly",
        "awful, never again",
        "terrible and rude",
        "worst meal I have had",
    ]
    labels = [1, 1, 1, 0, 0, 0]
    model = TransferClassifier().fit(texts, labels)
    assert model.backbone_.cfg.name == "minilm_l6.sentence"
    assert list(model.predict(["what a fantastic place", "horrible food"])) == [1, 0]


@pytest.mark.parametrize("strategy", [get_strategy("scratch", steps=60), "classical"])
def test_baseline_strategies_fit_without_a_backbone_and_round_trip(strategy, tmp_path):
    X, y = _toy_images(8)
    model = TransferClassifier(strategy=strategy).fit(X, y)
    assert model.backbone_ is None
    assert model.score(X, y) >= 0.9
    model.save(tmp_path / "model")
    loaded = TransferClassifier.load(tmp_path / "model")
    assert loaded.strategy_ == model.strategy_
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_image_paths_work_for_transfer_and_baselines(tmp_path):
    from PIL import Image

    X, y = _toy_images(4)
    paths = []
    for i, image in enumerate(X):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    for strategy in ("linear-probe", "classical"):
        model = TransferClassifier(strategy=strategy, **SMALL).fit(paths, y)
        assert model.score(paths, y) >= 0.9


def test_image_arrays_of_any_pixel_type_read_the_same_and_bad_ones_are_refused():
    X, y = _toy_images()
    model = TransferClassifier(**SMALL).fit(X, y)
    reference = model.predict_proba(X)
    for same in (X.astype(np.int64), X.astype(np.float64), X / 255.0, X[..., None]):
        np.testing.assert_allclose(model.predict_proba(same), reference, atol=1e-5)
    bad = {
        "values from 0 to 1000": X.astype(np.float64) * 4,
        "integers from -1 to": np.where(X > 0, X.astype(np.int64), -1),
        "NaN": np.where(X > 0, X.astype(np.float64), np.nan),
        "channels first": np.repeat(X[:, None], 3, axis=1),
    }
    for fragment, images in bad.items():
        with pytest.raises(DataError, match=fragment):
            model.predict(images)
    with pytest.raises(DataError, match="X_target holds values"):
        TransferClassifier(**SMALL, adaptation="coral").fit(X, y, X_target=X.astype(np.float64) * 4)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        (lambda y: np.where(y == "plain", 0.0, np.nan), "holds nan at position 0"),
        (lambda y: np.linspace(0, 1, len(y)), "continuous values such as 0.0909"),
        (lambda y: np.array([None, *y[1:]], dtype=object), "holds None at position 0"),
        (lambda y: np.array([1, *y[1:]], dtype=object), "mixes label types"),
    ],
)
def test_labels_that_are_not_class_labels_are_refused(labels, fragment):
    X, y = _toy_images()
    with pytest.raises(DataError, match=fragment):
        TransferClassifier(**SMALL).fit(X, labels(y))


def test_empty_or_non_finite_arrays_and_saving_onto_a_file_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no examples"):
        TransferClassifier(**SMALL).fit(np.zeros((0, 16, 16), np.uint8), [])
    with pytest.raises(DataError, match="NaN or infinite"):
        TransferClassifier(strategy="classical").fit(np.full((4, 3), np.nan), [0, 1, 0, 1])
    X, y = _toy_images(2)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(TransferkitError, match="it is a file; expected a folder"):
        TransferClassifier(**SMALL).fit(X, y).save(tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text() == "x"
