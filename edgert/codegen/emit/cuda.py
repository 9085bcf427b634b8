"""TIR PrimFuncs (GPU-scheduled by ``lower.lower`` with a CUDA policy's gpu_threads) -> one CUDA cubin for
one GPU architecture, with each kernel's launch dimensions.

Contract
--------
``emit_cubin(funcs, "sm_87")`` returns ``CudaCode``: the cubin (an ELF for the driver's
``cuModuleLoadData``), its PTX (to read), and per kernel its grid and block sizes (1-D) and
its parameters in launch order: one device pointer per buffer parameter of the PrimFunc,
exactly the order of the CPU kernels' C prototypes. Kernels are ``extern "C"`` entries named
as the PrimFuncs; they allocate nothing but per-thread registers.

How
---
TVM's NVPTX back end (LLVM) turns the kernels into PTX for the architecture, linking NVIDIA's
libdevice; NVIDIA's PTX assembler ``ptxas`` turns the PTX into the cubin. Both NVIDIA parts come
from the pip package ``nvidia-cuda-nvcc-cu12`` (CUDA 12.9: the last CUDA that still targets
sm_53 and sm_72, the Jetson Nano and Xavier; CUDA 13 begins at sm_75). No CUDA installation,
GPU or driver is needed to build.
"""
from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import tvm
from tvm import tirx

from edgert.errors import ToolchainError

from . import tir
from .tir import Param, walk

__all__ = ["CudaCode", "Launch", "cubin_arch", "emit_cubin", "nvcc_root"]

_INSTALL_HINT = "pip install 'edgert[jetson]' (the package nvidia-cuda-nvcc-cu12); scripts/setup.sh installs it"


@dataclasses.dataclass(frozen=True)
class Launch:
    grid: int    # blocks (blockIdx.x extent)
    block: int   # threads a block (threadIdx.x extent)


@dataclasses.dataclass(frozen=True)
class CudaCode(tir.KernelSignatures):
    cubin: bytes
    ptx: str
    arch: str
    launches: dict[str, Launch]
    signatures: dict[str, list[Param]]
    ptxas_version: str


def nvcc_root() -> Path:
    """The folder of pip's nvidia-cuda-nvcc-cu12 (bin/ptxas, nvvm/libdevice)."""
    try:
        import nvidia.cuda_nvcc as pkg
    except ImportError:
        raise ToolchainError("NVIDIA's PTX assembler is not installed (pip package nvidia-cuda-nvcc-cu12)",
                             _INSTALL_HINT) from None
    root = Path(list(pkg.__path__)[0])
    if not (root / "bin" / "ptxas").is_file():
        raise ToolchainError(f"{root}/bin/ptxas is missing", f"reinstall it: {_INSTALL_HINT}")
    return root


def _launch(name: str, func) -> Launch:
    extents = {}
    for node in walk(func.body):
        if isinstance(node, tirx.AttrStmt) and node.attr_key == "thread_extent":
            extents[str(node.node.thread_tag)] = int(node.value)
    unknown = set(extents) - {"blockIdx.x", "threadIdx.x"}
    if unknown or "threadIdx.x" not in extents:
        raise tir.CEmitError(f"kernel {name}: expected a 1-D launch (blockIdx.x, threadIdx.x), got {sorted(extents)}")
    return Launch(extents.get("blockIdx.x", 1), extents["threadIdx.x"])


_libdevice: Path | None = None


@tvm.register_global_func("tvm_callback_libdevice_path", override=True)
def _libdevice_path(_arch):
    """TVM's NVPTX back end asks for libdevice here (replacing TVM's own lookup, which looks
    for a CUDA installation)."""
    return str(_libdevice)


def _as_entries(ptx: str, kernels: list[str]) -> str:
    """Each kernel as a PTX ``.entry`` (a kernel the driver launches). TVM 0.27's NVPTX back end
    still marks kernels with ``nvvm.annotations`` metadata, which the LLVM it links no longer
    reads, so they come out as device functions (``.func``). Their parameter and body PTX is
    the same for an entry; only the directive changes."""
    for name in kernels:
        ptx, n = re.subn(rf"^\.visible \.func {name}\(", f".visible .entry {name}(", ptx, flags=re.M)
        if n != 1:
            raise tir.CEmitError(f"kernel {name}: expected one PTX function, found {n}", "this is an edgert bug")
    return ptx


def emit_cubin(funcs: Mapping[str, tirx.PrimFunc], arch: str) -> CudaCode:
    global _libdevice
    tir.check_signatures(funcs)
    tir.register_intrinsic_lowerings()
    root = nvcc_root()
    _libdevice = root / "nvvm" / "libdevice" / "libdevice.10.bc"
    target = tvm.target.Target({"kind": "nvptx", "mcpu": arch})
    mod = tvm.IRModule({
        name: func.with_attr("global_symbol", name).with_attr("target", target)
        .with_attr("calling_conv", 2)  # a kernel entry (CallingConv::kDeviceKernelLaunch)
        .with_attr("tirx.kernel_launch_params", ["blockIdx.x", "threadIdx.x"])
        .with_attr("tirx.is_global_func", True)
        for name, func in funcs.items()})
    with tvm.transform.PassContext(opt_level=3):
        mod = tvm.ir.transform.Sequential(tir.lowering_passes(threads=True))(mod)
    signatures, launches = {}, {}
    for name, func in funcs.items():
        params = tir.params(name, func, mod[name])
        signatures[name] = [dataclasses.replace(p, name=f"p{i}") for i, p in enumerate(params)]
        launches[name] = _launch(name, mod[name])
    ptx = _as_entries(tvm.get_global_func("target.build.nvptx")(mod, target).inspect_source(), list(funcs))
    ptxas = str(root / "bin" / "ptxas")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "kernels.ptx", Path(tmp) / "kernels.cubin"
        src.write_text(ptx)
        # --fmad=false: ptxas contracts no multiply-add either (see edgert.codegen.kernel.KernelCtx.product)
        proc = subprocess.run([ptxas, f"-arch={arch}", "-O3", "--fmad=false", str(src), "-o", str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(f"ptxas could not assemble the kernels for {arch}: {proc.stderr.strip()[-800:]}",
                                 "this is an edgert bug")
        cubin = out.read_bytes()
    version = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return CudaCode(cubin=cubin, ptx=ptx, arch=arch, launches=launches, signatures=signatures, ptxas_version=version)


def cubin_arch(cubin: bytes) -> int:
    """The SM number a cubin is compiled for (53, 72, 87), from its ELF header: machine
    EM_CUDA (190), the SM in the low byte of e_flags (NVIDIA's cubin ELF layout)."""
    if cubin[:4] != b"\x7fELF" or cubin[4] != 2:
        raise ValueError("not a 64-bit ELF")
    machine = struct.unpack_from("<H", cubin, 18)[0]
    if machine != 190:
        raise ValueError(f"ELF machine {machine}, not EM_CUDA (190)")
    flags = struct.unpack_from("<I", cubin, 48)[0]
    return flags & 0xFF

