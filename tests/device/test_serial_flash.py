"""Flashing over a serial link with the STM32 bootloader protocol (AN3155), end to end on
the emulated Cortex-M7: edgert's client against edgert's bootloader running in QEMU, over
the board's emulated UART, then the application validated on the same board. The link can
be made to corrupt bytes (flaky_link) to see the client retry, or fail without leaving an
image that starts."""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device import emulator
from edgert.device.board import connect
from edgert.device.transport import SerialTransport
from edgert.errors import DeviceError
from edgert.flashing import an3155, emulated_bootloader
from edgert.targets import load_board

from tests.conftest import HELLO_WORLD
from .flaky_link import FlakyLink, flip_at, flip_every

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


@pytest.fixture
def m7_build(tmp_path):
    # Each test gets its own folder: the board record (board.json) lives in the build.
    return api.build(HELLO_WORLD, "cortex-m7", tmp_path / "b")


@pytest.fixture
def bootloader_board(m7_build):
    """The emulated board running edgert's AN3155 bootloader, its flash not yet written."""
    target = m7_build.target
    elf = emulated_bootloader.build(target, m7_build.dir / "firmware" / "bootloader")
    running = emulator.start(m7_build.dir, target.board.emulator, elf, target.board.name, detach=False)
    yield running
    emulator.stop(m7_build.dir)


def _image(build) -> bytes:
    return (build.dir / build.meta["firmware"]).with_suffix(".bin").read_bytes()


def _program(build, url, **kw):
    opts = build.target.board.options("serial-stm32")
    image = _image(build)
    link = SerialTransport(url, parity="E")
    try:
        return an3155.program(an3155.Bootloader(link), image, base=0, erase=an3155.erase_units(opts, 0, 0, len(image)),
                              chip_id=opts["chip_id"], **kw)
    finally:
        link.close()


def test_cli_flashes_over_serial_and_validates(m7_build, capsys):
    d = str(m7_build.dir)
    try:
        assert main(["flash", d, "--method", "serial-stm32"]) == 0
        out = capsys.readouterr().out
        assert f"flashed {len(_image(m7_build)) + (-len(_image(m7_build)) % 4):,} bytes by serial-stm32" in out
        assert "read back and verified, 0 retries" in out
        assert main(["validate", d, "--random", "5"]) == 0
        assert "5 samples vs TFLM" in (out := capsys.readouterr().out) and "bit-exact        100.0%" in out
        url = emulator.running(m7_build.dir).url  # --method none: only check what runs there
        assert main(["flash", d, "--method", "none", "--port", url]) == 0
        assert f"the board at {url} runs hello_world_int8" in capsys.readouterr().out
    finally:
        main(["flash", "--stop", d])


def test_the_bootloader_answers_as_an3155_describes(m7_build, bootloader_board):
    link = SerialTransport(bootloader_board.url, parity="E")
    try:
        bl = an3155.Bootloader(link)
        bl.sync()
        bl.sync()  # a second 0x7F is answered NACK (already synchronised) and accepted
        version, commands = bl.get()
        assert version == 0x31 and set(commands) == {0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44}
        assert bl.get_id() == 0x500
        with pytest.raises(an3155.Nack):
            bl.read(0x60000000, 4)  # the bootloader's own memory is not readable
        with pytest.raises(an3155.Nack):
            bl.go(0)  # nothing valid at 0 yet: Go is refused
        bl.write(0x20000000, b"\x12\x34\x56\x78")  # RAM: plain stores
        assert bl.read(0x20000000, 4) == b"\x12\x34\x56\x78"
        bl.extended_erase([0])
        bl.write(0, b"\xf0\xf0\xff\xff")
        bl.write(0, b"\x3c\xff\x3c\xff")  # NOR flash: a second write only clears bits
        assert bl.read(0, 4) == b"\x30\xf0\x3c\xff"
    finally:
        link.close()


def test_one_corrupted_byte_is_retried(m7_build, bootloader_board):
    with FlakyLink(bootloader_board.url, flip_at({3000})) as flaky:
        stats = _program(m7_build, flaky.url)
    assert flaky.corrupted == 1 and stats.retries >= 1
    emulator.record_image(m7_build.dir, m7_build.dir / m7_build.meta["firmware"])
    with connect(m7_build) as board:  # the application runs and answers with this model
        result = board.session.run([np.array([[42]], dtype=np.int8)], m7_build.meta["io"]["outputs"])
    assert result.outputs[0].shape == (1, 1)


def test_a_link_that_keeps_corrupting_fails_and_nothing_starts(m7_build, bootloader_board):
    with FlakyLink(bootloader_board.url, flip_every(97, start=2000)) as flaky:
        with pytest.raises(DeviceError, match=r"failed after 3 tries") as e:
            _program(m7_build, flaky.url)
    assert "vector table is left erased" in e.value.hint
    # Straight to the board: the bootloader still runs, the vector table is erased, and Go
    # refuses to start the half-written image.
    link = SerialTransport(bootloader_board.url, parity="E")
    try:
        bl = an3155.Bootloader(link)
        bl.resync()
        bl.sync()
        assert bl.read(0, 8) == b"\xff" * 8
        with pytest.raises(an3155.Nack, match="Go to 0x00000000"):
            bl.go(0)
    finally:
        link.close()


def test_writing_over_unerased_flash_fails_verification(m7_build, bootloader_board):
    _program(m7_build, bootloader_board.url, go=False)
    other = bytes(b ^ 0xFF for b in _image(m7_build)[:512])  # needs bits set back to 1
    link = SerialTransport(bootloader_board.url, parity="E")
    try:
        with pytest.raises(DeviceError, match=r"verify failed at 0x000001\w\w: wrote"):
            an3155.program(an3155.Bootloader(link), other, base=0, erase=[], chip_id=None)
    finally:
        link.close()


def test_wrong_chip_is_refused_before_anything_is_erased(m7_build, bootloader_board):
    link = SerialTransport(bootloader_board.url, parity="E")
    try:
        with pytest.raises(DeviceError, match=r"chip 0x500, the board profile expects 0x451"):
            an3155.program(an3155.Bootloader(link), b"\0" * 8, base=0, erase=[0], chip_id=0x451)
    finally:
        link.close()


def test_a_silent_port_hints_at_boot0(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    conns = []
    threading.Thread(target=lambda: conns.append(server.accept()), daemon=True).start()
    link = SerialTransport(f"socket://127.0.0.1:{server.getsockname()[1]}", parity="E")
    try:
        with pytest.raises(an3155.NoAnswer) as e:
            an3155.Bootloader(link).sync()
        assert "BOOT0" in e.value.hint
    finally:
        link.close()
        server.close()


def test_erase_units_follow_the_board_geometry():
    f767 = load_board("nucleo-f767zi").options("serial-stm32")
    base = 0x08000000
    assert an3155.erase_units(f767, base, base, 1) == [0]
    assert an3155.erase_units(f767, base, base, 0x8001) == [0, 1]
    assert an3155.erase_units(f767, base, base, 0x20000 + 1) == [0, 1, 2, 3, 4]
    assert an3155.erase_units(f767, base, base, 0x40000 + 1) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(DeviceError, match="past the board's last flash sector"):
        an3155.erase_units(f767, base, base, 0x200001)
    pages = {"page_bytes": 2048}
    assert an3155.erase_units(pages, 0, 4096, 2049) == [2, 3]
