"""Exported ONNX graphs reproduce PyTorch's logits; safetensors exports restore the network."""

from __future__ import annotations

import copy
import json
import re
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from transferkit.errors import TransferkitError, UnknownNameError
from transferkit.estimators import TransferClassifier
from transferkit.export import check_onnx, export_model, export_onnx, export_safetensors
from transferkit.strategies import get_strategy
from transferkit.training.network import TransferNetwork

SIZE = 64
CLASSES = np.array(["cat", "dog", "fox"])


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _fake_classifier(network, preprocessor, modality):
    """What ``TransferClassifier.load`` returns, reduced to what export_model uses."""
    return SimpleNamespace(
        network=lambda: network,
        preprocessor=lambda: preprocessor,
        classes_=CLASSES,
        modality_=modality,
        strategy_=get_strategy("linear-probe"),
    )


@pytest.fixture(scope="module")
def image_net(backbone_factory):
    torch.manual_seed(0)
    return TransferNetwork(backbone_factory("efficientnet_lite0.in1k"), len(CLASSES)).eval()


@pytest.fixture(scope="module")
def image_onnx(image_net, tmp_path_factory):
    """Exported through export_model (traced on zeros of batch 2 at 64 px, checked there on batch 3)."""
    folder = tmp_path_factory.mktemp("image")
    fake = _fake_classifier(image_net, image_net.backbone.preprocessor(SIZE), "image")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransferClassifier, "load", staticmethod(lambda directory: fake))
        return export_model(folder, folder, format="onnx")


@pytest.fixture(scope="module")
def text_net(backbone_factory):
    torch.manual_seed(1)
    return TransferNetwork(backbone_factory("minilm_l6.sentence"), len(CLASSES)).eval()


@pytest.fixture(scope="module")
def text_onnx(text_net, tmp_path_factory):
    example = text_net.backbone.preprocessor()(["hello world", "a short example"])
    return export_onnx(text_net, "text", example, tmp_path_factory.mktemp("text") / "text.onnx")


def test_image_onnx_matches_pytorch_on_16_random_inputs(image_net, image_onnx):
    pixels = torch.randn(16, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))  # traced batch was 2
    (logits,) = _session(image_onnx).run(["logits"], {"pixels": pixels.numpy()})
    with torch.inference_mode():
        expected = image_net(pixels).numpy()
    assert logits.shape == (16, 3)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)
    assert check_onnx(image_onnx, image_net, pixels[:1]) <= 1e-4  # batch of one too


def test_image_onnx_has_one_dynamic_input_and_metadata(image_onnx):
    assert sorted(p.name for p in image_onnx.parent.iterdir()) == ["model.onnx"]  # no temp or .data files
    (pixels,) = _session(image_onnx).get_inputs()
    assert pixels.name == "pixels" and pixels.type == "tensor(float)"
    assert isinstance(pixels.shape[0], str) and pixels.shape[1:] == [3, SIZE, SIZE]
    assert [o.name for o in _session(image_onnx).get_outputs()] == ["logits"]
    props = {p.key: p.value for p in onnx.load(str(image_onnx)).metadata_props}
    assert json.loads(props["transferkit.classes"]) == CLASSES.tolist()
    preprocessing = json.loads(props["transferkit.preprocessing"])
    assert preprocessing["size"] == SIZE and preprocessing["mean"] == [0.5] * 3
    assert json.loads(props["transferkit.inputs"])["pixels"]["shape"] == ["batch", 3, SIZE, SIZE]
    assert props["transferkit.backbone"] == "efficientnet_lite0.in1k"


def test_check_onnx_raises_when_the_network_differs(image_net, image_onnx):
    torch.manual_seed(5)
    other = TransferNetwork(image_net.backbone, len(CLASSES)).eval()  # same body, another head
    with pytest.raises(TransferkitError, match="differs from PyTorch"):
        check_onnx(image_onnx, other, torch.zeros(2, 3, SIZE, SIZE))


def test_text_onnx_matches_pytorch_on_16_random_sentences(text_net, text_onnx):
    rng = np.random.default_rng(0)
    words = "the a fox river quietly jumped over lazy old dog bright morning tea paper".split()
    sentences = [" ".join(rng.choice(words, size=rng.integers(1, 15))) for _ in range(16)]
    inputs = text_net.backbone.preprocessor()(sentences)
    assert inputs["input_ids"].shape[1] > 6 and set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert check_onnx(text_onnx, text_net, inputs) <= 1e-4
    names = [i.name for i in _session(text_onnx).get_inputs()]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(isinstance(d, str) for i in _session(text_onnx).get_inputs() for d in i.shape)  # batch, sequence


def test_text_onnx_matches_pytorch_on_16_random_token_sequences(text_net, text_onnx):
    tokenizer = text_net.backbone.tokenizer
    rng = np.random.default_rng(1)
    batch, width = 16, 29
    ids = np.full((batch, width), tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros((batch, width), dtype=np.int64)
    for row, length in enumerate(rng.integers(3, width + 1, size=batch)):
        body = rng.integers(1000, tokenizer.vocab_size, size=length - 2)
        ids[row, :length] = [tokenizer.cls_token_id, *body, tokenizer.sep_token_id]
        mask[row, :length] = 1
    inputs = {k: torch.from_numpy(v) for k, v in (("input_ids", ids), ("attention_mask", mask))}
    inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
    (logits,) = _session(text_onnx).run(["logits"], {k: v.numpy() for k, v in inputs.items()})
    with torch.inference_mode():
        expected = text_net(inputs).numpy()
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_safetensors_export_restores_every_tensor(image_net, tmp_path):
    path = export_safetensors(image_net, tmp_path / "net.safetensors", {"classes": ["cat", "dog", "fox"], "size": 64})
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()["transferkit"]) == {"classes": ["cat", "dog", "fox"], "size": 64}
    state = load_file(str(path))
    assert state.keys() == image_net.state_dict().keys() and "head.weight" in state
    restored = copy.deepcopy(image_net)
    with torch.no_grad():
        for tensor in restored.state_dict().values():
            tensor.zero_()
    restored.load_state_dict(state)
    pixels = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        torch.testing.assert_close(restored(pixels), image_net(pixels), rtol=0, atol=0)


