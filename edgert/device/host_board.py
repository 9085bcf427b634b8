"""The firmware built for the host: edgert's runtime and a build's model compiled with the
host C compiler, its UART on stdin/stdout. The protocol code runs here exactly as on a board
(same C), which makes malformed-frame tests fast and independent of the emulator."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgert.backends.cortex_m import HOOK_FLAGS, MODEL_SOURCES, model_desc_c, runtime_dir
from edgert.errors import ToolchainError
from edgert.package_data import firmware_dir

from .transport import ProcessTransport

RUNTIME_SOURCES = ("main.c", "server.c", "framing.c")
EXECUTABLE = "firmware-host"


def build(build_dir: Path, meta: dict) -> Path:
    """Compile ``build_dir``'s model with the firmware runtime into ``build_dir/firmware-host``."""
    cc = shutil.which("cc")
    if cc is None:
        raise ToolchainError("the host C compiler cc is not installed", "install gcc or run scripts/setup.sh")
    rt = runtime_dir()
    host = firmware_dir("host")
    desc = build_dir / "model_desc_host.c"
    desc.write_text(model_desc_c(meta))
    out = build_dir / EXECUTABLE
    cmd = [cc, "-O2", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wno-unused-variable", "-Wno-maybe-uninitialized",
           f"-I{build_dir}", f"-I{rt}", *HOOK_FLAGS, *(str(build_dir / s) for s in _model_sources(meta)), str(desc),
           *(str(rt / s) for s in RUNTIME_SOURCES), str(host / "board_host.c"), "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"building the host firmware failed:\n{proc.stderr[-2000:]}",
                             f"this is an edgert bug; the command was: {' '.join(cmd)}")
    return out


def _model_sources(meta: dict) -> tuple[str, ...]:
    """The build's model files: C kernels, or an LLVM kernel object (target host-llvm)."""
    from edgert import targets
    from edgert.backends import host

    return host.LLVM_SOURCES if targets.load(meta["target"]).kernel_backend == "llvm" else MODEL_SOURCES


def start(build_dir: Path, meta: dict) -> ProcessTransport:
    exe = build_dir / EXECUTABLE
    sources = [build_dir / s for s in (*_model_sources(meta), "meta.json")]
    if not exe.is_file() or any(s.stat().st_mtime > exe.stat().st_mtime for s in sources if s.exists()):
        build(build_dir, meta)  # absent, or older than the build it serves
    return ProcessTransport([str(exe)])
