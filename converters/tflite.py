"""TFLite flatbuffer -> edgert IR. Reads the file and translates; nothing else.

Whether edgert can *compile* each op (dtypes, quantization) is decided by the kernels' checks
(edgert.ops), so that every front end shares them. This module only refuses what it
cannot translate: files that are not TFLite models, several subgraphs, op codes it has no
translation for (all of them at once, with their graph indices).
"""
from __future__ import annotations

import os

import numpy as np

from edgert.errors import ModelFormatError, UnsupportedError
from edgert.ir import DType, Graph, Op, QuantParams, Tensor, verify

from . import lce
from ._tflite_schema import schema as fb

_BUILTIN_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_TENSOR_TYPES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_DTYPES = {
    fb.TensorType.INT8: DType.I8,
    fb.TensorType.UINT8: DType.U8,
    fb.TensorType.INT16: DType.I16,
    fb.TensorType.INT32: DType.I32,
    fb.TensorType.INT64: DType.I64,
    fb.TensorType.FLOAT32: DType.F32,
}
_ACTIVATIONS = {
    fb.ActivationFunctionType.NONE: "none",
    fb.ActivationFunctionType.RELU: "relu",
    fb.ActivationFunctionType.RELU_N1_TO_1: "relu_n1_to_1",
    fb.ActivationFunctionType.RELU6: "relu6",
}


def _act(opts, where: str) -> str:
    code = getattr(opts, "fusedActivationFunction", 0) if opts is not None else 0
    if code not in _ACTIVATIONS:
        name = {v: k for k, v in vars(fb.ActivationFunctionType).items()}.get(code, code)
        raise UnsupportedError(
            f"{where}: fused activation {name} is not supported",
            "supported fused activations: NONE, RELU, RELU_N1_TO_1, RELU6",
        )
    return _ACTIVATIONS[code]


def _same_or_valid(padding: int, in_size: int, filt: int, stride: int, dilation: int) -> int:
    """Padding before the first element, as TFLite computes it (ComputePaddingHeightWidth)."""
    eff = (filt - 1) * dilation + 1
    if padding == fb.Padding.VALID:
        return 0
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2


def _spatial(opts, x: Tensor, fh: int, fw: int) -> dict:
    sh, sw = opts.strideH, opts.strideW
    dh = getattr(opts, "dilationHFactor", 1) or 1
    dw = getattr(opts, "dilationWFactor", 1) or 1
    return {
        "stride": (sh, sw),
        "dilation": (dh, dw),
        "pad": (
            _same_or_valid(opts.padding, x.shape[1], fh, sh, dh),
            _same_or_valid(opts.padding, x.shape[2], fw, sw, dw),
        ),
    }


class _Reader:
    def __init__(self, model, path: str):
        self.model = model
        self.path = path
        self.sg = model.subgraphs[0]

    def opcode_name(self, op) -> str:
        oc = self.model.operatorCodes[op.opcodeIndex]
        if oc.customCode:
            return oc.customCode.decode(errors="replace")  # a custom op is named by its custom code
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")

    def const(self, index: int) -> np.ndarray | None:
        t = self.sg.tensors[index]
        buf = self.model.buffers[t.buffer] if 0 < t.buffer < len(self.model.buffers) else None
        if buf is None:
            return None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, dtype=np.uint8)
        elif getattr(buf, "offset", 0) and buf.offset > 1:
            with open(self.path, "rb") as f:
                f.seek(buf.offset)
                raw = np.frombuffer(f.read(buf.size), dtype=np.uint8)
        else:
            return None
        dtype = _DTYPES.get(t.type)
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if t.type == fb.TensorType.INT4:
            return _unpack_int4(raw, shape, f"{self.path}: constant tensor {index} ({self.tname(index)})")
        if dtype is None:
            return raw
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if raw.size != count * dtype.itemsize:
            raise ModelFormatError(
                f"{self.path}: constant tensor {index} ({self.tname(index)}) holds {raw.size} bytes, "
                f"its shape {list(shape)} of {dtype.np_name} needs {count * dtype.itemsize}",
                "the file is corrupt; re-export it from the training framework",
            )
        return raw.view(dtype.np).reshape(shape).copy()

    def tname(self, index: int) -> str:
        n = self.sg.tensors[index].name
        return n.decode(errors="replace") if isinstance(n, bytes) else str(n)


