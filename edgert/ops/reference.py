"""The numpy reference interpreter: runs a prepared graph op by op with the kernels' ``ref``.

Used to find the first layer where a compiled model and the reference part ways.
"""
from __future__ import annotations

import numpy as np

from edgert.ir import Graph

from . import REGISTRY


def run(g: Graph, inputs: list[np.ndarray], *, keep_all: bool = False) -> dict[str, np.ndarray]:
    """Returns the graph outputs by tensor name (or every activation with ``keep_all``)."""
    values: dict[str, np.ndarray] = {}
    for name, x in zip(g.inputs, inputs):
        t = g.tensor(name)
        values[name] = np.asarray(x, dtype=t.dtype.np).reshape(t.shape)
    for op in g.ops:
        args = [values[t] if t in values else (g.tensor(t).data if t else None) for t in op.inputs]
        outs = REGISTRY[op.kind].ref(op, g, args)
        for name, v in zip(op.outputs, outs):
            values[name] = v
    if keep_all:
        return values
    return {name: values[name] for name in g.outputs}
