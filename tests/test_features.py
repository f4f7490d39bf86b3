import numpy as np
import pytest
import torch

from transferkit.errors import TransferkitError, UnknownNameError
from transferkit.features import cache_directory, extract_features


@pytest.fixture
def images():
    return (np.random.default_rng(1).random((10, 28, 28)) * 255).astype(np.uint8)


def test_features_match_a_direct_forward_pass(images, backbone_factory):
    backbone = backbone_factory("efficientnet_lite0.in1k")
    result = extract_features(backbone, images, image_size=64, batch_size=4)
    with torch.inference_mode():
        direct = backbone.forward_features(backbone.preprocessor(64)(images)).numpy()
    assert result.features.shape == (10, 1280) and result.features.dtype == np.float32
    np.testing.assert_allclose(result.features, direct, rtol=1e-4, atol=1e-5)
    assert not result.from_cache and result.items_per_second > 0


def test_second_extraction_reads_the_cache(images, backbone_factory):
    backbone = backbone_factory("efficientnet_lite0.in1k")
    first = extract_features(backbone, images, image_size=64)
    second = extract_features(backbone, images, image_size=64)
    assert second.from_cache and second.key == first.key
    np.testing.assert_array_equal(first.features, second.features)
    assert (cache_directory() / "features" / f"{first.key}.npy").is_file()


def test_cache_key_changes_with_data_layer_and_preprocessing(images, backbone_factory):
    backbone = backbone_factory("efficientnet_lite0.in1k")
    base = extract_features(backbone, images, image_size=64).key
    changed = images.copy()
    changed[0, 0, 0] ^= 1
    assert extract_features(backbone, changed, image_size=64).key != base
    assert extract_features(backbone, images, image_size=72).key != base
    shallow = extract_features(backbone, images, image_size=64, layer="blocks.2")
    assert shallow.key != base and shallow.features.shape == (10, 40)


def test_a_damaged_cache_entry_is_recomputed(images, backbone_factory):
    backbone = backbone_factory("efficientnet_lite0.in1k")
    first = extract_features(backbone, images, image_size=64)
    (cache_directory() / "features" / f"{first.key}.npy").write_bytes(b"garbage")
    again = extract_features(backbone, images, image_size=64)
    assert not again.from_cache
    np.testing.assert_allclose(again.features, first.features, rtol=1e-5)


def test_unknown_layer_is_named(images, backbone_factory):
    backbone = backbone_factory("efficientnet_lite0.in1k")
    with pytest.raises(UnknownNameError, match="blocks.9"):
        extract_features(backbone, images, layer="blocks.9")


def test_text_features_are_cached_too(backbone_factory):
    backbone = backbone_factory("minilm_l6.sentence")
    texts = ["good food", "terrible service", "fine"]
    first = extract_features(backbone, texts)
    second = extract_features(backbone, texts)
    assert first.features.shape == (3, 384) and second.from_cache


@pytest.mark.parametrize(("option", "value"), [("image_size", 0), ("image_size", -5), ("batch_size", 0)])
def test_extract_features_refuses_non_positive_sizes(option, value, images, backbone_factory):
    backbone = backbone_factory("efficientnet_lite0.random")
    with pytest.raises(TransferkitError, match=f"'{option}' parameter of extract_features.*Got {value}"):
        extract_features(backbone, images, cache=False, **{option: value})


def test_extract_features_names_a_backbone_given_by_name(images):
    with pytest.raises(TransferkitError, match="must be a Backbone .from create_backbone.. Got 'efficientnet"):
        extract_features("efficientnet_lite0.in1k", images)
