"""Reaching the runner of a Linux board build (Raspberry Pi, Jetson), in this order:

1. ``port``: a runner already serving on a serial port or TCP (``socket://pi:5555``, after
   ``edgert-runner --tcp 5555`` on the board);
2. the board the build was deployed to (``edgert deploy``, recorded in ``<build>/deploy.json``):
   the runner started over SSH for the session, speaking on the SSH channel's stdin/stdout;
3. otherwise the runner here, under the target's emulator (qemu-aarch64 with the board's
   CPU model) with edgert's instruction-counting plugin: the runner's ticks are then
   executed instructions, exact and repeatable; or directly, for a target built for this
   machine's CPU that names no emulator.
"""
from __future__ import annotations

import os
import tempfile

from edgert.backends import linux

from . import deploy
from .transport import ProcessTransport, SerialTransport, Transport


def open_runner(build, port: str | None) -> tuple[Transport, bool, str]:
    """(transport, emulated, a name for messages)."""
    exe = linux.runner_path(build)
    if port is not None:
        return SerialTransport(port), False, f"the runner at {port}"
    record = deploy.record(build)
    if record is not None:
        remote = deploy.Remote.from_record(record)
        name = f"the runner on {remote.host}"
        return ProcessTransport(remote.argv(record["command"]), name=name), False, name
    argv, emulated = linux.local_argv(build.target, exe)
    if not emulated:
        return ProcessTransport(argv, name="the runner"), False, "the runner"
    fd, counter = tempfile.mkstemp(prefix="edgert-icount-")
    os.close(fd)
    name = f"the runner under {' '.join(build.target.emulator)}"
    return (ProcessTransport(argv, env={linux.ICOUNT_ENV: counter}, name=name,
                             cleanup=lambda: os.unlink(counter)), True, name)
