"""Fixed-point arithmetic of TFLite Micro's integer kernels, in numpy (no float at run time).

Two groups:
* build-time derivations (``quantize_multiplier`` ...): turn float32 scales from the model
  file into the int32 multiplier / shift pairs the kernels use, exactly as TFLite's
  quantization_util does (double precision, round half away from zero);
* run-time operations on int arrays (``srdhm``, ``rounding_divide_by_pot``,
  ``multiply_by_quantized_multiplier`` and the gemmlowp exp / reciprocal / logistic):
  vectorised, in int64 so nothing overflows, with C's truncating division semantics.

These are the numpy reference semantics; edgert.codegen emits the same formulas as C.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def tflite_round(x: float) -> int:
    """std::round: half away from zero (Python's round() is half to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real ~= m * 2**(shift - 31), m in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).reshape(-1)]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


# --------------------------------------------------------------------------- run time


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(x) -> np.ndarray:
    """Two's complement wrap to int32 (what a C int32 cast does on every target we build for)."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (returned as int64)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C integer division truncates toward zero.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding, as TFLM builds it)."""
    shift = _i64(shift)
    left = np.where(shift > 0, shift, 0)
    right = np.where(shift > 0, 0, -shift)
    return rounding_divide_by_pot(srdhm(wrap32(_i64(x) << left), multiplier), right)


def saturating_shift_left(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent."""
    x = _i64(x)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


# gemmlowp's int16 fixed point, as TFLite's 16-bit kernels (HARD_SWISH) use it; values are
# int16, their products int32 (returned as int64)

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def downscale_multiplier_to_int16(m32: int) -> int:
    """DownScaleInt32ToInt16Multiplier: a QuantizeMultiplier mantissa as a Q0.15 one (same
    exponent), rounded half up, saturated at 32767."""
    return INT16_MAX if m32 >= INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16


def srdhm16(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul on int16: round(a * b / 2**15), ties away from zero."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def rounding_divide_by_pot16(x, exponent: int) -> np.ndarray:
    """RoundingDivideByPOT on int16. For exponent >= 16 the int16 mask wraps to -1, and the
    result is +1 for x >= 0, -1 for x < 0 (TFLite's kernels do exactly that)."""
    x = _i64(x)
    mask = -1 if exponent >= 16 else (1 << exponent) - 1
    return (x >> exponent) + ((x & mask) > ((mask >> 1) + (x < 0)))


def saturate16(x) -> np.ndarray:
    return np.clip(_i64(x), INT16_MIN, INT16_MAX)


def rounding_half_sum(a, b) -> np.ndarray:
    s = _i64(a) + _i64(b)
    s = s + np.where(s >= 0, 1, -1)
    return np.where(s >= 0, s // 2, -((-s) // 2))


# gemmlowp fixed-point transcendental functions. A FixedPoint<int32, I> value is its raw int32.

def _exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    x = _i64(a) + (1 << 28)  # a + 1/8 in Q0.31
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, 715827883) + x2, 1)
    return 1895147668 + srdhm(1895147668, x + poly)


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 given as FixedPoint<int32, integer_bits>; result in Q0.31."""
    a = _i64(a)
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod_q_minus_q = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_q_minus_q, integer_bits)
    )
    remainder = a_mod_q_minus_q - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder >> (frac + exponent)) & 1
            result = np.where(bit != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        raise NotImplementedError("exp_on_negative_values is used with <= 5 integer bits")
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) in Q0.31; result as Q0.31 (Newton-Raphson, 3 steps)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # Q2.29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)  # Q2.29
        one_minus = (1 << 29) - half_denominator_times_x
        x = x + saturating_shift_left(srdhm(x, one_minus), 2)  # Q4.27 -> Q2.29
    return saturating_shift_left(x, 1)  # ExactMulByPot<-1> then Rescale<0>


def count_leading_zeros32(x) -> np.ndarray:
    x = _i64(x) & 0xFFFFFFFF
    out = np.full(x.shape, 32, dtype=np.int64)
    nz = x != 0
    out[nz] = 31 - np.floor(np.log2(x[nz].astype(np.float64))).astype(np.int64)
    return out


def logistic_q4(a) -> np.ndarray:
    """gemmlowp logistic on FixedPoint<int32, 4>; result in Q0.31."""
    a = _i64(a)
    positive = a > 0
    abs_a = np.where(positive, a, -a)
    result_pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_a, 4))
    result_neg = INT32_MAX - result_pos
    return np.where(a == 0, 1 << 30, np.where(positive, result_pos, result_neg))


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (
        1.0 * ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits)) / (1 << left_shift)
    )
    return int(math.floor(max_input_rescaled))
