"""The build report: per-layer op, shapes, MACs and flash bytes; arena and totals.

One function computes it from the compiled artifacts; the CLI prints it, report.json stores it.
"""
from __future__ import annotations

from edgert.ir import Graph
from edgert.ops import REGISTRY
from edgert.plan.arena import ArenaPlan


def layer_rows(g: Graph, const_bytes: dict[str, int] | None = None) -> list[dict]:
    """One row per op. ``const_bytes`` (kernel name -> flash bytes of the arrays it reads)
    comes from lowering; before lowering, the model's own weight bytes are shown."""
    rows = []
    for op in g.ops:
        ins = [g.tensor(t) for t in op.inputs if t]
        acts = [t for t in ins if not t.is_const]
        weights = sum(t.nbytes for t in ins if t.is_const)
        rows.append({
            "layer": op.name,
            "op": op.kind,
            "source": op.source,
            "inputs": [list(t.shape) for t in acts],
            "output": list(g.tensor(op.outputs[0]).shape),
            "dtype": g.tensor(op.outputs[0]).dtype.short,
            "macs": int(REGISTRY[op.kind].macs(op, g)),
            "weight_bytes": int(const_bytes.get(op.name, weights) if const_bytes is not None else weights),
        })
    return rows


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain-text table; ``columns`` is [(key, header)]. Numbers are right-aligned with
    thousands separators."""
    def cell(v):
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, list):
            return "x".join(str(x) for x in v) if v and not isinstance(v[0], list) else " ".join("x".join(map(str, s)) for s in v)
        return str(v)

    cells = [[cell(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    numeric = [all(isinstance(r.get(k), (int, float)) for r in rows) for k, _ in columns]

    def line(vals):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)).rstrip()

    out = [line([h for _, h in columns]), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out)


LAYER_COLUMNS = [("layer", "layer"), ("source", "source"), ("inputs", "input"), ("output", "output"),
                 ("macs", "MACs"), ("weight_bytes", "flash bytes")]


def summary(g: Graph, plan: ArenaPlan, rows: list[dict], flash_const_bytes: int) -> dict:
    return {
        "model": g.name,
        "layers": len(g.ops),
        "macs": sum(r["macs"] for r in rows),
        "flash_const_bytes": flash_const_bytes,
        "arena_bytes": plan.size,
    }
