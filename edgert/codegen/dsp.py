"""The DSP form of int8 dot products (edgert.ops.forms.dsp_dot) as TE expressions.

A dot product over K int8 values is computed four values at a time: each operand's four bytes
are one word (``edgert_load_s8x4``: an unaligned LDR on Armv7E-M), and one step
(``edgert_smlad_s8x4``) sign-extends the even and the odd bytes of both words into halfword
pairs (SXTB16, SXTB16 ROR #8) and accumulates the two pairs' products (two SMLAD). Because both
words are split the same way, the pairing is exact: x0*w0 + x2*w2 + x1*w1 + x3*w3, the same
int32 sum (wrapping alike) as the scalar loop. Fewer than four trailing values (K % 4) are
a scalar reduction of their own, added to it.

The step takes the accumulator, which TE's ``te.sum`` cannot express, so it is a reducer
(DOT) whose element is the pair of words and whose combine is acc' = step(acc, x, w). That is
no commutative monoid, but TVM's serial lowering applies a reducer in order, acc = combine(acc,
element), and edgert's schedules neither rfactor nor parallelize these reductions. (TVM 0.27's
``tensorize`` would be the standard tool; in the pip build it crashes: it copies the intrinsic
through ``save_json``, which segfaults on every PrimFunc.)

The C of both helpers is in edgert.codegen.emit.tir.HELPERS; without the DSP extension they
compute the same sums in portable C, so the form can be tested on any host.
"""
from __future__ import annotations

import numpy as np
from tvm import te, tirx


def word(t: te.Tensor, *index) -> tirx.PrimExpr:
    """The four int8 values of ``t`` from ``index`` on (contiguous in memory), as one int32."""
    load = t[index].asobject()
    return tirx.call_pure_extern("int32", "edgert_load_s8x4", tirx.call_intrin("handle", "tirx.address_of", load))


def _combine(acc, element):
    x, w = element
    return tirx.call_pure_extern("int32", "edgert_smlad_s8x4", acc[0], x, w), acc[1]


def _identity(t0, t1):
    return tirx.const(0, t0), tirx.const(0, t1)


DOT = te.comm_reducer(_combine, _identity, name="dot_s8x4")


def _combine_lane(acc, element):
    x, w, lane = element
    return tirx.call_pure_extern("int32", "edgert_smla_s8_lane", acc[0], x, w, lane), acc[1], acc[2]


#: Per-channel products from words of four channels (depthwise convolutions): the element is
#: (x word, w word, lane), the step adds the lane's byte product (SXTB16 and SMLABB/SMLATT).
LANE = te.comm_reducer(_combine_lane, lambda t0, t1, t2: (tirx.const(0, t0), tirx.const(0, t1), tirx.const(0, t2)),
                       name="mla_s8_lane")


def _combine_s4(acc, element):
    x0, x1, w = element
    return tirx.call_pure_extern("int32", "edgert_smlad_s4x8", acc[0], x0, x1, w), acc[1], acc[2]


#: Dot products of int8 values with int4 weights, eight at a time: the element is (the words
#: of values 0-3 and 4-7, the word of their eight weights in int4_words' layout).
S4 = te.comm_reducer(_combine_s4, lambda t0, t1, t2: (tirx.const(0, t0), tirx.const(0, t1), tirx.const(0, t2)),
                     name="dot_s4x8")


