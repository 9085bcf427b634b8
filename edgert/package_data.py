"""Where edgert's non-Python parts live: the target and board files (``targets/`` in the
source tree) and the firmware sources (``firmware/``: the device runtime, the emulated
board's bootloader, the host firmware's board, the Linux runner and the QEMU plugin).

pyproject.toml maps both folders to data packages inside edgert (``edgert.target_files``,
``edgert.firmware``), so a wheel carries them and one lookup through importlib.resources finds
them in an installed wheel and in an editable install of the source tree alike.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgert.errors import ToolchainError

FIRMWARE_PARTS = ("runtime", "bootloader", "host", "linux")


def _package_dir(package: str, what: str) -> Path:
    try:
        path = Path(str(resources.files(package)))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_dir():
        raise ToolchainError(f"edgert's {what} are missing from its installation (package {package})",
                             "reinstall edgert: pip install --force-reinstall edgert")
    return path


def targets_dir() -> Path:
    """The folder of target files (``<name>.toml``) with their ``boards/``."""
    return _package_dir("edgert.target_files", "target files")


def firmware_dir(part: str) -> Path:
    """One folder of the firmware sources: ``runtime``, ``bootloader``, ``host`` or ``linux``."""
    if part not in FIRMWARE_PARTS:
        raise ValueError(f"unknown firmware part {part!r}")
    path = _package_dir("edgert.firmware", "firmware sources") / part
    if not path.is_dir():
        raise ToolchainError(f"edgert's firmware/{part} sources are missing from its installation",
                             "reinstall edgert: pip install --force-reinstall edgert")
    return path
