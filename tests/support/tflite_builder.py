"""Build small TFLite flatbuffer models in memory (for bit-exactness tests).

Two layers:

* :class:`ModelBuilder` low level API -- ``add_tensor`` / ``add_const`` /
  ``add_input`` / ``add_op`` / ``set_io`` / ``build``.  Nothing is inferred;
  you give shapes, dtypes, quantization and options yourself.
* Layer helpers on the same class (``conv2d``, ``depthwise_conv2d``,
  ``fully_connected``, ``avg_pool2d``, ``max_pool2d``, ``add``, ``mul``,
  ``reshape``, ``softmax``, ``logistic``, ``quantize``, ``dequantize``,
  ``pad``, ``mean``, ``concatenation``).  Each takes tensor indices, infers the
  output shape, creates the output tensor and returns its index.  When the
  input tensor is int8 they produce the quantization the TFLite converter
  would produce:

  - conv / depthwise weights: symmetric int8 per output channel
    (zero point 0, ``quantized_dimension`` 0 for conv, 3 for depthwise),
    scale = max|w_c| / 127;
  - fully connected weights: symmetric int8, per tensor (default) or per
    output channel (``per_channel=True``, quantized_dimension 0);
  - bias: int32, scale = input_scale * weight_scale[c], zero point 0;
  - softmax / logistic int8 output: scale 1/256, zero point -128;
  - pooling / reshape / pad / concat / mean: output quantization equal to
    the (first) input's unless overridden;
  - conv / depthwise / fc / add / mul: output quantization from
    ``out_scale``/``out_zero_point`` if given, else from an estimated float
    output range (see :func:`qparams_from_range`).

  When the input tensor is float32 the same helpers build float32 ops (float
  weights/bias, no quantization), so one test can build both variants.

Example::

    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.add_input((1, 8, 8, 3), "int8", scale=0.05, zero_point=-3)
    y = b.conv2d(x, rng.normal(0, 0.2, (4, 3, 3, 3)), rng.normal(0, 0.1, 4),
                 strides=2, padding="SAME", activation="RELU")
    b.set_outputs([y])
    model_bytes = b.build()

Fields that matter for TFLM are documented in ``add_tensor``.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import flatbuffers
import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema_fb

__all__ = [
    "ModelBuilder",
    "TensorInfo",
    "qparams_from_range",
    "quantize_symmetric",
    "conv_output_size",
    "tensor_type",
    "builtin_code",
]

# --------------------------------------------------------------------------
# enums / small utilities
# --------------------------------------------------------------------------

_NP_TO_TFL = {
    np.dtype(np.float32): schema_fb.TensorType.FLOAT32,
    np.dtype(np.float16): schema_fb.TensorType.FLOAT16,
    np.dtype(np.int32): schema_fb.TensorType.INT32,
    np.dtype(np.uint8): schema_fb.TensorType.UINT8,
    np.dtype(np.int64): schema_fb.TensorType.INT64,
    np.dtype(np.bool_): schema_fb.TensorType.BOOL,
    np.dtype(np.int16): schema_fb.TensorType.INT16,
    np.dtype(np.int8): schema_fb.TensorType.INT8,
    np.dtype(np.float64): schema_fb.TensorType.FLOAT64,
    np.dtype(np.uint32): schema_fb.TensorType.UINT32,
    np.dtype(np.uint16): schema_fb.TensorType.UINT16,
    np.dtype(np.uint64): schema_fb.TensorType.UINT64,
}

_BUILTIN_OPS = {
    k: v for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")
}

_ACTIVATIONS = {
    "NONE": schema_fb.ActivationFunctionType.NONE,
    "RELU": schema_fb.ActivationFunctionType.RELU,
    "RELU_N1_TO_1": schema_fb.ActivationFunctionType.RELU_N1_TO_1,
    "RELU6": schema_fb.ActivationFunctionType.RELU6,
    "TANH": schema_fb.ActivationFunctionType.TANH,
}

_PADDINGS = {"SAME": schema_fb.Padding.SAME, "VALID": schema_fb.Padding.VALID}

# Default BuiltinOptions class for ops whose options may be given as a dict.
_OPTIONS_FOR_OP = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "ADD": "AddOptions",
    "SUB": "SubOptions",
    "MUL": "MulOptions",
    "DIV": "DivOptions",
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions",
    "CONCATENATION": "ConcatenationOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "TRANSPOSE": "TransposeOptions",
    "SQUEEZE": "SqueezeOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "LEAKY_RELU": "LeakyReluOptions",
    "HARD_SWISH": "HardSwishOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "SPLIT": "SplitOptions",
    "GATHER": "GatherOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
}

# Operator versions the converter emits for int8 kernels (float kernels use 1).
# Neither TFLM nor LiteRT cares much (TFLM ignores versions; LiteRT only
# needs the version to be inside the registered range).
_INT8_VERSIONS = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2,
    "ADD": 2,
    "SUB": 2,
    "MUL": 2,
    "SOFTMAX": 2,
    "LOGISTIC": 2,
    "QUANTIZE": 2,
    "DEQUANTIZE": 2,
    "PAD": 2,
    "PADV2": 2,
    "MEAN": 2,
    "CONCATENATION": 2,
    "RESHAPE": 1,
}

_INT_RANGES = {
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int16): (-32768, 32767),
}


def tensor_type(dtype) -> int:
    """numpy dtype (or name) -> schema TensorType enum value."""
    dt = np.dtype(dtype)
    try:
        return _NP_TO_TFL[dt]
    except KeyError:
        raise ValueError(f"unsupported tensor dtype {dt}") from None


def builtin_code(op) -> int:
    """'CONV_2D' / 'conv_2d' / BuiltinOperator int -> BuiltinOperator int."""
    if isinstance(op, (int, np.integer)):
        return int(op)
    try:
        return _BUILTIN_OPS[str(op).upper()]
    except KeyError:
        raise ValueError(f"unknown builtin op {op!r}") from None


def _op_name(code: int) -> str:
    for k, v in _BUILTIN_OPS.items():
        if v == code:
            return k
    return str(code)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    h, w = v
    return int(h), int(w)


def _camel(name: str) -> str:
    """snake_case option names -> camelCase generated field names."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Spatial output size, TFLite semantics (SAME: ceil(in/stride))."""
    eff = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    if padding == "VALID":
        return (size - eff + stride) // stride
    raise ValueError(f"padding must be SAME or VALID, got {padding!r}")


