"""Sparse weights of a convolution or fully-connected layer, as the sparse kernels read them.

Each output channel keeps its nonzero weights and, for each, where its input lies relative
to the output position's window: ``ky * row_stride + kx * col_stride + c`` in the flattened
NHWC input (a fully-connected layer: the input feature). Every channel is padded to the
longest one (``width`` entries: the kernel's loops have constant bounds); a padding entry is
weight 0 at offset 0, which adds exactly nothing. A sparse convolution reads no padding:
edgert.passes.weight_format gives it an explicitly padded input, so every offset is in bounds.

The values go through a weight format of edgert.ops.packing like dense weights do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sparse:
    rows: int  # output channels
    width: int  # entries per channel (the most nonzeros of any channel)
    strides: tuple[int, int]  # input elements between filter rows and between filter columns (0, 0 for FC)
    nnz: int  # nonzero weights in the layer
    index_dtype: np.dtype  # uint8 or uint16: the smallest that holds every offset

    def __str__(self) -> str:
        return f"sparse({self.nnz} nonzeros in {self.rows}x{self.width} entries, {self.index_dtype.name} offsets)"

    @property
    def entries(self) -> int:
        return self.rows * self.width

    def index_bytes(self) -> int:
        return self.entries * self.index_dtype.itemsize


def _offsets(w: np.ndarray, strides: tuple[int, int]) -> np.ndarray:
    """Each weight's input offset, same shape as ``w`` ([oc, kh, kw, cin] or [units, features])."""
    if w.ndim == 2:
        return np.broadcast_to(np.arange(w.shape[1]), w.shape)
    _, kh, kw, cin = w.shape
    ky, kx, c = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(cin), indexing="ij")
    return np.broadcast_to(ky * strides[0] + kx * strides[1] + c, w.shape)


def analyse(w: np.ndarray, strides: tuple[int, int] = (0, 0)) -> Sparse | None:
    """The sparse layout of weights ``w`` ([oc, kh, kw, cin] OHWI with the input's ``strides``,
    or [units, features]); None where an offset needs more than 16 bits."""
    rows = w.reshape(w.shape[0], -1)
    width = max(int(np.count_nonzero(rows, axis=1).max()), 1)
    top = int(_offsets(w, strides).max()) if w.size else 0
    if top >= 1 << 16:
        return None
    dtype = np.dtype(np.uint8) if top < 256 else np.dtype(np.uint16)
    return Sparse(rows=w.shape[0], width=width, strides=strides, nnz=int(np.count_nonzero(rows)), index_dtype=dtype)


def encode(w: np.ndarray, s: Sparse) -> tuple[np.ndarray, np.ndarray]:
    """(offsets [rows, width] of s.index_dtype, values [rows, width] int8), each channel's
    nonzeros in ascending offset order, then padding."""
    pos = np.zeros((s.rows, s.width), s.index_dtype)
    val = np.zeros((s.rows, s.width), np.int8)
    offs = _offsets(w, s.strides).reshape(s.rows, -1)
    flat = w.reshape(s.rows, -1)
    for o in range(s.rows):
        nz = np.flatnonzero(flat[o])
        order = np.argsort(offs[o, nz], kind="stable")
        pos[o, :len(nz)] = offs[o, nz][order]
        val[o, :len(nz)] = flat[o, nz][order]
    return pos, val
