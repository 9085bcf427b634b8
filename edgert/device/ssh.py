"""The SSH link to a Linux board (OpenSSH's client: keys, agents, known hosts and
~/.ssh/config as the user has them; never a password, BatchMode), and the record of where a
build was deployed (``<build>/deploy.json``, written by edgert.device.deploy). A leaf: the
Linux backend opens sessions through it, deploy builds on it."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgert.errors import DeviceError, ToolchainError

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


def record(build) -> dict | None:
    path = Path(build.dir) / RECORD
    if not path.is_file():
        return None
    return json.loads(path.read_text())