def int4_words(rows: np.ndarray) -> np.ndarray:
    """int4 weights [rows, K] (K a multiple of 8, values in [-8, 7]) as the bytes the DSP form
    reads, [rows, K / 2]: byte b of word j holds value 8j+b in its low nibble and value 8j+4+b
    in its high one. Shifting a word left by 4 and masking 0xF0F0F0F0 gives values 8j..8j+3
    times 16 as int8 bytes, masking alone gives 8j+4..8j+7 times 16: two words the step takes
    as they are (edgert_smlad_s4x8). The same flash bytes as edgert.ops.packing's int4."""
    r, k = rows.shape
    v = (rows.astype(np.int16) & 0xF).astype(np.uint8).reshape(r, k // 8, 2, 4)
    return (v[:, :, 0, :] | (v[:, :, 1, :] << 4)).reshape(r, k // 2).view(np.int8)


def dot_s4(shape, X: te.Tensor, x_index, W: te.Tensor, w_index, outer: list[int], length: int):
    """dot_s8 for int4 weights in int4_words' layout (``length`` a multiple of 8; ``w_index``
    indexes W's bytes: k/2 for value k): the sum comes out 16 times too large, exactly, and
    is shifted back."""
    r = [te.reduce_axis((0, e), name=f"r{j}") for j, e in enumerate(outer)]
    k = te.reduce_axis((0, length // 8), name="rk")

    def element(*i):
        return (word(X, *x_index(i, r, 8 * k)), word(X, *x_index(i, r, 8 * k + 4)), word(W, *w_index(i, r, 4 * k)))

    acc = te.compute(shape, lambda *i: S4(element(*i), axis=[*r, k]), name="acc")[0]
    return lambda *i: acc(*i) >> tirx.const(4, "int32")


def lanes(channels: int, most: int = 4) -> int:
    """Output channels computed together (each input word is loaded once for all of them)."""
    return next(n for n in (4, 2, 1) if n <= most and channels % n == 0)


def block(columns: int, channels: int) -> tuple[int, int]:
    """A convolution's block of accumulators: (output columns, output channels). Two columns
    by two channels (each input word then serves two channels and each weight word two
    columns, in the registers Armv7-M has); an odd last column is the block's guarded half
    (TVM's split predicate: its loads are inside the test). One column by four channels for
    outputs one column wide. Measured on the emulated M7 (instructions per inference, 2x2
    against 1x4; 1x2 ... 4x4 tried): IC 20.0 M against 24.5 M, VWW 16.3 M against 17.3 M, KWS
    (five columns) 6.30 M against 6.65 M; 2x4 spills registers (IC 23.0 M)."""
    if columns >= 2:
        return 2, lanes(channels, 2)
    return 1, lanes(channels)


def dot_s8(shape, X: te.Tensor, x_index, W: te.Tensor, w_index, outer: list[int], length: int):
    """acc[i] = sum over the ``outer`` reduction axes (their extents) and k < ``length`` of
    X[x_index(i, r, k)] * W[w_index(i, r, k)], where both indexes are contiguous in k (r: the
    outer reduction variables). Returns acc as a function of the output index. Stages: "acc"
    (the runs of four) and, when length % 4, "acc_tail"."""
    runs, tail = divmod(length, 4)

    def axes():
        return [te.reduce_axis((0, e), name=f"r{j}") for j, e in enumerate(outer)]

    r, k = axes(), te.reduce_axis((0, runs), name="rk")
    acc = te.compute(shape, lambda *i: DOT((word(X, *x_index(i, r, 4 * k)), word(W, *w_index(i, r, 4 * k))),
                                           axis=[*r, k]), name="acc")[0]
    if not tail:
        return lambda *i: acc(*i)
    rt, kt = axes(), te.reduce_axis((4 * runs, length), name="rt")
    rest = te.compute(shape, lambda *i: te.sum(X[x_index(i, rt, kt)].astype("int32") * W[w_index(i, rt, kt)].astype("int32"),
                                               axis=[*rt, kt]), name="acc_tail")
    return lambda *i: acc(*i) + rest(*i)


def depthwise_s8(shape, X: te.Tensor, x_index, W: te.Tensor, w_index, taps: list[int], inside=None, pad_byte: int = 0):
    """acc[i] = sum over the ``taps`` axes (their extents) of X[x_index(i, r, c)] *
    W[w_index(i, r, c)] at channel c = i[-1], read as words of the four channels from c - c % 4
    on (both indexes contiguous in the channel). ``inside(i, r)``: whether the tap lies in X;
    outside it, X reads four ``pad_byte`` values (the zero point). Stage "acc"."""
    r = [te.reduce_axis((0, e), name=f"r{j}") for j, e in enumerate(taps)]
    pad_word = tirx.const(int.from_bytes(bytes([pad_byte & 0xFF] * 4), "little", signed=True), "int32")

    def element(*i):
        c = i[-1]
        base = tirx.floordiv(c, 4) * 4
        x = word(X, *x_index(i, r, base))
        if inside is not None:
            x = tirx.if_then_else(inside(i, r), x, pad_word)
        return x, word(W, *w_index(i, r, base)), tirx.floormod(c, 4)

    acc = te.compute(shape, lambda *i: LANE(element(*i), axis=r), name="acc")[0]
    return lambda *i: acc(*i)


def requantizer(c, mult, shift, bound: int, key: str = "mult"):
    """TFLite's MultiplyByQuantizedMultiplier in fewer instructions, where the values allow it:
    no left shift, and |x| <= ``bound`` < 2^30. Then srdhm(x, m) = floor((x*m + 2^30) / 2^31)
    = floor((2x*m + 2^31) / 2^32), one SMMULR of 2x (``edgert_srdhm_small``, exact while 2x fits
    in 32 bits), and the rounding division by 2^e (half away from zero) is
    ((y >> (e-1)) + 1) >> 1 with y = x - (x < 0): (y >> (e-1)) is twice floor(y / 2^e) plus bit
    e-1 of y, and adding that bit is the rounding of edgert.codegen.te_fixedpoint.
    ``mult``/``shift``: ints (per tensor) or per-channel arrays, whose e-1 is a table (every
    channel must then shift right). Returns f(x, channel) -> the int32 result, or None where
    the values do not allow it."""
    mult, shift = np.atleast_1d(np.asarray(mult)), np.atleast_1d(np.asarray(shift))
    if int(np.max(shift)) > 0 or bound >= 1 << 30:
        return None
    per_channel = not (np.all(mult == mult[0]) and np.all(shift == shift[0]))
    if per_channel:
        if int(np.max(shift)) > -1:
            return None
        M = c.const(key, mult.astype(np.int32))
        E = c.const(f"r{key}", (-shift.astype(np.int64) - 1).astype(np.int32))
    m0, e0 = int(mult[0]), int(-shift[0])

    def f(x, o=None):
        m = M[o] if per_channel else tirx.const(m0, "int32")
        high = tirx.call_pure_extern("int32", "edgert_srdhm_small", x, m)
        if not per_channel and e0 == 0:
            return high
        e1 = E[o] if per_channel else tirx.const(e0 - 1, "int32")
        y = high + (high >> tirx.const(31, "int32"))
        return ((y >> e1) + tirx.const(1, "int32")) >> tirx.const(1, "int32")

    return f


def saturate_int8(x, lo: int, hi: int):
    """x clamped to [lo, hi] within int8, as int8: SSAT to 8 bits (``edgert_ssat8``), then the
    activation's tighter bounds, if any."""
    v = tirx.call_pure_extern("int32", "edgert_ssat8", x)
    if lo > -128:
        v = tirx.max(v, tirx.const(lo, "int32"))
    if hi < 127:
        v = tirx.min(v, tirx.const(hi, "int32"))
    return v.astype("int8")
