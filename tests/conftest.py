"""Shared fixtures: a private feature cache and quiet progress bars for every test."""

from __future__ import annotations

import pytest

import transferkit  # noqa: F401  (torchvision shim before timm)
from transferkit.backbones import create_backbone


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TRANSFERKIT_QUIET", "1")


_BACKBONES: dict = {}


@pytest.fixture(scope="session")
def backbone_factory():
    """Build each backbone once per test session (weights load in ~0.3–3 s)."""

    def get(name: str):
        if name not in _BACKBONES:
            _BACKBONES[name] = create_backbone(name)
        return _BACKBONES[name]

    return get


@pytest.fixture
def tiny_backbone():
    """A factory of tiny randomly initialised timm backbones (``test_efficientnet``, 32 px, 10 source classes)."""
    import timm
    import torch

    from transferkit.backbones._config import BackboneCfg
    from transferkit.backbones.vision import TimmBackbone

    def make(seed: int = 0) -> TimmBackbone:
        torch.manual_seed(seed)
        model = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
        cfg = BackboneCfg(
            name="tiny",
            arch="test_efficientnet",
            modality="image",
            feature_dim=int(model.num_features),
            input_size=(3, 32, 32),
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            num_source_classes=10,
        )
        return TimmBackbone(cfg, model.eval())

    return make


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    """A private model zoo (``$TRANSFERKIT_HOME``) for the test; returns its zoo folder."""
    monkeypatch.setenv("TRANSFERKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "zoo"
