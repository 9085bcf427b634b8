"""The serial protocol between the host tool and a board: the one source of truth.

Everything both sides must agree on is defined here; ``c_header()`` generates
firmware/runtime/edgert_protocol.h from it (tests check the committed header is current).
Regenerate with ``python -m edgert.device.protocol > firmware/runtime/edgert_protocol.h``.

Wire format. A frame, before encoding, is

    u8 cmd | u16 seq | u16 payload length N | N payload bytes | u32 CRC-32 of all before it

all little-endian; CRC-32 is IEEE 802.3 (zlib.crc32). The frame is COBS-encoded and ends
with one 0x00 byte, so a receiver always resynchronises at the next 0x00, whatever garbage
came before. An empty frame (0x00 alone) is ignored: the host sends one to flush a
half-received frame before a session.

The host sends requests; the device answers each with exactly one frame: ``cmd | 0x80``
with the same seq on success, or ERROR (with the request's seq when it could be read) whose
payload is ``u8 code | u8 request cmd | u16 0 | u32 detail``. The device never sends
anything unasked.

Faults. The host numbers its requests 1..65535 (0 is never sent: an ERROR with seq 0 is
about a frame the device could not read) and has one request outstanding at a time. Sixteen
bits, because a copy of a frame that a link delays (a USB or TCP buffer, a serial server)
must not come back with the number of a current request: at the fastest rate a host sends
requests, 65,535 of them take minutes, 255 took under a second. A request
whose reply is damaged, lost or late is sent again unchanged; the device keeps the reply to
the last request it executed and answers a request with the same command, seq and CRC from
it, without executing it again (every request is safe to retry). A request numbered before
the last one executed (within 32,767: a delayed copy the host has moved past) is answered STALE
and not executed; HELLO starts a new numbering. After it starts (power-on
or reset) the device answers every request but HELLO with NOT_SYNCED: a host that sees it
knows the board restarted, handshakes again (model hash checked) and redoes the whole
sample, instead of reading outputs computed from an arena the reset emptied.
"""
from __future__ import annotations

import enum
import struct
import sys
from dataclasses import dataclass

PROTOCOL_VERSION = 3
MAX_PAYLOAD = 1024           # bytes of payload in one frame, either direction
HEADER = struct.Struct("<BHH")  # cmd, seq, payload length
SEQ_MAX = 0xFFFF
CRC_BYTES = 4
MAX_FRAME = HEADER.size + MAX_PAYLOAD + CRC_BYTES
# COBS adds one byte per 254 and the delimiter: the size of the device's receive buffer.
MAX_ENCODED = MAX_FRAME + (MAX_FRAME + 253) // 254 + 1
REPLY_BIT = 0x80
HASH_BYTES = 32              # sha256 of the model (EDGERT_MODEL_HASH)


class Cmd(enum.IntEnum):
    """Requests. Payload layouts are the structs below; replies are ``cmd | REPLY_BIT``."""

    HELLO = 0x01       # u16 host protocol version -> HelloReply
    SET_INPUT = 0x02   # u8 input, u8 0, u16 0, u32 offset, data -> empty
    INVOKE = 0x03      # u8 flags (INVOKE_PROFILE) -> i32 status, u32 0, u64 ticks
    GET_OUTPUT = 0x04  # u8 output, u8 0, u16 length, u32 offset -> data
    GET_LAYERS = 0x05  # u16 first layer, u16 count -> u16 first, u16 count, u32 ticks[count]
    ERROR = 0x7F       # device -> host only: u8 code, u8 request cmd, u16 0, u32 detail


INVOKE_PROFILE = 0x01  # INVOKE flag: time every layer (read them with GET_LAYERS)


class Err(enum.IntEnum):
    """Error codes of an ERROR frame. ``detail`` is described per code."""

    BAD_FRAME = 1      # COBS decoding failed or the frame is shorter than header + CRC; detail: frame bytes
    BAD_CRC = 2        # CRC-32 mismatch; detail: the CRC the device computed
    BAD_LENGTH = 3     # length field disagrees with the bytes received (truncated frame); detail: bytes of payload received
    TOO_LONG = 4       # frame exceeded the device's buffer before its delimiter; detail: MAX_PAYLOAD
    UNKNOWN_CMD = 5    # no such command; detail: the command byte
    BAD_ARG = 6        # index, offset or length out of range, or payload of the wrong size; detail: the limit it broke
    INVOKE_FAILED = 7  # the model returned non-zero; detail: its status
    NO_PROFILE = 8     # GET_LAYERS before an INVOKE with INVOKE_PROFILE; detail: 0
    NOT_SYNCED = 9     # a request other than HELLO since the device started (it was reset); detail: 0
    STALE = 10         # a request numbered before the last one executed (a delayed copy): not run; detail: that seq


