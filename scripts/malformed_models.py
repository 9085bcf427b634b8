#!/usr/bin/env python3
"""A corpus of malformed models: small valid TFLite and ONNX models, each with one field
broken, named after that field. Every one must be refused by `edgert inspect` and
`edgert build` with exit 2 and a message naming the field (tests/cli/test_malformed_corpus.py).

    .venv/bin/python scripts/malformed_models.py OUT_DIR     writes OUT_DIR/<case>.tflite|.onnx
                                                              and OUT_DIR/expected.json

expected.json maps each file name to the words the refusal must contain.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAMAGED = "re-export it"  # the hint of every damaged-field refusal (edgert.errors.DAMAGED_MODEL)


# --------------------------------------------------------------------------- TFLite


def _base(kind: str):
    """A small valid int8 model around one op, as the schema's object API (ModelT)."""
    from tests.support.tflite_builder import ModelBuilder

    rng = np.random.default_rng(0)
    b = ModelBuilder()
    if kind == "conv":
        x = b.add_input((1, 6, 6, 2), "int8", scale=0.05, zero_point=3)
        y = b.conv2d(x, rng.normal(0, 0.3, (4, 3, 3, 2)), rng.normal(0, 0.2, 4), padding="SAME")
    elif kind == "depthwise":
        x = b.add_input((1, 6, 6, 2), "int8", scale=0.05, zero_point=3)
        y = b.depthwise_conv2d(x, rng.normal(0, 0.3, (1, 3, 3, 2)), rng.normal(0, 0.2, 2), padding="SAME")
    elif kind == "fc":
        x = b.add_input((1, 8), "int8", scale=0.05, zero_point=3)
        y = b.fully_connected(x, rng.normal(0, 0.3, (4, 8)), rng.normal(0, 0.2, 4))
    elif kind == "pool":
        x = b.add_input((1, 6, 6, 2), "int8", scale=0.05, zero_point=3)
        y = b.max_pool2d(x, (2, 2))
    elif kind == "avgpool":
        x = b.add_input((1, 6, 6, 2), "int8", scale=0.05, zero_point=3)
        y = b.avg_pool2d(x, (2, 2))
    elif kind == "add":
        x = b.add_input((1, 4, 4, 2), "int8", scale=0.05, zero_point=3)
        z = b.add_input((1, 4, 4, 2), "int8", scale=0.04, zero_point=-2)
        y = b.add(x, z)
    elif kind == "leaky_relu":
        x = b.add_input((1, 8), "int8", scale=0.05, zero_point=3)
        y = b.leaky_relu(x, 0.2, out_scale=0.05, out_zero_point=3)
    elif kind == "softmax":
        x = b.add_input((1, 8), "int8", scale=0.05, zero_point=3)
        y = b.softmax(x)
    elif kind == "reshape":
        x = b.add_input((1, 2, 4), "int8", scale=0.05, zero_point=3)
        y = b.reshape(x, (1, 8))
    else:
        raise ValueError(kind)
    b.set_outputs([y])
    return b.to_object()


def _pack(model) -> bytes:
    import flatbuffers

    fbb = flatbuffers.Builder(1024)
    fbb.Finish(model.Pack(fbb), file_identifier=b"TFL3")
    return bytes(fbb.Output())


def _op(m, i=0):
    return m.subgraphs[0].operators[i]


def _opts(m):
    return _op(m).builtinOptions


def _tensor(m, which):
    """"input" (the graph's first input), "output", or the op's input at position ``which``."""
    sg = m.subgraphs[0]
    index = sg.inputs[0] if which == "input" else sg.outputs[0] if which == "output" else _op(m).inputs[which]
    return sg.tensors[index]


def _set(obj_of: Callable, field: str, value) -> Callable:
    return lambda m: setattr(obj_of(m), field, value)


def _quant(which, field, value) -> Callable:
    return lambda m: setattr(_tensor(m, which).quantization, field, value)


def _shape(which, shape) -> Callable:
    return lambda m: setattr(_tensor(m, which), "shape", shape)


def _weights_past_the_end(m):
    from tests.support.tflite_builder import schema_fb

    buf = schema_fb.BufferT()
    buf.offset, buf.size = 10 ** 6, 72
    m.buffers[_tensor(m, 1).buffer] = buf


def _weights_short(m):
    buf = m.buffers[_tensor(m, 1).buffer]
    buf.data = buf.data[:-5]


