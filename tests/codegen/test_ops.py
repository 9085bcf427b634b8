"""Every supported op, compiled by edgert for the host and run as C, bit-exact against
TensorFlow Lite Micro over randomized shapes and parameters (int8), and within a stated
tolerance for float32.

Single-op models are built in the test with tests.support.tflite_builder.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.validate.tflm_ref import TflmReference
from tests.support.tflite_builder import ModelBuilder

# float32 kernels: edgert and TFLM sum in different orders and TFLM may use another exp();
# float32 rounding differences accumulate to a few ULP of the largest partial sum.
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-5


def check_model(tmp_path, b: ModelBuilder, inputs: list[np.ndarray], trials: int = 3, seed: int = 0):
    model = b.build()
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    built = api.build(path, "host", tmp_path / "build")
    hm = api.host_model(built)
    ref = TflmReference(model)
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        xs = inputs if trial == 0 else [
            rng.integers(-128, 128, x.shape, dtype=np.int8) if x.dtype == np.int8
            else rng.normal(0, 2, x.shape).astype(np.float32) for x in inputs]
        want = ref.run(xs)
        got = hm.run(xs)
        for w, g in zip(want, got):
            assert g.shape == tuple(w.shape) or g.size == w.size
            g = g.reshape(w.shape)
            if w.dtype == np.float32:
                np.testing.assert_allclose(g, w, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
            else:
                diff = np.abs(g.astype(np.int32) - w.astype(np.int32))
                assert diff.max() == 0, f"trial {trial}: {np.count_nonzero(diff)} of {w.size} values differ, max {diff.max()}"


def rand_x(rng, shape, dtype):
    if dtype == "int8":
        return rng.integers(-128, 128, shape, dtype=np.int8)
    return rng.normal(0, 1, shape).astype(np.float32)


def new_input(b, rng, shape, dtype):
    if dtype == "int8":
        return b.add_input(shape, "int8", scale=float(rng.uniform(0.01, 0.1)), zero_point=int(rng.integers(-30, 30)))
    return b.add_input(shape, "float32")


DTYPES = ["int8", "float32"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(4))
def test_conv2d(tmp_path, dtype, case):
    rng = np.random.default_rng(100 + case)
    h, w, cin, cout = int(rng.integers(5, 12)), int(rng.integers(5, 12)), int(rng.integers(1, 9)), int(rng.integers(1, 12))
    k = int(rng.choice([1, 3, 5]))
    stride = int(rng.choice([1, 2]))
    dilation = int(rng.choice([1, 2])) if stride == 1 else 1
    padding = ["SAME", "VALID"][case % 2]
    act = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"][case]
    h, w = max(h, (k - 1) * dilation + 1), max(w, (k - 1) * dilation + 1)
    b = ModelBuilder()
    x = new_input(b, rng, (1, h, w, cin), dtype)
    y = b.conv2d(x, rng.normal(0, 0.3, (cout, k, k, cin)), rng.normal(0, 0.2, cout), strides=stride,
                 padding=padding, dilation=dilation, activation=act)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, (1, h, w, cin), dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(4))
def test_depthwise_conv2d(tmp_path, dtype, case):
    rng = np.random.default_rng(200 + case)
    h, w, c = int(rng.integers(5, 12)), int(rng.integers(5, 12)), int(rng.integers(1, 9))
    m = int(rng.choice([1, 2, 3]))
    k = int(rng.choice([3, 5]))
    stride = int(rng.choice([1, 2]))
    dilation = 2 if case == 3 and stride == 1 else 1
    h, w = max(h, (k - 1) * dilation + 1), max(w, (k - 1) * dilation + 1)
    b = ModelBuilder()
    x = new_input(b, rng, (1, h, w, c), dtype)
    y = b.depthwise_conv2d(x, rng.normal(0, 0.3, (1, k, k, c * m)), rng.normal(0, 0.2, c * m), depth_multiplier=m,
                           strides=stride, padding=["SAME", "VALID"][case % 2], dilation=dilation, activation=["NONE", "RELU", "RELU6", "NONE"][case])
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, (1, h, w, c), dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected(tmp_path, dtype, per_channel):
    if dtype == "float32" and per_channel:
        pytest.skip("per-channel quantization applies to int8 weights only")
    rng = np.random.default_rng(300 + per_channel)
    rows, depth, units = int(rng.integers(1, 4)), int(rng.integers(3, 70)), int(rng.integers(1, 40))
    b = ModelBuilder()
    x = new_input(b, rng, (rows, depth), dtype)
    y = b.fully_connected(x, rng.normal(0, 0.3, (units, depth)), rng.normal(0, 0.2, units), activation="RELU",
                          per_channel=per_channel)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, (rows, depth), dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_pool(tmp_path, dtype, kind, padding):
    rng = np.random.default_rng(400)
    shape = (1, 9, 7, 5)
    b = ModelBuilder()
    x = new_input(b, rng, shape, dtype)
    fn = b.avg_pool2d if kind == "avg" else b.max_pool2d
    y = fn(x, (3, 2), strides=(2, 2), padding=padding, activation="RELU6" if kind == "max" else "NONE")
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, shape, dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["add", "mul"])
@pytest.mark.parametrize("shapes", [((1, 4, 4, 3), (1, 4, 4, 3)), ((1, 4, 4, 3), (1, 1, 1, 3)), ((2, 1, 5), (3, 1))])
def test_binary(tmp_path, dtype, kind, shapes):
    rng = np.random.default_rng(500)
    b = ModelBuilder()
    a = new_input(b, rng, shapes[0], dtype)
    c = new_input(b, rng, shapes[1], dtype)
    y = (b.add if kind == "add" else b.mul)(a, c, activation="RELU" if kind == "add" else "NONE")
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, s, dtype) for s in shapes])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["softmax", "logistic"])
def test_activations(tmp_path, dtype, kind):
    rng = np.random.default_rng(600)
    shape = (3, 10)
    b = ModelBuilder()
    x = new_input(b, rng, shape, dtype)
    y = b.softmax(x, beta=1.0) if kind == "softmax" else b.logistic(x)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, shape, dtype)], trials=5)


# (input scale, input zero point, output scale, output zero point): a converter-like
# quantization, and ones that reach each branch of TFLM's fixed point (reluish exponent above,
# at and below zero; an output exponent of -16 or less, where its int16 rounding wraps)
HARD_SWISH_QUANT = [(0.05, -10, 0.03, -100), (0.5, 3, 0.6, -120), (0.002, 0, 0.004, 7), (0.001, 0, 1.0, 0)]


@pytest.mark.parametrize("quant", HARD_SWISH_QUANT)
def test_hard_swish_int8_every_input(tmp_path, quant):
    """Compiled for the host, all 256 int8 inputs (in one tensor) against TFLM."""
    in_scale, in_zp, out_scale, out_zp = quant
    b = ModelBuilder()
    x = b.add_input((1, 256), "int8", scale=in_scale, zero_point=in_zp)
    b.set_outputs([b.hard_swish(x, out_scale=out_scale, out_zero_point=out_zp)])
    check_model(tmp_path, b, [np.arange(-128, 128, dtype=np.int8).reshape(1, 256)])


def test_hard_swish_float(tmp_path):
    rng = np.random.default_rng(650)
    b = ModelBuilder()
    x = new_input(b, rng, (2, 4, 5, 3), "float32")
    b.set_outputs([b.hard_swish(x)])
    check_model(tmp_path, b, [rand_x(rng, (2, 4, 5, 3), "float32") * 4], trials=3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes,keep", [((1, 2), True), ((1,), False), ((3,), True)])
def test_mean(tmp_path, dtype, axes, keep):
    rng = np.random.default_rng(700)
    shape = (1, 5, 4, 6)
    b = ModelBuilder()
    x = new_input(b, rng, shape, dtype)
    kw = {"out_scale": 0.03, "out_zero_point": 5} if dtype == "int8" else {}
    y = b.mean(x, list(axes), keep_dims=keep, **kw)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, shape, dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_data_movement(tmp_path, dtype):
    """PAD, CONCATENATION and RESHAPE in one graph."""
    rng = np.random.default_rng(800)
    b = ModelBuilder()
    a = new_input(b, rng, (1, 3, 4, 2), dtype)
    p = b.pad(a, [[0, 0], [1, 2], [0, 1], [0, 0]])
    c = b.concatenation([p, p], axis=3)
    r = b.reshape(c, (1, 6 * 5 * 4))
    b.set_outputs([r])
    check_model(tmp_path, b, [rand_x(rng, (1, 3, 4, 2), dtype)])


def test_quantize_dequantize(tmp_path):
    rng = np.random.default_rng(900)
    b = ModelBuilder()
    x = b.add_input((2, 7), "float32")
    q = b.quantize(x, 0.02, 3)
    q2 = b.quantize(q, 0.05, -7)
    d = b.dequantize(q2)
    b.set_outputs([q, q2, d])
    check_model(tmp_path, b, [rng.normal(0, 1, (2, 7)).astype(np.float32)], trials=5)
