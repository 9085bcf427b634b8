"""MCUboot boards: the image signed with imgtool (MCUboot's own tool) and uploaded over the
SMP protocol (mcumgr "image upload", serial transport) with smpclient, into MCUboot's
serial recovery or an application's SMP server; then a reset makes MCUboot check and boot it.

The board profile's [flash.smp] table gives the MCUboot layout the image must match:

    [flash.smp]
    slot0 = 0x08020000          # where MCUboot's primary slot starts
    slot_size = 0x60000
    header_size = 0x200         # imgtool --header-size; the application links at slot0 + this
    align = 4                   # the flash write alignment MCUboot was built with
    version = "1.0.0"

so the profile's FLASH region must start at slot0 + header_size.
"""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgert.errors import DeviceError, ToolchainError, UserError

REQUIRED = ("slot0", "slot_size", "header_size")


@dataclass
class Stats:
    bytes_written: int
    signed: bool
    retries: int = 0


def options(board) -> dict:
    opts = board.options("smp")
    missing = [k for k in REQUIRED if k not in opts]
    if missing:
        raise UserError(f"board {board.name} has no MCUboot layout for --method smp (missing {', '.join(missing)})",
                        "add a [flash.smp] table with slot0, slot_size and header_size to the board profile")
    flash = board.region("flash")
    if flash.origin != int(opts["slot0"]) + int(opts["header_size"]):
        raise UserError(f"board {board.name}: the FLASH region starts at 0x{flash.origin:08X}, but MCUboot starts "
                        f"the image at slot0 + header_size = 0x{int(opts['slot0']) + int(opts['header_size']):08X}",
                        "set the FLASH region's origin to slot0 + header_size in the board profile")
    return opts


def imgtool() -> list[str]:
    exe = Path(sys.executable).with_name("imgtool")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("imgtool")
    if found is None:
        raise ToolchainError("imgtool (MCUboot's image tool) is not installed", "pip install imgtool")
    return [found]


def sign(binary: Path, out: Path, opts: dict, key: str | None = None) -> Path:
    """An MCUboot image: header (padded in front of the binary), the binary, and TLVs (the
    SHA-256, and with ``key`` the key hash and signature)."""
    flash_slot = int(opts["slot_size"])
    cmd = [*imgtool(), "sign", "--header-size", str(int(opts["header_size"])), "--pad-header",
           "--align", str(int(opts.get("align", 4))), "--version", str(opts.get("version", "1.0.0")),
           "--slot-size", str(flash_slot)]
    if key is not None:
        if not Path(key).is_file():
            raise UserError(f"signing key {key} not found", "give the .pem your MCUboot was built to trust")
        cmd += ["--key", str(key)]
    proc = subprocess.run([*cmd, str(binary), str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"imgtool could not sign the image: {msg[-1] if msg else 'no message'}",
                        "check the board's [flash.smp] slot_size (the image may not fit) and the key")
    return out


def flash(build, port: str, *, progress: Callable[[int, int], None] | None = None, key: str | None = None,
          timeout: float = 5.0) -> Stats:
    opts = options(build.target.board)
    binary = (build.dir / build.meta["firmware"]).with_suffix(".bin")
    signed = sign(binary, binary.with_name("firmware.signed.bin"), opts, key)
    image = signed.read_bytes()
    asyncio.run(_upload(port, image, progress, timeout))
    return Stats(bytes_written=len(image), signed=key is not None)


async def _upload(port: str, image: bytes, progress, timeout: float) -> None:
    from smpclient import SMPClient
    from smpclient.exceptions import SMPClientException
    from smpclient.generics import error
    from smpclient.requests.os_management import ResetWrite
    from smpclient.transport import SMPTransportDisconnected
    from smpclient.transport.serial import SMPSerialTransport

    client = SMPClient(SMPSerialTransport(), port, timeout_s=timeout)
    try:
        await client.connect()
    except (TimeoutError, OSError) as e:
        raise DeviceError(f"cannot open {port} for SMP: {e}",
                          "check the port; MCUboot's serial recovery starts when its recovery pin is "
                          "held at reset") from None
    try:
        async for off in client.upload(image):
            if progress:
                progress(off, len(image))
        reply = await client.request(ResetWrite())
        if error(reply):
            raise DeviceError(f"the board refused the reset after the upload: {reply}",
                              "reset it by hand: MCUboot checks and boots the new image")
    except (SMPClientException, SMPTransportDisconnected, TimeoutError) as e:
        raise DeviceError(f"SMP image upload to {port} failed: {e}",
                          "check that MCUboot's serial recovery (or an SMP server) runs on that port") from None
    finally:
        await client.disconnect()


# --------------------------------------------------------------------------- the flash method

OPTIONS = ("key",)


def add_args(parser) -> None:
    parser.add_argument("--key", help="--method smp: the imgtool signing key (.pem); default: an unsigned image "
                                      "(hash only), which MCUboot accepts only when built without signature checks")


def run(build, port, *, timeout, trace, progress=None, key: str | None = None):
    from .result import checked, need_port

    stats = flash(build, need_port(port, "smp"), progress=progress, key=key)
    return checked(build, "smp", port, stats, timeout=timeout, trace=trace)
