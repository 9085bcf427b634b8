"""The host-llvm target: TVM's LLVM kernels for this machine's CPU, linked into the in-process
library and into the host firmware, bit-exact with TensorFlow Lite Micro."""
from __future__ import annotations

import numpy as np

from edgert import api, targets
from edgert.cli import main
from edgert.validate.tflm_ref import run_tflm
from tests.conftest import HELLO_WORLD


def test_native_cpu_is_resolved():
    llvm = targets.load("host-llvm").llvm
    assert llvm["mcpu"] not in ("", "native") and llvm["mtriple"] != "native"


def test_in_process_and_host_firmware_match_tflm(tmp_path, capsys):
    b = api.build(HELLO_WORLD, "host-llvm", tmp_path / "b")
    assert (b.dir / "kernels.o").is_file() and not (b.dir / "kernels.c").exists()
    model = b.model_path.read_bytes()
    for v in (-128, -3, 0, 77, 127):
        x = np.array([[v]], dtype=np.int8)
        np.testing.assert_array_equal(api.run(b, [x])[0], run_tflm(model, [x])[0])
    assert main(["validate", str(b.dir), "--random", "5"]) == 0  # the host firmware, over the protocol
    assert "bit-exact        100.0%" in capsys.readouterr().out
