"""Damaged model files: random byte mutations of the MLPerf KWS model (TFLite) and of an int8
QDQ ONNX model either compile or are refused with an EdgertError (a clear message and exit 2
at the CLI), never another exception. Seeded, so a failure reproduces; tests/cli/test_errors.py
names each refused field."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.errors import EdgertError
from tests.conftest import MLPERF, REPO

MUTATIONS = 1000
MODELS = [MLPERF / "kws_dscnn_int8.tflite", REPO / "tests" / "fixtures" / "pruned" / "torch_digits_dense_qdq.onnx"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on damaged scales; the refusal is what counts
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.suffix[1:])
@pytest.mark.parametrize("seed", [0, 1])
def test_mutated_models_compile_or_are_refused(tmp_path, model, seed):
    data = model.read_bytes()
    rng = np.random.default_rng(seed)
    path = tmp_path / f"m{model.suffix}"
    outcomes = {"compiled": 0, "refused": 0}
    for trial in range(MUTATIONS):
        b = bytearray(data)
        changes = [(int(rng.integers(0, len(b))), int(rng.integers(0, 256))) for _ in range(int(rng.integers(1, 4)))]
        for at, value in changes:
            b[at] = value
        path.write_bytes(bytes(b))
        try:
            api.compile_model(path)
            outcomes["compiled"] += 1
        except EdgertError as e:
            assert e.message, f"trial {trial} (bytes {changes}): an error without a message"
            outcomes["refused"] += 1
        except Exception as e:  # noqa: BLE001 - any other exception is the bug this test looks for
            pytest.fail(f"trial {trial}, bytes (offset, value) {changes}: {type(e).__name__}: {e}")
    assert outcomes["compiled"] > 0 and outcomes["refused"] > 0  # both paths were exercised
