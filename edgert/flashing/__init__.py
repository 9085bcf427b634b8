"""Putting a build's firmware on a board, by the methods its profile lists:

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

from dataclasses import dataclass
from typing import Callable

from edgert.device import emulator, protocol as P
from edgert.device.session import DEFAULT_TIMEOUT
from edgert.errors import DeviceError, UserError

from . import an3155

ALWAYS = ("none",)  # methods every board has


@dataclass
class FlashResult:
    method: str
    hello: P.Hello | None                          # None: programmed, not checked (no port)
    running: emulator.RunningBoard | None = None   # an emulated board left running
    stats: object | None = None                    # what the method reports (bytes, retries)


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
          trace: bool = False, progress: Callable[[int, int], None] | None = None, key: str | None = None,
          probe_tool: str | None = None, retries: int = 3) -> FlashResult:
    """Program ``build`` onto its board by ``method`` and check it answers. ``progress`` is
    called with (bytes done, bytes in all) while an image moves. ``key`` signs for smp,
    ``probe_tool`` picks pyOCD or OpenOCD for probe, ``retries`` bounds serial-stm32's."""
    from edgert.device import board as boards

    board = build.target.board
    if build.target.kind == "linux":
        raise UserError(f"{build.dir} is for {build.target.name}, a Linux board: it has a runner, not firmware",
                        f"put it on the board with `edgert deploy {build.dir} --host USER@BOARD`, or validate it "
                        "here under the emulator: `edgert validate BUILD`")
    if board is None:
        raise UserError(f"{build.dir} is a host build; there is no firmware to flash",
                        "rebuild for a board: --target cortex-m7")
    method = choose_method(board, method, port)
    for value, flag, owner in ((key, "--key", "smp"), (probe_tool, "--probe-tool", "probe")):
        if value is not None and method != owner:
            raise UserError(f"{flag} applies to --method {owner}, not {method}", f"drop {flag}, or use --method {owner}")
    if method == "qemu":
        if port is not None:
            raise UserError("--method qemu starts the emulated board; it takes no --port",
                            "drop --port, or choose another --method")
        running, hello = boards.flash(build, None, timeout=timeout, trace=trace)
        return FlashResult(method, hello, running)
    if method == "none":
        _, hello = boards.flash(build, _need_port(port, method), timeout=timeout, trace=trace)
        return FlashResult(method, hello)
    if method == "serial-stm32":
        return _serial_stm32(build, port, timeout=timeout, trace=trace, progress=progress, retries=retries)
    if method == "smp":
        from . import smp

        stats = smp.flash(build, _need_port(port, method), progress=progress, key=key)
    elif method == "probe":
        from . import probe

        stats = probe.flash(build, probe_tool=probe_tool)
    else:  # choose_method only returns methods of FLASH_METHODS
        raise AssertionError(method)
    if port is None:  # programmed; nothing to talk to the board over
        return FlashResult(method, None, None, stats)
    with boards.connect(build, port, timeout=timeout, trace=trace) as b:
        return FlashResult(method, b.hello, None, stats)


def _need_port(port: str | None, method: str) -> str:
    if port is None:
        raise UserError(f"--method {method} needs the board's serial port",
                        "pass --port /dev/ttyACM0 (see `edgert doctor` for the ports found)")
    return port


def _serial_stm32(build, port, *, timeout, trace, progress, retries) -> FlashResult:
    from edgert.device import board as boards
    from edgert.device.transport import SerialTransport

    target = build.target
    board = target.board
    opts = board.options("serial-stm32")
    image = (build.dir / build.meta["firmware"]).with_suffix(".bin").read_bytes()
    flash_region = board.region("flash")
    erase = an3155.erase_units(opts, flash_region.origin, flash_region.origin, len(image))
    started = None
    if port is None:
        from . import emulated_bootloader

        if not board.emulated:
            _need_port(port, "serial-stm32")
        elf = emulated_bootloader.build(target, build.dir / "firmware" / "bootloader")
        started = emulator.start(build.dir, board.emulator, elf, board.name, detach=True)
        url = started.url
    else:
        url = port
    try:
        link = SerialTransport(url, baudrate=int(opts.get("baudrate", 115200)), parity="E")
        try:
            bl = an3155.Bootloader(link, where=f"the board at {url}" if started is None else "the emulated board")
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, len(image))

            stats = an3155.program(bl, image, base=flash_region.origin, erase=erase,
                                   chip_id=opts.get("chip_id"), retries=retries, progress=step)
        finally:
            link.close()
        if started is not None:
            started = emulator.record_image(build.dir, build.dir / build.meta["firmware"])
        with boards.connect(build, port, timeout=timeout, trace=trace) as b:
            return FlashResult("serial-stm32", b.hello, started, stats)
    except DeviceError:
        if started is not None:
            emulator.stop(build.dir)
        raise
