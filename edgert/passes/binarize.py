"""Recognise binary layers in float graphs (ONNX exports of BNNs) and lower them to the
binary ops of the LCE front end:

    s = sign(x)                               x: float32 [1, K], or an NHWC image
    z = fully_connected(s, W)  or  conv2d(s, W)   W: constant, every value -1 or +1, no bias
    y = add(mul(z, alpha), beta)              alpha, beta: constant [M] (both optional)

becomes

    x4 = reshape(x) [1, 1, 1, K] ; p = lce_quantize(x4) ; y4 = bconv2d(p, pack(W), alpha, beta)
    y = reshape(y4) [1, M]

(for a convolution, p = lce_quantize(x) and y = bconv2d(p, ...) directly; its zero padding is
LCE's pad_values 0, exact for an even number of input channels, so an odd count with padding
stays a float layer)

with bconv2d's "dot" transform, y = float32(K - 2 * popcount) * alpha + beta (one rounding
each, as the float graph computes them: the +-1 dot product is an exact integer in float).
The one input on which the two differ: an activation exactly 0.0, which ONNX's Sign maps to
0 and the binary layer (like Larq) to +1. A weight of exactly 0 is not binary; such a layer
stays a float layer.
"""
from __future__ import annotations

import numpy as np

from edgert.ir import DType, Graph, Op, Tensor
from edgert.ops import binary


def run(g: Graph) -> Graph:
    consumers = g.consumers()
    producer = g.producer()
    replaced: dict[int, list[Op]] = {}   # op index -> the ops that replace it
    dropped: set[int] = set()
    count = 0
    for i, op in enumerate(g.ops):
        if op.kind not in ("fully_connected", "conv2d") or i in dropped:
            continue
        match = _match(g, i, op, consumers, producer)
        if match is None:
            continue
        sign_i, chain, alpha, beta, out_name = match
        x_name = g.ops[sign_i].inputs[0]
        layer = _binary_layer if op.kind == "fully_connected" else _binary_conv
        new_ops = layer(g, op, x_name, alpha, beta, out_name, count)
        count += 1
        replaced[i] = new_ops
        dropped.update([sign_i, *chain])
    if not replaced:
        return g
    ops: list[Op] = []
    for i, op in enumerate(g.ops):
        if i in replaced:
            ops.extend(replaced[i])
        elif i not in dropped:
            ops.append(op)
    g.ops = ops
    used = {t for op in ops for t in op.inputs + op.outputs if t} | set(g.inputs) | set(g.outputs)
    g.tensors = {k: v for k, v in g.tensors.items() if k in used}
    return g


def _single_consumer(consumers, name: str, g: Graph) -> int | None:
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and name not in g.outputs else None


def _match(g: Graph, i: int, op: Op, consumers, producer):
    s_name, w_name = op.inputs[0], op.inputs[1]
    if len(op.inputs) > 2 and op.inputs[2]:
        return None  # a bias before the scale would round once more than the kernel does
    sign_i = producer.get(s_name)
    if sign_i is None or g.ops[sign_i].kind != "sign" or _single_consumer(consumers, s_name, g) != i:
        return None
    w = g.tensor(w_name)
    x = g.tensor(g.ops[sign_i].inputs[0])
    if w.data is None or not np.all(np.abs(w.data) == 1) or op.attrs.get("act", "none") != "none":
        return None
    if op.kind == "fully_connected" and (len(x.shape) != 2 or x.shape[0] != 1):
        return None
    if op.kind == "conv2d" and binary.padded(op, g) and x.shape[3] % 2:
        return None  # zero padding of an odd channel count: not LCE's exact form
    m = w.shape[0]
    alpha = np.ones(m, np.float32)
    beta = np.zeros(m, np.float32)
    chain: list[int] = []
    out = op.outputs[0]
    for kind in ("mul", "add"):
        nxt = _single_consumer(consumers, out, g)
        if nxt is None or g.ops[nxt].kind != kind:
            continue
        nop = g.ops[nxt]
        other = nop.inputs[1] if nop.inputs[0] == out else nop.inputs[0]
        t = g.tensor(other)
        if t.data is None or t.size not in (1, m) or nop.attrs.get("act", "none") != "none":
            break
        vec = np.broadcast_to(t.data.astype(np.float32).reshape(-1), (m,)).copy()
        if kind == "mul":
            alpha = vec
        else:
            beta = vec
        chain.append(nxt)
        out = nop.outputs[0]
    return sign_i, chain, alpha, beta, out


