"""SOFTMAX, LOGISTIC, HARD_SWISH, LEAKY_RELU, ABS, and RELU and RELU6 as ops of their own
(TFLite's, and ONNX's float Relu).

int8 follows TFLM's reference kernels exactly (gemmlowp fixed point). Because an int8 input
has only 256 values, everything that depends on one input value alone is evaluated at build
time into a table:
* logistic, hard_swish, leaky_relu, abs, relu and relu6: the whole function, an int8 table
  indexed by x + 128;
* softmax: exp(beta * scale * (x - max)) for each of the 256 differences, as the Q0.31 value
  TFLM computes (0 where TFLM skips the element, diff < diff_min). The run-time kernel only
  does the row max, the sum, the fixed-point reciprocal and the final rescale.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import INT8_MIN, clamp_int8, fail, require_dtypes, require_per_tensor

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te
    from edgert.codegen.kernel import KernelCtx

I8, F32 = DType.I8, DType.F32
SCALED_DIFF_INTEGER_BITS = 5  # softmax input integer bits (kScaledDiffIntegerBits)
ACCUM_INTEGER_BITS = 12  # softmax sum integer bits (kAccumulationIntegerBits)
LOGISTIC_INPUT_INTEGER_BITS = 4


def check(op: Op, g: Graph) -> None:
    require_dtypes(op, g, ((I8, I8), (F32, F32)))
    (x,) = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if x.dtype is not I8:
        return
    require_per_tensor(op, x, "input")
    require_per_tensor(op, y, "output")
    if op.kind == "hard_swish":
        if hard_swish_params(float(x.quant.scale[0]), float(y.quant.scale[0]))[1] > 0:
            ratio = float(x.quant.scale[0]) / float(y.quant.scale[0])
            raise fail(op, f"the input scale is {ratio:.4g} times the output scale (at most 128 for int8 "
                           "hard swish, as TensorFlow Lite Micro requires)",
                       "re-quantize the model with a representative dataset: the output range of a hard "
                       "swish covers its input's positive range")
    elif op.kind in ("leaky_relu", "relu", "relu6", "abs"):
        return
    elif (np.float32(y.quant.scale[0]), y.quant.zp) != (np.float32(1 / 256), -128):
        raise fail(op, f"int8 output quantization is ({y.quant.scale[0]:.6g}, {y.quant.zp})",
                   "int8 softmax and logistic outputs must use scale 1/256 and zero point -128, "
                   "as the TFLite converter produces")


def prepare(op: Op, g: Graph) -> None:
    (x,) = g.in_tensors(op)
    if x.dtype is F32:
        return
    if op.kind == "softmax":
        op.attrs["exp_table"] = softmax_exp_table(float(op.attrs["beta"]), float(x.quant.scale[0]))
    elif op.kind == "hard_swish":
        y = g.tensor(op.outputs[0])
        op.attrs["table"] = hard_swish_table(float(x.quant.scale[0]), x.quant.zp, float(y.quant.scale[0]), y.quant.zp)
    elif op.kind == "relu":
        y = g.tensor(op.outputs[0])
        op.attrs["table"] = relu_table(float(x.quant.scale[0]), x.quant.zp, float(y.quant.scale[0]), y.quant.zp)
    elif op.kind == "relu6":
        op.attrs["table"] = relu6_table(float(x.quant.scale[0]), x.quant.zp)
    elif op.kind == "abs":
        y = g.tensor(op.outputs[0])
        op.attrs["table"] = abs_table(float(x.quant.scale[0]), x.quant.zp, float(y.quant.scale[0]), y.quant.zp)
    elif op.kind == "leaky_relu":
        y = g.tensor(op.outputs[0])
        op.attrs["table"] = leaky_relu_table(float(op.attrs["alpha"]), float(x.quant.scale[0]), x.quant.zp,
                                             float(y.quant.scale[0]), y.quant.zp)
    else:
        op.attrs["table"] = logistic_table(float(x.quant.scale[0]), x.quant.zp)


def macs(op: Op, g: Graph) -> int:
    return g.tensor(op.outputs[0]).size


# --------------------------------------------------------------------------- build time


def softmax_exp_table(beta: float, input_scale: float) -> np.ndarray:
    """int32[256]: entry d is TFLM's exp for (x - max) == -d, or 0 when TFLM skips it."""
    real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    mult, left_shift = fp.quantize_multiplier(real)
    diff_min = -fp.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    diff = -np.arange(256, dtype=np.int64)
    rescaled = fp.srdhm(fp.wrap32(diff << left_shift), mult)
    exp = fp.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    return np.where(diff >= diff_min, exp, 0).astype(np.int32)


