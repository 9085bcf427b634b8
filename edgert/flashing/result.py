"""What every flash method returns, and what they share."""
from __future__ import annotations

from dataclasses import dataclass

from edgert.device import emulator, protocol as P
from edgert.errors import UserError


@dataclass
class FlashResult:
    method: str
    hello: P.Hello | None                          # None: programmed, not checked (no port)
    running: emulator.RunningBoard | None = None   # an emulated board left running
    stats: object | None = None                    # what the method reports (bytes, retries)


def need_port(port: str | None, method: str) -> str:
    if port is None:
        raise UserError(f"--method {method} needs the board's serial port",
                        "pass --port /dev/ttyACM0 (see `edgert doctor` for the ports found)")
    return port


def checked(build, method: str, port: str | None, stats, *, timeout: float, trace: bool) -> FlashResult:
    """After programming: ask the board at ``port`` for its model (nothing to ask without one)."""
    from edgert.device import board as boards

    if port is None:
        return FlashResult(method, None, None, stats)
    with boards.connect(build, port, timeout=timeout, trace=trace) as b:
        return FlashResult(method, b.hello, None, stats)