def _binary_conv(g: Graph, conv: Op, x_name: str, alpha, beta, out_name: str, n: int) -> list[Op]:
    w = g.tensor(conv.inputs[1]).data                       # OHWI, +-1
    m, kh, kw, k = w.shape
    x = g.tensor(x_name)
    base = f"{conv.name}_bin"

    def add(name: str, shape, dtype: DType, data=None) -> str:
        g.tensors[name] = Tensor(name, tuple(shape), dtype, data=data)
        return name

    packed = add(f"{base}_packed", (*x.shape[:3], binary.words(k)), DType.I32)
    wp = add(f"{base}_w", (m, kh, kw, binary.words(k)), DType.I32, binary.pack_bits(w < 0))
    a = add(f"{base}_alpha", (m,), DType.F32, np.ascontiguousarray(alpha, np.float32))
    b = add(f"{base}_beta", (m,), DType.F32, np.ascontiguousarray(beta, np.float32))
    src = f"{conv.source} (binarized)"
    attrs = {"channels_in": k, "stride": conv.attrs["stride"], "dilation": conv.attrs["dilation"],
             "pad": conv.attrs["pad"], "pad_values": 0, "act": "none", "transform": "dot"}
    return [
        Op("lce_quantize", [x_name], [packed], {}, name=f"lce_quantize_b{n}", source=src),
        Op("bconv2d", [packed, wp, a, b, ""], [out_name], attrs, name=f"bconv2d_b{n}", source=src),
    ]


def _binary_layer(g: Graph, fc: Op, x_name: str, alpha, beta, out_name: str, n: int) -> list[Op]:
    w = g.tensor(fc.inputs[1]).data
    m, k = w.shape
    y = g.tensor(out_name)
    base = f"{fc.name}_bin"

    def add(name: str, shape, dtype: DType, data=None) -> str:
        g.tensors[name] = Tensor(name, tuple(shape), dtype, data=data)
        return name

    x4 = add(f"{base}_x4", (1, 1, 1, k), DType.F32)
    packed = add(f"{base}_packed", (1, 1, 1, binary.words(k)), DType.I32)
    wp = add(f"{base}_w", (m, 1, 1, binary.words(k)), DType.I32,
             binary.pack_bits((w < 0).reshape(m, 1, 1, k)))
    a = add(f"{base}_alpha", (m,), DType.F32, np.ascontiguousarray(alpha, np.float32))
    b = add(f"{base}_beta", (m,), DType.F32, np.ascontiguousarray(beta, np.float32))
    y4 = add(f"{base}_y4", (1, 1, 1, m), DType.F32)
    src = f"{fc.source} (binarized)"
    attrs = {"channels_in": k, "stride": (1, 1), "dilation": (1, 1), "pad": (0, 0), "pad_values": 1,
             "act": "none", "transform": "dot"}
    return [
        Op("reshape", [x_name], [x4], {}, name=f"{base}_in", source=src),
        Op("lce_quantize", [x4], [packed], {}, name=f"lce_quantize_b{n}", source=src),
        Op("bconv2d", [packed, wp, a, b, ""], [y4], attrs, name=f"bconv2d_b{n}", source=src),
        Op("reshape", [y4], [y.name], {}, name=f"{base}_out", source=src),
    ]
