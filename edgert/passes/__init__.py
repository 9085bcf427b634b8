"""Graph passes. PIPELINE runs in order; the IR is verified after every pass."""
from __future__ import annotations

from edgert.ir import Graph, verify

from . import binarize, check_ops, prepare_ops, prune_channels

PIPELINE = (binarize, check_ops, prune_channels, prepare_ops)


def run_pipeline(g: Graph, *, prune: bool = True) -> Graph:
    """All passes in order; ``prune=False`` keeps pruned channels (the model as it stores its
    weights, for references and side-by-side benchmarks)."""
    for p in PIPELINE:
        if p is prune_channels and not prune:
            continue
        g = p.run(g)
        verify(g)
    return g
