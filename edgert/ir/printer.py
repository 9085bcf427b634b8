"""Text form of a graph: stable, diffable, used for golden snapshots and `edgert inspect`."""
from __future__ import annotations

import hashlib

import numpy as np

from .graph import Graph


def _attr(v) -> str:
    if isinstance(v, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:12]
        if v.size <= 4:
            return f"{v.dtype}{list(v.shape)}{v.tolist()}"
        return f"{v.dtype}{list(v.shape)}#{digest}"
    if isinstance(v, float):
        return f"{v:.9g}"
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(_attr(x) for x in v) + ")"
    return str(v)


def format_graph(g: Graph) -> str:
    lines = [f"graph {g.name}("]
    for name in g.inputs:
        lines.append(f"    %{name}: {g.tensors[name]},")
    lines.append(") {")
    for t in g.constants():
        digest = hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest()[:12]
        lines.append(f"  const %{t.name}: {t} #{digest}")
    for op in g.ops:
        outs = ", ".join(f"%{t}: {g.tensors[t]}" for t in op.outputs)
        ins = ", ".join(f"%{t}" if t else "_" for t in op.inputs)
        attrs = ", ".join(f"{k}={_attr(v)}" for k, v in sorted(op.attrs.items()))
        lines.append(f"  {outs} = {op.kind}({ins}) {{{attrs}}}  # {op.name}")
    lines.append("  return " + ", ".join(f"%{t}" for t in g.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"
