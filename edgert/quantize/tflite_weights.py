"""Low-bit weights for an int8 TFLite model: every convolution and fully-connected layer's
weights re-quantized to int4 (convolutions stored as TFLite INT4, two per byte; fully-connected
layers as int4 values in their INT8 tensor, because TFLite Micro's FULLY_CONNECTED refuses INT4
filters with int8 inputs; new per-channel scales, the bias re-scaled to match; edgert packs
both kinds two per byte) or snapped to a codebook (still INT8 tensors, with at most
2**bits distinct values, which edgert stores as bit-packed indices). The file stays a
standard TFLite model: TFLite Micro runs it, and is the reference for edgert's build of it."""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np

from edgert.frontends import tflite as tfl
from edgert.frontends.tflite_schema import schema as fb
from edgert.errors import UnsupportedError

from . import lowbit

LAYERS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _buffer(model, t) -> np.ndarray:
    return np.asarray(model.buffers[t.buffer].data, dtype=np.uint8)


def layers(model) -> list[tuple[int, object]]:
    """(operator index, operator) of each int8 layer with constant weights."""
    r = tfl.Reader(model, "<model>")
    out = []
    for i, op in enumerate(model.subgraphs[0].operators or []):
        if r.opcode_name(op) in LAYERS and model.subgraphs[0].tensors[op.inputs[1]].type == fb.TensorType.INT8:
            out.append((i, op))
    return out


def _int4(model, op, int4_type: bool) -> dict:
    sg = model.subgraphs[0]
    wt, x = sg.tensors[op.inputs[1]], sg.tensors[op.inputs[0]]
    w = _buffer(model, wt).view(np.int8).reshape(wt.shape)
    axis = int(wt.quantization.quantizedDimension or 0)
    q, scales = lowbit.int4_from_int8(w, np.asarray(wt.quantization.scale, np.float32), axis)
    old = np.broadcast_to(np.asarray(wt.quantization.scale, np.float64), scales.shape)
    if int4_type:
        flat = (q.reshape(-1).astype(np.int16) & 0xF).astype(np.uint8)
        flat = np.concatenate([flat, np.zeros(len(flat) % 2, np.uint8)])
        model.buffers[wt.buffer].data = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)
        wt.type = fb.TensorType.INT4
    else:
        model.buffers[wt.buffer].data = q.reshape(-1).view(np.uint8)
    wt.quantization.scale = scales.tolist()
    wt.quantization.zeroPoint = [0] * len(scales)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:  # bias scale = input scale * weight scale
        bt = sg.tensors[op.inputs[2]]
        b = _buffer(model, bt).view(np.int32).astype(np.float64)
        nb = np.clip(np.round(b * old / scales.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        model.buffers[bt.buffer].data = nb.view(np.uint8)
        bt.quantization.scale = (np.float64(x.quantization.scale[0]) * scales.astype(np.float64)).astype(np.float32).tolist()
        bt.quantization.zeroPoint = [0] * len(scales)
    return {"format": "int4" if int4_type else "int4 values in an INT8 tensor", "bytes": (q.size + 1) // 2}


def _codebook(model, op, bits: int) -> dict:
    wt = model.subgraphs[0].tensors[op.inputs[1]]
    w = _buffer(model, wt).view(np.int8)
    model.buffers[wt.buffer].data = lowbit.codebook_int8(w, bits).view(np.uint8)
    return {"format": f"codebook {bits}-bit", "levels": int(len(np.unique(model.buffers[wt.buffer].data)))}


def requantize(src: str | Path, dst: str | Path, formats: dict[int, str]) -> list[dict]:
    """Write ``src`` (an int8 .tflite) to ``dst`` with layer ``i``'s weights in ``formats[i]``:
    "int8" (unchanged), "int4", or "codebookK" (K-bit codebook). Returns one row per layer."""
    data = Path(src).read_bytes()
    model = tfl.parse_model(data, str(src))
    sg = model.subgraphs[0]
    shared = {}
    for _, op in layers(model):
        shared.setdefault(sg.tensors[op.inputs[1]].buffer, []).append(op)
    rows = []
    for i, op in layers(model):
        fmt = formats.get(i, "int8")
        wt = sg.tensors[op.inputs[1]]
        row = {"op": i, "tensor": wt.name.decode() if isinstance(wt.name, bytes) else str(wt.name), "format": fmt}
        if fmt != "int8" and len(shared[wt.buffer]) > 1:
            raise UnsupportedError(f"{src}: operator #{i}'s weights are shared with another layer",
                                   "re-export the model without weight sharing")
        if fmt == "int4":
            row.update(_int4(model, op, int4_type=tfl.Reader(model, "").opcode_name(op) != "FULLY_CONNECTED"))
        elif fmt.startswith("codebook"):
            row.update(_codebook(model, op, int(fmt[len("codebook"):] or 4)))
        elif fmt != "int8":
            raise UnsupportedError(f"unknown weight format {fmt!r}", "int8, int4 or codebookK (K = 2 or 4)")
        rows.append(row)
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(dst).write_bytes(bytes(builder.Output()))
    return rows
