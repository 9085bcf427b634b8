"""The binarize pass and the ONNX front end on small hand-made ONNX graphs: which patterns
become binary layers (and stay exact), which stay float, and the errors a user meets."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgert import api
from edgert.errors import ModelFormatError, UnsupportedError
from edgert.ops import reference


def _model(tmp_path, nodes, inits, k=40, m=24, in_shape=None, name="m.onnx"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape or [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), n) for n, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _binary_dense(tmp_path, w, alpha=None, beta=None, sign_weights=False):
    nodes = [helper.make_node("Sign", ["x"], ["s"])]
    inits = {"W": w}
    if sign_weights:
        nodes.append(helper.make_node("Sign", ["W"], ["Wb"]))
    nodes.append(helper.make_node("MatMul", ["s", "Wb" if sign_weights else "W"], ["z"]))
    last = "z"
    for op, name, v in (("Mul", "alpha", alpha), ("Add", "beta", beta)):
        if v is not None:
            inits[name] = v
            nodes.append(helper.make_node(op, [last, name], [f"{name}_out"]))
            last = f"{name}_out"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    return _model(tmp_path, nodes, inits, k=w.shape[0], m=w.shape[1])


def _kinds(path):
    return [op.kind for op in api.compile_model(path).graph.ops]


def _float_dot(x, w, alpha, beta):
    s = np.sign(x).astype(np.float32)
    z = (s @ w).astype(np.float32)  # +-1 sums: exact integers in float32
    return (z * alpha + beta).astype(np.float32)


@pytest.mark.parametrize("sign_weights", [False, True])
def test_sign_matmul_scale_bias_becomes_a_binary_layer(tmp_path, sign_weights):
    rng = np.random.default_rng(0)
    k, m = 40, 24  # 40 input channels: one and a quarter words
    latent = rng.normal(size=(k, m)).astype(np.float32)
    w = latent if sign_weights else np.sign(latent)
    alpha, beta = rng.uniform(0.01, 0.2, m).astype(np.float32), rng.normal(size=m).astype(np.float32)
    path = _binary_dense(tmp_path, w, alpha, beta, sign_weights)
    assert "bconv2d" in _kinds(path) and "fully_connected" not in _kinds(path)
    b = api.build(path, "host", tmp_path / "b")
    for seed in range(5):
        x = np.random.default_rng(seed).normal(size=(1, k)).astype(np.float32)
        want = _float_dot(x, np.sign(latent), alpha, beta)
        np.testing.assert_array_equal(api.run(b, [x])[0], want)  # what the float graph computes, bit for bit


def test_a_zero_weight_is_not_binary(tmp_path):
    w = np.sign(np.random.default_rng(1).normal(size=(32, 8))).astype(np.float32)
    w[3, 2] = 0.0
    assert "bconv2d" not in _kinds(_binary_dense(tmp_path, w))


def test_a_sign_used_twice_is_kept(tmp_path):
    w = np.sign(np.random.default_rng(2).normal(size=(32, 8))).astype(np.float32)
    nodes = [helper.make_node("Sign", ["x"], ["s"]), helper.make_node("MatMul", ["s", "W"], ["z"]),
             helper.make_node("MatMul", ["s", "W"], ["z2"]), helper.make_node("Add", ["z", "z2"], ["y"])]
    kinds = _kinds(_model(tmp_path, nodes, {"W": w}, k=32))
    assert kinds.count("fully_connected") == 2 and "sign" in kinds


def test_a_remaining_sign_follows_onnx(tmp_path):
    nodes = [helper.make_node("Sign", ["x"], ["y"])]
    path = _model(tmp_path, nodes, {}, k=4)
    b = api.build(path, "host", tmp_path / "b")
    x = np.array([[-2.0, 0.0, 3.0, -0.0]], dtype=np.float32)
    np.testing.assert_array_equal(api.run(b, [x])[0], [[-1.0, 0.0, 1.0, 0.0]])
    g = api.compile_model(path).graph
    np.testing.assert_array_equal(reference.run(g, [x])[g.outputs[0]], [[-1.0, 0.0, 1.0, 0.0]])


def test_unsupported_onnx_op_is_named(tmp_path):
    nodes = [helper.make_node("Tanh", ["x"], ["t"], name="act1"), helper.make_node("Sign", ["t"], ["y"])]
    with pytest.raises(UnsupportedError, match=r"unsupported ONNX op: Tanh \(node #0 act1\)"):
        api.compile_model(_model(tmp_path, nodes, {}, k=4))


def test_dynamic_batch_is_refused(tmp_path):
    nodes = [helper.make_node("Sign", ["x"], ["y"])]
    with pytest.raises(ModelFormatError, match="dynamic shape"):
        api.compile_model(_model(tmp_path, nodes, {}, in_shape=["N", 4]))


def _ort_run(path, x):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("pads, strides", [([1, 1, 1, 1], [1, 1]), ([0, 0, 1, 1], [2, 2]), ([0, 0, 0, 0], [1, 1])])
def test_binary_convolution_from_onnx_equals_onnxruntime(tmp_path, pads, strides):
    """Sign -> Conv(Sign(W)) -> Mul -> Add on an NCHW image: one binary convolution whose
    output is onnxruntime's bit for bit (zero padding included: ONNX pads the signs with 0)."""
    rng = np.random.default_rng(4)
    inits = {"W": rng.normal(size=(12, 8, 3, 3)), "a": rng.uniform(0.05, 0.3, (12, 1, 1)), "b": rng.normal(size=(12, 1, 1))}
    nodes = [helper.make_node("Sign", ["x"], ["s"]), helper.make_node("Sign", ["W"], ["Wb"]),
             helper.make_node("Conv", ["s", "Wb"], ["z"], pads=pads, strides=strides),
             helper.make_node("Mul", ["z", "a"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    path = _model(tmp_path, nodes, inits, in_shape=[1, 8, 7, 7])
    b = api.build(path, "host", tmp_path / "b")
    assert "bconv2d" in b.meta["op_kinds"] and "conv2d" not in b.meta["op_kinds"]
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(1, 8, 7, 7)).astype(np.float32)
        np.testing.assert_array_equal(api.run(b, [x])[0].reshape(-1), _ort_run(path, x).reshape(-1))


def test_a_conv_bnn_from_onnx_agrees_with_onnxruntime(tmp_path):
    """Float conv, batch norm, ReLU, max pool, Flatten (ONNX's channel-first order) and MatMul
    around a binary convolution. Tolerance: the float layers sum in another order than
    onnxruntime's kernels (a few ULP of values up to ~100)."""
    rng = np.random.default_rng(5)
    inits = {"W1": rng.normal(size=(8, 3, 3, 3)), "B1": rng.normal(size=8), "W2": rng.normal(size=(16, 8, 3, 3)),
             "g": rng.uniform(0.5, 2, 16), "be": rng.normal(size=16), "mu": rng.normal(size=16),
             "var": rng.uniform(0.5, 2, 16), "W3": rng.normal(size=(16 * 4 * 4, 10))}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Sign", ["h"], ["s"]), helper.make_node("Sign", ["W2"], ["W2b"]),
             helper.make_node("Conv", ["s", "W2b"], ["z"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["z", "g", "be", "mu", "var"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "W3"], ["y"])]
    path = _model(tmp_path, nodes, inits, in_shape=[1, 3, 8, 8])
    b = api.build(path, "host", tmp_path / "b")
    assert "bconv2d" in b.meta["op_kinds"]
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(1, 3, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(api.run(b, [x])[0], _ort_run(path, x), rtol=1e-5, atol=1e-4)


def test_grouped_onnx_convolution_is_named(tmp_path):
    # two groups of two channels: neither one group nor depthwise (which edgert reads)
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], group=2)]
    path = _model(tmp_path, nodes, {"W": np.ones((4, 2, 3, 3))}, in_shape=[1, 4, 5, 5])
    with pytest.raises(UnsupportedError, match=r"Conv #0: attribute group = 2 over 4 input channels"):
        api.compile_model(path)
