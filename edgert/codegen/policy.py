"""CodegenPolicy: everything about a target kind that changes the generated code, in one
object that its backend (edgert.backends) makes and the compiler reads."""
from __future__ import annotations

from dataclasses import dataclass, field

from edgert.passes import mst


@dataclass(frozen=True)
class CodegenPolicy:
    emitter: str                      # "c" (TVM's C, built by the target's compiler), "llvm" (TVM's
                                      # LLVM back end, an object for the exact CPU) or "cuda" (a cubin)
    simd_costs: bool = False          # choose weight formats by the cost of vectorized / parallel
                                      # kernels (edgert.passes.weight_format.SIMD), not scalar ones
    mst_entry_cost: float = mst.ENTRY_COST  # edgert.passes.mst's cost of a difference entry
    vectorize: bool = False           # loop orders for vector registers (edgert.codegen.schedule)
    dsp: bool = False                 # int8 dot products four bytes at a time by the Armv7E-M DSP
                                      # extension (edgert.ops.forms.dsp_dot, edgert.codegen.schedule)
    fence_float: bool = False         # see edgert.codegen.kernel.KernelCtx.product
    gpu_threads: int | None = None    # threads per block of GPU kernels
    llvm_target: dict = field(default_factory=dict)  # the TVM LLVM target of emitter "llvm"
    cuda_arch: str = ""               # sm_NN of emitter "cuda"


def c_policy(dsp: bool = False) -> CodegenPolicy:
    """TVM's portable C, compiled by the target's C compiler (microcontrollers, the host's
    reference build): scalar kernels, and weight formats by their measured costs; with ``dsp``,
    int8 dot products by the DSP extension's dual 16-bit multiply-accumulates."""
    return CodegenPolicy(emitter="c", dsp=dsp)


def llvm_cpu_policy(llvm_target: dict) -> CodegenPolicy:
    """TVM's LLVM back end for one CPU (Linux boards, host-llvm): vectorized schedules, and
    weight formats and binary-conv reuse by the costs of vectorized kernels."""
    return CodegenPolicy(emitter="llvm", simd_costs=True, mst_entry_cost=mst.ENTRY_COST_SIMD, vectorize=True,
                         fence_float=True, llvm_target=llvm_target)


def cuda_policy(arch: str, threads: int) -> CodegenPolicy:
    """A cubin for one GPU. Weight formats by the SIMD CPU's costs (not measured on a GPU):
    memory to spare, and dense kernels that run their channels in parallel."""
    return CodegenPolicy(emitter="cuda", simd_costs=True, fence_float=True, gpu_threads=threads, cuda_arch=arch)
