"""The Linux board backend (Raspberry Pi, Jetson): the model and edgert's runtime linked into
one static executable, the runner, that serves the same protocol as the firmware over
stdin/stdout, TCP or a serial port (firmware/linux/runner.c).

The kernels come from TVM's LLVM back end for the target's exact CPU (``kernels.o``, with
``kernels.s`` beside it to read), or for a Jetson ([kernels] backend = "cuda") from
codegen.emit.cuda as a cubin inside model.c, launched by firmware/linux/cuda_driver.c. model.c,
the weights and the runtime are cross-compiled by the target's C compiler. Outputs in
``<build>/runner/``: edgert-runner and model_desc.c.

Running it here: ``local_argv`` starts the runner under the target's emulator
(qemu-aarch64 with the board's CPU model, which refuses instructions that CPU lacks) with
edgert's instruction-counting QEMU plugin, so the runner's timer counts instructions.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

from edgert.codegen.emit import KERNEL_OBJECT
from edgert.codegen.policy import CodegenPolicy, cuda_policy, llvm_cpu_policy
from edgert.errors import ToolchainError, UserError
from edgert.package_data import firmware_dir
from edgert.targets import Target

from . import Link, built_file, toolchain
from .cortex_m import HOOK_FLAGS, model_desc_c, runtime_dir

RUNNER_DIR = "runner"
RUNNER = "edgert-runner"
MODEL_SOURCES = ("model.c", "weights.c", "kernel_helpers.c")
RUNTIME_SOURCES = ("server.c", "framing.c")
RUNTIME_HEADERS = ("board.h", "server.h", "framing.h", "edgert_protocol.h", "edgert_hook.h")
PLUGIN_SOURCE = "icount_plugin.c"
# The instruction counter the plugin writes and the runner reads (one uint64 in a file).
ICOUNT_ENV = "EDGERT_ICOUNT_FILE"


def linux_dir() -> Path:
    return firmware_dir("linux")


def tool(name: str, package: str) -> str:
    return toolchain.tool(name, package)


def build_runner(build_dir: Path, target: Target, meta: dict) -> dict:
    """Cross-compile and link the runner; returns its memory report (section sizes)."""
    out = build_dir / RUNNER_DIR
    out.mkdir(exist_ok=True)
    (out / "model_desc.c").write_text(model_desc_c(meta))
    rt, linux = runtime_dir(), linux_dir()
    cc = tool(target.cc, "gcc-aarch64-linux-gnu and libc6-dev-arm64-cross")
    cmd = [cc, *target.cflags, "-D_DEFAULT_SOURCE", f"-I{build_dir}", f"-I{rt}", f"-I{linux}", *HOOK_FLAGS,
           *(str(p) for p in runner_sources(build_dir, target) if p.suffix in (".c", ".o")),
           *target.ldflags, *libraries(target), "-o", str(out / RUNNER)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise ToolchainError(f"building the runner failed:\n{tail}",
                             f"this is an edgert bug; the command was: {' '.join(cmd)}")
    return memory_report(out / RUNNER)


def runner_sources(build_dir: Path, target: Target) -> list[Path]:
    """Every file the runner is compiled from (headers included): the model, its HELLO
    descriptor, the runtime, and the CUDA driver glue of a GPU target."""
    rt, linux = runtime_dir(), linux_dir()
    if target.kernel_backend == "cuda":  # kernels in a cubin inside model.c; the driver API loaded at run time
        model = [build_dir / "model.c", build_dir / "weights.c", linux / "cuda_driver.c", linux / "edgert_cuda.h"]
    else:
        model = [build_dir / s for s in MODEL_SOURCES] + [build_dir / KERNEL_OBJECT]
    return [*model, build_dir / "model.h", build_dir / RUNNER_DIR / "model_desc.c",
            *(rt / s for s in RUNTIME_SOURCES), *(rt / h for h in RUNTIME_HEADERS), linux / "runner.c"]


def libraries(target: Target) -> list[str]:
    return (["-ldl"] if target.kernel_backend == "cuda" else []) + ["-lm"]


def memory_report(exe: Path) -> dict:
    """Bytes of the runner's code, constants (weights among them) and static RAM (the arena
    among it), read from its ELF."""
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    elf = toolchain.open_elf(exe)
    for sec in toolchain.allocated_sections(elf):
        flags = sec["sh_flags"]
        key = ("text" if flags & toolchain.SHF_EXECINSTR else "bss" if sec["sh_type"] == "SHT_NOBITS"
               else "rodata" if not flags & toolchain.SHF_WRITE else "data")
        sizes[key] += sec["sh_size"]
    static = not any(seg["p_type"] == "PT_INTERP" for seg in elf.iter_segments())
    arena = toolchain.symbol_size(elf, toolchain.ARENA_SYMBOL)
    return {"runner_bytes": exe.stat().st_size, "static": static,
            "flash": {"text": sizes["text"], "rodata": sizes["rodata"], "data": sizes["data"],
                      "total": sizes["text"] + sizes["rodata"] + sizes["data"]},
            "ram": {"data": sizes["data"], "bss": sizes["bss"] - arena, "arena": arena,
                    "total": sizes["data"] + sizes["bss"]}}


def runner_path(build) -> Path:
    return built_file(build, "linux", "runner", "not a Linux board", "rpi4")


def plugin(cache: Path | None = None) -> Path:
    """edgert's instruction-counting QEMU plugin, compiled for this machine on first use
    (cached by the source's hash)."""
    src = linux_dir() / PLUGIN_SOURCE
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    cache = cache or Path.home() / ".cache" / "edgert"
    lib = cache / f"icount-{digest}.so"
    if lib.is_file():
        return lib
    cache.mkdir(parents=True, exist_ok=True)
    cc = tool("cc", "gcc")
    tmp = lib.with_suffix(".tmp")
    proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", str(src), "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"building the QEMU plugin failed: {proc.stderr.strip()[-500:]}", "this is an edgert bug")
    tmp.replace(lib)
    return lib


