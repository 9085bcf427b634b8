"""QUANTIZE (float32 -> int8, int8 -> int8 requantize) and DEQUANTIZE (int8 -> float32)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import clamp_int8, require_dtypes, require_per_tensor

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te
    from edgert.codegen.kernel import KernelCtx

I8, F32 = DType.I8, DType.F32


def check(op: Op, g: Graph) -> None:
    if op.kind == "quantize":
        require_dtypes(op, g, ((F32, I8), (I8, I8)))
    else:
        require_dtypes(op, g, ((I8, F32),))
    for t in g.in_tensors(op) + g.out_tensors(op):
        if t.dtype is I8:
            require_per_tensor(op, t, "input" if t.name in op.inputs else "output")


def prepare(op: Op, g: Graph) -> None:
    (x,) = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if op.kind == "dequantize":
        op.attrs["scale"] = float(np.float32(x.quant.scale[0]))
        op.attrs["in_zp"] = x.quant.zp
    elif x.dtype is F32:
        op.attrs["scale"] = float(np.float32(y.quant.scale[0]))
        op.attrs["out_zp"] = y.quant.zp
    else:
        op.attrs["mult"], op.attrs["shift"] = fp.quantize_multiplier(
            float(np.float64(x.quant.scale[0]) / np.float64(y.quant.scale[0]))
        )
        op.attrs["in_zp"], op.attrs["out_zp"] = x.quant.zp, y.quant.zp


def macs(op: Op, g: Graph) -> int:
    return g.tensor(op.outputs[0]).size


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (x,) = g.in_tensors(op)
    xv = inputs[0]
    a = op.attrs
    if op.kind == "dequantize":
        # float32(scale) * int is exact before its one rounding, as double-then-float is.
        return [(np.float32(a["scale"]) * (xv.astype(np.float32) - np.float32(a["in_zp"]))).astype(np.float32)]
    if x.dtype is F32:
        # roundf() of the float32 quotient: half away from zero, done in float64 where +0.5 is exact.
        q = (xv.astype(np.float32) / np.float32(a["scale"])).astype(np.float64)
        rounded = np.where(q >= 0, np.floor(q + 0.5), -np.floor(-q + 0.5))
        return [clamp_int8(rounded.astype(np.int64) + a["out_zp"])]
    out = fp.multiply_by_quantized_multiplier(xv.astype(np.int64) - a["in_zp"], a["mult"], a["shift"])
    return [clamp_int8(out + a["out_zp"])]


# --------------------------------------------------------------------------- lowering (TVM TE)


def lower_quantize(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx
    from edgert.codegen import te_fixedpoint as fx

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    a = op.attrs
    shape = y.shape or (1,)
    # The scale from flash, not as a literal: TVM's C printer writes float literals with 7
    # significant digits, and a float32 needs 9 to be read back exactly.
    if op.kind == "dequantize":
        S = c.const("scale", np.array([a["scale"]], np.float32))
        return te.compute(shape, lambda *i: S[0]
                          * (X(*i).astype("float32") - tirx.const(float(a["in_zp"]), "float32")), name="out")
    if x.dtype is DType.F32:
        S = c.const("scale", np.array([a["scale"]], np.float32))

        def q(*i):
            # round half away from zero (TFLite's std::round), in float64, where + 0.5 is exact
            v = (X(*i) / S[0]).astype("float64")
            half = tirx.const(0.5, "float64")
            r = tirx.Select(v >= tirx.const(0.0, "float64"), tirx.floor(v + half), -tirx.floor(half - v))
            r = tirx.max(tirx.min(r, tirx.const(1e9, "float64")), tirx.const(-1e9, "float64"))
            return fx.clamp(r.astype("int32") + a["out_zp"], -128, 127, "int8")
        return te.compute(shape, q, name="out")
    return te.compute(shape, lambda *i: fx.clamp(
        fx.multiply_by_quantized_multiplier(X(*i).astype("int32") - a["in_zp"], a["mult"], a["shift"]) + a["out_zp"],
        -128, 127, "int8"), name="out")
