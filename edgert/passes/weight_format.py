"""Choose how each int8 layer's weights are stored and read: dense (int8, or the smallest exact
format: int4 or a codebook; edgert.ops.packing), or sparse (each output channel's nonzero
weights with their input offsets; edgert.ops.sparsity). Sets op.attrs["packing"] and
op.attrs["sparse"]; returns one report row per layer. A sparse convolution with padding gets an
explicit ``pad`` op on its input (its kernel then reads no out-of-bounds tap), which the arena
plans like any tensor.

The choice is by a cost estimate of the target's kind (Costs): flash bytes, which are exact,
and instructions, estimated as the MACs the kernel performs (dense: every weight; sparse:
every stored entry, padding included) times a per-MAC cost of that kernel form, plus the
padding copy. Sparse is chosen where it saves both flash and estimated instructions.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgert.ir import DType, Graph, Op
from edgert.ops import REGISTRY, forms, packing, sparsity

from . import padding

#: Modes of ``run``: "auto" (the target's choice: see Costs.pack; sparse where it pays),
#: "dense" (smallest exact format, never sparse), "int8" (weights as the model stores them;
#: api.compile_model then also keeps pruned channels).
MODES = ("auto", "dense", "int8")


@dataclass(frozen=True)
class Costs:
    """Estimated instructions of each kernel form on one kind of target.

    ``dense``: per MAC of a dense kernel, keyed by weight format ("int8", "int4", "codebook")
    where every format is a choice (``pack``), else by loop form ("fully_connected",
    "channels_inner", "conv2d": a dot product per output; see edgert.ops.forms). ``sparse``: per
    stored entry of an int8 sparse kernel. ``pad``: per byte of an explicitly padded input.
    ``pack``: "auto" stores dense weights in their smallest exact format where that saves
    MIN_PACK_SAVING bytes (flash-bound targets); otherwise in int8, which the vectorized kernels
    read fastest."""
    name: str
    dense: dict
    sparse: float
    pad: float
    pack: bool

    def dense_per_mac(self, g: Graph, op: Op, fmt: packing.Packing) -> float:
        if self.pack:
            return self.dense[fmt.kind]
        if op.kind == "fully_connected":
            return self.dense["fully_connected"]
        return self.dense["channels_inner" if forms.channels_inner(g, op) else "conv2d"]

    def sparse_per_entry(self, fmt: packing.Packing) -> float:
        """An entry of a sparse kernel whose values are stored in ``fmt``: the int8 entry plus
        what decoding that format adds to a dense MAC."""
        return self.sparse + (self.dense[fmt.kind] - self.dense["int8"] if self.pack else 0.0)


#: Cortex-M (scalar C kernels), measured on the emulated Cortex-M7 on the 3x3 12x12x16 -> 32
#: convolution of tests/codegen/test_weight_format.py (`edgert bench --target cortex-m7 --layers
#: --weights int8,auto` on its int8, int4, codebook and 80 %-sparse variants): 2,665,800,
#: 3,101,680, 5,228,440 instructions for 663,552 MACs, and 949,920 for the sparse kernel's
#: 175,104 entries; 5,240 for the 3,136 bytes of the padded input. Flash is what these
#: boards lack, so dense weights take their smallest exact format.
#: "auto" packs a layer's weights only where that saves at least this many flash bytes: every
#: packed weight costs instructions at each of its uses, and a small layer's few bytes are not
#: worth them. Measured case: the digits CNN's first convolution (144 weights, 75 % pruned)
#: holds per-group codebooks of 104 bytes against 144, for 177,000 instructions against 105,120.
MIN_PACK_SAVING = 256

SCALAR = Costs("scalar", {"int8": 4.0, "int4": 4.7, "codebook": 7.9}, sparse=5.4, pad=1.7, pack=True)

#: Cortex-M with the DSP extension, whose dense int8 layers take the DSP form
#: (edgert.ops.forms.dsp_dot), measured on the emulated Cortex-M7 on the same convolution
#: (`edgert bench --target cortex-m7 --layers --weights int8,auto`): 1,286,680 instructions
#: for its 663,552 MACs dense int8, 2,970,720 int4 and 5,102,040 codebook (their decoding
#: keeps the scalar form), 831,840 for the 80 %-sparse kernel's 175,104 entries; 5,240 for the
#: padded input. Sparse kernels now pay only where a layer is about two-thirds zeros.
DSP = Costs("dsp", {"int8": 1.94, "int4": 4.48, "codebook": 7.69}, sparse=4.75, pad=1.7, pack=True)

#: SIMD CPUs (aarch64, TVM's LLVM back end), measured on the Cortex-A72 under qemu-aarch64
#: (`edgert bench --target rpi4 --layers --weights int8,auto`). Dense int8: the same net's
#: fully-connected layer 4,180 instructions for 8,640 MACs; channels-innermost convolutions
#: 424,508 for 589,824 (the MLPerf VWW model's 1x1 conv2d_8..11); the dot-product 3x3
#: convolution above 1,489,926 for 663,552. Sparse: VWW's conv2d_8..13, 3,598,956
#: instructions for 693,504 entries (5.2), the net's 80 %-sparse layers 5.4-6.4. Padding 342
#: for 3,136 bytes. int4 and codebook decoding stops the vectorization (2.1x and 5.7x the
#: instructions of int8 on the net's 1x1 layer), and these boards have memory to spare, so
#: dense weights stay int8.
SIMD = Costs("simd", {"fully_connected": 0.48, "channels_inner": 0.72, "conv2d": 2.25},
             sparse=5.4, pad=0.11, pack=False)


def _chan_axis(kind: str) -> int:
    return 3 if kind == "depthwise_conv2d" else 0


def _sparse_layout(g: Graph, op: Op) -> sparsity.Sparse | None:
    w = g.tensor(op.inputs[1])
    if op.kind == "fully_connected":
        return sparsity.analyse(w.data)
    x = g.tensor(op.inputs[0])
    (pt, pb), (pl, pr) = padding.reads_outside(g, op)
    width, cin = x.shape[2] + pl + pr, x.shape[3]
    (dh, dw) = op.attrs["dilation"]
    return sparsity.analyse(w.data, (dh * width * cin, dw * cin))


def run(g: Graph, mode: str = "auto", costs: Costs = SCALAR) -> list[dict]:
    """Choose every int8 layer's weight format by ``mode`` (MODES) and the target's ``costs``."""
    rows = []
    for op in list(g.ops):
        if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected"):
            continue
        w = g.tensor(op.inputs[1])
        if w.dtype is not DType.I8 or not w.is_const:
            continue
        pack = mode == "dense" or (mode == "auto" and costs.pack)
        dense = packing.smallest(w.data, _chan_axis(op.kind)) if pack else packing.INT8
        if mode == "auto" and w.size - dense.nbytes(w.size) < MIN_PACK_SAVING:
            dense = packing.INT8
        macs = int(REGISTRY[op.kind].macs(op, g))
        row = {"layer": op.name, "source": op.source, "zeros": round(1.0 - int((w.data != 0).sum()) / max(w.size, 1), 3),
               "dense_format": dense.describe(), "dense_bytes": dense.nbytes(w.size), "dense_macs": macs}
        if mode == "int8":  # kernels read unannotated weights as int8
            row["chosen"] = "int8"
            rows.append(row)
            continue
        op.attrs["packing"], op.attrs["sparse"] = dense, None
        s = _sparse_layout(g, op) if op.kind != "depthwise_conv2d" else None
        if s is not None:
            _, val = sparsity.encode(w.data, s)
            vfmt = packing.smallest(val, 0) if pack else packing.INT8
            positions = g.tensor(op.outputs[0]).size // s.rows
            padded = padding.padded_shape(g, op) if op.kind == "conv2d" else None
            pad_bytes = 0 if padded is None else padded[1] * padded[2] * padded[3]
            row.update({"sparse_bytes": s.index_bytes() + vfmt.nbytes(s.entries), "sparse_macs": positions * s.entries})
            sparse_cost = row["sparse_macs"] * costs.sparse_per_entry(vfmt) + pad_bytes * costs.pad
            dense_cost = macs * costs.dense_per_mac(g, op, dense)
            row["estimated_instructions"] = {"dense": round(dense_cost), "sparse": round(sparse_cost), "costs": costs.name}
            if mode == "auto" and row["sparse_bytes"] < row["dense_bytes"] and sparse_cost < dense_cost:
                op.attrs["packing"], op.attrs["sparse"] = vfmt, s
                if op.kind == "conv2d":
                    row["padded_input_bytes"] = padding.explicit(g, op, "its sparse kernel")
        row["chosen"] = ("sparse, " if op.attrs["sparse"] else "") + op.attrs["packing"].describe()
        rows.append(row)
    return rows
