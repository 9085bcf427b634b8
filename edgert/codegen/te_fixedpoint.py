"""The fixed-point formulas of edgert.ops.fixedpoint as TVM TE expressions.

Each function takes and returns TIR expressions; int32 values are widened to int64 only
where the reference does its arithmetic in 64 bits. Same semantics, same names.
"""
from __future__ import annotations

import numpy as np
from tvm import tirx

I32, I64 = "int32", "int64"


def const(v: int, dtype: str = I32):
    return tirx.const(v, dtype)


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul, as floor((a*b + 2^30) / 2^31): equal to gemmlowp's
    (a*b + nudge) / 2^31 truncated, with nudge 2^30 for a*b >= 0 and 1 - 2^30 below, because
    for v < 0, ceil((v + 1 - 2^30) / 2^31) = floor((v + 2^30) / 2^31). One 64-bit add and
    shift instead of a select and a signed division (on Armv7-M: SMULL, ADDS/ADC, two shifts).
    The saturating case (both INT32_MIN) cannot occur: every multiplier edgert derives is
    positive, and the constants of the exp/reciprocal formulas are not INT32_MIN."""
    ab = a.astype(I64) * b.astype(I64)
    return ((ab + const(1 << 30, I64)) >> const(31, I64)).astype(I32)


def rounding_divide_by_pot(x, exponent):
    """x / 2**exponent, rounded half away from zero; x int32, exponent int32 >= 0."""
    if isinstance(exponent, int):
        if exponent == 0:
            return x
        exponent = const(exponent)
    mask = (const(1) << exponent) - const(1)
    remainder = x & mask
    threshold = (mask >> const(1)) + tirx.Select(x < const(0), const(1), const(0))
    return (x >> exponent) + tirx.Select(remainder > threshold, const(1), const(0))


def _rounding_divide_by_pot_positive(x, exponent):
    """rounding_divide_by_pot for exponent >= 1 and x > INT32_MIN, in four operations: with
    y = x - 1 for x < 0 (else x), the result is floor(y / 2^e) plus bit e-1 of y. For x >= 0
    that is round half up; for x < 0, subtracting 1 first turns a tie (remainder exactly
    2^(e-1)) into a remainder below it, so ties go away from zero, and a remainder of 0 borrows
    from the quotient and sets bit e-1, which gives the quotient back."""
    if isinstance(exponent, int):
        exponent = const(exponent)
    y = x + (x >> const(31))
    return (y >> exponent) + ((y >> (exponent - const(1))) & const(1))


def multiply_by_quantized_multiplier(x, mult, shift, shifts=None):
    """TFLite MultiplyByQuantizedMultiplier; ``mult``/``shift`` are ints (per-tensor, folded at
    build time) or int32 expressions (per channel), whose values ``shifts`` (the per-channel
    array, when given) tells: a left shift no channel has is left out, and a right shift every
    channel has (at least 1) takes the shorter rounding. srdhm's result is never INT32_MIN
    (|mult| < 2^31), as that rounding needs."""
    m = const(mult) if isinstance(mult, int) else mult
    if isinstance(shift, int):
        left, right = max(shift, 0), max(-shift, 0)
        xs = x << const(left) if left else x
        high = srdhm(xs, m)
        return _rounding_divide_by_pot_positive(high, right) if right else high
    lefts = shifts is None or int(np.max(shifts)) > 0
    high = srdhm(x << tirx.max(shift, const(0)) if lefts else x, m)
    if shifts is not None and int(np.min(-np.asarray(shifts))) >= 1:
        return _rounding_divide_by_pot_positive(high, -shift)
    return rounding_divide_by_pot(high, tirx.max(-shift, const(0)))


def saturating_shift_left(x, exponent: int):
    threshold = (1 << (31 - exponent)) - 1
    return tirx.Select(
        x > const(threshold), const((1 << 31) - 1),
        tirx.Select(x < const(-threshold), const(-(1 << 31)), x << const(exponent)),
    )


def rounding_half_sum(a, b):
    s = a.astype(I64) + b.astype(I64)
    s = s + tirx.Select(s >= const(0, I64), const(1, I64), const(-1, I64))
    return tirx.truncdiv(s, const(2, I64)).astype(I32)


# one_over_one_plus_x_for_x_in_0_1 in steps. Each step reads the previous one's value once
# per use; callers keep each step in its own stage, so the expression does not grow
# exponentially with the Newton-Raphson iterations.

def reciprocal_half_denominator(a):
    return rounding_half_sum(a, const((1 << 31) - 1))


def reciprocal_initial(hd):
    return const(1515870810) + srdhm(hd, const(-1010580540))


def reciprocal_newton_step(hd, x):
    return x + saturating_shift_left(srdhm(x, const(1 << 29) - srdhm(hd, x)), 2)


def reciprocal_final(x):
    return saturating_shift_left(x, 1)


RECIPROCAL_STEPS = 3


def expr(x):
    """A TE tensor element (``T[i]``, a TensorSlice) as a plain TIR expression."""
    return x.asobject() if hasattr(x, "asobject") else x


def dtype_of(x) -> str:
    """The dtype string of a TIR expression (0.27 keeps it on ``x.ty``)."""
    return str(expr(x).ty)


def clamp(x, lo, hi, dtype: str):
    """Clamp an int32 (or float) expression to [lo, hi] and cast; infinite bounds are skipped."""
    t = dtype_of(x)
    if lo is not None and lo != float("-inf"):
        x = tirx.max(x, tirx.const(lo, t))
    if hi is not None and hi != float("inf"):
        x = tirx.min(x, tirx.const(hi, t))
    return x.astype(dtype) if t != dtype else x


def clz32(x):
    """Count leading zeros of a positive int32: TVM's clz intrinsic, which LLVM (CPU and
    NVPTX) lowers itself and edgert.codegen.emit.tir lowers to edgert_clz32 in the C prelude."""
    return tirx.clz(x)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("te", "tirx", "np", "annotations")]
