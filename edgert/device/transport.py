"""Byte transports to a board: a serial port (``/dev/ttyACM0``), a TCP socket
(``socket://host:port``, what the emulated board listens on) or any pyserial URL; and a
child process's stdin/stdout (the firmware's host build, for tests)."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

from edgert.errors import DeviceError

BAUDRATE = 115200


class LinkLost(DeviceError):
    """The connection itself is gone (a socket closed, a USB port vanished, a process ended),
    as opposed to a board that is slow or sends damaged bytes."""


class Transport:
    """read(n) returns up to n bytes, b'' after ``timeout`` seconds with nothing to read; a
    lost connection raises LinkLost. ``baudrate``: bits a second on the wire, or None where
    the link has no such limit (a socket, a pipe): request timeouts allow for it.
    ``reopen()`` connects again after a LinkLost where the link can (False where it cannot)."""

    baudrate: int | None = None

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, n: int, timeout: float) -> bytes:
        raise NotImplementedError

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        pass


class SerialTransport(Transport):
    """8 data bits, one stop bit; no parity unless asked (the STM32 bootloader wants even).
    Parity and baud rate mean nothing to a socket:// link and pyserial ignores them there."""

    def __init__(self, url: str, *, baudrate: int = BAUDRATE, parity: str = "N"):
        self.url = url
        self._settings = {"baudrate": baudrate, "parity": parity}
        # Behind a socket:// URL is still a UART (the emulated board's paces its bytes at the
        # baud rate, as ser2net's real one does), so its rate bounds the time a frame takes.
        self.baudrate = baudrate
        self._port = self._open()

    def _open(self):
        import serial

        try:
            return serial.serial_for_url(self.url, **self._settings, timeout=0.1, do_not_open=False)
        except (serial.SerialException, ValueError, OSError) as e:
            hint = ("is the board plugged in? list ports with `python -m serial.tools.list_ports`"
                    if not self.url.startswith("socket://") else
                    "is the emulated board running? start it with `edgert flash BUILD` (no --port)")
            raise DeviceError(f"cannot open port {self.url}: {e}", hint) from None

    def reopen(self) -> bool:
        try:
            self._port.close()
        except Exception:  # closing a port that is already gone: nothing left to release
            pass
        try:
            self._port = self._open()
        except DeviceError:
            return False
        return True

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as e:  # pyserial raises SerialException or OSError subclasses
            raise LinkLost(f"writing to {self.url} failed: {e}", "check the connection to the board") from None

    def read(self, n: int, timeout: float) -> bytes:
        # pyserial's read(n) waits for all n bytes: wait for one, then take what has arrived.
        self._port.timeout = timeout
        try:
            first = self._port.read(1)
            if not first:
                return b""
            waiting = min(self._port.in_waiting, n - 1)
            return first + (self._port.read(waiting) if waiting > 0 else b"")
        except Exception as e:
            raise LinkLost(f"reading from {self.url} failed: {e}", "check the connection to the board") from None

    def drain(self) -> None:
        """Drop whatever has arrived and not been read."""
        try:
            self._port.reset_input_buffer()
        except Exception as e:
            raise DeviceError(f"reading from {self.url} failed: {e}", "check the connection to the board") from None

    def close(self) -> None:
        self._port.close()


class ProcessTransport(Transport):
    """A program that speaks the protocol on its stdin/stdout: the firmware's host build
    (firmware/host), a Linux runner under its emulator, or one started on a board over SSH.
    ``cleanup`` runs once the process has ended (temporary files it used)."""

    def __init__(self, argv: list[str], *, env: dict | None = None, name: str = "the host firmware",
                 cleanup=None):
        self.name, self._cleanup = name, cleanup
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                         env=None if env is None else {**os.environ, **env})
        except OSError as e:
            raise DeviceError(f"cannot start {name}: {e}", f"the command was: {' '.join(argv)}") from None
        os.set_blocking(self.proc.stdout.fileno(), False)

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            raise LinkLost(f"{self.name} exited (code {self.proc.poll()})",
                           "its messages, if any, are above") from None

    def read(self, n: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return b""
        data = self.proc.stdout.read(n)  # None: nothing yet; b"": the process closed its output
        if data == b"":
            code = self.proc.wait()
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
            raise LinkLost(f"{self.name} exited ({how})", "its messages, if any, are above")
        return data or b""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None


def open_transport(port: str) -> Transport:
    return SerialTransport(port)


def hexdump(prefix: str, data: bytes, out=sys.stderr) -> None:
    """--trace output: every frame on the wire, as hex."""
    stamp = f"{time.monotonic():.3f}"
    out.write(f"[{stamp}] {prefix} {len(data)} B: {data.hex(' ')}\n")
