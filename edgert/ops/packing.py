"""How a layer's integer weights are stored in flash: the formats and their numpy encoders.

A weight format never changes a layer's arithmetic: the kernel decodes the very integer
values the model holds (the numpy references use them as they are), so a layer gives the
same outputs in every format. Formats:

* ``int8``: one byte per weight, as the model stores them.
* ``int4``: values in [-8, 7] (TFLite INT4, ONNX INT4, or int8 weights that fit), two per
  byte, the element with the even flat index in the low nibble (TFLite's and ONNX's order).
* ``codebook``: each weight a k-bit index (k = 2 or 4) into a table of at most 2**k int8
  values; one table per group of ``group`` consecutive output channels (the whole layer when
  ``group`` equals the channel count). Indices are packed 8/k per byte, low bits first.
* sparse (edgert.ops.sparsity): the nonzero weights of each output channel, in one of the
  formats above, with their positions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Packing:
    kind: str  # "int8" | "int4" | "codebook"
    bits: int = 8  # bits per stored element (index bits for a codebook)
    group: int = 0  # codebook: output channels per table
    table: np.ndarray | None = field(default=None, compare=False)  # codebook: int8 [groups, 2**bits]

    def nbytes(self, count: int) -> int:
        """Flash bytes for ``count`` weights, tables included."""
        stored = (count * self.bits + 7) // 8
        return stored + (int(self.table.size) if self.table is not None else 0)

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        if self.kind == "codebook":
            return f"codebook {self.bits}-bit, {self.table.shape[0]} table(s) of {self.table.shape[1]}"
        return self.kind


INT8 = Packing("int8")
INT4 = Packing("int4", bits=4)


def _codebook(values: np.ndarray, chan_axis: int) -> Packing | None:
    """The smallest codebook that holds ``values`` exactly: 2-bit before 4-bit, and for each,
    the largest channel group (a divisor of the channel count) whose every group has at most
    2**bits distinct values."""
    v = np.moveaxis(values, chan_axis, 0)
    oc = v.shape[0]
    rows = v.reshape(oc, -1)
    for bits in (2, 4):
        size = 1 << bits
        for group in sorted((d for d in range(1, oc + 1) if oc % d == 0), reverse=True):
            sets = [np.unique(rows[g:g + group]) for g in range(0, oc, group)]
            if all(len(s) <= size for s in sets):
                table = np.zeros((len(sets), size), np.int8)
                for i, s in enumerate(sets):
                    table[i, :len(s)] = s
                return Packing("codebook", bits=bits, group=group, table=table)
    return None


def candidates(values: np.ndarray, chan_axis: int) -> list[Packing]:
    """Every format that stores these int8 weight values exactly, int8 first."""
    out = [INT8]
    if values.size and values.min() >= -8 and values.max() <= 7:
        out.append(INT4)
    cb = _codebook(values, chan_axis)
    if cb is not None:
        out.append(cb)
    return out


def smallest(values: np.ndarray, chan_axis: int) -> Packing:
    """The candidate with the fewest flash bytes; on a tie the earlier (simpler to decode)."""
    return min(candidates(values, chan_axis), key=lambda p: p.nbytes(values.size))


def indices(values: np.ndarray, p: Packing, chan_axis: int) -> np.ndarray:
    """Each weight's slot in its group's codebook table (same shape as ``values``)."""
    v = np.moveaxis(values, chan_axis, 0).astype(np.int16)
    out = np.zeros(v.shape, np.uint8)
    for g in range(p.table.shape[0]):
        lut = np.zeros(256, np.uint8)
        for slot, val in reversed(list(enumerate(p.table[g]))):  # the first slot of a value wins
            lut[int(val) + 128] = slot
        rows = slice(g * p.group, (g + 1) * p.group)
        out[rows] = lut[v[rows] + 128]
    return np.moveaxis(out, 0, chan_axis)


def pack(values: np.ndarray, p: Packing, chan_axis: int) -> np.ndarray:
    """The bytes the kernel reads: ``values`` (in the layout the kernel indexes, row-major)
    encoded in format ``p``. int8 stays int8, int4 pairs are int8 bytes (the high nibble's
    sign is the byte's, so an arithmetic shift decodes it), codebook indices uint8."""
    if p.kind == "int8":
        return np.ascontiguousarray(values.astype(np.int8))
    codes = (values.astype(np.int16) & 0xF).astype(np.uint8) if p.kind == "int4" else indices(values, p, chan_axis)
    flat = codes.reshape(-1)
    per = 8 // p.bits
    flat = np.concatenate([flat, np.zeros((-len(flat)) % per, np.uint8)])
    out = np.zeros(len(flat) // per, np.uint8)
    for k in range(per):
        out |= (flat[k::per] << (k * p.bits)).astype(np.uint8)
    return out.view(np.int8) if p.kind == "int4" else out


def unpack(packed: np.ndarray, p: Packing, shape: tuple[int, ...], chan_axis: int) -> np.ndarray:
    """Inverse of ``pack``: the int8 values (for tests and the report)."""
    if p.kind == "int8":
        return packed.reshape(shape)
    per, mask = 8 // p.bits, (1 << p.bits) - 1
    packed = packed.view(np.uint8)
    count = int(np.prod(shape))
    codes = np.stack([(packed >> (k * p.bits)) & mask for k in range(per)], axis=1).reshape(-1)[:count]
    if p.kind == "int4":
        return ((codes.astype(np.int16) ^ 8) - 8).astype(np.int8).reshape(shape)
    codes = np.moveaxis(codes.reshape(shape), chan_axis, 0)
    groups = np.arange(codes.shape[0]) // p.group
    vals = p.table[groups.reshape((-1,) + (1,) * (codes.ndim - 1)), codes]
    return np.moveaxis(vals, 0, chan_axis).astype(np.int8)
