"""TFLite flatbuffer -> edgert IR. Reads the file and translates; nothing else.

Whether edgert can *compile* each op (dtypes, quantization) is decided by the kernels' checks
(edgert.ops), so that every front end shares them. This module only refuses what it
cannot translate: files that are not TFLite models, several subgraphs, op codes it has no
translation for (all of them at once, with their graph indices).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edgert.errors import DAMAGED_MODEL, ModelFormatError, UnsupportedError
from edgert.ir import DType, Graph, IRError, Op, QuantParams, Tensor, verify

from . import lce
from .common import TFLITE_ACTIVATIONS, require_at_least, tflite_pad_before, unsupported_summary
from .tflite_schema import schema as fb

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


def _act(opts, where: str) -> str:
    """The fused activation of a TFLite op's options, by name (edgert.ir.activations)."""
    code = getattr(opts, "fusedActivationFunction", 0) if opts is not None else 0
    if code not in TFLITE_ACTIVATIONS:
        name = {v: k for k, v in vars(fb.ActivationFunctionType).items()}.get(code, code)
        raise UnsupportedError(
            f"{where}: fused activation {name} is not supported",
            "supported fused activations: NONE, RELU, RELU_N1_TO_1, RELU6",
        )
    return TFLITE_ACTIVATIONS[code]


def _pad(padding: int, in_size: int, filt: int, stride: int, dilation: int = 1) -> int:
    return tflite_pad_before(padding == fb.Padding.SAME, in_size, filt, stride, dilation)


def _at_least_one(where: str, **fields: int) -> None:
    """Refuse a stride, dilation or filter size below 1 (the kernels divide and loop by them)."""
    require_at_least(where, 1, "strides, dilations and filter sizes must be at least 1; " + DAMAGED_MODEL, **fields)


def _padding_enum(where: str, padding: int) -> None:
    if padding not in (fb.Padding.SAME, fb.Padding.VALID):
        raise ModelFormatError(f"{where}: padding is {padding}, neither SAME ({fb.Padding.SAME}) nor VALID "
                               f"({fb.Padding.VALID})", DAMAGED_MODEL)


