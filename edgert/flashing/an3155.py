"""Flashing over serial through the STM32 system-memory bootloader (ST AN3155, "USART
protocol used in the STM32 bootloader"): the ROM bootloader every STM32 has, entered with
BOOT0 high at reset, and edgert's own bootloader on the emulated board (firmware/bootloader).

    bl = Bootloader(SerialTransport(port, baudrate=115200, parity="E"))
    program(bl, image, base=0x08000000, erase=[0, 1], chip_id=0x451)

``program`` erases, writes every 256-byte block but the first, reads each back, then writes
and verifies the first block (the vector table) and only then sends Go: an image the link
broke off or corrupted keeps an erased vector table, which neither the emulated
bootloader's Go nor a reset will start.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from edgert.device.transport import Transport
from edgert.errors import DeviceError

ACK, NACK, SYNC = 0x79, 0x1F, 0x7F
GET, GET_VERSION, GET_ID, READ, GO, WRITE, ERASE, EXT_ERASE = 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x44
BLOCK = 256                  # the most one Read or Write Memory moves
ERASE_BATCH = 128            # pages per Extended Erase command
REPLY_TIMEOUT = 2.0          # seconds for an ordinary reply
ERASE_TIMEOUT = 40.0         # a mass erase of 2 MiB takes up to ~30 s (STM32F7 datasheet tME)
RESYNC_PAUSE = 1.0           # longer than the emulated bootloader's 200 ms byte timeout,
                             # measured in its (instruction-count) time, which runs ahead of ours


def _xor(data: bytes) -> int:
    """AN3155's checksum: the XOR of the bytes."""
    out = 0
    for b in data:
        out ^= b
    return out


class Nack(DeviceError):
    pass


class NoAnswer(DeviceError):
    pass


class VerifyError(DeviceError):
    pass


class Bootloader:
    """One AN3155 session over a byte transport. Every method raises Nack or NoAnswer naming
    the step that failed."""

    def __init__(self, link: Transport, *, where: str = "the board"):
        self.link = link
        self.where = where

    # ---------------------------------------------------------------- wire level

    def _read(self, n: int, timeout: float, what: str) -> bytes:
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            chunk = self.link.read(n - len(out), max(left, 0.0)) if left > 0 else b""
            if not chunk:
                raise NoAnswer(f"{self.where} did not answer {what} within {timeout:g} s "
                               f"(got {len(out)} of {n} bytes)", "check the link; the bootloader may need a reset")
            out += chunk
        return out

    def _ack(self, what: str, timeout: float = REPLY_TIMEOUT) -> None:
        b = self._read(1, timeout, what)[0]
        if b == NACK:
            raise Nack(f"{self.where} refused {what} (NACK)", "see the bootloader's rules for this command (AN3155)")
        if b != ACK:
            raise Nack(f"{self.where} answered {what} with 0x{b:02X}, neither ACK nor NACK",
                       "the link is out of step: check the baud rate and parity (8E1)")

    def _command(self, code: int, what: str) -> None:
        self.link.write(bytes([code, code ^ 0xFF]))
        self._ack(what)

    @staticmethod
    def _address(addr: int) -> bytes:
        b = addr.to_bytes(4, "big")
        return b + bytes([_xor(b)])

    # ---------------------------------------------------------------- commands

    def sync(self) -> None:
        """0x7F lets the bootloader find the baud rate; a NACK means it already has."""
        self.link.drain()
        self.link.write(bytes([SYNC]))
        try:
            b = self._read(1, REPLY_TIMEOUT, "the 0x7F synchronisation byte")[0]
        except NoAnswer:
            raise NoAnswer(f"no STM32 bootloader answers at {self.where}",
                           "hold BOOT0 high and reset the board (or power-cycle it) so it starts in its "
                           "system-memory bootloader, then try again; check the port and 115200 8E1") from None
        if b not in (ACK, NACK):
            raise NoAnswer(f"{self.where} answered the synchronisation byte with 0x{b:02X}",
                           "something other than the STM32 bootloader is running: set BOOT0 and reset")

    def get(self) -> tuple[int, bytes]:
        """(bootloader version, supported command codes)."""
        self._command(GET, "Get")
        n = self._read(1, REPLY_TIMEOUT, "Get")[0]
        data = self._read(n + 1, REPLY_TIMEOUT, "Get")
        self._ack("Get (end)")
        return data[0], data[1:]

    def get_id(self) -> int:
        self._command(GET_ID, "Get ID")
        n = self._read(1, REPLY_TIMEOUT, "Get ID")[0]
        pid = int.from_bytes(self._read(n + 1, REPLY_TIMEOUT, "Get ID"), "big")
        self._ack("Get ID (end)")
        return pid

    def read(self, addr: int, n: int) -> bytes:
        assert 0 < n <= BLOCK
        self._command(READ, "Read Memory")
        self.link.write(self._address(addr))
        self._ack(f"the address 0x{addr:08X} of Read Memory")
        self.link.write(bytes([n - 1, (n - 1) ^ 0xFF]))
        self._ack(f"the length of Read Memory at 0x{addr:08X}")
        return self._read(n, REPLY_TIMEOUT, f"Read Memory at 0x{addr:08X}")

    def write(self, addr: int, data: bytes) -> None:
        assert 0 < len(data) <= BLOCK and len(data) % 4 == 0
        self._command(WRITE, "Write Memory")
        self.link.write(self._address(addr))
        self._ack(f"the address 0x{addr:08X} of Write Memory")
        self.link.write(bytes([len(data) - 1]) + data + bytes([_xor(bytes([len(data) - 1]) + data)]))
        self._ack(f"Write Memory of {len(data)} bytes at 0x{addr:08X}")

    def extended_erase(self, pages: list[int]) -> None:
        """Extended Erase (0x44): two-byte page numbers, N - 1 first."""
        self._erase(EXT_ERASE, "Extended Erase", pages,
                    lambda b: (len(b) - 1).to_bytes(2, "big") + b"".join(p.to_bytes(2, "big") for p in b))

    def erase(self, pages: list[int]) -> None:
        """The legacy Erase (0x43) of older bootloaders: one-byte page numbers."""
        self._erase(ERASE, "Erase", pages, lambda b: bytes([len(b) - 1, *b]))

    def _erase(self, code: int, name: str, pages: list[int], encode) -> None:
        for i in range(0, len(pages), ERASE_BATCH):
            batch = pages[i:i + ERASE_BATCH]
            payload = encode(batch)
            self._command(code, name)
            self.link.write(payload + bytes([_xor(payload)]))
            self._ack(f"{name} of pages {batch[0]}..{batch[-1]}", ERASE_TIMEOUT)

    def go(self, addr: int) -> None:
        self._command(GO, "Go")
        self.link.write(self._address(addr))
        self._ack(f"Go to 0x{addr:08X}")

    def resync(self) -> None:
        """After a failed step: let a half-received command time out, drop stray replies."""
        time.sleep(RESYNC_PAUSE)
        self.link.drain()


