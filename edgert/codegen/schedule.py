"""How a layer's TE computation becomes loops (TVM s_tir schedules), by the target's needs:
every producer stage fused into its consumer so that no kernel needs an intermediate buffer,
channels innermost on SIMD CPUs, packed-weight reductions unrolled, GPU thread binding."""
from __future__ import annotations

from tvm import s_tir, tirx

from .emit.tir import walk


def schedule(func, gpu_threads: int | None = None, channels_inner: bool = False, unroll: int = 1,
             dot_lanes: int = 0, dot_positions: int = 1) -> object:
    """Fuse every producer stage into its consumer's loops so that no kernel needs an
    intermediate buffer: elementwise stages are inlined, reductions become accumulators
    computed under the consumer's loops over the reduction's output dims. With
    ``gpu_threads``: a GPU kernel, one thread per output element (see _bind_threads). With
    ``channels_inner`` (convolutions for a SIMD CPU, see edgert.ops.forms.channels_inner): the accumulators of
    all channels of an output position at once, channels the innermost loop, which the
    compiler vectorizes (contiguous inputs and weights, one lane a channel). With ``unroll``
    (weights packed that many per byte), the accumulator's innermost loop is unrolled by it
    where it divides the loop, so that each unrolled copy reads its weight's bits at a
    constant position of the byte. With ``dot_lanes`` (the DSP form, edgert.codegen.dsp): the
    output channels in blocks of that many, whose accumulators are computed together with
    the block innermost and unrolled, so that each input word is loaded once per block; with
    ``dot_positions`` as well, the block also spans that many output columns (each weight word
    is then loaded once for them)."""
    sch = s_tir.Schedule(func)
    blocks = list(sch.get_child_blocks(sch.get_sblock("root")))
    names = [sch.get(b).name_hint for b in blocks]
    if dot_lanes:
        _, lanes = sch.split(sch.get_loops(blocks[-1])[-1], [None, dot_lanes])
        sch.unroll(lanes)
        if dot_positions > 1:  # (.., ox, oc_o, oc_i) -> (.., ox_o, oc_o, ox_i, oc_i)
            loops = sch.get_loops(blocks[-1])
            ox_o, ox_i = sch.split(loops[-3], [None, dot_positions])
            sch.reorder(ox_o, loops[-2], ox_i, lanes)
            sch.unroll(ox_i)
    placed = []  # the stages computed under the output's loops (not inlined)
    for name in reversed(names[:-1]):  # the last block writes the kernel's output
        blk = sch.get_sblock(name)
        if not name.startswith("keep_"):  # "keep_" stages stay scalars instead of inlining
            try:
                sch.compute_inline(blk)
                continue
            except Exception:  # tvm raises ScheduleError for a reduction; place it instead
                pass
        consumer = sch.get_consumers(blk)[0]
        rank = len(sch.get(blk).writes[0].region)
        # "pos_" stages are read at data-dependent channels: computed once per position
        per_position = name.startswith("pos_") or (channels_inner and name == "acc")
        depth = rank - 2 if per_position else rank - 1
        sch.compute_at(blk, sch.get_loops(consumer)[depth])
        placed.append(name)
        if channels_inner and name == "acc":  # (channel, taps...) -> (taps..., channel)
            loops = sch.get_loops(sch.get_sblock(name))[depth + 1:]
            sch.reorder(*loops[1:], loops[0])
        if dot_lanes:
            _lanes_inside(sch, name, depth)
    if unroll > 1 and "acc" in placed:
        inner = sch.get_loops(sch.get_sblock("acc"))[-1]
        if int(sch.get(inner).extent) % unroll == 0:
            _, lane = sch.split(inner, [None, unroll])
            sch.unroll(lane)
    if gpu_threads:
        _bind_threads(sch, gpu_threads, placed)
    _hoist_reduction_inits(sch)
    return sch.mod["main"]


def _lanes_inside(sch, name: str, depth: int) -> None:
    """A DSP-form stage placed under the output's loop over channel blocks: its loop over the
    block's lanes (when there is more than one) moves inside its reduction loops, if any, and
    is unrolled (the lanes' values stay in registers), and an accumulator's init goes before
    the reduction loops."""
    blk = sch.get_sblock(name)
    loops = sch.get_loops(blk)[depth + 1:]
    reduce_vars = _reduction_loop_vars(sch.mod["main"], name)
    is_reduction = [any(sch.get(l).loop_var.same_as(v) for v in reduce_vars) for l in loops]
    lanes = [l for l, r in zip(loops, is_reduction) if not r]
    reductions = [l for l, r in zip(loops, is_reduction) if r]
    if lanes and reductions:
        sch.reorder(*reductions, *lanes)
    for lane in lanes:
        sch.unroll(lane)
    if reductions:
        sch.decompose_reduction(sch.get_sblock(name), reductions[0])


def _bind_threads(sch, threads: int, stages: list[str]) -> None:
    """The output's loop nest fused (down to the first loop that holds more than the next
    loop: where producer stages were placed), split into blocks of ``threads`` threads, and
    bound to blockIdx.x / threadIdx.x. Every thread computes its outputs' accumulators
    itself (``stages``: in thread-local storage), in the same order as the CPU kernels: the
    arithmetic is the same."""
    out = sch.get_child_blocks(sch.get_sblock("root"))[-1]
    loops = sch.get_loops(out)
    nest = [loops[0]]
    for loop in loops[1:]:
        if not sch.get(nest[-1]).body.same_as(sch.get(loop)):
            break
        nest.append(loop)
    fused = sch.fuse(*nest) if len(nest) > 1 else nest[0]
    bx, tx = sch.split(fused, [None, min(threads, int(sch.get(fused).extent))])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    for name in stages:  # producer stages live in each thread's registers
        sch.set_scope(sch.get_sblock(name), 0, "local")


def _hoist_reduction_inits(sch) -> None:
    """Each reduction's init (acc = 0) as a statement before its reduction loops, instead of
    an `if (first iteration)` test inside the innermost loop: the init goes before the
    outermost loop below which every loop iterates a reduction axis."""
    for blk in list(sch.get_child_blocks(sch.get_sblock("root"))):
        block = sch.get(blk)
        if block.init is None:
            continue
        reduce_vars = _reduction_loop_vars(sch.mod["main"], block.name_hint)
        loops = sch.get_loops(blk)
        first = None
        for loop in reversed(loops):
            if not any(sch.get(loop).loop_var.same_as(v) for v in reduce_vars):
                break
            first = loop
        if first is not None:
            sch.decompose_reduction(blk, first)


def _reduction_loop_vars(func, block_name: str) -> list:
    """The loop variables that a block's reduction iter vars are bound to."""
    for node in walk(func.body):
        if isinstance(node, s_tir.SBlockRealize) and node.block.name_hint == block_name:
            return [v for iv, value in zip(node.block.iter_vars, node.iter_values)
                    if iv.iter_type == tirx.IterVar.CommReduce
                    for v in walk(value) if isinstance(v, tirx.Var)]
    return []
