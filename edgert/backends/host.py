"""The host backend: the generated C compiled by the host compiler into a shared library and
run in-process through ctypes. The reference path for tests, `edgert run` and `edgert bench`."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edgert.errors import ToolchainError, UserError
from edgert.targets import Target

SOURCES = ("model.c", "kernels.c", "weights.c")
LLVM_SOURCES = ("model.c", "kernels.o", "kernel_helpers.c", "weights.c")  # target host-llvm
LIBRARY = "libmodel.so"


def compile_library(build_dir: Path, target: Target) -> Path:
    """cc -shared the model sources in ``build_dir``; returns the library path."""
    cc = shutil.which(target.cc)
    if cc is None:
        raise ToolchainError(f"the host C compiler {target.cc!r} is not installed",
                             "install gcc (Debian: apt-get install gcc) or run scripts/setup.sh")
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
