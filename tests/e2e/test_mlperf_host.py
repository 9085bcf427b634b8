"""The four MLPerf Tiny int8 models built for the host targets (host: the portable C;
host-llvm: TVM's LLVM kernels for this CPU, vectorized): outputs bit-identical to TensorFlow
Lite Micro on the shipped KWS sample and on 50 seeded random inputs each."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api, cli
from edgert.validate.tflm_ref import TflmReference
from tests.conftest import MLPERF_INT8
from tests.support import golden_kernels

pytestmark = pytest.mark.slow
RANDOM_INPUTS = 50


@pytest.fixture(scope="module", params=[(m, t) for t in ("host", "host-llvm") for m in MLPERF_INT8],
                ids=lambda p: f"{p[0]}-{p[1]}")
def built(request, mlperf_dir, tmp_path_factory):
    model, target = request.param
    path = mlperf_dir / f"{model}.tflite"
    return path, api.build(path, target, tmp_path_factory.mktemp(f"{model}-{target}"))


def test_bit_exact_with_tflm(built):
    path, b = built
    hm = api.host_model(b)
    tflm = TflmReference(path.read_bytes())
    shape = b.meta["io"]["inputs"][0]["shape"]
    inputs = [np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8) for seed in range(RANDOM_INPUTS)]
    if path.stem == "kws_dscnn_int8":
        inputs.insert(0, np.load(path.parent / "kws_sample_on_int8.npy"))
    mismatches = [i for i, x in enumerate(inputs) if not np.array_equal(hm.run([x])[0], tflm.run([x])[0])]
    assert mismatches == [], f"{len(mismatches)} of {len(inputs)} inputs differ from TFLM"
    if path.stem == "kws_dscnn_int8":
        assert int(np.argmax(hm.run([inputs[0]])[0])) == 5  # the sample is the keyword "on", class 5


def test_cli_run_and_bench(built, tmp_path, capsys):
    path, b = built
    if path.stem != "ad_toycar_int8":
        pytest.skip("the CLI round trip is exercised on the smallest model")
    x = np.random.default_rng(1).integers(-128, 128, b.meta["io"]["inputs"][0]["shape"], dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(b.dir), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), TflmReference(path.read_bytes()).run([x])[0])
    assert cli.main(["bench", str(b.dir), "--runs", "5", "--json", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert "tflite-micro" in out and "litert (xnnpack)" in out and "arena bytes" in out
    assert cli.main(["inspect", str(path)]) == 0
    assert "planned arena 768 bytes" in capsys.readouterr().out


def test_kernels_are_the_recorded_ones(built):
    path, b = built
    if b.target.name == "host-llvm":
        pytest.skip("host-llvm's kernels are compiled for this machine's CPU: no fixed checksum")
    golden_kernels.check(b, path.stem)