def _output_size(n: "Node", padding: int, filt: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int] = (1, 1)) -> None:
    """Refuse an output whose height or width is not what TFLite's padding rule gives (SAME:
    ceil(in / stride); VALID: ceil((in - dilated filter + 1) / stride)): the kernels loop over
    the output tensor's shape, so a wrong one would compute windows the model does not have."""
    x, y = n.x, n.tensors[n.outs[0]]
    if len(y.shape) != 4:
        raise ModelFormatError(f"{n.where}: output {n.outs[0]} has shape {list(y.shape)}; {n.name} gives rank 4",
                               DAMAGED_MODEL)
    for axis, what in ((1, "height"), (2, "width")):
        i, f, s, d = x.shape[axis], filt[axis - 1], stride[axis - 1], dilation[axis - 1]
        span = (f - 1) * d + 1
        want = -(-i // s) if padding == fb.Padding.SAME else -(-(i - span + 1) // s)
        if want < 1:
            raise ModelFormatError(f"{n.where}: the {what} of its window ({span}) is larger than the input's ({i}) "
                                   "with VALID padding", DAMAGED_MODEL)
        if y.shape[axis] != want:
            mode = "SAME" if padding == fb.Padding.SAME else "VALID"
            raise ModelFormatError(
                f"{n.where}: output {n.outs[0]} has {what} {y.shape[axis]}, but {mode} padding over an input "
                f"{what} of {i} with window {span} and stride {s} gives {want}", DAMAGED_MODEL)


def _spatial(n: "Node", fh: int, fw: int) -> dict:
    opts, x, where = n.opts, n.x, n.where
    sh, sw = opts.strideH, opts.strideW
    dh = getattr(opts, "dilationHFactor", 1)
    dw = getattr(opts, "dilationWFactor", 1)
    _at_least_one(where, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
    _padding_enum(where, opts.padding)
    _output_size(n, opts.padding, (fh, fw), (sh, sw), (dh, dw))
    return {
        "stride": (sh, sw),
        "dilation": (dh, dw),
        "pad": (_pad(opts.padding, x.shape[1], fh, sh, dh), _pad(opts.padding, x.shape[2], fw, sw, dw)),
    }


class Reader:
    def __init__(self, model, path: str):
        self.model = model
        self.path = path
        self.sg = model.subgraphs[0]

    def opcode_name(self, op, where: str = "an operator") -> str:
        codes = self.model.operatorCodes or []
        if not 0 <= op.opcodeIndex < len(codes):
            raise ModelFormatError(f"{self.path}: {where} names op code {op.opcodeIndex}, the file has {len(codes)}",
                                   DAMAGED_MODEL)
        oc = codes[op.opcodeIndex]
        if oc.customCode:
            return oc.customCode.decode(errors="replace")  # a custom op is named by its custom code
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")

    def const(self, index: int) -> np.ndarray | None:
        t = self.sg.tensors[index]
        buffers = self.model.buffers or []  # a file may lack the vector: then no tensor is constant
        buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
        if buf is None:
            return None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, dtype=np.uint8)
        elif getattr(buf, "offset", 0) and buf.offset > 1:
            end, size = buf.offset + buf.size, os.path.getsize(self.path)
            if end > size:
                raise ModelFormatError(
                    f"{self.path}: constant tensor {index} ({self.tname(index)}) is stored at bytes {buf.offset:,}"
                    f"-{end:,}, past the file's end ({size:,} bytes)", "the file is truncated or damaged: re-export it")
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


#: The zero points a quantized tensor of each dtype may have.
_ZERO_POINT_RANGE = {DType.I8: (-128, 127), DType.I32: (0, 0)}


def _check_quantization(r: Reader, index: int, t, shape, dtype, scales: list[float], zps: tuple, axis: int) -> None:
    """Every field the kernels rely on: scales positive and finite, zero points in the dtype's
    range, one zero point per scale, and per-channel parameters along an axis of that length."""
    where = f"tensor {index} ({r.tname(index)})"
    fix = DAMAGED_MODEL
    bad = [s for s in scales if not (np.isfinite(s) and s > 0)]
    if bad:
        raise ModelFormatError(f"{where}: quantization scale {bad[0]} is not a positive finite number", fix)
    if len(zps) != len(scales):
        raise ModelFormatError(f"{where}: {len(scales)} quantization scales but {len(zps)} zero points", fix)
    lo, hi = _ZERO_POINT_RANGE.get(dtype, (-(1 << 31), (1 << 31) - 1))
    out = [z for z in zps if not lo <= z <= hi]
    if out:
        raise ModelFormatError(f"{where}: zero point {out[0]} is outside [{lo}, {hi}] for {dtype.np_name}", fix)
    if len(scales) > 1 and not (0 <= axis < len(shape) and shape[axis] == len(scales)):
        raise ModelFormatError(f"{where}: {len(scales)} per-channel scales along axis {axis} of shape {list(shape)}", fix)


def _tensor(r: Reader, index: int) -> Tensor:
    t = r.sg.tensors[index]
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    if any(d <= 0 for d in shape):
        raise ModelFormatError(
            f"tensor {index} ({r.tname(index)}) has shape {list(shape)}",
            "every dimension must be positive: edgert compiles static shapes; re-export with a fixed batch size",
        )
    if int(np.prod(shape, dtype=object)) * 4 >= 1 << 31:  # no board addresses 2 GiB; C indexes in int32
        raise ModelFormatError(f"tensor {index} ({r.tname(index)}) has shape {list(shape)}: over 2^31 bytes",
                               "no target edgert builds for holds a tensor this large")
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
        _check_quantization(r, index, t, shape, dtype, [float(v) for v in q.scale], zps, int(q.quantizedDimension or 0))
        quant = QuantParams(
            scale=tuple(float(s) for s in np.asarray(q.scale, dtype=np.float32)),
            zero_point=zps,
            axis=int(q.quantizedDimension or 0),
        )
    return Tensor(name=f"t{index}", shape=shape, dtype=dtype, quant=quant, data=data)


@dataclass
class Node:
    """One TFLite operator as the translation functions see it."""

    name: str                  # its op code ("CONV_2D") or custom code ("LceBconv2d")
    ins: list[str]             # IR tensor names ("" for an absent optional input)
    outs: list[str]
    opts: object               # the builtin options table (object API), or None
    custom_options: object     # a custom op's raw options bytes, or None
    tensors: dict[str, Tensor]
    where: str                 # how errors name it: "CONV_2D #3"

    @property
    def x(self) -> Tensor | None:
        return self.tensors[self.ins[0]] if self.ins and self.ins[0] else None

    def tensor(self, pos: int) -> Tensor:
        return self.tensors[self.ins[pos]]

    def const_input(self, pos: int, what: str) -> np.ndarray:
        data = self.tensors[self.ins[pos]].data if len(self.ins) > pos and self.ins[pos] else None
        if data is None:
            raise UnsupportedError(
                f"{self.where}: the {what} input must be a constant",
                "edgert compiles static graphs; fold the shape computation before export",
            )
        return data

    def op(self, kind: str, n_inputs: int | None = None, **attrs) -> Op:
        return Op(kind, self.ins[:n_inputs] if n_inputs else self.ins, self.outs, attrs)


def _ranks(n: Node, *ranks: int) -> None:
    """Refuse inputs whose ranks are not the op's (the translation indexes their dimensions)."""
    for pos, rank in enumerate(ranks):
        t = n.tensor(pos)
        if len(t.shape) != rank:
            raise ModelFormatError(f"{n.where}: input {pos} has shape {list(t.shape)}; {n.name} takes rank {rank}",
                                   DAMAGED_MODEL)


def _conv2d(n: Node) -> Op:
    _ranks(n, 4, 4)
    w = n.tensor(1)
    return n.op("conv2d", 3, **_spatial(n, w.shape[1], w.shape[2]), act=_act(n.opts, n.where))


def _depthwise_conv2d(n: Node) -> Op:
    _ranks(n, 4, 4)
    w = n.tensor(1)
    return n.op("depthwise_conv2d", 3, **_spatial(n, w.shape[1], w.shape[2]), act=_act(n.opts, n.where),
                depth_multiplier=w.shape[3] // n.x.shape[3])


def _fully_connected(n: Node) -> Op:
    if n.opts is not None and n.opts.weightsFormat != 0:
        raise UnsupportedError(f"{n.where}: shuffled weights format", "re-export with default weights format")
    return n.op("fully_connected", 3, act=_act(n.opts, n.where))


def _pool(kind: str):
    def translate(n: Node) -> Op:
        _ranks(n, 4)
        o, x = n.opts, n.x
        _at_least_one(n.where, filter_height=o.filterHeight, filter_width=o.filterWidth, stride_h=o.strideH,
                      stride_w=o.strideW)
        _padding_enum(n.where, o.padding)
        _output_size(n, o.padding, (o.filterHeight, o.filterWidth), (o.strideH, o.strideW))
        return n.op(kind, 1, filter=(o.filterHeight, o.filterWidth), stride=(o.strideH, o.strideW),
                    pad=(_pad(o.padding, x.shape[1], o.filterHeight, o.strideH),
                         _pad(o.padding, x.shape[2], o.filterWidth, o.strideW)),
                    act=_act(o, n.where))
    return translate


def _with_act(kind: str):
    """A binary elementwise op with a fused activation."""
    return lambda n: n.op(kind, 2, act=_act(n.opts, n.where))


def _plain(kind: str):
    """An op of one input and no attributes."""
    return lambda n: n.op(kind, 1)


def _softmax(n: Node) -> Op:
    beta = float(np.float32(n.opts.beta))
    if not (np.isfinite(beta) and beta > 0):
        raise ModelFormatError(f"{n.where}: beta is {beta}, not a positive finite number", DAMAGED_MODEL)
    return n.op("softmax", 1, beta=beta)


def _pad_op(n: Node) -> Op:
    pads = n.const_input(1, "paddings").astype(np.int64)
    attrs = {"pads": tuple((int(a), int(b)) for a, b in pads.reshape(-1, 2))}
    if n.name == "PADV2" and len(n.ins) > 2 and n.ins[2]:
        attrs["value"] = n.const_input(2, "constant value").reshape(-1)[0].item()
    return n.op("pad", 1, **attrs)


def _mean(n: Node) -> Op:
    rank = len(n.x.shape)
    axes = sorted({int(a) % rank for a in n.const_input(1, "axes").reshape(-1)})
    return n.op("mean", 1, axes=tuple(axes), keep_dims=bool(n.opts.keepDims) if n.opts else False)


def _concat(n: Node) -> Op:
    rank = len(n.tensors[n.outs[0]].shape)
    return n.op("concat", None, axis=int(n.opts.axis) % rank, act=_act(n.opts, n.where))


#: TFLite op code (or Larq Compute Engine custom code) -> its translation into one edgert Op
#: (model attributes only). Whether a given instance compiles is then decided by the op's
#: family in edgert.ops (dtypes, quantization, shapes).
def _leaky_relu(n: Node) -> Op:
    alpha = float(n.opts.alpha)
    if not np.isfinite(alpha):
        raise ModelFormatError(f"{n.where}: alpha is {alpha}", DAMAGED_MODEL)
    return n.op("leaky_relu", 1, alpha=alpha)


TRANSLATE = {
    "ADD": _with_act("add"),
    "AVERAGE_POOL_2D": _pool("avg_pool2d"),
    "CONCATENATION": _concat,
    "CONV_2D": _conv2d,
    "DEPTHWISE_CONV_2D": _depthwise_conv2d,
    "DEQUANTIZE": _plain("dequantize"),
    "FULLY_CONNECTED": _fully_connected,
    "HARD_SWISH": _plain("hard_swish"),
    "LEAKY_RELU": _leaky_relu,
    "RELU": _plain("relu"),
    "RELU6": _plain("relu6"),
    "ABS": _plain("abs"),
    "LOGISTIC": _plain("logistic"),
    "MAX_POOL_2D": _pool("max_pool2d"),
    "MEAN": _mean,
    "MUL": _with_act("mul"),
    "SUB": _with_act("sub"),
    "MAXIMUM": lambda n: n.op("maximum", 2),
    "MINIMUM": lambda n: n.op("minimum", 2),
    "PRELU": lambda n: n.op("prelu", 2),
    "PAD": _pad_op,
    "PADV2": _pad_op,
    "QUANTIZE": _plain("quantize"),
    "RESHAPE": _plain("reshape"),
    "SOFTMAX": _softmax,
    **lce.TRANSLATE,
}

#: The op codes this front end reads, for messages and `edgert targets`.
SUPPORTED_OPS = tuple(TRANSLATE)

#: The builtin options table each op's translation reads: (the schema's table name, whether
#: the op must carry it; without it the schema's defaults apply).
OPTIONS = {
    "CONV_2D": ("Conv2DOptions", True), "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", True),
    "AVERAGE_POOL_2D": ("Pool2DOptions", True), "MAX_POOL_2D": ("Pool2DOptions", True),
    "SOFTMAX": ("SoftmaxOptions", True), "CONCATENATION": ("ConcatenationOptions", True),
    "LEAKY_RELU": ("LeakyReluOptions", True),
    "FULLY_CONNECTED": ("FullyConnectedOptions", False), "ADD": ("AddOptions", False),
    "MUL": ("MulOptions", False), "MEAN": ("ReducerOptions", False), "SUB": ("SubOptions", False),
}
#: The inputs each op must have (the rest may be absent, index -1).
REQUIRED_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "MUL": 2, "SUB": 2,
                   "MAXIMUM": 2, "MINIMUM": 2, "PRELU": 2}


