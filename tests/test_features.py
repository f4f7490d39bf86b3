import numpy as np
import pytest
import torch

from transferkit.errors import DataError, TransferkitError, UnknownNameError
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


def _features_file(key):
    return cache_directory() / "features" / f"{key}.npy"


def test_image_files_share_a_cache_entry_only_when_their_bytes_match(tmp_path, backbone_factory, monkeypatch):
    import os

    from PIL import Image

    backbone = backbone_factory("efficientnet_lite0.random")
    rng = np.random.default_rng(0)
    folders = {}
    for project in ("a", "b", "moved"):
        folder = tmp_path / project / "bmps"
        folder.mkdir(parents=True)
        folders[project] = [str(folder / f"{i}.bmp") for i in range(3)]
    for i in range(3):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folders["a"][i])
        Image.fromarray(255 - pixels).save(folders["b"][i])  # same name, size and (below) time; other pixels
        Image.fromarray(pixels).save(folders["moved"][i])
        stat = os.stat(folders["a"][i])
        for other in ("b", "moved"):
            os.utime(folders[other][i], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    monkeypatch.chdir(tmp_path / "a")  # the same relative paths, as a user running in two project folders
    first = extract_features(backbone, ["bmps/0.bmp", "bmps/1.bmp", "bmps/2.bmp"], image_size=32)
    monkeypatch.chdir(tmp_path / "b")
    other = extract_features(backbone, ["bmps/0.bmp", "bmps/1.bmp", "bmps/2.bmp"], image_size=32)
    assert not other.from_cache and other.key != first.key
    assert not np.allclose(other.features, first.features)
    moved = extract_features(backbone, folders["moved"], image_size=32)  # same bytes elsewhere: the same entry
    assert moved.from_cache and moved.key == first.key


def test_a_cache_entry_that_is_not_what_was_asked_for_is_recomputed(images, backbone_factory):
    import json

    backbone = backbone_factory("efficientnet_lite0.random")
    first = extract_features(backbone, images, image_size=32)
    path = _features_file(first.key)
    tampered = (
        np.zeros((3, first.features.shape[1]), np.float32),  # another row count
        np.zeros_like(first.features),  # the right shape, another content
    )
    for array in tampered:
        np.save(path, array)
        again = extract_features(backbone, images, image_size=32)
        assert not again.from_cache
        np.testing.assert_allclose(again.features, first.features, rtol=1e-5)
    for meta in ([1, 2], {"items_per_second": None}):
        path.with_suffix(".json").write_text(json.dumps(meta))
        assert not extract_features(backbone, images, image_size=32).from_cache
    assert extract_features(backbone, images, image_size=32).from_cache


def test_a_cache_that_cannot_be_written_warns_and_the_features_are_kept(images, backbone_factory, tmp_path):
    backbone = backbone_factory("efficientnet_lite0.random")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="cannot write the feature cache in .*a-file.*not cached"):
        result = extract_features(backbone, images, image_size=32, cache_dir=blocker)
    assert result.features.shape[0] == len(images) and not result.from_cache


def test_extract_features_refuses_inputs_it_would_misread(images, backbone_factory):
    text = backbone_factory("minilm_l6.sentence")
    with pytest.raises(DataError, match="inputs must be a list of texts; got str 'hello world'"):
        extract_features(text, "hello world", cache=False)
    with pytest.raises(DataError, match="inputs hold int '3'; expected strings only"):
        extract_features(text, ["good", 3], cache=False)
    with pytest.raises(DataError, match=r"inputs must be a list of texts; got an array of float64 \(2, 3\)"):
        extract_features(text, np.zeros((2, 3)), cache=False)
    assert extract_features(text, np.array(["good", "bad"]), cache=False).features.shape == (2, 384)
    vision = backbone_factory("efficientnet_lite0.random")
    with pytest.raises(
        DataError, match=r"inputs must be a list of image paths or an image array \(N, H, W\[, C\]\); got None"
    ):
        extract_features(vision, None, cache=False)
    broken = images.astype(np.float32)
    broken[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        extract_features(vision, broken, cache=False)


def test_feature_vectors_go_through_a_tabular_backbone(zoo_home):
    from transferkit.backbones import create_backbone
    from transferkit.pretraining import pretrain_supervised

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6)).astype(np.float32)
    pretrain_supervised(X, (X[:, 0] > 0).astype(int), "vec", arch="mlp", hidden=(8,), epochs=2, verbose=False)
    backbone = create_backbone("zoo:vec")
    assert extract_features(backbone, X, cache=False).features.shape == (80, 8)
    for bad in ([[1.0] * 6] * 3, X[:, :, None], np.where(X > 2, np.nan, X)):
        with pytest.raises(DataError, match="feature vectors"):
            extract_features(backbone, bad, cache=False)
