"""`edgert farm serve`: emulated boards exported as labgrid places, so that a farm can be
tried, and tested, without hardware.

Each board is an emulated one running a build (a Cortex-M build: its firmware under QEMU; a
Linux board build: its runner under qemu-aarch64, serving on TCP), or with ``blank`` a
Cortex-M board that starts in edgert's serial bootloader, as an STM32 whose BOOT0 pin is held
high does, for `validate --labgrid` and `bench --labgrid` to flash. Each board's serial link is
a TCP port, exported by a labgrid exporter as a NetworkSerialPort; a blank board also has a
power switch, exported as a NetworkPowerPort of labgrid's "simplerest" model and served here
(switched on, the board starts again in its bootloader). A place per board matches them and
carries the tags target=, board=, emulated=yes and any given. Without a
coordinator address, a private labgrid coordinator is started on a free loopback port.

    with Farm(build, boards=4, workdir=Path("build/farm")) as farm:
        farm.address      # the coordinator, for --coordinator
        farm.places       # ["edgert-0", ...]
        farm.pids         # place -> the emulator's pid
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgert.device import emulator
from edgert.errors import DeviceError, ToolchainError, UserError

from .coordinator import Coordinator
from .places import EMULATED_TAG

START_TIMEOUT = 30.0  # seconds for the coordinator, the exporter and its resources to come up


def _tool(name: str) -> str:
    """labgrid's programs, installed beside this Python (a virtual environment) or on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise ToolchainError(f"{name} is not installed", "pip install 'edgert[farm]' (labgrid 26)")
    return found


