"""TVM TE computations of the binary ops (semantics: edgert.kernels.binary), and of the
float sign and relu that binary graphs from ONNX bring along (edgert.kernels.unary).

Bit-packed tensors are int32 words; the arithmetic on them is done in uint32 (XOR, shifts,
popcount) so that bit 31 is an ordinary bit and no signed overflow can occur in C. popcount
is TVM's ``tirx.popcount``, which edgert.codegen.c_emit lowers to a branch-free helper (the
Cortex-M has no popcount instruction).
"""
from __future__ import annotations

import numpy as np
from tvm import te, tirx

from edgert.ir import DType
from edgert.kernels import binary

from .te_fixedpoint import clamp

U32 = "uint32"
I32 = "int32"
WORD = 32


def _inside(iy, ix, h: int, w: int):
    return tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)


def _or_words(shape, channels: int, negative, name: str) -> te.Tensor:
    """Pack: word [..., j] has bit b set where ``negative(..., 32 j + b)``; bits past
    ``channels`` stay 0. The bits are disjoint, so their sum is their OR."""
    b = te.reduce_axis((0, WORD), name="bit")

    def word(*i):
        c = i[-1] * WORD + b
        bit = tirx.if_then_else(tirx.all(c < channels, negative(*i[:-1], c)),
                                tirx.const(1, U32) << b.astype(U32), tirx.const(0, U32))
        return te.sum(bit, axis=b)

    packed = te.compute(shape, word, name=f"{name}_bits")
    return te.compute(shape, lambda *i: tirx.reinterpret(I32, packed(*i)), name=name)


def lower_quantize(c) -> te.Tensor:
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    channels = op.attrs["channels"]
    if x.dtype is DType.F32:
        negative = lambda *i: X(*i) < tirx.const(0.0, "float32")
    else:
        zp = op.attrs["in_zp"]
        negative = lambda *i: X(*i).astype(I32) < zp
    return _or_words(y.shape, channels, negative, "out")


