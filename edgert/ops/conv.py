"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: int8 (per-channel or per-tensor weights,
int32 bias, TFLM ConvPerChannel / FullyConnected semantics) and float32.

Layouts are TFLite's: activations NHWC, conv weights OHWI, depthwise weights 1HW(C*M),
fully-connected weights [units, in_features].
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgert.errors import DAMAGED_MODEL
from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import activation_range, clamp_int8, fail, require_dtypes, require_per_tensor
from .packing import INT8

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te
    from edgert.codegen.kernel import KernelCtx

I8, I32, F32 = DType.I8, DType.I32, DType.F32
_INT8 = ((I8, I8, I32, I8), (I8, I8, None, I8))
_FLOAT = ((F32, F32, F32, F32), (F32, F32, None, F32))


def check(op: Op, g: Graph) -> None:
    require_dtypes(op, g, _INT8 + _FLOAT)
    x, w, b = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if not w.is_const:
        raise fail(op, f"weights {w.name} are not constant", "edgert compiles models with constant weights")
    if b is not None and not b.is_const:
        raise fail(op, f"bias {b.name} is not constant", "edgert compiles models with constant biases")
    if op.kind in ("conv2d", "depthwise_conv2d") and (len(x.shape) != 4 or len(w.shape) != 4):
        raise fail(op, f"expected 4-D input and weights, got {list(x.shape)} and {list(w.shape)}",
                   "export the model with NHWC 2-D convolutions")
    if op.kind == "conv2d" and x.shape[3] != w.shape[3]:
        raise fail(op, f"grouped convolution ({x.shape[3]} input channels, filters of depth {w.shape[3]})",
                   "grouped convolutions are not supported; split them into separate convolutions")
    if op.kind == "fully_connected" and x.size % w.shape[1] != 0:
        raise fail(op, f"input of {x.size} values does not divide into rows of {w.shape[1]}", "check the model")
    oc = out_channels(op, g)
    if y.shape[-1:] != (oc,):
        raise fail(op, f"output {y.name} has shape {list(y.shape)}, the weights {list(w.shape)} give {oc} output "
                   "channels", DAMAGED_MODEL)
    if b is not None and b.size != oc:
        raise fail(op, f"bias {b.name} holds {b.size} values for {oc} output channels",
                   DAMAGED_MODEL)
    if x.dtype is not I8:
        return
    require_per_tensor(op, x, "input")
    require_per_tensor(op, y, "output")
    if w.quant is None:
        raise fail(op, f"int8 weights {w.name} have no quantization parameters", "re-export with full-integer quantization")
    if any(z != 0 for z in w.quant.zero_point):
        raise fail(op, f"weights {w.name} have a nonzero zero point {w.quant.zero_point[0]}",
                   "edgert (like TFLite Micro) needs symmetric int8 weights; re-quantize them symmetrically")
    channel_axis = 3 if op.kind == "depthwise_conv2d" else 0
    if w.quant.per_channel and (w.quant.axis != channel_axis or len(w.quant.scale) != w.shape[channel_axis]):
        raise fail(op, f"weights {w.name} are quantized per channel along axis {w.quant.axis} "
                   f"with {len(w.quant.scale)} scales",
                   f"per-channel weights must be quantized along axis {channel_axis} (output channels)")


def out_channels(op: Op, g: Graph) -> int:
    w = g.tensor(op.inputs[1])
    return w.shape[3] if op.kind == "depthwise_conv2d" else w.shape[0]


def prepare(op: Op, g: Graph) -> None:
    """Integer attributes (TFLM PopulateConvolutionQuantizationParams) or float clamps."""
    x, w, _ = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    lo, hi = activation_range(op.attrs["act"], y)
    op.attrs["act_min"], op.attrs["act_max"] = lo, hi
    if x.dtype is F32:
        return
    op.attrs["mult"], op.attrs["shift"] = requant_multipliers(op, g)
    op.attrs["in_zp"] = x.quant.zp
    op.attrs["out_zp"] = y.quant.zp


