"""Explicit padding: a convolution whose kernel must read no tap outside its input gets a
``pad`` op before it (the input's zero point fills the border, which contributes exactly 0
to an int8 convolution whose bias folds the zero point in), and padding (0, 0). The arena
plans the padded tensor like any other. Used for sparse kernels (passes.weight_format) and
for the DSP form of edgert.ops.forms.dsp_dot (``run``)."""
from __future__ import annotations

from edgert.ir import Graph, Op, Tensor
from edgert.ops import forms


def reads_outside(g: Graph, op: Op) -> tuple[tuple[int, int], tuple[int, int]]:
    """(top, bottom), (left, right): the rows and columns a convolution reads outside its input."""
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    (sh, sw), (dh, dw), (pt, pl) = op.attrs["stride"], op.attrs["dilation"], op.attrs["pad"]
    pb = max((y.shape[1] - 1) * sh + (w.shape[1] - 1) * dh + 1 - pt - x.shape[1], 0)
    pr = max((y.shape[2] - 1) * sw + (w.shape[2] - 1) * dw + 1 - pl - x.shape[2], 0)
    return (pt, pb), (pl, pr)


def padded_shape(g: Graph, op: Op) -> tuple[int, ...] | None:
    """The shape of a convolution's input with its padding made explicit; None without padding."""
    (pt, pb), (pl, pr) = reads_outside(g, op)
    if pt == pb == pl == pr == 0:
        return None
    x = g.tensor(op.inputs[0])
    return (x.shape[0], x.shape[1] + pt + pb, x.shape[2] + pl + pr, x.shape[3])


def explicit(g: Graph, op: Op, why: str) -> int:
    """Give a convolution an explicitly padded input (the zero point fills it); returns the
    padded tensor's bytes (0 when the convolution reads no padding). ``why`` ends the pad
    op's source: "input padding of <why>"."""
    shape = padded_shape(g, op)
    if shape is None:
        return 0
    (pt, pb), (pl, pr) = reads_outside(g, op)
    x = g.tensor(op.inputs[0])
    name = f"{op.inputs[0]}_padded_{op.name}"
    g.tensors[name] = Tensor(name, shape, x.dtype, quant=x.quant)
    pad = Op("pad", [op.inputs[0]], [name], {"pads": ((0, 0), (pt, pb), (pl, pr), (0, 0)), "value": x.quant.zp},
             name=f"{op.name}_pad", source=f"{op.source} (input padding of {why})")
    g.ops.insert(g.ops.index(op), pad)
    op.inputs[0] = name
    op.attrs["pad"] = (0, 0)
    return g.tensor(name).nbytes


def run(g: Graph) -> Graph:
    """Explicit padding for every convolution a DSP target computes in the DSP form (depthwise
    ones test their taps instead: a tap reads one word for all four channels)."""
    for op in list(g.ops):
        if op.kind == "conv2d" and forms.dsp_dot(g, op):
            explicit(g, op, "its DSP kernel")
    return g
