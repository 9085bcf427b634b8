"""The ONNX front end on int8 QDQ models from onnxruntime's quantize_static: small float
models built here, quantized with QuantFormat.QDQ (int8 / uint8 activations, int8 / int4
weights, per tensor and per channel), compiled, and compared with onnxruntime's own run of
the quantized model and with the host build; then the errors a user meets."""
from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgert import api
from edgert.errors import UnsupportedError
from edgert.ops import reference

ort = pytest.importorskip("onnxruntime")
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)  # quantize_static's advice to pre-process the model

# Agreement with onnxruntime, in steps of the output scale. onnxruntime runs the QDQ graph as
# it is written (ORT_DISABLE_ALL: float ops on dequantized values, QuantizeLinear rounding
# half to even): the model's definition. edgert runs TFLite Micro's integer kernels, which
# requantize with a 32-bit fixed-point multiplier rounding twice (to 2**shift first, then to
# the integer: with a small accumulator, x.49 can become x.5 and then x + 1), round average
# pool ties away from zero, and approximate softmax's exp in fixed point. So one layer is up
# to 1 step off on a few percent of its outputs, and a layer fed an input 1 step off can add
# its own step: on the models below (2 to 6 layers, 16 random inputs each) we measured at
# most 2 steps, on at most 18 % of the outputs; after a softmax (scale 1/255, where a logit
# 1 step off moves exp by a few percent) at most 3 steps, on at most 26 % of the outputs.
# The default session is no reference: it fuses the pairs into QLinearConv / QLinearMatMul,
# whose u8s8 kernels on an x86 CPU without VNNI saturate 16-bit sums (what quantize_static's
# reduce_range is for) and differ from onnxruntime's own unfused run by up to 57 steps here.
MAX_STEPS, MAX_SHARE = 2, 0.2
MAX_STEPS_SOFTMAX, MAX_SHARE_SOFTMAX = 3, 0.35
N_INPUTS = 16


def _node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name=outs[0], **attrs)


