"""The elementwise family (every kind the registry lists), compiled for the host, against
TensorFlow Lite Micro, with broadcasting; int8 also as a DSP target computes it (HOST_DSP:
edgert.codegen.dsp's requantization, with the helpers' portable C)."""
from __future__ import annotations

import numpy as np
import pytest

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
