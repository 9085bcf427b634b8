"""A protocol session with one board: request/response with sequence numbers, the HELLO
handshake checked against a build, and whole-tensor input/output in frame-sized chunks."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgert.errors import DeviceError, UserError

from . import framing, protocol as P
from .transport import Transport, hexdump

DEFAULT_TIMEOUT = 5.0          # seconds for a reply to any request but INVOKE
DEFAULT_INVOKE_TIMEOUT = 120.0  # one inference of a large model on the emulator takes seconds


class ProtocolError(DeviceError):
    """The board answered a request with an ERROR frame."""

    def __init__(self, code: int, request: int, detail: int):
        try:
            err = P.Err(code)
            text = f"{err.name}: {P.ERROR_TEXT[err]}"
        except ValueError:
            err, text = None, f"unknown error code {code}"
        try:
            req = P.Cmd(request).name
        except ValueError:
            req = f"0x{request:02x}"
        if err is P.Err.INVOKE_FAILED:
            hint = ("the model itself failed; a Linux runner prints why on its stderr (a Jetson runner: the CUDA "
                    "error, or that there is no GPU driver: detail 65537)")
        else:
            hint = ("check that the board runs this build (`edgert flash BUILD`) and that edgert and "
                    "the firmware are the same version")
        super().__init__(f"the board rejected {req}: {text} (detail {detail})", hint)
        self.code, self.request, self.detail = err if err is not None else code, request, detail


@dataclass
class InvokeResult:
    outputs: list[np.ndarray]
    ticks: int


class Session:
    def __init__(self, transport: Transport, *, timeout: float = DEFAULT_TIMEOUT,
                 invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT, trace: bool = False, name: str = "the board"):
        self.t = transport
        self.timeout = timeout
        self.invoke_timeout = invoke_timeout
        self.trace = trace
        self.name = name
        self._seq = 0
        self._pending = bytearray()
        self.hello: P.Hello | None = None
        self.t.write(b"\x00")  # flush whatever half frame the board holds

    # ---------------------------------------------------------------- frames

    def send_raw(self, data: bytes) -> None:
        if self.trace:
            hexdump("->", data)
        self.t.write(data)

    def read_frame(self, timeout: float, waiting_for: str = "") -> framing.Frame:
        """The next frame from the board; DeviceError if none arrives in ``timeout`` seconds
        (``waiting_for`` names the request in that message)."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._pending.find(b"\x00")
            if end >= 0:
                raw = bytes(self._pending[:end])
                del self._pending[:end + 1]
                if not raw:
                    continue
                if self.trace:
                    hexdump("<-", raw + b"\x00")
                try:
                    return framing.decode(raw)
                except framing.FrameError as e:
                    raise DeviceError(f"a damaged frame from {self.name}: {e}",
                                      "check the baud rate and cable; --trace shows the bytes") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(f"{self.name} did not answer{' ' + waiting_for if waiting_for else ''} "
                                  f"within {timeout:g} s",
                                  "check that the board is running edgert firmware (`edgert flash BUILD`), "
                                  "or raise --timeout")
            self._pending += self.t.read(4096, min(left, 0.5))

    def request(self, cmd: P.Cmd, payload: bytes = b"", timeout: float | None = None) -> bytes:
        self._seq = (self._seq + 1) & 0xFF
        self.send_raw(framing.encode(cmd, self._seq, payload))
        f = self.read_frame(self.timeout if timeout is None else timeout, cmd.name)
        if f.cmd == P.Cmd.ERROR:
            code, req, detail = P.ERROR_PAYLOAD.unpack_from(f.payload.ljust(P.ERROR_PAYLOAD.size, b"\0"))
            raise ProtocolError(code, req, detail)
        if f.cmd != cmd | P.REPLY_BIT or f.seq != self._seq:
            raise DeviceError(f"{self.name} answered {cmd.name} #{self._seq} with command 0x{f.cmd:02x} #{f.seq}",
                              "another program may be talking to the board; close it and retry")
        return f.payload

    # ---------------------------------------------------------------- commands

    def handshake(self) -> P.Hello:
        payload = self.request(P.Cmd.HELLO, P.HELLO_REQ.pack(P.PROTOCOL_VERSION))
        try:
            hello = P.parse_hello(payload)
        except ValueError as e:
            raise DeviceError(f"{self.name} sent a malformed HELLO reply: {e}", "reflash the board") from None
        if hello.version != P.PROTOCOL_VERSION:
            raise DeviceError(f"{self.name} speaks protocol version {hello.version}, this edgert speaks "
                              f"{P.PROTOCOL_VERSION}", "rebuild and reflash the firmware with this edgert")
        self.hello = hello
        return hello

    def check_build(self, meta: dict) -> P.Hello:
        """Handshake and check the board runs the model of this build (by hash)."""
        hello = self.handshake()
        if hello.model_hash != meta["model_hash"]:
            raise DeviceError(
                f"{self.name} runs a different model (hash {hello.model_hash[:12]}…, this build "
                f"{meta['model_hash'][:12]}…)", "flash this build first: `edgert flash BUILD --port ...`")
        return hello

    def set_input(self, index: int, data: bytes) -> None:
        chunk = min(P.DATA_CHUNK, self.hello.max_payload - P.SET_INPUT_REQ.size) if self.hello else P.DATA_CHUNK
        for off in range(0, max(len(data), 1), chunk):
            self.request(P.Cmd.SET_INPUT, P.SET_INPUT_REQ.pack(index, off) + data[off:off + chunk])

    def invoke(self, profile: bool = False) -> int:
        """Runs one inference; returns its duration in timer ticks."""
        payload = self.request(P.Cmd.INVOKE, P.INVOKE_REQ.pack(P.INVOKE_PROFILE if profile else 0),
                               timeout=self.invoke_timeout)
        _, ticks = P.INVOKE_REPLY.unpack(payload)
        return ticks

    def get_output(self, index: int, nbytes: int) -> bytes:
        chunk = self.hello.max_payload if self.hello else P.MAX_PAYLOAD
        out = bytearray()
        for off in range(0, nbytes, chunk):
            out += self.request(P.Cmd.GET_OUTPUT, P.GET_OUTPUT_REQ.pack(index, min(chunk, nbytes - off), off))
        return bytes(out)

    def layer_ticks(self, num_layers: int) -> list[int]:
        per = (P.MAX_PAYLOAD - P.GET_LAYERS_REPLY.size) // 4
        ticks: list[int] = []
        for first in range(0, num_layers, per):
            count = min(per, num_layers - first)
            payload = self.request(P.Cmd.GET_LAYERS, P.GET_LAYERS_REQ.pack(first, count))
            ticks += np.frombuffer(payload[P.GET_LAYERS_REPLY.size:], dtype="<u4").tolist()
        return ticks

    def run(self, inputs: list[np.ndarray], output_specs: list[dict], *, profile: bool = False) -> InvokeResult:
        """Set every input, invoke, read every output. The inputs are checked against the
        board's own description of its model (HELLO) before anything is sent: a wrong count,
        dtype or size is a UserError naming the input, and the board is left as it was."""
        if self.hello is not None:
            check_inputs(self.hello.inputs, inputs)
        for i, x in enumerate(inputs):
            self.set_input(i, np.ascontiguousarray(x).tobytes())
        ticks = self.invoke(profile)
        outs = []
        for i, spec in enumerate(output_specs):
            dt = np.dtype(spec["dtype"])
            n = int(np.prod(spec["shape"], dtype=np.int64)) * dt.itemsize
            outs.append(np.frombuffer(self.get_output(i, n), dtype=dt).reshape(spec["shape"]))
        return InvokeResult(outs, ticks)

    def close(self) -> None:
        self.t.close()


def check_inputs(descs, inputs: list[np.ndarray]) -> None:
    """Raise UserError unless ``inputs`` match the board's input descriptions one to one in
    dtype and number of values (the layout is the model's; any shape of that size is read as it)."""
    if len(inputs) != len(descs):
        raise UserError(f"the board's model takes {len(descs)} input(s), got {len(inputs)}", "pass one array per input")
    for i, (d, x) in enumerate(zip(descs, inputs)):
        x = np.asarray(x)
        want = f"{d.dtype}[{'x'.join(map(str, d.shape))}]"
        got = f"{x.dtype.name}[{'x'.join(map(str, x.shape))}]"
        count = int(np.prod(d.shape, dtype=np.int64))
        if x.dtype.name != d.dtype:
            hint = (f"quantize it first (edgert validate --dataset does: x / scale + zero point, rounded)"
                    if x.dtype.kind == "f" and d.dtype.startswith(("int", "uint")) else f"convert it to {d.dtype}")
            raise UserError(f"input {i}: the board's model takes {want}, got {got}", hint)
        if x.size != count:
            raise UserError(f"input {i}: the board's model takes {want} ({count} values), got {got} ({x.size} values)",
                            "reshape the array to the model's input shape")
