"""The Linux runner (Raspberry Pi targets): a static aarch64 executable with kernels from TVM's
LLVM back end, run here under qemu-aarch64 with the Pi 4's CPU model and edgert's
instruction-counting plugin; and the same runner serving TCP, as on a board."""
from __future__ import annotations

import socket
import subprocess
import time

import numpy as np
import pytest

from edgert import api
from edgert.backends import linux
from edgert.device import protocol as P
from edgert.device.board import connect
from edgert.device.session import Session
from edgert.errors import UserError
from edgert.validate.tflm_ref import run_tflm

from .malformed import CASES, expect_error

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


def _tflm(build, x):
    return run_tflm(build.model_path.read_bytes(), [x])[0]


def test_runner_is_a_static_aarch64_executable(hello_rpi4_build):
    from elftools.elf.elffile import ELFFile

    exe = hello_rpi4_build.dir / hello_rpi4_build.meta["runner"]
    with open(exe, "rb") as f:
        elf = ELFFile(f)
        assert elf["e_machine"] == "EM_AARCH64"
        assert not any(seg["p_type"] == "PT_INTERP" for seg in elf.iter_segments())  # no dynamic loader
        assert elf.get_section_by_name(".dynamic") is None


def test_emulated_runner_counts_instructions_exactly(hello_rpi4_build):
    b = hello_rpi4_build
    x = np.array([[77]], dtype=np.int8)
    with connect(b, None) as board:
        assert board.emulated and board.hello.timer is P.Timer.INSTRUCTIONS and board.unit == "instructions"
        first = board.session.run([x], b.meta["io"]["outputs"])
        second = board.session.run([x], b.meta["io"]["outputs"])
    with connect(b, None) as board:  # a new emulator process
        third = board.session.run([x], b.meta["io"]["outputs"])
    np.testing.assert_array_equal(first.outputs[0], _tflm(b, x).reshape(first.outputs[0].shape))
    assert first.ticks > 0
    assert first.ticks == second.ticks == third.ticks


def test_runner_survives_malformed_frames(hello_rpi4_build):
    b = hello_rpi4_build
    link = linux.runner_link(b, None)
    transport, name = link.transport, link.name
    s = Session(transport, name=name)
    try:
        s.check_build(b.meta)
        for wire, codes in CASES.values():
            expect_error(s, wire, codes)
        s.check_build(b.meta)  # the cases' own seqs ran ahead of the session's
        x = np.array([[-20]], dtype=np.int8)
        out = s.run([x], b.meta["io"]["outputs"]).outputs[0]
        np.testing.assert_array_equal(out, _tflm(b, x).reshape(out.shape))
    finally:
        s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runner_serves_tcp_clients_one_after_another(hello_rpi4_build):
    b = hello_rpi4_build
    port = _free_port()
    exe = b.dir / b.meta["runner"]
    proc = subprocess.Popen([*b.target.emulator, str(exe), "--tcp", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        for value in (5, 100):  # two connections: the runner goes back to accept()
            x = np.array([[value]], dtype=np.int8)
            with connect(b, f"socket://127.0.0.1:{port}") as board:
                # no counter file: the runner's clock is CLOCK_MONOTONIC, in nanoseconds
                assert not board.emulated and board.hello.timer is P.Timer.HOST and board.unit == "ns"
                out = board.session.run([x], b.meta["io"]["outputs"]).outputs[0]
            np.testing.assert_array_equal(out, _tflm(b, x).reshape(out.shape))
    finally:
        proc.kill()
        proc.wait()


def test_runner_rejects_bad_arguments(hello_rpi4_build):
    exe = hello_rpi4_build.dir / hello_rpi4_build.meta["runner"]
    proc = subprocess.run([*hello_rpi4_build.target.emulator, str(exe), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage: edgert-runner" in proc.stderr


def test_linux_targets_take_no_board():
    with pytest.raises(UserError, match="takes no --board"):
        api.build("unused.tflite", "rpi4", "unused", board="nucleo-f767zi")


def test_plugin_is_built_once_and_cached(tmp_path):
    lib = linux.plugin(tmp_path)
    mtime = lib.stat().st_mtime_ns
    assert linux.plugin(tmp_path) == lib and lib.stat().st_mtime_ns == mtime


def test_flash_points_a_linux_build_to_deploy(hello_rpi4_build):
    from edgert import flashing

    with pytest.raises(UserError, match="a Linux board: it has a runner, not firmware") as e:
        flashing.flash(hello_rpi4_build)
    assert "edgert deploy" in e.value.hint
