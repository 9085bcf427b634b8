"""The lowered kernels -> code, by the emitter the target's CodegenPolicy names, and the files
that code is written to in a build folder.

    tir.py    what every emitter shares: the TIR pass list, intrinsic lowerings and their C
              helpers, the plain-C-callable checks, kernel parameters, walk
    c.py      one C99 translation unit (microcontrollers, the host's reference build)
    llvm.py   one relocatable object by TVM's LLVM back end (Linux boards, host-llvm)
    cuda.py   one cubin (Jetson)
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

from ..policy import CodegenPolicy

#: the relocatable object of emitter "llvm", linked by the host and Linux backends
KERNEL_OBJECT = "kernels.o"


def emit_kernels(funcs: Mapping[str, object], policy: CodegenPolicy, *, aliased: Collection[str] = ()):
    """``funcs`` (C name -> TIR PrimFunc) as one CSource (emitter "c"), ObjectCode ("llvm") or
    CudaCode ("cuda"); ``aliased``: kernels whose output may share their input's memory."""
    if policy.emitter == "cuda":
        from . import cuda

        return cuda.emit_cubin(funcs, policy.cuda_arch)
    if policy.emitter == "llvm":
        from . import llvm

        return llvm.emit_object(funcs, policy.llvm_target, aliased=aliased)
    from . import c

    return c.emit_c(funcs, aliased=aliased)


def kernel_files(policy: CodegenPolicy, kernels) -> dict[str, str | bytes]:
    """File name in the build folder -> contents, for the emitted kernels."""
    if policy.emitter == "cuda":
        return {"kernels.cubin": kernels.cubin, "kernels.ptx": kernels.ptx}
    if policy.emitter == "llvm":
        from . import tir

        return {KERNEL_OBJECT: kernels.object, "kernels.s": kernels.assembly,
                "kernel_helpers.c": tir.extern_helpers()}
    return {"kernels.c": kernels.code}