def _bias_of_three(m):
    """The bias one value short, its data and quantization consistent with that."""
    t = _tensor(m, 2)
    t.shape = [3]
    t.quantization.scale, t.quantization.zeroPoint = t.quantization.scale[:3], t.quantization.zeroPoint[:3]
    buf = m.buffers[_tensor(m, 2).buffer]
    buf.data = buf.data[:12]


def _options_of(table: str):
    def change(m):
        from tests.support.tflite_builder import schema_fb

        opts = getattr(schema_fb, f"{table}T")()
        _op(m).builtinOptions = opts
        _op(m).builtinOptionsType = getattr(schema_fb.BuiltinOptions, table)
    return change


def _no_options(m):
    _op(m).builtinOptions = None
    _op(m).builtinOptionsType = 0


def _second_writer(m):
    _op(m).outputs = [m.subgraphs[0].inputs[0]]


def _dtype(value):
    return lambda m: setattr(_tensor(m, "input"), "type", value)


def _custom_quantization(m):
    from tests.support.tflite_builder import schema_fb

    q = _tensor(m, "input").quantization
    q.detailsType = schema_fb.QuantizationDetails.CustomQuantization
    q.details = schema_fb.CustomQuantizationT()


# (base model, change) -> what the refusal must say. Names: <op>-<field>-<what is wrong>.
TFLITE: dict[str, tuple[str, Callable, str]] = {
    "conv-stride_h-zero": ("conv", _set(_opts, "strideH", 0), "stride_h is 0"),
    "conv-stride_h-negative": ("conv", _set(_opts, "strideH", -1), "stride_h is -1"),
    "conv-stride_w-zero": ("conv", _set(_opts, "strideW", 0), "stride_w is 0"),
    "conv-stride_w-negative": ("conv", _set(_opts, "strideW", -2), "stride_w is -2"),
    "conv-dilation_h-zero": ("conv", _set(_opts, "dilationHFactor", 0), "dilation_h is 0"),
    "conv-dilation_h-negative": ("conv", _set(_opts, "dilationHFactor", -3), "dilation_h is -3"),
    "conv-dilation_w-zero": ("conv", _set(_opts, "dilationWFactor", 0), "dilation_w is 0"),
    "conv-dilation_w-negative": ("conv", _set(_opts, "dilationWFactor", -1), "dilation_w is -1"),
    "conv-padding-unknown": ("conv", _set(_opts, "padding", 7), "padding is 7, neither SAME"),
    "conv-padding-negative": ("conv", _set(_opts, "padding", -1), "padding is -1, neither SAME"),
    "conv-fused_activation-unknown": ("conv", _set(_opts, "fusedActivationFunction", 99), "fused activation 99"),
    "conv-options-missing": ("conv", _no_options, "has no Conv2DOptions table"),
    "conv-options-of-another-op": ("conv", _options_of("Pool2DOptions"), "carries Pool2DOptions, not Conv2DOptions"),
    "conv-opcode_index-out-of-range": ("conv", _set(_op, "opcodeIndex", 9), "names op code 9, the file has 1"),
    "conv-opcode_index-huge": ("conv", _set(_op, "opcodeIndex", 2 ** 32 - 1), "names op code 4294967295, the file has 1"),
    "conv-inputs-empty": ("conv", _set(_op, "inputs", []), "lacks one of its first 2 input(s)"),
    "conv-weights-absent": ("conv", lambda m: setattr(_op(m), "inputs", [_op(m).inputs[0], -1, _op(m).inputs[2]]),
                            "lacks one of its first 2 input(s)"),
    "conv-input-index-out-of-range": ("conv", lambda m: setattr(_op(m), "inputs", [99, *_op(m).inputs[1:]]),
                                      "tensor index 99 is out of range"),
    "conv-weights-index-out-of-range": ("conv", lambda m: setattr(_op(m), "inputs", [_op(m).inputs[0], 77,
                                                                                     _op(m).inputs[2]]),
                                        "tensor index 77 is out of range"),
    "conv-outputs-empty": ("conv", _set(_op, "outputs", []), "has no output"),
    "conv-output-index-out-of-range": ("conv", _set(_op, "outputs", [1234]), "tensor index 1234 is out of range"),
    "conv-weights-buffer-past-the-end": ("conv", _weights_past_the_end, "past the file's end"),
    "conv-weights-buffer-short": ("conv", _weights_short, "holds 67 bytes, its shape [4, 3, 3, 2] of int8 needs 72"),
    "conv-bias-length": ("conv", _bias_of_three, "bias t2 holds 3 values for 4 output channels"),
    "conv-output-channels": ("conv", _shape("output", [1, 6, 6, 5]),
                             "the weights [4, 3, 3, 2] give 4 output channels"),
    "conv-weights-input-channels": ("conv", _shape("input", [1, 6, 6, 3]), "3 input channels, filters of depth 2"),
    "conv-output-height": ("conv", _shape("output", [1, 5, 6, 4]),
                           "has height 5, but SAME padding over an input height of 6 with window 3 and stride 1 gives 6"),
    "conv-output-width": ("conv", lambda m: (_set(_opts, "padding", 1)(m), _shape("output", [1, 4, 6, 4])(m)),
                          "has width 6, but VALID padding over an input width of 6 with window 3 and stride 1 gives 4"),
    "conv-output-rank": ("conv", _shape("output", [1, 36, 4]), "has shape [1, 36, 4]; CONV_2D gives rank 4"),
    "conv-window-larger-than-input": ("conv", lambda m: (_set(_opts, "padding", 1)(m), _set(_opts, "dilationHFactor", 4)(m)),
                                      "the height of its window (9) is larger than the input's (6)"),
    "conv-input-rank": ("conv", _shape("input", [6, 6, 2]), "input 0 has shape [6, 6, 2]; CONV_2D takes rank 4"),
    "conv-weights-rank": ("conv", _shape(1, [4, 9, 2]), "input 1 has shape [4, 9, 2]; CONV_2D takes rank 4"),
    "conv-input-scale-zero": ("conv", _quant("input", "scale", [0.0]), "quantization scale 0.0 is not a positive"),
    "conv-input-scale-negative": ("conv", _quant("input", "scale", [-0.5]), "quantization scale -0.5 is not a positive"),
    "conv-input-scale-nan": ("conv", _quant("input", "scale", [float("nan")]), "quantization scale nan is not"),
    "conv-input-scale-inf": ("conv", _quant("input", "scale", [float("inf")]), "quantization scale inf is not"),
    "conv-input-zero_point-above-int8": ("conv", _quant("input", "zeroPoint", [1000]),
                                         "zero point 1000 is outside [-128, 127] for int8"),
    "conv-input-zero_point-below-int8": ("conv", _quant("input", "zeroPoint", [-129]),
                                         "zero point -129 is outside [-128, 127] for int8"),
    "conv-input-zero_point-count": ("conv", _quant("input", "zeroPoint", [1, 2]),
                                    "1 quantization scales but 2 zero points"),
    "conv-output-scale-nan": ("conv", _quant("output", "scale", [float("nan")]), "quantization scale nan is not"),
    "conv-weights-scale-zero": ("conv", _quant(1, "scale", [0.01, 0.0, 0.01, 0.01]),
                                "quantization scale 0.0 is not a positive"),
    "conv-weights-quantized_dimension": ("conv", _quant(1, "quantizedDimension", 2),
                                         "4 per-channel scales along axis 2 of shape [4, 3, 3, 2]"),
    "conv-weights-per-channel-count": ("conv", lambda m: (_quant(1, "scale", [0.01] * 3)(m),
                                                          _quant(1, "zeroPoint", [0] * 3)(m)),
                                       "3 per-channel scales along axis 0 of shape [4, 3, 3, 2]"),
    "conv-bias-zero_point-nonzero": ("conv", _quant(2, "zeroPoint", [5, 0, 0, 0]),
                                     "zero point 5 is outside [0, 0] for int32"),
    "conv-input-dimension-zero": ("conv", _shape("input", [1, 0, 6, 2]), "has shape [1, 0, 6, 2]"),
    "conv-input-dimension-negative": ("conv", _shape("input", [1, 6, -6, 2]), "has shape [1, 6, -6, 2]"),
    "conv-input-over-2gib": ("conv", _shape("input", [1, 65536, 65536, 2]), "over 2^31 bytes"),
    "conv-input-dtype-string": ("conv", _dtype(5), "has dtype STRING"),
    "conv-input-dtype-complex": ("conv", _dtype(8), "has dtype COMPLEX64"),
    "conv-input-quantization-custom": ("conv", _custom_quantization, "custom quantization scheme"),
    "graph-second-writer": ("conv", _second_writer, "the model's graph is malformed"),
    "graph-input-index-out-of-range": ("conv", lambda m: setattr(m.subgraphs[0], "inputs", [55]),
                                       "tensor index 55 is out of range"),
    "graph-output-index-out-of-range": ("conv", lambda m: setattr(m.subgraphs[0], "outputs", [66]),
                                        "tensor index 66 is out of range"),
    "graph-no-subgraph": ("conv", lambda m: setattr(m, "subgraphs", []), "the model has no subgraph"),
    "file-buffers-missing": ("conv", lambda m: setattr(m, "buffers", None), "reads 't1' before it is written"),
    "graph-inputs-missing": ("conv", lambda m: setattr(m.subgraphs[0], "inputs", None), "the model's graph has no input"),
    "graph-outputs-empty": ("conv", lambda m: setattr(m.subgraphs[0], "outputs", []), "the model's graph has no output"),
    "depthwise-stride_h-zero": ("depthwise", _set(_opts, "strideH", 0), "stride_h is 0"),
    "depthwise-dilation_w-zero": ("depthwise", _set(_opts, "dilationWFactor", 0), "dilation_w is 0"),
    "depthwise-padding-unknown": ("depthwise", _set(_opts, "padding", 3), "padding is 3, neither SAME"),
    "depthwise-output-height": ("depthwise", _shape("output", [1, 7, 6, 2]), "has height 7, but SAME padding"),
    "pool-filter_width-zero": ("pool", _set(_opts, "filterWidth", 0), "filter_width is 0"),
    "pool-filter_height-negative": ("pool", _set(_opts, "filterHeight", -2), "filter_height is -2"),
    "pool-output-width": ("pool", _shape("output", [1, 3, 2, 2]), "has width 2, but VALID padding"),
    "pool-stride_w-zero": ("pool", _set(_opts, "strideW", 0), "stride_w is 0"),
    "pool-padding-unknown": ("pool", _set(_opts, "padding", 5), "padding is 5, neither SAME"),
    "avgpool-filter_height-zero": ("avgpool", _set(_opts, "filterHeight", 0), "filter_height is 0"),
    "fc-input-values": ("fc", _shape("input", [1, 7]), "input of 7 values does not divide into rows of 8"),
    "fc-options-of-another-op": ("fc", _options_of("Conv2DOptions"),
                                 "carries Conv2DOptions, not FullyConnectedOptions"),
    "fc-input-scale-zero": ("fc", _quant("input", "scale", [0.0]), "quantization scale 0.0 is not a positive"),
    "add-second-input-absent": ("add", lambda m: setattr(_op(m), "inputs", [_op(m).inputs[0]]),
                                "lacks one of its first 2 input(s)"),
    "add-shapes-not-broadcastable": ("add", _shape(1, [1, 4, 3, 2]), "broadcast"),
    "leaky_relu-alpha-nan": ("leaky_relu", _set(_opts, "alpha", float("nan")), "alpha is nan"),
    "leaky_relu-alpha-inf": ("leaky_relu", _set(_opts, "alpha", float("inf")), "alpha is inf"),
    "softmax-beta-nan": ("softmax", _set(_opts, "beta", float("nan")), "beta is nan"),
    "softmax-beta-negative": ("softmax", _set(_opts, "beta", -1.0), "beta is -1.0"),
    "reshape-new_shape-count": ("reshape", _shape("output", [1, 9]), "reshape"),
}

