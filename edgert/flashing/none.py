"""--method none: program nothing; check that the board at --port already runs this build."""
from __future__ import annotations

from .result import FlashResult, need_port

OPTIONS: tuple[str, ...] = ()


def add_args(parser) -> None:
    """No options of its own."""


def run(build, port, *, timeout, trace, progress=None) -> FlashResult:
    from edgert.device import board as boards

    _, hello = boards.flash(build, need_port(port, "none"), timeout=timeout, trace=trace)
    return FlashResult("none", hello)
