"""Flashing through a debug probe over SWD (the ST-LINK on Nucleo and Discovery boards, or
any CMSIS-DAP / J-Link probe): pyOCD's Python API, or OpenOCD's `program` command where
pyOCD is not installed or the user asks for it. The board profile's [flash.probe] table
names the target for each:

    [flash.probe]
    pyocd_target = "stm32f767zi"
    openocd = ["-f", "board/st_nucleo_f7.cfg"]
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import subprocess
from dataclasses import dataclass

from edgert.errors import DeviceError, ToolchainError, UserError

TOOLS = ("pyocd", "openocd")


@dataclass
class Stats:
    bytes_written: int
    tool: str
    retries: int = 0


def pyocd_installed() -> bool:
    return importlib.util.find_spec("pyocd") is not None


def choose_tool(probe_tool: str | None) -> str:
    if probe_tool is not None:
        if probe_tool not in TOOLS:
            raise UserError(f"unknown probe tool {probe_tool!r}", f"use one of: {', '.join(TOOLS)}")
        return probe_tool
    if pyocd_installed():
        return "pyocd"
    if shutil.which("openocd"):
        return "openocd"
    raise ToolchainError("no probe tool: neither pyOCD nor OpenOCD is installed",
                         "pip install pyocd (or apt-get install openocd)")


def flash(build, *, probe_tool: str | None = None) -> Stats:
    board = build.target.board
    opts = board.options("probe")
    hex_path = (build.dir / build.meta["firmware"]).with_suffix(".hex")
    nbytes = (build.dir / build.meta["firmware"]).with_suffix(".bin").stat().st_size
    tool = choose_tool(probe_tool)
    if tool == "pyocd":
        if "pyocd_target" not in opts:
            raise UserError(f"board {board.name} names no pyOCD target",
                            "add pyocd_target to its [flash.probe] table (`pyocd list --targets`)")
        _pyocd(str(hex_path), opts["pyocd_target"])
    else:
        if "openocd" not in opts:
            raise UserError(f"board {board.name} names no OpenOCD configuration",
                            "add openocd = [\"-f\", \"board/....cfg\"] to its [flash.probe] table")
        _openocd(str(hex_path), list(opts["openocd"]))
    return Stats(nbytes, tool)


def _pyocd(hex_path: str, target: str) -> None:
    from pyocd.core.exceptions import Error as PyocdError
    from pyocd.core.helpers import ConnectHelper
    from pyocd.flash.file_programmer import FileProgrammer

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pyOCD prints "No connected debug probes"
            session = ConnectHelper.session_with_chosen_probe(blocking=False, options={"target_override": target})
    except PyocdError as e:
        raise DeviceError(f"pyOCD could not open a probe: {e}", "check the USB cable and udev rules "
                          "(`pyocd list` shows the probes pyOCD can see)") from None
    if session is None:
        raise DeviceError("no debug probe found (pyOCD saw none)",
                          "connect the board's ST-LINK USB port; on Linux install the probe's udev rules; "
                          "`pyocd list` shows what is connected")
    try:
        with session:
            FileProgrammer(session).program(hex_path, file_format="hex")
            session.board.target.reset()
    except PyocdError as e:
        hint = (f"install the target's pack: `pyocd pack install {target}`" if "target" in str(e).lower()
                else "check the probe's connection to the board (SWD), and that the board is powered")
        raise DeviceError(f"pyOCD failed to program {target}: {e}", hint) from None


def _openocd(hex_path: str, config: list[str]) -> None:
    exe = shutil.which("openocd")
    if exe is None:
        raise ToolchainError("openocd is not installed", "apt-get install openocd, or pip install pyocd")
    cmd = [exe, *config, "-c", f"program {hex_path} verify reset exit"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise DeviceError(f"OpenOCD failed to program the board:\n{tail}",
                          "check the probe (USB, udev rules) and the board's [flash.probe] openocd configuration")


# --------------------------------------------------------------------------- the flash method

OPTIONS = ("probe_tool",)


def add_args(parser) -> None:
    parser.add_argument("--probe-tool", choices=["pyocd", "openocd"],
                        help="--method probe: the tool (default: pyOCD if installed, else OpenOCD)")


def run(build, port, *, timeout, trace, progress=None, probe_tool: str | None = None):
    """Program over SWD; with --port, then ask the board for its model."""
    from .result import checked

    return checked(build, "probe", port, flash(build, probe_tool=probe_tool), timeout=timeout, trace=trace)