def _check_operator(name: str, op, where: str) -> None:
    """The options table and the inputs an op's translation relies on, before it reads them."""
    fix = DAMAGED_MODEL
    table, required = OPTIONS.get(name, (None, False))
    opts = op.builtinOptions
    if table is not None and opts is None and required:
        raise ModelFormatError(f"{where} has no {table} table", fix)
    if table is not None and opts is not None and type(opts).__name__ != f"{table}T":
        raise ModelFormatError(f"{where} carries {type(opts).__name__.removesuffix('T')}, not {table}", fix)
    inputs = list(op.inputs if op.inputs is not None else [])
    need = REQUIRED_INPUTS.get(name, 1 if name in TRANSLATE and name not in lce.TRANSLATE else 0)
    if len(inputs) < need or any(i < 0 for i in inputs[:need]):
        raise ModelFormatError(f"{where} lacks one of its first {need} input(s) (inputs {inputs})", fix)
    if not list(op.outputs if op.outputs is not None else []):
        raise ModelFormatError(f"{where} has no output", fix)


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
    r = Reader(model, path)
    sg = r.sg
    ops = sg.operators or []
    for op in ops:  # a missing vector reads as None: as no inputs or outputs (checked below)
        op.inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        op.outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
    graph_in = [int(i) for i in (sg.inputs if sg.inputs is not None else [])]
    graph_out = [int(i) for i in (sg.outputs if sg.outputs is not None else [])]
    for what, ids in (("input", graph_in), ("output", graph_out)):
        if not ids:
            raise ModelFormatError(f"{path}: the model's graph has no {what}", DAMAGED_MODEL)

    names = [r.opcode_name(op, f"operator #{i}") for i, op in enumerate(ops)]
    bad = [(n, f"#{i}") for i, n in enumerate(names) if n not in SUPPORTED_OPS]
    if "DENSIFY" in names:  # the TFLite converter's EXPERIMENTAL_SPARSITY encoding
        raise UnsupportedError(
            f"{path}: weights stored sparse-encoded, with DENSIFY ops "
            f"({unsupported_summary([b for b in bad if b[0] == 'DENSIFY'])})",
            "convert without Optimize.EXPERIMENTAL_SPARSITY: edgert finds the zeros in dense weights itself and "
            "stores them sparse where that pays")
    if bad:
        raise UnsupportedError(
            f"{path}: unsupported op{'s' if len(bad) > 1 else ''}: {unsupported_summary(bad)}",
            "supported TFLite ops: " + ", ".join(SUPPORTED_OPS),
        )

    for idx, (op, name) in enumerate(zip(ops, names)):
        _check_operator(name, op, f"{name} #{idx}")
    used = set(graph_in) | set(graph_out)
    for op in ops:
        used.update(i for i in list(op.inputs) + list(op.outputs) if i >= 0)
    count = len(sg.tensors or [])
    wrong = sorted(i for i in used if not 0 <= i < count)
    if wrong:
        raise ModelFormatError(f"{path}: tensor index {wrong[0]} is out of range (the graph has {count} tensors)",
                               DAMAGED_MODEL)
    tensors = {f"t{i}": _tensor(r, i) for i in sorted(used)}

    graph_ops = []
    counters: dict[str, int] = {}
    for idx, (op, name) in enumerate(zip(ops, names)):
        node = Node(name, [f"t{i}" if i >= 0 else "" for i in op.inputs], [f"t{i}" for i in op.outputs],
                    op.builtinOptions, op.customOptions, tensors, f"{name} #{idx}")
        e = TRANSLATE[name](node)
        n = counters.get(e.kind, 0)
        counters[e.kind] = n + 1
        e.name = f"{e.kind}_{n}"
        e.source = f"{name} #{idx}"
        graph_ops.append(e)

    # Drop constant inputs that became attributes (reshape shape, pad amounts, mean axes).
    used_after = {t for op in graph_ops for t in op.inputs + op.outputs if t} | set(f"t{i}" for i in graph_in)
    used_after |= {f"t{i}" for i in graph_out}
    tensors = {k: v for k, v in tensors.items() if k in used_after}

    stem = os.path.splitext(os.path.basename(path))[0] if path != "<bytes>" else "model"
    g = Graph(
        tensors=tensors,
        ops=graph_ops,
        inputs=[f"t{i}" for i in graph_in],
        outputs=[f"t{i}" for i in graph_out],
        name=stem,
    )
    try:
        verify(g)
    except IRError as e:  # a well-formed file whose graph is not (a cycle, a tensor written twice, ...)
        raise ModelFormatError(f"{path}: {e}", "the model's graph is malformed: re-export it") from None
    return g
