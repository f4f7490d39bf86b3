import importlib

import torch

from transferkit import _compat


def test_torchvision_and_timm_import_after_the_shim():
    state = _compat.ensure_torchvision_ops()
    assert state in ("native", "fallback")
    timm = importlib.import_module("timm")
    assert timm.create_model("resnet18", pretrained=False) is not None
    assert hasattr(torch.ops.torchvision, "nms")


def test_nms_matches_a_brute_force_reference():
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(60, 2, generator=generator) * 50
    boxes = torch.cat([corners, corners + 5 + torch.rand(60, 2, generator=generator) * 20], dim=1)
    scores = torch.rand(60, generator=generator)
    kept = torch.ops.torchvision.nms(boxes, scores, 0.4)
    # brute force: walk by score, keep a box unless it overlaps a kept one by more than 0.4
    expected = []
    for i in torch.argsort(scores, descending=True).tolist():
        ok = True
        for j in expected:
            x1, y1 = torch.maximum(boxes[i, :2], boxes[j, :2])
            x2, y2 = torch.minimum(boxes[i, 2:], boxes[j, 2:])
            inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > 0.4:
                ok = False
                break
        if ok:
            expected.append(i)
    assert kept.tolist() == expected
    assert 1 < len(expected) < 60


def test_shim_is_a_no_op_when_native_ops_load(monkeypatch):
    monkeypatch.setattr(_compat, "_STATE", None)
    monkeypatch.setattr(_compat, "_native_ops_load", lambda: True)
    defined = []
    monkeypatch.setattr(torch.library, "Library", lambda *a, **k: defined.append(a))
    assert _compat.ensure_torchvision_ops() == "native"
    assert defined == []


def test_fallback_registers_both_operators_when_native_ops_fail(monkeypatch):
    monkeypatch.setattr(_compat, "_STATE", None)
    monkeypatch.setattr(_compat, "_native_ops_load", lambda: False)
    calls = []

    class FakeLibrary:
        def __init__(self, namespace, kind):
            calls.append((namespace, kind))

        def define(self, schema):
            calls.append(schema.split("(")[0])

        def impl(self, name, kernel, key):
            calls.append((name, key))

    monkeypatch.setattr(torch.library, "Library", FakeLibrary)
    monkeypatch.setattr(_compat, "_FALLBACK_LIBRARY", None)
    assert _compat.ensure_torchvision_ops() == "fallback"
    assert ("torchvision", "DEF") in calls and "nms" in calls and "qnms" in calls and ("nms", "CPU") in calls