def qparams_from_range(lo: float, hi: float, dtype="int8") -> tuple[float, int]:
    """Asymmetric (scale, zero_point) for a float range, converter-style.

    The range is first extended to contain 0 (so 0.0 is exactly
    representable), the zero point is rounded ("nudged") and clamped.
    """
    qmin, qmax = _INT_RANGES[np.dtype(dtype)]
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-9:
        hi = lo + 1e-3
    scale = (hi - lo) / (qmax - qmin)
    zp = int(np.clip(np.round(qmin - lo / scale), qmin, qmax))
    return float(np.float32(scale)), zp


def quantize_symmetric(w: np.ndarray, axis: int | None, bits: int = 8):
    """Symmetric weight quantization (zero point 0, range [-127, 127]).

    axis=None -> one scale; else one scale per index along ``axis``.
    Returns (int8 array, float32 scales 1-D).
    """
    w = np.asarray(w, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    if axis is None:
        max_abs = np.array([np.max(np.abs(w)) if w.size else 0.0])
    else:
        red = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
        max_abs = np.max(np.abs(w), axis=red)
    scales = np.where(max_abs > 0, max_abs / qmax, 1.0).astype(np.float32)
    if axis is None:
        bshape = [1] * w.ndim
    else:
        bshape = [1] * w.ndim
        bshape[axis % w.ndim] = -1
    q = np.clip(np.round(w / scales.astype(np.float64).reshape(bshape)), -qmax, qmax)
    return q.astype(np.int8), scales


def _quantize_bias(bias: np.ndarray, bias_scales: np.ndarray) -> np.ndarray:
    q = np.round(np.asarray(bias, np.float64) / bias_scales.astype(np.float64))
    return np.clip(q, -(2**31) + 1, 2**31 - 1).astype(np.int32)


def _clip_range_for_activation(lo, hi, activation):
    if activation == "RELU":
        lo, hi = max(lo, 0.0), max(hi, 0.0)
    elif activation == "RELU6":
        lo, hi = min(max(lo, 0.0), 6.0), min(max(hi, 0.0), 6.0)
    elif activation == "RELU_N1_TO_1":
        lo, hi = min(max(lo, -1.0), 1.0), min(max(hi, -1.0), 1.0)
    elif activation == "TANH":
        lo, hi = max(lo, -1.0), min(hi, 1.0)
    return lo, hi


# --------------------------------------------------------------------------
# flatbuffer packing helpers
# --------------------------------------------------------------------------


class _AlignedBufferT(schema_fb.BufferT):
    """BufferT whose data vector is 16-byte aligned (as the converter does).

    TFLM reads int32/float constants straight out of the flatbuffer, so
    keep them aligned.
    """

    ALIGN = 16

    def Pack(self, builder):
        data = None
        if self.data is not None:
            raw = bytes(self.data)
            builder.StartVector(1, len(raw), self.ALIGN)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data = builder.EndVector()
        schema_fb.BufferStart(builder)
        if data is not None:
            schema_fb.BufferAddData(builder, data)
        return schema_fb.BufferEnd(builder)


@dataclasses.dataclass
class TensorInfo:
    """What the builder remembers about a tensor."""

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray | None = None  # float32 1-D, None for unquantized
    zero_point: np.ndarray | None = None  # int64 1-D
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant data, None for activations
    name: str = ""

    @property
    def is_quantized(self) -> bool:
        return self.scale is not None

    @property
    def per_tensor(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantized tensor."""
        if self.scale is None or len(self.scale) != 1:
            raise ValueError(f"tensor {self.index} is not per-tensor quantized")
        return float(self.scale[0]), int(self.zero_point[0])

    def float_range(self) -> tuple[float, float]:
        """Float range representable by a per-tensor quantized tensor."""
        s, zp = self.per_tensor
        qmin, qmax = _INT_RANGES[self.dtype]
        return (qmin - zp) * s, (qmax - zp) * s


# --------------------------------------------------------------------------
# the builder
# --------------------------------------------------------------------------


class ModelBuilder:
    """Accumulates tensors/operators of one subgraph and packs a .tflite.

    Tensors and operators are referenced by integer index, in creation
    order (index -1 means "optional input omitted", as in TFLite).
    """

    def __init__(self, description: str = "edgert tflite_builder", name: str = "main"):
        self.description = description
        self.subgraph_name = name
        self._tensors: list[TensorInfo] = []
        self._ops: list[schema_fb.OperatorT] = []
        self._opcodes: dict[tuple[int, int], int] = {}  # (code, version) -> index
        self._opcode_list: list[tuple[int, int]] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # ---------------------------------------------------------------- tensors
    def add_tensor(
        self,
        shape: Sequence[int],
        dtype,
        *,
        scale=None,
        zero_point=None,
        quantized_dimension: int = 0,
        data=None,
        name: str | None = None,
    ) -> int:
        """Add a tensor, return its index.

        Args:
          shape: static shape (TFLM has no dynamic shapes; no -1).
          dtype: numpy dtype or name ("int8", "float32", "int32", ...).
          scale, zero_point: scalar (per-tensor) or 1-D sequence
            (per-channel along ``quantized_dimension``).  If ``scale`` is
            given and ``zero_point`` is not, zero points default to 0.
            TFLM requires quantization on every int8/int16 tensor its kernels
            read (inputs, outputs, weights, int32 bias of int8 conv/fc) and
            expects len(zero_point) == len(scale).
          data: constant contents; stored in a new buffer (cast to ``dtype``,
            C order).  ``None`` -> activation tensor using the shared empty
            buffer 0.
        """
        dt = np.dtype(dtype)
        tensor_type(dt)  # validate
        shape = tuple(int(s) for s in shape)
        sc = zp = None
        if scale is not None:
            sc = np.atleast_1d(np.asarray(scale, dtype=np.float32)).reshape(-1)
            if zero_point is None:
                zp = np.zeros(sc.shape, np.int64)
            else:
                zp = np.atleast_1d(np.asarray(zero_point, dtype=np.int64)).reshape(-1)
                if zp.size == 1 and sc.size > 1:
                    zp = np.full(sc.shape, zp[0], np.int64)
            if zp.size != sc.size:
                raise ValueError("zero_point and scale must have the same length")
            if sc.size > 1:
                qd = quantized_dimension % max(len(shape), 1)
                if shape[qd] != sc.size:
                    raise ValueError(
                        f"{sc.size} scales but dim {qd} of shape {shape} is {shape[qd]}"
                    )
        elif zero_point is not None:
            raise ValueError("zero_point given without scale")
        arr = None
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(dt, copy=False))
            if arr.size != int(np.prod(shape, dtype=np.int64)):
                raise ValueError(f"data of size {arr.size} does not fit shape {shape}")
            arr = arr.reshape(shape)
        idx = len(self._tensors)
        self._tensors.append(
            TensorInfo(
                index=idx,
                shape=shape,
                dtype=dt,
                scale=sc,
                zero_point=zp,
                quantized_dimension=int(quantized_dimension),
                data=arr,
                name=name or f"t{idx}",
            )
        )
        return idx

    def add_const(self, data, dtype=None, **kw) -> int:
        """Constant tensor whose shape is taken from ``data``."""
        arr = np.asarray(data if dtype is None else np.asarray(data).astype(dtype))
        return self.add_tensor(arr.shape, arr.dtype, data=arr, **kw)

    def add_input(self, shape, dtype, **kw) -> int:
        """Activation tensor appended to the model inputs."""
        idx = self.add_tensor(shape, dtype, **kw)
        self.inputs.append(idx)
        return idx

    def tensor(self, idx: int) -> TensorInfo:
        return self._tensors[idx]

    @property
    def num_tensors(self) -> int:
        return len(self._tensors)

    # -------------------------------------------------------------- operators
    def add_op(self, op, inputs: Iterable[int], outputs: Iterable[int], options=None, *, version: int | None = None) -> int:
        """Add an operator, return its index in the subgraph.

        Args:
          op: builtin name ("CONV_2D") or BuiltinOperator value.
          inputs/outputs: tensor indices (-1 = omitted optional input).
          options: a ``schema_fb.*OptionsT`` instance, or a dict of its
            fields (camelCase or snake_case) for ops listed in
            ``_OPTIONS_FOR_OP``; ``None`` for option-less ops.
          version: operator-code version; default: converter-like value for
            int8 inputs, 1 otherwise.
        """
        code = builtin_code(op)
        name = _op_name(code)
        inputs = [int(i) for i in inputs]
        outputs = [int(i) for i in outputs]
        for i in inputs + outputs:
            if i != -1 and not 0 <= i < len(self._tensors):
                raise IndexError(f"tensor index {i} out of range")
        if version is None:
            first = next((i for i in inputs if i >= 0), None)
            is_int8 = first is not None and self._tensors[first].dtype == np.int8
            version = _INT8_VERSIONS.get(name, 1) if is_int8 else 1
        key = (code, int(version))
        if key not in self._opcodes:
            self._opcodes[key] = len(self._opcode_list)
            self._opcode_list.append(key)
        o = schema_fb.OperatorT()
        o.opcodeIndex = self._opcodes[key]
        o.inputs = inputs
        o.outputs = outputs
        if options is not None:
            if isinstance(options, dict):
                cls_name = _OPTIONS_FOR_OP.get(name)
                if cls_name is None:
                    raise ValueError(f"pass an OptionsT instance for op {name}")
                opt = getattr(schema_fb, cls_name + "T")()
                for k, v in options.items():
                    field = _camel(k)
                    if not hasattr(opt, field):
                        raise AttributeError(f"{cls_name} has no field {field!r}")
                    setattr(opt, field, v)
            else:
                opt = options
                cls_name = type(opt).__name__
                if cls_name.endswith("T"):
                    cls_name = cls_name[:-1]
            o.builtinOptionsType = getattr(schema_fb.BuiltinOptions, cls_name)
            o.builtinOptions = opt
        self._ops.append(o)
        return len(self._ops) - 1

    def set_io(self, inputs: Iterable[int], outputs: Iterable[int]) -> None:
        """Set subgraph inputs and outputs (replaces previous ones)."""
        self.inputs = [int(i) for i in inputs]
        self.outputs = [int(i) for i in outputs]

    def set_outputs(self, outputs: Iterable[int]) -> None:
        self.outputs = [int(i) for i in outputs]

    # ------------------------------------------------------------------ build
    def to_object(self) -> schema_fb.ModelT:
        """The model as a schema object tree (ModelT)."""
        if not self.outputs:
            raise ValueError("model has no outputs; call set_io/set_outputs")
        model = schema_fb.ModelT()
        model.version = 3
        model.description = self.description
        buffers = [_AlignedBufferT()]  # buffer 0: the mandatory empty buffer
        tensors = []
        for t in self._tensors:
            tt = schema_fb.TensorT()
            tt.shape = np.asarray(t.shape, np.int32)
            tt.type = tensor_type(t.dtype)
            tt.name = t.name
            if t.data is not None:
                b = _AlignedBufferT()
                b.data = t.data.tobytes(order="C")
                tt.buffer = len(buffers)
                buffers.append(b)
            else:
                tt.buffer = 0
            if t.scale is not None:
                q = schema_fb.QuantizationParametersT()
                q.scale = [float(s) for s in t.scale]
                q.zeroPoint = [int(z) for z in t.zero_point]
                q.quantizedDimension = t.quantized_dimension
                tt.quantization = q
            tensors.append(tt)
        sg = schema_fb.SubGraphT()
        sg.tensors = tensors
        sg.inputs = list(self.inputs)
        sg.outputs = list(self.outputs)
        sg.operators = list(self._ops)
        sg.name = self.subgraph_name
        model.subgraphs = [sg]
        model.buffers = buffers
        codes = []
        for code, version in self._opcode_list:
            oc = schema_fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)  # 127 = PLACEHOLDER_FOR_GREATER_OP_CODES
            oc.version = version
            codes.append(oc)
        model.operatorCodes = codes
        return model

    def build(self) -> bytes:
        """Serialize to .tflite bytes (file identifier TFL3)."""
        fbb = flatbuffers.Builder(1024)
        fbb.Finish(self.to_object().Pack(fbb), file_identifier=b"TFL3")
        return bytes(fbb.Output())

    # ======================================================= layer helpers
    def _new_like(self, shape, src: int, *, scale=None, zero_point=None, dtype=None) -> int:
        """Output activation with src's dtype and (unless given) quantization."""
        s = self._tensors[src]
        dt = np.dtype(dtype) if dtype is not None else s.dtype
        if scale is not None and dt in _INT_RANGES:
            return self.add_tensor(shape, dt, scale=scale, zero_point=zero_point or 0)
        if s.is_quantized and dt == s.dtype:
            sc, zp = s.per_tensor
            return self.add_tensor(shape, dt, scale=sc, zero_point=zp)
        return self.add_tensor(shape, dt)

    def _out_qparams(self, out_scale, out_zero_point, est_range, activation):
        if out_scale is not None:
            return float(out_scale), int(out_zero_point or 0)
        lo, hi = _clip_range_for_activation(*est_range, activation)
        return qparams_from_range(lo, hi)

    def _weights_and_bias(self, x, weights, bias, *, axis, per_channel, weight_scale=None, zero_bias=False):
        """Add weight/bias constants; returns (w_idx, b_idx, float_w).

        zero_bias: bias None -> add an all-zero bias (int32 for int8 input,
        float32 otherwise).  The converter always emits one for conv /
        depthwise and LiteRT's CONV_2D rejects a missing bias
        ("has_bias was not true" / "Tensor at index 2 was optional but was
        expected"); TFLM accepts both forms.
        """
        xi = self._tensors[x]
        w = np.asarray(weights)
        n_out = w.shape[axis]
        if bias is None and zero_bias:
            bias = np.zeros(n_out, np.float32)
        if not xi.is_quantized:
            w_idx = self.add_const(w.astype(np.float32))
            b_idx = -1 if bias is None else self.add_const(np.asarray(bias, np.float32).reshape(n_out))
            return w_idx, b_idx, w.astype(np.float64)
        if w.dtype == np.int8:
            if weight_scale is None:
                raise ValueError("int8 weights need weight_scale")
            wq = w
            ws = np.atleast_1d(np.asarray(weight_scale, np.float32))
        else:
            wq, ws = quantize_symmetric(w, axis if per_channel else None)
        wf = wq.astype(np.float64) * (
            ws.reshape([-1 if i == axis % w.ndim else 1 for i in range(w.ndim)]) if ws.size > 1 else ws[0]
        )
        qd = axis % w.ndim if ws.size > 1 else 0
        w_idx = self.add_const(wq, scale=ws, zero_point=np.zeros(ws.size, np.int64), quantized_dimension=qd)
        if bias is None:
            return w_idx, -1, wf
        in_scale, _ = xi.per_tensor
        bias_scales = (np.float64(in_scale) * ws.astype(np.float64)).astype(np.float32)
        if bias_scales.size == 1:
            bias_scales_full = np.full(n_out, bias_scales[0], np.float32)
        else:
            bias_scales_full = bias_scales
        b = np.asarray(bias)
        bq = b.astype(np.int32) if b.dtype == np.int32 else _quantize_bias(b.reshape(n_out), bias_scales_full)
        b_idx = self.add_const(
            bq.reshape(n_out), scale=bias_scales, zero_point=np.zeros(bias_scales.size, np.int64), quantized_dimension=0
        )
        return w_idx, b_idx, wf

    def _estimate_linear_range(self, x, wf, bias_f, reduce_axes, out_axis):
        """Estimated float output range of y = sum(w*x) + b with x ~ U(range)."""
        lo, hi = self._tensors[x].float_range()
        m, var = (lo + hi) / 2.0, (hi - lo) ** 2 / 12.0
        sw = wf.sum(axis=reduce_axes)
        sw2 = (wf**2).sum(axis=reduce_axes)
        b = np.zeros_like(sw) if bias_f is None else np.asarray(bias_f, np.float64).reshape(sw.shape)
        mean = m * sw + b
        std = np.sqrt(var * sw2)
        return float(np.min(mean - 3 * std)), float(np.max(mean + 3 * std))

    def _bias_float(self, b_idx):
        if b_idx < 0:
            return None
        t = self._tensors[b_idx]
        if t.scale is not None:
            return t.data.astype(np.float64) * (t.scale.astype(np.float64) if t.scale.size > 1 else t.scale[0])
        return t.data.astype(np.float64)

    # ---- conv
    def conv2d(
        self,
        x: int,
        weights,
        bias=None,
        *,
        strides=1,
        padding: str = "SAME",
        dilation=1,
        activation: str = "NONE",
        out_scale=None,
        out_zero_point=None,
        weight_scale=None,
        omit_bias: bool = False,
    ) -> int:
        """CONV_2D. weights: [Cout, kh, kw, Cin] (float, or int8 + weight_scale).

        int8: per-channel symmetric weights (quantized_dimension 0), int32
        bias with scale in_scale*w_scale[c].  ``bias=None`` -> all-zero bias
        tensor, like the converter (``omit_bias=True`` uses input -1 instead,
        which TFLM accepts but LiteRT rejects).
        bias may also be given pre-quantized as an int32 array.
        """
        xi = self._tensors[x]
        w = np.asarray(weights)
        cout, kh, kw, cin = w.shape
        n, h, wd, c = xi.shape
        if c % cin:
            raise ValueError("input channels must be a multiple of filter channels")
        sh, sw = _pair(strides)
        dh, dw = _pair(dilation)
        oh = conv_output_size(h, kh, sh, dh, padding)
        ow = conv_output_size(wd, kw, sw, dw, padding)
        w_idx, b_idx, wf = self._weights_and_bias(
            x, w, bias, axis=0, per_channel=True, weight_scale=weight_scale, zero_bias=not omit_bias
        )
        if xi.is_quantized:
            rng = self._estimate_linear_range(x, wf, self._bias_float(b_idx), (1, 2, 3), 0)
            osc, ozp = self._out_qparams(out_scale, out_zero_point, rng, activation)
            y = self.add_tensor((n, oh, ow, cout), xi.dtype, scale=osc, zero_point=ozp)
        else:
            y = self.add_tensor((n, oh, ow, cout), xi.dtype)
        opt = schema_fb.Conv2DOptionsT()
        opt.padding = _PADDINGS[padding]
        opt.strideH, opt.strideW = sh, sw
        opt.dilationHFactor, opt.dilationWFactor = dh, dw
        opt.fusedActivationFunction = _ACTIVATIONS[activation]
        self.add_op("CONV_2D", [x, w_idx, b_idx], [y], opt)
        return y

    def depthwise_conv2d(
        self,
        x: int,
        weights,
        bias=None,
        *,
        depth_multiplier: int | None = None,
        strides=1,
        padding: str = "SAME",
        dilation=1,
        activation: str = "NONE",
        out_scale=None,
        out_zero_point=None,
        weight_scale=None,
        omit_bias: bool = False,
    ) -> int:
        """DEPTHWISE_CONV_2D. weights: [1, kh, kw, Cin*multiplier].

        int8: per-channel symmetric weights with quantized_dimension 3; bias
        handling as in :meth:`conv2d`.
        """
        xi = self._tensors[x]
        w = np.asarray(weights)
        one, kh, kw, cout = w.shape
        if one != 1:
            raise ValueError("depthwise weights must be [1, kh, kw, Cout]")
        n, h, wd, cin = xi.shape
        if depth_multiplier is None:
            depth_multiplier = cout // cin
        if cin * depth_multiplier != cout:
            raise ValueError("Cout must equal Cin * depth_multiplier")
        sh, sw = _pair(strides)
        dh, dw = _pair(dilation)
        oh = conv_output_size(h, kh, sh, dh, padding)
        ow = conv_output_size(wd, kw, sw, dw, padding)
        w_idx, b_idx, wf = self._weights_and_bias(
            x, w, bias, axis=3, per_channel=True, weight_scale=weight_scale, zero_bias=not omit_bias
        )
        if xi.is_quantized:
            rng = self._estimate_linear_range(x, wf, self._bias_float(b_idx), (0, 1, 2), 3)
            osc, ozp = self._out_qparams(out_scale, out_zero_point, rng, activation)
            y = self.add_tensor((n, oh, ow, cout), xi.dtype, scale=osc, zero_point=ozp)
        else:
            y = self.add_tensor((n, oh, ow, cout), xi.dtype)
        opt = schema_fb.DepthwiseConv2DOptionsT()
        opt.padding = _PADDINGS[padding]
        opt.strideH, opt.strideW = sh, sw
        opt.dilationHFactor, opt.dilationWFactor = dh, dw
        opt.depthMultiplier = int(depth_multiplier)
        opt.fusedActivationFunction = _ACTIVATIONS[activation]
        self.add_op("DEPTHWISE_CONV_2D", [x, w_idx, b_idx], [y], opt)
        return y

    def fully_connected(
        self,
        x: int,
        weights,
        bias=None,
        *,
        activation: str = "NONE",
        per_channel: bool = False,
        keep_num_dims: bool = False,
        out_scale=None,
        out_zero_point=None,
        weight_scale=None,
    ) -> int:
        """FULLY_CONNECTED. weights: [units, in_features].

        Input is flattened to [-1, in_features]; output is [batch, units]
        (or input.shape[:-1] + [units] with keep_num_dims).
        """
        xi = self._tensors[x]
        w = np.asarray(weights)
        units, k = w.shape
        total = int(np.prod(xi.shape))
        if total % k:
            raise ValueError("input size not divisible by in_features")
        if keep_num_dims:
            if xi.shape[-1] != k:
                raise ValueError("keep_num_dims needs input.shape[-1] == in_features")
            oshape = tuple(xi.shape[:-1]) + (units,)
        else:
            oshape = (total // k, units)
        w_idx, b_idx, wf = self._weights_and_bias(x, w, bias, axis=0, per_channel=per_channel, weight_scale=weight_scale)
        if xi.is_quantized:
            rng = self._estimate_linear_range(x, wf, self._bias_float(b_idx), (1,), 0)
            osc, ozp = self._out_qparams(out_scale, out_zero_point, rng, activation)
            y = self.add_tensor(oshape, xi.dtype, scale=osc, zero_point=ozp)
        else:
            y = self.add_tensor(oshape, xi.dtype)
        opt = schema_fb.FullyConnectedOptionsT()
        opt.fusedActivationFunction = _ACTIVATIONS[activation]
        opt.keepNumDims = bool(keep_num_dims)
        self.add_op("FULLY_CONNECTED", [x, w_idx, b_idx], [y], opt)
        return y

    # ---- pooling
    def _pool(self, op, x, pool_size, strides, padding, activation):
        xi = self._tensors[x]
        n, h, w, c = xi.shape
        fh, fw = _pair(pool_size)
        sh, sw = _pair(strides if strides is not None else pool_size)
        oh = conv_output_size(h, fh, sh, 1, padding)
        ow = conv_output_size(w, fw, sw, 1, padding)
        y = self._new_like((n, oh, ow, c), x)
        opt = schema_fb.Pool2DOptionsT()
        opt.padding = _PADDINGS[padding]
        opt.strideH, opt.strideW = sh, sw
        opt.filterHeight, opt.filterWidth = fh, fw
        opt.fusedActivationFunction = _ACTIVATIONS[activation]
        self.add_op(op, [x], [y], opt)
        return y

    def avg_pool2d(self, x, pool_size, strides=None, padding="VALID", activation="NONE") -> int:
        """AVERAGE_POOL_2D; int8 output keeps the input quantization."""
        return self._pool("AVERAGE_POOL_2D", x, pool_size, strides, padding, activation)

    def max_pool2d(self, x, pool_size, strides=None, padding="VALID", activation="NONE") -> int:
        """MAX_POOL_2D; int8 output keeps the input quantization."""
        return self._pool("MAX_POOL_2D", x, pool_size, strides, padding, activation)

    # ---- elementwise
    def _binary(self, op, a, b, activation, out_scale, out_zero_point, combine):
        ai, bi = self._tensors[a], self._tensors[b]
        shape = tuple(np.broadcast_shapes(ai.shape, bi.shape))
        if ai.is_quantized:
            (alo, ahi), (blo, bhi) = ai.float_range(), bi.float_range()
            lo, hi = combine(alo, ahi, blo, bhi)
            osc, ozp = self._out_qparams(out_scale, out_zero_point, (lo, hi), activation)
            y = self.add_tensor(shape, ai.dtype, scale=osc, zero_point=ozp)
        else:
            y = self.add_tensor(shape, ai.dtype)
        opt = None
        if op in _OPTIONS_FOR_OP:  # PRELU has no options table
            opt = getattr(schema_fb, _OPTIONS_FOR_OP[op] + "T")()
            opt.fusedActivationFunction = _ACTIVATIONS[activation]
        self.add_op(op, [a, b], [y], opt)
        return y

    def add(self, a, b, *, activation="NONE", out_scale=None, out_zero_point=None) -> int:
        """ADD with numpy broadcasting. int8 default output range: sum of ranges."""
        return self._binary(
            "ADD", a, b, activation, out_scale, out_zero_point, lambda al, ah, bl, bh: (al + bl, ah + bh)
        )

    def sub(self, a, b, *, activation="NONE", out_scale=None, out_zero_point=None) -> int:
        """SUB with numpy broadcasting. int8 default output range: the difference's bounds."""
        return self._binary(
            "SUB", a, b, activation, out_scale, out_zero_point, lambda al, ah, bl, bh: (al - bh, ah - bl)
        )

    def _maximum_minimum(self, op, a, b) -> int:
        ai, bi = self._tensors[a], self._tensors[b]
        shape = tuple(np.broadcast_shapes(ai.shape, bi.shape))
        if ai.is_quantized:  # the converter gives the output the first input's quantization
            osc, ozp = ai.per_tensor
            y = self.add_tensor(shape, ai.dtype, scale=osc, zero_point=ozp)
        else:
            y = self.add_tensor(shape, ai.dtype)
        self.add_op(op, [a, b], [y], schema_fb.MaximumMinimumOptionsT())
        return y

    def prelu(self, x, alpha, *, activation="NONE", out_scale=None, out_zero_point=None) -> int:
        """PRELU, x >= 0 ? x : alpha * x, alpha broadcast (no fused activation). int8 default output
        range: x's positive part and alpha times its negative part."""
        assert activation == "NONE"
        return self._binary("PRELU", x, alpha, activation, out_scale, out_zero_point,
                            lambda al, ah, bl, bh: (min(0.0, al * bl, al * bh), max(ah, al * bl, al * bh, 0.0)))

    def maximum(self, a, b, *, activation="NONE") -> int:
        """MAXIMUM with numpy broadcasting (no fused activation: ``activation`` must be NONE)."""
        assert activation == "NONE"
        return self._maximum_minimum("MAXIMUM", a, b)

    def minimum(self, a, b, *, activation="NONE") -> int:
        """MINIMUM with numpy broadcasting (no fused activation: ``activation`` must be NONE)."""
        assert activation == "NONE"
        return self._maximum_minimum("MINIMUM", a, b)

    def mul(self, a, b, *, activation="NONE", out_scale=None, out_zero_point=None) -> int:
        """MUL with numpy broadcasting. int8 default output range: product bounds."""

        def comb(al, ah, bl, bh):
            p = [al * bl, al * bh, ah * bl, ah * bh]
            return min(p), max(p)

        return self._binary("MUL", a, b, activation, out_scale, out_zero_point, comb)

    # ---- shape ops
    def reshape(self, x, new_shape, *, shape_tensor: bool = True) -> int:
        """RESHAPE (one -1 allowed). Adds the int32 shape tensor like the converter."""
        xi = self._tensors[x]
        shp = list(int(s) for s in new_shape)
        total = int(np.prod(xi.shape))
        if shp.count(-1) == 1:
            known = int(np.prod([s for s in shp if s != -1]))
            shp[shp.index(-1)] = total // known
        if int(np.prod(shp)) != total:
            raise ValueError(f"cannot reshape {xi.shape} to {new_shape}")
        y = self._new_like(tuple(shp), x)
        ins = [x]
        if shape_tensor:
            ins.append(self.add_const(np.asarray(shp, np.int32)))
        opt = schema_fb.ReshapeOptionsT()
        opt.newShape = list(shp)
        self.add_op("RESHAPE", ins, [y], opt)
        return y

    def pad(self, x, paddings, *, constant_value=None) -> int:
        """PAD with an int32 [rank, 2] paddings tensor (pads with zero point /
        0.0).  ``constant_value`` (float, or int8 already quantized) -> PADV2."""
        xi = self._tensors[x]
        p = np.asarray(paddings, np.int32).reshape(len(xi.shape), 2)
        shape = tuple(int(s + p[i, 0] + p[i, 1]) for i, s in enumerate(xi.shape))
        y = self._new_like(shape, x)
        p_idx = self.add_const(p)
        if constant_value is None:
            self.add_op("PAD", [x, p_idx], [y], schema_fb.PadOptionsT())
        else:
            if xi.is_quantized:
                sc, zp = xi.per_tensor
                cv = np.asarray([constant_value], xi.dtype)
                c_idx = self.add_const(cv, scale=sc, zero_point=zp)
            else:
                c_idx = self.add_const(np.asarray([constant_value], xi.dtype))
            self.add_op("PADV2", [x, p_idx, c_idx], [y], schema_fb.PadV2OptionsT())
        return y

    def mean(self, x, axes, *, keep_dims=True, out_scale=None, out_zero_point=None) -> int:
        """MEAN over ``axes`` (int32 1-D axes tensor, ReducerOptions.keepDims)."""
        xi = self._tensors[x]
        rank = len(xi.shape)
        ax = sorted({int(a) % rank for a in np.atleast_1d(axes)})
        if keep_dims:
            shape = tuple(1 if i in ax else s for i, s in enumerate(xi.shape))
        else:
            shape = tuple(s for i, s in enumerate(xi.shape) if i not in ax)
        y = self._new_like(shape, x, scale=out_scale, zero_point=out_zero_point)
        a_idx = self.add_const(np.asarray(np.atleast_1d(axes), np.int32))
        opt = schema_fb.ReducerOptionsT()
        opt.keepDims = bool(keep_dims)
        self.add_op("MEAN", [x, a_idx], [y], opt)
        return y

    def concatenation(self, xs: Sequence[int], axis: int, *, activation="NONE", out_scale=None, out_zero_point=None) -> int:
        """CONCATENATION along ``axis``; int8 output defaults to xs[0]'s params.

        (The converter makes all inputs and the output share one scale /
        zero point; give inputs matching params for a converter-like model.)
        """
        infos = [self._tensors[i] for i in xs]
        rank = len(infos[0].shape)
        ax = axis % rank
        shape = list(infos[0].shape)
        shape[ax] = sum(t.shape[ax] for t in infos)
        y = self._new_like(tuple(shape), xs[0], scale=out_scale, zero_point=out_zero_point)
        opt = schema_fb.ConcatenationOptionsT()
        opt.axis = int(axis)
        opt.fusedActivationFunction = _ACTIVATIONS[activation]
        self.add_op("CONCATENATION", list(xs), [y], opt)
        return y

    # ---- activations / (de)quantization
    def _unary(self, op: str, x, out_scale, out_zero_point, options=None) -> int:
        """A one-input op whose output has the input's shape and dtype; an int8 output takes
        the given quantization."""
        xi = self._tensors[x]
        if xi.is_quantized:
            y = self.add_tensor(xi.shape, xi.dtype, scale=out_scale, zero_point=out_zero_point)
        else:
            y = self.add_tensor(xi.shape, xi.dtype)
        self.add_op(op, [x], [y], options)
        return y

    def softmax(self, x, *, beta: float = 1.0) -> int:
        """SOFTMAX over the last axis; int8 output scale 1/256, zp -128."""
        opt = schema_fb.SoftmaxOptionsT()
        opt.beta = float(beta)
        return self._unary("SOFTMAX", x, 1.0 / 256, -128, opt)

    def logistic(self, x) -> int:
        """LOGISTIC (sigmoid); int8 output scale 1/256, zp -128."""
        return self._unary("LOGISTIC", x, 1.0 / 256, -128)

    def hard_swish(self, x, *, out_scale: float | None = None, out_zero_point: int = 0) -> int:
        """HARD_SWISH, x * relu6(x + 3) / 6; an int8 output takes the given quantization."""
        return self._unary("HARD_SWISH", x, out_scale, out_zero_point)

    def relu_op(self, x, op: str = "RELU", *, out_scale: float | None = None, out_zero_point: int = 0) -> int:
        """RELU, RELU6 or ABS as an op of its own; an int8 output takes the given quantization."""
        return self._unary(op, x, out_scale, out_zero_point)

    def leaky_relu(self, x, alpha: float, *, out_scale: float | None = None, out_zero_point: int = 0) -> int:
        """LEAKY_RELU, x > 0 ? x : alpha * x; an int8 output takes the given quantization."""
        opt = schema_fb.LeakyReluOptionsT()
        opt.alpha = float(alpha)
        return self._unary("LEAKY_RELU", x, out_scale, out_zero_point, opt)

    def quantize(self, x, scale: float, zero_point: int, dtype="int8") -> int:
        """QUANTIZE: float32 -> int8, or int8 -> int8 requantize."""
        xi = self._tensors[x]
        y = self.add_tensor(xi.shape, dtype, scale=scale, zero_point=zero_point)
        version = 1 if xi.dtype == np.float32 else 2
        self.add_op("QUANTIZE", [x], [y], version=version)
        return y

    def dequantize(self, x) -> int:
        """DEQUANTIZE: int8 -> float32."""
        xi = self._tensors[x]
        y = self.add_tensor(xi.shape, np.float32)
        self.add_op("DEQUANTIZE", [x], [y])
        return y
