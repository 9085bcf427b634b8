"""A protocol session with one board: request/response with sequence numbers, the HELLO
handshake checked against a build, and whole-tensor input/output in frame-sized chunks.

It survives a faulty link (edgert.device.protocol, "Faults"): a request whose reply is lost,
damaged or late is sent again unchanged, up to ``tries`` times, each try waiting twice as
long as the one before, within the request's time budget; a connection that drops is opened
again; a board that restarted is handshaken again and the sample redone. ``stats`` counts
what it survived."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgert.errors import DeviceError, UserError

from . import framing, protocol as P
from .transport import LinkLost, Transport, hexdump

DEFAULT_TIMEOUT = 10.0          # seconds a request may take, all its tries together (but INVOKE)
DEFAULT_INVOKE_TIMEOUT = 120.0  # one inference of a large model on the emulator takes seconds
DEFAULT_TRIES = 6               # sends of one request before the link is declared broken
# The first wait for a reply, beyond the bytes' time on the wire: a round trip over USB or
# loopback is well under a millisecond, and this leaves room for a busy host or emulator (a
# retry that was not needed costs one duplicate reply, which the session drops).
FIRST_WAIT = 0.25
INVOKE_MARGIN = 4.0             # after the first inference, INVOKE's first wait is 4x the slowest seen
RESTARTS_PER_SAMPLE = 3         # board restarts survived within one sample


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
        elif err in P.LINK_ERRORS:
            hint = LINK_HINT
        elif err is P.Err.STALE:
            hint = "another program talked to the board since this session's handshake: close it and retry"
        else:
            hint = ("check that the board runs this build (`edgert flash BUILD`) and that edgert and "
                    "the firmware are the same version")
        super().__init__(f"the board rejected {req}: {text} (detail {detail})", hint)
        self.code, self.request, self.detail = err if err is not None else code, request, detail


class BoardRestarted(DeviceError):
    """The board answered NOT_SYNCED: it restarted since the handshake."""


NO_ANSWER_HINT = ("check that the board is running edgert firmware (`edgert flash BUILD`), or raise --timeout")
LINK_HINT = ("the link damaged frames: lower the baud rate, use a shorter or shielded cable, or check "
             "the ground connection; --trace shows the bytes")


@dataclass
class InvokeResult:
    outputs: list[np.ndarray]
    ticks: int
    layer_ticks: list[int] | None = None  # with profile=True


@dataclass
class LinkStats:
    """What a session survived."""

    retries: int = 0        # requests sent again
    damaged: int = 0        # damaged frames received, or reported by the board
    timeouts: int = 0       # tries that got no reply in time
    stale: int = 0          # replies to an earlier try or request, dropped
    reconnects: int = 0     # connections opened again
    restarts: int = 0       # board restarts (NOT_SYNCED), each followed by a new handshake
    events: list[str] = field(default_factory=list)  # one line each, for --trace and reports

    def summary(self) -> dict[str, int]:
        return {"retries": self.retries, "damaged frames": self.damaged, "timeouts": self.timeouts,
                "stale replies": self.stale, "reconnects": self.reconnects, "restarts": self.restarts}


class _Retry(Exception):
    """This try failed in a way another try may fix; the message says how."""


class Session:
    def __init__(self, transport: Transport, *, timeout: float = DEFAULT_TIMEOUT,
                 invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT, tries: int = DEFAULT_TRIES,
                 trace: bool = False, name: str = "the board"):
        if not timeout > 0 or not invoke_timeout > 0:
            raise UserError(f"timeouts must be positive seconds, got {timeout:g} and {invoke_timeout:g}",
                            "pass --timeout SECONDS")
        self.t = transport
        self.timeout = timeout
        self.invoke_timeout = invoke_timeout
        self.tries = max(1, tries)
        self.trace = trace
        self.name = name
        self.stats = LinkStats()
        self._seq = 0
        self._pending = bytearray()
        self._slowest_invoke: float | None = None
        self._model_hash: str | None = None
        self.hello: P.Hello | None = None
        self.t.write(b"\x00")  # flush whatever half frame the board holds

    # ---------------------------------------------------------------- frames

    def send_raw(self, data: bytes) -> None:
        if self.trace:
            hexdump("->", data)
        self.t.write(data)

    def read_frame(self, timeout: float, waiting_for: str = "") -> framing.Frame:
        """The next frame from the board; DeviceError if none arrives in ``timeout`` seconds
        (``waiting_for`` names the request in that message) or if it is damaged."""
        try:
            return self._next_frame(time.monotonic() + timeout)
        except framing.FrameError as e:
            raise DeviceError(f"a damaged frame from {self.name}: {e}", LINK_HINT) from None
        except TimeoutError:
            raise DeviceError(f"{self.name} did not answer{' ' + waiting_for if waiting_for else ''} "
                              f"within {timeout:g} s", NO_ANSWER_HINT) from None

    def _next_frame(self, deadline: float) -> framing.Frame:
        """The next frame; FrameError if damaged, TimeoutError at ``deadline``."""
        while True:
            end = self._pending.find(b"\x00")
            if end >= 0:
                raw = bytes(self._pending[:end])
                del self._pending[:end + 1]
                if not raw:
                    continue
                if self.trace:
                    hexdump("<-", raw + b"\x00")
                return framing.decode(raw)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._pending += self.t.read(4096, min(left, 0.5))

    def _note(self, event: str) -> None:
        self.stats.events.append(event)
        if self.trace:
            hexdump("!!", event.encode())

    def _wire_seconds(self, nbytes: int) -> float:
        return nbytes * 10 / self.t.baudrate if self.t.baudrate else 0.0  # 8N1: 10 bits a byte

    def _next_seq(self) -> int:
        self._seq = self._seq % P.SEQ_MAX + 1  # 1..65535: 0 is the board's "could not read the seq"
        return self._seq

    def request(self, cmd: P.Cmd, payload: bytes = b"", timeout: float | None = None,
                reply_bytes: int = P.MAX_ENCODED) -> bytes:
        """Send one request and return its reply's payload, surviving link faults: see the
        module's docstring. ``timeout``: seconds for all tries together (default: the
        session's; INVOKE: the invoke timeout). ``reply_bytes``: how long the reply can be,
        for the time it takes on the wire. Raises ProtocolError for a refusal, BoardRestarted
        for NOT_SYNCED, DeviceError when the tries or the time run out."""
        seq = self._next_seq()
        wire = framing.encode(cmd, seq, payload)
        invoke = cmd is P.Cmd.INVOKE
        budget = (self.invoke_timeout if invoke else self.timeout) if timeout is None else timeout
        deadline = time.monotonic() + budget
        wait = FIRST_WAIT + self._wire_seconds(len(wire) + reply_bytes)
        if invoke:  # the first inference is given the whole budget: its duration is unknown
            wait = budget if self._slowest_invoke is None else wait + INVOKE_MARGIN * self._slowest_invoke
        problems: list[str] = []
        for attempt in range(self.tries):
            if attempt:
                self.stats.retries += 1
                self._note(f"{cmd.name} #{seq}: try {attempt + 1} after {problems[-1]}")
            sent = time.monotonic()
            try:
                self._send(wire, deadline)
                payload = self._await(cmd, seq, min(sent + wait, deadline))
            except _Retry as r:
                problems.append(str(r))
                if time.monotonic() >= deadline:
                    break
                wait *= 2
                continue
            if invoke:
                took = time.monotonic() - sent
                self._slowest_invoke = max(self._slowest_invoke or 0.0, took)
            return payload
        raise self._gave_up(cmd, seq, budget, problems)

    def _gave_up(self, cmd: P.Cmd, seq: int, budget: float, problems: list[str]) -> DeviceError:
        tries = len(problems)
        if all(p.startswith("no reply") for p in problems):
            if tries == 1:
                return DeviceError(f"{self.name} did not answer {cmd.name} within {budget:g} s", NO_ANSWER_HINT)
            return DeviceError(f"{self.name} did not answer {cmd.name} within {budget:g} s ({tries} tries)",
                               NO_ANSWER_HINT)
        return DeviceError(f"{cmd.name} #{seq} to {self.name} failed {tries} times in {budget:g} s: "
                           f"{'; '.join(dict.fromkeys(problems))}", LINK_HINT)

    def _send(self, wire: bytes, deadline: float) -> None:
        try:
            self.send_raw(wire)
        except LinkLost as e:
            self._reconnect(e, deadline)
            self.send_raw(wire)

    def _reconnect(self, lost: LinkLost, deadline: float) -> None:
        """Open the link again, until ``deadline``; re-raise ``lost`` where it cannot be."""
        self._pending.clear()
        while True:
            if self.t.reopen():
                self.stats.reconnects += 1
                self._note(f"reconnected after: {lost.message}")
                self.t.write(b"\x00")
                return
            if time.monotonic() + 0.2 >= deadline or type(self.t).reopen is Transport.reopen:
                raise DeviceError(f"lost the link to {self.name}: {lost.message}",
                                  "the board or its emulator stopped or was unplugged; start it again "
                                  "(`edgert flash BUILD`), and continue a validation with --resume") from None
            time.sleep(0.2)

    def _await(self, cmd: P.Cmd, seq: int, until: float) -> bytes:
        """The payload of the reply to (cmd, seq); _Retry when this try is lost."""
        while True:
            try:
                f = self._next_frame(until)
            except TimeoutError:
                self.stats.timeouts += 1
                raise _Retry("no reply in time") from None
            except framing.FrameError as e:
                self.stats.damaged += 1
                raise _Retry(f"a damaged reply ({e})") from None
            except LinkLost as e:
                self._reconnect(e, until + self.timeout)
                raise _Retry(f"the connection dropped ({e.message})") from None
            if f.cmd == P.Cmd.ERROR:
                code, req, detail = P.ERROR_PAYLOAD.unpack_from(f.payload.ljust(P.ERROR_PAYLOAD.size, b"\0"))
                if code in P.LINK_ERRORS:
                    self.stats.damaged += 1
                    raise _Retry(f"the board received a damaged frame ({P.Err(code).name})")
                if f.seq != seq:
                    self.stats.stale += 1
                    continue
                if code == P.Err.NOT_SYNCED:
                    raise BoardRestarted(f"{self.name} restarted (it answered {cmd.name} with NOT_SYNCED)",
                                         "a reset, a brown-out or a watchdog: check the board's power")
                raise ProtocolError(code, req, detail)
            if f.seq != seq or f.cmd != cmd | P.REPLY_BIT:
                self.stats.stale += 1  # the duplicate of an earlier reply
                continue
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
        if self._model_hash is not None and hello.model_hash != self._model_hash:
            raise DeviceError(
                f"{self.name} runs a different model (hash {hello.model_hash[:12]}…, this build "
                f"{self._model_hash[:12]}…)", "flash this build first: `edgert flash BUILD --port ...`")
        self.hello = hello
        return hello

    def check_build(self, meta: dict) -> P.Hello:
        """Handshake and check the board runs the model of this build (by hash); every later
        handshake (after a restart) checks it again."""
        self._model_hash = meta["model_hash"]
        return self.handshake()

    def set_input(self, index: int, data: bytes) -> None:
        chunk = min(P.DATA_CHUNK, self.hello.max_payload - P.SET_INPUT_REQ.size) if self.hello else P.DATA_CHUNK
        for off in range(0, max(len(data), 1), chunk):
            self.request(P.Cmd.SET_INPUT, P.SET_INPUT_REQ.pack(index, off) + data[off:off + chunk],
                         reply_bytes=_REPLY_OVERHEAD)

    def invoke(self, profile: bool = False) -> int:
        """Runs one inference; returns its duration in timer ticks."""
        payload = self.request(P.Cmd.INVOKE, P.INVOKE_REQ.pack(P.INVOKE_PROFILE if profile else 0),
                               reply_bytes=_REPLY_OVERHEAD + P.INVOKE_REPLY.size)
        _, ticks = P.INVOKE_REPLY.unpack(payload)
        return ticks

    def get_output(self, index: int, nbytes: int) -> bytes:
        chunk = self.hello.max_payload if self.hello else P.MAX_PAYLOAD
        out = bytearray()
        for off in range(0, nbytes, chunk):
            n = min(chunk, nbytes - off)
            out += self.request(P.Cmd.GET_OUTPUT, P.GET_OUTPUT_REQ.pack(index, n, off),
                                reply_bytes=_REPLY_OVERHEAD + n + n // 254 + 1)
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
        """Set every input, invoke, read every output (and with ``profile`` every layer's
        ticks). The inputs are checked against the board's own description of its model
        (HELLO) before anything is sent: a wrong count, dtype or size is a UserError naming
        the input, and the board is left as it was. A board that restarts meanwhile is
        handshaken again and the whole sample redone, up to RESTARTS_PER_SAMPLE times."""
        if self.hello is not None:
            check_inputs(self.hello.inputs, inputs)
        for restart in range(RESTARTS_PER_SAMPLE + 1):
            try:
                return self._run_once(inputs, output_specs, profile)
            except BoardRestarted as e:
                if restart == RESTARTS_PER_SAMPLE:
                    raise DeviceError(f"{self.name} restarted {restart + 1} times during one sample",
                                      e.hint) from None
                self.stats.restarts += 1
                self._note(f"{e.message}: handshaking again and redoing the sample")
                self.handshake()
        raise AssertionError("unreachable")

    def _run_once(self, inputs, output_specs, profile: bool) -> InvokeResult:
        for i, x in enumerate(inputs):
            self.set_input(i, np.ascontiguousarray(x).tobytes())
        ticks = self.invoke(profile)
        outs = []
        for i, spec in enumerate(output_specs):
            dt = np.dtype(spec["dtype"])
            n = int(np.prod(spec["shape"], dtype=np.int64)) * dt.itemsize
            outs.append(np.frombuffer(self.get_output(i, n), dtype=dt).reshape(spec["shape"]))
        layers = self.layer_ticks(self.hello.num_layers) if profile and self.hello else None
        return InvokeResult(outs, ticks, layers)

    def close(self) -> None:
        self.t.close()


# A reply's bytes besides its payload: header, CRC, COBS overhead and delimiter.
_REPLY_OVERHEAD = P.HEADER.size + P.CRC_BYTES + 2


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
