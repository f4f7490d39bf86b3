"""LoRA via peft: what it adapts, that only the adapters and the head train, and saving both ways."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from transferkit import TransferClassifier
from transferkit.backbones.vision import TimmBackbone
from transferkit.errors import TransferkitError, UnknownNameError
from transferkit.strategies import get_strategy, strategy_from_dict
from transferkit.strategies.lora import LoRA, lora_targets
from transferkit.training import TrainConfig, TransferNetwork, train_network

IMAGE = "efficientnet_lite0.in1k"
TEXT = "minilm_l6.sentence"
SENTENCES = [
    "the food was wonderful and the staff friendly",
    "terrible service, cold food, never again",
    "great place, I will come back",
    "the worst meal I have had in years",
    "lovely atmosphere and tasty dishes",
    "rude waiter and a dirty table",
    "absolutely delicious, highly recommended",
    "overpriced and bland",
]
SENTIMENT = np.array([1, 0, 1, 0, 1, 0, 1, 0])


def _images(n=12, size=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 60, size=(n, size, size, 3)).astype(np.uint8)
    for i, label in enumerate(labels):  # a learnable signal: a bright stripe whose place gives the class
        images[i, :, 8 * label : 8 * label + 6] = 230
    return images, labels


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _is_adapter(key):
    return ".lora_A." in key or ".lora_B." in key


def _base_key(key):
    return key.replace(".base_layer.", ".")


@pytest.fixture(scope="module", autouse=True)
def _fresh_backbone_copies(backbone_factory):
    """``fit`` and ``load`` build a backbone each time; give them pristine copies of the session's instead.

    A copy is what ``create_backbone`` would return (same weights, same cfg), minus re-reading and
    re-hashing the weights file, which dominated these tests' time.
    """
    import transferkit.estimators

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transferkit.estimators, "create_backbone", lambda name: copy.deepcopy(backbone_factory(name)))
        yield


@pytest.fixture()
def lite0(backbone_factory):
    """A private copy: LoRA is injected into the backbone in place."""
    return copy.deepcopy(backbone_factory(IMAGE))


@pytest.fixture()
def minilm(backbone_factory):
    return copy.deepcopy(backbone_factory(TEXT))


# -- settings -------------------------------------------------------------------------------
def test_lora_is_registered_and_round_trips_through_json():
    strategy = get_strategy("lora", r=4, alpha=8, target=("query", "value"), save="merged")
    again = strategy_from_dict(json.loads(strategy.to_json()))
    assert again == strategy and isinstance(again, LoRA) and again.target == ("query", "value")
    assert LoRA().train_defaults("text")["lr"] == 5e-3 and LoRA().train_defaults("image")["lr"] == 1e-3


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"r": 0}, "'r' parameter of lora must be a positive int. Got 0"),
        ({"r": 2.5}, "'r' parameter"),
        ({"r": True}, "'r' parameter"),
        ({"alpha": 0}, "'alpha' parameter of lora must be a float > 0"),
        ({"dropout": 1.0}, "'dropout' parameter of lora must be None or a float in [0, 1)"),
        ({"dropout": -0.1}, "'dropout' parameter"),
        ({"save": "full"}, "'save' parameter of lora must be 'adapters' or 'merged'. Got 'full'"),
        ({"target": ()}, "'target' parameter of lora must be 'auto' or a non-empty tuple"),
        ({"target": "query"}, "'target' parameter"),
        ({"target": ("query", "")}, "'target' parameter"),
        ({"body_lr_scale": 0}, "'body_lr_scale'"),
    ],
)
def test_bad_settings_raise(params, fragment):
    with pytest.raises(TransferkitError) as info:
        LoRA(**params).validate()
    assert fragment in str(info.value)


def test_bad_setting_is_refused_by_the_estimator():
    with pytest.raises(TransferkitError, match="'r' parameter of lora"):
        TransferClassifier(IMAGE, strategy=LoRA(r=-1), verbose=False).fit(*_images(6))


# -- what is adapted ------------------------------------------------------------------------
def test_vision_targets_are_pointwise_convs_not_depthwise_nor_the_source_classifier(lite0):
    targets = lora_targets(lite0)
    modules = dict(lite0.model.named_modules())
    assert len(targets) == 32  # every conv_pw / conv_pwl of the 16 blocks (block 0 has no conv_pwl) and conv_head
    assert "conv_head" in targets and "classifier" not in targets
    for name in targets:
        assert isinstance(modules[name], nn.Conv2d) and modules[name].kernel_size == (1, 1)
        assert modules[name].groups == 1
    depthwise = [n for n, m in modules.items() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 16 and not set(depthwise) & set(targets)


def test_text_targets_are_the_attention_projections(minilm):
    targets = lora_targets(minilm)
    assert len(targets) == 6 * 4
    suffixes = {name.split(".", 3)[3] for name in targets}  # encoder.layer.<i>.<rest>
    assert suffixes == {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}


def test_named_targets_match_peft_style_suffixes(lite0, minilm):
    assert len(lora_targets(minilm, ("query", "value"))) == 12
    assert all(name.endswith(".conv_pwl") for name in lora_targets(lite0, ("conv_pwl",)))
    with pytest.raises(TransferkitError, match="grouped convolution"):
        lora_targets(lite0, ("conv_dw",))
    with pytest.raises(UnknownNameError, match="querry"):
        lora_targets(minilm, ("querry",))


def test_a_backbone_with_nothing_to_adapt_raises(lite0):
    bare = TimmBackbone.__new__(TimmBackbone)
    nn.Module.__init__(bare)
    bare.cfg = lite0.cfg
    bare.model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=8))  # a 3x3 and a depthwise conv
    with pytest.raises(TransferkitError, match="no module that lora can adapt"):
        lora_targets(bare)


# -- training -------------------------------------------------------------------------------
def _check_only_adapters_and_head_changed(network, before, after):
    adapters = [k for k in after if _is_adapter(k)]
    assert adapters
    changed = {k for k in after if k in before and not torch.equal(before[k], after[k])}
    assert {k for k in changed if not _is_adapter(k)} == {"head.weight", "head.bias"}
    assert any(k.endswith("lora_B.default.weight") for k in changed)
    base = [k for k in after if not _is_adapter(k) and not k.startswith("head.")]
    assert base
    for key in base:  # every base weight and every BatchNorm buffer: bitwise the same
        assert torch.equal(before[key], after[key]), key


def test_image_training_changes_only_adapters_and_head(lite0):
    network = TransferNetwork(lite0, 3)
    pristine = {k: v.clone() for k, v in network.state_dict().items()}
    strategy = LoRA()
    torch.manual_seed(0)
    strategy.prepare(network, None)
    before = _state(network)
    for key, value in pristine.items():  # injection keeps every pre-trained tensor (under base_layer)
        matches = [k for k in before if _base_key(k) == key]
        assert len(matches) == 1 and torch.equal(before[matches[0]], value)
    images, labels = _images()
    train_network(
        network,
        strategy,
        images,
        labels,
        config=TrainConfig(epochs=1, batch_size=4),
        preprocess=lite0.preprocessor(32),
        modality="image",
    )
    after = _state(network)
    _check_only_adapters_and_head_changed(network, before, after)
    assert any("running_mean" in k for k in after)
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    total = sum(p.numel() for p in network.parameters())
    assert trainable == 182_272 + 3 * 1280 + 3  # r * (c_in + c_out) over the 32 convs, and the head
    assert trainable / total < 0.05


def test_text_lora_trains_only_adapters_and_head_and_saves_them(minilm, tmp_path):
    pristine = _state(minilm)
    model = TransferClassifier(
        TEXT, strategy=LoRA(r=4), epochs=1, lr=1e-3, training={"batch_size": 4}, verbose=False
    ).fit(SENTENCES, SENTIMENT)
    network = model.network()
    after = {k: v for k, v in _state(network).items() if k.startswith("backbone.")}
    adapters = {k: v for k, v in after.items() if _is_adapter(k)}
    assert len(adapters) == 2 * 24
    assert all(v.abs().sum() > 0 for k, v in adapters.items() if ".lora_B." in k)  # B starts at zero: it trained
    base = {k[len("backbone.") :]: v for k, v in after.items() if not _is_adapter(k)}
    assert {_base_key(k) for k in base} == set(pristine)
    for key, value in base.items():  # every pre-trained weight: bitwise the same
        assert torch.equal(value, pristine[_base_key(key)]), key
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    total = sum(p.numel() for p in network.parameters())
    assert trainable == 24 * 4 * (384 + 384) + 2 * 384 + 2
    assert trainable / total < 0.01

    expected = model.predict_proba(SENTENCES)
    model.save(tmp_path / "text")
    loaded = TransferClassifier.load(tmp_path / "text")
    np.testing.assert_allclose(loaded.predict_proba(SENTENCES), expected, rtol=0, atol=1e-6)


# -- saving -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_images():
    X, y = _images()
    models = {
        save: TransferClassifier(IMAGE, strategy=LoRA(save=save), image_size=32, epochs=1, verbose=False).fit(X, y)
        for save in ("adapters", "merged")
    }
    return X, models


@pytest.mark.parametrize(("save", "atol"), [("adapters", 1e-6), ("merged", 1e-5)])
def test_image_save_load_gives_the_same_probabilities(fitted_images, tmp_path, save, atol):
    X, models = fitted_images
    model = models[save]
    expected = model.predict_proba(X)
    model.save(tmp_path / save)
    loaded = TransferClassifier.load(tmp_path / save)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=0, atol=atol)
    assert json.loads((tmp_path / save / "config.json").read_text())["model_config"]["lora_saved_as"] == save
    loaded.save(tmp_path / f"{save}-again")  # a loaded model saves the same way again
    again = TransferClassifier.load(tmp_path / f"{save}-again")
    np.testing.assert_allclose(again.predict_proba(X), expected, rtol=0, atol=atol)


def test_adapters_are_much_smaller_than_merged_weights(fitted_images, tmp_path):
    _, models = fitted_images
    sizes = {
        save: (model.save(tmp_path / save) / "weights.safetensors").stat().st_size for save, model in models.items()
    }
    assert sizes["adapters"] * 10 < sizes["merged"]


def test_merged_weights_load_into_a_plain_network(fitted_images, backbone_factory):
    X, models = fitted_images
    trained = models["merged"].network()
    state = trained.transferkit_save_state()
    assert not any(_is_adapter(k) or ".base_layer." in k for k in state)
    plain = TransferNetwork(copy.deepcopy(backbone_factory(IMAGE)), 3)
    plain.load_state_dict(state)  # strict: exactly a plain TransferNetwork's tensors
    x = models["merged"].preprocessor()(X)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), trained(x), rtol=0, atol=1e-5)


def test_loading_adapters_is_strict(fitted_images, lite0):
    _, models = fitted_images
    trained = models["adapters"].network()
    state = trained.transferkit_save_state()
    config = dict(trained.transferkit_config)
    dropped = dict(state)
    dropped.pop(next(k for k in state if _is_adapter(k)))
    with pytest.raises(TransferkitError, match="1 missing"):
        LoRA().restore_network(TransferNetwork(copy.deepcopy(lite0), 3), dropped, config)
    extra = {**state, "backbone.model.conv_stem.lora_A.weight": torch.zeros(1)}
    with pytest.raises(TransferkitError, match="1 unexpected"):
        LoRA().restore_network(TransferNetwork(lite0, 3), extra, config)
