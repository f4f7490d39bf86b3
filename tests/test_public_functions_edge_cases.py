"""Edge cases of the public functions a library user calls directly: clear errors, no silent misuse."""

from __future__ import annotations

import numpy as np
import pytest

import transferkit  # noqa: F401  (before timm, as everywhere)
from transferkit.adaptation import (
    AdaptationConfig,
    CoralClassifier,
    FeatureAdapter,
    MultiKernelMMDLoss,
    ReweightedClassifier,
    compare_adaptation,
    coral_transform,
    dev_risk,
    fit_method,
    select_adaptation,
)
from transferkit.data import few_shot_indices
from transferkit.errors import DataError, NotFittedError, TransferkitError
from transferkit.selection.distance import proxy_a_distance
from transferkit.selection.scores import hscore, logme

RNG = np.random.default_rng(0)
XS = RNG.normal(size=(40, 4))
YS = (XS[:, 0] > 0).astype(np.int64)
XT = RNG.normal(size=(30, 4)) + 0.5
TINY = AdaptationConfig(steps=2, batch_size=16, bottleneck_dim=8)


@pytest.mark.parametrize("score", [logme, hscore])
def test_scores_reject_features_too_small_to_square(score):
    with pytest.raises(DataError, match="scale them"):
        score(XS * 1e-200, YS)


def test_hscore_ledoit_wolf_is_scale_free_for_huge_features():
    assert hscore(XS * 1e90, YS) == pytest.approx(hscore(XS, YS), rel=1e-9)


def test_proxy_a_distance_rejects_seed_numpy_cannot_take():
    with pytest.raises(DataError, match="seed"):
        proxy_a_distance(XS, XT, seed=2**40)


@pytest.mark.parametrize("bad", [np.array([["a"] * 4] * 40), XS + 1j])
def test_coral_transform_rejects_non_real_features(bad):
    with pytest.raises(DataError, match="dtype"):
        coral_transform(bad, XT)


def test_coral_transform_rejects_infinite_reg():
    with pytest.raises(TransferkitError, match="reg"):
        coral_transform(XS, XT, reg=float("inf"))


@pytest.mark.parametrize(
    ("labels", "match"),
    [(np.where(YS == 0, np.nan, 1.0), "NaN"), (np.array([None] * 20 + ["a"] * 20, dtype=object), "compared")],
)
def test_shallow_classifier_labels_nan_or_mixed(labels, match):
    with pytest.raises(DataError, match=match):
        CoralClassifier().fit(XS, labels, X_target=XT)


def test_reweighted_classifier_negative_random_state():
    with pytest.raises(TransferkitError, match="random_state"):
        ReweightedClassifier(random_state=-1).fit(XS, YS, X_target=XT)


@pytest.mark.parametrize(("losses", "weights"), [([], []), ([0, 1, 0], [1, 1]), ([0, np.nan], [1, 1])])
def test_dev_risk_rejects_empty_mismatched_or_nan(losses, weights):
    with pytest.raises(DataError):
        dev_risk(losses, weights)


def test_feature_adapter_labels_must_match_rows():
    with pytest.raises(DataError, match="labels has 10"):
        FeatureAdapter(TINY).fit(XS, YS[:10], XT)


def test_feature_adapter_rejects_nan_and_strings():
    with pytest.raises(DataError, match="NaN"):
        FeatureAdapter(TINY).fit(np.where(XS > 1.5, np.nan, XS), YS, XT)
    with pytest.raises(DataError, match="numbers"):
        FeatureAdapter(TINY).fit(np.array([["a"] * 4] * 40), YS, XT)


def test_feature_adapter_predict_checks():
    with pytest.raises(NotFittedError):
        FeatureAdapter(TINY).predict(XT)
    adapter = FeatureAdapter(TINY).fit(XS, YS, XT)
    with pytest.raises(DataError, match="expected"):
        adapter.predict(XT[:, :3])


def test_mmd_loss_needs_a_scale():
    with pytest.raises(TransferkitError, match="scales"):
        MultiKernelMMDLoss(scales=())


def test_fit_method_source_only_checks_inputs():
    with pytest.raises(DataError, match="one label per row"):
        fit_method("source-only", XS, YS[:10], XT)
    with pytest.raises(DataError, match="NaN"):
        fit_method("source-only", np.where(XS > 1.5, np.nan, XS), YS, XT)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (YS + 0.5, "class indices"),  # was truncated to ints silently
        (np.array(["a", "b"])[YS], "class indices"),
        (YS[:30], "one label per row"),  # was fitted on the first 30 rows silently
        (YS[:, None], "one label per row"),  # was broadcast into a wrong error
    ],
)
def test_select_adaptation_label_checks(labels, match):
    with pytest.raises(DataError, match=match):
        select_adaptation(["source-only"], XS, labels, XT)


def test_select_adaptation_other_checks():
    with pytest.raises(DataError, match="validation_fraction"):
        select_adaptation(["source-only"], XS, YS, XT, validation_fraction=float("nan"))
    with pytest.raises(DataError, match="hold one out"):
        select_adaptation(["source-only"], XS[:2], [0, 1], XT)
    with pytest.raises(DataError, match="weights is empty"):
        select_adaptation(["self-training"], XS, YS, XT, weights=())
    with pytest.raises(DataError, match="source has shape"):
        select_adaptation(["source-only"], XS[:, 0], YS, XT[:, 0])


def test_compare_adaptation_checks():
    with pytest.raises(DataError, match="seeds"):
        compare_adaptation(XS, YS, XT, methods=["shallow-coral"], seeds=0)
    with pytest.raises(DataError, match="class indices"):
        compare_adaptation(XS, np.array(["a", "b"])[YS], XT, methods=["shallow-coral"], seeds=1)
    with pytest.raises(DataError, match="target_test"):
        compare_adaptation(XS, YS, XT, methods=["shallow-coral"], seeds=1, target_test=XT[:, :3], test_labels=YS[:30])


def test_few_shot_indices_names_non_index_labels():
    with pytest.raises(DataError, match="'b'"):
        few_shot_indices(np.array(["a", "a", "b"]), 2, 0, classes=["a", "b"])
    with pytest.raises(DataError, match="class 7"):
        few_shot_indices(np.array([3, 3, 7]), 2, 0, classes=["x", "y"])
    with pytest.raises(DataError, match="compared"):
        few_shot_indices(np.array([None, "a"], dtype=object), 1, 0)


def test_select_adaptation_takes_one_method_name_as_that_method():
    one = select_adaptation("shallow-coral", XS, YS, XT, random_state=0)  # not the letters 's', 'h', ...
    listed = select_adaptation(["shallow-coral"], XS, YS, XT, random_state=0)
    assert [c.method for c in one.candidates] == [c.method for c in listed.candidates] == ["shallow-coral"]
