"""The DSP form of int8 dot products (edgert.ops.forms.dsp_dot) as TE expressions.

A dot product over K int8 values is computed four values at a time: each operand's four bytes
are one word (``edgert_load_s8x4``: an unaligned LDR on Armv7E-M), and one step
(``edgert_smlad_s8x4``) sign-extends the even and the odd bytes of both words into halfword
pairs (SXTB16, SXTB16 ROR #8) and accumulates the two pairs' products (two SMLAD). Because both
words are split the same way, the pairing is exact: x0*w0 + x2*w2 + x1*w1 + x3*w3, the same
int32 sum (wrapping alike) as the scalar loop. Fewer than four trailing values (K % 4) are
a scalar reduction of their own, added to it.

The step takes the accumulator, which TE's ``te.sum`` cannot express, so it is a reducer
(DOT) whose element is the pair of words and whose combine is acc' = step(acc, x, w). That is
no commutative monoid, but TVM's serial lowering applies a reducer in order, acc = combine(acc,
element), and edgert's schedules neither rfactor nor parallelize these reductions. (TVM 0.27's
``tensorize`` would be the standard tool; in the pip build it crashes: it copies the intrinsic
through ``save_json``, which segfaults on every PrimFunc.)

The C of both helpers is in edgert.codegen.emit.tir.HELPERS; without the DSP extension they
compute the same sums in portable C, so the form can be tested on any host.
"""
from __future__ import annotations

from tvm import te, tirx


def word(t: te.Tensor, *index) -> tirx.PrimExpr:
    """The four int8 values of ``t`` from ``index`` on (contiguous in memory), as one int32."""
    load = t[index].asobject()
    return tirx.call_pure_extern("int32", "edgert_load_s8x4", tirx.call_intrin("handle", "tirx.address_of", load))


def _combine(acc, element):
    x, w = element
    return tirx.call_pure_extern("int32", "edgert_smlad_s8x4", acc[0], x, w), acc[1]


def _identity(t0, t1):
    return tirx.const(0, t0), tirx.const(0, t1)


DOT = te.comm_reducer(_combine, _identity, name="dot_s8x4")


def lanes(channels: int) -> int:
    """Output channels computed together (each input word is loaded once for all of them)."""
    return next(n for n in (4, 2, 1) if channels % n == 0)


def dot_s8(shape, X: te.Tensor, x_index, W: te.Tensor, w_index, outer: list[int], length: int):
    """acc[i] = sum over the ``outer`` reduction axes (their extents) and k < ``length`` of
    X[x_index(i, r, k)] * W[w_index(i, r, k)], where both indexes are contiguous in k (r: the
    outer reduction variables). Returns acc as a function of the output index. Stages: "acc"
    (the runs of four) and, when length % 4, "acc_tail"."""
    runs, tail = divmod(length, 4)

    def axes():
        return [te.reduce_axis((0, e), name=f"r{j}") for j, e in enumerate(outer)]

    r, k = axes(), te.reduce_axis((0, runs), name="rk")
    acc = te.compute(shape, lambda *i: DOT((word(X, *x_index(i, r, 4 * k)), word(W, *w_index(i, r, 4 * k))),
                                           axis=[*r, k]), name="acc")[0]
    if not tail:
        return lambda *i: acc(*i)
    rt, kt = axes(), te.reduce_axis((4 * runs, length), name="rt")
    rest = te.compute(shape, lambda *i: te.sum(X[x_index(i, rt, kt)].astype("int32") * W[w_index(i, rt, kt)].astype("int32"),
                                               axis=[*rt, kt]), name="acc_tail")
    return lambda *i: acc(*i) + rest(*i)
