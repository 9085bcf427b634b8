"""int4 and codebook variants of two MLPerf Tiny models, made by `edgert quantize` from their
int8 weights, built for the emulated Cortex-M7: the device equals edgert's numpy reference of
the same integer semantics and TensorFlow Lite Micro, and the weights take less flash."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device.board import connect
from edgert.ops import reference
from edgert.validate.dataset import random_inputs
from edgert.validate.tflm_ref import run_tflm

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.cross]
MODELS = ("kws_dscnn_int8", "ad_toycar_int8")
FORMATS = {"int4": ["--weights", "int4"], "codebook4": ["--codebook", "4"]}


@pytest.fixture(scope="module", params=[(m, f) for m in MODELS for f in FORMATS], ids=lambda p: f"{p[0]}-{p[1]}")
def variant(request, mlperf_dir, tmp_path_factory):
    name, fmt = request.param
    tmp = tmp_path_factory.mktemp(f"{name}-{fmt}")
    out = tmp / f"{name}_{fmt}.tflite"
    assert main(["quantize", str(mlperf_dir / f"{name}.tflite"), "-o", str(out), *FORMATS[fmt]]) == 0
    return name, fmt, out, api.build(out, "cortex-m7", tmp / "m7")


def test_device_equals_the_numpy_reference_and_tflm(variant):
    name, fmt, path, b = variant
    g = api.compile_model(path).graph
    rng = np.random.default_rng(7)
    model_bytes = path.read_bytes()
    with connect(b, None) as board:
        for _ in range(3):
            xs = random_inputs(b.meta["io"]["inputs"], rng)
            got = board.session.run(xs, b.meta["io"]["outputs"]).outputs[0]
            want = reference.run(g, xs)[g.outputs[0]]
            np.testing.assert_array_equal(got.reshape(want.shape), want)
            np.testing.assert_array_equal(run_tflm(model_bytes, xs)[0].reshape(want.shape), want)


def test_weights_are_packed(variant, mlperf_dir):
    name, fmt, path, b = variant
    chosen = {r["chosen"] for r in b.report["weights"]}
    assert all(c.startswith("int4" if fmt == "int4" else "codebook") for c in chosen), chosen
    int8 = api.compile_model(mlperf_dir / f"{name}.tflite").graph
    int8_bytes = sum(t.nbytes for t in int8.constants() if t.dtype.bits == 8)
    packed = sum(r["dense_bytes"] for r in b.report["weights"])
    # 4 bits per weight (+ 16-entry tables for codebooks): close to half of the int8 weight bytes
    assert packed < 0.55 * int8_bytes
