"""edgert ops -> TVM TE computations -> PrimFuncs, one specialised kernel per layer.

Every kernel is specialised for its layer: shapes, zero points, per-tensor multipliers and
clamps are compile-time constants that TVM folds into the loop body. Per-channel data
(weights, folded biases, multipliers, shifts, tables) are kernel parameters that point to
const arrays in flash. Activations are parameters that point into the arena.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tvm import s_tir, te, tirx

from edgert.ir import DType, Graph, Op
from edgert.kernels.activation import ACCUM_INTEGER_BITS
from edgert.kernels.elementwise import ADD_LEFT_SHIFT
from edgert.plan.arena import ArenaPlan

from edgert.kernels.packing import INT8

from . import forms, lower_binary
from .lower_weights import reader, sparse_terms
from .c_emit import walk
from . import te_fixedpoint as fx

I32 = "int32"


@dataclass
class Arg:
    """What the caller passes for one kernel parameter."""

    kind: str  # "tensor": an arena tensor by name; "const": a flash array by name
    name: str


@dataclass
class Kernel:
    name: str  # C function name
    op: Op
    func: object  # tvm PrimFunc
    args: list[Arg]
    in_place: bool = False  # output aliases the first input (no `restrict` between them)


@dataclass
class Lowered:
    kernels: list[Kernel]
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # flash arrays by C name


class _Ctx:
    """Collects a kernel's parameters in call order."""

    def __init__(self, g: Graph, op: Op, consts: dict[str, np.ndarray], fence_float: bool = False,
                 channels_inner: bool = False):
        self.g, self.op, self.consts, self.fence_float = g, op, consts, fence_float
        self.channels_inner = channels_inner  # see _schedule
        self.unroll = 1  # weights packed this many per byte: unroll the innermost reduction by it
        self.params: list[te.Tensor] = []
        self.args: list[Arg] = []

    def act(self, name: str, shape=None) -> te.Tensor:
        t = self.g.tensor(name)
        if t.is_const:
            return self.const(name, t.data, shape)
        p = te.placeholder(tuple(shape or t.shape) or (1,), t.dtype.np_name, name=_cname(name))
        self.params.append(p)
        self.args.append(Arg("tensor", name))
        return p

    def product(self, a, b):
        """a * b, rounded on its own when float: with ``fence_float`` (TVM's LLVM back ends, which
        let LLVM fuse a multiply and the add that uses it into one FMA, rounding once where
        the references and the C targets, built with -ffp-contract=off, round twice) the
        product goes through llvm.arithmetic.fence, which no fusion crosses."""
        p = a * b
        if self.fence_float and str(p.ty.dtype).startswith("float"):
            return tirx.call_llvm_pure_intrin(str(p.ty.dtype), "llvm.arithmetic.fence", p)
        return p

    def const(self, key: str, data: np.ndarray, shape=None) -> te.Tensor:
        cname = _cname(key if key in self.g.tensors else f"{self.op.name}_{key}")
        self.consts[cname] = np.ascontiguousarray(data)
        p = te.placeholder(tuple(shape or data.shape) or (1,), str(data.dtype), name=cname)
        self.params.append(p)
        self.args.append(Arg("const", cname))
        return p

    def finish(self, out: te.Tensor, out_name: str):
        self.params.append(out)
        self.args.append(Arg("tensor", out_name))
        return te.create_prim_func(self.params)


def _cname(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def _in_bounds(iy, ix, h: int, w: int):
    return tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)


# --------------------------------------------------------------------------- conv family


def _folded_bias(op: Op, g: Graph, oc: int) -> np.ndarray:
    """bias - in_zp * sum(w) per output channel: the input zero point leaves the inner loop.
    Out-of-bounds taps then read the zero point itself, which contributes exactly 0."""
    w = g.tensor(op.inputs[1]).data.astype(np.int64)
    b = g.tensor(op.inputs[2]).data.astype(np.int64) if op.inputs[2:] and op.inputs[2] else np.zeros(oc, np.int64)
    zp = op.attrs["in_zp"]
    if op.kind == "depthwise_conv2d":
        wsum = w.sum(axis=(0, 1, 2))
    else:
        wsum = w.reshape(w.shape[0], -1).sum(axis=1)
    folded = b - zp * wsum
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _requant_out(c: _Ctx, acc, o, shape, name: str):
    """The int8 epilogue shared by the conv family: per-channel requantize, offset, clamp."""
    a = c.op.attrs
    mult, shift = a["mult"], a["shift"]
    if np.all(mult == mult[0]) and np.all(shift == shift[0]):
        m, s = int(mult[0]), int(shift[0])
        f = lambda *i: fx.clamp(fx.multiply_by_quantized_multiplier(acc(*i), m, s) + a["out_zp"],
                                a["act_min"], a["act_max"], "int8")
    else:
        M = c.const("mult", mult)
        S = c.const("shift", shift)
        f = lambda *i: fx.clamp(fx.multiply_by_quantized_multiplier(acc(*i), M[o(*i)], S[o(*i)]) + a["out_zp"],
                                a["act_min"], a["act_max"], "int8")
    return te.compute(shape, f, name=name)


