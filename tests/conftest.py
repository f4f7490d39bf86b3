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
