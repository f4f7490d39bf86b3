"""Every adaptation method through the whole model contract: fit, save, load, predict, network, export.

A method that fits but cannot be saved, reloaded or exported fails here, whichever it is (after
timm's tests that run over every registered model).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.adaptation.run import METHODS
from transferkit.estimators import TransferClassifier
from transferkit.export import export_model


@pytest.fixture
def tiny_models(monkeypatch, tiny_backbone):
    """``create_backbone`` gives the tiny random backbone, the same weights each time (fit, load, export)."""
    monkeypatch.setattr("transferkit.estimators.create_backbone", lambda name: tiny_backbone())
    monkeypatch.setattr("transferkit._persistence.create_backbone", lambda name: tiny_backbone())


def _domains():
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 2
    images = rng.integers(0, 60, size=(24, 32, 32))
    images[labels == 1, :, ::4] = 220  # (24, 32, 32): class 1 striped
    target = np.clip(images + 70, 0, 255)  # a brighter domain
    return images.astype(np.uint8), np.where(labels == 1, "striped", "plain"), target.astype(np.uint8)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "source-only"])
def test_every_adaptation_method_fits_saves_loads_predicts_and_exports(method, tiny_models, tmp_path):
    X, y, X_target = _domains()
    model = TransferClassifier("tiny", adaptation=method, adaptation_weight=1.0, cache=False, verbose=False)
    model.set_params(adaptation_settings={"steps": 5, "bottleneck_dim": 8})
    model.fit(X, y, X_target=X_target)
    assert model.history_["adaptation"]["method"] == method
    probabilities = model.predict_proba(X_target)  # (24, 2)
    assert probabilities.shape == (24, 2) and np.allclose(probabilities.sum(axis=1), 1)
    loaded = TransferClassifier.load(model.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(X_target), probabilities, atol=1e-6)
    with torch.inference_mode():
        logits = loaded.network()(loaded.preprocessor()(X_target))  # (24, 2)
    np.testing.assert_allclose(torch.softmax(logits.double(), dim=1).numpy(), probabilities, atol=1e-4)
    assert export_model(tmp_path / "model", tmp_path / "m.onnx").is_file()  # checked against torch inside
