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


def _network(path, int4: bool = False):
    rng = np.random.default_rng(11)

    def weights(shape, sd, channels):
        """Float weights, or with ``int4`` int8 values in [-8, 7] and their per-channel scales."""
        if not int4:
            return {"weights": rng.normal(0, sd, shape)}
        scale = np.full(channels, sd / 4, np.float32)
        return {"weights": rng.integers(-8, 8, shape).astype(np.int8), "weight_scale": scale if channels > 1 else float(sd / 4)}

    def bias(n):
        return rng.integers(-500, 500, n).astype(np.int32) if int4 else rng.normal(0, 0.2, n)

    b = ModelBuilder()
    x = b.add_input((1, 12, 12, 3), "int8", scale=0.04, zero_point=-7)
    y = b.conv2d(x, **weights((8, 3, 3, 3), 0.3, 8), bias=bias(8), padding="SAME", activation="RELU")
    y = b.depthwise_conv2d(y, **weights((1, 3, 3, 8), 0.3, 8), bias=bias(8), strides=2, padding="SAME",
                           activation="RELU6")
    p = b.conv2d(y, **weights((6, 1, 1, 8), 0.3, 6), bias=bias(6), padding="VALID")
    q = b.conv2d(y, **weights((6, 1, 1, 8), 0.3, 6), bias=bias(6), padding="VALID")
    y = b.add(p, q, activation="RELU")
    y = b.reshape(y, (1, 6 * 6 * 6))
    y = b.fully_connected(y, **weights((5, 216), 0.1, 1), bias=bias(5))
    b.set_outputs([y])
    path.write_bytes(b.build())
    return path


@pytest.mark.parametrize("target, weights", [("cortex-m7", "auto"), ("cortex-m4", "auto"), ("cortex-m7", "int4")])
def test_dsp_form_is_bit_exact_on_the_board(target, weights, tmp_path, capsys):
    """weights "int4": the same network with every weight in [-8, 7], built with --weights
    dense, whose 1x1 and fully-connected layers then take the DSP form's int4 words."""
    model = _network(tmp_path / "net.tflite", int4=weights == "int4")
    built = api.build(model, target, tmp_path / "b", weights="dense" if weights == "int4" else "auto")
    kernels = (built.dir / "kernels.c").read_text()
    if weights == "int4":  # the first and the depthwise layers decode int4 in scalar code
        assert "edgert_smlad_s4x8(" in kernels
    else:
        assert "edgert_smlad_s8x4(" in kernels and "edgert_smla_s8_lane(" in kernels
    try:
        assert main(["flash", str(built.dir)]) == 0
        assert main(["validate", str(built.dir), "--random", "6"]) == 0
        assert "bit-exact        100.0%" in capsys.readouterr().out
    finally:
        main(["flash", "--stop", str(built.dir)])
