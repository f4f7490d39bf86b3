"""The one training loop: settings, schedules, determinism, checkpoints, and each strategy's promises."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from transferkit.errors import TransferkitError, UnknownNameError
from transferkit.strategies import L2SP, LPFT, FineTune, Freeze, GradualUnfreeze, get_strategy
from transferkit.strategies.finetune import TrainContext, _probe_head
from transferkit.training import (
    TrainConfig,
    TransferNetwork,
    load_checkpoint,
    save_checkpoint,
    train_network,
    validation_split,
)
from transferkit.training.augment import random_resized_crop
from transferkit.training.loop import _lr_factor

IMAGE = "efficientnet_lite0.in1k"


@pytest.fixture()
def lite0(backbone_factory):
    """A private copy: training changes the backbone in place."""
    return copy.deepcopy(backbone_factory(IMAGE))


def _images(n=12, size=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 60, size=(n, size, size, 3)).astype(np.uint8)
    for i, label in enumerate(labels):  # a learnable signal: a bright stripe whose place gives the class
        images[i, :, 4 * label : 4 * label + 3] = 230
    return images, labels


def _train(network, strategy, config=None, **kwargs):
    images, labels = _images()
    config = config or TrainConfig(epochs=2, batch_size=4, lr=1e-3)
    return train_network(
        network,
        strategy,
        images,
        labels,
        config=config,
        preprocess=network.backbone.preprocessor(32),
        modality="image",
        **kwargs,
    )


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


# -- settings -------------------------------------------------------------------------------
def test_train_config_round_trips_through_json():
    config = TrainConfig(epochs=3, lr=0.01, optimizer="sgd", crop_scale=(0.5, 0.9), patience=2, val_fraction=0.25)
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"lr": -3}, "'lr' training setting must be a float in (0, 1]. Got -3"),
        ({"epochs": 0}, "'epochs'"),
        ({"optimizer": "adam"}, "'optimizer'"),
        ({"schedule": "linear"}, "'schedule'"),
        ({"patience": 2}, "needs a validation split"),
        ({"crop_scale": (0.9, 0.5)}, "'crop_scale'"),
        ({"batchnorm": "frozen"}, "'batchnorm'"),
    ],
)
def test_bad_training_settings_are_named(changes, fragment):
    with pytest.raises(TransferkitError, match=None) as error:
        TrainConfig().replace(**changes).validate()
    assert fragment in str(error.value)


def test_unknown_training_setting_is_refused():
    with pytest.raises(TransferkitError, match="unknown training setting 'lrate'"):
        TrainConfig().replace(lrate=0.1)


def test_warmup_then_cosine_schedule():
    factor = _lr_factor(TrainConfig(epochs=10, warmup_epochs=1, schedule="cosine"), steps_per_epoch=10)
    assert factor(0) == pytest.approx(1 / 11)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5)
    assert factor(99) < 0.01
    values = [factor(step) for step in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_onecycle_schedule_rises_then_falls():
    factor = _lr_factor(TrainConfig(epochs=10, schedule="onecycle"), steps_per_epoch=10)
    assert factor(0) < 0.1 and factor(30) == pytest.approx(1.0) and factor(99) < 0.01


def test_validation_split_is_stratified_disjoint_and_keeps_every_class():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 1)
    train, val = validation_split(labels, 0.2, seed=0)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(labels)
    assert sorted(np.bincount(labels[val], minlength=3)) == [0, 2, 2]
    assert set(labels[train]) == {0, 1, 2}
    again_train, _ = validation_split(labels, 0.2, seed=0)
    assert np.array_equal(train, again_train)


def test_random_resized_crop_is_seeded_and_full_scale_without_flip_is_identity():
    images = torch.randn(5, 3, 16, 16)
    a = random_resized_crop(images, torch.Generator().manual_seed(1))
    b = random_resized_crop(images, torch.Generator().manual_seed(1))
    c = random_resized_crop(images, torch.Generator().manual_seed(2))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, c)
    same = random_resized_crop(images, torch.Generator().manual_seed(1), scale=(1, 1), ratio=(1, 1), hflip=False)
    assert torch.allclose(same, images, atol=1e-5)


# -- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_round_trip_is_exact_and_leaves_no_temporary_files(tmp_path):
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    save_checkpoint(
        tmp_path,
        epoch=0,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        scheduler_state={"last_epoch": 3},
        meta={"note": "x"},
    )
    save_checkpoint(
        tmp_path,
        epoch=1,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        scheduler_state={"last_epoch": 4},
    )
    found = load_checkpoint(tmp_path)
    assert found["epoch"] == 1 and found["scheduler_state"] == {"last_epoch": 4}
    for key, value in model.state_dict().items():
        assert torch.equal(found["model_state"][key], value)
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=0.1)
    fresh.load_state_dict(found["optimizer_state"])
    for a, b in zip(fresh.state_dict()["state"].values(), optimizer.state_dict()["state"].values()):
        assert all(torch.equal(a[key], b[key]) for key in b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "state-0001.safetensors"]
    assert not any(b"pickle" in p.read_bytes()[:200] for p in tmp_path.iterdir())


def test_missing_checkpoint_is_none_and_damaged_index_is_an_error(tmp_path):
    assert load_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(TransferkitError, match="not valid JSON"):
        load_checkpoint(tmp_path)


def _tiny_run(checkpoint_dir, *, resume=False, epochs=2, **kwargs):
    """Two epochs of a 3-4-2 mlp on 24 vectors: a real checkpoint in milliseconds."""
    from transferkit.backbones.native import build_native, native_cfg

    rng = np.random.default_rng(0)
    inputs, labels = rng.normal(size=(24, 3)).astype(np.float32), np.arange(24) % 2
    backbone = build_native(native_cfg("mlp", name="n", in_features=3, hidden=(4,)), seed=0)
    return train_network(
        TransferNetwork(backbone, 2),
        FineTune(),
        inputs,
        labels,
        config=TrainConfig(epochs=epochs, batch_size=8, lr=1e-3),
        preprocess=backbone.preprocessor(),
        modality="tabular",
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        **kwargs,
    )


def _edit_index(**changes):
    def edit(folder):
        index = json.loads((folder / "checkpoint.json").read_text())
        for key, value in changes.items():
            if value is None:
                del index[key]
            else:
                index[key] = value
        (folder / "checkpoint.json").write_text(json.dumps(index))

    return edit


def _truncate_state(folder):
    state = folder / "state-0001.safetensors"
    state.write_bytes(state.read_bytes()[:50])


def _drop_model_tensors(folder):
    from safetensors.torch import load_file, save_file

    state = folder / "state-0001.safetensors"
    save_file({k: v for k, v in load_file(str(state)).items() if not k.startswith("model.")}, str(state))


def _damage_history(folder):
    index = json.loads((folder / "checkpoint.json").read_text())
    index["meta"]["history"] = index["meta"]["history"][:1]
    (folder / "checkpoint.json").write_text(json.dumps(index))


def _damage_best(folder):
    index = json.loads((folder / "checkpoint.json").read_text())
    index["meta"]["best"]["accuracy"] = "high"
    (folder / "checkpoint.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate_state, r"state-0001.safetensors' cannot be read \(.*\); it is damaged"),
        (lambda folder: (folder / "checkpoint.json").write_text("[1]"), r"holds \[1\]; expected a JSON object"),
        (lambda folder: (folder / "checkpoint.json").write_bytes(b'{"epoch": "\xff"}'), "is not UTF-8 text"),
        (_edit_index(state_file="../../other/weights.safetensors"), "expected a plain file name inside"),
        (_edit_index(state_file="..\\weights.safetensors"), "expected a plain file name inside"),
        (_edit_index(optimizer=None), "has no 'optimizer' field; it is damaged"),
        (_edit_index(rng={"numpy": "x"}), "has 'rng' = .*; it is damaged"),
        (_edit_index(epoch="one"), "has 'epoch' = \"one\"; it is damaged .*an int >= 0"),
        (_edit_index(epoch=-5), "has 'epoch' = -5"),
        (_edit_index(epoch=99999), "says epoch 100000 is done, but this run has 2 epochs"),
        (_edit_index(scheduler=[1]), "has 'scheduler' = \\[1\\]"),
        (_damage_history, "history, best epoch or schedule position do not match epoch 2"),
        (_damage_best, "history, best epoch or schedule position do not match epoch 2"),
        (_drop_model_tensors, "lacks the tensors model"),
    ],
    ids=[
        "truncated-state",
        "index-not-an-object",
        "index-not-utf8",
        "state-file-outside",
        "state-file-backslash",
        "no-optimizer",
        "bad-rng",
        "epoch-not-int",
        "negative-epoch",
        "epoch-past-the-run",
        "bad-scheduler",
        "short-history",
        "best-accuracy-not-a-number",
        "no-model-tensors",
    ],
)
def test_a_damaged_checkpoint_is_refused_naming_its_file(tmp_path, damage, message):
    folder = tmp_path / "run"
    _tiny_run(folder)
    outside = tmp_path / "other"  # a readable state file where the edited index points: still refused
    outside.mkdir()
    (outside / "weights.safetensors").write_bytes((folder / "state-0001.safetensors").read_bytes())
    damage(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(TransferkitError, match=message) as error:
        _tiny_run(folder, resume=True)
    assert str(folder) in str(error.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "a refused resume must not touch the folder"


def test_the_checks_on_a_checkpoint_pass_a_sound_one(tmp_path):
    whole = _tiny_run(tmp_path / "whole", epochs=3)
    steps = {"n": 0}

    def crash_in_epoch_two(network, x, logits, y):
        steps["n"] += 1
        if steps["n"] == 4:  # 3 steps per epoch
            raise KeyboardInterrupt
        return logits.sum() * 0

    with pytest.raises(KeyboardInterrupt):
        _tiny_run(tmp_path / "parts", epochs=3, extra_loss=crash_in_epoch_two)
    resumed = _tiny_run(tmp_path / "parts", resume=True, epochs=3)
    assert resumed.resumed_from == 0
    assert [epoch["loss"] for epoch in resumed.history] == [epoch["loss"] for epoch in whole.history]
    done = _tiny_run(tmp_path / "parts", resume=True, epochs=3)  # every epoch done: nothing left to train
    assert done.resumed_from == 2 and len(done.history) == 3


# -- the loop -----------------------------------------------------------------------------------
def test_training_is_deterministic_for_a_seed(backbone_factory):
    states = []
    for seed in (0, 0, 1):
        network = TransferNetwork(copy.deepcopy(backbone_factory(IMAGE)), 3)
        torch.manual_seed(123)  # same head initialisation for all three
        network.head.reset_parameters()
        _train(network, FineTune(), TrainConfig(epochs=1, batch_size=4, seed=seed))
        states.append(_state(network))
    assert not _changed(states[0], states[1])
    assert _changed(states[0], states[2])


def test_interrupted_run_resumes_to_the_same_weights(backbone_factory, tmp_path):
    config = TrainConfig(epochs=3, batch_size=4, lr=1e-3)

    def fresh():
        network = TransferNetwork(copy.deepcopy(backbone_factory(IMAGE)), 3)
        torch.manual_seed(5)
        network.head.reset_parameters()
        return network

    reference = fresh()
    _train(reference, FineTune(), config)

    calls = {"n": 0}

    def crash_in_epoch_two(network, x, logits, y):
        calls["n"] += 1
        if calls["n"] == 5:  # 3 steps per epoch: step 2 of epoch 2
            raise KeyboardInterrupt
        return logits.sum() * 0

    with pytest.raises(KeyboardInterrupt):
        _train(fresh(), FineTune(), config, checkpoint_dir=tmp_path, extra_loss=crash_in_epoch_two)
    assert load_checkpoint(tmp_path)["epoch"] == 0
    with pytest.raises(TransferkitError, match="already holds a checkpoint"):
        _train(fresh(), FineTune(), config, checkpoint_dir=tmp_path)
    with pytest.raises(TransferkitError, match="different run"):
        _train(fresh(), FineTune(), config.replace(lr=2e-3), checkpoint_dir=tmp_path, resume=True)
    resumed = fresh()
    result = _train(resumed, FineTune(), config, checkpoint_dir=tmp_path, resume=True)
    assert result.resumed_from == 0 and len(result.history) == 3
    assert not _changed(_state(reference), _state(resumed))


def test_resume_with_no_checkpoint_yet_warns_and_trains_from_the_start(backbone_factory, tmp_path):
    network = TransferNetwork(copy.deepcopy(backbone_factory(IMAGE)), 3)
    with pytest.warns(UserWarning, match="holds no checkpoint yet"):
        result = _train(network, FineTune(), TrainConfig(epochs=1, batch_size=4), checkpoint_dir=tmp_path, resume=True)
    assert result.resumed_from is None and len(result.history) == 1
    assert load_checkpoint(tmp_path)["epoch"] == 0


def test_early_stopping_restores_the_best_epoch(lite0):
    network = TransferNetwork(lite0, 3)
    config = TrainConfig(epochs=6, batch_size=4, lr=0.3, val_fraction=0.34, patience=1, optimizer="sgd")
    result = _train(network, FineTune(), config)
    accuracies = [h["val_accuracy"] for h in result.history]
    assert all(a is not None for a in accuracies)
    assert result.best_epoch == int(np.argmax(accuracies))
    assert result.stopped_early == (len(result.history) < 6)


def test_training_learns_a_visible_signal(lite0):
    network = TransferNetwork(lite0, 3)
    result = _train(network, FineTune(), TrainConfig(epochs=6, batch_size=4, lr=3e-3, augment=False))
    assert result.history[-1]["loss"] < result.history[0]["loss"]


# -- strategies ---------------------------------------------------------------------------------
def test_freeze_leaves_frozen_groups_parameters_and_batchnorm_buffers_bitwise_unchanged(lite0):
    network = TransferNetwork(lite0, 3)
    groups = network.layer_groups()
    before = _state(network)
    # batchnorm="train" would update running statistics: frozen groups must still keep theirs
    _train(network, Freeze(freeze_until=3), TrainConfig(epochs=1, batch_size=4, batchnorm="train"))
    after = _state(network)
    frozen_names = [name for name, _ in groups[:3]]
    prefix = {id(p): n for n, p in network.named_parameters()}
    prefix.update({id(b): n for n, b in network.named_buffers()})
    frozen_keys = {prefix[id(t)] for _, modules in groups[:3] for m in modules for t in [*m.parameters(), *m.buffers()]}
    assert frozen_keys and any("running_mean" in key for key in frozen_keys)
    assert not (_changed(before, after) & frozen_keys), frozen_names
    trained_keys = {prefix[id(p)] for _, modules in groups[3:] for m in modules for p in m.parameters()}
    assert _changed(before, after) & trained_keys
    assert any("running_mean" in key for key in _changed(before, after))  # trainable groups' BN did update


def test_freeze_until_accepts_a_group_name_or_count_and_refuses_unknown_names(lite0):
    names = [name for name, _ in TransferNetwork(lite0, 3).layer_groups()]
    assert Freeze(freeze_until=names[2]).frozen_names(names) == names[:3]
    assert Freeze(freeze_until=2).frozen_names(names) == names[:2]
    assert Freeze(freeze_until="2").frozen_names(names) == names[:2]
    assert Freeze().frozen_names(names) == names[: (len(names) - 1) // 2]
    with pytest.raises(UnknownNameError, match="did you mean"):
        Freeze(freeze_until="block.3").frozen_names(names)
    with pytest.raises(TransferkitError, match="count in"):
        Freeze(freeze_until=99).frozen_names(names)


def test_lr_decay_gives_each_group_the_rate_decayed_from_the_head(lite0):
    network = TransferNetwork(lite0, 3)
    groups = FineTune(lr_decay=0.5, body_lr_scale=1.0).apply(network)
    assert groups[-1]["name"] == "head" and groups[-1]["lr_scale"] == 1.0
    depth = len(groups) - 1
    for position, group in enumerate(groups[:-1]):
        assert group["lr_scale"] == pytest.approx(0.5 ** (depth - position))


def test_gradual_unfreeze_trains_the_head_first_then_one_more_group_per_epoch(lite0):
    network = TransferNetwork(lite0, 3)
    strategy = GradualUnfreeze()
    names = [name for name, _ in network.layer_groups()]
    strategy.apply(network)

    def trainable():
        groups = network.layer_groups()
        return [n for n, ms in groups if any(p.requires_grad for m in ms for p in m.parameters())]

    strategy.on_epoch(0, network)
    assert trainable() == ["head"]
    strategy.on_epoch(1, network)
    assert trainable() == names[-2:]
    strategy.on_epoch(3, network)
    assert trainable() == names[-4:]
    before = _state(network)
    _train(network, strategy, TrainConfig(epochs=1, batch_size=4))
    changed = _changed(before, _state(network))
    assert changed and all(key.startswith("head.") for key in changed)


def test_l2sp_penalty_is_zero_at_initialisation_and_grows_with_distance(lite0):
    network = TransferNetwork(lite0, 3)
    strategy = L2SP(alpha=0.1, beta=0.01)
    strategy.prepare(network, context=None)
    groups = strategy.apply(network)
    assert all(group["weight_decay"] == 0.0 for group in groups)
    assert strategy.penalty(network).item() == 0.0
    with torch.no_grad():
        parameter = next(network.backbone.parameters())
        parameter.add_(1.0)
    expected = 0.1 / 2 * parameter.numel()
    assert strategy.penalty(network).item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        network.head.weight.fill_(2.0)
    assert strategy.penalty(network).item() == pytest.approx(expected + 0.01 / 2 * 4 * network.head.weight.numel())


def test_lp_ft_starts_from_the_linear_probe(lite0):
    from transferkit.features import extract_features
    from transferkit.strategies import ProbeHead

    images, labels = _images()
    network = TransferNetwork(lite0, 3)
    features = extract_features(lite0, images, image_size=32, cache=False).features
    context = TrainContext(features=lambda: features, labels=labels, n_classes=3, modality="image")
    LPFT().prepare(network, context)
    probe = ProbeHead().fit(features, labels)
    with torch.no_grad():
        logits = network(lite0.preprocessor(32)(images)).numpy()
    assert np.allclose(logits, probe.decision_function(features), atol=1e-3)


def test_lp_ft_with_label_descriptions_starts_from_the_prior_head():
    from transferkit.strategies.label_prior import DescriptionPriorHead

    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(2, 8))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    labels = np.array([0, 1] * 4)
    features = prototypes[labels] + 0.3 * rng.normal(size=(8, 8))
    features /= np.linalg.norm(features, axis=1, keepdims=True)  # a normalising backbone's output
    head = torch.nn.Linear(8, 2)
    context = TrainContext(
        features=lambda: features, labels=labels, n_classes=2, modality="text", prototypes=prototypes
    )
    weight, bias = _probe_head(context, normalized=True)
    head.weight.data, head.bias.data = weight, bias
    prior = DescriptionPriorHead().fit(features, labels, prototypes)
    with torch.no_grad():
        logits = head(torch.as_tensor(features, dtype=torch.float32)).numpy()
    assert np.allclose(logits, prior.decision_function(features), atol=1e-4)


@pytest.mark.parametrize("name", ["finetune", "freeze", "lp-ft", "gradual-unfreeze", "l2sp"])
def test_strategies_round_trip_through_json_and_refuse_bad_settings(name):
    from transferkit.strategies import strategy_from_dict

    strategy = get_strategy(name, lr_decay=0.5)
    assert strategy_from_dict(json.loads(strategy.to_json())) == strategy
    with pytest.raises(TransferkitError, match="'lr_decay' parameter"):
        get_strategy(name, lr_decay=2.0)  # refused when made, not at the end of a feature extraction
