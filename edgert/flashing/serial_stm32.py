"""--method serial-stm32: the STM32 system-memory bootloader over a serial port (AN3155); on
an emulated board, over its emulated UART into edgert's own bootloader. Every block is read
back and compared; a failed write is retried."""
from __future__ import annotations

from edgert.device import emulator
from edgert.errors import DeviceError

from . import an3155
from .result import FlashResult, need_port

OPTIONS = ("retries",)
DEFAULT_RETRIES = 3


def add_args(parser) -> None:
    parser.add_argument("--retries", type=int, help=f"--method serial-stm32: how often a block whose read-back differs is written again "
                                                    f"(default {DEFAULT_RETRIES})")


def run(build, port, *, timeout, trace, progress=None, retries: int = DEFAULT_RETRIES) -> FlashResult:
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
            need_port(port, "serial-stm32")
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
