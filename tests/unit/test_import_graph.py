"""The package's structure: no import circles, no module using another's private names
(scripts/import_graph.py, the same check a developer runs)."""
from __future__ import annotations

from tests.support import scripts


def _script():
    return scripts.load("scripts/import_graph.py")


def test_no_import_circles_and_no_private_names_across_modules():
    ig = _script()
    edges, private = ig.graph()
    assert "edgert.api" in edges and "edgert.backends" in edges["edgert.device.board"]  # the graph was read
    assert ig.cycles(edges) == []
    assert private == []


def test_the_check_finds_a_circle():
    ig = _script()
    assert ig.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