def _save_float(path, nodes, inits, in_shape, opset):
    """A float32 model: input x of ``in_shape``, output y, initializers ``inits``."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(_initializer(v), n) for n, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)


def _initializer(v):
    """Integer arrays (pads, shapes) as int64, anything else as float32."""
    v = np.asarray(v)
    return v.astype(np.int64) if v.dtype.kind in "iu" else v.astype(np.float32)


def _inputs(shape, n, seed=100):
    return [np.random.default_rng(seed + i).normal(size=shape).astype(np.float32) for i in range(n)]


class _Reader(CalibrationDataReader):
    def __init__(self, shape):
        self.data = iter({"x": x} for x in _inputs(shape, 8, seed=0))

    def get_next(self):
        return next(self.data, None)


# --------------------------------------------------------------------------- float models


def _conv_relu(rng):
    """Conv 3x3 (pads 1) + Relu, then a depthwise Conv (stride 2, pads only bottom / right)
    + Clip [0, 6], MaxPool 2x2."""
    inits = {"W1": rng.normal(size=(8, 3, 3, 3)) * 0.3, "B1": rng.normal(size=8) * 0.1,
             "Wd": rng.normal(size=(8, 1, 3, 3)) * 0.5, "Bd": rng.normal(size=8) * 0.1, "lo": 0.0, "hi": 6.0}
    nodes = [_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]), _node("Relu", ["c1"], ["r1"]),
             _node("Conv", ["r1", "Wd", "Bd"], ["c2"], group=8, strides=[2, 2], pads=[0, 0, 1, 1]),
             _node("Clip", ["c2", "lo", "hi"], ["r2"]),
             _node("MaxPool", ["r2"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    return nodes, inits, [1, 3, 12, 12]


def _strided(rng):
    """Conv stride 2 with asymmetric pads (top 1, left 0, bottom 2, right 1), depthwise with a
    depth multiplier of 2, AveragePool."""
    inits = {"W1": rng.normal(size=(6, 3, 3, 3)) * 0.3, "B1": rng.normal(size=6) * 0.1,
             "Wd": rng.normal(size=(12, 1, 3, 3)) * 0.5}
    nodes = [_node("Conv", ["x", "W1", "B1"], ["c1"], strides=[2, 2], pads=[1, 0, 2, 1]),
             _node("Relu", ["c1"], ["r1"]),
             _node("Conv", ["r1", "Wd"], ["c2"], group=6, pads=[1, 1, 1, 1]),
             _node("AveragePool", ["c2"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    return nodes, inits, [1, 3, 12, 12]


def _branches(rng):
    """Two branches added (Add of two activations), GlobalAveragePool, Flatten, Gemm."""
    inits = {"W1": rng.normal(size=(8, 1, 3, 3)) * 0.5, "Wa": rng.normal(size=(8, 8, 1, 1)) * 0.3,
             "Wb": rng.normal(size=(8, 8, 3, 3)) * 0.2, "Bb": rng.normal(size=8) * 0.1,
             "Wg": rng.normal(size=(5, 8)) * 0.5, "Bg": rng.normal(size=5) * 0.1}
    nodes = [_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]), _node("Relu", ["c1"], ["r1"]),
             _node("Conv", ["r1", "Wa"], ["a"]), _node("Conv", ["r1", "Wb", "Bb"], ["b"], pads=[1, 1, 1, 1]),
             _node("Add", ["a", "b"], ["s"]), _node("Relu", ["s"], ["rs"]),
             _node("GlobalAveragePool", ["rs"], ["gap"]), _node("Flatten", ["gap"], ["f"]),
             _node("Gemm", ["f", "Wg", "Bg"], ["y"], transB=1)]
    return nodes, inits, [1, 1, 8, 8]


def _dense(rng):
    """Conv, MaxPool, Flatten (NCHW order), MatMul + Relu, MatMul, Softmax."""
    inits = {"W1": rng.normal(size=(4, 1, 3, 3)) * 0.5, "B1": rng.normal(size=4) * 0.1,
             "M1": rng.normal(size=(36, 16)) * 0.3, "M2": rng.normal(size=(16, 10)) * 0.3}
    nodes = [_node("Conv", ["x", "W1", "B1"], ["c1"]), _node("MaxPool", ["c1"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             _node("Flatten", ["p"], ["f"]), _node("MatMul", ["f", "M1"], ["m1"]), _node("Relu", ["m1"], ["r1"]),
             _node("MatMul", ["r1", "M2"], ["m2"]), _node("Softmax", ["m2"], ["y"], axis=-1)]
    return nodes, inits, [1, 1, 8, 8]


def _mixed(rng):
    """x * Sigmoid(x) after a Conv, concatenated with a Relu branch, a per-channel constant
    added, Pad, MaxPool, Reshape, MatMul + a constant Add."""
    inits = {"W1": rng.normal(size=(4, 3, 3, 3)) * 0.4, "W2": rng.normal(size=(4, 3, 1, 1)) * 0.5,
             "K": rng.normal(size=(1, 8, 1, 1)), "pads": np.array([0, 0, 1, 1, 0, 0, 0, 0]),
             "shape": np.array([1, -1]), "M": rng.normal(size=(8 * 4 * 4, 6)) * 0.2, "Bm": rng.normal(size=6)}
    nodes = [_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]), _node("Sigmoid", ["c1"], ["sg"]),
             _node("Mul", ["c1", "sg"], ["sw"]), _node("Conv", ["x", "W2"], ["c2"]), _node("Relu", ["c2"], ["r2"]),
             _node("Concat", ["sw", "r2"], ["cat"], axis=1), _node("Add", ["cat", "K"], ["ak"]),
             _node("Pad", ["ak", "pads"], ["pd"]), _node("MaxPool", ["pd"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             _node("Reshape", ["p", "shape"], ["f"]), _node("MatMul", ["f", "M"], ["m"]), _node("Add", ["m", "Bm"], ["y"])]
    return nodes, inits, [1, 3, 7, 7]


def _branches_sub(rng):
    """The two branches subtracted (Sub of two activations) instead of added."""
    nodes, inits, shape = _branches(rng)
    return [_node("Sub", list(n.input), list(n.output)) if n.op_type == "Add" else n for n in nodes], inits, shape


MODELS = {"conv_relu": _conv_relu, "strided": _strided, "branches": _branches, "branches_sub": _branches_sub,
          "dense": _dense, "mixed": _mixed}


def _quantized(tmp_path, model, per_channel=True, activation=QuantType.QUInt8, weight=QuantType.QInt8, **kw):
    """(path of the QDQ model, input shape): ``model`` from MODELS quantized by quantize_static
    (opset 21 for int4 weights, 17 otherwise)."""
    nodes, inits, shape = MODELS[model](np.random.default_rng(1))
    opset = 21 if weight in (QuantType.QInt4, QuantType.QUInt4) else 17
    fp, qp = tmp_path / f"{model}_f32.onnx", tmp_path / f"{model}_qdq.onnx"
    _save_float(fp, nodes, inits, shape, opset)
    quantize_static(str(fp), str(qp), _Reader(shape), quant_format=kw.pop("quant_format", QuantFormat.QDQ),
                    per_channel=per_channel, activation_type=activation, weight_type=weight, **kw)
    return qp, shape


def _ort_session(path):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _steps(g, path, xs):
    """|edgert reference - onnxruntime| in steps of the output scale, over inputs ``xs``."""
    out = g.tensor(g.ops[-1].inputs[0])  # the int8 tensor the final dequantize reads
    sess = _ort_session(path)
    diffs = []
    for x in xs:
        ours = reference.run(g, [x])[g.outputs[0]]
        theirs = sess.run(None, {"x": x})[0]
        assert ours.shape == theirs.shape
        diffs.append(np.abs(ours.astype(np.float64) - theirs) / np.float64(out.quant.scale[0]))
    return np.concatenate([d.reshape(-1) for d in diffs])


CASES = [  # (model, per_channel, activation type)
    ("conv_relu", True, QuantType.QUInt8), ("conv_relu", False, QuantType.QInt8),
    ("strided", True, QuantType.QInt8), ("strided", False, QuantType.QUInt8),
    ("branches", True, QuantType.QUInt8), ("branches", False, QuantType.QInt8),
    ("branches_sub", False, QuantType.QInt8),
    ("dense", True, QuantType.QInt8), ("dense", False, QuantType.QUInt8),
    ("mixed", True, QuantType.QUInt8), ("mixed", False, QuantType.QInt8),
]


@pytest.mark.parametrize("model, per_channel, activation", CASES)
def test_reference_agrees_with_onnxruntime(tmp_path, model, per_channel, activation):
    path, shape = _quantized(tmp_path, model, per_channel, activation)
    g = api.compile_model(path).graph
    assert {op.kind for op in g.ops} >= {"quantize", "dequantize"}
    assert all(t.dtype.name in ("I8", "I32") for t in g.tensors.values() if t.name not in g.inputs + g.outputs)
    steps = _steps(g, path, _inputs(shape, N_INPUTS))
    limit, share = (MAX_STEPS_SOFTMAX, MAX_SHARE_SOFTMAX) if model == "dense" else (MAX_STEPS, MAX_SHARE)
    assert steps.max() <= limit + 1e-3, f"{steps.max():.3f} steps"
    assert (steps > 0.5).mean() <= share, f"{(steps > 0.5).mean():.1%} of the outputs differ"


def _fuse_activations(path):
    """Conv -> Q -> DQ -> Relu / Clip -> Q becomes Conv -> Relu / Clip -> Q: the form of a
    quantizer that fuses activations (onnxruntime removes them, or keeps them on their own)."""
    model = onnx.load(path)
    producer = {o: n for n in model.graph.node for o in n.output}
    for n in [n for n in model.graph.node if n.op_type in ("Relu", "Clip")]:
        dq = producer[n.input[0]]
        q = producer[dq.input[0]]
        n.input[0] = q.input[0]
        model.graph.node.remove(dq)
        model.graph.node.remove(q)
    onnx.save(model, path)


@pytest.mark.parametrize("fused", [False, True])
def test_kept_and_fused_activations(tmp_path, fused):
    """QDQKeepRemovableActivations: DQ -> Relu -> Q alone is a requantization (saturation
    clamps); a Relu / Clip [0, 6] right after a Conv becomes its fused act."""
    path, shape = _quantized(tmp_path, "conv_relu", extra_options={"QDQKeepRemovableActivations": True})
    if fused:
        _fuse_activations(path)
    g = api.compile_model(path).graph
    convs = [op.attrs["act"] for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d")]
    assert convs == (["relu", "relu6"] if fused else ["none", "none"])
    assert [op.kind for op in g.ops].count("quantize") == 1  # the input's: the Relu / Clip kept its input's quantization
    steps = _steps(g, path, _inputs(shape, N_INPUTS))
    assert steps.max() <= MAX_STEPS + 1e-3 and (steps > 0.5).mean() <= MAX_SHARE


def _weights(g):
    return [g.tensor(op.inputs[1]) for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected")]


def test_ir_layout_and_quantization(tmp_path):
    """Depthwise weights [1, kh, kw, C*M] per channel along axis 3; MatMul weights [M, K];
    uint8 activations moved to int8 (zero point - 128); a removed Relu needs no clamp."""
    path, _ = _quantized(tmp_path, "strided", per_channel=True, activation=QuantType.QUInt8)
    g = api.load_graph(path)
    conv, dw = [op for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d")]
    assert dw.kind == "depthwise_conv2d" and dw.attrs["depth_multiplier"] == 2
    assert conv.attrs["pad"] == (1, 0) and conv.attrs["stride"] == (2, 2)
    w = g.tensor(dw.inputs[1])
    assert w.shape == (1, 3, 3, 12) and w.quant.axis == 3 and len(w.quant.scale) == 12
    assert conv.attrs["act"] == "none"
    assert g.tensor(conv.outputs[0]).quant.zp == -128  # onnxruntime folded the Relu into a uint8 zero point 0
    path, _ = _quantized(tmp_path, "dense", per_channel=True, activation=QuantType.QInt8)
    g = api.load_graph(path)
    fc = [g.tensor(op.inputs[1]) for op in g.ops if op.kind == "fully_connected"]
    assert [w.shape for w in fc] == [(16, 36), (10, 16)] and all(w.quant.axis == 0 for w in fc)


@pytest.mark.parametrize("model, per_channel, activation, weight", [
    ("conv_relu", True, QuantType.QUInt8, QuantType.QInt8),
    ("branches", False, QuantType.QInt8, QuantType.QInt8),
    ("mixed", False, QuantType.QInt8, QuantType.QInt8),
    ("dense", True, QuantType.QUInt8, QuantType.QInt4),
])
def test_host_build_equals_the_reference(tmp_path, model, per_channel, activation, weight):
    path, shape = _quantized(tmp_path, model, per_channel, activation, weight)
    g = api.compile_model(path).graph
    if weight == QuantType.QInt4:
        ws = _weights(g)
        assert ws and all(w.data.dtype == np.int8 and w.data.min() >= -8 and w.data.max() <= 7 for w in ws)
        assert max(int(np.abs(w.data).max()) for w in ws) >= 7  # the int4 range is used, not int8's
    b = api.build(path, "host", tmp_path / "b")
    out = g.tensor(g.ops[-1].inputs[0])
    for x in _inputs(shape, 4):
        ours, ref = api.run(b, [x])[0], reference.run(g, [x])[g.outputs[0]]
        np.testing.assert_array_equal(_codes(ours, out), _codes(ref, out))
        np.testing.assert_allclose(ours, ref, rtol=2e-7, atol=0)


def _codes(v, t):
    """The int8 values behind dequantized outputs. The generated C's dequantize holds its
    scale as a 7-digit float literal, which can be 1 ulp off the model's float32 scale, so the
    floats may differ in their last bit where the int8 values are equal."""
    return (np.rint(v.astype(np.float64) / np.float64(np.float32(t.quant.scale[0]))) + t.quant.zp).astype(np.int64)


def test_int4_weights_agree_with_onnxruntime(tmp_path):
    path, shape = _quantized(tmp_path, "conv_relu", True, QuantType.QInt8, QuantType.QInt4)
    assert any(i.data_type == TensorProto.INT4 for i in onnx.load(path).graph.initializer)
    g = api.compile_model(path).graph
    assert all(-8 <= w.data.min() and w.data.max() <= 7 for w in _weights(g))
    steps = _steps(g, path, _inputs(shape, N_INPUTS))
    assert steps.max() <= MAX_STEPS + 1e-3 and (steps > 0.5).mean() <= MAX_SHARE


# --------------------------------------------------------------------------- errors


def _raises(path, *fragments):
    with pytest.raises(UnsupportedError) as e:
        api.compile_model(path)
    for f in fragments:
        assert f in str(e.value), str(e.value)
    assert e.value.hint
    return e.value


def test_unsupported_ops_are_named_all_at_once(tmp_path):
    rng = np.random.default_rng(2)
    inits = {"W": rng.normal(size=(4, 1, 3, 3)), "roi": np.zeros(0), "scales": [1.0, 1.0, 2.0, 2.0]}
    nodes = [_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             _node("Resize", ["c", "roi", "scales"], ["up"], mode="nearest"), _node("Tanh", ["up"], ["y"])]
    fp, qp = tmp_path / "f.onnx", tmp_path / "q.onnx"
    _save_float(fp, nodes, inits, [1, 1, 6, 6], 17)
    quantize_static(str(fp), str(qp), _Reader([1, 1, 6, 6]), quant_format=QuantFormat.QDQ)
    _raises(qp, "Resize (node #", " up)", "Tanh (node #", " y)")


def test_qoperator_format_is_refused(tmp_path):
    path, _ = _quantized(tmp_path, "conv_relu", quant_format=QuantFormat.QOperator)
    e = _raises(path, "QLinearConv #")
    assert "QuantFormat.QDQ" in e.hint


def test_uint8_weights_are_refused(tmp_path):
    path, _ = _quantized(tmp_path, "conv_relu", per_channel=True, weight=QuantType.QUInt8)
    e = _raises(path, "Conv #", "(c1)", "uint8", "zero point 128")
    assert "QuantType.QInt8" in e.hint


def test_uint4_weights_are_refused(tmp_path):
    path, _ = _quantized(tmp_path, "conv_relu", weight=QuantType.QUInt4)
    _raises(path, "Conv #", "(c1)", "uint4")


def test_a_float_op_left_over_is_named(tmp_path):
    path, _ = _quantized(tmp_path, "dense", nodes_to_exclude=["y"])  # the Softmax stays float
    _raises(path, "Softmax #", "(y)", "float graph output, not quantized again")


def _edit(path, edit):
    model = onnx.load(path)
    edit({i.name: i for i in model.graph.initializer}, model.graph)
    onnx.save(model, path)
    return path


def test_per_channel_activations_are_refused(tmp_path):
    """A hand-edited Q / DQ pair on the input with one scale per channel (axis 1)."""
    path, _ = _quantized(tmp_path, "conv_relu")

    def per_channel(inits, graph):
        q, dq = [n for n in graph.node if n.input[0] in ("x", "x_QuantizeLinear_Output")]
        s, z = numpy_helper.to_array(inits[q.input[1]]), numpy_helper.to_array(inits[q.input[2]])
        for name, v in ((q.input[1], np.full(3, s, np.float32)), (q.input[2], np.full(3, z))):
            inits[name].CopyFrom(numpy_helper.from_array(v, name))
        for n in (q, dq):
            n.attribute.append(helper.make_attribute("axis", 1))

    _raises(_edit(path, per_channel), "QuantizeLinear #", "per channel (3 scales)")


def test_a_bias_scale_other_than_input_times_weight_is_refused(tmp_path):
    path, _ = _quantized(tmp_path, "conv_relu", per_channel=False)

    def double(inits, graph):
        name = next(n for n in inits if n.startswith("B1") and n.endswith("scale"))
        inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]) * 2, name))

    _raises(_edit(path, double), "Conv #", "(c1)", "bias", "not input scale x weight scale")
