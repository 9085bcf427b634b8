"""`edgert deploy` against a real OpenSSH server on loopback that the test starts. This machine
is not an aarch64 board, so the target's [deploy] run wrapper starts the runner under
qemu-aarch64 with the Pi 4's CPU: everything else (ssh, the copy, the session over the SSH
channel, validate) is what a real Pi gets."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgert import api, targets
from edgert.device import deploy
from edgert.errors import DeviceError, UserError

from . import sshd
from tests.conftest import HELLO_WORLD

pytestmark = [pytest.mark.skipif(sshd.available() is not None, reason=str(sshd.available())), pytest.mark.qemu, pytest.mark.cross]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv, proc = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield srv
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def wrapped_build(tmp_path_factory):
    """hello_world for rpi4, with the target's [deploy] table set as a test on x86 needs it."""
    folder = tmp_path_factory.mktemp("pi")
    remote_dir = folder / "board-home" / "edgert"
    toml = (targets.targets_dir() / "rpi4.toml").read_text().split("[deploy]")[0]
    toml += f'[deploy]\ndir = "{remote_dir}"\nrun = ["qemu-aarch64", "-cpu", "cortex-a72"]\n'
    (folder / "rpi4-on-x86.toml").write_text(toml)
    return api.build(HELLO_WORLD, folder / "rpi4-on-x86.toml", folder / "build"), remote_dir


def _edgert(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgert.cli", *args], capture_output=True, text=True, timeout=300)


def test_deploy_then_validate_over_ssh(server, wrapped_build):
    b, remote_dir = wrapped_build
    ssh = ["--identity", str(server.identity), *(x for o in server.options for x in ("-o", o))]
    proc = _edgert("deploy", str(b.dir), "--host", server.host, *ssh)
    assert proc.returncode == 0, proc.stderr
    assert f"runs {b.report['summary']['model']}" in proc.stdout
    record = json.loads((b.dir / deploy.RECORD).read_text())
    runner = Path(record["path"])
    assert runner.parent.parent == remote_dir and runner.read_bytes() == (b.dir / b.meta["runner"]).read_bytes()
    assert not list(runner.parent.glob("*.part"))

    proc = _edgert("validate", str(b.dir), "--random", "8")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((b.dir / "validation" / "report.json").read_text())
    assert report["summary"]["samples"] == 8 and report["summary"]["exact_rate"] == 1.0
    assert report["emulated"] is False and report["summary"]["latency_unit"] == "ns"

    proc = _edgert("deploy", "--forget", str(b.dir))
    assert proc.returncode == 0 and not (b.dir / deploy.RECORD).exists()


def test_deploy_refuses_a_board_of_another_architecture(server, hello_rpi4_build):
    # the plain rpi4 target has no wrapper: an x86_64 "board" cannot run its aarch64 runner
    with pytest.raises(UserError, match=r"is a x86_64 machine; this runner is built for aarch64"):
        deploy.deploy(hello_rpi4_build, server.host, identity=str(server.identity), ssh_options=server.options)
    assert deploy.record(hello_rpi4_build) is None


def test_unreachable_board_is_named(wrapped_build, tmp_path):
    b, _ = wrapped_build
    closed = sshd._free_port()  # nothing listens there
    with pytest.raises(DeviceError, match=r"cannot reach nobody@127\.0\.0\.1 over SSH") as e:
        deploy.deploy(b, "nobody@127.0.0.1", ssh_options=[f"Port={closed}", "ConnectTimeout=5"])
    assert "--identity" in e.value.hint
    assert deploy.record(b) is None


def test_jetson_runner_is_built_on_the_board(server, tmp_path):
    """A Jetson target builds its runner on the board (its own glibc): here the "board" is this
    x86_64 machine, which compiles and starts it; without a GPU it answers HELLO and names
    the missing driver when asked to invoke."""
    from elftools.elf.elffile import ELFFile

    from edgert.device import protocol as P
    from edgert.device.board import connect
    from edgert.device.session import ProtocolError

    toml = (targets.targets_dir() / "jetson-orin-nano.toml").read_text()
    toml = toml.replace('dir = ".cache/edgert"', f'dir = "{tmp_path / "board-home"}"')
    (tmp_path / "orin.toml").write_text(toml)
    b = api.build(HELLO_WORLD, tmp_path / "orin.toml", tmp_path / "build")
    path, hello = deploy.deploy(b, server.host, identity=str(server.identity), ssh_options=server.options)
    assert hello.model_hash == b.meta["model_hash"]
    with open(path, "rb") as f:
        assert ELFFile(f)["e_machine"] == "EM_X86_64"  # compiled by the board's cc, not the cross compiler
    with connect(b, None) as board:
        with pytest.raises(ProtocolError) as e:
            board.session.run([np.array([[3]], dtype=np.int8)], b.meta["io"]["outputs"])
    assert e.value.code is P.Err.INVOKE_FAILED and e.value.detail == 0x10001
