"""The conv family (conv2d, depthwise_conv2d, fully_connected), compiled for the host, against
TensorFlow Lite Micro over randomized shapes, strides, dilations, padding and activations."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.op_models import DTYPES, check_model, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder


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
