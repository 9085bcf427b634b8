"""edgert's numpy reference kernels are bit-exact with TensorFlow Lite Micro on whole models:
the semantics the generated C is held to."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.ops import reference
from edgert.validate.tflm_ref import TflmReference
from tests.conftest import MLPERF_INT8


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_reference_matches_tflm(name, mlperf_dir):
    path = mlperf_dir / f"{name}.tflite"
    g = api.compile_model(path).graph
    tflm = TflmReference(path.read_bytes())
    shape = g.tensor(g.inputs[0]).shape
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)
        np.testing.assert_array_equal(reference.run(g, [x])[g.outputs[0]], tflm.run([x])[0])