def lower_dequantize(c) -> te.Tensor:
    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    a = op.attrs
    dt = y.dtype.np_name
    plus, minus = tirx.const(a["plus"], dt), tirx.const(a["minus"], dt)

    def f(*i):
        word = tirx.reinterpret(U32, X(*i[:-1], i[-1] // WORD))
        bit = (word >> (i[-1] % WORD).astype(U32)) & tirx.const(1, U32)
        return tirx.Select(bit != tirx.const(0, U32), minus, plus)

    return te.compute(y.shape, f, name="out")


def _window_popcount(c, X, F):
    """acc(b, oy, ox, o) = the XOR-popcount of filter o of F ([o, kh, kw, words]) over its
    window of X, out-of-bounds taps as the op's padding says (edgert.kernels.binary)."""
    op, g = c.op, c.g
    a = op.attrs
    _, h, wd, nw = g.tensor(op.inputs[0]).shape
    _, kh, kw, _ = g.tensor(op.inputs[1]).shape
    (sh, sw), (dh, dw), (pt, pl) = a["stride"], a["dilation"], a["pad"]
    guard = binary.padded(op, g)
    ry, rx, rj = (te.reduce_axis((0, e), name=nm) for e, nm in ((kh, "ry"), (kw, "rx"), (nw, "rj")))
    half = a["channels_in"] // 2

    def acc(b, oy, ox, o):
        iy, ix = oy * sh + ry * dh - pt, ox * sw + rx * dw - pl
        wv = tirx.reinterpret(U32, F[o, ry, rx, rj])
        xv = tirx.reinterpret(U32, X[b, iy, ix, rj])
        if not guard:
            term = tirx.popcount(xv ^ wv).astype(I32)
        elif a["zero_padding"]:  # an outside tap counts floor(Cin/2) once: 0 in K - 2 acc
            term = tirx.if_then_else(_inside(iy, ix, h, wd), tirx.popcount(xv ^ wv).astype(I32),
                                     tirx.if_then_else(rj == 0, tirx.const(half, I32), tirx.const(0, I32)))
        else:  # one padding: an outside tap reads the all-+1 word 0
            term = tirx.if_then_else(_inside(iy, ix, h, wd), tirx.popcount(xv ^ wv), tirx.popcount(wv)).astype(I32)
        return te.sum(term, axis=[ry, rx, rj])

    return acc


class _OhwiView:
    """A (kh, kw, words, cout) filter tensor indexed as (cout, kh, kw, words)."""

    def __init__(self, hwio: te.Tensor):
        self.hwio = hwio

    def __getitem__(self, index):
        o, ry, rx, rj = index
        return self.hwio[ry, rx, rj, o]


def lower_bconv(c) -> te.Tensor:
    op, g = c.op, c.g
    a = op.attrs
    y = g.tensor(op.outputs[0])
    cout = g.tensor(op.inputs[1]).shape[0]
    acc_shape = (*y.shape[:3], cout)
    X = c.act(op.inputs[0])
    if "mst" in a:  # with reuse: the centers' filters only
        acc = _mst_acc(c, X, acc_shape)
    elif c.channels_inner:  # filters stored (kh, kw, words, cout): contiguous along the vector of channels
        w = g.tensor(op.inputs[1]).data
        acc = te.compute(acc_shape, _window_popcount(c, X, _OhwiView(c.const("f_hwio", w.transpose(1, 2, 3, 0)))),
                         name="acc")
    else:
        acc = te.compute(acc_shape, _window_popcount(c, X, c.act(op.inputs[1])), name="acc")
    if y.dtype is DType.I32:
        T = c.act(op.inputs[4])
        return _or_words(y.shape, cout, lambda b, oy, ox, oc: acc[b, oy, ox, oc] > T[oc], "out")

    M = c.const("m", np.asarray(a["m"], dtype=np.float32))
    B = c.const("b", np.asarray(a["b"], dtype=np.float32))

    def transform(b, oy, ox, oc):
        if a.get("transform") == "dot":  # y = (K - 2 acc) * alpha + beta
            xq = tirx.const(a["k"], I32) - acc[b, oy, ox, oc] * 2
        else:
            xq = clamp(acc[b, oy, ox, oc] * 2, a["clamp_min"], a["clamp_max"], I32)
        return c.product(xq.astype("float32"), M[oc]) + B[oc]  # two roundings, as LCE's reference

    if y.dtype is DType.F32:
        return te.compute(y.shape, transform, name="out")

    def to_int8(*i):
        r = tirx.round(transform(*i))  # C roundf: half away from zero, as LCE's TfLiteRound
        r = tirx.max(tirx.min(r, tirx.const(1e9, "float32")), tirx.const(-1e9, "float32"))
        return clamp(r.astype(I32), -128, 127, "int8")

    return te.compute(y.shape, to_int8, name="out")


def _mst_acc(c, X, shape) -> te.Tensor:
    """The popcount accumulators with channel reuse (edgert.passes.mst): centers in full,
    every other channel as its center's accumulator plus sum(|D|) - 2 sum(popcount((x & D) ^ E))
    over its difference entries. Computed once per output position ("pos_" stages)."""
    from edgert.passes import mst

    op, g = c.op, c.g
    a = op.attrs
    plan = a["mst"]
    w = g.tensor(op.inputs[1]).data
    _, h, wd, _ = g.tensor(op.inputs[0]).shape
    cout = w.shape[0]
    (sh, sw), (dh, dw), (pt, pl) = a["stride"], a["dilation"], a["pad"]
    centers = plan["centers"]
    others = [ch for ch in range(cout) if plan["center_of"][ch] != ch]
    ent = mst.entries(w, plan["center_of"], plan["bound"])
    WC = c.const("mst_w", np.ascontiguousarray(w[centers]))
    KY, KX, J = c.const("mst_ky", ent["ky"]), c.const("mst_kx", ent["kx"]), c.const("mst_j", ent["j"])
    D, E = c.const("mst_d", ent["d"]), c.const("mst_e", ent["e"])
    slot = {ch: i for i, ch in enumerate(centers)}
    slot.update({ch: i for i, ch in enumerate(others)})
    CIDX = c.const("mst_center", np.array([slot[plan["center_of"][ch]] for ch in others] or [0], np.int32))
    IS_CENTER = c.const("mst_is_center", np.array([plan["center_of"][ch] == ch for ch in range(cout)], np.int32))
    SLOT = c.const("mst_slot", np.array([slot[ch] for ch in range(cout)], np.int32))
    n, oh, ow = shape[:3]
    guard = binary.padded(op, g)
    acc_c = te.compute((n, oh, ow, len(centers)), _window_popcount(c, X, WC), name="pos_centers")
    re = te.reduce_axis((0, ent["d"].shape[1]), name="re")
    re2 = te.reduce_axis((0, ent["d"].shape[1]), name="re2")

    def delta(b, oy, ox, i):
        iy, ix = oy * sh + KY[i, re] * dh - pt, ox * sw + KX[i, re] * dw - pl
        d = tirx.reinterpret(U32, D[i, re])
        e = tirx.reinterpret(U32, E[i, re])
        xv = tirx.reinterpret(U32, X[b, iy, ix, J[i, re]])
        if not guard:
            term = tirx.popcount((xv & d) ^ e).astype(I32)
        elif a["zero_padding"]:  # every channel adds the same outside the input: no difference
            term = tirx.if_then_else(_inside(iy, ix, h, wd), tirx.popcount((xv & d) ^ e).astype(I32),
                                     tirx.const(0, I32))
        else:                    # one padding: x is the word 0 there
            term = tirx.popcount(tirx.if_then_else(_inside(iy, ix, h, wd), (xv & d) ^ e, e)).astype(I32)
        return te.sum(term, axis=re)
    diff = te.compute((n, oh, ow, max(len(others), 1)), delta, name="pos_diffs")
    # |D| summed over a channel's entries; with zero padding only the entries inside count
    # it, so there it is added per entry instead.
    if guard and a["zero_padding"]:
        cnt = te.compute((n, oh, ow, max(len(others), 1)), lambda b, oy, ox, i: te.sum(tirx.if_then_else(
            _inside(oy * sh + KY[i, re2] * dh - pt, ox * sw + KX[i, re2] * dw - pl, h, wd),
            tirx.popcount(tirx.reinterpret(U32, D[i, re2])).astype(I32), tirx.const(0, I32)), axis=re2),
            name="pos_dbits")
        dbits = lambda b, oy, ox, i: cnt[b, oy, ox, i]
    else:
        DB = c.const("mst_dbits", np.array([int(np.unpackbits(ent["d"][i].view(np.uint8)).sum())
                                            for i in range(ent["d"].shape[0])], np.int32))
        dbits = lambda b, oy, ox, i: DB[i]
    return te.compute(shape, lambda b, oy, ox, oc: tirx.if_then_else(
        IS_CENTER[oc] != 0, acc_c[b, oy, ox, SLOT[oc]],
        acc_c[b, oy, ox, CIDX[SLOT[oc]]] + dbits(b, oy, ox, SLOT[oc]) - diff[b, oy, ox, SLOT[oc]] * 2), name="acc")


def lower_bmaxpool(c) -> te.Tensor:
    op, g = c.op, c.g
    a = op.attrs
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    _, h, wd, _ = x.shape
    (fh, fw), (sh, sw), (pt, pl) = a["filter"], a["stride"], a["pad"]
    X = c.act(op.inputs[0])
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    ones = tirx.const(0xFFFFFFFF, U32)
    band = te.comm_reducer(lambda p, q: p & q, lambda t: tirx.const(0xFFFFFFFF, t), name="bit_and")

    def f(b, oy, ox, j):
        iy, ix = oy * sh + ry - pt, ox * sw + rx - pl
        v = tirx.if_then_else(_inside(iy, ix, h, wd), tirx.reinterpret(U32, X[b, iy, ix, j]), ones)
        return band(v, axis=[ry, rx])  # padding positions are left out of the window

    red = te.compute(y.shape, f, name="acc")
    return te.compute(y.shape, lambda *i: tirx.reinterpret(I32, red(*i)), name="out")


def lower_unary(c) -> te.Tensor:
    """sign (ONNX: 0 stays 0) and relu, float32."""
    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    zero, one = tirx.const(0.0, "float32"), tirx.const(1.0, "float32")
    if op.kind == "relu":
        return te.compute(y.shape, lambda *i: tirx.max(X(*i), zero), name="out")
    return te.compute(y.shape, lambda *i: tirx.Select(X(*i) > zero, one,
                                                      tirx.Select(X(*i) < zero, -one, zero)), name="out")


LOWER = {
    "sign": lower_unary,
    "relu": lower_unary,
    "lce_quantize": lower_quantize,
    "lce_dequantize": lower_dequantize,
    "bconv2d": lower_bconv,
    "bmaxpool2d": lower_bmaxpool,
}
