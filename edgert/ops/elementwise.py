"""ADD, SUB, MUL, MAXIMUM, MINIMUM and PRELU with numpy broadcasting, int8 and float32. TFLM's
int8 add and sub: inputs rescaled with a 20-bit left shift, then summed (subtracted) and
requantized; int8 mul: one multiplier for s1*s2/so; int8 maximum and minimum compare the stored
int8 values as they are (TFLM's kernel reads no quantization: the converter gives inputs and
output one); int8 prelu: x - zx requantized by sx/so where it is >= 0, else (x - zx)(alpha - za)
by sx*sa/so (TFLM's two multipliers)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import activation_range, clamp_int8, fail, require_dtypes, require_per_tensor

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te
    from edgert.codegen.kernel import KernelCtx

I8, F32 = DType.I8, DType.F32
ADD_LEFT_SHIFT = 20  # TFLM's left_shift for int8 ADD


def check(op: Op, g: Graph) -> None:
    require_dtypes(op, g, ((I8, I8, I8), (F32, F32, F32)))
    a, b = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise fail(op, f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast", "check the model") from None
    if tuple(shape) != tuple(y.shape):
        raise fail(op, f"broadcast shape {list(shape)} differs from the output {list(y.shape)}", "check the model")
    if len(y.shape) > 5:
        raise fail(op, f"{len(y.shape)}-D broadcasting", "TFLite broadcasts up to 5 dimensions")
    if y.dtype is I8:
        for t, role in ((a, "first input"), (b, "second input"), (y, "output")):
            require_per_tensor(op, t, role)


def prepare(op: Op, g: Graph) -> None:
    a, b = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if op.kind in ("maximum", "minimum"):  # no activation, no arithmetic to prepare
        return
    if op.kind == "prelu":
        op.attrs["act_min"], op.attrs["act_max"] = activation_range("none", y)
        if y.dtype is I8:
            sx, sa, so = (np.float64(t.quant.scale[0]) for t in (a, b, y))
            op.attrs["in_zp"], op.attrs["out_zp"] = (a.quant.zp, b.quant.zp), y.quant.zp
            op.attrs["pos_mult"], op.attrs["pos_shift"] = fp.quantize_multiplier(float(sx / so))
            op.attrs["mult"], op.attrs["shift"] = fp.quantize_multiplier(float(sx * sa / so))
        return
    op.attrs["act_min"], op.attrs["act_max"] = activation_range(op.attrs["act"], y)
    if y.dtype is F32:
        return
    sa, sb, so = (np.float64(t.quant.scale[0]) for t in (a, b, y))
    op.attrs["in_zp"] = (a.quant.zp, b.quant.zp)
    op.attrs["out_zp"] = y.quant.zp
    if op.kind in ("add", "sub"):
        twice_max = 2 * max(sa, sb)
        op.attrs["in_mult"], op.attrs["in_shift"] = (
            tuple(int(v) for v in arr) for arr in fp.quantize_multipliers([sa / twice_max, sb / twice_max])
        )
        m, s = fp.quantize_multiplier(float(twice_max / ((1 << ADD_LEFT_SHIFT) * so)))
    else:
        m, s = fp.quantize_multiplier(float(sa * sb / so))
    op.attrs["mult"], op.attrs["shift"] = m, s


def macs(op: Op, g: Graph) -> int:
    return g.tensor(op.outputs[0]).size


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (y,) = g.out_tensors(op)
    xa, xb = inputs
    at = op.attrs
    if op.kind in ("maximum", "minimum"):  # the stored values, compared as they are
        r = np.maximum(xa, xb) if op.kind == "maximum" else np.minimum(xa, xb)
        return [np.broadcast_to(r, y.shape).astype(y.dtype.np).copy()]
    if y.dtype is F32:
        prelu = lambda x, alpha: np.where(x >= 0, x, (x * alpha).astype(np.float32))  # noqa: E731
        r = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "prelu": prelu}[op.kind](xa, xb)
        return [np.broadcast_to(np.clip(r, at["act_min"], at["act_max"]), y.shape).astype(np.float32).copy()]
    va = xa.astype(np.int64) - at["in_zp"][0]
    vb = xb.astype(np.int64) - at["in_zp"][1]
    if op.kind == "prelu":
        va, vb = np.broadcast_arrays(va, vb)
        raw = np.where(va >= 0, fp.multiply_by_quantized_multiplier(va, at["pos_mult"], at["pos_shift"]),
                       fp.multiply_by_quantized_multiplier(va * vb, at["mult"], at["shift"]))
        return [clamp_int8(raw + at["out_zp"], at["act_min"], at["act_max"]).reshape(y.shape)]
    if op.kind in ("add", "sub"):
        sa = fp.multiply_by_quantized_multiplier(va << ADD_LEFT_SHIFT, at["in_mult"][0], at["in_shift"][0])
        sb = fp.multiply_by_quantized_multiplier(vb << ADD_LEFT_SHIFT, at["in_mult"][1], at["in_shift"][1])
        raw = fp.multiply_by_quantized_multiplier(fp.wrap32(sa + sb if op.kind == "add" else sa - sb),
                                                  at["mult"], at["shift"])
    else:
        raw = fp.multiply_by_quantized_multiplier(va * vb, at["mult"], at["shift"])
    return [clamp_int8(raw + at["out_zp"], at["act_min"], at["act_max"]).reshape(y.shape)]


# --------------------------------------------------------------------------- lowering (TVM TE)


def lower_elementwise(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx
    from edgert.codegen import te_fixedpoint as fx
    from edgert.codegen.kernel import broadcast_index

    op, g = c.op, c.g
    ta, tb, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    A, B = c.act(op.inputs[0]), c.act(op.inputs[1])
    a = op.attrs
    dt = y.dtype.np_name

    def ld(T, t, i):
        return T[tuple(broadcast_index(t.shape, y.shape, i))]

    if op.kind in ("maximum", "minimum"):  # the stored values, compared as they are
        pick = tirx.max if op.kind == "maximum" else tirx.min
        return te.compute(y.shape or (1,), lambda *i: pick(ld(A, ta, i), ld(B, tb, i)), name="out")
    if y.dtype is DType.F32:
        f = {"add": lambda *i: ld(A, ta, i) + ld(B, tb, i), "sub": lambda *i: ld(A, ta, i) - ld(B, tb, i),
             "mul": lambda *i: ld(A, ta, i) * ld(B, tb, i),
             "prelu": lambda *i: tirx.Select(ld(A, ta, i) >= tirx.const(0.0, "float32"), ld(A, ta, i),
                                             ld(A, ta, i) * ld(B, tb, i))}[op.kind]
        return te.compute(y.shape or (1,), lambda *i: fx.clamp(f(*i), a["act_min"], a["act_max"], dt), name="out")

    za, zb = a["in_zp"]

    shape = y.shape or (1,)

    def requant(bound, mult, shift, key):
        """MultiplyByQuantizedMultiplier of values within +-bound: the DSP extension's shorter
        form where it applies (edgert.codegen.dsp.requantizer), else TFLite's."""
        if c.dsp_isa:
            from edgert.codegen import dsp

            f = dsp.requantizer(c, mult, shift, bound, key)
            if f is not None:
                return f
        return lambda x, o=None: fx.multiply_by_quantized_multiplier(x, mult, shift)

    # int8 inputs less their zero points are within +-255; rescaled, they shrink (multipliers < 1)
    in_bound = 255 << ADD_LEFT_SHIFT

    def scaled(T, t, zp, k):
        # Each rescaled input is a stage of its own ("keep_": a scalar in the loop), so the
        # nested fixed-point formulas stay linear in size instead of multiplying out.
        f = requant(in_bound, a["in_mult"][k], a["in_shift"][k], f"in{k}_mult")
        return te.compute(shape, lambda *i: f((ld(T, t, i).astype("int32") - zp) << ADD_LEFT_SHIFT), name=f"keep_in{k}")

    if op.kind == "prelu":  # TFLite Micro's two multipliers, by the sign of x - zx
        pos = requant(255, a["pos_mult"], a["pos_shift"], "pos_mult")
        neg = requant(255 * 255, a["mult"], a["shift"], "mult")

        def prelu(*i):
            x = ld(A, ta, i).astype("int32") - za
            return tirx.Select(x >= 0, pos(x), neg(x * (ld(B, tb, i).astype("int32") - zb))) + a["out_zp"]
        raw = te.compute(shape, prelu, name="keep_raw")
        return te.compute(shape, lambda *i: fx.clamp(raw(*i), a["act_min"], a["act_max"], dt), name="out")
    if op.kind in ("add", "sub"):
        sa, sb = scaled(A, ta, za, 0), scaled(B, tb, zb, 1)
        total = te.compute(shape, (lambda *i: sa(*i) + sb(*i)) if op.kind == "add" else (lambda *i: sa(*i) - sb(*i)),
                           name="keep_sum")
        bound = 2 * in_bound
    else:
        total = te.compute(shape, lambda *i: (ld(A, ta, i).astype("int32") - za) * (ld(B, tb, i).astype("int32") - zb),
                           name="keep_prod")
        bound = 255 * 255
    out = requant(bound, a["mult"], a["shift"], "mult")
    raw = te.compute(shape, lambda *i: out(total(*i)) + a["out_zp"], name="keep_raw")
    if c.dsp_isa and dt == "int8":
        from edgert.codegen import dsp

        return te.compute(shape, lambda *i: dsp.saturate_int8(raw(*i), a["act_min"], a["act_max"]), name="out")
    return te.compute(shape, lambda *i: fx.clamp(raw(*i), a["act_min"], a["act_max"], dt), name="out")
