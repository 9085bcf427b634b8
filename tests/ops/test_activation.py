"""The activation family (softmax, logistic, hard swish, leaky relu) against TensorFlow Lite Micro's
kernels: its numpy references with no compiler in the loop (the arithmetic contract every
target meets), then its kernels compiled for the host."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.errors import UnsupportedError
from edgert.ops import reference
from edgert.validate.tflm_ref import TflmReference
from tests.support.op_models import DTYPES, check_model, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder

EVERY_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _hard_swish_model(tmp_path, in_scale, in_zp, out_scale, out_zp):
    b = ModelBuilder()
    x = b.add_input((1, 256), "int8", scale=in_scale, zero_point=in_zp)
    b.set_outputs([b.hard_swish(x, out_scale=out_scale, out_zero_point=out_zp)])
    data = b.build()
    path = tmp_path / "hard_swish.tflite"
    path.write_bytes(data)
    return path, data


def test_hard_swish_int8_reference_is_tflms(tmp_path):
    """200 random quantizations, every int8 input each: scales over six decades, so that TFLM's
    reluish exponent is positive, zero and negative and its output exponent reaches -16."""
    rng = np.random.default_rng(2024)
    compared = 0
    for _ in range(200):
        in_scale = float(10 ** rng.uniform(-4, 0.5))
        out_scale = float(in_scale * 10 ** rng.uniform(-1.5, 2))
        in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
        path, data = _hard_swish_model(tmp_path, in_scale, in_zp, out_scale, out_zp)
        try:
            g = api.compile_model(path).graph
        except UnsupportedError:  # in_scale >= 128 * out_scale: refused, as TFLM's Prepare does
            assert in_scale / out_scale >= 127.9
            continue
        want = TflmReference(data).run([EVERY_INT8])[0]
        got = [v for k, v in reference.run(g, [EVERY_INT8]).items() if k in g.outputs][0]
        np.testing.assert_array_equal(got.reshape(want.shape), want,
                                      err_msg=f"quantization {(in_scale, in_zp, out_scale, out_zp)}")
        compared += 1
    assert compared >= 150


def test_hard_swish_scale_ratio_over_tflms_limit_is_named(tmp_path):
    path, _ = _hard_swish_model(tmp_path, 1.0, 0, 1 / 256, 0)
    with pytest.raises(UnsupportedError, match=r"HARD_SWISH #0 .*256 times the output scale"):
        api.compile_model(path)


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


def _every_input_is_tflms(tmp_path, quant, make, what: str = ""):
    """A one-op int8 model (``make(builder, x, out_scale, out_zero_point)`` adds the op) under
    ``quant`` = (input scale, input zero point, output scale, output zero point): edgert's
    reference equals TFLite Micro at all 256 inputs. Returns the compiled graph."""
    in_scale, in_zp, out_scale, out_zp = quant
    b = ModelBuilder()
    x = b.add_input((1, 256), "int8", scale=in_scale, zero_point=in_zp)
    b.set_outputs([make(b, x, out_scale, out_zp)])
    data = b.build()
    path = tmp_path / "op.tflite"
    path.write_bytes(data)
    g = api.compile_model(path).graph
    want = TflmReference(data).run([EVERY_INT8])[0]
    got = reference.run(g, [EVERY_INT8])[g.outputs[0]]
    np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=f"quantization {quant} {what}")
    return g


def test_leaky_relu_int8_reference_is_tflms(tmp_path):
    """100 random quantizations and alphas (below and above 1, negative), every int8 input."""
    rng = np.random.default_rng(77)
    for _ in range(100):
        in_scale = float(10 ** rng.uniform(-3, 0))
        out_scale = float(in_scale * 10 ** rng.uniform(-1, 1))
        in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
        alpha = float(rng.choice([rng.uniform(0.01, 0.5), rng.uniform(1.0, 3.0), -rng.uniform(0.01, 1.0)]))
        _every_input_is_tflms(tmp_path, (in_scale, in_zp, out_scale, out_zp),
                              lambda b, x, s, z: b.leaky_relu(x, alpha, out_scale=s, out_zero_point=z), f"alpha {alpha}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_compiled(tmp_path, dtype):
    rng = np.random.default_rng(78)
    b = ModelBuilder()
    x = new_input(b, rng, (2, 4, 5, 3), dtype)
    b.set_outputs([b.leaky_relu(x, 0.2, out_scale=0.04, out_zero_point=-60)])
    check_model(tmp_path, b, [rand_x(rng, (2, 4, 5, 3), dtype) * (4 if dtype == "float32" else 1)], trials=3)


@pytest.mark.parametrize("op, kind", [("RELU", "relu"), ("RELU6", "relu6"), ("ABS", "abs")])
def test_relu_ops_int8_reference_is_tflms(tmp_path, op, kind):
    """RELU, RELU6 (as ops, not fused) and ABS: 100 random quantizations (a quarter with the
    input's scale on the output), every int8 input."""
    rng = np.random.default_rng(79)
    for trial in range(100):
        in_scale = float(10 ** rng.uniform(-3, 0))
        out_scale = in_scale if trial % 4 == 0 else float(in_scale * 10 ** rng.uniform(-1, 1))
        in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
        g = _every_input_is_tflms(tmp_path, (in_scale, in_zp, out_scale, out_zp),
                                  lambda b, x, s, z: b.relu_op(x, op, out_scale=s, out_zero_point=z))
        assert [o.kind for o in g.ops] == [kind]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["RELU", "RELU6", "ABS"])
def test_relu_ops_compiled(tmp_path, dtype, op):
    rng = np.random.default_rng(80)
    b = ModelBuilder()
    x = new_input(b, rng, (2, 4, 5, 3), dtype)
    b.set_outputs([b.relu_op(x, op, out_scale=0.03, out_zero_point=-128)])
    check_model(tmp_path, b, [rand_x(rng, (2, 4, 5, 3), dtype) * (8 if dtype == "float32" else 1)], trials=3)
