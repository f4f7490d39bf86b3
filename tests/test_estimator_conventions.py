"""The public estimators follow scikit-learn's conventions: refits start afresh, array-likes are read as
arrays, clone keeps what fit needs, save/load keeps the labels' type and never mixes two saves."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferkit import TransferClassifier
from transferkit.errors import DataError, TransferkitError
from transferkit.pretraining import TransferLogisticRegression
from transferkit.strategies.baselines import StandardizedLogisticRegression, TabularMLPClassifier

FAST = dict(strategy="classical", verbose=False)  # feature vectors: no backbone, a logistic regression


def _rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.where(X[:, 0] + 0.3 * X[:, 1] > 0, "yes", "no")


def _images(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, size=(8, 24, 24)).astype(np.uint8)
    X[:4, :, ::4] = 250
    return X, np.array(["stripes"] * 4 + ["plain"] * 4)


# -- TransferClassifier: fitting afresh -------------------------------------------------------------


def test_a_refit_that_fails_part_way_leaves_no_model_mixed_with_the_new_backbone():
    X, y = _images()
    model = TransferClassifier(image_size=32, batch_size=8, verbose=False, cache=False).fit(X, y)
    # the bad target_labelled is found after the new backbone is in place
    model.set_params(backbone="efficientnet_lite0.random", adaptation="coral")
    with pytest.raises(DataError, match="target_labelled has labels not in y"):
        model.fit(X, y, X_target=X, target_labelled=(X[:2], ["zebra", "plain"]))
    assert not hasattr(model, "model_") and not hasattr(model, "classes_")
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_a_refit_drops_the_choice_of_an_earlier_auto_fit():
    X, y = _images()
    model = TransferClassifier(strategy="auto", image_size=32, batch_size=8, verbose=False, cache=False).fit(X, y)
    assert hasattr(model, "strategy_choice_")
    model.set_params(strategy="linear-probe").fit(X, y)
    assert not hasattr(model, "strategy_choice_")
    assert "strategy_choice" not in model.history_


# -- TransferClassifier: inputs as scikit-learn passes them --------------------------------------------


def test_dataframes_and_lists_of_rows_are_feature_vectors_in_a_pipeline_and_cross_validation():
    X, y = _rows()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])  # iterating it yields the column names
    model = TransferClassifier(**FAST).fit(frame, y)
    assert model.modality_ == "tabular"
    assert model.predict(frame).tolist() == model.predict(X).tolist()
    from_lists = TransferClassifier(**FAST).fit(X.tolist(), y.tolist())
    assert from_lists.predict(X.tolist()).tolist() == model.predict(X).tolist()
    scores = cross_val_score(make_pipeline(StandardScaler(), TransferClassifier(**FAST)), frame, y, cv=3)
    assert scores.shape == (3,) and scores.min() >= 0.7


@pytest.mark.parametrize(
    ("X", "y", "fragment"),
    [
        (sparse.csr_matrix(np.eye(4)), [0, 1, 0, 1], "sparse input is not supported"),
        ([], [], "X is empty: no examples"),
        (np.eye(4), None, "requires y to be passed, but the target y is None"),
        (np.eye(4), ["a"] * 4, r"only one class \('a'\)"),
    ],
)
def test_sparse_empty_missing_y_and_one_class_are_clear_errors(X, y, fragment):
    with pytest.raises(DataError, match=fragment):
        TransferClassifier(**FAST).fit(X, y)


def test_a_zero_shot_classifier_has_its_classes_sorted():
    descriptions = {"positive": ["This review is positive."], "negative": ["This review is negative."]}
    model = TransferClassifier(label_descriptions=descriptions, verbose=False).fit([], [])
    assert model.classes_.tolist() == ["negative", "positive"]
    probabilities = model.predict_proba(["a lovely, wonderful evening", "dreadful, rude and cold"])
    assert probabilities.argmax(axis=1).tolist() == [1, 0]
    assert model.predict(["a lovely, wonderful evening"]).tolist() == ["positive"]


# -- TransferClassifier: save / load ------------------------------------------------------------------


@pytest.mark.parametrize("labels", [np.array([3, 7] * 20, dtype=np.int32), np.array(["no", "yes"] * 20, dtype=object)])
def test_save_load_keeps_the_labels_type(labels, tmp_path):
    X, _ = _rows()
    model = TransferClassifier(**FAST).fit(X, labels)
    loaded = TransferClassifier.load(model.save(tmp_path / "model"))
    assert loaded.classes_.dtype == model.classes_.dtype
    assert loaded.predict(X).dtype == model.predict(X).dtype
    assert loaded.predict(X).tolist() == model.predict(X).tolist()


def test_a_model_with_a_path_setting_saves(tmp_path):
    X, y = _rows()
    model = TransferClassifier(**FAST, cache_dir=tmp_path / "cache").fit(X, y)
    loaded = TransferClassifier.load(model.save(tmp_path / "model"))
    assert loaded.cache_dir == str(tmp_path / "cache")
    assert loaded.predict(X).tolist() == model.predict(X).tolist()


def test_a_save_that_fails_part_way_leaves_the_earlier_save_whole(tmp_path, monkeypatch):
    X, y = _rows()
    first = TransferClassifier(**FAST).fit(X, y)
    first.save(tmp_path / "model")
    saved = {name: (tmp_path / "model" / name).read_bytes() for name in ("config.json", "weights.safetensors")}
    second = TransferClassifier(**FAST).fit(X, y[::-1])

    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("transferkit._persistence.json.dumps", fail)
    with pytest.raises(OSError, match="No space left"):
        second.save(tmp_path / "model")
    monkeypatch.undo()
    assert {name: (tmp_path / "model" / name).read_bytes() for name in saved} == saved
    assert not list((tmp_path / "model").glob("*.tmp"))
    assert TransferClassifier.load(tmp_path / "model").predict(X).tolist() == first.predict(X).tolist()


def test_weights_of_another_save_are_refused_on_loading(tmp_path):
    X, y = _rows()
    TransferClassifier(**FAST).fit(X, y).save(tmp_path / "a")
    TransferClassifier(**FAST).fit(X, y[::-1]).save(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "weights.safetensors", tmp_path / "a" / "weights.safetensors")
    with pytest.raises(TransferkitError, match="does not match .*config.json.*comes from another save"):
        TransferClassifier.load(tmp_path / "a")


# -- TransferLogisticRegression -----------------------------------------------------------------------


def test_transfer_logistic_regression_clones_with_its_fitted_source_and_cross_validates():
    X, y = _rows()
    source = LogisticRegression().fit(X, y)
    model = TransferLogisticRegression(source, lam=1.0)
    assert clone(model).source is source
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.min() >= 0.7
    assert hasattr(source, "coef_")  # the user's source model is untouched


def test_transfer_logistic_regression_refits_afresh_and_a_failed_refit_leaves_it_unfitted():
    X, y = _rows()
    model = TransferLogisticRegression(LogisticRegression().fit(X, y)).fit(X, y)
    assert hasattr(model, "cv_scores_")
    model.set_params(lam=0.5).fit(X, y)
    assert not hasattr(model, "cv_scores_") and model.lam_ == 0.5
    with pytest.raises(DataError, match=r"only one class \('no'\)"):
        model.fit(X, np.full(len(X), "no"))
    with pytest.raises(NotFittedError):
        model.predict(X)


@pytest.mark.parametrize(
    ("fit_X", "fit_y", "fragment"),
    [
        (lambda X: np.where(X > 1, np.nan, X), lambda y: y, "NaN or infinite"),
        (lambda X: X[:0], lambda y: y[:0], "X is empty"),
        (lambda X: X, lambda y: y[:, None], "expected one label per example"),
        (lambda X: X, lambda y: np.where(y == "yes", 1.0, np.nan), "holds nan at position"),
    ],
)
def test_transfer_logistic_regression_refuses_bad_data_clearly(fit_X, fit_y, fragment):
    X, y = _rows()
    source = LogisticRegression().fit(X, y)
    with pytest.raises(DataError, match=fragment):
        TransferLogisticRegression(source, lam=1.0).fit(fit_X(X), fit_y(y))


def test_transfer_logistic_regression_predicts_only_on_finite_rows_of_the_right_width():
    X, y = _rows()
    model = TransferLogisticRegression(LogisticRegression().fit(X, y), lam=1.0).fit(X, y)
    with pytest.raises(DataError, match=r"shape \(3, 5\); the source model reads 4 features"):
        model.predict(np.zeros((3, 5)))
    with pytest.raises(DataError, match="NaN or infinite"):
        model.predict(np.full((3, 4), np.nan))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(max_iter=0), "The 'max_iter' parameter of TransferLogisticRegression must be a positive int. Got 0"),
        (dict(random_state="x"), "The 'random_state' parameter of TransferLogisticRegression must be None or an int"),
        (dict(lambdas=5), "The 'lambdas' parameter of TransferLogisticRegression must be a non-empty tuple"),
        (dict(lambdas=(float("nan"),)), "The 'lambdas' parameter of TransferLogisticRegression must be a non-empty"),
    ],
)
def test_transfer_logistic_regression_names_bad_parameters(params, message):
    X, y = _rows()
    with pytest.raises(TransferkitError, match=message):
        TransferLogisticRegression(LogisticRegression().fit(X, y), **params).fit(X, y)


# -- the target-only baselines used on their own --------------------------------------------------------


@pytest.mark.parametrize("baseline", [StandardizedLogisticRegression(), TabularMLPClassifier(steps=4, verbose=False)])
def test_tabular_baselines_refuse_nan_features_and_labels(baseline):
    X, y = _rows()
    with pytest.raises(DataError, match="NaN or infinite"):
        clone(baseline).fit(np.where(X > 1, np.nan, X), y)
    fitted = clone(baseline).fit(X, y)
    with pytest.raises(DataError, match="NaN or infinite"):
        fitted.predict(np.full((2, 4), np.inf))
    with pytest.raises(DataError, match="holds nan at position"):
        clone(baseline).fit(X, np.where(y == "yes", 1.0, np.nan))


def test_a_dataframe_of_one_text_column_is_read_as_its_texts_and_of_several_is_refused():
    from transferkit._estimator_checks import as_array_like

    texts = ["great food", "awful service", "loved it"]
    assert as_array_like(pd.DataFrame({"review": texts})) == texts  # not its one column name as a single text
    with pytest.raises(DataError, match=r"2 columns \['review', 'city'\].*X\['review'\]"):
        as_array_like(pd.DataFrame({"review": texts, "city": ["x", "y", "z"]}))
    numeric = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0, 1, 0]})
    assert as_array_like(numeric).shape == (3, 2)  # features, as before
