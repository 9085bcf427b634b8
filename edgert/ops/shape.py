"""RESHAPE, PAD and CONCATENATION: data movement, no arithmetic."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op

from .common import fail, require_per_tensor

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te
    from edgert.codegen.kernel import KernelCtx

I8, F32 = DType.I8, DType.F32


def check(op: Op, g: Graph) -> None:
    ins = [t for t in g.in_tensors(op) if t is not None]
    (y,) = g.out_tensors(op)
    for t in ins:
        if t.dtype is not y.dtype or t.dtype not in (I8, F32):
            raise fail(op, f"tensor {t.name} is {t.dtype.short}, output is {y.dtype.short}",
                       "supported: int8 or float32, the same on input and output")
    if op.kind == "transpose" and tuple(ins[0].shape[p] for p in op.attrs["perm"]) != tuple(y.shape):
        raise fail(op, f"transpose {op.attrs['perm']} of {list(ins[0].shape)} is not {list(y.shape)}", "check the model")
    if op.kind == "reshape" and ins[0].size != y.size:
        raise fail(op, f"reshape of {ins[0].size} values into {list(y.shape)}", "check the model")
    if y.dtype is I8:
        for t in ins + [y]:
            require_per_tensor(op, t, "input" if t is not y else "output")
        if op.kind in ("concat", "pad", "reshape"):
            for t in ins:
                if (t.quant.scale, t.quant.zp) != (y.quant.scale, y.quant.zp):
                    raise fail(op, f"input {t.name} is quantized ({t.quant.scale[0]:.6g}, {t.quant.zp}), "
                               f"output ({y.quant.scale[0]:.6g}, {y.quant.zp})",
                               "TFLite Micro needs the same quantization on all inputs and the output "
                               "of this op; re-export the model")
    if op.kind == "pad" and len(op.attrs["pads"]) != len(ins[0].shape):
        raise fail(op, f"{len(op.attrs['pads'])} padding pairs for a {len(ins[0].shape)}-D input", "check the model")
    if op.kind == "concat" and op.attrs.get("act", "none") != "none":
        raise fail(op, f"fused activation {op.attrs['act']}", "concatenation without activation only")


def prepare(op: Op, g: Graph) -> None:
    if op.kind == "pad":
        y = g.tensor(op.outputs[0])
        if "value" not in op.attrs:
            op.attrs["value"] = y.quant.zp if y.dtype is I8 else 0.0


def macs(op: Op, g: Graph) -> int:
    return 0


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (y,) = g.out_tensors(op)
    if op.kind == "reshape":
        return [inputs[0].reshape(y.shape).copy()]
    if op.kind == "transpose":
        return [np.ascontiguousarray(np.transpose(inputs[0], op.attrs["perm"]))]
    if op.kind == "pad":
        return [np.pad(inputs[0], op.attrs["pads"], constant_values=op.attrs["value"]).astype(y.dtype.np)]
    return [np.concatenate(inputs, axis=op.attrs["axis"]).astype(y.dtype.np)]


# --------------------------------------------------------------------------- lowering (TVM TE)


def lower_reshape(c: KernelCtx) -> te.Tensor:
    from tvm import te

    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0], y.shape or (1,))
    return te.compute(y.shape or (1,), lambda *i: X(*i), name="out")


def lower_transpose(c: KernelCtx) -> te.Tensor:
    from tvm import te

    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    perm = op.attrs["perm"]
    inv = [perm.index(d) for d in range(len(perm))]  # output axis that holds input axis d
    return te.compute(y.shape, lambda *i: X[tuple(i[inv[d]] for d in range(len(perm)))], name="out")


def lower_pad(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    pads = op.attrs["pads"]
    value = tirx.const(op.attrs["value"], y.dtype.np_name)

    def f(*i):
        src = [v - p[0] for v, p in zip(i, pads)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, x.shape)])
        return tirx.if_then_else(inside, X[tuple(src)], value)

    return te.compute(y.shape, f, name="out")


def lower_concat(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx

    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    axis = op.attrs["axis"]
    parts = [(c.act(n), g.tensor(n).shape[axis]) for n in op.inputs]

    def f(*i):
        starts, s = [], 0
        for _, d in parts:
            starts.append(s)
            s += d
        expr = None
        for (P, d), s0 in reversed(list(zip(parts, starts))):
            idx = list(i)
            idx[axis] = i[axis] - s0
            v = P[tuple(idx)]
            expr = v if expr is None else tirx.if_then_else(i[axis] < s0 + d, v, expr)
        return expr

    return te.compute(y.shape, f, name="out")
