"""The pool family (average and max pooling, MEAN), compiled for the host, against TensorFlow
Lite Micro."""
from __future__ import annotations

import numpy as np
import pytest

from edgert.ops import pool
from tests.support.op_models import DTYPES, check_model, kinds_of, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", [k for k in kinds_of(pool) if k != "mean"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_pool(tmp_path, dtype, kind, padding):
    rng = np.random.default_rng(400)
    shape = (1, 9, 7, 5)
    b = ModelBuilder()
    x = new_input(b, rng, shape, dtype)
    y = getattr(b, kind)(x, (3, 2), strides=(2, 2), padding=padding,
                         activation="RELU6" if kind == "max_pool2d" else "NONE")
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, shape, dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes,keep,shape", [
    ((1, 2), True, (1, 5, 4, 6)), ((1,), False, (1, 5, 4, 6)), ((3,), True, (1, 5, 4, 6)),
    ((1, 2), False, (1, 5, 4, 6)),
    # MobileNetV3's global average: 576 channels' sums (2,304 bytes) must never be live at once
    ((1, 2), True, (1, 3, 3, 576)), ((1, 2), False, (1, 3, 3, 576)),
])
def test_mean(tmp_path, dtype, axes, keep, shape):
    rng = np.random.default_rng(700)
    b = ModelBuilder()
    x = new_input(b, rng, shape, dtype)
    kw = {"out_scale": 0.03, "out_zero_point": 5} if dtype == "int8" else {}
    y = b.mean(x, list(axes), keep_dims=keep, **kw)
    b.set_outputs([y])
    check_model(tmp_path, b, [rand_x(rng, shape, dtype)])
