"""The host backend: the generated C compiled by the host compiler into a shared library and
run in-process through ctypes, the reference path for tests, `edgert run` and `edgert bench`;
and the firmware built for the host (edgert's runtime and the model, its UART on
stdin/stdout), which sessions talk to exactly as to a board (same C), so that protocol tests
are fast and independent of the emulator."""
from __future__ import annotations

import contextlib
import ctypes
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np

from edgert.codegen.emit import KERNEL_OBJECT
from edgert.codegen.policy import CodegenPolicy, c_policy, llvm_cpu_policy
from edgert.errors import ToolchainError, UserError
from edgert.package_data import firmware_dir
from edgert.targets import Target

from . import Link, toolchain
from .cortex_m import HOOK_FLAGS, MODEL_SOURCES, model_desc_c, runtime_dir

SOURCES = ("model.c", "kernels.c", "weights.c")
LLVM_SOURCES = ("model.c", KERNEL_OBJECT, "kernel_helpers.c", "weights.c")  # target host-llvm
LIBRARY = "libmodel.so"
FIRMWARE_RUNTIME_SOURCES = ("main.c", "server.c", "framing.c")
FIRMWARE = "firmware-host"


def compile_library(build_dir: Path, target: Target) -> Path:
    """cc -shared the model sources in ``build_dir``; returns the library path."""
    cc = toolchain.tool(target.cc, "gcc")
    out = build_dir / LIBRARY
    sources = SOURCES if target.kernel_backend == "c" else LLVM_SOURCES
    cmd = [cc, *target.cflags, "-shared", "-o", str(out), *(str(build_dir / s) for s in sources), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(
            f"compiling the generated C failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}",
            f"this is an edgert bug; the command was: {' '.join(cmd)}",
        )
    return out


class HostModel:
    """A compiled model loaded in this process. ``run`` copies inputs into the arena, invokes,
    and returns copies of the outputs. Not thread-safe (one static arena)."""

    def __init__(self, library: Path, io: dict):
        self._lib = ctypes.CDLL(str(Path(library).resolve()))
        self._lib.edgert_invoke.restype = ctypes.c_int
        self._lib.edgert_input.restype = ctypes.c_void_p
        self._lib.edgert_input.argtypes = [ctypes.c_int]
        self._lib.edgert_output.restype = ctypes.c_void_p
        self._lib.edgert_output.argtypes = [ctypes.c_int]
        self.inputs = io["inputs"]
        self.outputs = io["outputs"]
        self._in_ptrs = [self._lib.edgert_input(i) for i in range(len(self.inputs))]
        self._out_ptrs = [self._lib.edgert_output(i) for i in range(len(self.outputs))]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise UserError(f"the model takes {len(self.inputs)} inputs, got {len(inputs)}", "pass one array per input")
        for spec, ptr, x in zip(self.inputs, self._in_ptrs, inputs):
            x = check_input(spec, x)
            ctypes.memmove(ptr, x.ctypes.data, x.nbytes)
        rc = self._lib.edgert_invoke()
        if rc != 0:
            raise UserError(f"edgert_invoke returned {rc}", "this is an edgert bug")
        outs = []
        for spec, ptr in zip(self.outputs, self._out_ptrs):
            dt = np.dtype(spec["dtype"])
            n = int(np.prod(spec["shape"], dtype=np.int64))
            buf = (ctypes.c_char * (n * dt.itemsize)).from_address(ptr)
            outs.append(np.frombuffer(bytes(buf), dtype=dt).reshape(spec["shape"]))
        return outs


def check_input(spec: dict, x) -> np.ndarray:
    """Validate one input against its spec (shape, dtype) and return it contiguous."""
    x = np.asarray(x)
    dt = np.dtype(spec["dtype"])
    shape = tuple(spec["shape"])
    if x.dtype != dt:
        raise UserError(f"input {spec['name']} must be {dt.name}, got {x.dtype.name}",
                        f"convert it (e.g. x.astype(np.{dt.name})) or quantize it with the input's scale and zero point")
    if x.size != int(np.prod(shape, dtype=np.int64)):
        raise UserError(f"input {spec['name']} must have shape {list(shape)}, got {list(x.shape)}",
                        "reshape the array to the model's input shape")
    return np.ascontiguousarray(x.reshape(shape))


# --------------------------------------------------------------------------- the host firmware


def build_firmware(build_dir: Path, meta: dict) -> Path:
    """Compile ``build_dir``'s model with the firmware runtime into ``build_dir/firmware-host``."""
    cc = toolchain.tool("cc", "gcc")
    rt = runtime_dir()
    host = firmware_dir("host")
    desc = build_dir / "model_desc_host.c"
    desc.write_text(model_desc_c(meta))
    out = build_dir / FIRMWARE
    cmd = [cc, "-O2", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wno-unused-variable", "-Wno-maybe-uninitialized",
           f"-I{build_dir}", f"-I{rt}", *HOOK_FLAGS, *(str(build_dir / s) for s in _model_sources(meta)), str(desc),
           *(str(rt / s) for s in FIRMWARE_RUNTIME_SOURCES), str(host / "board_host.c"), "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"building the host firmware failed:\n{proc.stderr[-2000:]}",
                             f"this is an edgert bug; the command was: {' '.join(cmd)}")
    return out


def _model_sources(meta: dict) -> tuple[str, ...]:
    """The build's model files: C kernels, or an LLVM kernel object (target host-llvm)."""
    from edgert import targets

    return LLVM_SOURCES if targets.load(meta["target"]).kernel_backend == "llvm" else MODEL_SOURCES


def start_firmware(build_dir: Path, meta: dict):
    """The host firmware of a build, running, as a ProcessTransport (built first if absent or
    older than the build it serves)."""
    from edgert.device.transport import ProcessTransport

    exe = build_dir / FIRMWARE
    sources = [build_dir / s for s in (*_model_sources(meta), "meta.json")]
    if not exe.is_file() or any(s.stat().st_mtime > exe.stat().st_mtime for s in sources if s.exists()):
        build_firmware(build_dir, meta)
    return ProcessTransport([str(exe)])


# --------------------------------------------------------------------------- the backend interface

#: op kinds this backend compiles: all
OPS = None


def policy(target: Target) -> CodegenPolicy:
    """Portable C by default (``dsp = true``: in the DSP form, with its helpers' portable C);
    target host-llvm: TVM's LLVM back end for this machine's CPU."""
    return llvm_cpu_policy(target.llvm) if target.kernel_backend == "llvm" else c_policy(dsp=target.dsp)


def build(build_dir: Path, target: Target, meta: dict, kernels) -> dict:
    compile_library(build_dir, target)
    return {}


@contextlib.contextmanager
def open_link(build, port: str | None) -> Iterator[Link]:
    """The host firmware of the build, over its stdin/stdout."""
    if port is not None:
        raise UserError(f"{build.dir} is a host build; it runs here, not on a board at {port}",
                        "drop --port, or rebuild for a board target (--target cortex-m7)")
    yield Link(start_firmware(build.dir, build.meta), False, "host", "the host firmware")


def describe(target: Target) -> list[str]:
    return ["supports: build (shared library), run, validate, bench against TFLite and TFLite Micro"]
