"""SOFTMAX and LOGISTIC.

int8 follows TFLM's reference kernels exactly (gemmlowp fixed point). Because an int8 input
has only 256 values, everything that depends on one input value alone is evaluated at build
time into a table:
* logistic: the whole function, an int8 table indexed by x + 128;
* softmax: exp(beta * scale * (x - max)) for each of the 256 differences, as the Q0.31 value
  TFLM computes (0 where TFLM skips the element, diff < diff_min). The run-time kernel only
  does the row max, the sum, the fixed-point reciprocal and the final rescale.
"""
from __future__ import annotations

import math

import numpy as np

from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import INT8_MIN, clamp_int8, fail, require_dtypes, require_per_tensor

I8, F32 = DType.I8, DType.F32
SCALED_DIFF_INTEGER_BITS = 5  # softmax input integer bits (kScaledDiffIntegerBits)
ACCUM_INTEGER_BITS = 12  # softmax sum integer bits (kAccumulationIntegerBits)
LOGISTIC_INPUT_INTEGER_BITS = 4


def check(op: Op, g: Graph) -> None:
    require_dtypes(op, g, ((I8, I8), (F32, F32)))
    (x,) = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if x.dtype is I8:
        require_per_tensor(op, x, "input")
        require_per_tensor(op, y, "output")
        if (np.float32(y.quant.scale[0]), y.quant.zp) != (np.float32(1 / 256), -128):
            raise fail(op, f"int8 output quantization is ({y.quant.scale[0]:.6g}, {y.quant.zp})",
                       "int8 softmax and logistic outputs must use scale 1/256 and zero point -128, "
                       "as the TFLite converter produces")


def prepare(op: Op, g: Graph) -> None:
    (x,) = g.in_tensors(op)
    if x.dtype is F32:
        return
    if op.kind == "softmax":
        op.attrs["exp_table"] = softmax_exp_table(float(op.attrs["beta"]), float(x.quant.scale[0]))
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


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (x,) = g.in_tensors(op)
    xv = inputs[0]
    if x.dtype is F32:
        if op.kind == "logistic":
            return [(1.0 / (1.0 + np.exp(-xv.astype(np.float32)))).astype(np.float32)]
        z = (xv - xv.max(axis=-1, keepdims=True)) * np.float32(op.attrs["beta"])
        e = np.exp(z.astype(np.float32))
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]
    if op.kind == "logistic":
        return [op.attrs["table"][xv.astype(np.int64) + 128]]
    return [softmax_int8_rows(xv, op.attrs["exp_table"])]
