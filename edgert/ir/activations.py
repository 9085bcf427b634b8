"""The fused activations an op's ``act`` attribute may name: the one table of them.

Each clamps the op's real-valued result to an interval; integer kernels quantize the bounds
(edgert.ops.common.activation_range), front ends map their own encodings onto these names and
the ONNX writer turns them back into Relu / Clip nodes.
"""
from __future__ import annotations

import math

#: name -> (lower, upper) bound of the real-valued output
FUSED_ACTIVATIONS: dict[str, tuple[float, float]] = {
    "none": (-math.inf, math.inf),
    "relu": (0.0, math.inf),
    "relu6": (0.0, 6.0),
    "relu_n1_to_1": (-1.0, 1.0),
}


def activation_bounds(act: str) -> tuple[float, float]:
    return FUSED_ACTIVATIONS[act]


def activation_named_by(lo: float, hi: float) -> str | None:
    """The fused activation clamping to exactly [lo, hi], or None."""
    for name, bounds in FUSED_ACTIVATIONS.items():
        if bounds == (lo, hi):
            return name
    return None
