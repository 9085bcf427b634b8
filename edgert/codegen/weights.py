"""Weight reads inside the TE kernels, for every format of edgert.ops.packing: the kernel
indexes the logical weights; int4 and codebook weights are decoded where they are read
(shifts, masks and a table load), never expanded into RAM."""
from __future__ import annotations

import numpy as np
from tvm import te, tirx

from edgert.ops import packing
from edgert.ops.packing import Packing

I32 = "int32"


def reader(c, data: np.ndarray, p: Packing, chan_axis: int, name: str):
    """A function of the logical index (one expression per axis of ``data``, row-major as
    stored) that returns the weight: the stored element for int8 (and float) weights, an
    int32 for decoded ones; callers cast to their accumulator type. ``c`` is the kernel's
    KernelCtx (edgert.codegen.kernel); ``name`` names the flash array (a tensor name keeps the model's own constant)."""
    if p.kind == "int8":
        W = c.const(name, np.ascontiguousarray(data))
        return lambda *i: W[i]
    per = 8 // p.bits
    c.unroll = max(c.unroll, per)
    P = c.const(f"{name}_{p.kind}{p.bits}", packing.pack(data, p, chan_axis))
    strides = [int(np.prod(data.shape[d + 1:], dtype=np.int64)) for d in range(data.ndim)]
    mask = (1 << p.bits) - 1
    T = c.const(f"{name}_codebook", p.table) if p.kind == "codebook" else None

    def read(*i):
        # floordiv/floormod rather than shift/and: TVM's simplifier then resolves the bit
        # position to a constant in each copy of an unrolled loop (edgert.codegen.schedule)
        flat = sum(v * s for v, s in zip(i, strides))
        byte, at = P[tirx.floordiv(flat, per)], tirx.floormod(flat, per) * p.bits
        if T is None:  # int4 (a signed byte): the nibble to the top, then an arithmetic shift down
            top = byte.astype(I32).astype("uint32") << (tirx.const(28, "uint32") - at.astype("uint32"))
            return top.astype(I32) >> 28
        return T[i[chan_axis] // p.group, (byte.astype(I32) >> at) & mask].astype(I32)

    return read


def sparse_terms(c, op):
    """For a sparse layer (op.attrs["sparse"], edgert.ops.sparsity): the reduction axis
    over each channel's entries, and functions of the output channel giving the entry's
    weight (int32 or the stored int8) and its input offset (int32)."""
    from edgert.ops import sparsity

    s = op.attrs["sparse"]
    pos, val = sparsity.encode(c.g.tensor(op.inputs[1]).data, s)
    POS = c.const("w_offset", pos)
    value = reader(c, val, op.attrs["packing"], 0, "w_nonzero")
    j = te.reduce_axis((0, s.width), name="j")
    return j, (lambda o: value(o, j)), (lambda o: POS[o, j].astype(I32))
