"""The emulated board: QEMU running a build's firmware, its UART on a local TCP port.

``-icount shift=0`` makes the emulated clock advance exactly one nanosecond per instruction,
so the firmware's SysTick reads are instruction counts, identical run to run. The board is
started paused (-S) and resumed through QMP once its serial port accepts connections, so
nothing the firmware does is missed.

A started board is recorded in ``<build>/board.json`` (URL, PID) so that later commands
(`edgert run`, `edgert validate`) find it; ``stop()`` ends it. Only the PID edgert started
is ever signalled.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgert.errors import DeviceError, ToolchainError

STATE_FILE = "board.json"
LOG_FILE = "board.log"
START_TIMEOUT = 10.0
_children: dict[int, subprocess.Popen] = {}  # boards started by this process, to reap them


@dataclass
class RunningBoard:
    url: str
    pid: int
    board: str
    elf: str
    qmp: str = ""  # QEMU's QMP socket, for a reset (removed with the board)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _qmp(sock_path: Path, command: str, deadline: float) -> None:
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(max(deadline - time.monotonic(), 0.1))
                s.connect(str(sock_path))
                f = s.makefile("rwb")
                f.readline()  # greeting
                for cmd in ("qmp_capabilities", command):
                    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                    f.flush()
                    while True:
                        reply = json.loads(f.readline() or b"{}")
                        if "return" in reply or "error" in reply:
                            break
                return
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(build_dir: Path, qemu_argv: tuple[str, ...], elf: Path, board: str, *, detach: bool,
          port: int | None = None) -> RunningBoard:
    """Start QEMU on ``elf``; returns once the board runs and its UART accepts a client on
    ``port`` (default: a free one)."""
    exe = shutil.which(qemu_argv[0])
    if exe is None:
        raise ToolchainError(f"{qemu_argv[0]} is not installed",
                             "install Debian's qemu-system-arm, or run scripts/setup.sh")
    stop(build_dir)
    port = port or free_port()
    # Unix socket paths are limited to ~107 bytes: keep the QMP socket in a short temp folder.
    qmp_dir = Path(tempfile.mkdtemp(prefix="edgert-"))
    qmp_path = qmp_dir / "qmp.sock"
    argv = [exe, *qemu_argv[1:], "-icount", "shift=0", "-display", "none", "-monitor", "none",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on",
            "-qmp", f"unix:{qmp_path},server=on,wait=off", "-S", "-kernel", str(elf)]
    log = open(build_dir / LOG_FILE, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=detach)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        _wait_port(port, proc, deadline)
        _qmp(qmp_path, "cont", deadline)
    except (OSError, DeviceError):
        _kill(proc.pid)
        text = (build_dir / LOG_FILE).read_text(errors="replace").strip()
        shutil.rmtree(qmp_dir, ignore_errors=True)
        raise DeviceError(f"the emulated board {board} did not start: {text[-300:] or 'no output'}",
                          f"see {build_dir / LOG_FILE}; the command was: {' '.join(argv)}") from None
    finally:
        log.close()
    running = RunningBoard(url=f"socket://127.0.0.1:{port}", pid=proc.pid, board=board, elf=str(elf),
                           qmp=str(qmp_path))
    (build_dir / STATE_FILE).write_text(json.dumps(running.__dict__, indent=2) + "\n")
    _children[proc.pid] = proc
    return running


def _wait_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            raise DeviceError("QEMU exited", "")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return  # QEMU accepts the next client once this one closes
        except OSError:
            if time.monotonic() > deadline:
                raise DeviceError("timeout", "") from None
            time.sleep(0.05)


def running(build_dir: Path) -> RunningBoard | None:
    """The board recorded for this build, if it is still running."""
    path = build_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        b = RunningBoard(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if not _alive(b.pid) or not _is_qemu(b.pid):
        path.unlink(missing_ok=True)
        return None
    return b


def record_image(build_dir: Path, elf: Path) -> RunningBoard:
    """Note that the running board now runs ``elf`` (a bootloader has just started it)."""
    b = running(build_dir)
    if b is None:
        raise DeviceError("the emulated board stopped", f"see {build_dir / LOG_FILE}")
    b.elf = str(elf)
    (build_dir / STATE_FILE).write_text(json.dumps(b.__dict__, indent=2) + "\n")
    return b


def _is_qemu(pid: int) -> bool:
    try:
        return "qemu" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    proc = _children.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def reset(build_dir: Path) -> None:
    """Press the emulated board's reset button (QMP system_reset): the firmware starts again
    from its reset vector (its startup code clears .bss), its UART connection kept."""
    b = running(build_dir)
    if b is None or not b.qmp:
        raise DeviceError(f"no emulated board runs {build_dir}", "start one with `edgert flash BUILD`")
    _qmp(Path(b.qmp), "system_reset", time.monotonic() + START_TIMEOUT)


def stop(build_dir: Path) -> bool:
    """Stop the board recorded for this build; True if one was running."""
    b = running(build_dir)
    (build_dir / STATE_FILE).unlink(missing_ok=True)
    if b is None:
        return False
    _kill(b.pid)
    if b.qmp:
        shutil.rmtree(Path(b.qmp).parent, ignore_errors=True)
    return True
