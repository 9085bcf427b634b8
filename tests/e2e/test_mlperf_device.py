"""The four MLPerf Tiny int8 models on the emulated Cortex-M7 through `edgert build`,
`edgert flash` and `edgert validate`: bit-exact with TensorFlow Lite Micro over at least 20
inputs each (real samples where the suite ships them), and deterministic instruction counts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device.board import connect
from tests.conftest import MLPERF_INT8
from tests.support import golden_kernels

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.cross]
MIN_SAMPLES = 20


@pytest.fixture(scope="module", params=MLPERF_INT8)
def built(request, mlperf_dir, tmp_path_factory):
    path = mlperf_dir / f"{request.param}.tflite"
    return path, api.build(path, "cortex-m7", tmp_path_factory.mktemp(request.param))


def _real_samples(path, tmp_path):
    """The suite's own samples: the KWS keyword 'on' (class 5), and for AD the reference
    spectrogram cut into the model's 5-frame windows (float, quantized by edgert)."""
    if path.stem == "kws_dscnn_int8":
        return ["--dataset", str(path.parent / "kws_sample_on_int8.npy"), "--labels", "5"], 1
    if path.stem == "ad_toycar_int8":
        spec = np.load(path.parent / "ad_sample_normal_f32_200x128.npy")
        windows = np.stack([spec[i:i + 5].reshape(1, 640) for i in range(0, 200 - 4, 40)])
        np.savez(tmp_path / "ad.npz", x=windows)
        return ["--dataset", str(tmp_path / "ad.npz")], len(windows)
    return [], 0


def test_flash_and_validate_bit_exact_with_tflm(built, tmp_path, capsys):
    path, b = built
    extra, n_real = _real_samples(path, tmp_path)
    report_path = tmp_path / "report.json"
    try:
        assert main(["flash", str(b.dir)]) == 0
        rc = main(["validate", str(b.dir), *extra, "--random", str(MIN_SAMPLES - n_real), "--report", str(report_path)])
    finally:
        main(["flash", "--stop", str(b.dir)])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads(report_path.read_text())
    s = report["summary"]
    assert s["samples"] >= MIN_SAMPLES and s["reference"] == "tflm"
    assert s["exact_rate"] == 1.0 and s["max_abs_diff"] == 0.0
    assert s["latency_unit"] == "instructions" and s["latency_p50"] > 0
    assert len(report["layers"]) == len(b.meta["kernels"])
    if path.stem == "kws_dscnn_int8":
        assert s["accuracy"] == 1.0  # the sample is the keyword "on", class 5


def test_instruction_count_is_the_same_every_run(built):
    path, b = built
    if path.stem != "kws_dscnn_int8":
        pytest.skip("determinism is shown on one real model")
    x = np.load(path.parent / "kws_sample_on_int8.npy")
    counts = []
    for _ in range(2):  # a fresh board each time, two inferences on each
        with connect(b) as board:
            for _ in range(2):
                counts.append(board.latency(board.session.run([x], b.meta["io"]["outputs"]).ticks))
    assert len(set(counts)) == 1, counts


def test_kernels_are_the_recorded_ones(built):
    path, b = built
    golden_kernels.check(b, path.stem)