def machine(target: Target) -> str:
    """The CPU architecture a Linux target's runner is built for, as `uname -m` prints it."""
    return target.kernels.get("mtriple", "aarch64-linux-gnu").split("-")[0]


def local_argv(target: Target, exe: Path) -> tuple[list[str], bool]:
    """How to run ``exe`` on this machine: (argv, emulated). Under the target's emulator, with
    the instruction-counting plugin (the caller sets ICOUNT_ENV to the counter file); or
    directly, for a target without an emulator that is built for this machine's CPU."""
    if target.emulator:
        qemu = tool(target.emulator[0], "qemu-user")
        return [qemu, *target.emulator[1:], "-plugin", str(plugin()), str(exe)], True
    if machine(target) == platform.machine():
        return [str(exe)], False
    raise UserError(f"target {target.name} names no emulator to run its {machine(target)} runner here",
                    "deploy it to the board (`edgert deploy BUILD --host user@board`) or pass --port")


# --------------------------------------------------------------------------- the backend interface

#: op kinds this backend compiles: all (LLVM and CUDA kernels alike)
OPS = None


def policy(target: Target) -> CodegenPolicy:
    if target.kernel_backend == "cuda":
        return cuda_policy(target.kernels["arch"], int(target.kernels.get("threads", 64)))
    return llvm_cpu_policy(target.llvm)


def build(build_dir: Path, target: Target, meta: dict, kernels) -> dict:
    report = {"memory": build_runner(build_dir, target, meta)}
    meta["runner"] = f"{RUNNER_DIR}/{RUNNER}"
    if target.kernel_backend == "cuda":
        report["cuda"] = {"arch": kernels.arch, "ptxas": kernels.ptxas_version, "cubin_bytes": len(kernels.cubin),
                          "launches": {n: [la.grid, la.block] for n, la in kernels.launches.items()}}
    return report


@contextlib.contextmanager
def open_link(build, port: str | None) -> Iterator[Link]:
    """The runner of a Linux board build, reached in this order:

    1. ``port``: a runner already serving on a serial port or TCP (``socket://pi:5555``,
       after ``edgert-runner --tcp 5555`` on the board);
    2. the board the build was deployed to (``edgert deploy``, recorded in
       ``<build>/deploy.json``): the runner started over SSH for the session, speaking on the
       SSH channel's stdin/stdout;
    3. otherwise the runner here, under the target's emulator (qemu-aarch64 with the board's
       CPU model) with edgert's instruction-counting plugin: the runner's ticks are then
       executed instructions, exact and repeatable; or directly, for a target built for this
       machine's CPU that names no emulator.
    """
    yield runner_link(build, port)


def runner_link(build, port: str | None) -> Link:
    from edgert.device import ssh
    from edgert.device.transport import ProcessTransport, SerialTransport

    exe = runner_path(build)
    if port is not None:
        return Link(SerialTransport(port), False, f"the runner at {port}", f"the runner at {port}")
    record = ssh.record(build)
    if record is not None:
        remote = ssh.Remote.from_record(record)
        name = f"the runner on {remote.host}"
        return Link(ProcessTransport(remote.argv(record["command"]), name=name), False, name, name)
    argv, emulated = local_argv(build.target, exe)
    if not emulated:
        return Link(ProcessTransport(argv, name="the runner"), False, "the runner", "the runner")
    fd, counter = tempfile.mkstemp(prefix="edgert-icount-")
    os.close(fd)
    name = f"the runner under {' '.join(build.target.emulator)}"
    return Link(ProcessTransport(argv, env={ICOUNT_ENV: counter}, name=name, cleanup=lambda: os.unlink(counter)),
                True, name, name)


def describe(target: Target) -> list[str]:
    cuda = target.kernel_backend == "cuda"
    kernels = f"CUDA kernels for {target.kernels['arch']}" if cuda else f"LLVM kernels for {target.kernels['mcpu']}"
    where = ("on the board: no GPU is emulated" if cuda
             else f"on the board, or here under {' '.join(target.emulator[:3])}" if target.emulator else "on the board")
    return [f"supports: build (a runner, {kernels}), deploy (SSH), run, validate, bench ({where})"]
