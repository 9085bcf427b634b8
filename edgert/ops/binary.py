"""Binary (1-bit) layers with Larq Compute Engine semantics: lce_quantize (float32 / int8 ->
bit-packed), lce_dequantize (bit-packed -> float32 / int8), bconv2d (XOR-popcount
convolution with a fused per-channel multiplier and bias) and bmaxpool2d.

Bit packing: a tensor [..., C] becomes int32 words [..., ceil(C/32)], channel c in bit
c % 32 of word c // 32 (bit 0 the least significant). Bit 1 is -1 (the value was < 0, or an
int8 below its zero point), bit 0 is +1. Unused high bits of the last word are 0.

bconv2d, with acc = the XOR-popcount over the window and K = kh * kw * channels_in:
  * out-of-bounds taps with pad_values 1 read the all-+1 word 0; with pad_values 0 (zero
    padding) each adds floor(channels_in / 2) to acc, which is 0 in K - 2 * acc;
  * float32 output: x = clamp(2 * acc, K - act_hi, K - act_lo) (int32), then
    y = float32(x) * m' + b' in float32, one rounding per operation (no FMA), where
    m' = float32(-M / s), b' = float32((B + K * M) / s + zp) computed in double; s = 1 and
    zp = 0 for float32, the output's scale and zero point for int8;
  * int8 output: the same y, rounded half away from zero, saturated to [-128, 127];
  * bit-packed output: bit oc is acc > threshold[oc] (int32, signed).
This is LCE's reference kernel. (LCE's optimized kernels apply zero padding as a float
correction afterwards and can differ from it by a few ULP; edgert follows the reference.)

Binary layers recognised in float graphs (edgert.passes.binarize) use the "dot" transform
instead, the float graph's own arithmetic: y = float32(K - 2 * acc) * alpha + beta.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op
from edgert.ir.activations import FUSED_ACTIVATIONS

from .common import fail, require_per_tensor
from .fixedpoint import INT32_MAX, INT32_MIN, tflite_round

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te

I8, I32, F32 = DType.I8, DType.I32, DType.F32
WORD = 32

#: fused activation -> the clamp LCE applies to the integer K - 2 * acc
_ACT_RANGE = {act: (INT32_MIN if lo == -math.inf else int(lo), INT32_MAX if hi == math.inf else int(hi))
              for act, (lo, hi) in FUSED_ACTIVATIONS.items()}


def words(channels: int) -> int:
    return (channels + WORD - 1) // WORD


# --------------------------------------------------------------------------- check / prepare


def check(op: Op, g: Graph) -> None:
    ins, outs = g.in_tensors(op), g.out_tensors(op)
    x, y = ins[0], outs[0]
    if op.kind == "lce_quantize":
        if x.dtype not in (F32, I8) or y.dtype is not I32:
            raise fail(op, f"expected float32 or int8 in, bit-packed int32 out; got {x.dtype.short} -> "
                           f"{y.dtype.short}", "re-export the model with the Larq Compute Engine converter")
        if x.dtype is I8:
            require_per_tensor(op, x, "input")
        _require_packed(op, y, x.shape[-1], "output")
    elif op.kind == "lce_dequantize":
        if x.dtype is not I32 or y.dtype not in (F32, I8):
            raise fail(op, f"expected bit-packed int32 in, float32 or int8 out; got {x.dtype.short} -> "
                           f"{y.dtype.short}", "re-export the model with the Larq Compute Engine converter")
        if y.dtype is I8:
            require_per_tensor(op, y, "output")
        _require_packed(op, x, y.shape[-1], "input")
    elif op.kind == "bconv2d":
        _check_bconv(op, g)
    elif op.kind == "bmaxpool2d":
        if x.dtype is not I32 or y.dtype is not I32:
            raise fail(op, "expected bit-packed int32 input and output", "check the model")


def padded(op: Op, g: Graph) -> bool:
    """Whether any tap of the convolution falls outside the input (on any side)."""
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    bottom = (y.shape[1] - 1) * sh + (w.shape[1] - 1) * dh + 1 - pt - x.shape[1]
    right = (y.shape[2] - 1) * sw + (w.shape[2] - 1) * dw + 1 - pl - x.shape[2]
    return pt > 0 or pl > 0 or bottom > 0 or right > 0


def _require_packed(op: Op, t, channels: int, role: str) -> None:
    if t.shape[-1] != words(channels):
        raise fail(op, f"{role} {t.name} has {t.shape[-1]} words for {channels} channels "
                       f"(expected {words(channels)})", "the model is inconsistent; convert it again")


def _check_bconv(op: Op, g: Graph) -> None:
    x, w, mult, bias, thresh = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    cin = op.attrs["channels_in"]
    if x.dtype is not I32 or w.dtype is not I32:
        raise fail(op, f"input and filter must be bit-packed int32, got {x.dtype.short} and {w.dtype.short}",
                   "re-export the model with the Larq Compute Engine converter")
    if not w.is_const:
        raise fail(op, f"filter {w.name} is not constant", "edgert compiles models with constant weights")
    if w.shape[3] != words(cin):  # LCE infers the group count from the filter's words
        groups = words(cin) // w.shape[3] if w.shape[3] else 0
        raise fail(op, f"attribute groups = {groups} (filter of {w.shape[3]} words for channels_in {cin}): "
                       "grouped binary convolution is not supported yet",
                   "use groups = 1 in the Larq layer")
    _require_packed(op, x, cin, "input")
    cout = w.shape[0]
    if y.dtype in (F32, I8):
        for t, role in ((mult, "post_activation_multiplier"), (bias, "post_activation_bias")):
            if t is None or not t.is_const or t.dtype is not F32 or t.shape != (cout,):
                raise fail(op, f"{role} must be a constant float32[{cout}] for {y.dtype.short} output",
                           "re-export the model with the Larq Compute Engine converter")
        if y.dtype is I8:
            require_per_tensor(op, y, "output")
        if y.shape[-1] != cout:
            raise fail(op, f"output has {y.shape[-1]} channels, the filter {cout}", "check the model")
    elif y.dtype is I32:
        if thresh is None or not thresh.is_const or thresh.dtype is not I32 or thresh.shape != (cout,):
            raise fail(op, f"output_threshold must be a constant int32[{cout}] for a bit-packed output",
                       "re-export the model with the Larq Compute Engine converter")
        _require_packed(op, y, cout, "output")
        if op.attrs["pad_values"] == 0 and padded(op, g):
            raise fail(op, "attribute pad_values = 0 (zero padding) with a bit-packed output",
                       "LCE's converter never makes this combination; use pad_values=1.0 in the Larq layer")
    else:
        raise fail(op, f"output dtype {y.dtype.short}: expected float32, int8 or bit-packed int32", "check the model")
    if op.attrs["pad_values"] == 0 and padded(op, g) and cin % 2:
        raise fail(op, f"attribute pad_values = 0 with an odd channels_in ({cin})",
                   "LCE's zero padding needs an even number of input channels")


def prepare(op: Op, g: Graph) -> None:
    a = op.attrs
    if op.kind == "lce_quantize":
        x = g.tensor(op.inputs[0])
        a["channels"] = x.shape[-1]
        a["in_zp"] = x.quant.zp if x.dtype is I8 else 0
    elif op.kind == "lce_dequantize":
        y = g.tensor(op.outputs[0])
        a["channels"] = y.shape[-1]
        if y.dtype is I8:
            offset = tflite_round(float(np.float32(1.0) / np.float32(y.quant.scale[0])))
            a["plus"] = min(127, y.quant.zp + offset)
            a["minus"] = max(-128, y.quant.zp - offset)
        else:
            a["plus"], a["minus"] = 1.0, -1.0
    elif op.kind == "bconv2d":
        _prepare_bconv(op, g)


def _prepare_bconv(op: Op, g: Graph) -> None:
    a = op.attrs
    x, w, mult, bias, _ = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    kh, kw = w.shape[1], w.shape[2]
    k = kh * kw * a["channels_in"]
    a["k"] = k
    a["zero_padding"] = a["pad_values"] == 0 and padded(op, g)
    if y.dtype is I32:
        return
    if a.get("transform") == "dot":
        a["m"] = mult.data.astype(np.float32)
        a["b"] = bias.data.astype(np.float32)
        return
    s, zp = (float(y.quant.scale[0]), float(y.quant.zp)) if y.dtype is I8 else (1.0, 0.0)
    m = mult.data.astype(np.float64)
    b = bias.data.astype(np.float64)
    a["m"] = (-m / s).astype(np.float32)
    a["b"] = ((b + k * m) / s + zp).astype(np.float32)
    lo, hi = _ACT_RANGE[a["act"]]
    lo, hi = max(lo, -k), min(hi, k)
    a["clamp_min"], a["clamp_max"] = k - hi, k - lo


def macs(op: Op, g: Graph) -> int:
    """Binary ops count bit operations (one per input bit per output), the rest one per value."""
    if op.kind == "bconv2d":
        w = g.tensor(op.inputs[1])
        y = g.tensor(op.outputs[0])
        out_positions = y.size // y.shape[-1]
        return out_positions * w.shape[0] * w.shape[1] * w.shape[2] * op.attrs["channels_in"]
    return g.tensor(op.outputs[0]).size


# --------------------------------------------------------------------------- reference


def pack_bits(negative: np.ndarray) -> np.ndarray:
    """bool [..., C] (True = -1) -> int32 [..., ceil(C/32)], LCE's bit order."""
    c = negative.shape[-1]
    bits = np.zeros((*negative.shape[:-1], words(c) * WORD), dtype=np.uint64)
    bits[..., :c] = negative
    weights = (np.uint64(1) << np.arange(WORD, dtype=np.uint64))
    packed = (bits.reshape(*negative.shape[:-1], words(c), WORD) * weights).sum(axis=-1)
    return packed.astype(np.uint32).view(np.int32)


