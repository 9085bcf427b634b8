"""Remove pruned channels at compile time (structured sparsity), exactly.

An output channel c of an int8 convolution or fully-connected layer P is removed, with its
filter, bias and scale, when no consumer needs it:

* a consumer whose weights on c are all zero ignores it (input-channel pruning);
* a filter of P whose weights are all zero outputs one constant value k everywhere
  (filter pruning). A consumer that sees k - zero point = 0 ignores it too; one that reads
  every input position under every tap (a fully-connected layer, a convolution without
  padding) gets k's contribution added to its bias instead. A padded convolution reading
  a nonzero constant keeps the channel: its border taps read the zero point, not k.

Consumers: int8 conv2d and fully_connected layers, reading P's output directly or through
reshapes and transposes (a flatten before a dense layer), which then shrink with it. Any
other consumer keeps every channel. The outputs are the same integers as before the pass.
Each pruned layer records op.attrs["pruned_channels"] = (removed, before).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgert.ir import DType, Graph, Op, QuantParams, Tensor
from edgert.ops import conv
from edgert.ops.fixedpoint import wrap32

_LAYERS = ("conv2d", "fully_connected")


@dataclass
class _Sink:
    op: Op
    columns: np.ndarray  # for each of the consumer's weight columns (input features / channels), the source channel
    exact_constants: bool  # whether a constant input channel can be folded into its bias


def _int8_layer(g: Graph, op: Op) -> bool:
    if op.kind not in _LAYERS:
        return False
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    return x.dtype is DType.I8 and w.is_const and w.quant is not None


def _reads_all_taps(g: Graph, op: Op) -> bool:
    """A convolution whose every tap of every output position lies inside its input."""
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    return (pt, pl) == (0, 0) and (y.shape[1] - 1) * sh + (w.shape[1] - 1) * dh < x.shape[1] \
        and (y.shape[2] - 1) * sw + (w.shape[2] - 1) * dw < x.shape[2]


def _sinks(g: Graph, name: str, chan: np.ndarray, consumers, chain: list[Op]) -> list[_Sink] | None:
    """The layers that read tensor ``name`` (whose elements come from channels ``chan``, an
    array of its shape), following reshapes and transposes (appended to ``chain``); None if
    some reader cannot drop channels."""
    if name in g.outputs:
        return None
    sinks = []
    for i in consumers.get(name, []):
        op = g.ops[i]
        if op.inputs[0] != name or any(t == name for t in op.inputs[1:]):
            return None
        if op.kind in ("reshape", "transpose"):
            out = g.tensor(op.outputs[0])
            if op.kind == "transpose":
                nxt = np.transpose(chan, op.attrs["perm"])
            elif sum(d != 1 for d in out.shape) <= 1:  # a flatten: one dimension carries the data
                nxt = chan.reshape(out.shape)
            else:
                return None
            chain.append(op)
            more = _sinks(g, op.outputs[0], nxt, consumers, chain)
            if more is None:
                return None
            sinks += more
        elif _int8_layer(g, op) and len(consumers.get(op.inputs[1], [])) == 1:
            w = g.tensor(op.inputs[1])
            if op.kind == "conv2d" and chan.ndim == 4 and w.shape[3] == chan.shape[3] \
                    and (chan == chan[0, 0, 0, :]).all():
                sinks.append(_Sink(op, chan[0, 0, 0, :], _reads_all_taps(g, op)))
            elif op.kind == "fully_connected" and chan.size % w.shape[1] == 0:
                rows = chan.reshape(-1, w.shape[1])
                if not (rows == rows[0]).all():
                    return None
                sinks.append(_Sink(op, rows[0], True))
            else:
                return None
        else:
            return None
    return sinks


def _column_weights(g: Graph, s: _Sink) -> np.ndarray:
    """The sink's weights as [out, in-features-or-channels, taps]."""
    w = g.tensor(s.op.inputs[1]).data.astype(np.int64)
    if s.op.kind == "conv2d":
        return w.reshape(w.shape[0], -1, w.shape[3]).transpose(0, 2, 1)
    return w[:, :, None]


def _bias(g: Graph, op: Op) -> Tensor:
    """The layer's int32 bias tensor, created (zero) if it has none."""
    if len(op.inputs) > 2 and op.inputs[2]:
        return g.tensor(op.inputs[2])
    w = g.tensor(op.inputs[1])
    name = f"{op.inputs[1]}_bias"
    g.tensors[name] = Tensor(name, (w.shape[0],), DType.I32, data=np.zeros(w.shape[0], np.int32))
    op.inputs[2:] = [name]
    return g.tensors[name]


def _shrink(t: Tensor, axis: int, keep: np.ndarray) -> None:
    t.data = np.ascontiguousarray(np.take(t.data, keep, axis=axis))
    t.shape = tuple(t.data.shape)


def _prune(g: Graph, op: Op, consumers) -> None:
    y = g.tensor(op.outputs[0])
    channels = y.shape[-1]
    chain: list[Op] = []
    sinks = _sinks(g, y.name, np.broadcast_to(np.arange(channels), y.shape), consumers, chain)
    if not sinks:
        return
    const = conv.constant_channels(op, g)
    weights = {id(s): _column_weights(g, s) for s in sinks}

    def delta(s: _Sink, c: int) -> int | None:
        """What constant channel c adds per weight of sink s, or None if c is not constant."""
        return None if c not in const else const[c] - g.tensor(s.op.inputs[0]).quant.zp

    def removable(c: int) -> bool:
        for s in sinks:
            if not weights[id(s)][:, s.columns == c].any():
                continue
            d = delta(s, c)
            if d is None or (d != 0 and not s.exact_constants):
                return False
        return True

    keep = np.array([c for c in range(channels) if not removable(c)], dtype=np.int64)
    dropped = channels - len(keep)
    if dropped == 0 or len(keep) == 0 or len(consumers.get(op.inputs[1], [])) != 1:
        return
    for s in sinks:
        cw = weights[id(s)]
        add = np.zeros(cw.shape[0], np.int64)
        for c in set(range(channels)) - set(keep.tolist()):
            if delta(s, c):
                add += cw[:, s.columns == c].sum(axis=(1, 2)) * delta(s, c)
        if add.any():
            b = _bias(g, s.op)
            b.data = wrap32(b.data.astype(np.int64) + add).astype(np.int32)
        axis = 3 if s.op.kind == "conv2d" else 1
        _shrink(g.tensor(s.op.inputs[1]), axis, np.flatnonzero(np.isin(s.columns, keep)))
    w = g.tensor(op.inputs[1])
    _shrink(w, 0, keep)
    if w.quant.per_channel:
        w.quant = QuantParams(tuple(np.asarray(w.quant.scale)[keep].tolist()),
                              tuple(np.asarray(w.quant.zero_point)[keep].tolist()), w.quant.axis)
    if len(op.inputs) > 2 and op.inputs[2]:
        _shrink(g.tensor(op.inputs[2]), 0, keep)
    y.shape = y.shape[:-1] + (len(keep),)
    for link in chain:  # transposes and flattens between the layer and its readers
        out = g.tensor(link.outputs[0])
        if link.kind == "transpose":
            src = g.tensor(link.inputs[0]).shape
            out.shape = tuple(src[p] for p in link.attrs["perm"])
        else:
            out.shape = tuple(d // channels * len(keep) if d != 1 else 1 for d in out.shape)
    op.attrs["pruned_channels"] = (dropped, channels)


def run(g: Graph) -> Graph:
    consumers = g.consumers()
    for op in g.ops:
        if _int8_layer(g, op):
            _prune(g, op, consumers)
    return g
