"""Every public function and method of the API has a numpydoc docstring (like timm's tests over every model:
one rule, checked over everything exported, so a new function cannot slip through)."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = (
    "transferkit",
    "transferkit.adaptation",
    "transferkit.backbones",
    "transferkit.data",
    "transferkit.features",
    "transferkit.pretraining",
    "transferkit.report",
    "transferkit.selection",
    "transferkit.strategies",
    "transferkit.training",
)
# torch.nn.Module.forward overrides whose arguments their class docstring documents, with shapes
DOCUMENTED_BY_CLASS = {"forward", "backward"}


def _public_functions() -> list[tuple[str, object]]:
    found: dict[int, tuple[str, object]] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            members = [(f"{package}.{name}", obj)]
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    value = getattr(value, "__func__", value)  # classmethods and staticmethods too
                    if not attr.startswith("_") and inspect.isfunction(value) and attr not in DOCUMENTED_BY_CLASS:
                        members.append((f"{package}.{name}.{attr}", value))
            for qualified, member in members:
                if inspect.isfunction(member):
                    found.setdefault(id(member), (qualified, member))
    return sorted(found.values(), key=lambda item: item[0])


FUNCTIONS = _public_functions()


def test_the_public_api_is_found():
    names = {name for name, _ in FUNCTIONS}
    assert "transferkit.selection.logme" in names and "transferkit.strategies.ProbeHead.fit" in names
    assert len(FUNCTIONS) > 60


@pytest.mark.parametrize("name, function", FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
def test_public_function_has_a_numpydoc_docstring(name, function):
    doc = inspect.getdoc(function)
    assert doc, f"{name} has no docstring"
    arguments = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
    if len(arguments) >= 2:
        assert "Parameters\n----------" in doc, f"{name}({', '.join(arguments)}) has no numpydoc Parameters section"
