"""`edgert doctor`: what this machine has for building, flashing and validating (serial
ports, debug probes, toolchains, emulators, flashing tools), and for each missing piece
what it is needed for and how to install it."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ST_LINK_VID = 0x0483  # STMicroelectronics' USB vendor ID: ST-LINK probes and their virtual COM port


@dataclass
class Check:
    group: str
    name: str
    found: bool
    detail: str          # version, path, or what was seen
    needed_for: str
    fix: str = ""
    required: bool = False


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else ""


def _tool(group: str, exe: str, needed_for: str, fix: str, *, required: bool = False,
          version_arg: str = "--version") -> Check:
    beside = Path(sys.executable).with_name(exe)  # tools installed into edgert's own environment
    path = str(beside) if beside.is_file() else shutil.which(exe)
    detail = f"{path}: {_version([path, version_arg])}" if path else "not found"
    return Check(group, exe, path is not None, detail, needed_for, fix, required)


def _module(group: str, module: str, needed_for: str, fix: str) -> Check:
    found = importlib.util.find_spec(module) is not None
    detail = "installed" if found else "not installed"
    if found:
        from importlib import metadata

        with contextlib.suppress(metadata.PackageNotFoundError):
            detail = f"version {metadata.version(module)}"
    return Check(group, module, found, detail, needed_for, fix)


def serial_ports() -> list[Check]:
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    if not ports:
        return [Check("serial ports", "(none)", False, "no serial port found", "flash --port, run/validate on a board",
                      "plug the board in (the ST-LINK USB port on Nucleo boards); check `dmesg` and that you are in "
                      "the dialout group")]
    out = []
    for p in ports:
        st = " [ST-LINK virtual COM port]" if p.vid == ST_LINK_VID else ""
        out.append(Check("serial ports", p.device, True, f"{p.description}{st}", "flash --port, run/validate on a board"))
    return out


def probes() -> list[Check]:
    if importlib.util.find_spec("pyocd") is None:
        return [Check("debug probes", "(pyOCD missing)", False, "cannot look for probes",
                      "flash --method probe", "pip install pyocd")]
    from pyocd.core.helpers import ConnectHelper

    with contextlib.redirect_stdout(io.StringIO()):
        found = ConnectHelper.get_all_connected_probes(blocking=False)
    if not found:
        return [Check("debug probes", "(none)", False, "pyOCD sees no probe", "flash --method probe",
                      "connect the board's ST-LINK (or another CMSIS-DAP / J-Link probe) over USB; "
                      "on Linux install the probe's udev rules")]
    return [Check("debug probes", p.unique_id, True, p.description, "flash --method probe") for p in found]


def run_checks() -> list[Check]:
    apt = "apt-get install {} (or run scripts/setup.sh)"
    checks = [
        _tool("toolchains", "cc", "--target host builds and the host firmware", apt.format("gcc libc6-dev"),
              required=True),
        _tool("toolchains", "arm-none-eabi-gcc", "--target cortex-m7 / cortex-m4 firmware",
              apt.format("gcc-arm-none-eabi libnewlib-arm-none-eabi"), required=True),
        _tool("toolchains", "arm-none-eabi-objcopy", "firmware .bin / .hex", apt.format("binutils-arm-none-eabi"),
              required=True),
        _tool("emulators", "qemu-system-arm", "the emulated boards (flash without --port)",
              apt.format("qemu-system-arm"), required=True),
        _tool("toolchains", "aarch64-linux-gnu-gcc", "--target rpi* / jetson-* runners",
              apt.format("gcc-aarch64-linux-gnu libc6-dev-arm64-cross")),
        _module("toolchains", "nvidia.cuda_nvcc", "--target jetson-*: ptxas and libdevice for the CUDA kernels",
                "pip install 'edgert[jetson]'"),
        _tool("emulators", "qemu-aarch64", "running Pi / Jetson runners here (validate, bench without a board)",
              apt.format("qemu-user")),
        _tool("deploy", "ssh", "edgert deploy (Raspberry Pi, Jetson)", apt.format("openssh-client"),
              version_arg="-V"),
        _module("flashing", "pyocd", "flash --method probe (SWD)", "pip install pyocd"),
        _tool("flashing", "openocd", "flash --method probe --probe-tool openocd", apt.format("openocd")),
        _module("flashing", "smpclient", "flash --method smp (MCUboot)", "pip install smpclient"),
        _module("flashing", "imgtool", "flash --method smp: signing MCUboot images", "pip install imgtool"),
        _tool("export", "pio", "building exported PlatformIO projects (edgert export --platformio)",
              "pip install platformio", version_arg="--version"),
    ]
    return serial_ports() + probes() + checks


# What `edgert --version` reports beside edgert's own version: (name, command) for each tool.
VERSIONED_TOOLS = (
    ("cc", ["cc", "--version"]),
    ("arm-none-eabi-gcc", ["arm-none-eabi-gcc", "--version"]),
    ("aarch64-linux-gnu-gcc", ["aarch64-linux-gnu-gcc", "--version"]),
    ("qemu-system-arm", ["qemu-system-arm", "--version"]),
    ("qemu-aarch64", ["qemu-aarch64", "--version"]),
)


def versions() -> str:
    """edgert's version, then TVM's and each toolchain's and emulator's it finds ("not found"
    otherwise): the lines a bug report needs."""
    from importlib import metadata

    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    lines = [f"edgert {dist('edgert')}", f"  {'apache-tvm':22} {dist('apache-tvm')}"]
    for name, cmd in VERSIONED_TOOLS:
        path = shutil.which(cmd[0])
        lines.append(f"  {name:22} {_version([path, *cmd[1:]]) if path else 'not found'}")
    return "\n".join(lines)


def format_checks(checks: list[Check]) -> str:
    lines, group = [], None
    for c in checks:
        if c.group != group:
            group = c.group
            lines.append(f"{group}:")
        mark = "ok  " if c.found else ("MISS" if c.required else "--  ")
        lines.append(f"  {mark} {c.name:22} {c.detail}")
        if not c.found:
            lines.append(f"       {'':22} for: {c.needed_for}; fix: {c.fix}")
    missing = [c.name for c in checks if c.required and not c.found]
    lines.append("")
    lines.append("everything edgert needs is here" if not missing else
                 f"missing what edgert needs: {', '.join(missing)} (scripts/setup.sh installs it all)")
    return "\n".join(lines)
