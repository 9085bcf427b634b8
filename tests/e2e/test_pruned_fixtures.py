"""Pruned models made by the tools users prune with (tests/fixtures/pruned, PROVENANCE.md
there): tensorflow-model-optimization int8 TFLite models, and PyTorch models pruned with
torch.nn.utils.prune then quantized by onnxruntime to QDQ ONNX. Each builds with its zeros
stored sparse or its pruned channels removed, and equals TFLite Micro (TFLite) or edgert's
numpy reference (ONNX) bit for bit, on the host and on the emulated Cortex-M7."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.device.board import connect
from edgert.errors import UnsupportedError
from edgert.ops import reference
from edgert.validate.tflm_ref import run_tflm
from tests.conftest import REPO

pytestmark = pytest.mark.slow
FIXTURES = REPO / "tests" / "fixtures" / "pruned"
TFMOT = ("dense", "sparse50", "sparse75", "sparse90", "2by4")
TORCH = ("dense", "l1u50", "l1u75", "l1u90", "ln50", "ln75")
SAMPLES = 8


def _inputs(path, b):
    d = np.load(FIXTURES / "digits_test.npz")
    spec = b.meta["io"]["inputs"][0]
    if path.suffix == ".onnx":
        return [[x.reshape(spec["shape"])] for x in d["x_nchw"][:SAMPLES]]
    q = spec["quant"]  # the .tflite models take int8 input
    xs = np.clip(np.round(d["x"][:SAMPLES] / q["scale"]) + q["zero_point"], -128, 127).astype(np.int8)
    return [[x.reshape(spec["shape"])] for x in xs]


def _reference(path):
    if path.suffix == ".tflite":
        data = path.read_bytes()
        return lambda xs: run_tflm(data, xs)[0]
    g = api.compile_model(path).graph
    return lambda xs: reference.run(g, xs)[g.outputs[0]]


@pytest.mark.parametrize("path", [FIXTURES / f"tfmot_digits_{v}_int8.tflite" for v in TFMOT]
                         + [FIXTURES / f"torch_digits_{v}_qdq.onnx" for v in TORCH], ids=lambda p: p.stem)
def test_host_build_is_exact(path, tmp_path):
    b = api.build(path, "host", tmp_path / "b")
    ref = _reference(path)
    for xs in _inputs(path, b):
        want = ref(xs)
        np.testing.assert_array_equal(api.run(b, xs)[0].reshape(want.shape), want)
    chosen = [r["chosen"] for r in b.report["weights"]]
    if "90" in path.stem:
        assert sum(c.startswith("sparse") for c in chosen) >= 3, chosen
    if "_ln" in path.stem:  # whole filters pruned (with zero biases): removed at compile time
        g = api.compile_model(path, weights="auto").graph
        assert all(op.attrs.get("pruned_channels", (0,))[0] > 0 for op in g.ops if op.kind == "conv2d")


@pytest.mark.qemu
@pytest.mark.cross
@pytest.mark.parametrize("name", ["tfmot_digits_sparse90_int8.tflite", "torch_digits_l1u90_qdq.onnx",
                                  "torch_digits_ln75_qdq.onnx"])
def test_emulated_m7_is_exact(name, tmp_path):
    path = FIXTURES / name
    b = api.build(path, "cortex-m7", tmp_path / "m7")
    ref = _reference(path)
    with connect(b, None) as board:
        for xs in _inputs(path, b)[:4]:
            want = ref(xs)
            got = board.session.run(xs, b.meta["io"]["outputs"]).outputs[0]
            np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_sparse_encoded_tflite_is_refused_with_the_fix():
    with pytest.raises(UnsupportedError, match="DENSIFY") as e:
        api.compile_model(FIXTURES / "tfmot_digits_sparse90_int8_encoded.tflite")
    assert "EXPERIMENTAL_SPARSITY" in e.value.hint
