"""Conformance suite over every registered backbone, plus real-weights checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.backbones import backbone_cfg, create_backbone, list_backbones
from transferkit.errors import TransferkitError, UnknownNameError

REGISTERED = list_backbones()


def _raw_inputs(cfg, n=3):
    if cfg.modality == "image":
        return (np.random.default_rng(0).random((n, 20, 24)) * 255).astype(np.uint8)
    return ["a short sentence", "another, somewhat longer sentence about nothing", "yes"][:n]


def test_the_required_backbones_are_registered():
    assert {"efficientnet_lite0.in1k", "efficientnet_lite1.in1k", "mobilenetv2_100.in1k", "minilm_l6.sentence"} <= set(
        REGISTERED
    )


@pytest.mark.parametrize("name", REGISTERED)
def test_output_shape_matches_cfg(name, backbone_factory):
    backbone = backbone_factory(name)
    cfg = backbone.cfg
    batch = backbone.preprocessor(image_size=64 if cfg.modality == "image" else None)(_raw_inputs(cfg))
    with torch.inference_mode():
        features = backbone.forward_features(batch)
    assert features.shape == (3, cfg.feature_dim)
    assert torch.isfinite(features).all()
    assert cfg == backbone_cfg(name)


@pytest.mark.parametrize("name", REGISTERED)
def test_layer_groups_cover_every_parameter_once_in_order(name, backbone_factory):
    backbone = backbone_factory(name)
    groups = backbone.layer_groups()
    seen = [id(p) for _, modules in groups for m in modules for p in m.parameters()]
    assert len(seen) == len(set(seen)), "a parameter is in two groups"
    assert set(seen) == {id(p) for p in backbone.parameters()}, "a parameter is in no group"
    assert len({name for name, _ in groups}) == len(groups)
    # input -> output order: registration order of the parameters must be non-decreasing by group
    position = {id(p): i for i, p in enumerate(backbone.parameters())}
    firsts = [min(position[id(p)] for m in modules for p in m.parameters()) for _, modules in groups]
    assert firsts == sorted(firsts)


@pytest.mark.parametrize("name", REGISTERED)
def test_feature_layers_and_forward_layer(name, backbone_factory):
    backbone = backbone_factory(name)
    layers = backbone.feature_layers()
    assert layers[-1] == "pooled" and len(layers) >= 3
    batch = backbone.preprocessor(image_size=64 if backbone.cfg.modality == "image" else None)(
        _raw_inputs(backbone.cfg, 2)
    )
    with torch.inference_mode():
        shallow = backbone.forward_layer(batch, layers[0])
        pooled = backbone.forward_layer(batch, "pooled")
    assert shallow.ndim == 2 and shallow.shape[0] == 2
    assert pooled.shape == (2, backbone.cfg.feature_dim)
    with pytest.raises(UnknownNameError, match="did you mean"):
        backbone.forward_layer(batch, layers[0] + "x")


@pytest.mark.parametrize("name", [n for n in REGISTERED if backbone_cfg(n).modality == "image"])
def test_image_preprocessing_follows_cfg(name, backbone_factory):
    backbone = backbone_factory(name)
    cfg = backbone.cfg
    grey = np.full((2, 28, 28), 255, dtype=np.uint8)
    x = backbone.preprocessor()(grey)
    assert x.shape == (2, *cfg.input_size)
    expected = (1.0 - np.array(cfg.mean)) / np.array(cfg.std)
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), expected, rtol=1e-5)
    assert backbone.preprocessor(image_size=96)(grey).shape[-1] == 96


def test_text_preprocessing_truncates_to_cfg_max_length(backbone_factory):
    backbone = backbone_factory("minilm_l6.sentence")
    tokens = backbone.preprocessor()(["word " * 1000, "short"])
    assert tokens["input_ids"].shape == (2, backbone.cfg.max_length)


def test_efficientnet_lite0_sees_espresso_in_the_coffee_photo(backbone_factory):
    skimage_data = pytest.importorskip("skimage.data")
    from timm.data import ImageNetInfo

    backbone = backbone_factory("efficientnet_lite0.in1k")
    photo = skimage_data.coffee()[None]  # (1, H, W, 3) uint8
    with torch.inference_mode():
        logits = backbone.source_logits(backbone.preprocessor()(photo))
    top = int(logits.argmax())
    assert "espresso" in ImageNetInfo().index_to_description(top).lower()


def test_minilm_separates_paraphrases_from_unrelated_sentences(backbone_factory):
    backbone = backbone_factory("minilm_l6.sentence")
    sentences = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    with torch.inference_mode():
        e = backbone.forward_features(backbone.preprocessor()(sentences))
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert float(e[0] @ e[1]) > 0.7
    assert float(e[0] @ e[2]) < 0.3


def test_unknown_backbone_suggests_the_close_name():
    with pytest.raises(UnknownNameError, match="did you mean 'efficientnet_lite0.in1k'"):
        create_backbone("efficientnet_lite")


def test_timm_pass_through_with_a_local_weights_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet18", pretrained=False, num_classes=7)
    weights = tmp_path / "r18.safetensors"
    save_file(source.state_dict(), str(weights))
    backbone = create_backbone(f"timm:resnet18@{weights}")
    assert backbone.cfg.feature_dim == 512
    x = backbone.preprocessor(image_size=64)(np.zeros((1, 32, 32), np.uint8))
    with torch.inference_mode():
        assert torch.allclose(backbone.source_logits(x), source.eval()(x), atol=1e-5)  # memory layouts differ
    names = [n for n, _ in backbone.layer_groups()]
    assert names[0] == "stem" and names[-1] == "classifier"


def test_timm_pass_through_without_weights_fails_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(TransferkitError, match="never downloads"):
        create_backbone("timm:resnet18")


def test_hf_pass_through_loads_a_local_folder_and_refuses_unknown_ids(backbone_factory):
    folder = backbone_cfg("minilm_l6.sentence").weights
    backbone = create_backbone(f"hf:{folder}")
    assert backbone.cfg.normalize and backbone.cfg.feature_dim == 384
    reference = backbone_factory("minilm_l6.sentence")
    batch = reference.preprocessor()(["hello there"])
    with torch.inference_mode():
        assert torch.allclose(backbone.forward_features(batch), reference.forward_features(batch), atol=1e-6)
    with pytest.raises(TransferkitError, match="never downloads"):
        create_backbone("hf:nobody/no-such-model-here")


def test_corrupt_weights_are_refused(tmp_path, monkeypatch):
    from transferkit.backbones import _registry

    factory, cfg_fn = _registry._FACTORIES["efficientnet_lite0.in1k"]
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"not the weights")
    import dataclasses

    with pytest.raises(TransferkitError, match="sha256"):
        factory(dataclasses.replace(cfg_fn(), weights=str(bad)))


@pytest.mark.parametrize("name", REGISTERED)
def test_backbones_are_created_in_eval_mode(name, backbone_factory):
    backbone = backbone_factory(name)
    assert not backbone.training
    assert not any(module.training for module in backbone.modules())


def test_weights_file_that_is_not_weights_is_a_clear_error(tmp_path):
    from transferkit.backbones.vision import load_state_dict_file

    for name in ("notes.txt", "broken.safetensors"):
        (tmp_path / name).write_text("not weights")
        with pytest.raises(TransferkitError, match=f"cannot read weights from .*{name}"):
            load_state_dict_file(str(tmp_path / name))


@pytest.mark.parametrize("name", [None, 123])
def test_create_backbone_names_a_name_that_is_not_a_string(name):
    from transferkit.backbones import create_backbone
    from transferkit.errors import TransferkitError

    with pytest.raises(TransferkitError, match=f"a backbone name must be a string .*; got {name!r}"):
        create_backbone(name)
