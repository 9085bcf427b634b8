"""The firmware's protocol code compiled for the host (same C as on the board, UART on
stdin/stdout): every kind of malformed frame gets the documented ERROR and the device then
completes a correct inference."""
from __future__ import annotations

import numpy as np
import pytest

from edgert.backends import host
from edgert.device import framing, protocol as P
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
    session.check_build(hello_host_build.meta)
    wire, codes = CASES[case]
    expect_error(session, wire, codes)
    session.check_build(hello_host_build.meta)
    _check_inference(session, hello_host_build)


def test_until_a_hello_every_other_request_is_not_synced(session, hello_host_build):
    # A board that has just started (or restarted) must not answer from its empty arena.
    for cmd, payload in ((P.Cmd.SET_INPUT, P.SET_INPUT_REQ.pack(0, 0) + b"\x01"), (P.Cmd.INVOKE, b"\x00"),
                         (P.Cmd.GET_OUTPUT, P.GET_OUTPUT_REQ.pack(0, 1, 0))):
        assert expect_error(session, framing.encode(cmd, 9, payload), (P.Err.NOT_SYNCED,)) is P.Err.NOT_SYNCED
    session.check_build(hello_host_build.meta)
    _check_inference(session, hello_host_build)


def test_a_retried_request_gets_the_same_reply_without_running_again(session, hello_host_build):
    session.check_build(hello_host_build.meta)
    session.set_input(0, np.array([[5]], dtype=np.int8).tobytes())
    for seq in (20, 21, 22):
        wire = framing.encode(P.Cmd.INVOKE, seq, P.INVOKE_REQ.pack(0))
        session.send_raw(wire)
        first = session.read_frame(5.0)
        session.send_raw(wire)  # the same request again: its reply was "lost"
        again = session.read_frame(5.0)
        # The host build's ticks are nanoseconds of CLOCK_MONOTONIC: a second execution would
        # measure its own duration, and three in a row equal to the nanosecond are not chance.
        assert again == first and first.cmd == P.Cmd.INVOKE | P.REPLY_BIT and first.seq == seq


def test_a_delayed_copy_of_an_earlier_request_is_not_run(session, hello_host_build):
    # Set the input, then let a stale copy of an earlier SET_INPUT (other data) arrive: the
    # device must refuse it, or the next inference would run on the stale data.
    session.check_build(hello_host_build.meta)
    old = framing.encode(P.Cmd.SET_INPUT, 30, P.SET_INPUT_REQ.pack(0, 0) + np.int8(-100).tobytes())
    session.send_raw(old)
    session.read_frame(5.0)
    session.send_raw(framing.encode(P.Cmd.SET_INPUT, 31, P.SET_INPUT_REQ.pack(0, 0) + np.int8(77).tobytes()))
    session.read_frame(5.0)
    assert expect_error(session, old, (P.Err.STALE,)) is P.Err.STALE
    session.send_raw(framing.encode(P.Cmd.INVOKE, 32, P.INVOKE_REQ.pack(0)))
    assert session.read_frame(5.0).cmd == P.Cmd.INVOKE | P.REPLY_BIT
    session.send_raw(framing.encode(P.Cmd.GET_OUTPUT, 33, P.GET_OUTPUT_REQ.pack(0, 1, 0)))
    out = session.read_frame(5.0).payload
    expected = run_tflm(hello_host_build.model_path.read_bytes(), [np.array([[77]], dtype=np.int8)])[0]
    assert np.frombuffer(out, np.int8)[0] == expected.reshape(-1)[0]


def test_all_malformed_frames_in_a_row_then_inference(session, hello_host_build):
    session.check_build(hello_host_build.meta)
    for wire, codes in CASES.values():
        expect_error(session, wire, codes)
    session.check_build(hello_host_build.meta)  # the cases' own seqs ran ahead of the session's
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