# Errors that say the request was damaged on the way, not refused: the host sends it again.
LINK_ERRORS = frozenset({Err.BAD_FRAME, Err.BAD_CRC, Err.BAD_LENGTH, Err.TOO_LONG})


ERROR_TEXT = {
    Err.BAD_FRAME: "the device could not decode the frame",
    Err.BAD_CRC: "the frame's CRC did not match",
    Err.BAD_LENGTH: "the frame's length field disagrees with its size (truncated)",
    Err.TOO_LONG: "the frame is longer than the device accepts",
    Err.UNKNOWN_CMD: "the device does not know the command",
    Err.BAD_ARG: "an index, offset or length is out of range",
    Err.INVOKE_FAILED: "the model's invoke returned an error",
    Err.NO_PROFILE: "no profiled inference has run yet",
    Err.NOT_SYNCED: "the device has restarted since the last HELLO",
    Err.STALE: "the request is older than the last one the device executed, and was not run",
}


class Timer(enum.IntEnum):
    """What the device's tick counter counts."""

    CYCLES = 1   # DWT CYCCNT: core clock cycles
    SYSTICK = 2  # SysTick on the core clock: cycles on hardware, clock_hz ticks a second on the emulator
    HOST = 3     # a host build or a Linux runner: nanoseconds
    INSTRUCTIONS = 4  # a Linux runner under user-mode QEMU: executed instructions, counted by the emulator


class DType(enum.IntEnum):
    INT8 = 1
    UINT8 = 2
    INT16 = 3
    INT32 = 4
    FLOAT32 = 5


DTYPE_NAMES = {DType.INT8: "int8", DType.UINT8: "uint8", DType.INT16: "int16", DType.INT32: "int32",
               DType.FLOAT32: "float32"}
DTYPE_CODES = {v: k for k, v in DTYPE_NAMES.items()}

# Payload structs (all little-endian).
HELLO_REQ = struct.Struct("<H")
HELLO_FIXED = struct.Struct("<HHIIBBBBH2x")  # version, max payload, arena, clock_hz, timer, n_in, n_out, 0, layers
SET_INPUT_REQ = struct.Struct("<BxxxI")      # followed by data
INVOKE_REQ = struct.Struct("<B")
INVOKE_REPLY = struct.Struct("<i4xQ")
GET_OUTPUT_REQ = struct.Struct("<BxHI")
GET_LAYERS_REQ = struct.Struct("<HH")
GET_LAYERS_REPLY = struct.Struct("<HH")      # followed by u32 ticks[count]
ERROR_PAYLOAD = struct.Struct("<BBxxI")
TENSOR_DESC = struct.Struct("<BB2xI")        # dtype, rank, 0, bytes; followed by u32 dims[rank]
# HELLO reply: HELLO_FIXED, model hash (HASH_BYTES), then the model descriptor: one
# TENSOR_DESC (+dims) per input then per output. The firmware sends the descriptor bytes
# that model_desc() generated at build time.
DATA_CHUNK = MAX_PAYLOAD - SET_INPUT_REQ.size  # input bytes per SET_INPUT frame


@dataclass(frozen=True)
class TensorDesc:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    def pack(self) -> bytes:
        return TENSOR_DESC.pack(DTYPE_CODES[self.dtype], len(self.shape), self.nbytes) + \
            struct.pack(f"<{len(self.shape)}I", *self.shape)


@dataclass(frozen=True)
class Hello:
    version: int
    max_payload: int
    arena_bytes: int
    clock_hz: int
    timer: Timer
    num_layers: int
    model_hash: str
    inputs: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]


