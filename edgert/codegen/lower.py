"""edgert ops -> TVM PrimFuncs, one specialised kernel per layer: each op's TE computation
(its family's ``lower_<kind>`` in edgert.ops, built in a KernelCtx), then its schedule
(edgert.codegen.schedule)."""
from __future__ import annotations

from edgert.ir import Graph
from edgert.ops import REGISTRY, forms
from edgert.plan.arena import ArenaPlan

from .kernel import Kernel, KernelCtx, Lowered, cname
from .policy import CodegenPolicy, c_policy
from .schedule import schedule

__all__ = ["Kernel", "Lowered", "lower"]


def lower(g: Graph, plan: ArenaPlan, policy: CodegenPolicy | None = None) -> Lowered:
    """One Kernel per op (none for a reshape whose output aliases its input), as the target's
    ``policy`` asks (default: portable C): GPU kernels with its ``gpu_threads`` threads a block;
    ``fence_float`` for TVM's LLVM back ends (see KernelCtx.product); ``vectorize``: loop
    orders for a CPU with vector registers and room for per-position accumulators on its stack
    (see edgert.codegen.schedule); ``dsp``: int8 dot products by the DSP extension
    (edgert.codegen.dsp)."""
    policy = policy or c_policy()
    gpu_threads, fence_float, simd = policy.gpu_threads, policy.fence_float, policy.vectorize
    result = Lowered(kernels=[])
    for op in g.ops:
        if op.kind == "reshape" and op.outputs[0] in plan.aliases:
            continue
        c = KernelCtx(g, op, result.consts, fence_float, simd and forms.channels_inner(g, op),
                      dsp=policy.dsp and forms.dsp_dot(g, op), dsp_isa=policy.dsp)
        out = REGISTRY[op.kind].lower(c)
        func = c.finish(out, op.outputs[0])
        func = schedule(func, gpu_threads, channels_inner=c.channels_inner, unroll=c.unroll, dot_lanes=c.dot_lanes,
                        dot_positions=c.dot_positions)
        name = cname(op.name)
        result.kernels.append(Kernel(name, op, func, c.args, in_place=op.outputs[0] in plan.aliases))
    return result
