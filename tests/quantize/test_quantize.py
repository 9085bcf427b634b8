"""edgert quantize: the mixed-precision search on a model whose loss is known in closed form,
the low-bit weight helpers, the float TFLite -> ONNX route, and the errors a user meets."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.errors import UnsupportedError, UserError
from edgert.frontends.onnx import export as ir_to_onnx
from edgert.ops import reference
from edgert.quantize import lowbit, onnx_ptq, quantize, search


def _quadratic(single, inter, acc_per_loss=0.1):
    """A model whose loss with layers ``low`` at low bits is a quadratic form: own terms plus
    pairwise terms, and whose accuracy falls linearly with the loss."""
    def evaluate(low):
        loss = sum(single[l] for l in low) + sum(v for (a, b), v in inter.items() if a in low and b in low)
        return search.Score(loss=loss, accuracy=1.0 - acc_per_loss * loss)
    return evaluate


def test_search_measures_the_form_and_keeps_the_bound():
    layers = ["a", "b", "c", "d"]
    single = {"a": 0.01, "b": 0.02, "c": 0.01, "d": 0.30}
    inter = {("b", "c"): 0.05}  # b and c interact: together worse than apart
    choice = search.choose(layers, {l: 100 for l in layers}, _quadratic(single, inter), baseline=1.0, max_drop=0.005)
    assert choice.sensitivity == pytest.approx(single)
    assert choice.interaction[("b", "c")] == pytest.approx(0.05) and choice.interaction[("a", "b")] == pytest.approx(0)
    # greedy by cost per byte: a, c (0.01 each), then b costs 0.02 + 0.05 with c chosen, d 0.30
    # accuracy drops: {a,c} 0.002, +b 0.009 > 0.005: the bisection stops at two layers
    assert choice.low == ["a", "c"] and choice.accuracy == pytest.approx(0.998)


def test_search_refuses_when_int8_already_exceeds_the_bound():
    evaluate = lambda low: search.Score(loss=0.0, accuracy=0.9)  # noqa: E731
    with pytest.raises(UserError, match="all-int8 model already loses 10.00 %"):
        search.choose(["a"], {"a": 1}, evaluate, baseline=1.0, max_drop=0.01)


def test_int4_from_int8_keeps_the_real_values_close():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (6, 3, 3, 4)).astype(np.int8)
    scales = rng.uniform(0.001, 0.01, 6).astype(np.float32)
    q, s = lowbit.int4_from_int8(w, scales, 0)
    assert q.min() >= -7 and q.max() <= 7
    err = np.abs(q * s[:, None, None, None] - w * scales[:, None, None, None])
    assert (err <= s[:, None, None, None] / 2 + 1e-9).all()  # round to nearest: half a step at most


def test_codebook_levels_and_zero():
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, 1000).astype(np.int8)
    w[:300] = 0
    c = lowbit.codebook_int8(w, 4)
    assert len(np.unique(c)) <= 16 and (c[:300] == 0).all()
    assert np.abs(c.astype(int) - w).mean() < 8  # 16 levels over 255 values: a few steps off on average


def test_float_tflite_exports_to_an_equivalent_onnx_model(mlperf_dir):
    import onnxruntime as ort

    from edgert.validate.tflm_ref import run_tflm

    path = mlperf_dir / "ic_resnet8_float.tflite"
    g = api.load_graph(path)
    data, layout = ir_to_onnx.export(g)
    assert layout == {g.inputs[0]: "NCHW"}
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    s = ort.InferenceSession(data)
    got = s.run(None, {s.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})[0]
    # float32 sums in another order (onnxruntime's convolutions vs TFLite Micro's): a few ULP
    np.testing.assert_allclose(got.reshape(-1), run_tflm(path.read_bytes(), [x])[0].reshape(-1), atol=1e-5)


def test_float_tflite_quantizes_to_a_qdq_model_edgert_builds(mlperf_dir, tmp_path):
    spec = np.load(mlperf_dir / "ad_sample_normal_f32_200x128.npy")
    windows = np.stack([spec[i:i + 5].reshape(1, 640) for i in range(0, 196, 4)])
    np.savez(tmp_path / "calib.npz", x=windows)
    out = tmp_path / "ad_q.onnx"
    assert main(["quantize", str(mlperf_dir / "ad_toycar_float.tflite"), "--calib", str(tmp_path / "calib.npz"),
                 "--weights", "int4", "-o", str(out)]) == 0
    b = api.build(out, "host", tmp_path / "b")
    assert {r["chosen"] for r in b.report["weights"]} == {"int4"}
    g = api.compile_model(out).graph
    x = windows[0].astype(np.float32)
    np.testing.assert_array_equal(api.run(b, [x])[0], reference.run(g, [x])[g.outputs[0]])


def test_errors_name_the_problem(tmp_path, mlperf_dir):
    with pytest.raises(UserError, match="needs calibration samples"):
        quantize(mlperf_dir / "ad_toycar_float.tflite", tmp_path / "q.onnx")
    with pytest.raises(UserError, match="name the output .onnx"):
        quantize(mlperf_dir / "ad_toycar_float.tflite", tmp_path / "q.tflite", calib=tmp_path / "none.npz")
    with pytest.raises(UnsupportedError, match="mixed precision needs the float model"):
        quantize(mlperf_dir / "ad_toycar_int8.tflite", tmp_path / "q.tflite")
    with pytest.raises(UserError, match="codebooks have 2 or 4 index bits"):
        quantize(mlperf_dir / "ad_toycar_int8.tflite", tmp_path / "q.tflite", codebook=3)
    np.savez(tmp_path / "bad.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(UserError, match="no array 'x'"):
        quantize(mlperf_dir / "ad_toycar_float.tflite", tmp_path / "q.onnx", calib=tmp_path / "bad.npz")


def test_autoencoder_without_labels_is_scored_by_reconstruction_error(mlperf_dir, tmp_path):
    """AD (an autoencoder) has no classes: top-1 agreement would mean nothing. The bound holds
    on the reconstruction error, recomputed here with onnxruntime from the written model."""
    spec = np.load(mlperf_dir / "ad_sample_normal_f32_200x128.npy")
    windows = np.stack([spec[i:i + 5].reshape(1, 640) for i in range(0, 196, 4)])
    np.savez(tmp_path / "calib.npz", x=windows)
    out = tmp_path / "ad_mixed.onnx"
    rep = quantize(mlperf_dir / "ad_toycar_float.tflite", out, calib=tmp_path / "calib.npz", max_drop=0.01)
    assert rep["calibration"]["metric"] == "reconstruction" and rep["float_accuracy"] == 1.0
    assert any(r["format"] == "int4" for r in rep["layers"])  # some layers do go low-bit within 1 %

    def error(model: bytes) -> float:
        s = onnx_ptq.session(model)  # unfused, as the search scores: the same on every CPU
        name = s.get_inputs()[0].name
        return float(np.mean([(s.run(None, {name: w})[0].astype(np.float64) - w) ** 2 for w in windows]))

    float_err = error(ir_to_onnx.export(api.load_graph(mlperf_dir / "ad_toycar_float.tflite"))[0])
    err = error(out.read_bytes())
    assert err <= float_err / (1 - 0.01)  # at most the bound's worth of added error (it may also fall a little)
    assert rep["accuracy"] == pytest.approx(float_err / err, rel=1e-6)  # rel: the means' summation order


def test_an_int4_model_goes_into_a_new_folder(tmp_path, mlperf_dir):
    out = tmp_path / "not" / "yet" / "ad_int4.tflite"
    quantize(mlperf_dir / "ad_toycar_int8.tflite", out, weights="int4")
    assert out.stat().st_size > 0
