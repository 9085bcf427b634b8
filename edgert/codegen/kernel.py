"""What a layer's TVM kernel is made of: the kernel context that an op's ``lower_<kind>``
(edgert.ops) builds its TE computation in, the kernel and its arguments as the model code
calls them, and the TE helpers several op families share.

Every kernel is specialised for its layer: shapes, zero points, per-tensor multipliers and
clamps are compile-time constants that TVM folds into the loop body. Per-channel data
(weights, folded biases, multipliers, shifts, tables) are kernel parameters that point to
const arrays in flash. Activations are parameters that point into the arena.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tvm import te, tirx

from edgert.ir import Graph, Op


@dataclass
class Arg:
    """What the caller passes for one kernel parameter."""

    kind: str  # "tensor": an arena tensor by name; "const": a flash array by name
    name: str


@dataclass
class Kernel:
    name: str  # C function name
    op: Op
    func: object  # tvm PrimFunc
    args: list[Arg]
    in_place: bool = False  # output aliases the first input (no `restrict` between them)


@dataclass
class Lowered:
    kernels: list[Kernel]
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # flash arrays by C name


class KernelCtx:
    """Collects a kernel's parameters in call order."""

    def __init__(self, g: Graph, op: Op, consts: dict[str, np.ndarray], fence_float: bool = False,
                 channels_inner: bool = False, dsp: bool = False, dsp_isa: bool = False):
        self.g, self.op, self.consts, self.fence_float = g, op, consts, fence_float
        self.channels_inner = channels_inner  # see edgert.codegen.schedule
        self.dsp = dsp  # the DSP form of edgert.ops.forms.dsp_dot (edgert.codegen.dsp)
        self.dsp_isa = dsp_isa  # the CPU has the DSP extension (edgert.codegen.dsp.requantizer)
        self.dot_lanes = 0  # set by a DSP-form lowering: output channels per block of dot products
        self.dot_positions = 1  # ... and output columns per block
        self.unroll = 1  # weights packed this many per byte: unroll the innermost reduction by it
        self.params: list[te.Tensor] = []
        self.args: list[Arg] = []

    def act(self, name: str, shape=None) -> te.Tensor:
        t = self.g.tensor(name)
        if t.is_const:
            return self.const(name, t.data, shape)
        p = te.placeholder(tuple(shape or t.shape) or (1,), t.dtype.np_name, name=cname(name))
        self.params.append(p)
        self.args.append(Arg("tensor", name))
        return p

    def product(self, a, b):
        """a * b, rounded on its own when float: with ``fence_float`` (TVM's LLVM back ends, which
        let LLVM fuse a multiply and the add that uses it into one FMA, rounding once where
        the references and the C targets, built with -ffp-contract=off, round twice) the
        product goes through llvm.arithmetic.fence, which no fusion crosses."""
        p = a * b
        if self.fence_float and str(p.ty.dtype).startswith("float"):
            return tirx.call_llvm_pure_intrin(str(p.ty.dtype), "llvm.arithmetic.fence", p)
        return p

    def const(self, key: str, data: np.ndarray, shape=None) -> te.Tensor:
        c_name = cname(key if key in self.g.tensors else f"{self.op.name}_{key}")
        self.consts[c_name] = np.ascontiguousarray(data)
        p = te.placeholder(tuple(shape or data.shape) or (1,), str(data.dtype), name=c_name)
        self.params.append(p)
        self.args.append(Arg("const", c_name))
        return p

    def finish(self, out: te.Tensor, out_name: str):
        self.params.append(out)
        self.args.append(Arg("tensor", out_name))
        return te.create_prim_func(self.params)


def cname(name: str) -> str:
    """A tensor or layer name as a C identifier."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def in_bounds(iy, ix, h: int, w: int):
    """Whether the tap (iy, ix) lies inside an h x w image."""
    return tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)


def reshape_view(t: te.Tensor, shape) -> te.Tensor:
    """The same row-major data under another shape (an index remap, no copy)."""
    src = [int(d) for d in t.shape]
    shape = tuple(shape) or (1,)

    def f(*i):
        flat = 0
        for d, v in zip(shape, i):
            flat = flat * d + v
        idx = []
        for d in reversed(src):
            idx.append(tirx.floormod(flat, d))
            flat = tirx.floordiv(flat, d)
        return t(*reversed(idx))

    return te.compute(shape, f, name="out_view")


def broadcast_index(shape_in, shape_out, idx):
    """The index into a tensor of ``shape_in`` broadcast (numpy rules) to ``shape_out``."""
    off = len(shape_out) - len(shape_in)
    return [0 if shape_in[d] == 1 and shape_out[d + off] != 1 else idx[d + off] for d in range(len(shape_in))] or [0]