def logistic_table(input_scale: float, input_zp: int) -> np.ndarray:
    """int8[256]: TFLM's int8 logistic of x = index - 128."""
    real = float(np.float64(np.float32(input_scale))) * (1 << (31 - LOGISTIC_INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    # TFLM computes this multiplier without QuantizeMultiplier's 2**31 correction.
    mult = int(fp.wrap32(fp.tflite_round(q * (1 << 31))))
    radius = fp.calculate_input_radius(LOGISTIC_INPUT_INTEGER_BITS, left_shift)
    x = np.arange(-128, 128, dtype=np.int64) - input_zp
    in_q4 = fp.multiply_by_quantized_multiplier(x, mult, left_shift)
    out_q0 = fp.logistic_q4(fp.wrap32(in_q4))
    out = clamp_int8(fp.rounding_divide_by_pot(out_q0, 31 - 8) + INT8_MIN)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return out.astype(np.int8)


def hard_swish_params(input_scale: float, output_scale: float) -> tuple[int, int, int, int]:
    """TFLM's HardSwishPrepare for int8: (output multiplier Q0.15, its exponent, "reluish"
    multiplier Q0.15, its exponent). Scales in float32 as TFLite holds them; the input is
    first moved to a 2**7 finer scale, and the reluish value is that scaled so that 3.0 is 2**15."""
    f32 = np.float32
    hires = f32(1 / 128) * f32(input_scale)
    out_m, out_e = fp.quantize_multiplier(float(f32(hires / f32(output_scale))))
    relu_m, relu_e = fp.quantize_multiplier(float(f32(hires / f32(3 / 32768))))
    return fp.downscale_multiplier_to_int16(out_m), out_e, fp.downscale_multiplier_to_int16(relu_m), relu_e


def hard_swish_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """int8[256]: TFLM's int8 hard swish, x * relu6(x + 3) / 6, of x = index - 128, in its
    16-bit fixed point (reference_ops::HardSwish)."""
    out_m, out_e, relu_m, relu_e = hard_swish_params(input_scale, output_scale)
    hires = (np.arange(-128, 128, dtype=np.int64) - input_zp) * 128       # fits int16: |x| <= 255
    pre_out = fp.srdhm16(hires, out_m)                                     # x on the output scale
    reluish = hires
    if relu_e > 0:  # a left shift by relu_e, split around the multiply so that it saturates last
        reluish = fp.saturate16(reluish * (1 << (relu_e - 1)))
    reluish = fp.srdhm16(reluish, relu_m)
    if relu_e > 0:
        reluish = fp.saturate16(reluish * 2)
    elif relu_e < 0:
        reluish = fp.rounding_divide_by_pot16(reluish, -relu_e)
    reluish = (reluish + (1 << 15)) >> 1                                   # relu6(x + 3) / 6 in Q0.15
    product = reluish * pre_out                                            # truncating high multiply
    pre = np.where(product >= 0, product >> 15, -((-product) >> 15))
    return clamp_int8(fp.rounding_divide_by_pot16(pre, -out_e) + output_zp)


# --------------------------------------------------------------------------- reference


def softmax_int8_rows(xv: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Run-time part of int8 softmax over the last axis (the formulas the C kernel uses)."""
    rows = xv.reshape(-1, xv.shape[-1]).astype(np.int64)
    exps = table.astype(np.int64)[rows.max(axis=1, keepdims=True) - rows]
    total = fp.rounding_divide_by_pot(exps, ACCUM_INTEGER_BITS).sum(axis=1, keepdims=True)
    total = fp.wrap32(total)
    headroom = fp.count_leading_zeros32(total)
    bits_over_unit = ACCUM_INTEGER_BITS - headroom
    shifted_minus_one = fp.wrap32(((total & 0xFFFFFFFF) << headroom) - (1 << 31))
    scale = fp.one_over_one_plus_x_for_x_in_0_1(shifted_minus_one)
    out = fp.rounding_divide_by_pot(fp.srdhm(scale, exps), bits_over_unit + 31 - 8) + INT8_MIN
    return clamp_int8(out).reshape(xv.shape)


def relu_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """TFLM's int8 RELU at every input: x - zp rescaled by input scale / output scale (in double,
    from the float32 scales), plus the output zero point, clamped to [output zero point, 127]."""
    mult, shift = fp.quantize_multiplier(float(np.float64(np.float32(input_scale)) / np.float64(np.float32(output_scale))))
    v = np.arange(-128, 128, dtype=np.int64) - input_zp
    out = fp.multiply_by_quantized_multiplier(v, mult, shift) + output_zp
    return np.clip(out, max(-128, output_zp), 127).astype(np.int8)


def relu6_table(input_scale: float, input_zp: int) -> np.ndarray:
    """TFLM's int8 RELU6 at every input: the stored value clamped to [zero point, six], six being
    6 quantized with the input's parameters (round(6 / scale) + zero point, in float32, within
    int8). TFLM does not requantize here: it takes the output's parameters to be the input's."""
    six = int(np.clip(fp.tflite_round(float(np.float32(6.0) / np.float32(input_scale))) + input_zp, -128, 127))
    return np.clip(np.arange(-128, 128), input_zp, six).astype(np.int8)


def abs_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """TFLM's int8 ABS at every input: |x - zp|, rescaled by input scale / output scale (the
    float32 quotient) where the scales differ, plus the output zero point, clamped to int8."""
    v = np.abs(np.arange(-128, 128, dtype=np.int64) - input_zp)
    if np.float32(input_scale) != np.float32(output_scale):
        mult, shift = fp.quantize_multiplier(float(np.float32(input_scale) / np.float32(output_scale)))
        v = fp.multiply_by_quantized_multiplier(v, mult, shift)
    return np.clip(v + output_zp, -128, 127).astype(np.int8)


def leaky_relu_table(alpha: float, input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """TFLM's int8 leaky relu at every input: x - zp rescaled by the identity multiplier where it
    is >= 0, by alpha's below, plus the output zero point, clamped. The multipliers are TFLM's:
    input scale * alpha / output scale and input scale / output scale in float32 (the tensors'
    and the option's precision), quantized from there."""
    f32 = np.float32
    alpha_mult, alpha_shift = fp.quantize_multiplier(float(f32(input_scale) * f32(alpha) / f32(output_scale)))
    id_mult, id_shift = fp.quantize_multiplier(float(f32(input_scale) / f32(output_scale)))
    v = np.arange(-128, 128, dtype=np.int64) - input_zp
    out = np.where(v >= 0, fp.multiply_by_quantized_multiplier(v, id_mult, id_shift),
                   fp.multiply_by_quantized_multiplier(v, alpha_mult, alpha_shift)) + output_zp
    return clamp_int8(out, -128, 127).astype(np.int8)


def hard_swish_float(x: np.ndarray) -> np.ndarray:
    """x * relu6(x + 3) / 6 in float32, in TFLite's order of operations."""
    three, six = np.float32(3), np.float32(6)
    return (x * np.minimum(six, np.maximum(np.float32(0), x + three)) / six).astype(np.float32)


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (x,) = g.in_tensors(op)
    xv = inputs[0]
    if x.dtype is F32:
        if op.kind == "logistic":
            return [(1.0 / (1.0 + np.exp(-xv.astype(np.float32)))).astype(np.float32)]
        if op.kind == "hard_swish":
            return [hard_swish_float(xv.astype(np.float32))]
        if op.kind == "abs":
            return [np.abs(xv.astype(np.float32))]
        if op.kind in ("relu", "relu6"):
            x32 = np.maximum(xv.astype(np.float32), np.float32(0))
            return [np.minimum(x32, np.float32(6)) if op.kind == "relu6" else x32]
        if op.kind == "leaky_relu":  # TFLM: x > 0 ? x : x * alpha
            x32 = xv.astype(np.float32)
            return [np.where(x32 > 0, x32, x32 * np.float32(op.attrs["alpha"])).astype(np.float32)]
        z = (xv - xv.max(axis=-1, keepdims=True)) * np.float32(op.attrs["beta"])
        e = np.exp(z.astype(np.float32))
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]
    if op.kind in ("logistic", "hard_swish", "leaky_relu", "relu", "relu6", "abs"):
        return [op.attrs["table"][xv.astype(np.int64) + 128]]
    return [softmax_int8_rows(xv, op.attrs["exp_table"])]


