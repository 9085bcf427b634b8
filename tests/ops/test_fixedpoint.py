"""Fixed-point primitives against values worked out by hand from their definitions."""
from __future__ import annotations

import numpy as np

from edgert.ops import fixedpoint as fp
from edgert.ops.fixedpoint import INT32_MAX, INT32_MIN


def test_quantize_multiplier():
    assert fp.quantize_multiplier(0.5) == (1 << 30, 0)
    assert fp.quantize_multiplier(1.0) == (1 << 30, 1)
    assert fp.quantize_multiplier(0.0) == (0, 0)
    m, s = fp.quantize_multiplier(0.0123)
    assert abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-9
    # q rounds up to exactly 2**31: halved, exponent bumped (QuantizeMultiplier's correction)
    assert fp.quantize_multiplier(1 - 2 ** -40) == (1 << 30, 1)


def test_rounding_divide_by_pot_ties_away_from_zero():
    x = np.array([5, -5, 6, -6, 7, -7])
    np.testing.assert_array_equal(fp.rounding_divide_by_pot(x, 1), [3, -3, 3, -3, 4, -4])


def test_srdhm():
    assert fp.srdhm(1 << 30, 1 << 30) == 1 << 29
    assert fp.srdhm(-(1 << 31), -(1 << 31)) == (1 << 31) - 1  # the one saturating case
    assert fp.srdhm(-3, 1 << 30) == -1  # -1.5: the negative nudge makes ties go toward zero


def test_the_generated_kernels_shorter_roundings_equal_gemmlowps():
    """edgert.codegen.te_fixedpoint computes srdhm as floor((a*b + 2^30) / 2^31) and rounds a
    division by 2^e (e >= 1) as (y >> e) + ((y >> (e-1)) & 1) with y = x - (x < 0); the same
    formulas in numpy equal gemmlowp's, over random values and the edges."""
    rng = np.random.default_rng(7)
    edges = np.array([INT32_MIN + 1, INT32_MIN + 2, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, INT32_MAX - 1, INT32_MAX])
    a = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 200_000, endpoint=True), np.repeat(edges, len(edges))])
    b = np.concatenate([rng.integers(INT32_MIN + 1, INT32_MAX, 200_000, endpoint=True), np.tile(edges, len(edges))])
    short = (a.astype(np.int64) * b + (1 << 30)) >> 31
    np.testing.assert_array_equal(short, fp.srdhm(a, b))
    x = fp.srdhm(a, np.abs(b))  # what the rounding divides in a requantization: never INT32_MIN
    assert x.min() > INT32_MIN
    for e in range(1, 32):
        y = x + (x >> 63)
        np.testing.assert_array_equal((y >> e) + ((y >> (e - 1)) & 1), fp.rounding_divide_by_pot(x, e), err_msg=f"e={e}")
