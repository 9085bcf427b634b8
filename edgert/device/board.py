"""Reaching the board that runs a build: a port the user names, the emulated board that
`edgert flash` left running, or (for one command) an emulated board started just for it.

    with connect(build, port=None) as board:
        result = board.session.run(inputs, build.meta["io"]["outputs"])
        board.latency(result.ticks)   # -> (value, unit)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from edgert.errors import DeviceError

from . import emulator, protocol as P
from .session import DEFAULT_INVOKE_TIMEOUT, DEFAULT_TIMEOUT, Session


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


@contextlib.contextmanager
def connect(build, port: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
            invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT, trace: bool = False) -> Iterator[Board]:
    """A session with what runs ``build`` (reached as its target kind's backend opens it:
    edgert.backends), its handshake checked against the build (protocol version, model
    hash). For a microcontroller with no port: the emulated board `edgert flash` started for
    this build, or a new one for the duration of the block."""
    from edgert.backends import backend

    with backend(build.target.kind).open_link(build, port) as link:
        session = Session(link.transport, timeout=timeout, invoke_timeout=invoke_timeout, trace=trace,
                          name=link.name)
        try:
            yield Board(session, session.check_build(build.meta), link.emulated, link.where)
        finally:
            session.close()


def flash(build, port: str | None = None, *, timeout: float = DEFAULT_TIMEOUT, trace: bool = False):
    """Put ``build`` on a board and check it answers with this model. With no port, start
    the emulated board (it keeps running: stop it with ``stop``). With a port, the image must
    already be on the board (programming real flash is the vendor tool's job); this checks it."""
    from edgert.backends import cortex_m

    if port is None:
        running = cortex_m.start_emulated(build, detach=True)
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
