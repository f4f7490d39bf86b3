"""Every fine-tuning strategy on every registered backbone: it trains, exactly the intended parameters
change, and save → load gives identical predictions."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from transferkit import TransferClassifier, get_strategy, list_backbones, list_strategies
from transferkit.backbones import backbone_cfg
from transferkit.training import TransferNetwork

TRAINABLE = [name for name in list_strategies() if getattr(get_strategy(name), "trains", False)]


def _data(modality: str):
    labels = np.array([0, 1, 2, 0, 1, 2])
    if modality == "text":
        texts = ["good food", "bad service", "so so", "great place", "awful meal", "it was fine"]
        return texts, labels
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(6, 20, 20, 3)).astype(np.uint8), labels


def _expected_groups(strategy_name: str, names: list[str]) -> list[str]:
    """Backbone groups whose parameters must move after two epochs of one step each."""
    body = [n for n in names if n != "head"]
    if strategy_name == "freeze":
        return body[len(body) // 2 :]
    if strategy_name == "gradual-unfreeze":
        return body[-1:]  # epoch 2 thaws the deepest group
    if strategy_name == "lora":
        return []  # the pre-trained weights stay; adapters train beside them
    return body


def test_every_fine_tuning_strategy_is_covered():
    assert {"finetune", "freeze", "lp-ft", "gradual-unfreeze", "l2sp"} <= set(TRAINABLE)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", list_backbones())
@pytest.mark.parametrize("strategy", TRAINABLE)
def test_strategy_trains_the_intended_parameters_and_round_trips(
    strategy, backbone, tmp_path, backbone_factory, monkeypatch
):
    # fresh copies of the session's backbones instead of reloading weights for every fit and load
    monkeypatch.setattr("transferkit.estimators.create_backbone", lambda name: copy.deepcopy(backbone_factory(name)))
    monkeypatch.setattr("transferkit._persistence.create_backbone", lambda name: copy.deepcopy(backbone_factory(name)))
    modality = backbone_cfg(backbone).modality
    X, y = _data(modality)
    model = TransferClassifier(
        backbone,
        strategy,
        image_size=32,
        epochs=2,
        training={"batch_size": 6, "lr": 1e-2},
        verbose=False,
    ).fit(X, y)
    network = model.model_
    assert isinstance(network, TransferNetwork)

    fresh = TransferNetwork(backbone_factory(backbone), 3)
    before = {k: v for k, v in fresh.state_dict().items() if not k.startswith("head.")}
    after = network.state_dict()
    name_of = {id(t): k for k, t in [*network.named_parameters(), *network.named_buffers()]}
    groups = dict(network.layer_groups())
    expected = _expected_groups(get_strategy(strategy).name, list(groups))
    allowed = {name_of[id(t)] for g in expected for m in groups[g] for t in [*m.parameters(), *m.buffers()]}
    changed = {k for k, v in before.items() if k in after and not torch.equal(v, after[k])}
    assert changed <= allowed, sorted(changed - allowed)[:5]
    for group in expected:  # every group meant to train did move
        keys = {name_of[id(p)] for m in groups[group] for p in m.parameters()}
        assert keys & changed, f"{strategy}: group {group} did not train"
    assert not torch.equal(fresh.head.weight, network.head.weight)

    probabilities = model.predict_proba(X)
    assert probabilities.shape == (6, 3) and np.allclose(probabilities.sum(axis=1), 1)
    model.save(tmp_path / "model")
    loaded = TransferClassifier.load(tmp_path / "model")
    assert np.allclose(loaded.predict_proba(X), probabilities, atol=1e-5)
    assert loaded.strategy_ == model.strategy_
