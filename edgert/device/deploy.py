"""`edgert deploy`: put a Linux board build's runner on the board over SSH and check that it
answers with this build's model.

    deploy(build, "pi@raspberrypi", identity=None, ssh_options=["Port=2222"])

OpenSSH's client does the work (keys, agents, known hosts and ~/.ssh/config as the user has
them); edgert never asks for a password (BatchMode). The runner is copied through the SSH
channel (no scp or sftp needed on the board) to ``~/<[deploy] dir>/<model hash>-<target>/``,
written to a temporary name and renamed, so an interrupted copy never leaves a half runner.
Sessions later start it over SSH (``exec [wrapper] runner``): the protocol runs on the
channel's stdin/stdout, and nothing listens on the board's network. The deployment is
recorded in ``<build>/deploy.json``; ``edgert run/validate/bench BUILD`` use it.
"""
from __future__ import annotations

import io
import json
import shlex
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from edgert.errors import DeviceError, ToolchainError, UserError

RECORD = "deploy.json"
SSH_TIMEOUT = 60.0  # seconds for one SSH command (copying a runner of a few MB included)


@dataclass
class Remote:
    host: str                       # [user@]host, or a Host alias of ~/.ssh/config
    identity: str | None = None     # ssh -i
    options: list[str] = field(default_factory=list)  # ssh -o KEY=VALUE

    @classmethod
    def from_record(cls, record: dict) -> Remote:
        return cls(record["host"], record.get("identity"), list(record.get("ssh_options", [])))

    def argv(self, command: list[str]) -> list[str]:
        """ssh running ``command`` on the board, binary-clean on stdin/stdout."""
        ssh = shutil.which("ssh")
        if ssh is None:
            raise ToolchainError("ssh is not installed", "install Debian's openssh-client")
        opts = ["-T", "-e", "none", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        for o in self.options:
            opts += ["-o", o]
        if self.identity:
            opts += ["-i", self.identity]
        return [ssh, *opts, self.host, " ".join(shlex.quote(c) for c in command)]

    def run(self, command: list[str], stdin: bytes = b"", what: str = "") -> str:
        try:
            proc = subprocess.run(self.argv(command), input=stdin, capture_output=True, timeout=SSH_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.host}: {what or command[0]} took over {SSH_TIMEOUT:g} s",
                              "check the network and that the board is up") from None
        if proc.returncode == 255:
            raise DeviceError(f"cannot reach {self.host} over SSH: "
                              f"{proc.stderr.decode(errors='replace').strip() or 'ssh failed'}",
                              "check the host name, that sshd runs on the board and that your key is accepted "
                              "(`ssh HOST true` must work without a password; --identity KEY, -o Port=N)")
        if proc.returncode != 0:
            raise DeviceError(f"{self.host}: {what or command[0]} failed (exit {proc.returncode}): "
                              f"{proc.stderr.decode(errors='replace').strip()}", "check the board's disk and permissions")
        return proc.stdout.decode(errors="replace")


def _tar(files: list[Path]) -> bytes:
    """The files in one flat tar archive (their names are unique)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    return buf.getvalue()


def record(build) -> dict | None:
    path = Path(build.dir) / RECORD
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def forget(build) -> bool:
    path = Path(build.dir) / RECORD
    if path.is_file():
        path.unlink()
        return True
    return False


def deploy(build, host: str, *, identity: str | None = None, ssh_options: list[str] | None = None,
           timeout: float | None = None):
    """Copy the runner to ``host`` and check it (HELLO, model hash). Returns (remote path, Hello)."""
    from edgert.backends import linux
    from edgert.device.board import connect

    exe = linux.runner_path(build)
    target = build.target
    if identity is not None:  # the record serves later commands, from any folder
        identity = str(Path(identity).expanduser().resolve())
    remote = Remote(host, identity, list(ssh_options or ()))
    wrapper = [str(w) for w in target.deploy.get("run", [])]
    on_board = bool(target.deploy.get("build_on_board"))
    if not wrapper and not on_board:  # a wrapper (an emulator) may run another architecture's runner
        machine = remote.run(["uname", "-m"], what="uname -m").strip()
        if machine != linux.machine(target):
            raise UserError(f"{host} is a {machine} machine; this runner is built for {linux.machine(target)} "
                            f"(target {target.name})",
                            "deploy to the board the build is for, or build for that board's target")
    folder = f"{target.deploy.get('dir', '.cache/edgert')}/{build.meta['model_hash'][:16]}-{target.name}"
    path = f"{folder}/{linux.RUNNER}"
    q = shlex.quote
    if on_board:
        # The board's own C compiler links the runner against the board's C library: a runner
        # cross-linked here needs this machine's glibc (2.34 or later), which JetPack 4 and 5
        # do not have.
        cc = " ".join(q(w) for w in [*target.deploy.get("cc", ["cc"]), *target.deploy.get("cflags", ["-O2"])])
        script = (f"mkdir -p {q(folder)}/src && cd {q(folder)}/src && tar xf - && "
                  f"{cc} -std=c99 -D_DEFAULT_SOURCE -I. -include edgert_hook.h *.c {' '.join(linux.libraries(target))} "
                  f"-o ../{linux.RUNNER}.part && cd .. && mv -f {linux.RUNNER}.part {linux.RUNNER}")
        payload, what = _tar(linux.runner_sources(build.dir, target)), f"building the runner on {host} in {folder}"
    else:
        script = f"mkdir -p {q(folder)} && cat > {q(path)}.part && chmod 755 {q(path)}.part && mv -f {q(path)}.part {q(path)}"
        payload, what = exe.read_bytes(), f"copying the runner to {path}"
    remote.run(["sh", "-c", script], stdin=payload, what=what)
    rec = {"host": host, "identity": identity, "ssh_options": remote.options, "path": path,
           "command": ["exec", *wrapper, path]}
    (Path(build.dir) / RECORD).write_text(json.dumps(rec, indent=2) + "\n")
    try:
        with connect(build, None, **({"timeout": timeout} if timeout else {})) as board:
            return path, board.hello
    except DeviceError:
        forget(build)
        raise
