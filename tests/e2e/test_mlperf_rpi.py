"""The four MLPerf Tiny int8 models built for the Raspberry Pi 4 (Cortex-A72) and 5
(Cortex-A76) and validated under qemu-aarch64 with the matching CPU model: bit-exact with
TensorFlow Lite Micro. The A76 build uses the int8 dot-product instructions, which the A72
does not have: QEMU with the A72's CPU model refuses that runner."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device.session import Session
from edgert.device.transport import ProcessTransport
from edgert.errors import DeviceError
from edgert.validate.dataset import random_inputs
from tests.conftest import MLPERF_INT8
from tests.support import golden_kernels

from .test_mlperf_device import _real_samples

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.cross]
SAMPLES = 10  # per model and board: the emulated runner is fast, the builds are what cost


@pytest.fixture(scope="module", params=[(m, t) for t in ("rpi4", "rpi5") for m in MLPERF_INT8],
                ids=lambda p: f"{p[0]}-{p[1]}")
def built(request, mlperf_dir, tmp_path_factory):
    model, target = request.param
    path = mlperf_dir / f"{model}.tflite"
    return path, api.build(path, target, tmp_path_factory.mktemp(f"{model}-{target}"))


def test_validate_bit_exact_with_tflm_under_qemu(built, tmp_path, capsys):
    path, b = built
    extra, n_real = _real_samples(path, tmp_path)
    report_path = tmp_path / "report.json"
    rc = main(["validate", str(b.dir), *extra, "--random", str(SAMPLES - n_real), "--report", str(report_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    s = json.loads(report_path.read_text())["summary"]
    assert s["samples"] == SAMPLES and s["reference"] == "tflm"
    assert s["exact_rate"] == 1.0 and s["max_abs_diff"] == 0.0
    assert s["latency_unit"] == "instructions" and s["latency_p50"] > 0
    assert s["latency_p50"] == s["latency_max"]  # instruction counts do not vary with int8 input here

    sdot = "sdot" in (b.dir / "kernels.s").read_text()
    if b.target.name == "rpi5":
        assert sdot, "the Cortex-A76 kernels should use SDOT"
        # the Pi 4's CPU has no SDOT: its emulator stops the Pi 5 runner with an illegal instruction
        t = ProcessTransport(["qemu-aarch64", "-cpu", "cortex-a72", str(b.dir / b.meta["runner"])])
        session = Session(t, timeout=10)
        try:
            session.check_build(b.meta)  # the protocol code has no SDOT: it answers
            with pytest.raises(DeviceError, match="exited \\(signal SIGILL\\)"):
                session.run(random_inputs(b.meta["io"]["inputs"], np.random.default_rng(0)), b.meta["io"]["outputs"])
        finally:
            session.close()
    if b.target.name == "rpi4":
        assert not sdot


def test_kernels_are_the_recorded_ones(built):
    path, b = built
    golden_kernels.check(b, path.stem)
