"""A link that breaks frames on purpose: a TCP proxy between edgert (``--port``) and the
emulated board's UART (QEMU's TCP serial port) that relays the protocol's frames (each ended
by 0x00) in both directions and, where the plan says so, damages one:

    drop        the frame is not relayed
    flip        one bit of one of its bytes is inverted
    duplicate   it is relayed twice
    delay       it is relayed DELAY seconds late, past the host's first wait for a reply
    reorder     it is held back and relayed after the next frame in the same direction
    disconnect  the connection is closed instead (the host must open it again)
    reset       the board is reset (QMP system_reset) just after the frame is relayed
    kill        the emulator is killed just after the frame is relayed

A plan is either one fault at one frame (``at(kind, "up", 40)``: the 40th host-to-board
frame, counting from 1) or a seeded random one (``every(1000, kinds, seed)``: each frame
damaged with probability 1/1000, by a kind drawn from ``kinds``). ``injected`` lists what
was done. The board's address is looked up at every new connection, so a restarted board is
found again (``board_url`` returns None while there is none).

    with FaultLink(lambda: emulator.running(d).url, at("drop", "down", 40)) as link:
        main(["validate", d, "--port", link.url])
"""
from __future__ import annotations

import random
import socket
import threading
import time
from typing import Callable

KINDS = ("drop", "flip", "duplicate", "delay", "reorder", "disconnect", "reset", "kill")
DELAY = 1.5  # seconds: past the session's first wait (0.25 s plus the bytes' time on the wire)

Plan = Callable[[str, int], "str | None"]  # (direction "up"/"down", frame number) -> a kind or None


def at(kind: str, direction: str, frame: int) -> Plan:
    assert kind in KINDS and direction in ("up", "down")
    return lambda d, n: kind if (d, n) == (direction, frame) else None


def every(period: int, kinds: tuple[str, ...], seed: int) -> Plan:
    rng = random.Random(seed)
    lock = threading.Lock()

    def plan(direction: str, n: int) -> str | None:
        with lock:  # one generator shared by both directions' threads
            return rng.choice(kinds) if rng.random() < 1 / period else None
    return plan


class FaultLink:
    def __init__(self, board_url: Callable[[], "str | None"], plan: Plan, *, reset: Callable[[], None] | None = None,
                 kill: Callable[[], None] | None = None):
        self._board_url, self._plan, self._reset, self._kill = board_url, plan, reset, kill
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self.frames = {"up": 0, "down": 0}
        self.injected: list[tuple[str, str, int]] = []  # (kind, direction, frame number)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []

    def __enter__(self) -> "FaultLink":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._server.close()
        self._close_all()

    def _close_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            url = self._board_url()
            try:
                if url is None:
                    raise OSError("no board")
                host, port = url.removeprefix("socket://").rsplit(":", 1)
                board = socket.create_connection((host, int(port)), timeout=2)
            except OSError:
                client.close()  # no board behind the link: the host sees the connection end
                continue
            board.settimeout(None)
            for s in (client, board):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns += [client, board]
            for src, dst, direction in ((client, board, "up"), (board, client, "down")):
                threading.Thread(target=self._pump, args=(src, dst, direction), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        pending = bytearray()
        held: bytes | None = None  # a frame being reordered
        try:
            while not self._stop.is_set():
                data = src.recv(4096)
                if not data:
                    break
                pending += data
                while (end := pending.find(b"\x00")) >= 0:
                    frame = bytes(pending[:end + 1])
                    del pending[:end + 1]
                    if frame == b"\x00":  # the host's flush: not a frame
                        dst.sendall(frame)
                        continue
                    with self._lock:
                        self.frames[direction] += 1
                        n = self.frames[direction]
                    kind = self._plan(direction, n)
                    if held is not None:  # the frame after a reordered one: both, swapped, undamaged
                        dst.sendall(frame + held)
                        held = None
                        continue
                    if kind is None:
                        dst.sendall(frame)
                        continue
                    self.injected.append((kind, direction, n))
                    if self._inject(kind, frame, dst) == "hold":
                        held = frame
                    if kind == "disconnect":
                        return
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _inject(self, kind: str, frame: bytes, dst: socket.socket) -> str | None:
        if kind == "drop":
            return None
        if kind == "flip":
            b = bytearray(frame)
            i = len(b) // 2  # a byte inside the frame, never its 0x00 delimiter
            b[i] ^= 0x04 if b[i] != 0x04 else 0x08  # never into 0x00: that would split the frame
            dst.sendall(bytes(b))
        elif kind == "duplicate":
            dst.sendall(frame + frame)
        elif kind == "delay":
            def late():
                time.sleep(DELAY)
                try:
                    dst.sendall(frame)
                except OSError:
                    pass
            threading.Thread(target=late, daemon=True).start()
        elif kind == "reorder":
            return "hold"
        elif kind == "disconnect":
            self._close_all()
        elif kind == "reset":
            dst.sendall(frame)
            self._reset()
        elif kind == "kill":
            dst.sendall(frame)
            self._kill()
        return None
