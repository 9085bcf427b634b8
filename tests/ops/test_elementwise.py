"""The elementwise family (every kind the registry lists), compiled for the host, against
TensorFlow Lite Micro, with broadcasting; int8 also as a DSP target computes it (HOST_DSP:
edgert.codegen.dsp's requantization, with the helpers' portable C)."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.ops import elementwise
from tests.support.op_models import HOST_DSP, check_model, kinds_of, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder


@pytest.mark.parametrize("dtype, target", [("float32", "host"), ("int8", "host"), ("int8", HOST_DSP)],
                         ids=["float32", "int8", "int8-dsp"])
@pytest.mark.parametrize("kind", kinds_of(elementwise))
@pytest.mark.parametrize("shapes", [((1, 4, 4, 3), (1, 4, 4, 3)), ((1, 4, 4, 3), (1, 1, 1, 3)), ((2, 1, 5), (3, 1))])
def test_binary(tmp_path, dtype, target, kind, shapes):
    rng = np.random.default_rng(500)
    b = ModelBuilder()
    a = new_input(b, rng, shapes[0], dtype)
    c = new_input(b, rng, shapes[1], dtype)
    y = getattr(b, kind)(a, c, activation="RELU" if kind == "add" else "NONE")
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, s, dtype) for s in shapes], target=target)


@pytest.mark.parametrize("kind", ["maximum", "minimum"])
def test_int8_maximum_and_minimum_compare_the_stored_values(tmp_path, kind):
    """As TFLite Micro does: its int8 maximum / minimum read no quantization, so inputs with
    other scales than the output are compared as stored (the converter never makes them)."""
    rng = np.random.default_rng(7)
    b = ModelBuilder()
    a = b.add_input((1, 3, 3, 4), "int8", scale=0.02, zero_point=-5)
    c = b.add_input((1, 3, 3, 4), "int8", scale=0.5, zero_point=10)
    y = getattr(b, kind)(a, c)
    b.set_outputs([y])
    xs = [rng.integers(-128, 128, (1, 3, 3, 4), dtype=np.int8) for _ in range(2)]
    built = check_model(tmp_path, b, xs)
    want = (np.maximum if kind == "maximum" else np.minimum)(*xs)
    np.testing.assert_array_equal(api.run(built, xs)[0].reshape(want.shape), want)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_prelu_with_a_constant_slope_per_channel(tmp_path, dtype):
    """As Keras' PReLU exports it: the slope a constant of one value per channel, broadcast over
    the image, its own quantization in int8 (negative slopes included)."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = new_input(b, rng, (1, 5, 5, 6), dtype)
    slope = rng.uniform(-0.5, 0.8, (1, 1, 6))
    if dtype == "int8":
        alpha = b.add_const(np.round(slope / 0.01).astype(np.int8), scale=0.01, zero_point=0)
    else:
        alpha = b.add_const(slope.astype(np.float32))
    y = b.prelu(x, alpha)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, (1, 5, 5, 6), dtype)], trials=5)
