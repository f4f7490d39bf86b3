"""predict, extract, export and the backbones on odd input: clear one-line errors, never stale or silent results."""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import pytest
import torch
from PIL import Image

from transferkit import TransferClassifier
from transferkit.backbones import create_backbone
from transferkit.cli import main
from transferkit.errors import TransferkitError
from transferkit.features import extract_features


def _run(capsys, *argv):
    status = main([*argv, "--quiet"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_user_error(capsys, argv, *fragments):
    status, _, err = _run(capsys, *argv)
    assert status == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("transferkit: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _reviews(path):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(6):
            writer.writerow([f"good lovely food {i}", "pos"])
            writer.writerow([f"awful rude service {i}", "neg"])
    return str(path)


def _shapes(root, per_class=4, size=24):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("circle", "square")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 30, size=(size, size)).astype(np.uint8)
            image[:, :: 3 + c] = 240
            Image.fromarray(image).save(root / name / f"{i}.png")
    return str(root)


@pytest.fixture
def text_model(tmp_path, capsys):
    run = tmp_path / "text-run"
    argv = ["fit", _reviews(tmp_path / "reviews.csv"), "--strategy", "classical", "--no-baseline", "--seeds", "1"]
    status, _, err = _run(capsys, *argv, "--out", str(run))
    assert status == 0, err
    return str(run)


def _tiny_weights(path, seed):
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


def test_a_backbone_changed_in_place_is_not_served_its_earlier_cached_features(tiny_backbone):
    # a fine-tuned backbone keeps the cfg (and sha256) of its pre-trained weights file
    backbone = tiny_backbone()
    backbone.cfg = dataclasses.replace(backbone.cfg, sha256="0" * 64)
    images = (np.random.default_rng(0).random((4, 24, 24, 3)) * 255).astype(np.uint8)
    before = extract_features(backbone, images, image_size=32)
    with torch.no_grad():
        for parameter in backbone.parameters():
            parameter.mul_(1.5)
    after = extract_features(backbone, images, image_size=32)
    assert not after.from_cache and after.key != before.key
    assert not np.allclose(after.features, before.features)
    assert extract_features(backbone, images, image_size=32).from_cache  # unchanged since: the cache serves it


def test_timm_weights_of_the_wrong_shape_or_not_a_state_dict_are_one_clear_error(tmp_path):
    from safetensors.torch import load_file, save_file

    good = load_file(_tiny_weights(tmp_path / "good.safetensors", 0))
    good["conv_stem.weight"] = torch.zeros(1, 1, 1, 1)
    save_file(good, str(tmp_path / "shape.safetensors"))
    with pytest.raises(TransferkitError, match=r"conv_stem.weight has shape \(1, 1, 1, 1\), the architecture expects"):
        create_backbone(f"timm:test_efficientnet@{tmp_path / 'shape.safetensors'}")
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(TransferkitError, match="list.pth' holds a list, not a state dict of tensors"):
        create_backbone(f"timm:test_efficientnet@{tmp_path / 'list.pth'}")
    with pytest.raises(TransferkitError, match="is a folder, not a file"):
        create_backbone(f"timm:test_efficientnet@{tmp_path}")


def test_a_saved_model_refuses_a_timm_weights_file_replaced_since(tmp_path):
    weights = _tiny_weights(tmp_path / "w.safetensors", 0)
    images = (np.random.default_rng(0).random((8, 24, 24, 3)) * 255).astype(np.uint8)
    model = TransferClassifier(backbone=f"timm:test_efficientnet@{weights}", image_size=32, verbose=False)
    model.fit(images, np.array([0, 1] * 4))
    model.save(tmp_path / "model")
    assert TransferClassifier.load(tmp_path / "model").predict(images).shape == (8,)
    _tiny_weights(weights, 1)  # same path, other weights: the probe no longer fits its features
    with pytest.raises(TransferkitError, match="different weights"):
        TransferClassifier.load(tmp_path / "model")


def _minilm_copy(tmp_path, drop=()):
    folder = tmp_path / "minilm"
    source = create_backbone("minilm_l6.sentence").cfg.weights
    folder.mkdir()
    for name in os.listdir(source):
        if name not in drop and os.path.isfile(os.path.join(source, name)):
            (folder / name).symlink_to(os.path.join(source, name))  # 90 MB of weights: linked, not copied
    return folder


def test_an_hf_folder_without_its_vocabulary_is_refused_not_read_as_unknown_words(tmp_path):
    folder = _minilm_copy(tmp_path, drop=("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    with pytest.raises(TransferkitError, match="knows only its 5 special tokens"):
        create_backbone(f"hf:{folder}")


def test_an_hf_folder_with_damaged_files_is_one_clear_error_and_records_its_weights(tmp_path):
    folder = _minilm_copy(tmp_path)
    assert create_backbone(f"hf:{folder}").cfg.sha256 == create_backbone("minilm_l6.sentence").cfg.sha256
    (folder / "modules.json").unlink()
    (folder / "modules.json").write_text("{not json")
    with pytest.raises(TransferkitError, match="cannot read the model folder of hf:.*JSONDecodeError"):
        create_backbone(f"hf:{folder}")
    (folder / "modules.json").unlink()
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(TransferkitError, match="cannot load hf:.*SafetensorError"):
        create_backbone(f"hf:{folder}")


def test_predict_with_a_text_model_refuses_a_missing_file_or_a_folder(text_model, tmp_path, capsys):
    _assert_user_error(capsys, ["predict", text_model, str(tmp_path / "typo.txt")], "typo.txt' does not exist")
    _assert_user_error(capsys, ["predict", text_model, str(tmp_path)], "is a folder")
    (tmp_path / "UPPER.TXT").write_text("good lovely food\nawful rude service\n")
    status, out, err = _run(capsys, "predict", text_model, str(tmp_path / "UPPER.TXT"))
    assert status == 0 and [line.split("\t")[2] for line in out.splitlines()] == [
        "good lovely food",
        "awful rude service",
    ], err


def test_predict_reads_a_csv_column_named_with_text_column(text_model, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("id,review\n1,good lovely food\n2,awful rude service\n")
    _assert_user_error(capsys, ["predict", text_model, str(tmp_path / "new.csv")], "no column 'text'")
    status, out, err = _run(capsys, "predict", text_model, str(tmp_path / "new.csv"), "--text-column", "review")
    assert status == 0 and [line.split("\t")[2] for line in out.splitlines()] == [
        "good lovely food",
        "awful rude service",
    ], err
    _assert_user_error(capsys, ["predict", text_model, "good", "--text-column", "review"], "none was given")


def test_predict_prints_one_line_per_text_whatever_it_holds(text_model, capsys):
    status, out, err = _run(capsys, "predict", text_model, "good\tlovely\nfood", "awful")
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and [len(line.split("\t")) for line in lines] == [3, 3]
    assert lines[0].split("\t")[2] == "good\\tlovely\\nfood"


def test_predict_with_an_image_model_names_a_file_that_is_no_image(tmp_path, capsys):
    data = _shapes(tmp_path / "shapes")
    argv = ["fit", data, "--strategy", "classical", "--no-baseline", "--seeds", "1", "--out", str(tmp_path / "run")]
    status, _, err = _run(capsys, *argv)
    assert status == 0, err
    (tmp_path / "notes.txt").write_text("not a picture")
    _assert_user_error(capsys, ["predict", str(tmp_path / "run"), str(tmp_path / "notes.txt")], "notes.txt' is not an")


@pytest.mark.parametrize("command", ["extract", "export"])
def test_an_out_ending_in_a_separator_is_refused_not_written_as_a_file(command, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("good\nbad\n")
    source = str(tmp_path / "notes.txt") if command == "extract" else str(tmp_path / "no-model")
    _assert_user_error(capsys, [command, source, "--out", str(tmp_path / "feats") + os.sep], "names a folder")
    assert not (tmp_path / "feats").exists()


def test_export_refuses_a_probe_on_an_inner_layer_rather_than_feed_it_the_pooled_embedding(tmp_path):
    from transferkit.export import export_model

    texts = ["good lovely food", "great kind staff", "awful rude service", "terrible cold meal"]
    model = TransferClassifier(layer="layer.2", verbose=False).fit(texts, ["pos", "pos", "neg", "neg"])
    model.save(tmp_path / "model")
    with pytest.raises(TransferkitError, match="reads the features of layer 'layer.2'"):
        model.network()  # which export builds on
    with pytest.raises(TransferkitError, match="reads the features of layer 'layer.2'"):
        export_model(tmp_path / "model", tmp_path / "model.safetensors", format="safetensors")
    assert not (tmp_path / "model.safetensors").exists()