def requant_multipliers(op: Op, g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the fixed-point multiplier and shift of input scale * weight scale
    / output scale (an int8 layer)."""
    x, w, _ = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    w_scales = np.broadcast_to(np.asarray(w.quant.scale, dtype=np.float64), (out_channels(op, g),))
    effective = np.float64(x.quant.scale[0]) * w_scales / np.float64(y.quant.scale[0])
    return fp.quantize_multipliers(effective)


def constant_channels(op: Op, g: Graph) -> dict[int, int]:
    """Output channels of an int8 conv2d / fully_connected whose weights are all zero, each
    with the int8 value it outputs everywhere: its requantized bias, clamped."""
    w, b = g.tensor(op.inputs[1]), (g.tensor(op.inputs[2]) if op.inputs[2:] and op.inputs[2] else None)
    rows = w.data.reshape(w.shape[0], -1)
    dead = np.flatnonzero(~rows.any(axis=1))
    if not len(dead):
        return {}
    y = g.tensor(op.outputs[0])
    mult, shift = requant_multipliers(op, g)
    lo, hi = activation_range(op.attrs["act"], y)
    bias = b.data.astype(np.int64) if b is not None else np.zeros(w.shape[0], np.int64)
    out = fp.multiply_by_quantized_multiplier(bias[dead], mult[dead], shift[dead]) + y.quant.zp
    return {int(c): int(v) for c, v in zip(dead, np.clip(out, lo, hi))}


def macs(op: Op, g: Graph) -> int:
    w = g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    if op.kind == "conv2d":
        return y.size * w.shape[1] * w.shape[2] * w.shape[3]
    if op.kind == "depthwise_conv2d":
        return y.size * w.shape[1] * w.shape[2]
    return y.size * w.shape[1]


def output_rows(op: Op, g: Graph) -> int:
    return g.tensor(op.inputs[0]).size // g.tensor(op.inputs[1]).shape[1]


# --------------------------------------------------------------------------- reference


def _requant(acc: np.ndarray, op: Op) -> np.ndarray:
    a = op.attrs
    out = fp.multiply_by_quantized_multiplier(acc, a["mult"], a["shift"]) + a["out_zp"]
    return clamp_int8(out, a["act_min"], a["act_max"])


def _windows(xz: np.ndarray, op: Op, kh: int, kw: int, oh: int, ow: int):
    """Yield (ky, kx, patch) with patch[n, oy, ox, c] = padded input under filter tap (ky, kx).
    ``xz`` is the input with its zero point already subtracted, so padding is 0."""
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    n, h, w, c = xz.shape
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    xp = np.zeros((n, max(need_h, pt + h), max(need_w, pl + w), c), dtype=xz.dtype)
    xp[:, pt:pt + h, pl:pl + w, :] = xz
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x, w, b = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    xv = inputs[0]
    is_float = x.dtype is F32
    acc_t = np.float32 if is_float else np.int64
    xz = xv.astype(acc_t) - (0 if is_float else op.attrs["in_zp"])
    wv = w.data.astype(acc_t)
    bias = b.data.astype(acc_t) if b is not None else np.zeros(out_channels(op, g), acc_t)

    if op.kind == "fully_connected" and is_float:
        # float32 sums in the generated kernel's order (k = 0, 1, ...; a rounding per product
        # and per addition), so that the reference and the device agree bit for bit
        xr = xz.reshape(-1, w.shape[1])
        acc = np.zeros((xr.shape[0], w.shape[0]), dtype=np.float32)
        for k in range(w.shape[1]):
            acc = acc + xr[:, k:k + 1] * wv[:, k]
        acc = acc + bias
    elif op.kind == "fully_connected":
        acc = xz.reshape(-1, w.shape[1]) @ wv.T + bias
    else:
        _, oh, ow, oc = y.shape
        kh, kw = w.shape[1], w.shape[2]
        acc = np.zeros((x.shape[0], oh, ow, oc), dtype=acc_t)
        m = op.attrs.get("depth_multiplier", 1)
        for ky, kx, patch in _windows(xz, op, kh, kw, oh, ow):
            if op.kind == "conv2d":
                acc += np.einsum("nhwc,oc->nhwo", patch, wv[:, ky, kx, :])
            else:
                acc += np.repeat(patch, m, axis=3) * wv[0, ky, kx, :]
        acc += bias
    if is_float:
        out = np.clip(acc, op.attrs["act_min"], op.attrs["act_max"]).astype(np.float32)
    else:
        out = _requant(fp.wrap32(acc), op)
    return [out.reshape(y.shape)]


# --------------------------------------------------------------------------- lowering (TVM TE)


def _folded_bias(op: Op, g: Graph, oc: int) -> np.ndarray:
    """bias - in_zp * sum(w) per output channel: the input zero point leaves the inner loop.
    Out-of-bounds taps then read the zero point itself, which contributes exactly 0."""
    w = g.tensor(op.inputs[1]).data.astype(np.int64)
    b = g.tensor(op.inputs[2]).data.astype(np.int64) if op.inputs[2:] and op.inputs[2] else np.zeros(oc, np.int64)
    zp = op.attrs["in_zp"]
    if op.kind == "depthwise_conv2d":
        wsum = w.sum(axis=(0, 1, 2))
    else:
        wsum = w.reshape(w.shape[0], -1).sum(axis=1)
    folded = b - zp * wsum
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _requant_out(c: KernelCtx, acc, o, shape, name: str, bound: int | None = None):
    """The int8 epilogue shared by the conv family: per-channel requantize, offset, clamp.
    ``bound``: the largest |acc| can be (the DSP form's shorter requantization needs it)."""
    from tvm import te
    from edgert.codegen import te_fixedpoint as fx

    a = c.op.attrs
    mult, shift = a["mult"], a["shift"]
    if c.dsp_isa and bound is not None:
        from edgert.codegen import dsp

        requant = dsp.requantizer(c, mult, shift, bound)
        if requant is not None:
            return te.compute(shape, lambda *i: dsp.saturate_int8(requant(acc(*i), o(*i)) + a["out_zp"],
                                                                 a["act_min"], a["act_max"]), name=name)
    if np.all(mult == mult[0]) and np.all(shift == shift[0]):
        m, s = int(mult[0]), int(shift[0])
        f = lambda *i: fx.clamp(fx.multiply_by_quantized_multiplier(acc(*i), m, s) + a["out_zp"],
                                a["act_min"], a["act_max"], "int8")
    else:
        M = c.const("mult", mult)
        S = c.const("shift", shift)
        f = lambda *i: fx.clamp(fx.multiply_by_quantized_multiplier(acc(*i), M[o(*i)], S[o(*i)], shift) + a["out_zp"],
                                a["act_min"], a["act_max"], "int8")
    return te.compute(shape, f, name=name)


def _lower_sparse_conv(c: KernelCtx) -> te.Tensor:
    """A convolution over each channel's nonzero weights (edgert.ops.sparsity): the input,
    already padded, read at the window's origin plus each entry's offset."""
    from tvm import te
    from edgert.codegen.weights import sparse_terms

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    _, h, wd, cin = x.shape
    n, oh, ow, oc = y.shape
    (sh, sw) = op.attrs["stride"]
    assert tuple(op.attrs["pad"]) == (0, 0), "weight_format pads a sparse convolution's input"
    X = c.act(op.inputs[0], (n, h * wd * cin))
    acc_t = "int32" if x.dtype is DType.I8 else "float32"
    j, value, offset = sparse_terms(c, op)
    acc = te.compute((n, oh, ow, oc), lambda b, oy, ox, o: te.sum(c.product(
        X[b, (oy * sh * wd + ox * sw) * cin + offset(o)].astype(acc_t), value(o).astype(acc_t)), axis=j), name="acc")
    return _epilogue(c, acc, (n, oh, ow, oc), lambda b, oy, ox, o: o, oc)


def _lower_conv_dsp(c: KernelCtx) -> te.Tensor:
    """The DSP form (edgert.ops.forms.dsp_dot): per output, a dot product over each filter
    row's kw x cin values, contiguous in the input (NHWC, no padding: passes.padding) and in
    the weights (OHWI)."""
    from edgert.codegen import dsp

    op, g = c.op, c.g
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    _, h, wd, cin = x.shape
    n, oh, ow, oc = y.shape
    _, kh, kw, _ = w.shape
    (sh, sw), (dh, _) = op.attrs["stride"], op.attrs["dilation"]
    if op.kind == "depthwise_conv2d":  # words of four channels, one accumulator a channel
        from edgert.codegen.kernel import in_bounds
        from edgert.passes.padding import reads_outside

        (_, dw), (pt, pl) = op.attrs["dilation"], op.attrs["pad"]
        guard = reads_outside(g, op) != ((0, 0), (0, 0))
        iy = lambda i, r: i[1] * sh + r[0] * dh - pt
        ix = lambda i, r: i[2] * sw + r[1] * dw - pl
        X = c.act(op.inputs[0])
        W = c.const(op.inputs[1], w.data)
        c.dot_lanes = 4
        acc = dsp.depthwise_s8((n, oh, ow, oc), X, lambda i, r, ch: (i[0], iy(i, r), ix(i, r), ch),
                               W, lambda i, r, ch: (0, r[0], r[1], ch), [kh, kw],
                               inside=(lambda i, r: in_bounds(iy(i, r), ix(i, r), h, wd)) if guard else None,
                               pad_byte=op.attrs["in_zp"])
        return _epilogue(c, acc, (n, oh, ow, oc), lambda b, oy, ox, o: o, oc)
    if tuple(op.attrs["pad"]) != (0, 0):
        raise AssertionError(f"{op.name}: the DSP form needs explicit padding (passes.padding)")
    X = c.act(op.inputs[0], (n, h * wd * cin))
    c.dot_positions, c.dot_lanes = dsp.block(ow, oc)
    x_index = lambda i, r, k: (i[0], ((i[1] * sh + r[0] * dh) * wd + i[2] * sw) * cin + k)
    if getattr(op.attrs.get("packing"), "kind", "int8") == "int4":
        W = c.const(f"{op.inputs[1]}_int4dsp", dsp.int4_words(w.data.reshape(oc * kh, kw * cin)), (oc, kh, kw * cin // 2))
        acc = dsp.dot_s4((n, oh, ow, oc), X, x_index, W, lambda i, r, k: (i[3], r[0], k), [kh], kw * cin)
    else:
        W = c.const(op.inputs[1], w.data, (oc, kh, kw * cin))
        acc = dsp.dot_s8((n, oh, ow, oc), X, x_index, W, lambda i, r, k: (i[3], r[0], k), [kh], kw * cin)
    return _epilogue(c, acc, (n, oh, ow, oc), lambda b, oy, ox, o: o, oc)


def lower_conv(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx
    from edgert.codegen.kernel import in_bounds
    from edgert.codegen.weights import reader

    op, g = c.op, c.g
    if op.attrs.get("sparse") is not None:
        return _lower_sparse_conv(c)
    if c.dsp:
        return _lower_conv_dsp(c)
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    is_int = x.dtype is DType.I8
    acc_t = "int32" if is_int else "float32"
    _, h, wd, cin = x.shape
    n, oh, ow, oc = y.shape
    kh, kw = w.shape[1], w.shape[2]
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    X = c.act(op.inputs[0])
    pad_value = op.attrs["in_zp"] if is_int else 0.0
    needs_guard = pt > 0 or pl > 0 or (oh - 1) * sh + (kh - 1) * dh + 1 - pt > h or (ow - 1) * sw + (kw - 1) * dw + 1 - pl > wd
    depthwise = op.kind == "depthwise_conv2d"
    mult = op.attrs.get("depth_multiplier", 1)

    def xin(b, oy, ox, ry, rx, ch):
        iy, ix = oy * sh + ry * dh - pt, ox * sw + rx * dw - pl
        v = X[b, iy, ix, ch]
        if needs_guard:
            v = tirx.if_then_else(in_bounds(iy, ix, h, wd), v, tirx.const(pad_value, x.dtype.np_name))
        return v.astype(acc_t)

    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    fmt = op.attrs.get("packing", INT8)  # set by passes.weight_format for int8 layers
    if depthwise:
        W = reader(c, w.data, fmt, 3, op.inputs[1])
        acc = te.compute(
            (n, oh, ow, oc),
            lambda b, oy, ox, o: te.sum(c.product(xin(b, oy, ox, ry, rx, o // mult), W(0, ry, rx, o).astype(acc_t)), axis=[ry, rx]),
            name="acc",
        )
    else:
        rc = te.reduce_axis((0, cin), name="rc")
        if c.channels_inner:  # weights stored (kh, kw, cin, oc): contiguous along the vector of channels
            W = reader(c, np.ascontiguousarray(w.data.transpose(1, 2, 3, 0)), fmt, 3, "w_hwio")
            wt = lambda o, ry, rx, rc: W(ry, rx, rc, o)
        else:
            W = reader(c, w.data, fmt, 0, op.inputs[1])
            wt = lambda o, ry, rx, rc: W(o, ry, rx, rc)
        acc = te.compute(
            (n, oh, ow, oc),
            lambda b, oy, ox, o: te.sum(c.product(xin(b, oy, ox, ry, rx, rc), wt(o, ry, rx, rc).astype(acc_t)), axis=[ry, rx, rc]),
            name="acc",
        )
    return _epilogue(c, acc, (n, oh, ow, oc), lambda b, oy, ox, o: o, oc)


def _epilogue(c: KernelCtx, acc: te.Tensor, shape, chan, oc: int) -> te.Tensor:
    from tvm import te
    from edgert.codegen import te_fixedpoint as fx

    op, g = c.op, c.g
    if g.tensor(op.inputs[0]).dtype is DType.I8:
        B = c.const("bias", _folded_bias(op, g, oc))
        # its own stage, kept a scalar (edgert.codegen.schedule): inlined into the requantization,
        # TVM's simplifier would rewrite int64(acc + bias) as int64(acc) + int64(bias), a 64-bit
        # add and multiply where TFLite's int32 sum and one SMULL are meant
        biased = te.compute(shape, lambda *i: acc(*i) + B[chan(*i)], name="keep_biased")
        w = g.tensor(op.inputs[1])
        taps = w.size // oc if op.kind != "depthwise_conv2d" else w.shape[1] * w.shape[2]
        bound = taps * 128 * 128 + int(np.abs(_folded_bias(op, g, oc).astype(np.int64)).max())  # |x|, |w| <= 128
        return _requant_out(c, biased, chan, shape, "out", bound)
    has_bias = len(op.inputs) > 2 and op.inputs[2]
    B = c.act(op.inputs[2]) if has_bias else None
    a = op.attrs
    return te.compute(
        shape,
        lambda *i: fx.clamp(acc(*i) + B[chan(*i)] if B is not None else acc(*i), a["act_min"], a["act_max"], "float32"),
        name="out",
    )


def lower_fc(c: KernelCtx) -> te.Tensor:
    from tvm import te
    from edgert.codegen.weights import reader, sparse_terms

    op, g = c.op, c.g
    w = g.tensor(op.inputs[1])
    units, depth = w.shape
    rows = g.tensor(op.inputs[0]).size // depth
    acc_t = "int32" if g.tensor(op.inputs[0]).dtype is DType.I8 else "float32"
    X = c.act(op.inputs[0], (rows, depth))
    if c.dsp:  # edgert.ops.forms.dsp_dot
        from edgert.codegen import dsp

        c.dot_lanes = dsp.lanes(units)
        if getattr(op.attrs.get("packing"), "kind", "int8") == "int4":
            W = c.const(f"{op.inputs[1]}_int4dsp", dsp.int4_words(w.data))
            acc = dsp.dot_s4((rows, units), X, lambda i, r, k: (i[0], k), W, lambda i, r, k: (i[1], k), [], depth)
        else:
            W = c.const(op.inputs[1], w.data)
            acc = dsp.dot_s8((rows, units), X, lambda i, r, k: (i[0], k), W, lambda i, r, k: (i[1], k), [], depth)
        return _epilogue(c, acc, (rows, units), lambda r, o: o, units)
    if op.attrs.get("sparse") is not None:  # each unit's nonzero weights and their input features
        j, value, offset = sparse_terms(c, op)
        acc = te.compute((rows, units), lambda r, o: te.sum(
            c.product(X[r, offset(o)].astype(acc_t), value(o).astype(acc_t)), axis=j), name="acc")
    else:
        W = reader(c, w.data, op.attrs.get("packing", INT8), 0, op.inputs[1])
        k = te.reduce_axis((0, depth), name="k")
        acc = te.compute((rows, units), lambda r, o: te.sum(c.product(X[r, k].astype(acc_t), W(o, k).astype(acc_t)), axis=k), name="acc")
    return _epilogue(c, acc, (rows, units), lambda r, o: o, units)
