"""examples/train_cnn.py end to end: a CNN trained on scikit-learn's digits, pruned
(unstructured and structured, 50/75/90 %), quantized by `edgert quantize`, built for the host
and the emulated Cortex-M7.

* the mixed-precision model meets --max-drop on the held-out split;
* every pruned model gives exactly the outputs of its dense int8 build (the weights stored as
  the model holds them), on the host and on the emulated M7;
* sparse and channel-pruned builds take less flash and fewer instructions (edgert bench).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgert import api, bench
from edgert.cli import main
from edgert.device.board import connect
from edgert.ops import reference
from tests.conftest import REPO

pytestmark = pytest.mark.slow
VARIANTS = ("u50", "u75", "u90", "s50", "s75", "s90")
SAMPLES = 40  # test images compared output for output per variant


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    subprocess.run([sys.executable, str(REPO / "examples" / "train_cnn.py"), "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def test_split(trained):
    d = np.load(trained / "digits_test.npz")
    return d["x"].astype(np.float32), d["y"]


def _quantize(trained, name: str, *args) -> str:
    out = trained / f"{name}_q{'_'.join(a.strip('-') for a in args)}.onnx"
    if not out.exists():
        assert main(["quantize", str(trained / f"{name}.onnx"), "--calib", str(trained / "digits_train.npz"),
                     "-o", str(out), *args]) == 0
    return out


def _outputs(b, xs):
    return np.stack([api.run(b, [x.reshape(1, 1, 8, 8)])[0].reshape(-1) for x in xs])


def test_quantize_meets_max_drop_on_the_held_out_split(trained, test_split, tmp_path, capsys):
    q = _quantize(trained, "digits_cnn", "--max-drop", "1%", "--json", str(tmp_path / "q.json"))
    rep = json.loads((tmp_path / "q.json").read_text())
    assert {r["format"] for r in rep["layers"]} <= {"int8", "int4"} and len(rep["layers"]) == 5
    assert set(rep["sensitivity"]) == {r["weights"] for r in rep["layers"]}
    assert "loss increase at low bits" in capsys.readouterr().out
    x, y = test_split
    b = api.build(q, "host", tmp_path / "host")
    acc = float(np.mean(_outputs(b, x).argmax(axis=1) == y))
    float_acc = json.loads((trained / "accuracy.json").read_text())["models"]["digits_cnn"]["test_accuracy"]
    assert float_acc - acc <= 0.01, (float_acc, acc)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pruned_model_equals_its_dense_int8_build(trained, test_split, tmp_path, variant):
    q = _quantize(trained, f"digits_cnn_{variant}", "--weights", "int8")
    x = test_split[0][:SAMPLES]
    dense = api.build(q, "host", tmp_path / "int8", weights="int8")
    packed = api.build(q, "host", tmp_path / "auto")
    np.testing.assert_array_equal(_outputs(packed, x), _outputs(dense, x))
    g = api.compile_model(q, weights="auto").graph
    want = np.stack([reference.run(g, [s.reshape(1, 1, 8, 8)])[g.outputs[0]].reshape(-1) for s in x[:5]])
    np.testing.assert_array_equal(_outputs(packed, x[:5]), want)
    if variant.startswith("s"):  # whole filters pruned: removed at compile time
        assert sum(op.attrs.get("pruned_channels", (0, 0))[0] for op in g.ops) > 0
    if variant == "u90":
        assert any(r["chosen"].startswith("sparse") for r in packed.report["weights"])


@pytest.mark.qemu
@pytest.mark.cross
@pytest.mark.parametrize("variant", VARIANTS)
def test_pruned_model_on_the_emulated_m7(trained, test_split, tmp_path, variant):
    q = _quantize(trained, f"digits_cnn_{variant}", "--weights", "int8")
    x = test_split[0][:5]
    want = _outputs(api.build(q, "host", tmp_path / "host", weights="int8"), x)
    b = api.build(q, "cortex-m7", tmp_path / "m7")
    with connect(b, None) as board:
        got = np.stack([board.session.run([s.reshape(1, 1, 8, 8)], b.meta["io"]["outputs"]).outputs[0].reshape(-1)
                        for s in x])
    np.testing.assert_array_equal(got, want)


@pytest.mark.qemu
@pytest.mark.cross
def test_bench_shows_savings_against_the_dense_build(trained, tmp_path):
    models = [_quantize(trained, f"digits_cnn_{v}", "--weights", "int8") for v in ("u90", "s75")]
    rows = {r["model"]: r for r in bench.bench_device(models, "cortex-m7", out_dir=tmp_path,
                                                      weights=("int8", "auto"))["models"]}
    for m in models:
        name = api.load_graph(m).name
        dense, packed = rows[f"{name} [int8]"], rows[f"{name} [auto]"]
        assert packed["weight_bytes"] < dense["weight_bytes"] and packed["flash"] < dense["flash"]
        assert packed["latency"] < dense["latency"]  # instructions: deterministic
