"""Affine quantization parameters of a tensor: real = scale * (q - zero_point)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantParams:
    """Per-tensor (one scale) or per-channel (one scale per index of ``axis``).

    Scales are kept as float32 values, exactly as stored in the model file: the fixed-point
    multipliers derived from them at build time must match the reference interpreter's,
    which computes them from the same float32 numbers.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1

    @property
    def scales(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float32)

    @property
    def zp(self) -> int:
        """The zero point of a per-tensor (or symmetric per-channel) quantization."""
        return int(self.zero_point[0])

    def __str__(self) -> str:
        if self.per_channel:
            return f"q(axis={self.axis}, {len(self.scale)} scales, zp={self.zp})"
        return f"q({self.scale[0]:.9g}, {self.zp})"
