"""PyTorch-style float ONNX blocks (written with onnx.helper the way torch.onnx exports them:
Constant nodes, Clip for ReLU6, depthwise Conv as group = channels, Dropout in eval mode)
build for the host and agree with onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgert import api

# float32: edgert and onnxruntime sum convolutions in different orders (and ORT may fuse
# BatchNormalization into the weights): differences of a few ULP of the partial sums.
RTOL, ATOL = 1e-4, 1e-5


def _init(rng, name, shape, scale=0.3):
    return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)


def _const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, np.float32)))


def _model(nodes, inits, in_shape, out_shape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _check(tmp_path, nodes, inits, in_shape, seed=0):
    path = tmp_path / "m.onnx"
    # the output's shape as a torch export declares it: from onnxruntime, on a first save without it
    onnx.save(_model(nodes, inits, in_shape, None), path)
    out_shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.zeros(in_shape, np.float32)})[0].shape
    model = _model(nodes, inits, in_shape, list(out_shape))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    built = api.build(path, "host", tmp_path / "build")
    hm = api.host_model(built)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = rng.normal(0, 1, in_shape).astype(np.float32)
        (want,) = sess.run(None, {"x": x})
        (got,) = hm.run([x])
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=RTOL, atol=ATOL)


def _relu6(x, y):
    return [_const(f"{y}_lo", 0.0), _const(f"{y}_hi", 6.0), helper.make_node("Clip", [x, f"{y}_lo", f"{y}_hi"], [y])]


def test_a_mobilenet_block(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             *_relu6("c0", "r0"),
             helper.make_node("Conv", ["r0", "dw", "db"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
             *_relu6("c1", "r1"),
             helper.make_node("Conv", ["r1", "pw"], ["c2"], kernel_shape=[1, 1]),
             helper.make_node("HardSwish", ["c2"], ["h"]),
             helper.make_node("GlobalAveragePool", ["h"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["f"]),
             helper.make_node("Dropout", ["f"], ["d"]),
             helper.make_node("Gemm", ["d", "fc", "fb"], ["y"], transB=1)]
    inits = [_init(rng, "w0", (8, 3, 3, 3)), _init(rng, "b0", (8,)), _init(rng, "dw", (8, 1, 3, 3)),
             _init(rng, "db", (8,)), _init(rng, "pw", (16, 8, 1, 1)), _init(rng, "fc", (10, 16)), _init(rng, "fb", (10,))]
    _check(tmp_path, nodes, inits, [1, 3, 16, 16])


def test_a_ds_cnn_with_a_depth_multiplier(tmp_path):
    rng = np.random.default_rng(2)
    bn = [_init(rng, n, (8,), 0.2) for n in ("g", "be", "mu")] + [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "var")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], kernel_shape=[5, 3], strides=[2, 1], pads=[2, 1, 2, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "dw"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
             helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("AveragePool", ["r1"], ["p"], kernel_shape=[5, 5]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    inits = [_init(rng, "w0", (4, 1, 5, 3)), _init(rng, "dw", (8, 1, 3, 3)), *bn, _init(rng, "fc", (12, 8))]
    _check(tmp_path, nodes, inits, [1, 1, 10, 5])


def test_a_block_of_branches_and_pointwise_ops(tmp_path):
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"], kernel_shape=[1, 1]),
             helper.make_node("LeakyRelu", ["a"], ["la"], alpha=0.1),
             helper.make_node("Sigmoid", ["b"], ["sb"]),
             helper.make_node("Concat", ["la", "sb"], ["cat"], axis=1),
             helper.make_node("Abs", ["cat"], ["ab"]),
             helper.make_node("AveragePool", ["ab"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("MaxPool", ["ap"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    _check(tmp_path, nodes, [_init(rng, "wa", (4, 2, 3, 3)), _init(rng, "wb", (3, 2, 1, 1))], [1, 2, 8, 8])


def test_padding_then_a_valid_convolution(tmp_path):
    # torch's ZeroPad2d / ConstantPad2d before a convolution without padding of its own
    rng = np.random.default_rng(5)
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 0], np.int64), "pads")
    nodes = [_const("v", 0.5), helper.make_node("Pad", ["x", "pads", "v"], ["p"]),
             helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3])]
    _check(tmp_path, nodes, [pads, _init(rng, "w", (3, 2, 3, 3))], [1, 2, 5, 6])


def test_a_1d_audio_model(tmp_path):
    # Conv1d / BatchNorm1d / MaxPool1d / AvgPool1d over [N, C, L] signals, held as [N, 1, L, C]
    rng = np.random.default_rng(6)
    bn = [_init(rng, n, (6,), 0.2) for n in ("g", "be", "mu")] + [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 6).astype(np.float32), "var")]
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[5], strides=[2], pads=[2, 1]),
             helper.make_node("BatchNormalization", ["c0", "g", "be", "mu", "var"], ["n0"]),
             helper.make_node("Relu", ["n0"], ["r0"]),
             helper.make_node("MaxPool", ["r0"], ["p0"], kernel_shape=[2], strides=[2]),
             helper.make_node("Conv", ["p0", "dw"], ["c1"], kernel_shape=[3], pads=[1, 1], group=6, dilations=[1]),
             helper.make_node("AveragePool", ["c1"], ["p1"], kernel_shape=[3], strides=[1], pads=[1, 1]),
             helper.make_node("Flatten", ["p1"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    inits = [_init(rng, "w0", (6, 2, 5)), _init(rng, "b0", (6,)), *bn, _init(rng, "dw", (6, 1, 3)),
             _init(rng, "fc", (4, 6 * 8))]
    _check(tmp_path, nodes, inits, [1, 2, 32])


def test_a_1d_signal_out(tmp_path):
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3], pads=[1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    _check(tmp_path, nodes, [_init(rng, "w", (3, 2, 3))], [1, 2, 9])


def test_prelu_per_channel_and_shared(tmp_path):
    # torch.nn.PReLU(num_parameters=C) and PReLU() export slopes [C, 1, 1] and [1]
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "per_channel"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("PRelu", ["f", "shared"], ["y"])]
    inits = [_init(rng, "w", (4, 2, 3, 3)), _init(rng, "per_channel", (4, 1, 1)), _init(rng, "shared", (1,))]
    _check(tmp_path, nodes, inits, [1, 2, 5, 5])


def test_a_residual_block(tmp_path):
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c1", "x"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    inits = [_init(rng, "w0", (4, 4, 3, 3)), _init(rng, "b0", (4,)), _init(rng, "w1", (4, 4, 3, 3)),
             _init(rng, "b1", (4,))]
    _check(tmp_path, nodes, inits, [1, 4, 6, 6])


@pytest.mark.parametrize("lo, hi", [(-1.0, 1.0), (0.0, 3.0)])
def test_a_clip_that_is_no_relu_is_refused(tmp_path, lo, hi):
    from edgert.errors import UnsupportedError

    g = helper.make_graph([_const("lo", lo), _const("hi", hi), helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(UnsupportedError, match=rf"Clip to \[{lo:g}, {hi:g}\]"):
        api.compile_model(path)
