"""A serial link that corrupts data, for flashing tests: a TCP relay between a client and
the emulated board's UART (QEMU's TCP serial port) that passes the board's bytes through
untouched and hands each host-to-board byte to ``corrupt(offset, byte) -> byte``.

    with FlakyLink(board_url, flip_at({3000})) as link:
        program(Bootloader(SerialTransport(link.url)), ...)
"""
from __future__ import annotations

import socket
import threading
from typing import Callable


def flip_at(offsets: set[int]) -> Callable[[int, int], int]:
    """Invert the low bit of the host-to-board bytes at these stream offsets."""
    return lambda off, b: b ^ 0x01 if off in offsets else b


def flip_every(period: int, start: int) -> Callable[[int, int], int]:
    """From ``start`` on, invert one byte in every ``period``: a link that never heals."""
    return lambda off, b: b ^ 0x01 if off >= start and (off - start) % period == 0 else b


class FlakyLink:
    def __init__(self, board_url: str, corrupt: Callable[[int, int], int]):
        host, port = board_url.removeprefix("socket://").split(":")
        self._board = (host, int(port))
        self._corrupt = corrupt
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self.sent = 0        # host-to-board bytes relayed
        self.corrupted = 0   # of which changed
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def __enter__(self) -> "FlakyLink":
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            board = socket.create_connection(self._board)
            for src, dst, up in ((client, board, True), (board, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if upstream:
                    out = bytearray(data)
                    for i, b in enumerate(out):
                        out[i] = self._corrupt(self.sent + i, b)
                        self.corrupted += out[i] != b
                    self.sent += len(out)
                    data = bytes(out)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