def _unpack_int4(raw: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """TFLite INT4 constants: two values per byte, the even-indexed one in the low nibble."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if raw.size != (count + 1) // 2:
        raise ModelFormatError(f"{where} holds {raw.size} bytes, its shape {list(shape)} of int4 needs {(count + 1) // 2}",
                               "the file is corrupt; re-export it")
    nibbles = np.stack([raw & 0xF, raw >> 4], axis=1).reshape(-1)[:count].astype(np.int16)
    return ((nibbles ^ 8) - 8).astype(np.int8).reshape(shape)


def _tensor(r: _Reader, index: int) -> Tensor:
    t = r.sg.tensors[index]
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    if any(d <= 0 for d in shape):
        raise ModelFormatError(
            f"tensor {index} ({r.tname(index)}) has shape {list(shape)}",
            "every dimension must be positive: edgert compiles static shapes; re-export with a fixed batch size",
        )
    dtype = _DTYPES.get(t.type)
    data = r.const(index)
    if t.type == fb.TensorType.INT4:  # weights: held as int8 values in [-8, 7] (edgert.ops.packing packs them)
        if data is None:
            raise UnsupportedError(f"tensor {index} ({r.tname(index)}) is an int4 activation",
                                   "edgert reads int4 constant weights only; activations must be int8")
        dtype = DType.I8
    if dtype is None:
        raise UnsupportedError(
            f"tensor {index} ({r.tname(index)}) has dtype {_TENSOR_TYPES.get(t.type, t.type)}",
            "edgert compiles int8 and float32 models (int32 biases); re-export the model with "
            "full-integer int8 or float32 quantization",
        )
    q = t.quantization
    quant = None
    if q is not None and q.scale is not None and len(q.scale) > 0:
        if q.detailsType not in (0, None):
            raise UnsupportedError(
                f"tensor {index} ({r.tname(index)}) uses a custom quantization scheme",
                "edgert supports affine (scale, zero point) quantization only",
            )
        zps = tuple(int(z) for z in (q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)))
        quant = QuantParams(
            scale=tuple(float(s) for s in np.asarray(q.scale, dtype=np.float32)),
            zero_point=zps,
            axis=int(q.quantizedDimension or 0),
        )
    return Tensor(name=f"t{index}", shape=shape, dtype=dtype, quant=quant, data=data)


def _translate(r: _Reader, idx: int, op, opname: str, g_tensors: dict) -> Op:
    """One TFLite operator -> one edgert Op (model attributes only)."""
    ins = [f"t{i}" if i >= 0 else "" for i in op.inputs]
    outs = [f"t{i}" for i in op.outputs]
    o = op.builtinOptions
    where = f"{opname} #{idx}"
    x = g_tensors[ins[0]] if ins and ins[0] else None

    def const_input(pos: int, what: str) -> np.ndarray:
        data = g_tensors[ins[pos]].data if len(ins) > pos and ins[pos] else None
        if data is None:
            raise UnsupportedError(
                f"{where}: the {what} input must be a constant",
                "edgert compiles static graphs; fold the shape computation before export",
            )
        return data

    if opname in lce.OPS:
        return lce.translate(opname, ins, outs, op.customOptions, g_tensors, where)
    if opname == "CONV_2D":
        w = g_tensors[ins[1]]
        return Op("conv2d", ins[:3], outs, {**_spatial(o, x, w.shape[1], w.shape[2]), "act": _act(o, where)})
    if opname == "DEPTHWISE_CONV_2D":
        w = g_tensors[ins[1]]
        attrs = {**_spatial(o, x, w.shape[1], w.shape[2]), "act": _act(o, where)}
        attrs["depth_multiplier"] = w.shape[3] // x.shape[3]
        return Op("depthwise_conv2d", ins[:3], outs, attrs)
    if opname == "FULLY_CONNECTED":
        if o is not None and o.weightsFormat != 0:
            raise UnsupportedError(f"{where}: shuffled weights format", "re-export with default weights format")
        return Op("fully_connected", ins[:3], outs, {"act": _act(o, where)})
    if opname in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kind = "avg_pool2d" if opname == "AVERAGE_POOL_2D" else "max_pool2d"
        attrs = {
            "filter": (o.filterHeight, o.filterWidth),
            "stride": (o.strideH, o.strideW),
            "pad": (
                _same_or_valid(o.padding, x.shape[1], o.filterHeight, o.strideH, 1),
                _same_or_valid(o.padding, x.shape[2], o.filterWidth, o.strideW, 1),
            ),
            "act": _act(o, where),
        }
        return Op(kind, ins[:1], outs, attrs)
    if opname in ("ADD", "MUL"):
        return Op(opname.lower(), ins[:2], outs, {"act": _act(o, where)})
    if opname == "RESHAPE":
        return Op("reshape", ins[:1], outs, {})
    if opname == "SOFTMAX":
        return Op("softmax", ins[:1], outs, {"beta": float(np.float32(o.beta))})
    if opname == "LOGISTIC":
        return Op("logistic", ins[:1], outs, {})
    if opname == "QUANTIZE":
        return Op("quantize", ins[:1], outs, {})
    if opname == "DEQUANTIZE":
        return Op("dequantize", ins[:1], outs, {})
    if opname in ("PAD", "PADV2"):
        pads = const_input(1, "paddings").astype(np.int64)
        attrs = {"pads": tuple((int(a), int(b)) for a, b in pads.reshape(-1, 2))}
        if opname == "PADV2" and len(ins) > 2 and ins[2]:
            attrs["value"] = const_input(2, "constant value").reshape(-1)[0].item()
        return Op("pad", ins[:1], outs, attrs)
    if opname == "MEAN":
        rank = len(x.shape)
        axes = sorted({int(a) % rank for a in const_input(1, "axes").reshape(-1)})
        return Op("mean", ins[:1], outs, {"axes": tuple(axes), "keep_dims": bool(o.keepDims) if o else False})
    if opname == "CONCATENATION":
        rank = len(g_tensors[outs[0]].shape)
        return Op("concat", ins, outs, {"axis": int(o.axis) % rank, "act": _act(o, where)})
    raise AssertionError(f"no translation for {opname}")  # guarded by SUPPORTED_OPS


#: TFLite op codes (and Larq Compute Engine custom op codes) this converter translates. Whether a given instance compiles is then
#: decided by edgert.ops (dtype and quantization checks).
SUPPORTED_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE",
    "RESHAPE", "SOFTMAX", *lce.OPS,
)


def parse_model(data: bytes, path: str = "<bytes>"):
    """Bytes -> the schema's object-API Model, or ModelFormatError naming what is wrong."""
    if len(data) < 8:
        raise ModelFormatError(
            f"{path}: {len(data)} bytes is too short to be a TFLite model",
            "the file is empty or truncated; copy or export it again",
        )
    if data[4:8] != b"TFL3":
        raise ModelFormatError(
            f"{path}: not a TFLite model (file identifier {data[4:8]!r}, expected b'TFL3')",
            "pass a .tflite flatbuffer produced by the TFLite converter",
        )
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    except Exception as e:  # the flatbuffers runtime raises assorted errors on bad offsets
        raise ModelFormatError(
            f"{path}: the TFLite flatbuffer is corrupt or truncated ({type(e).__name__} while reading it)",
            "copy or export the model again; its size or contents do not match its header",
        ) from None
    if not model.subgraphs:
        raise ModelFormatError(f"{path}: the model has no subgraph", "export the model again")
    return model


def load(path: str | os.PathLike, data: bytes | None = None) -> Graph:
    """Read a .tflite file into an edgert Graph (model attributes only; run passes next)."""
    path = os.fspath(path)
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ModelFormatError(f"{path}: cannot read ({e.strerror})", "check the path") from None
    model = parse_model(data, path)
    if len(model.subgraphs) > 1:
        raise UnsupportedError(
            f"{path}: the model has {len(model.subgraphs)} subgraphs (control flow)",
            "edgert compiles single-subgraph models; remove WHILE/IF ops before export",
        )
    r = _Reader(model, path)
    sg = r.sg
    ops = sg.operators or []

    names = [r.opcode_name(op) for op in ops]
    bad = [f"{n} (op #{i})" for i, n in enumerate(names) if n not in SUPPORTED_OPS]
    if "DENSIFY" in names:  # the TFLite converter's EXPERIMENTAL_SPARSITY encoding
        raise UnsupportedError(
            f"{path}: weights stored sparse-encoded, with DENSIFY ops ({', '.join(b for b in bad if b.startswith('DENSIFY'))})",
            "convert without Optimize.EXPERIMENTAL_SPARSITY: edgert finds the zeros in dense weights itself and "
            "stores them sparse where that pays")
    if bad:
        raise UnsupportedError(
            f"{path}: unsupported op{'s' if len(bad) > 1 else ''}: {', '.join(bad)}",
            "supported TFLite ops: " + ", ".join(SUPPORTED_OPS),
        )

    used = set(sg.inputs) | set(sg.outputs)
    for op in ops:
        used.update(i for i in list(op.inputs) + list(op.outputs) if i >= 0)
    tensors = {f"t{i}": _tensor(r, i) for i in sorted(used)}

    graph_ops = []
    counters: dict[str, int] = {}
    for idx, (op, name) in enumerate(zip(ops, names)):
        e = _translate(r, idx, op, name, tensors)
        n = counters.get(e.kind, 0)
        counters[e.kind] = n + 1
        e.name = f"{e.kind}_{n}"
        e.source = f"{name} #{idx}"
        graph_ops.append(e)

    # Drop constant inputs that became attributes (reshape shape, pad amounts, mean axes).
    used_after = {t for op in graph_ops for t in op.inputs + op.outputs if t} | set(f"t{i}" for i in sg.inputs)
    used_after |= {f"t{i}" for i in sg.outputs}
    tensors = {k: v for k, v in tensors.items() if k in used_after}

    stem = os.path.splitext(os.path.basename(path))[0] if path != "<bytes>" else "model"
    g = Graph(
        tensors=tensors,
        ops=graph_ops,
        inputs=[f"t{i}" for i in sg.inputs],
        outputs=[f"t{i}" for i in sg.outputs],
        name=stem,
    )
    verify(g)
    return g