# --------------------------------------------------------------------------- lowering (TVM TE)


def lower_pointwise(c: KernelCtx) -> te.Tensor:
    """logistic, hard_swish, leaky_relu, abs, relu and relu6: int8 by their table (prepare),
    float32 by the formula of _float_formula."""
    from tvm import te

    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    if y.dtype is DType.F32:
        f = _float_formula(c)
        return te.compute(y.shape, lambda *i: f(X(*i)), name="out")
    return _table_lookup(c, X, y.shape)


def _float_formula(c: KernelCtx):
    """The float32 function of one input value (a TIR expression) for the op's kind."""
    from tvm import te, tirx

    kind = c.op.kind
    zero, one, three, six = (tirx.const(v, "float32") for v in (0.0, 1.0, 3.0, 6.0))
    if kind == "logistic":
        return lambda x: one / (one + te.exp(-x))
    if kind == "hard_swish":
        return lambda x: x * te.min(six, te.max(zero, x + three)) / six
    if kind == "leaky_relu":  # TFLM: x > 0 ? x : x * alpha
        alpha = tirx.const(float(np.float32(c.op.attrs["alpha"])), "float32")
        return lambda x: tirx.Select(x > zero, x, c.product(x, alpha))
    if kind == "abs":  # a select: TVM's C target cannot print tirx.abs
        return lambda x: tirx.Select(x < zero, -x, x)
    if kind == "relu6":
        return lambda x: tirx.min(tirx.max(x, zero), six)
    return lambda x: tirx.max(x, zero)  # relu


