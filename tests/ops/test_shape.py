"""The shape family (pad, concatenation, reshape), compiled for the host, against TensorFlow
Lite Micro."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.op_models import DTYPES, check_model, new_input, rand_x
from tests.support.tflite_builder import ModelBuilder


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
