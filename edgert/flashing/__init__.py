"""Putting a build's firmware on a board, by the methods its profile lists. One module per
method, named in FLASHERS; each gives

    OPTIONS                 the keyword options its run() takes beyond the common ones
    add_args(parser)        their command-line flags, for `edgert flash`
    run(build, port, *, timeout, trace, progress, **options) -> FlashResult

The methods:

    qemu          start the emulated board on the image (no port)
    serial-stm32  the STM32 system-memory bootloader over a serial port (AN3155); on an
                  emulated board, over its emulated UART into edgert's own bootloader
    smp           MCUboot serial recovery: an imgtool-signed image over SMP (smpclient)
    probe         SWD through pyOCD, or OpenOCD where pyOCD is not installed
    none          program nothing; check the board at --port already runs this build

Every method ends the same way where there is a serial port to ask: the board's HELLO is
checked against the build (protocol version, model hash), so a flash that "succeeded" but
left another model running fails. (A probe needs no port; without one, nothing is checked.)

    result = flash(build, method=None, port=None)
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

from edgert.device.session import DEFAULT_TIMEOUT
from edgert.errors import UserError

from .methods import FLASHERS
from .result import FlashResult

__all__ = ["ALWAYS", "FLASHERS", "FlashResult", "add_args", "choose_method", "flash", "flasher"]

ALWAYS = ("none",)  # methods every board has


def flasher(method: str) -> ModuleType:
    return importlib.import_module(FLASHERS[method])


def add_args(parser) -> None:
    """Every method's own command-line flags."""
    for method in FLASHERS:
        flasher(method).add_args(parser)


def choose_method(board, method: str | None, port: str | None) -> str:
    """The method asked for, checked against the board; else the profile's first that fits
    (the emulator when there is no port and the board is emulated)."""
    methods = board.flash_methods
    if method is not None:
        if method not in methods and method not in ALWAYS:
            raise UserError(f"board {board.name} cannot be flashed with --method {method}",
                            f"use one of: {', '.join(methods + ALWAYS)} (its profile's [flash] methods)")
        return method
    if port is None:
        if "qemu" in methods:
            return "qemu"
        if "probe" in methods:
            return "probe"
        raise UserError(f"board {board.name} is a real board: edgert needs its serial port",
                        "pass --port (see `edgert doctor` for the ports found), or --method probe")
    return next(m for m in methods + ALWAYS if m != "qemu")


def flash(build, method: str | None = None, port: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
          trace: bool = False, progress: Callable[[int, int], None] | None = None, **options) -> FlashResult:
    """Program ``build`` onto its board by ``method`` and check it answers. ``progress`` is
    called with (bytes done, bytes in all) while an image moves. ``options`` (None: not
    given) go to the method that takes them: ``key`` signs for smp, ``probe_tool`` picks
    pyOCD or OpenOCD for probe, ``retries`` bounds serial-stm32's."""
    board = build.target.board
    if build.target.kind == "linux":
        raise UserError(f"{build.dir} is for {build.target.name}, a Linux board: it has a runner, not firmware",
                        f"put it on the board with `edgert deploy {build.dir} --host USER@BOARD`, or validate it "
                        "here under the emulator: `edgert validate BUILD`")
    if board is None:
        raise UserError(f"{build.dir} is a host build; there is no firmware to flash",
                        "rebuild for a board: --target cortex-m7")
    method = choose_method(board, method, port)
    chosen = flasher(method)
    given = {k: v for k, v in options.items() if v is not None}
    for name in given:
        if name not in chosen.OPTIONS:
            owner = next((m for m in FLASHERS if name in flasher(m).OPTIONS), None)
            if owner is None:
                raise TypeError(f"flash() got an unexpected option {name!r}")
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} applies to --method {owner}, not {method}", f"drop {flag}, or use --method {owner}")
    return chosen.run(build, port, timeout=timeout, trace=trace, progress=progress, **given)
