"""Graph passes. PIPELINE runs in order; the IR is verified after every pass."""
from __future__ import annotations

from edgert.ir import Graph, verify

from . import binarize, check_ops, prepare_ops, prune_channels

PIPELINE = (binarize, check_ops, prune_channels, prepare_ops)


def run_pipeline(g: Graph) -> Graph:
    for p in PIPELINE:
        g = p.run(g)
        verify(g)
    return g
