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
import tarfile
from pathlib import Path

from edgert.errors import DeviceError, UserError

from .ssh import RECORD, Remote, record

__all__ = ["RECORD", "Remote", "deploy", "forget", "record"]

def _tar(files: list[Path]) -> bytes:
    """The files in one flat tar archive (their names are unique)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    return buf.getvalue()


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
