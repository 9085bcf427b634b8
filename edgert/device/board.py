"""Reaching the board that runs a build: a port the user names, the emulated board that
`edgert flash` left running, or (for one command) an emulated board started just for it.

    with connect(build, port=None) as board:
        result = board.session.run(inputs, build.meta["io"]["outputs"])
        board.latency(result.ticks)   # -> (value, unit)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from edgert.errors import DeviceError, UserError

from . import emulator, protocol as P
from .session import DEFAULT_INVOKE_TIMEOUT, DEFAULT_TIMEOUT, Session
from .transport import open_transport


@dataclass
class Board:
    session: Session
    hello: P.Hello
    emulated: bool
    where: str  # the port or URL, for messages

    @property
    def unit(self) -> str:
        if self.hello.timer is P.Timer.HOST:
            return "ns"
        if self.hello.timer is P.Timer.INSTRUCTIONS:
            return "instructions"
        return "instructions" if self.emulated else "cycles"

    def latency(self, ticks: int) -> int:
        """Ticks in ``unit``. On the emulator (-icount shift=0) one instruction takes one
        nanosecond, so a SysTick tick at clock_hz is 1e9 / clock_hz instructions; on a real
        core SysTick and DWT both count core clock cycles."""
        if self.emulated and self.hello.timer is P.Timer.SYSTICK:
            return ticks * (1_000_000_000 // self.hello.clock_hz)
        return ticks


def firmware_path(build) -> Path:
    if build.target.kind != "cortex-m":
        raise UserError(f"{build.dir} was built for {build.meta['target']}, which has no firmware to flash",
                        "rebuild with --target cortex-m7 (see `edgert targets`)")
    elf = build.dir / build.meta["firmware"]
    if not elf.is_file():
        raise UserError(f"{elf} is missing", "rebuild: `edgert build MODEL --target ... -o DIR`")
    return elf


def start_emulated(build, *, detach: bool) -> emulator.RunningBoard:
    board = build.target.board
    if not board.emulated:
        raise UserError(f"board {board.name} is a real board, not an emulated one",
                        "pass --port with its serial port (see `edgert doctor`)")
    return emulator.start(build.dir, board.emulator, firmware_path(build), board.name, detach=detach)


@contextlib.contextmanager
def connect(build, port: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
            invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT, trace: bool = False) -> Iterator[Board]:
    """A session with a board running ``build``, its handshake checked against the build
    (protocol version, model hash). With no port: the emulated board `edgert flash` started
    for this build, or a new one for the duration of the block."""
    started = None
    if build.target.kind == "linux":
        from . import linux_board

        transport, emulated, where = linux_board.open_runner(build, port)
        session = Session(transport, timeout=timeout, invoke_timeout=invoke_timeout, trace=trace, name=where)
        try:
            yield Board(session, session.check_build(build.meta), emulated, where)
        finally:
            session.close()
        return
    if build.target.kind == "host":
        # The firmware built for this machine: same runtime and protocol, over stdin/stdout.
        from . import host_board

        if port is not None:
            raise UserError(f"{build.dir} is a host build; it runs here, not on a board at {port}",
                            "drop --port, or rebuild for a board target (--target cortex-m7)")
        session = Session(host_board.start(build.dir, build.meta), timeout=timeout, invoke_timeout=invoke_timeout,
                          trace=trace, name="the host firmware")
        try:
            yield Board(session, session.check_build(build.meta), False, "host")
        finally:
            session.close()
        return
    if port is None:
        firmware_path(build)
        running = emulator.running(build.dir)
        if running is None:
            running = started = start_emulated(build, detach=False)
        url, emulated = running.url, True
    else:
        url, emulated = port, False
    try:
        session = Session(open_transport(url), timeout=timeout, invoke_timeout=invoke_timeout, trace=trace,
                          name=f"the board at {url}" if not emulated else "the emulated board")
        try:
            hello = session.check_build(build.meta)
            yield Board(session, hello, emulated, url)
        finally:
            session.close()
    finally:
        if started is not None:
            emulator.stop(build.dir)


def flash(build, port: str | None = None, *, timeout: float = DEFAULT_TIMEOUT, trace: bool = False):
    """Put ``build`` on a board and check it answers with this model. With no port, start
    the emulated board (it keeps running: stop it with ``stop``). With a port, the image must
    already be on the board (programming real flash is the vendor tool's job); this checks it."""
    if port is None:
        running = start_emulated(build, detach=True)
        try:
            with connect(build, None, timeout=timeout, trace=trace) as b:
                return running, b.hello
        except DeviceError:
            emulator.stop(build.dir)
            raise
    with connect(build, port, timeout=timeout, trace=trace) as b:
        return None, b.hello


def stop(build) -> bool:
    return emulator.stop(build.dir)
