"""Frames on the wire (pure functions, no I/O): header + payload + CRC-32, COBS-encoded,
terminated by 0x00. The layout is documented in edgert.device.protocol."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from .protocol import CRC_BYTES, HEADER, SEQ_MAX


class FrameError(ValueError):
    """A frame that cannot be decoded; the message says why."""


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): no 0x00 in the result."""
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b:
            out.append(b)
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("0x00 inside a COBS block")
        end = i + code
        if end > n:
            raise FrameError("COBS block runs past the end of the frame")
        block = data[i + 1:end]
        if 0 in block:
            raise FrameError("0x00 inside a COBS block")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes to send for one frame, delimiter included."""
    body = HEADER.pack(cmd, seq & SEQ_MAX, len(payload)) + payload
    return cobs_encode(body + crc32(body).to_bytes(CRC_BYTES, "little")) + b"\x00"


@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes


def decode(encoded: bytes) -> Frame:
    """Decode one frame (without its 0x00 delimiter); raises FrameError if it is damaged."""
    raw = cobs_decode(encoded)
    if len(raw) < HEADER.size + CRC_BYTES:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than header and CRC")
    body, crc = raw[:-CRC_BYTES], int.from_bytes(raw[-CRC_BYTES:], "little")
    if crc32(body) != crc:
        raise FrameError(f"CRC mismatch (received 0x{crc:08x}, computed 0x{crc32(body):08x})")
    cmd, seq, length = HEADER.unpack_from(body)
    payload = body[HEADER.size:]
    if len(payload) != length:
        raise FrameError(f"length field says {length} payload bytes, frame holds {len(payload)}")
    return Frame(cmd, seq, payload)
