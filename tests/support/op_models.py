"""Single-op models compiled by edgert for the host and run as C, against TensorFlow Lite
Micro: bit-exact for int8, within a stated tolerance for float32 (tests/ops/test_<family>.py
use these; the models are built with tests.support.tflite_builder)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgert import api
from edgert.validate.tflm_ref import TflmReference
from tests.support.tflite_builder import ModelBuilder

# float32 kernels: edgert and TFLM sum in different orders and TFLM may use another exp();
# float32 rounding differences accumulate to a few ULP of the largest partial sum.
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-5


# The host target with kernels in the DSP form (tests/fixtures/targets/host-dsp.toml).
HOST_DSP = Path(__file__).resolve().parents[1] / "fixtures" / "targets" / "host-dsp.toml"


def check_model(tmp_path, b: ModelBuilder, inputs: list[np.ndarray], trials: int = 3, seed: int = 0,
                target: str | Path = "host", weights: str = "auto"):
    model = b.build()
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    built = api.build(path, target, tmp_path / "build", weights=weights)
    hm = api.host_model(built)
    ref = TflmReference(model)
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        xs = inputs if trial == 0 else [
            rng.integers(-128, 128, x.shape, dtype=np.int8) if x.dtype == np.int8
            else rng.normal(0, 2, x.shape).astype(np.float32) for x in inputs]
        want = ref.run(xs)
        got = hm.run(xs)
        for w, g in zip(want, got):
            assert g.shape == tuple(w.shape) or g.size == w.size
            g = g.reshape(w.shape)
            if w.dtype == np.float32:
                np.testing.assert_allclose(g, w, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
            else:
                diff = np.abs(g.astype(np.int32) - w.astype(np.int32))
                assert diff.max() == 0, f"trial {trial}: {np.count_nonzero(diff)} of {w.size} values differ, max {diff.max()}"
    return built


def rand_x(rng, shape, dtype):
    if dtype == "int8":
        return rng.integers(-128, 128, shape, dtype=np.int8)
    return rng.normal(0, 1, shape).astype(np.float32)


def new_input(b, rng, shape, dtype):
    if dtype == "int8":
        return b.add_input(shape, "int8", scale=float(rng.uniform(0.01, 0.1)), zero_point=int(rng.integers(-30, 30)))
    return b.add_input(shape, "float32")


DTYPES = ["int8", "float32"]


def kinds_of(family) -> list[str]:
    """The op kinds of an edgert.ops family module, as the registry lists them."""
    from edgert.ops import REGISTRY

    return [kind for kind, d in REGISTRY.items() if d.family is family]
