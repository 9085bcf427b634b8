"""Choose how each int8 layer's weights are stored and read: dense in the smallest exact
format (int8, int4 or a codebook; edgert.kernels.packing), or sparse (each output channel's
nonzero weights with their input offsets; edgert.kernels.sparsity) where that saves both
flash and work. Sets op.attrs["packing"] and op.attrs["sparse"]; returns one report row per
layer. A sparse convolution with padding gets an explicit ``pad`` op on its input (its
kernel then reads no out-of-bounds tap), which the arena plans like any tensor.

The choice is by a cost estimate: flash bytes, which are exact, and instructions, estimated
as the MACs the kernel performs (dense: every weight; sparse: every stored entry, padding
included) times a per-MAC cost of that kernel form (COST), plus the padding copy.
"""
from __future__ import annotations

from edgert.ir import DType, Graph, Op, Tensor
from edgert.kernels import REGISTRY, packing, sparsity

#: Modes of ``run``: "auto" (smallest exact format; sparse where it pays), "dense" (smallest
#: exact format, never sparse), "int8" (weights as the model stores them; api.compile_model
#: then also keeps pruned channels).
MODES = ("auto", "dense", "int8")

#: Instructions per MAC of each kernel form, measured on the emulated Cortex-M7 on the 3x3
#: 12x12x16 -> 32 convolution of tests/codegen/test_weight_format.py (`edgert bench --target
#: cortex-m7 --layers --weights int8,auto` on its int8, int4, codebook and 80 %-sparse
#: variants): 2,665,800, 3,101,680, 5,228,440 instructions for 663,552 MACs, and 949,920 for
#: the sparse kernel's 175,104 entries; "pad" per byte of the padded input (5,240 for 3,136).
COST = {"int8": 4.0, "int4": 4.7, "codebook": 7.9, "sparse": 5.4, "pad": 1.7}


def _chan_axis(kind: str) -> int:
    return 3 if kind == "depthwise_conv2d" else 0


def _padding(g: Graph, op: Op) -> tuple[tuple[int, int], tuple[int, int]]:
    """(top, bottom), (left, right): the rows and columns a convolution reads outside its input."""
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    pb = max((y.shape[1] - 1) * sh + (w.shape[1] - 1) * dh + 1 - pt - x.shape[1], 0)
    pr = max((y.shape[2] - 1) * sw + (w.shape[2] - 1) * dw + 1 - pl - x.shape[2], 0)
    return (pt, pb), (pl, pr)


def _sparse_layout(g: Graph, op: Op) -> sparsity.Sparse | None:
    w = g.tensor(op.inputs[1])
    if op.kind == "fully_connected":
        return sparsity.analyse(w.data)
    x = g.tensor(op.inputs[0])
    (pt, pb), (pl, pr) = _padding(g, op)
    width, cin = x.shape[2] + pl + pr, x.shape[3]
    (dh, dw) = op.attrs["dilation"]
    return sparsity.analyse(w.data, (dh * width * cin, dw * cin))


def _pad_input(g: Graph, op: Op) -> int:
    """Give a convolution an explicitly padded input (the zero point fills it); returns the
    padded tensor's bytes (0 when the convolution reads no padding)."""
    (pt, pb), (pl, pr) = _padding(g, op)
    if pt == pb == pl == pr == 0:
        return 0
    x = g.tensor(op.inputs[0])
    name = f"{op.inputs[0]}_padded_{op.name}"
    shape = (x.shape[0], x.shape[1] + pt + pb, x.shape[2] + pl + pr, x.shape[3])
    g.tensors[name] = Tensor(name, shape, x.dtype, quant=x.quant)
    pad = Op("pad", [op.inputs[0]], [name], {"pads": ((0, 0), (pt, pb), (pl, pr), (0, 0)), "value": x.quant.zp},
             name=f"{op.name}_pad", source=f"{op.source} (input padding of its sparse kernel)")
    g.ops.insert(g.ops.index(op), pad)
    op.inputs[0] = name
    op.attrs["pad"] = (0, 0)
    return g.tensor(name).nbytes


def run(g: Graph, mode: str = "auto") -> list[dict]:
    rows = []
    for op in list(g.ops):
        if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected"):
            continue
        w = g.tensor(op.inputs[1])
        if w.dtype is not DType.I8 or not w.is_const:
            continue
        dense = packing.smallest(w.data, _chan_axis(op.kind)) if mode != "int8" else packing.INT8
        macs = int(REGISTRY[op.kind].macs(op, g))
        row = {"layer": op.name, "source": op.source, "zeros": round(1.0 - int((w.data != 0).sum()) / max(w.size, 1), 3),
               "dense_format": dense.describe(), "dense_bytes": dense.nbytes(w.size), "dense_macs": macs}
        if mode == "int8":  # kernels read unannotated weights as int8
            row["chosen"] = "int8"
            rows.append(row)
            continue
        op.attrs["packing"], op.attrs["sparse"] = dense, None
        s = _sparse_layout(g, op) if op.kind != "depthwise_conv2d" else None
        if s is not None:
            _, val = sparsity.encode(w.data, s)
            vfmt = packing.smallest(val, 0)
            positions = g.tensor(op.outputs[0]).size // s.rows
            pad_bytes = 0
            if op.kind == "conv2d" and any(_padding(g, op)[0] + _padding(g, op)[1]):
                (pt, pb), (pl, pr) = _padding(g, op)
                x = g.tensor(op.inputs[0])
                pad_bytes = (x.shape[1] + pt + pb) * (x.shape[2] + pl + pr) * x.shape[3]
            row.update({"sparse_bytes": s.index_bytes() + vfmt.nbytes(s.entries), "sparse_macs": positions * s.entries})
            sparse_cost = row["sparse_macs"] * (COST["sparse"] + COST[vfmt.kind] - COST["int8"]) + pad_bytes * COST["pad"]
            if mode == "auto" and row["sparse_bytes"] < row["dense_bytes"] and sparse_cost < macs * COST[dense.kind]:
                op.attrs["packing"], op.attrs["sparse"] = vfmt, s
                if op.kind == "conv2d":
                    row["padded_input_bytes"] = _pad_input(g, op)
        row["chosen"] = ("sparse, " if op.attrs["sparse"] else "") + op.attrs["packing"].describe()
        rows.append(row)
    return rows
