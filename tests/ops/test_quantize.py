"""The quantize family (float32 -> int8, int8 -> int8 requantization, int8 -> float32),
compiled for the host, against TensorFlow Lite Micro."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.op_models import DTYPES, check_model, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder


def test_quantize_dequantize(tmp_path):
    rng = np.random.default_rng(900)
    b = ModelBuilder()
    x = b.add_input((2, 7), "float32")
    q = b.quantize(x, 0.02, 3)
    q2 = b.quantize(q, 0.05, -7)
    d = b.dequantize(q2)
    b.set_outputs([q, q2, d])
    check_model(tmp_path, b, [rng.normal(0, 1, (2, 7)).astype(np.float32)], trials=5)
