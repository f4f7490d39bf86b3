"""A zoo entry's own fine-tuning defaults (BackboneCfg.fine_tuning): stored, applied, overridden."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from transferkit import TransferClassifier
from transferkit.backbones import create_backbone, fine_tuning_defaults
from transferkit.backbones.native import build_native, native_cfg
from transferkit.backbones.zoo import save_to_zoo
from transferkit.errors import TransferkitError
from transferkit.pretraining.source import NATIVE_FINE_TUNING, pretrain_supervised
from transferkit.strategies.finetune import FineTune
from transferkit.training import TransferNetwork


def _images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 60, size=(n, 8, 8)).astype(np.uint8)
    images[labels == 1, 2:6, 2:6] = 230  # a bright square marks class 1
    return images, labels


def _body_scales(network):
    groups = FineTune().apply(network)
    return {group["name"]: group["lr_scale"] for group in groups if group["name"] != "head"}


def test_fine_tuning_defaults_split_settings_from_the_rate_factor_and_check_them():
    cfg = native_cfg("small-cnn", name="n", input_size=(1, 8, 8))
    assert fine_tuning_defaults(cfg) == ({}, None)
    cfg = dataclasses.replace(cfg, fine_tuning={"body_lr_scale": 1, "batchnorm": "train", "hflip": False})
    assert fine_tuning_defaults(cfg) == ({"batchnorm": "train", "hflip": False}, 1.0)
    with pytest.raises(TransferkitError, match="'warp_speed'"):
        fine_tuning_defaults(dataclasses.replace(cfg, fine_tuning={"warp_speed": 9}))
    with pytest.raises(TransferkitError, match="body_lr_scale 3"):
        fine_tuning_defaults(dataclasses.replace(cfg, fine_tuning={"body_lr_scale": 3}))


def test_the_strategy_rate_factor_comes_from_the_backbone_unless_the_user_set_one():
    cfg = native_cfg("small-cnn", name="n", input_size=(1, 8, 8))
    plain = TransferNetwork(build_native(cfg, seed=0), 2)
    assert set(_body_scales(plain).values()) == {0.1}  # the image default, for weights with no preference
    preferring = TransferNetwork(build_native(dataclasses.replace(cfg, fine_tuning={"body_lr_scale": 1.0}), seed=0), 2)
    assert set(_body_scales(preferring).values()) == {1.0}
    explicit = FineTune(body_lr_scale=0.5).apply(preferring)
    assert {g["lr_scale"] for g in explicit if g["name"] != "head"} == {0.5}


def test_supervised_pretraining_stores_the_small_network_recipe_and_fit_uses_it(zoo_home):
    images, labels = _images()
    result = pretrain_supervised(images, labels, "tiny-cnn", epochs=1, batch_size=16, verbose=False)
    assert create_backbone("zoo:tiny-cnn").cfg.fine_tuning == NATIVE_FINE_TUNING  # survives the JSON round trip
    assert result.provenance["body_lr_scale"] == 0.1  # pre-training itself keeps the strategy's image default

    fitted = TransferClassifier(backbone="zoo:tiny-cnn", strategy="finetune", epochs=1, verbose=False)
    fitted.fit(images, labels)
    training = fitted.history_["training"]
    assert training["batchnorm"] == "train" and training["hflip"] is False and training["epochs"] == 1
    assert fitted.history_["backbone_fine_tuning"] == NATIVE_FINE_TUNING

    overridden = TransferClassifier(
        backbone="zoo:tiny-cnn", strategy="finetune", training={"batchnorm": "eval"}, verbose=False
    ).fit(images, labels)
    assert overridden.history_["training"]["batchnorm"] == "eval"  # the user's setting wins
    assert overridden.history_["training"]["hflip"] is False
    assert len(overridden.history_["epochs"]) == NATIVE_FINE_TUNING["epochs"] != 15  # not the strategy's 15

    probed = TransferClassifier(backbone="zoo:tiny-cnn", strategy="lp-ft", epochs=1, verbose=False).fit(images, labels)
    assert probed.history_["training"]["lr"] == NATIVE_FINE_TUNING["lr"] != 1e-4  # the entry's rate, not lp-ft's
    slower = TransferClassifier(backbone="zoo:tiny-cnn", strategy="lp-ft", lr=1e-4, epochs=1, verbose=False)
    assert slower.fit(images, labels).history_["training"]["lr"] == 1e-4  # the user's rate wins


def test_entries_without_preferences_keep_the_strategy_defaults(zoo_home):
    images, labels = _images()
    backbone = build_native(native_cfg("small-cnn", name="zoo:bare", input_size=(1, 8, 8)), seed=0)
    save_to_zoo(backbone, "bare")
    fitted = TransferClassifier(backbone="zoo:bare", strategy="finetune", epochs=1, verbose=False).fit(images, labels)
    assert fitted.history_["training"]["batchnorm"] == "eval" and fitted.history_["training"]["hflip"] is True
    assert "backbone_fine_tuning" not in fitted.history_


def test_a_bad_preference_in_an_entry_is_named_when_fitting(zoo_home):
    images, labels = _images()
    cfg = native_cfg("small-cnn", name="zoo:odd", input_size=(1, 8, 8))
    backbone = build_native(dataclasses.replace(cfg, fine_tuning={"batchnorm": "sometimes"}), seed=0)
    save_to_zoo(backbone, "odd")
    with pytest.raises(TransferkitError, match="'batchnorm' training setting"):
        TransferClassifier(backbone="zoo:odd", strategy="finetune", epochs=1, verbose=False).fit(images, labels)


def test_layerwise_stacks_store_their_own_recipe_and_fit_uses_it(zoo_home):
    from transferkit.pretraining import LayerwiseConfig, pretrain_unsupervised
    from transferkit.pretraining.source import LAYERWISE_FINE_TUNING

    images, labels = _images()
    pretrain_unsupervised(images, "tiny-ae", LayerwiseConfig(method="ae", layers=(8,), epochs=1), verbose=False)
    assert create_backbone("zoo:tiny-ae").cfg.fine_tuning == LAYERWISE_FINE_TUNING
    fitted = TransferClassifier(backbone="zoo:tiny-ae", strategy="finetune", verbose=False).fit(images, labels)
    assert fitted.history_["training"]["augment"] is False  # the pixels it was pre-trained on, uncropped
    assert len(fitted.history_["epochs"]) == LAYERWISE_FINE_TUNING["epochs"]
