"""The protocol's Python side: the generated C header is current, frames round-trip, and
damaged frames are refused with the reason."""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from edgert.device import framing, protocol as P

REPO = Path(__file__).resolve().parents[2]


def test_committed_c_header_is_generated_from_protocol_py():
    header = REPO / "firmware" / "runtime" / "edgert_protocol.h"
    assert header.read_text() == P.c_header(), \
        "regenerate: python -m edgert.device.protocol > firmware/runtime/edgert_protocol.h"


def test_c_header_carries_every_command_and_error_code():
    h = P.c_header()
    for c in P.Cmd:
        assert f"#define EDGERT_CMD_{c.name} 0x{c.value:02X}" in h
    for e in P.Err:
        assert f"#define EDGERT_ERR_{e.name} {e.value}" in h
        assert P.ERROR_TEXT[e]  # every code is documented


@pytest.mark.parametrize("n", [0, 1, 253, 254, 255, 508, 1100])
def test_cobs_round_trip_without_zero_bytes(n):
    rng = __import__("numpy").random.default_rng(n)
    for data in (bytes(n), b"\x01" * n, bytes(rng.integers(0, 256, n, dtype="uint8")), b"\xff" * n):
        enc = framing.cobs_encode(data)
        assert 0 not in enc
        assert framing.cobs_decode(enc) == data
        assert len(enc) <= n + n // 254 + 1


def test_crc_is_ieee_crc32():
    data = os.urandom(300)
    assert framing.crc32(data) == zlib.crc32(data)
    assert framing.crc32(b"123456789") == 0xCBF43926  # the standard check value


def test_frame_round_trip():
    wire = framing.encode(P.Cmd.SET_INPUT, 7, b"\x00\x01\x02" * 100)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    f = framing.decode(wire[:-1])
    assert (f.cmd, f.seq, f.payload) == (P.Cmd.SET_INPUT, 7, b"\x00\x01\x02" * 100)


def test_damaged_frames_are_refused_with_the_reason():
    wire = bytearray(framing.encode(P.Cmd.HELLO, 1, b"\x01\x00"))[:-1]
    bad_crc = bytearray(framing.cobs_decode(bytes(wire)))
    bad_crc[-1] ^= 0xFF
    with pytest.raises(framing.FrameError, match="CRC"):
        framing.decode(framing.cobs_encode(bytes(bad_crc)))
    body = P.HEADER.pack(P.Cmd.HELLO, 1, 10) + b"\x01\x00"  # says 10 bytes, holds 2
    truncated = body + framing.crc32(body).to_bytes(4, "little")
    with pytest.raises(framing.FrameError, match="length field"):
        framing.decode(framing.cobs_encode(truncated))
    with pytest.raises(framing.FrameError, match="shorter"):
        framing.decode(framing.cobs_encode(b"\x01\x02"))
    with pytest.raises(framing.FrameError, match="past the end"):
        framing.decode(b"\x09\x01")


def test_hello_descriptor_round_trip():
    ins = [P.TensorDesc("int8", (1, 49, 10, 1), 490)]
    outs = [P.TensorDesc("int8", (1, 12), 12), P.TensorDesc("float32", (3,), 12)]
    digest = "ab" * 32
    payload = P.HELLO_FIXED.pack(1, 1024, 16000, 25_000_000, P.Timer.SYSTICK, 1, 2, 0, 12) + \
        P.model_desc(digest, ins, outs)
    h = P.parse_hello(payload)
    assert (h.version, h.arena_bytes, h.clock_hz, h.timer, h.num_layers) == (1, 16000, 25_000_000, P.Timer.SYSTICK, 12)
    assert h.model_hash == digest and h.inputs == tuple(ins) and h.outputs == tuple(outs)
    with pytest.raises(ValueError):
        P.parse_hello(payload[:-3])