def test_export_model_safetensors_into_a_folder_keeps_metadata(image_net, tmp_path, monkeypatch):
    fake = _fake_classifier(image_net, image_net.backbone.preprocessor(SIZE), "image")
    monkeypatch.setattr(TransferClassifier, "load", staticmethod(lambda directory: fake))
    path = export_model(tmp_path, tmp_path, format="safetensors")
    assert path == tmp_path / "model.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["transferkit"])
    assert metadata["classes"] == CLASSES.tolist() and metadata["preprocessing"]["size"] == SIZE
    assert metadata["probabilities"].startswith("softmax")


@pytest.mark.parametrize("network", [None, "absent"])
def test_export_model_without_a_network_says_so(network, image_net, tmp_path, monkeypatch):
    fake = _fake_classifier(image_net, image_net.backbone.preprocessor(SIZE), "image")
    fake.strategy_ = get_strategy("scratch")
    if network is None:
        fake.network = lambda: None
    else:
        del fake.network
    monkeypatch.setattr(TransferClassifier, "load", staticmethod(lambda directory: fake))
    with pytest.raises(TransferkitError, match="no network to export.*'scratch'"):
        export_model(tmp_path, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_unknown_format_suggests_a_known_one(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown export format 'onxx'; did you mean 'onnx'"):
        export_model(tmp_path, tmp_path / "m.onnx", format="onxx")


def test_missing_or_invalid_model_folder_names_the_path(tmp_path):
    with pytest.raises(TransferkitError, match="no-such-model"):
        export_model(tmp_path / "no-such-model", tmp_path / "m.onnx")
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(TransferkitError, match="config.json"):
        export_model(tmp_path, tmp_path / "m.onnx")
    (tmp_path / "config.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(TransferkitError, match=re.escape(tmp_path.name)):
        export_model(tmp_path, tmp_path / "m.onnx")


def test_saved_linear_probe_exports_a_network_that_reproduces_predict_proba(backbone_factory, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, size=(18, 24, 24)).astype(np.uint8)
    images[:6, :, ::4] = 250  # vertical stripes
    images[6:12, ::4, :] = 250  # horizontal stripes
    labels = np.repeat(["vertical", "horizontal", "plain"], 6)
    model = TransferClassifier(image_size=SIZE, batch_size=9, verbose=False).fit(images, labels)
    path = export_model(model.save(tmp_path / "model"), tmp_path / "exported.safetensors", format="safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["transferkit"])
    assert metadata["classes"] == model.classes_.tolist() and metadata["backbone"] == "efficientnet_lite0.in1k"
    network = TransferNetwork(backbone_factory(metadata["backbone"]), len(metadata["classes"])).eval()
    network.load_state_dict(load_file(str(path)))  # strict: backbone and head, no pickle
    with torch.inference_mode():
        logits = network(model.preprocessor()(images))
    probabilities = torch.softmax(logits.double(), dim=1).numpy()
    np.testing.assert_allclose(probabilities, model.predict_proba(images), atol=1e-4)


@pytest.mark.parametrize(("method", "weight"), [("mmd", 1.0), ("msda", 1.0), ("msda", 0.0)])
def test_adaptation_on_features_exports_a_network_that_reproduces_predict_proba(method, weight, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, size=(16, 24, 24)).astype(np.uint8)
    images[:8, :, ::4] = 250  # vertical stripes
    labels = np.repeat(["vertical", "plain"], 8)
    target = np.clip(images.astype(int) + 60, 0, 255).astype(np.uint8)  # a brighter domain
    model = TransferClassifier(image_size=SIZE, adaptation=method, adaptation_weight=weight, verbose=False)
    model.set_params(adaptation_settings={"steps": 10, "bottleneck_dim": 16})
    model.fit(images, labels, X_target=target)
    with torch.inference_mode():
        logits = model.network()(model.preprocessor()(target))
    probabilities = torch.softmax(logits.double(), dim=1).numpy()
    np.testing.assert_allclose(probabilities, model.predict_proba(target), atol=1e-4)
    path = export_model(model.save(tmp_path / "model"), tmp_path / "m.onnx")  # checked against torch inside
    assert path.stat().st_size > 1_000_000


def test_saving_over_a_model_folder_warns_of_its_earlier_export(backbone_factory, tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 40, size=(12, 24, 24)).astype(np.uint8)
    images[:6, :, ::4] = 250  # vertical stripes
    labels = np.repeat(["vertical", "plain"], 6)
    folder = TransferClassifier(image_size=SIZE, verbose=False).fit(images, labels).save(tmp_path / "model")
    export_model(folder, folder, format="safetensors")
    with pytest.warns(UserWarning, match=r"model\.safetensors.*no longer matches"):
        TransferClassifier(image_size=SIZE, verbose=False).fit(images[::-1], labels).save(folder)
    assert (folder / "model.safetensors").exists()  # warned about, not deleted: nothing is lost