def unpack_bits(packed: np.ndarray, channels: int) -> np.ndarray:
    """int32 [..., W] -> bool [..., channels] (True = -1)."""
    u = packed.astype(np.int32).view(np.uint32)[..., :, None] >> np.arange(WORD, dtype=np.uint32)
    return (u & 1).astype(bool).reshape(*packed.shape[:-1], -1)[..., :channels]


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    a = op.attrs
    (y,) = g.out_tensors(op)
    xv = inputs[0]
    if op.kind == "lce_quantize":
        neg = xv < 0 if xv.dtype == np.float32 else xv.astype(np.int32) < a["in_zp"]
        return [pack_bits(neg)]
    if op.kind == "lce_dequantize":
        bits = unpack_bits(xv, a["channels"])
        return [np.where(bits, a["minus"], a["plus"]).astype(y.dtype.np)]
    if op.kind == "bmaxpool2d":
        return [_bmaxpool_ref(op, g, xv)]
    return [_bconv_ref(op, g, xv)]


def _taps(op: Op, h: int, w: int, oh: int, ow: int, kh: int, kw: int):
    """(ky, kx, iy[oh], ix[ow]) input coordinates under each filter tap (may be outside)."""
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, np.arange(oh) * sh + ky * dh - pt, np.arange(ow) * sw + kx * dw - pl


