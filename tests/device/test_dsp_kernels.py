"""The DSP form of the int8 conv family (edgert.ops.forms.dsp_dot: SXTB16, SMLAD, SMLABB/SMLATT)
on the emulated Cortex-M7 and Cortex-M4, bit-exact with TensorFlow Lite Micro: a network whose
layers cover the form's cases (a first layer over three channels, whose filter rows leave a
tail of one value, explicitly padded; a strided depthwise layer with guarded border taps;
1x1 layers in blocks of two output channels and their sum (the shorter requantization); a
fully-connected layer in blocks of one)."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from tests.support.tflite_builder import ModelBuilder

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


def _network(path):
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.add_input((1, 12, 12, 3), "int8", scale=0.04, zero_point=-7)
    y = b.conv2d(x, rng.normal(0, 0.3, (8, 3, 3, 3)), rng.normal(0, 0.2, 8), padding="SAME", activation="RELU")
    y = b.depthwise_conv2d(y, rng.normal(0, 0.3, (1, 3, 3, 8)), rng.normal(0, 0.2, 8), strides=2, padding="SAME",
                           activation="RELU6")
    p = b.conv2d(y, rng.normal(0, 0.3, (6, 1, 1, 8)), rng.normal(0, 0.2, 6), padding="VALID")
    q = b.conv2d(y, rng.normal(0, 0.3, (6, 1, 1, 8)), rng.normal(0, 0.2, 6), padding="VALID")
    y = b.add(p, q, activation="RELU")
    y = b.reshape(y, (1, 6 * 6 * 6))
    y = b.fully_connected(y, rng.normal(0, 0.1, (5, 216)), rng.normal(0, 0.2, 5))
    b.set_outputs([y])
    path.write_bytes(b.build())
    return path


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m4"])
def test_dsp_form_is_bit_exact_on_the_board(target, tmp_path, capsys):
    built = api.build(_network(tmp_path / "net.tflite"), target, tmp_path / "b")
    kernels = (built.dir / "kernels.c").read_text()
    assert "edgert_smlad_s8x4(" in kernels and "edgert_smla_s8_lane(" in kernels
    try:
        assert main(["flash", str(built.dir)]) == 0
        assert main(["validate", str(built.dir), "--random", "6"]) == 0
        assert "bit-exact        100.0%" in capsys.readouterr().out
    finally:
        main(["flash", "--stop", str(built.dir)])
