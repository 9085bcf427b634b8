"""Larq Compute Engine models on the emulated Cortex-M7 and on the Raspberry Pi 4 and 5 under
qemu-aarch64: the device's outputs equal the LCE interpreter's (committed with the fixtures)
bit for bit, and `edgert validate` picks edgert's reference for them (TensorFlow Lite Micro has
no LCE ops). On AArch64 the XOR-popcount kernels come from LLVM: popcount is the NEON CNT
instruction."""
from __future__ import annotations

import re
from pathlib import Path

from tests.codegen.test_lce import CASES, _expect

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device.board import connect

pytestmark = [pytest.mark.qemu, pytest.mark.cross]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lce"


def _run_on_board(case: str, tmp_path, target: str = "cortex-m7") -> tuple[np.ndarray, np.ndarray]:
    b = api.build(FIXTURES / f"{case}.tflite", target, tmp_path / case)
    d = np.load(FIXTURES / f"{case}.npz")
    with connect(b) as board:
        got = [board.session.run([x[None]], b.meta["io"]["outputs"]).outputs[0] for x in d["x"]]
    return np.concatenate(got).reshape(d["y"].shape), d["y"]


def test_mixed_int8_binary_network_is_bit_exact_on_the_board(tmp_path):
    got, want = _run_on_board("mixed_net_int8", tmp_path)
    np.testing.assert_array_equal(got, want)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["bconv_same_zero_padding", "bconv_bitpacked_40", "bconv_int8_output_int8",
                                  "bconv_channels_70_zero_pad", "bconv_dilation2", "bmaxpool"])
def test_binary_layers_are_bit_exact_on_the_board(case, tmp_path):
    got, want = _run_on_board(case, tmp_path)
    np.testing.assert_array_equal(got, want)


def test_validate_uses_edgerts_reference_for_lce_models(tmp_path, capsys):
    b = api.build(FIXTURES / "bconv_fused_relu.tflite", "cortex-m7", tmp_path / "b")
    assert main(["validate", str(b.dir), "--random", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 samples vs EDGERT" in out and "bit-exact        100.0%" in out
    rc = main(["validate", str(b.dir), "--random", "1", "--reference", "tflm"])
    assert rc == 2 and "TensorFlow Lite Micro cannot run this model's Larq Compute Engine ops" in capsys.readouterr().err


def test_binary_network_on_the_pi(tmp_path):
    got, want = _run_on_board("bconv_bitpacked_chain_int8", tmp_path, "rpi4")
    np.testing.assert_array_equal(got, want)
    assert re.search(r"^\s+cnt\s+v", (tmp_path / "bconv_bitpacked_chain_int8" / "kernels.s").read_text(), re.M)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["rpi4", "rpi5"])
@pytest.mark.parametrize("case", CASES)
def test_every_lce_fixture_on_the_pi(case, target, tmp_path):
    got, want = _run_on_board(case, tmp_path, target)
    _expect(case, got, want)  # bit for bit, but for mixed_net's float layers (see test_lce.py)