def _bconv_ref(op: Op, g: Graph, xv: np.ndarray) -> np.ndarray:
    a = op.attrs
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    (y,) = g.out_tensors(op)
    cin = a["channels_in"]
    n, h, wd, _ = x.shape
    cout, kh, kw, _ = w.shape
    oh, ow = y.shape[1], y.shape[2]
    xb = unpack_bits(xv, cin).astype(np.int32)                       # [n, h, w, cin], 1 = -1
    wb = unpack_bits(w.data, cin).astype(np.int32)                   # [cout, kh, kw, cin]
    acc = np.zeros((n, oh, ow, cout), dtype=np.int64)
    for ky, kx, iy, ix in _taps(op, h, wd, oh, ow, kh, kw):
        inside = ((iy >= 0) & (iy < h))[:, None] & ((ix >= 0) & (ix < wd))[None, :]   # [oh, ow]
        patch = xb[:, np.clip(iy, 0, h - 1)][:, :, np.clip(ix, 0, wd - 1)]             # [n, oh, ow, cin]
        patch = np.where(inside[None, :, :, None], patch, 0)           # outside: the word 0 (+1)
        # popcount(a ^ w) per channel: a + w - 2 a w for bits
        diff = patch.sum(-1)[..., None] + wb[:, ky, kx, :].sum(-1) - 2 * (patch @ wb[:, ky, kx, :].T)
        if a["zero_padding"]:
            diff = np.where(inside[None, :, :, None], diff, cin // 2)
        acc += diff
    if y.dtype is I32:
        bits = acc > g.tensor(op.inputs[4]).data.astype(np.int64)
        return pack_bits(bits)
    if a.get("transform") == "dot":
        xq = (a["k"] - 2 * acc).astype(np.int32)
    else:
        xq = np.clip(2 * acc, a["clamp_min"], a["clamp_max"]).astype(np.int32)
    out = xq.astype(np.float32) * a["m"] + a["b"]                     # float32: two roundings
    if y.dtype is F32:
        return out.astype(np.float32)
    r = np.where(out >= 0, np.floor(out.astype(np.float64) + 0.5), -np.floor(-out.astype(np.float64) + 0.5))
    return np.clip(r, -128, 127).astype(np.int8)


def _bmaxpool_ref(op: Op, g: Graph, xv: np.ndarray) -> np.ndarray:
    (y,) = g.out_tensors(op)
    _, h, wd, _ = xv.shape
    fh, fw = op.attrs["filter"]
    oh, ow = y.shape[1], y.shape[2]
    u = xv.view(np.uint32)
    out = np.full(y.shape, 0xFFFFFFFF, dtype=np.uint32)
    (sh, sw), (pt, pl) = op.attrs["stride"], op.attrs["pad"]
    for ky in range(fh):
        for kx in range(fw):
            iy, ix = np.arange(oh) * sh + ky - pt, np.arange(ow) * sw + kx - pl
            inside = ((iy >= 0) & (iy < h))[:, None] & ((ix >= 0) & (ix < wd))[None, :]
            vals = u[:, np.clip(iy, 0, h - 1)][:, :, np.clip(ix, 0, wd - 1)]
            out &= np.where(inside[None, :, :, None], vals, np.uint32(0xFFFFFFFF))  # outside: excluded
    return out.view(np.int32)


def mst_entries(w: np.ndarray, center_of: np.ndarray, bound: int) -> dict[str, np.ndarray]:
    """Per non-center channel (in channel order), ``bound`` difference mst_entries: the word's
    tap (ky, kx) and index j, the mask D and pattern E = w_center & D; unused mst_entries have
    D = E = 0, which adds nothing."""
    cout, kh, kw, nw = w.shape
    others = [c for c in range(cout) if center_of[c] != c]
    out = {k: np.zeros((len(others), max(bound, 1)), dtype=np.int32) for k in ("ky", "kx", "j", "d", "e")}
    u = w.view(np.uint32)
    for i, c in enumerate(others):
        p = center_of[c]
        n = 0
        for ky in range(kh):
            for kx in range(kw):
                for j in range(nw):
                    d = u[c, ky, kx, j] ^ u[p, ky, kx, j]
                    if d:
                        out["ky"][i, n], out["kx"][i, n], out["j"][i, n] = ky, kx, j
                        out["d"][i, n] = np.uint32(d).view(np.int32)
                        out["e"][i, n] = np.uint32(u[p, ky, kx, j] & d).view(np.int32)
                        n += 1
    return out


# --------------------------------------------------------------------------- lowering (TVM TE)


def _or_words(shape, channels: int, negative, name: str) -> te.Tensor:
    """Pack: word [..., j] has bit b set where ``negative(..., 32 j + b)``; bits past
    ``channels`` stay 0. The bits are disjoint, so their sum is their OR."""
    from tvm import te, tirx

    b = te.reduce_axis((0, WORD), name="bit")

    def word(*i):
        c = i[-1] * WORD + b
        bit = tirx.if_then_else(tirx.all(c < channels, negative(*i[:-1], c)),
                                tirx.const(1, "uint32") << b.astype("uint32"), tirx.const(0, "uint32"))
        return te.sum(bit, axis=b)

    packed = te.compute(shape, word, name=f"{name}_bits")
    return te.compute(shape, lambda *i: tirx.reinterpret("int32", packed(*i)), name=name)


def lower_lce_quantize(c) -> te.Tensor:
    from tvm import te, tirx

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    channels = op.attrs["channels"]
    if x.dtype is DType.F32:
        negative = lambda *i: X(*i) < tirx.const(0.0, "float32")
    else:
        zp = op.attrs["in_zp"]
        negative = lambda *i: X(*i).astype("int32") < zp
    return _or_words(y.shape, channels, negative, "out")


def lower_lce_dequantize(c) -> te.Tensor:
    from tvm import te, tirx

    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    a = op.attrs
    dt = y.dtype.np_name
    plus, minus = tirx.const(a["plus"], dt), tirx.const(a["minus"], dt)

    def f(*i):
        word = tirx.reinterpret("uint32", X(*i[:-1], i[-1] // WORD))
        bit = (word >> (i[-1] % WORD).astype("uint32")) & tirx.const(1, "uint32")
        return tirx.Select(bit != tirx.const(0, "uint32"), minus, plus)

    return te.compute(y.shape, f, name="out")


def _window_popcount(c, X, F):
    """acc(b, oy, ox, o) = the XOR-popcount of filter o of F ([o, kh, kw, words]) over its
    window of X, out-of-bounds taps as the op's padding says (edgert.ops.binary)."""
    from tvm import te, tirx
    from edgert.codegen.kernel import in_bounds

    op, g = c.op, c.g
    a = op.attrs
    _, h, wd, nw = g.tensor(op.inputs[0]).shape
    _, kh, kw, _ = g.tensor(op.inputs[1]).shape
    (sh, sw), (dh, dw), (pt, pl) = a["stride"], a["dilation"], a["pad"]
    guard = padded(op, g)
    ry, rx, rj = (te.reduce_axis((0, e), name=nm) for e, nm in ((kh, "ry"), (kw, "rx"), (nw, "rj")))
    half = a["channels_in"] // 2

    def acc(b, oy, ox, o):
        iy, ix = oy * sh + ry * dh - pt, ox * sw + rx * dw - pl
        wv = tirx.reinterpret("uint32", F[o, ry, rx, rj])
        xv = tirx.reinterpret("uint32", X[b, iy, ix, rj])
        if not guard:
            term = tirx.popcount(xv ^ wv).astype("int32")
        elif a["zero_padding"]:  # an outside tap counts floor(Cin/2) once: 0 in K - 2 acc
            term = tirx.if_then_else(in_bounds(iy, ix, h, wd), tirx.popcount(xv ^ wv).astype("int32"),
                                     tirx.if_then_else(rj == 0, tirx.const(half, "int32"), tirx.const(0, "int32")))
        else:  # one padding: an outside tap reads the all-+1 word 0
            term = tirx.if_then_else(in_bounds(iy, ix, h, wd), tirx.popcount(xv ^ wv), tirx.popcount(wv)).astype("int32")
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
    from tvm import te, tirx
    from edgert.codegen.te_fixedpoint import clamp

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
            xq = tirx.const(a["k"], "int32") - acc[b, oy, ox, oc] * 2
        else:
            xq = clamp(acc[b, oy, ox, oc] * 2, a["clamp_min"], a["clamp_max"], "int32")
        return c.product(xq.astype("float32"), M[oc]) + B[oc]  # two roundings, as LCE's reference

    if y.dtype is DType.F32:
        return te.compute(y.shape, transform, name="out")

    def to_int8(*i):
        r = tirx.round(transform(*i))  # C roundf: half away from zero, as LCE's TfLiteRound
        r = tirx.max(tirx.min(r, tirx.const(1e9, "float32")), tirx.const(-1e9, "float32"))
        return clamp(r.astype("int32"), -128, 127, "int8")

    return te.compute(y.shape, to_int8, name="out")


def _mst_acc(c, X, shape) -> te.Tensor:
    """The popcount accumulators with channel reuse (edgert.passes.mst): centers in full,
    every other channel as its center's accumulator plus sum(|D|) - 2 sum(popcount((x & D) ^ E))
    over its difference entries. Computed once per output position ("pos_" stages)."""
    from tvm import te, tirx
    from edgert.codegen.kernel import in_bounds

    op, g = c.op, c.g
    a = op.attrs
    plan = a["mst"]
    w = g.tensor(op.inputs[1]).data
    _, h, wd, _ = g.tensor(op.inputs[0]).shape
    cout = w.shape[0]
    (sh, sw), (dh, dw), (pt, pl) = a["stride"], a["dilation"], a["pad"]
    centers = plan["centers"]
    others = [ch for ch in range(cout) if plan["center_of"][ch] != ch]
    ent = mst_entries(w, plan["center_of"], plan["bound"])
    WC = c.const("mst_w", np.ascontiguousarray(w[centers]))
    KY, KX, J = c.const("mst_ky", ent["ky"]), c.const("mst_kx", ent["kx"]), c.const("mst_j", ent["j"])
    D, E = c.const("mst_d", ent["d"]), c.const("mst_e", ent["e"])
    slot = {ch: i for i, ch in enumerate(centers)}
    slot.update({ch: i for i, ch in enumerate(others)})
    CIDX = c.const("mst_center", np.array([slot[plan["center_of"][ch]] for ch in others] or [0], np.int32))
    IS_CENTER = c.const("mst_is_center", np.array([plan["center_of"][ch] == ch for ch in range(cout)], np.int32))
    SLOT = c.const("mst_slot", np.array([slot[ch] for ch in range(cout)], np.int32))
    n, oh, ow = shape[:3]
    guard = padded(op, g)
    acc_c = te.compute((n, oh, ow, len(centers)), _window_popcount(c, X, WC), name="pos_centers")
    re = te.reduce_axis((0, ent["d"].shape[1]), name="re")
    re2 = te.reduce_axis((0, ent["d"].shape[1]), name="re2")

    def delta(b, oy, ox, i):
        iy, ix = oy * sh + KY[i, re] * dh - pt, ox * sw + KX[i, re] * dw - pl
        d = tirx.reinterpret("uint32", D[i, re])
        e = tirx.reinterpret("uint32", E[i, re])
        xv = tirx.reinterpret("uint32", X[b, iy, ix, J[i, re]])
        if not guard:
            term = tirx.popcount((xv & d) ^ e).astype("int32")
        elif a["zero_padding"]:  # every channel adds the same outside the input: no difference
            term = tirx.if_then_else(in_bounds(iy, ix, h, wd), tirx.popcount((xv & d) ^ e).astype("int32"),
                                     tirx.const(0, "int32"))
        else:                    # one padding: x is the word 0 there
            term = tirx.popcount(tirx.if_then_else(in_bounds(iy, ix, h, wd), (xv & d) ^ e, e)).astype("int32")
        return te.sum(term, axis=re)
    diff = te.compute((n, oh, ow, max(len(others), 1)), delta, name="pos_diffs")
    # |D| summed over a channel's entries; with zero padding only the entries inside count
    # it, so there it is added per entry instead.
    if guard and a["zero_padding"]:
        cnt = te.compute((n, oh, ow, max(len(others), 1)), lambda b, oy, ox, i: te.sum(tirx.if_then_else(
            in_bounds(oy * sh + KY[i, re2] * dh - pt, ox * sw + KX[i, re2] * dw - pl, h, wd),
            tirx.popcount(tirx.reinterpret("uint32", D[i, re2])).astype("int32"), tirx.const(0, "int32")), axis=re2),
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
    from tvm import te, tirx
    from edgert.codegen.kernel import in_bounds

    op, g = c.op, c.g
    a = op.attrs
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    _, h, wd, _ = x.shape
    (fh, fw), (sh, sw), (pt, pl) = a["filter"], a["stride"], a["pad"]
    X = c.act(op.inputs[0])
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    ones = tirx.const(0xFFFFFFFF, "uint32")
    band = te.comm_reducer(lambda p, q: p & q, lambda t: tirx.const(0xFFFFFFFF, t), name="bit_and")

    def f(b, oy, ox, j):
        iy, ix = oy * sh + ry - pt, ox * sw + rx - pl
        v = tirx.if_then_else(in_bounds(iy, ix, h, wd), tirx.reinterpret("uint32", X[b, iy, ix, j]), ones)
        return band(v, axis=[ry, rx])  # padding positions are left out of the window

    red = te.compute(y.shape, f, name="acc")
    return te.compute(y.shape, lambda *i: tirx.reinterpret("int32", red(*i)), name="out")