def erase_units(opts: dict, flash_origin: int, base: int, nbytes: int) -> list[int]:
    """The pages (uniform ``page_bytes``) or sectors (``sectors``: a list of {count, bytes},
    from the start of flash) that cover [base, base + nbytes), numbered as the bootloader
    counts them. ``opts`` is the board profile's [flash.serial-stm32] table."""
    if "sectors" in opts:
        sizes = [int(s["bytes"]) for s in opts["sectors"] for _ in range(int(s["count"]))]
    else:
        sizes = None
    out, start, index, end = [], flash_origin, 0, base + nbytes
    while start < end:
        if sizes is not None and index >= len(sizes):
            raise DeviceError(f"the image ends at 0x{end:08X}, past the board's last flash sector",
                              "the image is larger than the board's flash; check the board profile")
        size = sizes[index] if sizes is not None else int(opts["page_bytes"])
        if start + size > base:
            out.append(index)
        start += size
        index += 1
    return out


@dataclass
class Stats:
    bytes_written: int = 0
    blocks: int = 0
    retries: int = 0
    pages_erased: int = 0


def blocks_of(image: bytes, base: int) -> list[tuple[int, bytes]]:
    """256-byte blocks, the last padded with 0xFF to a multiple of 4 (Write Memory's unit)."""
    out = []
    for off in range(0, len(image), BLOCK):
        chunk = image[off:off + BLOCK]
        chunk += b"\xff" * (-len(chunk) % 4)
        out.append((base + off, chunk))
    return out


def program(bl: Bootloader, image: bytes, *, base: int, erase: list[int], chip_id: int | None,
            retries: int = 3, go: bool = True, progress: Callable[[int], None] | None = None) -> Stats:
    """Erase ``erase`` (page or sector numbers), write ``image`` at ``base`` with read-back
    verification, the first block last, then Go. A block refused or misread ``retries``
    times in a row ends the run with the image not startable."""
    stats = Stats()
    bl.sync()
    _, commands = bl.get()
    if chip_id is not None:
        found = bl.get_id()
        if found != chip_id:
            raise DeviceError(f"{bl.where} is chip 0x{found:03X}, the board profile expects 0x{chip_id:03X}",
                              "check --board (or the board's chip_id), or that the right board is connected")
    if EXT_ERASE in commands:
        bl.extended_erase(erase)
    elif ERASE in commands:
        bl.erase(erase)
    else:
        raise DeviceError(f"{bl.where}'s bootloader offers no erase command", "erase the flash with a probe first")
    stats.pages_erased = len(erase)

    blocks = blocks_of(image, base)
    for addr, data in blocks[1:] + blocks[:1]:  # the vector table last
        _write_verified(bl, addr, data, retries, stats)
        stats.bytes_written += len(data)
        stats.blocks += 1
        if progress:
            progress(len(data))
    if go:
        bl.go(base)
    return stats


def _write_verified(bl: Bootloader, addr: int, data: bytes, retries: int, stats: Stats) -> None:
    last: DeviceError | None = None
    for attempt in range(retries):
        if attempt:
            stats.retries += 1
            bl.resync()
        try:
            bl.write(addr, data)
        except (Nack, NoAnswer) as e:
            last = e
            continue
        # A write is idempotent (flash: new = old & data), so a lost ACK is safely retried.
        for _ in range(retries):
            try:
                back = bl.read(addr, len(data))
            except (Nack, NoAnswer) as e:
                last = e
                bl.resync()
                continue
            if back == data:
                return
            at = next(i for i in range(len(data)) if back[i] != data[i])
            last = VerifyError(f"verify failed at 0x{addr + at:08X}: wrote 0x{data[at]:02X}, read 0x{back[at]:02X}",
                               "the flash was not erased there, or the link corrupts data: erase and flash again")
        if isinstance(last, VerifyError):
            break  # re-reading agreed on a wrong value: writing again cannot set bits back to 1
    raise DeviceError(f"block 0x{addr:08X} ({len(data)} bytes) failed after {retries} tries: {last.message}",
                      "the image was not started and its vector table is left erased; check the serial link "
                      "(cable, baud rate, parity 8E1) and flash again")
