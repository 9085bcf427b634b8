"""--method qemu: start the emulated board on the image (it keeps running: `edgert flash
--stop BUILD` ends it)."""
from __future__ import annotations

from edgert.errors import UserError

from .result import FlashResult

OPTIONS: tuple[str, ...] = ()


def add_args(parser) -> None:
    """No options of its own."""


def run(build, port, *, timeout, trace, progress=None) -> FlashResult:
    from edgert.device import board as boards

    if port is not None:
        raise UserError("--method qemu starts the emulated board; it takes no --port",
                        "drop --port, or choose another --method")
    running, hello = boards.flash(build, None, timeout=timeout, trace=trace)
    return FlashResult("qemu", hello, running)