RAW_TFLITE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "file-empty": (lambda b: b"", "0 bytes is too short to be a TFLite model"),
    "file-truncated": (lambda b: b[: len(b) // 2], "corrupt or truncated"),
    "file-identifier": (lambda b: b[:4] + b"XYZ3" + b[8:], "not a TFLite model (file identifier"),
    "file-root-offset": (lambda b: struct.pack("<I", 0xFFFFFF00) + b[4:], "corrupt or truncated"),
}


# --------------------------------------------------------------------------- ONNX


def _onnx_model(nodes, inits, in_shape, out_shape, *, in_type=None, value_info=()):
    import onnx
    from onnx import TensorProto, helper

    in_type = TensorProto.FLOAT if in_type is None else in_type
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", in_type, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits,
                          value_info=list(value_info))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _onnx_conv(**attrs):
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    return _onnx_model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], [w], [1, 2, 6, 6], None)


def _onnx_pool(op, **attrs):
    from onnx import helper

    return _onnx_model([helper.make_node(op, ["x"], ["y"], **attrs)], [], [1, 2, 6, 6], None)


def _onnx_qdq(scale=0.05, zero_point=0, zp_type=None):
    """x -> QuantizeLinear -> DequantizeLinear -> Relu: the smallest QDQ graph."""
    from onnx import TensorProto, helper, numpy_helper

    zp_type = TensorProto.INT8 if zp_type is None else zp_type
    s = numpy_helper.from_array(np.array(scale, np.float32), "s")
    z = helper.make_tensor("z", zp_type, [], [zero_point])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("Relu", ["d"], ["y"])]
    return _onnx_model(nodes, [s, z], [1, 8], [1, 8])


