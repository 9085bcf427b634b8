"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (TFLM reference semantics, int8 and float32)."""
from __future__ import annotations

import numpy as np

from edgert.ir import DType, Graph, Op

from . import fixedpoint as fp
from .common import activation_range, clamp_int8, fail, require_dtypes, require_per_tensor

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
