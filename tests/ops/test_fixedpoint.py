"""Fixed-point primitives against values worked out by hand from their definitions."""
from __future__ import annotations

import numpy as np

from edgert.ops import fixedpoint as fp


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
