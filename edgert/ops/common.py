"""Facts shared by the kernel families: dtype rules, activation clamps, error wording."""
from __future__ import annotations

import numpy as np

from edgert.errors import UnsupportedError
from edgert.ir import DType, Graph, Op, Tensor
from edgert.ir.activations import FUSED_ACTIVATIONS

from .fixedpoint import tflite_round

INT8_MIN, INT8_MAX = -128, 127


def where(op: Op) -> str:
    """How errors name an op: its source in the model file and its edgert layer name."""
    return f"{op.source or op.kind} ({op.name})" if op.name else (op.source or op.kind)


def fail(op: Op, problem: str, hint: str) -> UnsupportedError:
    return UnsupportedError(f"{where(op)}: {problem}", hint)


def is_int8(t: Tensor | None) -> bool:
    return t is not None and t.dtype is DType.I8


def require_quantized(op: Op, t: Tensor, role: str) -> None:
    if t.quant is None:
        raise fail(op, f"{role} tensor {t.name} is int8 but has no quantization parameters",
                   "re-export the model with full-integer quantization")


def require_per_tensor(op: Op, t: Tensor, role: str) -> None:
    require_quantized(op, t, role)
    if t.quant.per_channel:
        raise fail(op, f"{role} tensor {t.name} is quantized per channel ({len(t.quant.scale)} scales)",
                   "activations must be quantized per tensor")


def require_dtypes(op: Op, g: Graph, allowed: tuple[tuple[DType, ...], ...]) -> None:
    """The op's (non-absent) input and output dtypes must match one of ``allowed``, each a
    tuple (inputs..., output) with None for an input that may be absent."""
    ins = [t.dtype if t is not None else None for t in g.in_tensors(op)]
    outs = [t.dtype for t in g.out_tensors(op)]
    got = tuple(ins + outs)
    for combo in allowed:
        if len(combo) == len(got) and all(c == d or (c is None and d is None) for c, d in zip(combo, got)):
            return
    shown = ", ".join(d.short if d else "-" for d in got)
    options = "; ".join("(" + ", ".join(d.short if d else "-" for d in c) + ")" for c in allowed)
    raise fail(op, f"unsupported dtype combination ({shown})", f"supported (inputs..., output): {options}")


def activation_range(act: str, out: Tensor) -> tuple:
    """Clamp range of a fused activation, as TFLite computes it (CalculateActivationRange*):
    the real bounds (edgert.ir.activations) for float32; quantized to the output and
    intersected with int8's range for int8."""
    lo_real, hi_real = FUSED_ACTIVATIONS[act]
    if out.dtype is DType.F32:
        return lo_real, hi_real
    scale = np.float32(out.quant.scale[0])
    zp = out.quant.zp

    def q(f: float) -> int:
        return zp + tflite_round(float(np.float32(f) / scale))

    lo, hi = INT8_MIN, INT8_MAX
    if lo_real > -np.inf:
        lo = max(lo, q(lo_real))
    if hi_real < np.inf:
        hi = min(hi, q(hi_real))
    return int(lo), int(hi)


def clamp_int8(x, lo: int = INT8_MIN, hi: int = INT8_MAX) -> np.ndarray:
    return np.clip(x, lo, hi).astype(np.int8)
