"""Train to reuse: native architectures, every kind of zoo entry, source pre-training, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transferkit.backbones import create_backbone
from transferkit.backbones.native import VectorPreprocessor, build_native, native_cfg
from transferkit.backbones.zoo import list_zoo, save_to_zoo
from transferkit.cli import main
from transferkit.data import load_dataset
from transferkit.errors import DataError, TransferkitError, UnknownNameError
from transferkit.pretraining.source import pretrain_supervised
from transferkit.selection.rank import candidate_backbones

NATIVE = {
    "small-cnn image": dict(arch="small-cnn", input_size=(1, 12, 12), num_source_classes=4),
    "mlp image": dict(arch="mlp", input_size=(3, 6, 6), hidden=(16, 8), num_source_classes=3),
    "mlp vectors": dict(
        arch="mlp", in_features=5, hidden=(7,), activation="sigmoid", standardize=([0.0] * 5, [2.0] * 5)
    ),
}


def _raw(cfg, n=4):
    if cfg.modality == "tabular":
        return np.random.default_rng(0).normal(size=(n, cfg.extra["in_features"])).astype(np.float32)
    channels, size, _ = cfg.input_size
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return (np.random.default_rng(0).random(shape) * 255).astype(np.uint8)


@pytest.mark.parametrize("kind", NATIVE)
def test_native_backbones_follow_the_backbone_contract(kind):
    backbone = build_native(native_cfg(name="n", **NATIVE[kind]), seed=0).eval()
    cfg = backbone.cfg
    x = backbone.preprocessor()(_raw(cfg))
    with torch.inference_mode():
        features = backbone.forward_features(x)
        assert features.shape == (4, cfg.feature_dim) and torch.isfinite(features).all()
        layers = backbone.feature_layers()
        assert torch.equal(backbone.forward_layer(x, layers[-1]), features)
        assert backbone.forward_layer(x, layers[0]).shape[0] == 4
        if cfg.num_source_classes:
            assert backbone.source_logits(x).shape == (4, cfg.num_source_classes)
    groups = backbone.layer_groups()
    seen = [id(p) for _, modules in groups for m in modules for p in m.parameters()]
    assert len(seen) == len(set(seen)) and set(seen) == {id(p) for p in backbone.parameters()}
    position = {id(p): i for i, p in enumerate(backbone.parameters())}
    firsts = [min(position[id(p)] for m in modules for p in m.parameters()) for _, modules in groups]
    assert firsts == sorted(firsts)
    assert (groups[-1][0] == "classifier") == bool(cfg.num_source_classes)


def test_native_init_is_seeded_and_leaves_the_global_rng_alone():
    cfg = native_cfg("small-cnn", name="n", input_size=(1, 8, 8))
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a, b = build_native(cfg, seed=1), build_native(cfg, seed=1)
    assert torch.equal(torch.rand(1), expected)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_native(cfg, seed=2)
    assert not torch.equal(a.stages["stem"][0].weight, c.stages["stem"][0].weight)


def test_native_shapes_and_inputs_are_checked():
    with pytest.raises(UnknownNameError, match="did you mean 'small-cnn'"):
        native_cfg("small_cnn", name="n", input_size=(1, 8, 8))
    with pytest.raises(TransferkitError, match="exactly one of"):
        native_cfg("mlp", name="n")
    with pytest.raises(TransferkitError, match="feature vectors need --arch mlp"):
        native_cfg("small-cnn", name="n", in_features=4)
    with pytest.raises(TransferkitError, match="activation"):
        native_cfg("mlp", name="n", in_features=4, activation="tanh")
    mlp = build_native(native_cfg("mlp", name="n", input_size=(1, 8, 8), hidden=(4,)))
    with pytest.raises(TransferkitError, match="image_size=16"):
        mlp.preprocessor(image_size=16)
    with pytest.raises(DataError, match=r"\(N, 5\); got \(2, 3\)"):
        VectorPreprocessor(5)(np.zeros((2, 3)))
    standardized = VectorPreprocessor(2, [1.0, 2.0], [2.0, 4.0])(np.array([[3.0, 2.0]]))
    assert torch.allclose(standardized, torch.tensor([[1.0, 0.0]]))


@pytest.mark.parametrize("kind", NATIVE)
def test_native_zoo_round_trip_gives_the_same_outputs(zoo_home, kind):
    backbone = build_native(native_cfg(name="n", **NATIVE[kind]), seed=3).eval()
    save_to_zoo(backbone, "native-1", provenance={"data": "synthetic", "arch": backbone.cfg.arch})
    loaded = create_backbone("zoo:native-1")
    assert type(loaded) is type(backbone) and loaded.cfg.sha256 and not loaded.training
    x = backbone.preprocessor()(_raw(backbone.cfg))
    loaded_x = loaded.preprocessor()(_raw(backbone.cfg))
    with torch.inference_mode():
        assert torch.equal(loaded.forward_features(loaded_x), backbone.forward_features(x))
        if backbone.cfg.num_source_classes:
            assert torch.equal(loaded.source_logits(loaded_x), backbone.source_logits(x))
    assert loaded.cfg.extra == backbone.cfg.extra
    assert "zoo:native-1" in candidate_backbones(backbone.cfg.modality)


def test_text_encoders_go_to_the_zoo_as_hugging_face_folders(zoo_home, backbone_factory):
    from transformers import BertConfig, BertModel

    from transferkit.backbones.text import TransformerBackbone

    minilm = backbone_factory("minilm_l6.sentence")
    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=minilm.tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        ),
        add_pooling_layer=False,
    ).eval()
    cfg = minilm.cfg.__class__.from_dict(
        {**minilm.cfg.to_dict(), "name": "tiny-text", "feature_dim": 16, "sha256": None}
    )
    tiny = TransformerBackbone(cfg, encoder, minilm.tokenizer)
    folder = save_to_zoo(tiny, "tiny-text")
    assert (folder / "model" / "model.safetensors").is_file() and (folder / "model" / "tokenizer.json").is_file()
    loaded = create_backbone("zoo:tiny-text")
    batch = loaded.preprocessor()(["a good film", "a dull, long film"])
    with torch.inference_mode():
        assert torch.allclose(loaded.forward_features(batch), tiny.forward_features(batch), atol=1e-6)
    assert loaded.cfg.modality == "text" and "zoo:tiny-text" in candidate_backbones("text")


def test_a_zoo_entry_of_unknown_kind_is_refused(zoo_home):
    folder = save_to_zoo(build_native(native_cfg("mlp", name="n", in_features=3, hidden=(2,))), "odd")
    index = json.loads((folder / "backbone.json").read_text())
    (folder / "backbone.json").write_text(json.dumps({**index, "kind": "onnx"}))
    with pytest.raises(TransferkitError, match="unknown kind 'onnx'"):
        create_backbone("zoo:odd")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_supervised_pretraining_learns_the_source_and_keeps_its_head(zoo_home, digits):
    train, test = digits.train, digits.test
    names = np.asarray(train.classes)[train.labels]
    result = pretrain_supervised(train.inputs, names, "digits-cnn", epochs=3, data_name="digits", verbose=False)
    provenance = result.provenance
    assert result.name == "zoo:digits-cnn" and provenance["accuracy"] > 0.6  # 10 classes: chance is 0.1
    assert provenance["n_holdout"] == pytest.approx(0.1 * len(names), abs=1) and provenance["epochs"] == 3
    assert provenance["classes"] == list(train.classes) and provenance["data"] == "digits"
    assert provenance["loss_per_epoch"][-1] < provenance["loss_per_epoch"][0]
    loaded = create_backbone("zoo:digits-cnn")
    assert loaded.cfg.num_source_classes == 10 and loaded.cfg.input_size == (1, 8, 8)
    with torch.inference_mode():
        logits = loaded.source_logits(loaded.preprocessor()(test.inputs))
    assert (logits.argmax(1).numpy() == test.labels).mean() > 0.6  # the stored head is the trained one
    entry = {e["name"]: e for e in list_zoo()}["zoo:digits-cnn"]
    assert entry["provenance"]["accuracy"] == provenance["accuracy"]
    with pytest.raises(TransferkitError, match="already exists"):
        pretrain_supervised(train.inputs, names, "digits-cnn", epochs=1, verbose=False)


def test_vectors_pretrain_an_mlp_that_standardises_them(zoo_home):
    rng = np.random.default_rng(0)
    X = rng.normal(loc=5.0, scale=3.0, size=(300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 10).astype(int)
    result = pretrain_supervised(X, y, "vec", arch="mlp", hidden=(16,), epochs=30, batch_size=16, verbose=False)
    assert result.backbone.cfg.modality == "tabular" and result.provenance["accuracy"] > 0.8
    mean, std = result.backbone.cfg.extra["standardize"]
    assert np.allclose(mean, X.mean(axis=0), atol=1e-4) and np.allclose(std, X.std(axis=0), atol=1e-4)
    with pytest.raises(DataError, match="one class"):
        pretrain_supervised(X, np.zeros(300), "vec2", arch="mlp", verbose=False)
    with pytest.raises(TransferkitError, match="for text fine-tune a text backbone"):
        pretrain_supervised(["good", "bad"] * 5, [1, 0] * 5, "text", verbose=False)
    with pytest.raises(UnknownNameError, match="architecture"):
        pretrain_supervised(X, y, "x", arch="resnet9000", verbose=False)
    with pytest.raises(TransferkitError, match="holdout"):
        pretrain_supervised(X, y, "x", arch="mlp", holdout=1.5, verbose=False)


def test_a_pretrained_backbone_is_fine_tuned_on_the_source_and_stored_with_its_new_head(
    zoo_home, tiny_backbone, tmp_path
):
    from safetensors.torch import save_file

    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_backbone().model.state_dict().items()}, str(weights))
    rng = np.random.default_rng(0)
    X = (rng.random((60, 16, 16, 3)) * 255).astype(np.uint8)
    y = np.repeat([0, 1, 2], 20)
    X[y == 1, :8] = 255  # a visible cue per class
    X[y == 2, 8:] = 0
    result = pretrain_supervised(
        X, y, "tiny-ft", arch=f"timm:test_efficientnet@{weights}", epochs=2, image_size=32, verbose=False
    )
    assert result.provenance["from_backbone"]["name"].startswith("timm:test_efficientnet")
    loaded = create_backbone("zoo:tiny-ft")
    assert loaded.cfg.num_source_classes == 3 and loaded.cfg.input_size == (3, 32, 32)
    with torch.inference_mode():
        x = loaded.preprocessor()(X[:4])
        assert loaded.source_logits(x).shape == (4, 3)
        assert torch.allclose(loaded.source_logits(x), result.backbone.source_logits(x), atol=1e-5)


def test_cli_pretrain_stores_an_entry_that_fit_and_list_use(zoo_home, capsys):
    assert main(["pretrain", "digits", "--out", "cli-cnn", "--epochs", "1", "--max-examples", "400", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "zoo:cli-cnn: small-cnn (supervised) trained on 360 examples of digits" in out
    assert "--backbone zoo:cli-cnn" in out
    assert "fine-tuning it defaults to body_lr_scale 1.0, batchnorm train, hflip False, epochs 80" in out
    assert main(["list", "--json"]) == 0
    listed = {b["name"]: b for b in json.loads(capsys.readouterr().out)["backbones"]}
    assert listed["zoo:cli-cnn"]["weights"].startswith("zoo: digits (small-cnn, supervised, source accuracy")
    assert listed["zoo:cli-cnn"]["fine_tuning"]["epochs"] == 80
    code = main(["fit", "digits", "--backbone", "zoo:cli-cnn", "--labels-per-class", "3", "--seeds", "1", "--quiet"])
    assert code == 0 and "linear-probe (zoo:cli-cnn)" in capsys.readouterr().out
    # the entry's own defaults give BENCHMARKS.md's recipe for a small CNN (target BatchNorm statistics, no
    # flips); a setting on the command line replaces them
    common = [
        "--strategy",
        "l2sp",
        "--epochs",
        "1",
        "--labels-per-class",
        "3",
        "--seeds",
        "1",
        "--no-baseline",
        "--quiet",
    ]
    for extra, batchnorm in (([], "train"), (["--batchnorm", "eval"], "eval")):
        report = zoo_home / f"r-{batchnorm}.json"
        code = main(["fit", "digits", "--backbone", "zoo:cli-cnn", *common, *extra, "--json", str(report)])
        assert code == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "fine-tuned with the defaults stored with zoo:cli-cnn: " in out and "body_lr_scale 1.0" in out
        stored_line = next(line for line in out.splitlines() if line.startswith("fine-tuned with the defaults"))
        kept, _, given = stored_line.partition("; given instead: ")
        assert "epochs 1" in given and "epochs" not in kept  # --epochs 1 beat the stored epochs: not listed as used
        assert ("batchnorm eval" in given) == (batchnorm == "eval")
        record = json.loads(report.read_text())
        assert record["training"]["batchnorm"] == batchnorm and record["training"]["hflip"] is False
        assert record["backbone_fine_tuning"]["body_lr_scale"] == 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be a positive int. Got 0"),
        (["--unsupervised", "ae", "--arch", "small-cnn"], "--unsupervised trains an mlp"),
        (["--arch", "mlp", "--hidden", "64,x"], "--hidden must be positive ints"),
        (["--unsupervised", "rbm", "--layers", "0"], "--layers must be positive ints"),
        (["--lr", "-1"], "--lr must be a float > 0"),
        # options another mode reads would be dropped without a word
        (["--layers", "64"], "--layers is only read with --unsupervised; it would be ignored here (for a supervised"),
        (["--unsupervised", "ae", "--hidden", "64"], "--hidden is only read with supervised training"),
        (["--unsupervised", "ae", "--cd-k", "2"], "--cd-k is only read with --unsupervised rbm"),
        (["--unsupervised", "rbm", "--noise", "0.2"], "--noise is only read with --unsupervised ae"),
        (["--unsupervised", "rbm", "--augment"], "--augment is only read with supervised training"),
        (["--hidden", "64"], "--hidden sets the widths of --arch mlp; small-cnn has its own"),
    ],
)
def test_cli_pretrain_rejects_bad_settings_in_one_line(zoo_home, capsys, argv, message):
    assert main(["pretrain", "digits", "--out", "bad", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (zoo_home / "bad").exists()


@pytest.mark.parametrize("method", ["ae", "rbm"])
def test_unsupervised_stacks_become_sigmoid_mlp_backbones(zoo_home, digits, method):
    from transferkit.pretraining import LayerwiseConfig, encode, pretrain_layerwise, pretrain_unsupervised

    config = LayerwiseConfig(method=method, layers=(24, 12), epochs=2)
    result = pretrain_unsupervised(digits.train.inputs, f"digits-{method}", config, verbose=False)
    assert result.provenance["method"] == f"layerwise-{method}" and result.provenance["labels_used"] == 0
    assert [h["out"] for h in result.provenance["history"]] == [24, 12]
    loaded = create_backbone(f"zoo:digits-{method}")
    assert loaded.cfg.arch == "mlp" and loaded.cfg.extra["activation"] == "sigmoid" and loaded.cfg.feature_dim == 12
    # the stored stack is the layer-wise one: same as training the layers directly on pixels in [0, 1]
    pixels = digits.train.inputs.reshape(len(digits.train.inputs), -1) / 255.0
    direct = pretrain_layerwise(pixels, config, random_state=0, verbose=False)
    with torch.inference_mode():
        features = loaded.forward_features(loaded.preprocessor()(digits.test.inputs)).numpy()
    assert np.allclose(
        features, encode(direct.layers, digits.test.inputs.reshape(len(digits.test.inputs), -1) / 255.0), atol=1e-5
    )


def test_cli_pretrain_unsupervised_and_fit_on_top(zoo_home, capsys):
    argv = ["pretrain", "digits", "--unsupervised", "rbm", "--layers", "32,16", "--epochs", "1", "--out", "rbm"]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "zoo:rbm: mlp (layerwise-rbm) trained on" in out and "no labels used" in out
    code = main(
        [
            "fit",
            "digits",
            "--backbone",
            "zoo:rbm",
            "--strategy",
            "finetune",
            "--epochs",
            "2",
            "--labels-per-class",
            "3",
            "--seeds",
            "1",
            "--no-baseline",
            "--quiet",
        ]
    )
    assert code == 0 and "finetune (zoo:rbm)" in capsys.readouterr().out


def test_a_zoo_name_given_with_its_prefix_is_told_the_name_without_it(zoo_home, capsys):
    assert main(["pretrain", "digits", "--out", "zoo:digits-cnn", "--quiet"]) == 2
    assert "the name without 'zoo:': 'digits-cnn'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["a/b", "../escape", ".hidden", "", "x y"])
def test_a_bad_zoo_name_is_refused_before_any_training(zoo_home, digits, monkeypatch, capsys, name):
    from transferkit.pretraining import layerwise, source

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the zoo name")

    monkeypatch.setattr(source, "train_network", no_training)
    monkeypatch.setattr(layerwise, "pretrain_layerwise", no_training)
    with pytest.raises(TransferkitError, match=f"zoo name must be letters, digits .*; got {name!r}"):
        pretrain_supervised(digits.train.inputs, digits.train.labels, name, epochs=1, verbose=False)
    with pytest.raises(TransferkitError, match="zoo name must be"):
        source.pretrain_unsupervised(digits.train.inputs, name, {"layers": [8], "epochs": 1}, verbose=False)
    assert main(["pretrain", "digits", "--out", name, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "zoo name must be letters, digits" in err and err.count("\n") == 1
    assert not zoo_home.exists() or not any(zoo_home.iterdir())