def _table_lookup(c: KernelCtx, X, shape) -> te.Tensor:
    """An int8 function of one int8 input: its 256-entry table (op.attrs["table"]) at x + 128."""
    from tvm import te

    T = c.const("table", c.op.attrs["table"])
    return te.compute(shape, lambda *i: T[X(*i).astype("int32") + 128], name="out")


def _stage(rows: int, make, prev: te.Tensor, name: str) -> te.Tensor:
    """A per-row stage computed from the previous one (``make(prev)`` returns the fcompute)."""
    from tvm import te

    return te.compute((rows,), make(prev), name=name)


def lower_softmax(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx
    from edgert.codegen import te_fixedpoint as fx
    from edgert.codegen.kernel import reshape_view

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    depth = x.shape[-1]
    rows = x.size // depth
    X = c.act(op.inputs[0], (rows, depth))
    k = te.reduce_axis((0, depth), name="k")
    if x.dtype is DType.F32:
        beta = tirx.const(op.attrs["beta"], "float32")
        mx = te.compute((rows,), lambda r: te.max(X[r, k], axis=k), name="mx")
        k2 = te.reduce_axis((0, depth), name="k2")
        tot = te.compute((rows,), lambda r: te.sum(te.exp((X[r, k2] - mx[r]) * beta), axis=k2), name="tot")
        out = te.compute((rows, depth), lambda r, j: te.exp((X[r, j] - mx[r]) * beta) / tot[r], name="out")
        return out if tuple(y.shape) == (rows, depth) else reshape_view(out, y.shape)
    T = c.const("exp_table", op.attrs["exp_table"])
    mx = te.compute((rows,), lambda r: te.max(X[r, k], axis=k), name="mx")
    k2 = te.reduce_axis((0, depth), name="k2")

    def e(r, j):
        return T[mx[r].astype("int32") - X[r, j].astype("int32")]

    tot = te.compute((rows,), lambda r: te.sum(fx.rounding_divide_by_pot(e(r, k2), ACCUM_INTEGER_BITS), axis=k2), name="tot")
    headroom = te.compute((rows,), lambda r: fx.clz32(tot[r]), name="headroom")
    hd = te.compute(
        (rows,),
        lambda r: fx.reciprocal_half_denominator(
            ((tot[r].astype("uint32") << headroom[r].astype("uint32")) - tirx.const(1 << 31, "uint32")).astype("int32")),
        name="keep_hd",
    )
    x = te.compute((rows,), lambda r: fx.reciprocal_initial(hd[r]), name="keep_nr0")
    for step in range(fx.RECIPROCAL_STEPS):
        x = _stage(rows, lambda prev: (lambda r: fx.reciprocal_newton_step(hd[r], prev[r])), x, f"keep_nr{step + 1}")
    recip = _stage(rows, lambda prev: (lambda r: fx.reciprocal_final(prev[r])), x, "keep_recip")

    def unsat_f(r, j):
        shift = tirx.const(ACCUM_INTEGER_BITS + 31 - 8, "int32") - headroom[r]
        return fx.rounding_divide_by_pot(fx.srdhm(recip[r], e(r, j)), shift) - 128

    # A stage of its own: TVM's bound analysis of the inlined expression (it cannot see that
    # the shift is at most 23) wrongly drops the upper clamp, and TFLM's value can be 128.
    unsat = te.compute((rows, depth), unsat_f, name="keep_unsat")
    out = te.compute((rows, depth), lambda r, j: fx.clamp(unsat[r, j], -128, 127, "int8"), name="out")
    return out if tuple(y.shape) == (rows, depth) else reshape_view(out, y.shape)