def _onnx_initializer(change):
    """A Gemm whose weight initializer ``change`` damages."""
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((8, 4), np.float32), "w")
    change(w)
    return _onnx_model([helper.make_node("Gemm", ["x", "w"], ["y"])], [w], [1, 8], [1, 4])


def _raw_bytes(data: bytes):
    def change(t):
        t.raw_data = data
    return change


def _lying_type(t):
    t.data_type = 7  # INT64: 16 bytes of raw data are not 32 int64 values


def _onnx_matmul_on_image():
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    m = numpy_helper.from_array(np.ones((6, 5), np.float32), "m")
    return _onnx_model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("MatMul", ["c", "m"], ["y"])],
                       [w, m], [1, 2, 6, 6], [1, 2, 6, 5])


def _onnx_dynamic_input():
    from onnx import helper

    return _onnx_model([helper.make_node("Relu", ["x"], ["y"])], [], ["batch", 8], None)


ONNX: dict[str, tuple[Callable, str]] = {
    "onnx-conv-strides-zero": (lambda: _onnx_conv(strides=[0, 1]), "strides"),
    "onnx-conv-strides-negative": (lambda: _onnx_conv(strides=[1, -1]), "strides"),
    "onnx-conv-dilations-zero": (lambda: _onnx_conv(dilations=[0, 1]), "dilations"),
    "onnx-conv-pads-negative": (lambda: _onnx_conv(pads=[0, -1, 0, 0]), "pads"),
    "onnx-conv-kernel_shape-zero": (lambda: _onnx_conv(kernel_shape=[0, 3]), "kernel_shape"),
    "onnx-maxpool-strides-zero": (lambda: _onnx_pool("MaxPool", kernel_shape=[2, 2], strides=[0, 2]), "strides"),
    "onnx-maxpool-kernel_shape-zero": (lambda: _onnx_pool("MaxPool", kernel_shape=[0, 2]), "kernel_shape"),
    "onnx-quantize-scale-zero": (lambda: _onnx_qdq(scale=0.0), "quantization scale 0.0 is not a positive"),
    "onnx-quantize-scale-negative": (lambda: _onnx_qdq(scale=-1.0), "quantization scale -1.0 is not a positive"),
    "onnx-quantize-scale-nan": (lambda: _onnx_qdq(scale=float("nan")), "quantization scale nan is not a positive"),
    "onnx-quantize-scale-inf": (lambda: _onnx_qdq(scale=float("inf")), "quantization scale inf is not a positive"),
    "onnx-initializer-raw_data-short": (lambda: _onnx_initializer(_raw_bytes(b"\x00" * 10)), "w"),
    "onnx-initializer-raw_data-empty": (lambda: _onnx_initializer(_raw_bytes(b"")), "w"),
    "onnx-initializer-data_type-lying": (lambda: _onnx_initializer(_lying_type), "w"),
    "onnx-matmul-over-an-image": (_onnx_matmul_on_image, "MatMul over the 4-D image"),
    "onnx-input-dynamic-shape": (_onnx_dynamic_input, "dynamic shape"),
}

