"""The firmware's protocol code compiled for the host (same C as on the board, UART on
stdin/stdout): every kind of malformed frame gets the documented ERROR and the device then
completes a correct inference."""
from __future__ import annotations

import numpy as np
import pytest

from edgert.backends import host
from edgert.device import protocol as P
from edgert.device.session import ProtocolError, Session
from edgert.validate.tflm_ref import run_tflm

from .malformed import CASES, expect_error


@pytest.fixture
def session(hello_host_build):
    s = Session(host.start_firmware(hello_host_build.dir, hello_host_build.meta), name="host firmware")
    yield s
    s.close()


def _check_inference(s: Session, build) -> None:
    x = np.array([[77]], dtype=np.int8)
    result = s.run([x], build.meta["io"]["outputs"])
    expected = run_tflm(build.model_path.read_bytes(), [x])
    np.testing.assert_array_equal(result.outputs[0], expected[0].reshape(result.outputs[0].shape))


def test_handshake_describes_the_model(session, hello_host_build):
    h = session.check_build(hello_host_build.meta)
    assert h.version == P.PROTOCOL_VERSION and h.timer is P.Timer.HOST
    assert h.arena_bytes == hello_host_build.meta["arena_bytes"]
    assert [list(t.shape) for t in h.inputs] == [s["shape"] for s in hello_host_build.meta["io"]["inputs"]]
    assert h.num_layers == len(hello_host_build.meta["kernels"])


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_frame_gets_an_error_and_the_device_recovers(session, hello_host_build, case):
    wire, codes = CASES[case]
    expect_error(session, wire, codes)
    session.check_build(hello_host_build.meta)
    _check_inference(session, hello_host_build)


def test_all_malformed_frames_in_a_row_then_inference(session, hello_host_build):
    session.check_build(hello_host_build.meta)
    for wire, codes in CASES.values():
        expect_error(session, wire, codes)
    _check_inference(session, hello_host_build)


def test_profiled_inference_reports_every_layer(session, hello_host_build):
    session.check_build(hello_host_build.meta)
    x = np.array([[10]], dtype=np.int8)
    session.run([x], hello_host_build.meta["io"]["outputs"], profile=True)
    ticks = session.layer_ticks(len(hello_host_build.meta["kernels"]))
    assert len(ticks) == len(hello_host_build.meta["kernels"]) and all(t >= 0 for t in ticks)
    with pytest.raises(ProtocolError, match="BAD_ARG"):
        session.request(P.Cmd.GET_LAYERS, P.GET_LAYERS_REQ.pack(0, 100))


def test_validate_a_host_build_through_the_host_firmware(hello_host_build, tmp_path, capsys):
    from edgert.cli import main

    assert main(["validate", str(hello_host_build.dir), "--random", "6", "--report", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "6 samples vs TFLM" in out and "bit-exact        100.0%" in out and " ns" in out
