"""A real OpenSSH server (Debian's openssh-server) on loopback, for `edgert deploy` tests: its
own host key, one authorized client key, public-key logins only, as the user running the
tests. It listens on 127.0.0.1 at a free port and is stopped at the end of the test."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class Server:
    port: int
    user: str
    identity: Path
    options: list[str]  # ssh -o options a client needs (port, the test's known_hosts)

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1"


def available() -> str | None:
    """None when a loopback sshd can run here, else why not."""
    if not Path(SSHD).is_file():
        return "openssh-server is not installed (scripts/setup.sh installs it)"
    if shutil.which("ssh-keygen") is None or shutil.which("ssh") is None:
        return "openssh-client is not installed"
    if os.geteuid() != 0 and not Path("/run/sshd").is_dir():
        return "sshd needs its privilege separation directory /run/sshd, which only root can create"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path) -> tuple[Server, subprocess.Popen]:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress 127.0.0.1:{port}",
        f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        f"PidFile {folder / 'sshd.pid'}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "", ]))
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=open(folder / "sshd.log", "wb"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.05)
    options = [f"Port={port}", f"UserKnownHostsFile={folder / 'known_hosts'}", "StrictHostKeyChecking=accept-new"]
    return Server(port, getpass.getuser(), folder / "client_key", options), proc
