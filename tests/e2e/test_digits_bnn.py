"""examples/train_bnn.py end to end: train on scikit-learn's digits with each estimator,
export ONNX, compile (the binary layers become XOR-popcount kernels), and compare with
onnxruntime on the host and with the host reference on the emulated Cortex-M7."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edgert import api
from edgert.cli import main
from edgert.ops import reference
from tests.support import scripts


def _example():
    return scripts.load("examples/train_bnn.py")


@pytest.fixture(scope="module", params=["reste", "biper"])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    assert _example().main(["--estimator", request.param, "-o", str(out)]) == 0
    return out


def _ort(path, xs):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x})[0] for x in xs])


def test_host_build_matches_onnxruntime_and_the_reference(trained, tmp_path):
    d = np.load(trained / "digits_test.npz")
    b = api.build(trained / "digits_bnn.onnx", "host", tmp_path / "host")
    assert sum(k == "bconv2d" for k in b.meta["op_kinds"]) == 1 and "fully_connected" in b.meta["op_kinds"]
    ours = np.concatenate([api.run(b, [x])[0] for x in d["x"]])
    g = api.compile_model(trained / "digits_bnn.onnx").graph
    ref = np.concatenate([reference.run(g, [x])[g.outputs[0]] for x in d["x"]])
    np.testing.assert_array_equal(ours, ref)          # the generated C is the reference, bit for bit
    theirs = _ort(trained / "digits_bnn.onnx", d["x"])
    # onnxruntime sums the float first layer in another order (a few ULP); the binary layers
    # are exact, so the predicted classes agree and the logits agree to float rounding.
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    acc = (ours.argmax(1) == d["y"]).mean()
    assert acc == (theirs.argmax(1) == d["y"]).mean() and acc >= 0.9


@pytest.mark.qemu
@pytest.mark.cross
@pytest.mark.slow
def test_device_accuracy_equals_host_accuracy(trained, tmp_path, capsys):
    b = api.build(trained / "digits_bnn.onnx", "cortex-m7", tmp_path / "m7")
    report = tmp_path / "report.json"
    assert main(["validate", str(b.dir), "--dataset", str(trained / "digits_test.npz"), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    import json

    r = json.loads(report.read_text())
    s = r["summary"]
    assert s["samples"] == 360 and s["exact_rate"] == 1.0 and s["max_abs_diff"] == 0.0, out
    assert s["accuracy"] == s["reference_accuracy"] >= 0.9, out