def model_desc(model_hash: str, inputs: list[TensorDesc], outputs: list[TensorDesc]) -> bytes:
    """The bytes the firmware appends to HELLO_FIXED in its HELLO reply."""
    return bytes.fromhex(model_hash) + b"".join(t.pack() for t in [*inputs, *outputs])


def parse_hello(payload: bytes) -> Hello:
    """Raises ValueError on a malformed reply (the session turns it into a DeviceError)."""
    if len(payload) < HELLO_FIXED.size + HASH_BYTES:
        raise ValueError(f"HELLO reply of {len(payload)} bytes, expected at least {HELLO_FIXED.size + HASH_BYTES}")
    version, max_payload, arena, clock, timer, n_in, n_out, _, layers = HELLO_FIXED.unpack_from(payload)
    pos = HELLO_FIXED.size
    digest = payload[pos:pos + HASH_BYTES].hex()
    pos += HASH_BYTES
    tensors = []
    for _ in range(n_in + n_out):
        if pos + TENSOR_DESC.size > len(payload):
            raise ValueError("HELLO reply ends inside a tensor descriptor")
        code, rank, nbytes = TENSOR_DESC.unpack_from(payload, pos)
        pos += TENSOR_DESC.size
        if pos + 4 * rank > len(payload):
            raise ValueError("HELLO reply ends inside a tensor's dimensions")
        dims = struct.unpack_from(f"<{rank}I", payload, pos)
        pos += 4 * rank
        if code not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype code {code} in the HELLO reply")
        tensors.append(TensorDesc(DTYPE_NAMES[DType(code)], tuple(dims), nbytes))
    return Hello(version, max_payload, arena, clock, Timer(timer), layers, digest,
                 tuple(tensors[:n_in]), tuple(tensors[n_in:]))


def c_header() -> str:
    """firmware/runtime/edgert_protocol.h, generated from the definitions above."""
    out = [
        "/* Generated by `python -m edgert.device.protocol` from edgert/device/protocol.py.",
        " * Do not edit: change the Python and regenerate. The protocol is described there. */",
        "#ifndef EDGERT_PROTOCOL_H_",
        "#define EDGERT_PROTOCOL_H_",
        "",
        f"#define EDGERT_PROTOCOL_VERSION {PROTOCOL_VERSION}",
        f"#define EDGERT_MAX_PAYLOAD {MAX_PAYLOAD}",
        f"#define EDGERT_HEADER_BYTES {HEADER.size}",
        f"#define EDGERT_CRC_BYTES {CRC_BYTES}",
        f"#define EDGERT_MAX_FRAME {MAX_FRAME}",
        f"#define EDGERT_MAX_ENCODED {MAX_ENCODED}",
        f"#define EDGERT_REPLY_BIT 0x{REPLY_BIT:02X}",
        f"#define EDGERT_HASH_BYTES {HASH_BYTES}",
        f"#define EDGERT_INVOKE_PROFILE 0x{INVOKE_PROFILE:02X}",
        "",
    ]
    for c in Cmd:
        out.append(f"#define EDGERT_CMD_{c.name} 0x{c.value:02X}")
    out.append("")
    for e in Err:
        out.append(f"#define EDGERT_ERR_{e.name} {e.value}  /* {ERROR_TEXT[e]} */")
    out.append("")
    for t in Timer:
        out.append(f"#define EDGERT_TIMER_{t.name} {t.value}")
    out.append("")
    for d in DType:
        out.append(f"#define EDGERT_DTYPE_{d.name} {d.value}")
    out.append("")
    for name, s in (("HELLO_REQ", HELLO_REQ), ("HELLO_FIXED", HELLO_FIXED), ("SET_INPUT_REQ", SET_INPUT_REQ),
                    ("INVOKE_REQ", INVOKE_REQ), ("INVOKE_REPLY", INVOKE_REPLY), ("GET_OUTPUT_REQ", GET_OUTPUT_REQ),
                    ("GET_LAYERS_REQ", GET_LAYERS_REQ), ("GET_LAYERS_REPLY", GET_LAYERS_REPLY),
                    ("ERROR_PAYLOAD", ERROR_PAYLOAD), ("TENSOR_DESC", TENSOR_DESC)):
        out.append(f"#define EDGERT_{name}_BYTES {s.size}")
    out += ["", "#endif /* EDGERT_PROTOCOL_H_ */", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(c_header())