class Farm:
    def __init__(self, build, *, boards: int, workdir: Path, coordinator: str | None = None, name: str = "edgert",
                 tags: dict[str, str] | None = None, blank: bool = False):
        if boards < 1:
            raise UserError(f"--boards {boards}: a farm needs at least one board", "give --boards 1 or more")
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise UserError(f"--name {name!r}: labgrid names are lowercase letters, digits, - and _",
                            "give a name like edgert or m7farm")
        kind = build.target.kind
        if kind not in ("cortex-m", "linux") or (kind == "linux" and not build.target.emulator):
            raise UserError(f"{build.dir} is for {build.target.name}, which has no emulated board to serve",
                            "serve a Cortex-M build or a Raspberry Pi build")
        if blank and kind != "cortex-m":
            raise UserError("--blank starts boards in edgert's serial bootloader, which only Cortex-M boards have",
                            "drop --blank")
        self.build, self.count, self.workdir, self.blank = build, boards, Path(workdir), blank
        self.name = name
        self.address = coordinator
        self.tags = {"target": build.meta["target"], "board": build.meta.get("board") or build.meta["target"],
                     EMULATED_TAG: "yes", **(tags or {})}
        self.places = [f"{name}-{i}" for i in range(boards)]
        self.pids: dict[str, int] = {}
        self._procs: list[subprocess.Popen] = []
        self._cleanup: list = []
        self._power: _PowerSwitch | None = None

    # ------------------------------------------------------------------ start and stop

    def __enter__(self) -> "Farm":
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            if self.address is None:
                self.address = self._start_coordinator()
            ports = self._start_boards()
            if self.blank:
                self._power = _PowerSwitch(self)
                self._cleanup.append(self._power.close)
            self._start_exporter(ports)
            with Coordinator(self.address) as c:
                self._wait_for_resources(c)
                for place in self.places:
                    matches = [f"{self.name}/{place}/NetworkSerialPort"]
                    if self._power is not None:
                        matches.append(f"{self.name}/{place}/NetworkPowerPort")
                    c.create_place(place, matches, self.tags)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.address is not None and self._procs:
            try:
                with Coordinator(self.address) as c:
                    held = {p.name for p in c.places()}
                    for place in self.places:
                        if place in held:
                            c.delete_place(place)
            except DeviceError:  # the coordinator is gone: nothing to tidy there
                pass
        for proc in reversed(self._procs):  # the exporter first, the coordinator last
            _stop(proc)
        self._procs.clear()
        for fn in self._cleanup:
            fn()
        self._cleanup.clear()
        if self.build.target.kind == "cortex-m":  # whichever of its boards are switched on
            for place in self.places:
                self.power_off(place)

    def _start_coordinator(self) -> str:
        state = self.workdir / "coordinator"  # labgrid keeps places.yaml in its working folder
        state.mkdir(exist_ok=True)
        proc = subprocess.Popen([_tool("labgrid-coordinator"), "--listen", "127.0.0.1:0"], cwd=state,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._procs.append(proc)
        deadline = time.monotonic() + START_TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"listening on .*:(\d+)\s*$", line)
            if m:
                # it prints every request from now on: drain them so that it never blocks on a full pipe
                import threading

                threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
                return f"127.0.0.1:{m.group(1)}"
        raise DeviceError("labgrid-coordinator did not start", "".join(seen)[-500:] or "it printed nothing")

    def _start_boards(self) -> dict[str, int]:
        """One emulated board per place; returns place -> its serial link's TCP port."""
        self.ports: dict[str, int] = {}
        for place in self.places:
            d = self.workdir / place
            d.mkdir(exist_ok=True)
            if self.build.target.kind == "cortex-m":
                self.ports[place] = emulator.free_port()
                self.power_on(place)
            else:
                self.ports[place], self.pids[place] = self._start_runner(d)
        return self.ports

    def power_on(self, place: str) -> None:
        """(Re)start a Cortex-M board: blank, in its serial bootloader; else running the build.
        Its serial port stays the one exported."""
        from edgert.backends import cortex_m

        board = self.build.target.board
        if self.blank:
            from edgert.flashing import emulated_bootloader

            emulated_bootloader.options(board)
            elf = emulated_bootloader.build(self.build.target, self.workdir / "bootloader")
        else:
            elf = cortex_m.firmware_path(self.build)
        running = emulator.start(self.workdir / place, board.emulator, elf, board.name, detach=True,
                                 port=self.ports[place])
        self.pids[place] = running.pid

    def power_off(self, place: str) -> None:
        emulator.stop(self.workdir / place)

    def is_on(self, place: str) -> bool:
        return emulator.running(self.workdir / place) is not None

    def _start_runner(self, d: Path) -> tuple[int, int]:
        from edgert.backends import linux

        port = emulator.free_port()
        argv, _ = linux.local_argv(self.build.target, linux.runner_path(self.build))
        fd, counter = tempfile.mkstemp(prefix="edgert-icount-", dir=d)
        os.close(fd)
        log = open(d / "runner.log", "wb")
        proc = subprocess.Popen([*argv, "--tcp", f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, linux.ICOUNT_ENV: counter},
                                start_new_session=True)
        log.close()
        self._cleanup.append(lambda: _stop(proc))
        _wait_port(port, proc, d / "runner.log")
        return port, proc.pid

    def _start_exporter(self, ports: dict[str, int]) -> None:
        config = self.workdir / "exporter.yaml"
        text = ""
        for i, (place, port) in enumerate(ports.items()):
            text += f"{place}:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {port}\n    speed: 115200\n"
            if self._power is not None:
                text += (f"  NetworkPowerPort:\n    model: simplerest\n    host: '{self._power.url}'\n"
                         f"    index: {i}\n")
        config.write_text(text)
        log = open(self.workdir / "exporter.log", "wb")
        proc = subprocess.Popen([_tool("labgrid-exporter"), "--coordinator", self.address, "--name", self.name,
                                 str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._procs.append(proc)

    def _wait_for_resources(self, c: Coordinator) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        exporter = self._procs[-1]
        while time.monotonic() < deadline:
            if exporter.poll() is not None:
                text = (self.workdir / "exporter.log").read_text(errors="replace")[-500:]
                raise DeviceError(f"labgrid-exporter stopped (exit {exporter.returncode})", text or "no output")
            if c.has_exporter(self.name, len(self.places)):
                return
            c.sleep(0.2)
        raise DeviceError("the exporter's serial ports did not reach the coordinator",
                          f"see {self.workdir / 'exporter.log'}")


class _PowerSwitch:
    """The blank boards' power switch, as labgrid's "simplerest" power model expects one:
    GET /power/<index>/1 switches board <index> on (it starts in its bootloader), /0 off, and
    /power/<index> answers "1" or "0"."""

    def __init__(self, farm: Farm):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                parts = self.path.strip("/").split("/")
                try:
                    place = farm.places[int(parts[1])]
                    if len(parts) > 2 and parts[2] in ("0", "1"):
                        farm.power_off(place) if parts[2] == "0" else farm.power_on(place)
                    body = b"1" if farm.is_on(place) else b"0"
                except (IndexError, ValueError):
                    self.send_error(404)
                    return
                except Exception as e:  # a board that would not start: the switch reports it
                    self.send_error(500, str(e)[:200])
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: labgrid's client reports failures itself
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/power/{{index}}/{{value}}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeviceError(f"the runner exited ({proc.returncode})", log.read_text(errors="replace")[-500:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise DeviceError("the runner did not listen", f"see {log}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)  # a coordinator waits out a 5 s grace period for its exporters
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
