"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (TFLM reference semantics, int8 and float32)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import activation_range, clamp_int8, fail, require_dtypes, require_per_tensor

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te
    from edgert.codegen.kernel import KernelCtx

I8, F32 = DType.I8, DType.F32


def check(op: Op, g: Graph) -> None:
    require_dtypes(op, g, ((I8, I8), (F32, F32)))
    (x,) = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if op.kind != "mean" and len(x.shape) != 4:
        raise fail(op, f"expected a 4-D NHWC input, got {list(x.shape)}", "pool over NHWC tensors")
    if x.dtype is I8:
        require_per_tensor(op, x, "input")
        require_per_tensor(op, y, "output")
        if op.kind in ("avg_pool2d", "max_pool2d") and (x.quant.zp, x.quant.scale) != (y.quant.zp, y.quant.scale):
            raise fail(op, "input and output quantization differ",
                       "TFLite pools keep the input quantization; re-export the model")


def prepare(op: Op, g: Graph) -> None:
    (x,) = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    if op.kind == "mean":
        n = int(np.prod([x.shape[a] for a in op.attrs["axes"]]))
        op.attrs["count"] = n
        if x.dtype is I8:
            m, s = fp.quantize_multiplier(float(np.float64(x.quant.scale[0]) / np.float64(y.quant.scale[0])))
            # QuantizedMeanOrSum folds 1/count into the multiplier.
            shift = min(n.bit_length() - 1, 32, 31 + s)
            op.attrs["mult"] = int(fp.wrap32((m << shift) // n))
            op.attrs["shift"] = s - shift
            op.attrs["in_zp"], op.attrs["out_zp"] = x.quant.zp, y.quant.zp
        return
    lo, hi = activation_range(op.attrs["act"], y)
    op.attrs["act_min"], op.attrs["act_max"] = lo, hi


def macs(op: Op, g: Graph) -> int:
    if op.kind == "mean":
        return g.tensor(op.inputs[0]).size
    fh, fw = op.attrs["filter"]
    return g.tensor(op.outputs[0]).size * fh * fw


def _window_bounds(o: int, stride: int, pad: int, f: int, size: int) -> tuple[int, int]:
    start = o * stride - pad
    return max(start, 0), min(start + f, size)


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    (x,) = g.in_tensors(op)
    (y,) = g.out_tensors(op)
    xv = inputs[0]
    if op.kind == "mean":
        return [_mean(op, x.dtype, xv).reshape(y.shape)]
    (fh, fw), (sh, sw), (pt, pl) = op.attrs["filter"], op.attrs["stride"], op.attrs["pad"]
    n, oh, ow, c = y.shape
    out = np.zeros(y.shape, dtype=np.float32 if x.dtype is F32 else np.int64)
    for oy in range(oh):
        y0, y1 = _window_bounds(oy, sh, pt, fh, x.shape[1])
        for ox in range(ow):
            x0, x1 = _window_bounds(ox, sw, pl, fw, x.shape[2])
            win = xv[:, y0:y1, x0:x1, :]
            if op.kind == "max_pool2d":
                out[:, oy, ox, :] = win.max(axis=(1, 2))
            elif x.dtype is F32:
                out[:, oy, ox, :] = win.sum(axis=(1, 2), dtype=np.float32) / np.float32(win.shape[1] * win.shape[2])
            else:
                acc = win.astype(np.int64).sum(axis=(1, 2))
                cnt = win.shape[1] * win.shape[2]
                # Round half away from zero with C's truncating division.
                out[:, oy, ox, :] = np.where(acc > 0, (acc + cnt // 2) // cnt, -((-acc + cnt // 2) // cnt))
    lo, hi = op.attrs["act_min"], op.attrs["act_max"]
    if x.dtype is F32:
        return [np.clip(out, lo, hi).astype(np.float32)]
    return [clamp_int8(out, lo, hi)]


def _mean(op: Op, dtype: DType, xv: np.ndarray) -> np.ndarray:
    axes = tuple(op.attrs["axes"])
    n = op.attrs["count"]
    if dtype is F32:
        return (xv.sum(axis=axes, dtype=np.float32) / np.float32(n)).astype(np.float32)
    a = op.attrs
    shifted = xv.astype(np.int64).sum(axis=axes) - a["in_zp"] * n
    out = fp.multiply_by_quantized_multiplier(fp.wrap32(shifted), a["mult"], a["shift"]) + a["out_zp"]
    return clamp_int8(out)


# --------------------------------------------------------------------------- lowering (TVM TE)


def lower_pool(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx
    from edgert.codegen import te_fixedpoint as fx
    from edgert.codegen.kernel import in_bounds

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    _, h, wd, _ = x.shape
    (fh, fw), (sh, sw), (pt, pl) = op.attrs["filter"], op.attrs["stride"], op.attrs["pad"]
    X = c.act(op.inputs[0])
    a = op.attrs
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    dt = x.dtype.np_name
    is_int = x.dtype is DType.I8

    def tap(b, oy, ox, ch, fill):
        iy, ix = oy * sh + ry - pt, ox * sw + rx - pl
        return tirx.if_then_else(in_bounds(iy, ix, h, wd), X[b, iy, ix, ch], fill)

    if op.kind == "max_pool2d":
        lowest = tirx.const(-128, dt) if is_int else tirx.const(-3.4028234663852886e38, dt)
        red = te.compute(y.shape, lambda b, oy, ox, ch: te.max(tap(b, oy, ox, ch, lowest), axis=[ry, rx]), name="acc")
        return te.compute(y.shape, lambda *i: fx.clamp(red(*i), a["act_min"], a["act_max"], dt), name="out")

    acc_t = "int32" if is_int else "float32"
    red = te.compute(
        y.shape,
        lambda b, oy, ox, ch: te.sum(tap(b, oy, ox, ch, tirx.const(0, dt)).astype(acc_t), axis=[ry, rx]),
        name="acc",
    )

    def count(oy, ox):
        y0, x0 = oy * sh - pt, ox * sw - pl
        ch_ = tirx.min(y0 + fh, h) - tirx.max(y0, 0)
        cw_ = tirx.min(x0 + fw, wd) - tirx.max(x0, 0)
        return ch_ * cw_

    def avg(b, oy, ox, ch):
        s, cnt = red[b, oy, ox, ch], count(oy, ox)
        if not is_int:
            return fx.clamp(s / cnt.astype("float32"), a["act_min"], a["act_max"], dt)
        half = tirx.truncdiv(cnt, 2)
        r = tirx.Select(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return fx.clamp(r, a["act_min"], a["act_max"], dt)

    return te.compute(y.shape, avg, name="out")


def lower_mean(c: KernelCtx) -> te.Tensor:
    from tvm import te, tirx
    from edgert.codegen import te_fixedpoint as fx
    from edgert.codegen.kernel import reshape_view

    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    axes = op.attrs["axes"]
    keep = [d for d in range(len(x.shape)) if d not in axes]
    X = c.act(op.inputs[0])
    red_axes = [te.reduce_axis((0, x.shape[d]), name=f"r{d}") for d in axes]
    kept_shape = tuple(x.shape[d] for d in keep) or (1,)
    # The sums are computed in the output's own shape where it holds the kept dims in order
    # (keep_dims: the reduced ones of extent 1), so that the schedule keeps one sum live at a
    # time; a reshape after them would make it keep a whole row (576 channels: 2,304 bytes).
    keep_dims = len(y.shape) == len(x.shape)
    shape = tuple(y.shape) if keep_dims or tuple(y.shape) == kept_shape else kept_shape
    is_int = x.dtype is DType.I8
    acc_t = "int32" if is_int else "float32"

    def index(out, reds):
        kept = [out[d] for d in keep] if len(shape) == len(x.shape) else list(out)[:len(keep)]
        idx, ki, ri = [], iter(kept), iter(reds)
        for d in range(len(x.shape)):
            idx.append(next(ri) if d in axes else next(ki))
        return idx

    def body(*out):
        return te.sum(X[tuple(index(out, red_axes))].astype(acc_t), axis=red_axes)

    acc = te.compute(shape, body, name="acc")
    a = op.attrs
    n = a["count"]
    if is_int:
        f = lambda *i: fx.clamp(
            fx.multiply_by_quantized_multiplier(acc(*i) - a["in_zp"] * n, a["mult"], a["shift"]) + a["out_zp"],
            -128, 127, "int8")
    else:
        f = lambda *i: acc(*i) / tirx.const(float(n), "float32")
    out = te.compute(shape, f, name="out")
    return out if tuple(y.shape) == shape else reshape_view(out, y.shape)
