"""The conv family (conv2d, depthwise_conv2d, fully_connected), compiled for the host, against
TensorFlow Lite Micro over randomized shapes, strides, dilations, padding and activations; int8
also in the DSP form (HOST_DSP: the Cortex-M schedules with the helpers' portable C)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.op_models import DTYPES, HOST_DSP, check_model, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder


FORMS = [("float32", "host"), ("int8", "host"), ("int8", HOST_DSP)]  # (dtype, target)


@pytest.mark.parametrize("dtype, target", FORMS, ids=["float32", "int8", "int8-dsp"])
@pytest.mark.parametrize("case", range(4))
def test_conv2d(tmp_path, dtype, target, case):
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
    check_model(tmp_path, b, [rand_x(rng, (1, h, w, cin), dtype)], target=target)


@pytest.mark.parametrize("dtype, target", FORMS, ids=["float32", "int8", "int8-dsp"])
@pytest.mark.parametrize("case", range(4))
def test_depthwise_conv2d(tmp_path, dtype, target, case):
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
    check_model(tmp_path, b, [rand_x(rng, (1, h, w, c), dtype)], target=target)


@pytest.mark.parametrize("dtype, target", FORMS, ids=["float32", "int8", "int8-dsp"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected(tmp_path, dtype, target, per_channel):
    if dtype == "float32" and per_channel:
        pytest.skip("per-channel quantization applies to int8 weights only")
    rng = np.random.default_rng(300 + per_channel)
    rows, depth, units = int(rng.integers(1, 4)), int(rng.integers(3, 70)), int(rng.integers(1, 40))
    b = ModelBuilder()
    x = new_input(b, rng, (rows, depth), dtype)
    y = b.fully_connected(x, rng.normal(0, 0.3, (units, depth)), rng.normal(0, 0.2, units), activation="RELU",
                          per_channel=per_channel)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, (rows, depth), dtype)], target=target)


# The DSP form's own cases: runs of four with and without a tail (kw x cin = 3, 4, 9, 10, 24),
# blocks of 1, 2 and 4 output channels, strides, vertical dilation, explicit SAME padding;
# depthwise over words of four channels with guarded border taps.
DSP_CONV = [  # (h, w, cin, cout, k, stride, dilation, padding)
    (7, 9, 1, 8, (10, 4), 2, 1, "SAME"), (8, 8, 3, 5, 3, 1, 1, "SAME"), (9, 7, 8, 6, 3, 2, 1, "VALID"),
    (6, 6, 24, 4, 1, 1, 1, "VALID"), (9, 9, 2, 7, (5, 5), 1, 2, "SAME"), (5, 6, 4, 12, 1, 2, 1, "SAME"),
]


@pytest.mark.parametrize("h, w, cin, cout, k, stride, dilation, padding", DSP_CONV)
def test_conv2d_dsp_form(tmp_path, h, w, cin, cout, k, stride, dilation, padding):
    rng = np.random.default_rng(h * 31 + cin)
    kh, kw = k if isinstance(k, tuple) else (k, k)
    b = ModelBuilder()
    x = new_input(b, rng, (1, h, w, cin), "int8")
    y = b.conv2d(x, rng.normal(0, 0.3, (cout, kh, kw, cin)), rng.normal(0, 0.2, cout), strides=stride,
                 padding=padding, dilation=(dilation, 1), activation="RELU")
    b.set_outputs([y])
    built = check_model(tmp_path, b, [rand_x(rng, (1, h, w, cin), "int8")], target=HOST_DSP)
    assert "edgert_smlad_s8x4(" in (built.dir / "kernels.c").read_text()


@pytest.mark.parametrize("c, k, stride, dilation, padding", [
    (8, 3, 1, 1, "SAME"), (12, 3, 2, 1, "SAME"), (4, 5, 1, 2, "VALID"), (16, 3, 2, 1, "VALID")])
def test_depthwise_conv2d_dsp_form(tmp_path, c, k, stride, dilation, padding):
    rng = np.random.default_rng(c * 7 + k)
    h = w = 11
    b = ModelBuilder()
    x = new_input(b, rng, (1, h, w, c), "int8")
    y = b.depthwise_conv2d(x, rng.normal(0, 0.3, (1, k, k, c)), rng.normal(0, 0.2, c), depth_multiplier=1,
                           strides=stride, padding=padding, dilation=dilation, activation="RELU6")
    b.set_outputs([y])
    built = check_model(tmp_path, b, [rand_x(rng, (1, h, w, c), "int8")], target=HOST_DSP)
    assert "edgert_smla_s8_lane(" in (built.dir / "kernels.c").read_text()


@pytest.mark.parametrize("layer", ["conv1x1", "conv3x3", "fc"])
def test_int4_weights_in_the_dsp_form(tmp_path, layer):
    """int4 weights whose filter rows are whole words of eight (edgert.codegen.dsp.int4_words)."""
    rng = np.random.default_rng(41)
    b = ModelBuilder()
    q = lambda shape: rng.integers(-8, 8, shape).astype(np.int8)  # int4 values, stored as int8
    if layer == "fc":
        x = new_input(b, rng, (2, 40), "int8")
        y = b.fully_connected(x, q((6, 40)), None, weight_scale=0.01)
        shape = (2, 40)
    else:
        cin, k = (16, 1) if layer == "conv1x1" else (8, 3)
        x = new_input(b, rng, (1, 8, 8, cin), "int8")
        y = b.conv2d(x, q((5, k, k, cin)), None, weight_scale=np.full(5, 0.01, np.float32), padding="SAME")
        shape = (1, 8, 8, cin)
    b.set_outputs([y])
    built = check_model(tmp_path, b, [rand_x(rng, shape, "int8")], target=HOST_DSP, weights="dense")
    assert "edgert_smlad_s4x8(" in (built.dir / "kernels.c").read_text()