RAW_ONNX: dict[str, tuple[bytes, str]] = {
    "onnx-file-not-protobuf": (b"\xff\xfe this is not a protobuf \x00\x01", "not a readable ONNX model"),
    "onnx-file-empty": (b"", "the ONNX model has no graph outputs"),
}


# --------------------------------------------------------------------------- the corpus


def write(out: Path) -> dict[str, str]:
    """Write every case to ``out``; returns {file name: what its refusal must say}."""
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for name, (base, change, message) in TFLITE.items():
        model = _base(base)
        change(model)
        (out / f"{name}.tflite").write_bytes(_pack(model))
        expected[f"{name}.tflite"] = message
    valid = _pack(_base("conv"))
    for name, (change, message) in RAW_TFLITE.items():
        (out / f"{name}.tflite").write_bytes(change(valid))
        expected[f"{name}.tflite"] = message
    for name, (make, message) in ONNX.items():
        (out / f"{name}.onnx").write_bytes(make().SerializeToString())
        expected[f"{name}.onnx"] = message
    for name, (data, message) in RAW_ONNX.items():
        (out / f"{name}.onnx").write_bytes(data)
        expected[f"{name}.onnx"] = message
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    assert onnx  # the ONNX cases need the onnx package; imported first so a missing one fails here
    return expected


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cases = write(Path(sys.argv[1]))
    print(f"{len(cases)} malformed models in {sys.argv[1]}")