def _lower_sparse_conv(c: _Ctx) -> te.Tensor:
    """A convolution over each channel's nonzero weights (edgert.kernels.sparsity): the input,
    already padded, read at the window's origin plus each entry's offset."""
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    _, h, wd, cin = x.shape
    n, oh, ow, oc = y.shape
    (sh, sw) = op.attrs["stride"]
    assert tuple(op.attrs["pad"]) == (0, 0), "weight_format pads a sparse convolution's input"
    X = c.act(op.inputs[0], (n, h * wd * cin))
    acc_t = I32 if x.dtype is DType.I8 else "float32"
    j, value, offset = sparse_terms(c, op)
    acc = te.compute((n, oh, ow, oc), lambda b, oy, ox, o: te.sum(c.product(
        X[b, (oy * sh * wd + ox * sw) * cin + offset(o)].astype(acc_t), value(o).astype(acc_t)), axis=j), name="acc")
    return _epilogue(c, acc, (n, oh, ow, oc), lambda b, oy, ox, o: o, oc)


def _lower_conv(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    if op.attrs.get("sparse") is not None:
        return _lower_sparse_conv(c)
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    y = g.tensor(op.outputs[0])
    is_int = x.dtype is DType.I8
    acc_t = I32 if is_int else "float32"
    _, h, wd, cin = x.shape
    n, oh, ow, oc = y.shape
    kh, kw = w.shape[1], w.shape[2]
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    X = c.act(op.inputs[0])
    pad_value = op.attrs["in_zp"] if is_int else 0.0
    needs_guard = pt > 0 or pl > 0 or (oh - 1) * sh + (kh - 1) * dh + 1 - pt > h or (ow - 1) * sw + (kw - 1) * dw + 1 - pl > wd
    depthwise = op.kind == "depthwise_conv2d"
    mult = op.attrs.get("depth_multiplier", 1)

    def xin(b, oy, ox, ry, rx, ch):
        iy, ix = oy * sh + ry * dh - pt, ox * sw + rx * dw - pl
        v = X[b, iy, ix, ch]
        if needs_guard:
            v = tirx.if_then_else(_in_bounds(iy, ix, h, wd), v, tirx.const(pad_value, x.dtype.np_name))
        return v.astype(acc_t)

    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    fmt = op.attrs.get("packing", INT8)  # set by passes.weight_format for int8 layers
    if depthwise:
        W = reader(c, w.data, fmt, 3, op.inputs[1])
        acc = te.compute(
            (n, oh, ow, oc),
            lambda b, oy, ox, o: te.sum(c.product(xin(b, oy, ox, ry, rx, o // mult), W(0, ry, rx, o).astype(acc_t)), axis=[ry, rx]),
            name="acc",
        )
    else:
        rc = te.reduce_axis((0, cin), name="rc")
        if c.channels_inner:  # weights stored (kh, kw, cin, oc): contiguous along the vector of channels
            W = reader(c, np.ascontiguousarray(w.data.transpose(1, 2, 3, 0)), fmt, 3, "w_hwio")
            wt = lambda o, ry, rx, rc: W(ry, rx, rc, o)
        else:
            W = reader(c, w.data, fmt, 0, op.inputs[1])
            wt = lambda o, ry, rx, rc: W(o, ry, rx, rc)
        acc = te.compute(
            (n, oh, ow, oc),
            lambda b, oy, ox, o: te.sum(c.product(xin(b, oy, ox, ry, rx, rc), wt(o, ry, rx, rc).astype(acc_t)), axis=[ry, rx, rc]),
            name="acc",
        )
    return _epilogue(c, acc, (n, oh, ow, oc), lambda b, oy, ox, o: o, oc)


def _epilogue(c: _Ctx, acc: te.Tensor, shape, chan, oc: int) -> te.Tensor:
    op, g = c.op, c.g
    if g.tensor(op.inputs[0]).dtype is DType.I8:
        B = c.const("bias", _folded_bias(op, g, oc))
        return _requant_out(c, lambda *i: acc(*i) + B[chan(*i)], chan, shape, "out")
    has_bias = len(op.inputs) > 2 and op.inputs[2]
    B = c.act(op.inputs[2]) if has_bias else None
    a = op.attrs
    return te.compute(
        shape,
        lambda *i: fx.clamp(acc(*i) + B[chan(*i)] if B is not None else acc(*i), a["act_min"], a["act_max"], "float32"),
        name="out",
    )


def _lower_fc(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    w = g.tensor(op.inputs[1])
    units, depth = w.shape
    rows = g.tensor(op.inputs[0]).size // depth
    acc_t = I32 if g.tensor(op.inputs[0]).dtype is DType.I8 else "float32"
    X = c.act(op.inputs[0], (rows, depth))
    if op.attrs.get("sparse") is not None:  # each unit's nonzero weights and their input features
        j, value, offset = sparse_terms(c, op)
        acc = te.compute((rows, units), lambda r, o: te.sum(
            c.product(X[r, offset(o)].astype(acc_t), value(o).astype(acc_t)), axis=j), name="acc")
    else:
        W = reader(c, w.data, op.attrs.get("packing", INT8), 0, op.inputs[1])
        k = te.reduce_axis((0, depth), name="k")
        acc = te.compute((rows, units), lambda r, o: te.sum(c.product(X[r, k].astype(acc_t), W(o, k).astype(acc_t)), axis=k), name="acc")
    return _epilogue(c, acc, (rows, units), lambda r, o: o, units)


# --------------------------------------------------------------------------- pooling, mean


def _lower_pool(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    _, h, wd, _ = x.shape
    (fh, fw), (sh, sw), (pt, pl) = op.attrs["filter"], op.attrs["stride"], op.attrs["pad"]
    X = c.act(op.inputs[0])
    a = op.attrs
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    dt = x.dtype.np_name
    is_int = x.dtype is DType.I8

    def tap(b, oy, ox, ch, fill):
        iy, ix = oy * sh + ry - pt, ox * sw + rx - pl
        return tirx.if_then_else(_in_bounds(iy, ix, h, wd), X[b, iy, ix, ch], fill)

    if op.kind == "max_pool2d":
        lowest = tirx.const(-128, dt) if is_int else tirx.const(-3.4028234663852886e38, dt)
        red = te.compute(y.shape, lambda b, oy, ox, ch: te.max(tap(b, oy, ox, ch, lowest), axis=[ry, rx]), name="acc")
        return te.compute(y.shape, lambda *i: fx.clamp(red(*i), a["act_min"], a["act_max"], dt), name="out")

    acc_t = I32 if is_int else "float32"
    red = te.compute(
        y.shape,
        lambda b, oy, ox, ch: te.sum(tap(b, oy, ox, ch, tirx.const(0, dt)).astype(acc_t), axis=[ry, rx]),
        name="acc",
    )

    def count(oy, ox):
        y0, x0 = oy * sh - pt, ox * sw - pl
        ch_ = tirx.min(y0 + fh, h) - tirx.max(y0, 0)
        cw_ = tirx.min(x0 + fw, wd) - tirx.max(x0, 0)
        return ch_ * cw_

    def avg(b, oy, ox, ch):
        s, cnt = red[b, oy, ox, ch], count(oy, ox)
        if not is_int:
            return fx.clamp(s / cnt.astype("float32"), a["act_min"], a["act_max"], dt)
        half = tirx.truncdiv(cnt, 2)
        r = tirx.Select(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return fx.clamp(r, a["act_min"], a["act_max"], dt)

    return te.compute(y.shape, avg, name="out")


def _lower_mean(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    axes = op.attrs["axes"]
    keep = [d for d in range(len(x.shape)) if d not in axes]
    X = c.act(op.inputs[0])
    red_axes = [te.reduce_axis((0, x.shape[d]), name=f"r{d}") for d in axes]
    kept_shape = tuple(x.shape[d] for d in keep) or (1,)
    is_int = x.dtype is DType.I8
    acc_t = I32 if is_int else "float32"

    def index(kept, reds):
        idx, ki, ri = [], iter(kept), iter(reds)
        for d in range(len(x.shape)):
            idx.append(next(ri) if d in axes else next(ki))
        return idx

    def body(*kept):
        kept = kept if keep else ()
        return te.sum(X[tuple(index(kept, red_axes))].astype(acc_t), axis=red_axes)

    acc = te.compute(kept_shape, body, name="acc")
    a = op.attrs
    n = a["count"]
    if is_int:
        f = lambda *i: fx.clamp(
            fx.multiply_by_quantized_multiplier(acc(*i) - a["in_zp"] * n, a["mult"], a["shift"]) + a["out_zp"],
            -128, 127, "int8")
    else:
        f = lambda *i: acc(*i) / tirx.const(float(n), "float32")
    out = te.compute(kept_shape, f, name="out")
    return out if tuple(y.shape) == kept_shape else _reshape_view(out, y.shape)


def _reshape_view(t: te.Tensor, shape) -> te.Tensor:
    """The same row-major data under another shape (an index remap, no copy)."""
    src = [int(d) for d in t.shape]
    shape = tuple(shape) or (1,)

    def f(*i):
        flat = 0
        for d, v in zip(shape, i):
            flat = flat * d + v
        idx = []
        for d in reversed(src):
            idx.append(tirx.floormod(flat, d))
            flat = tirx.floordiv(flat, d)
        return t(*reversed(idx))

    return te.compute(shape, f, name="out_view")


# --------------------------------------------------------------------------- elementwise


def _broadcast_index(shape_in, shape_out, idx):
    off = len(shape_out) - len(shape_in)
    return [0 if shape_in[d] == 1 and shape_out[d + off] != 1 else idx[d + off] for d in range(len(shape_in))] or [0]


def _lower_binary(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    ta, tb, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    A, B = c.act(op.inputs[0]), c.act(op.inputs[1])
    a = op.attrs
    dt = y.dtype.np_name

    def ld(T, t, i):
        return T[tuple(_broadcast_index(t.shape, y.shape, i))]

    if y.dtype is DType.F32:
        f = (lambda *i: ld(A, ta, i) + ld(B, tb, i)) if op.kind == "add" else (lambda *i: ld(A, ta, i) * ld(B, tb, i))
        return te.compute(y.shape or (1,), lambda *i: fx.clamp(f(*i), a["act_min"], a["act_max"], dt), name="out")

    za, zb = a["in_zp"]

    shape = y.shape or (1,)

    def scaled(T, t, zp, k):
        # Each rescaled input is a stage of its own ("keep_": a scalar in the loop), so the
        # nested fixed-point formulas stay linear in size instead of multiplying out.
        return te.compute(shape, lambda *i: fx.multiply_by_quantized_multiplier(
            (ld(T, t, i).astype(I32) - zp) << ADD_LEFT_SHIFT, a["in_mult"][k], a["in_shift"][k]), name=f"keep_in{k}")

    if op.kind == "add":
        sa, sb = scaled(A, ta, za, 0), scaled(B, tb, zb, 1)
        total = te.compute(shape, lambda *i: sa(*i) + sb(*i), name="keep_sum")
    else:
        total = te.compute(shape, lambda *i: (ld(A, ta, i).astype(I32) - za) * (ld(B, tb, i).astype(I32) - zb),
                           name="keep_prod")
    raw = te.compute(shape, lambda *i: fx.multiply_by_quantized_multiplier(total(*i), a["mult"], a["shift"]) + a["out_zp"],
                     name="keep_raw")
    return te.compute(shape, lambda *i: fx.clamp(raw(*i), a["act_min"], a["act_max"], dt), name="out")



def _lower_quantize(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    a = op.attrs
    shape = y.shape or (1,)
    # The scale from flash, not as a literal: TVM's C printer writes float literals with 7
    # significant digits, and a float32 needs 9 to be read back exactly.
    if op.kind == "dequantize":
        S = c.const("scale", np.array([a["scale"]], np.float32))
        return te.compute(shape, lambda *i: S[0]
                          * (X(*i).astype("float32") - tirx.const(float(a["in_zp"]), "float32")), name="out")
    if x.dtype is DType.F32:
        S = c.const("scale", np.array([a["scale"]], np.float32))

        def q(*i):
            # round half away from zero (TFLite's std::round), in float64, where + 0.5 is exact
            v = (X(*i) / S[0]).astype("float64")
            half = tirx.const(0.5, "float64")
            r = tirx.Select(v >= tirx.const(0.0, "float64"), tirx.floor(v + half), -tirx.floor(half - v))
            r = tirx.max(tirx.min(r, tirx.const(1e9, "float64")), tirx.const(-1e9, "float64"))
            return fx.clamp(r.astype(I32) + a["out_zp"], -128, 127, "int8")
        return te.compute(shape, q, name="out")
    return te.compute(shape, lambda *i: fx.clamp(
        fx.multiply_by_quantized_multiplier(X(*i).astype(I32) - a["in_zp"], a["mult"], a["shift"]) + a["out_zp"],
        -128, 127, "int8"), name="out")


# --------------------------------------------------------------------------- activations


def _lower_logistic(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    if y.dtype is DType.F32:
        one = tirx.const(1.0, "float32")
        return te.compute(y.shape, lambda *i: one / (one + te.exp(-X(*i))), name="out")
    T = c.const("table", op.attrs["table"])
    return te.compute(y.shape, lambda *i: T[X(*i).astype(I32) + 128], name="out")


def _stage(rows: int, make, prev: te.Tensor, name: str) -> te.Tensor:
    """A per-row stage computed from the previous one (``make(prev)`` returns the fcompute)."""
    return te.compute((rows,), make(prev), name=name)


def _lower_softmax(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    depth = x.shape[-1]
    rows = x.size // depth
    X = c.act(op.inputs[0], (rows, depth))
    k = te.reduce_axis((0, depth), name="k")
    if x.dtype is DType.F32:
        beta = tirx.const(op.attrs["beta"], "float32")
        mx = te.compute((rows,), lambda r: te.max(X[r, k], axis=k), name="mx")
        k2 = te.reduce_axis((0, depth), name="k2")
        tot = te.compute((rows,), lambda r: te.sum(te.exp((X[r, k2] - mx[r]) * beta), axis=k2), name="tot")
        out = te.compute((rows, depth), lambda r, j: te.exp((X[r, j] - mx[r]) * beta) / tot[r], name="out")
        return out if tuple(y.shape) == (rows, depth) else _reshape_view(out, y.shape)
    T = c.const("exp_table", op.attrs["exp_table"])
    mx = te.compute((rows,), lambda r: te.max(X[r, k], axis=k), name="mx")
    k2 = te.reduce_axis((0, depth), name="k2")

    def e(r, j):
        return T[mx[r].astype(I32) - X[r, j].astype(I32)]

    tot = te.compute((rows,), lambda r: te.sum(fx.rounding_divide_by_pot(e(r, k2), ACCUM_INTEGER_BITS), axis=k2), name="tot")
    headroom = te.compute((rows,), lambda r: fx.clz32(tot[r]), name="headroom")
    hd = te.compute(
        (rows,),
        lambda r: fx.reciprocal_half_denominator(
            ((tot[r].astype("uint32") << headroom[r].astype("uint32")) - tirx.const(1 << 31, "uint32")).astype(I32)),
        name="keep_hd",
    )
    x = te.compute((rows,), lambda r: fx.reciprocal_initial(hd[r]), name="keep_nr0")
    for step in range(fx.RECIPROCAL_STEPS):
        x = _stage(rows, lambda prev: (lambda r: fx.reciprocal_newton_step(hd[r], prev[r])), x, f"keep_nr{step + 1}")
    recip = _stage(rows, lambda prev: (lambda r: fx.reciprocal_final(prev[r])), x, "keep_recip")

    def unsat_f(r, j):
        shift = tirx.const(ACCUM_INTEGER_BITS + 31 - 8, I32) - headroom[r]
        return fx.rounding_divide_by_pot(fx.srdhm(recip[r], e(r, j)), shift) - 128

    # A stage of its own: TVM's bound analysis of the inlined expression (it cannot see that
    # the shift is at most 23) wrongly drops the upper clamp, and TFLM's value can be 128.
    unsat = te.compute((rows, depth), unsat_f, name="keep_unsat")
    out = te.compute((rows, depth), lambda r, j: fx.clamp(unsat[r, j], -128, 127, "int8"), name="out")
    return out if tuple(y.shape) == (rows, depth) else _reshape_view(out, y.shape)


# --------------------------------------------------------------------------- data movement


def _lower_copy(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0], y.shape or (1,))
    return te.compute(y.shape or (1,), lambda *i: X(*i), name="out")


def _lower_transpose(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    perm = op.attrs["perm"]
    inv = [perm.index(d) for d in range(len(perm))]  # output axis that holds input axis d
    return te.compute(y.shape, lambda *i: X[tuple(i[inv[d]] for d in range(len(perm)))], name="out")


def _lower_pad(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    pads = op.attrs["pads"]
    value = tirx.const(op.attrs["value"], y.dtype.np_name)

    def f(*i):
        src = [v - p[0] for v, p in zip(i, pads)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, x.shape)])
        return tirx.if_then_else(inside, X[tuple(src)], value)

    return te.compute(y.shape, f, name="out")


def _lower_concat(c: _Ctx) -> te.Tensor:
    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    axis = op.attrs["axis"]
    parts = [(c.act(n), g.tensor(n).shape[axis]) for n in op.inputs]

    def f(*i):
        starts, s = [], 0
        for _, d in parts:
            starts.append(s)
            s += d
        expr = None
        for (P, d), s0 in reversed(list(zip(parts, starts))):
            idx = list(i)
            idx[axis] = i[axis] - s0
            v = P[tuple(idx)]
            expr = v if expr is None else tirx.if_then_else(i[axis] < s0 + d, v, expr)
        return expr

    return te.compute(y.shape, f, name="out")


_LOWER = {
    "conv2d": _lower_conv,
    "depthwise_conv2d": _lower_conv,
    "fully_connected": _lower_fc,
    "avg_pool2d": _lower_pool,
    "max_pool2d": _lower_pool,
    "mean": _lower_mean,
    "add": _lower_binary,
    "mul": _lower_binary,
    "quantize": _lower_quantize,
    "dequantize": _lower_quantize,
    "logistic": _lower_logistic,
    "softmax": _lower_softmax,
    "reshape": _lower_copy,
    "transpose": _lower_transpose,
    "pad": _lower_pad,
    "concat": _lower_concat,
    **lower_binary.LOWER,
}


def _schedule(func, gpu_threads: int | None = None, channels_inner: bool = False, unroll: int = 1) -> object:
    """Fuse every producer stage into its consumer's loops so that no kernel needs an
    intermediate buffer: elementwise stages are inlined, reductions become accumulators
    computed under the consumer's loops over the reduction's output dims. With
    ``gpu_threads``: a GPU kernel, one thread per output element (see _bind_threads). With
    ``channels_inner`` (convolutions for a SIMD CPU, see forms.channels_inner): the accumulators of
    all channels of an output position at once, channels the innermost loop, which the
    compiler vectorizes (contiguous inputs and weights, one lane a channel). With ``unroll``
    (weights packed that many per byte), the accumulator's innermost loop is unrolled by it
    where it divides the loop, so that each unrolled copy reads its weight's bits at a
    constant position of the byte."""
    sch = s_tir.Schedule(func)
    blocks = list(sch.get_child_blocks(sch.get_sblock("root")))
    names = [sch.get(b).name_hint for b in blocks]
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
    if unroll > 1 and "acc" in placed:
        inner = sch.get_loops(sch.get_sblock("acc"))[-1]
        if int(sch.get(inner).extent) % unroll == 0:
            _, lane = sch.split(inner, [None, unroll])
            sch.unroll(lane)
    if gpu_threads:
        _bind_threads(sch, gpu_threads, placed)
    _hoist_reduction_inits(sch)
    return sch.mod["main"]


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


def lower(g: Graph, plan: ArenaPlan, *, gpu_threads: int | None = None, fence_float: bool = False,
          simd: bool = False) -> Lowered:
    """One Kernel per op (none for a reshape whose output aliases its input); GPU kernels
    with ``gpu_threads`` threads a block; ``fence_float`` for TVM's LLVM back ends (see
    _Ctx.product); ``simd``: loop orders for a CPU with vector registers and room for
    per-position accumulators on its stack (see _schedule)."""
    result = Lowered(kernels=[])
    for op in g.ops:
        if op.kind == "reshape" and op.outputs[0] in plan.aliases:
            continue
        c = _Ctx(g, op, result.consts, fence_float, simd and forms.channels_inner(g, op))
        out = _LOWER[op.kind](c)
        func = c.finish(out, op.outputs[0])
        func = _schedule(func, gpu_threads, channels_inner=c.channels_inner, unroll=c.unroll)
        name = _cname(op.name)
        result.kernels.append(Kernel(name, op, func, c.args, in_place=op.outputs[0] in plan.aliases))
    return result
