"""The op registry (edgert.ops.REGISTRY) is complete: every kind has a check, a prepare, a
macs count, a numpy reference and a TVM lowering, and some test names it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgert.ops import BINARY_KINDS, IN_PLACE, REGISTRY

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_is_complete(kind):
    d = REGISTRY[kind]
    for part in ("check", "prepare", "macs", "ref", "lower"):
        assert callable(getattr(d, part)), f"{kind}: no {part}"
    assert d.lower.__module__ == d.family.__name__, f"{kind}: its lowering lives outside its family's module"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_is_tested(kind):
    text = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py") if p.name != "test_registry.py")
    assert re.search(rf"\b{kind}\b", text), f"no test names op kind {kind}"


def test_derived_tables():
    assert IN_PLACE <= set(REGISTRY) and BINARY_KINDS <= set(REGISTRY)
    assert {"bconv2d", "lce_quantize"} <= BINARY_KINDS and "conv2d" not in BINARY_KINDS
