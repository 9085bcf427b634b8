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

import numpy as np

from edgert.ir import DType, Graph, Op

from .common import fail, require_per_tensor
from .fixedpoint import INT32_MAX, INT32_MIN

I8, I32, F32 = DType.I8, DType.I32, DType.F32
WORD = 32

#: fused activation -> the clamp LCE applies to the integer K - 2 * acc
_ACT_RANGE = {"none": (INT32_MIN, INT32_MAX), "relu": (0, INT32_MAX), "relu_n1_to_1": (-1, 1), "relu6": (0, 6)}


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
            offset = _round_half_away(float(np.float32(1.0) / np.float32(y.quant.scale[0])))
            a["plus"] = min(127, y.quant.zp + offset)
            a["minus"] = max(-128, y.quant.zp - offset)
        else:
            a["plus"], a["minus"] = 1.0, -1.0
    elif op.kind == "bconv2d":
        _prepare_bconv(op, g)


def _round_half_away(v: float) -> int:
    return int(np.floor(v + 0.5)) if v >= 0 else -int(np.floor(-v + 0.5))


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
