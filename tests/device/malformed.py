"""Malformed traffic every edgert device must survive, shared by the host-firmware and the
emulated-board tests: each entry is (bytes to send, the error code the device must answer)."""
from __future__ import annotations

from edgert.device import framing, protocol as P


def _frame_with_length(cmd: int, length_field: int, payload: bytes) -> bytes:
    body = P.HEADER.pack(cmd, 9, length_field) + payload
    return framing.cobs_encode(body + framing.crc32(body).to_bytes(4, "little")) + b"\x00"


def _bad_crc() -> bytes:
    raw = bytearray(framing.cobs_decode(framing.encode(P.Cmd.HELLO, 3, b"\x01\x00")[:-1]))
    raw[-2] ^= 0x55
    return framing.cobs_encode(bytes(raw)) + b"\x00"


CASES = {
    "garbage": (b"\x13\x37garbage\xfe\xfe\x01" + b"\x00", (P.Err.BAD_FRAME, P.Err.BAD_CRC)),
    "bad COBS": (b"\x09\x01\x02\x00", (P.Err.BAD_FRAME,)),
    "too short": (framing.cobs_encode(b"\x01\x02\x03") + b"\x00", (P.Err.BAD_FRAME,)),
    "wrong CRC": (_bad_crc(), (P.Err.BAD_CRC,)),
    "truncated": (_frame_with_length(P.Cmd.SET_INPUT, 200, b"\x00" * 8), (P.Err.BAD_LENGTH,)),
    "oversized": (b"\x7f" * (P.MAX_ENCODED + 500) + b"\x00", (P.Err.TOO_LONG,)),
    "oversized decoded": (framing.encode(P.Cmd.SET_INPUT, 4, b"\x01" * (P.MAX_PAYLOAD + 1)), (P.Err.TOO_LONG,)),
    "unknown command": (framing.encode(0x42, 5, b""), (P.Err.UNKNOWN_CMD,)),
    "input index out of range": (framing.encode(P.Cmd.SET_INPUT, 6, P.SET_INPUT_REQ.pack(9, 0) + b"\x01"),
                                 (P.Err.BAD_ARG,)),
    "input offset out of range": (framing.encode(P.Cmd.SET_INPUT, 6, P.SET_INPUT_REQ.pack(0, 1 << 20) + b"\x01"),
                                  (P.Err.BAD_ARG,)),
    "output read past the end": (framing.encode(P.Cmd.GET_OUTPUT, 7, P.GET_OUTPUT_REQ.pack(0, 512, 0)),
                                 (P.Err.BAD_ARG,)),
    "layers before a profile": (framing.encode(P.Cmd.GET_LAYERS, 8, P.GET_LAYERS_REQ.pack(0, 1)),
                                (P.Err.NO_PROFILE,)),
    "invoke with a bad payload": (framing.encode(P.Cmd.INVOKE, 8, b"\x00\x00\x00"), (P.Err.BAD_ARG,)),
}


def expect_error(session, wire: bytes, codes) -> P.Err:
    """Send raw bytes; the device must answer with one ERROR frame carrying one of ``codes``."""
    session.send_raw(wire)
    f = session.read_frame(10.0)
    assert f.cmd == P.Cmd.ERROR, f"expected an ERROR frame, got command 0x{f.cmd:02x}"
    code = P.Err(P.ERROR_PAYLOAD.unpack(f.payload)[0])
    assert code in codes, f"expected {[c.name for c in codes]}, got {code.name}"
    return code
