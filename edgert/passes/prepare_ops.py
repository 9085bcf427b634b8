"""Derive each op's integer run-time attributes (multipliers, shifts, clamps, tables) from
the quantization parameters, on the host: the firmware never sees a float scale."""
from __future__ import annotations

from edgert.ir import Graph
from edgert.ops import REGISTRY


def run(g: Graph) -> Graph:
    for op in g.ops:
        REGISTRY[op.kind].prepare(op, g)
    return g
