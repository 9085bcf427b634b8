"""ONNX (float32) -> edgert IR. Reads the file and translates; nothing else.

It reads the float32 graphs PyTorch's torch.onnx writes for CNNs (SUPPORTED_OPS; Constant
nodes are folded like initializers, Dropout is the identity, Clip to [0, 6] is ReLU6), and the
graphs binary networks export as (examples/train_bnn.py). Binary layers are
recognised afterwards, on the IR (edgert.passes.binarize): Sign on activations feeding a
Conv or MatMul whose weights are +-1 (or Sign of a constant), with a per-channel Mul and Add.

Layout: ONNX images are NCHW, edgert's are NHWC. A 4-D graph input is transposed to NHWC
once, a 4-D output back to NCHW, and Flatten/Reshape of an image goes through NCHW so that
the flattened order is ONNX's; in between, per-channel constants ([C, 1, 1]) become [C].

Constants: initializers, and Sign / Identity of an initializer folded here (ONNX Sign(0) is
0, kept as such: a weight of exactly 0 is not binary). Shapes must be static (batch 1).

Quantized (QDQ) models are read by edgert.frontends.onnx.qdq; edgert.frontends.onnx.load
decides which.
"""
from __future__ import annotations

import os

import numpy as np

from edgert.errors import ModelFormatError, UnsupportedError
from edgert.ir import DType, Graph, Op, Tensor, verify

from ..common import TO_NCHW, TO_NHWC, check_window, onnx_nhwc_shape, unsupported_summary


class _Reader:
    """The graph being written: ONNX names -> IR tensors, the ops emitted so far."""

    def __init__(self, model, path: str):
        import onnx
        from onnx import numpy_helper

        self.path = path
        self.g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {}
        constants = {o for node in self.g.node if node.op_type == "Constant" for o in node.output}
        for vi in list(self.g.input) + list(self.g.value_info) + list(self.g.output):
            if vi.name in constants:  # read as constants (a Reshape's int64 shape, say)
                continue
            dims = vi.type.tensor_type.shape.dim
            if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                raise UnsupportedError(f"{path}: tensor {vi.name} is "
                                       f"{onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}",
                                       "this ONNX front end reads float32 models")
            if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
                raise ModelFormatError(f"{path}: tensor {vi.name} has a dynamic shape",
                                       "export with static shapes: a fixed batch size of 1")
            self.shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
        self.tensors: dict[str, Tensor] = {}
        self.names: dict[str, str] = {}
        self.images: set[str] = set()  # ONNX names of 4-D activations, held NHWC in the IR
        self.ops: list[Op] = []
        self.counters: dict[str, int] = {}

    def tname(self, onnx_name: str) -> str:
        if onnx_name not in self.names:
            self.names[onnx_name] = f"t{len(self.names)}"
        return self.names[onnx_name]

    def const(self, name: str, data: np.ndarray) -> str:
        t = self.tname(name)
        data = np.ascontiguousarray(data.astype(np.float32) if data.dtype.kind == "f" else data)
        self.tensors[t] = Tensor(t, tuple(data.shape), DType.from_numpy(data.dtype), data=data)
        return t

    def image_shape(self, name: str) -> tuple[int, ...]:
        """An image's ONNX shape as 4-D NCHW: a 1-D signal [N, C, L] is the image [N, C, 1, L]."""
        shape = self.shapes[name]
        return shape if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])

    def act(self, name: str) -> str:
        if name in self.consts:
            return self.const(name, self.consts[name])
        t = self.tname(name)
        if t not in self.tensors:
            shape = onnx_nhwc_shape(self.image_shape(name)) if name in self.images else self.shapes[name]
            self.tensors[t] = Tensor(t, shape, DType.F32)
        return t

    def fresh(self, shape) -> str:
        t = f"t{len(self.names)}"
        self.names[f"<edgert {t}>"] = t
        self.tensors[t] = Tensor(t, tuple(shape), DType.F32)
        return t

    def emit(self, kind: str, ins: list[str], outs: list[str], attrs: dict, source: str) -> None:
        n = self.counters.get(kind, 0)
        self.counters[kind] = n + 1
        self.ops.append(Op(kind, ins, outs, attrs, name=f"{kind}_{n}", source=source))

    def channel_const(self, name: str, where: str) -> str:
        """A constant next to an image: [C, 1, 1] or [1, C, 1, 1] per channel -> [C]."""
        v = self.consts[name]
        if v.size == 1:
            return self.const(name, v.reshape(()))
        if v.ndim >= 2 and v.shape[-1] == 1 and v.size == max(v.shape):  # [C, 1] next to a 1-D signal
            return self.const(f"{name}/C", v.reshape(-1))
        if v.ndim >= 3 and all(d == 1 for d in v.shape[-2:]) and v.size == v.shape[-3]:
            return self.const(f"{name}/C", v.reshape(-1))
        raise UnsupportedError(f"{where}: constant {name} of shape {list(v.shape)} next to an image",
                               "per-channel ([C, 1, 1]) or scalar constants are supported")


class Node:
    """One ONNX node as the translation functions see it."""

    def __init__(self, r: _Reader, node, where: str):
        import onnx

        self.r, self.where, self.op_type = r, where, node.op_type
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        self.ins = list(node.input)
        self.out = node.output[0]
        self.outs = list(node.output)
        self.image_in = bool(self.ins) and self.ins[0] in r.images

    def emit(self, kind: str, ins: list[str], attrs: dict | None = None) -> None:
        """``kind`` of the IR ``ins``, writing this node's output."""
        self.r.emit(kind, ins, [self.r.act(self.out)], attrs or {}, self.where)


def _unary(kind: str, attrs: dict | None = None):
    return lambda n: n.emit(kind, [n.r.act(n.ins[0])], attrs)


def _conv(n: Node) -> None:
    """Conv of one group, or depthwise (group = input channels): PyTorch's Conv2d with
    groups=1 or groups=in_channels; other groupings are refused."""
    r, attrs, ins = n.r, n.attrs, n.ins
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedError(f"{n.where}: attribute auto_pad = {attrs['auto_pad']!r}", "export with explicit pads")
    if ins[1] not in r.consts or r.consts[ins[1]].ndim not in (3, 4):
        raise UnsupportedError(f"{n.where}: the weights must be a constant 3-D or 4-D tensor",
                               "edgert compiles models with constant weights")
    w = r.consts[ins[1]]
    k, strides, dilations, pads = _window_2d(n, w.shape[2:])
    if w.ndim == 3:  # Conv1d: [O, I, k] is the 2-D [O, I, 1, k] over the signal held as [N, 1, L, C]
        w = w[:, :, None, :]
    group, channels = attrs.get("group", 1), r.image_shape(ins[0])[1]
    depthwise = group != 1 and group == channels and w.shape[1] == 1 and w.shape[0] % channels == 0
    if group != 1 and not depthwise:
        raise UnsupportedError(f"{n.where}: attribute group = {group} over {channels} input channels",
                               "edgert reads ONNX convolutions of one group or depthwise ones (group = channels)")
    b = r.const(ins[2], r.consts[ins[2]].reshape(-1)) if len(ins) > 2 and ins[2] else ""
    spatial = {"stride": strides, "dilation": dilations, "pad": (pads[0], pads[1]), "act": "none"}
    if depthwise:  # [C*M, 1, kH, kW] -> TFLite's depthwise layout [1, kH, kW, C*M]
        wt = r.const(f"{ins[1]}/1HWC", np.transpose(w, (1, 2, 3, 0)))
        n.emit("depthwise_conv2d", [r.act(ins[0]), wt, b], {**spatial, "depth_multiplier": w.shape[0] // channels})
    else:
        wt = r.const(f"{ins[1]}/OHWI", np.transpose(w, TO_NHWC))   # OIHW -> OHWI
        n.emit("conv2d", [r.act(ins[0]), wt, b], spatial)


def _window_2d(n: Node, kernel) -> tuple[tuple, tuple, tuple, tuple]:
    """A Conv's or pool's window as 2-D (kernel, strides, dilations, pads [top, left, bottom,
    right]), a 1-D one as the window of height 1 over the signal held as [N, 1, L, C];
    checked (edgert.frontends.common.check_window)."""
    attrs = n.attrs
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedError(f"{n.where}: attribute auto_pad = {attrs['auto_pad']!r}", "export with explicit pads")
    if len(kernel) not in (1, 2):
        raise UnsupportedError(f"{n.where}: a {len(kernel)}-D window", "edgert reads 1-D and 2-D convolutions and pools")
    one_d = len(kernel) == 1
    strides, dilations = list(attrs.get("strides", [1] * len(kernel))), list(attrs.get("dilations", [1] * len(kernel)))
    pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
    check_window(n.where, kernel, strides, dilations, pads)
    if one_d:
        return (1, *kernel), (1, *strides), (1, *dilations), (0, pads[0], 0, pads[1])
    return tuple(kernel), tuple(strides), tuple(dilations), tuple(pads)


def _max_pool(n: Node) -> None:
    attrs = n.attrs
    k, strides, dilations, pads = _window_2d(n, attrs["kernel_shape"])
    if attrs.get("ceil_mode", 0) or any(d != 1 for d in dilations):
        raise UnsupportedError(f"{n.where}: MaxPool with ceil_mode or dilation", "export MaxPool with explicit pads")
    n.emit("max_pool2d", [n.r.act(n.ins[0])], {"filter": k, "stride": strides, "pad": (pads[0], pads[1]),
                                              "act": "none"})


def _batch_norm(n: Node) -> None:
    r, ins = n.r, n.ins
    gamma, beta, mean, var = (r.consts.get(name) for name in ins[1:5])
    if any(v is None for v in (gamma, beta, mean, var)):
        raise UnsupportedError(f"{n.where}: batch-norm parameters must be constants", "export in eval mode")
    scale = (gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + n.attrs.get("epsilon", 1e-5)))
    shift = beta - mean * scale
    rank = len(r.shapes[ins[0]])
    if not n.image_in and rank > 2:  # channels on axis 1 of a tensor held as ONNX holds it: [C, 1, ...]
        scale, shift = (v.reshape((-1,) + (1,) * (rank - 2)) for v in (scale, shift))
    mid = r.fresh(r.tensors[r.act(ins[0])].shape)
    r.emit("mul", [r.act(ins[0]), r.const(f"{n.out}/scale", scale.astype(np.float32))], [mid], {"act": "none"},
           n.where)
    n.emit("add", [mid, r.const(f"{n.out}/shift", shift.astype(np.float32))], {"act": "none"})


def _matmul(n: Node) -> None:
    r, ins = n.r, n.ins
    if n.image_in:  # a MatMul over an NCHW image's W axis: edgert holds images NHWC
        raise UnsupportedError(f"{n.where}: MatMul over the 4-D image {ins[0]} {list(r.shapes[ins[0]])}",
                               "flatten it first (torch.flatten / Flatten), or express it as a 1x1 Conv")
    if ins[1] not in r.consts or r.consts[ins[1]].ndim != 2:
        raise UnsupportedError(f"{n.where}: the second input must be a constant 2-D weight matrix",
                               "edgert compiles models with constant weights")
    w = r.const(f"{ins[1]}/T", r.consts[ins[1]].T)   # [K, M] -> fully_connected's [M, K]
    n.emit("fully_connected", [r.act(ins[0]), w, ""], {"act": "none"})


def _gemm(n: Node) -> None:
    r, attrs, ins = n.r, n.attrs, n.ins
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        raise UnsupportedError(f"{n.where}: Gemm with transA or alpha/beta other than 1",
                               "export as MatMul and Add, or with default Gemm attributes")
    wm = r.consts.get(ins[1])
    if wm is None:
        raise UnsupportedError(f"{n.where}: the weight input must be a constant", "check the export")
    w = r.const(f"{ins[1]}/gemm", wm if attrs.get("transB", 0) else wm.T)
    b = r.const(ins[2], r.consts[ins[2]].reshape(-1)) if len(ins) > 2 and ins[2] else ""
    n.emit("fully_connected", [r.act(ins[0]), w, b], {"act": "none"})


def _binary(n: Node) -> None:
    r, (a, b) = n.r, n.ins
    pair = [r.act(a), r.channel_const(b, n.where)] if n.image_in and b in r.consts else [r.act(a), r.act(b)]
    n.emit(n.op_type.lower(), pair, {"act": "none"})


def _softmax(n: Node) -> None:
    axis = n.attrs.get("axis", -1)
    if n.image_in or axis not in (-1, len(n.r.shapes[n.ins[0]]) - 1):
        raise UnsupportedError(f"{n.where}: Softmax over axis {axis}", "softmax over the last axis of a 2-D tensor")
    n.emit("softmax", [n.r.act(n.ins[0])], {"beta": 1.0})


def _flatten(n: Node) -> None:
    r = n.r
    src = r.act(n.ins[0])
    if n.image_in:  # flatten in ONNX's (c, h, w) order
        nchw = r.fresh(r.image_shape(n.ins[0]))
        r.emit("transpose", [src], [nchw], {"perm": TO_NCHW}, n.where)
        src = nchw
    n.emit("reshape", [src])


def _constant_value(n: Node) -> np.ndarray:
    from onnx import numpy_helper

    if "value" in n.attrs:
        return numpy_helper.to_array(n.attrs["value"])
    for key in ("value_float", "value_int"):
        if key in n.attrs:
            return np.array(n.attrs[key], np.float32 if key == "value_float" else np.int64)
    for key in ("value_floats", "value_ints"):
        if key in n.attrs:
            return np.array(n.attrs[key], np.float32 if key == "value_floats" else np.int64)
    raise UnsupportedError(f"{n.where}: a Constant of {sorted(n.attrs)}", "export numeric constants")


def _clip(n: Node) -> None:
    """Clip to [0, 6] is ReLU6 and to [0, +inf) ReLU (torch's ReLU6 and hardtanh exports); others are refused."""
    r = n.r
    bounds = []
    for pos, default in ((1, -np.inf), (2, np.inf)):
        name = n.ins[pos] if len(n.ins) > pos else ""
        if name and name not in r.consts:
            raise UnsupportedError(f"{n.where}: its {'min' if pos == 1 else 'max'} is computed, not a constant",
                                   "export Clip with constant bounds")
        bounds.append(float(r.consts[name].reshape(-1)[0]) if name else default)
    kind = {(0.0, 6.0): "relu6", (0.0, np.inf): "relu"}.get(tuple(bounds))
    if kind is None:
        raise UnsupportedError(f"{n.where}: Clip to [{bounds[0]:g}, {bounds[1]:g}]",
                               "edgert reads Clip to [0, 6] (ReLU6) and [0, inf) (ReLU)")
    n.emit(kind, [r.act(n.ins[0])])


def _leaky_relu(n: Node) -> None:
    n.emit("leaky_relu", [n.r.act(n.ins[0])], {"alpha": float(n.attrs.get("alpha", 0.01))})


def _average_pool(n: Node) -> None:
    attrs = n.attrs
    k, strides, _, pads = _window_2d(n, attrs["kernel_shape"])
    if attrs.get("ceil_mode", 0):
        raise UnsupportedError(f"{n.where}: AveragePool with ceil_mode", "export AvgPool with ceil_mode=False")
    if attrs.get("count_include_pad", 0) and any(pads):
        raise UnsupportedError(f"{n.where}: AveragePool with count_include_pad over padding",
                               "export with count_include_pad=False (edgert, like TFLite, averages the taps inside)")
    n.emit("avg_pool2d", [n.r.act(n.ins[0])], {"filter": k, "stride": strides, "pad": (pads[0], pads[1]),
                                              "act": "none"})


def _global_average_pool(n: Node) -> None:
    n.emit("mean", [n.r.act(n.ins[0])], {"axes": (1, 2), "keep_dims": True})  # H and W of the NHWC image


def _concat(n: Node) -> None:
    r = n.r
    rank = len(r.shapes[n.out])
    axis = n.attrs["axis"] % rank
    if n.image_in:
        if not all(i in r.images for i in n.ins):
            raise UnsupportedError(f"{n.where}: Concat of an image with a tensor that is not one",
                                   "concatenate images with images")
        if rank == 3:  # [N, C, L] is the image [N, C, 1, L]
            axis += axis == 2
        axis = TO_NCHW[axis]  # NCHW axis -> the same axis of the NHWC image
    n.emit("concat", [r.act(i) for i in n.ins], {"axis": axis, "act": "none"})


def _pad(n: Node) -> None:
    """Pad in constant mode, its pads (begins, then ends, per axis) a constant; an image's are
    taken from NCHW to the NHWC image's axes."""
    r = n.r
    mode = n.attrs.get("mode", b"constant")
    if mode not in (b"constant", "constant"):
        raise UnsupportedError(f"{n.where}: Pad mode {mode.decode() if isinstance(mode, bytes) else mode}",
                               "edgert reads constant padding")
    names = n.ins[1:]
    if not names or names[0] not in r.consts or (len(names) > 1 and names[1] and names[1] not in r.consts) or \
            (len(names) > 2 and names[2]):
        raise UnsupportedError(f"{n.where}: its pads or value are computed, or it pads chosen axes",
                               "export Pad with constant pads")
    pads = [int(v) for v in r.consts[names[0]].reshape(-1)]
    rank = len(pads) // 2
    if any(v < 0 for v in pads):
        raise UnsupportedError(f"{n.where}: negative pads {pads} (a crop)", "export the crop as a Slice")
    pairs = [(pads[d], pads[d + rank]) for d in range(rank)]
    if n.image_in:
        if rank == 3:  # [N, C, L] is the image [N, C, 1, L]
            pairs.insert(2, (0, 0))
        pairs = [pairs[d] for d in TO_NHWC]  # NHWC axis k is NCHW axis TO_NHWC[k]
    value = float(r.consts[names[1]].reshape(-1)[0]) if len(names) > 1 and names[1] else 0.0
    n.emit("pad", [r.act(n.ins[0])], {"pads": tuple(pairs), "value": value})


def _prelu(n: Node) -> None:
    r, (x, slope) = n.r, n.ins
    alpha = r.channel_const(slope, n.where) if n.image_in and slope in r.consts else r.act(slope)
    n.emit("prelu", [r.act(x), alpha])


def _dropout(n: Node) -> None:
    """Dropout at inference: the identity (a mask output, where asked for, is not computed)."""
    if len(n.outs) > 1 and n.outs[1]:
        raise UnsupportedError(f"{n.where}: Dropout's mask output is used", "export the model in eval mode")
    n.emit("reshape", [n.r.act(n.ins[0])])


#: ONNX op type -> its translation (writing IR ops through the node's reader)
TRANSLATE = {
    "Abs": _unary("abs"),
    "AveragePool": _average_pool,
    "Clip": _clip,
    "Concat": _concat,
    "Dropout": _dropout,
    "GlobalAveragePool": _global_average_pool,
    "HardSwish": _unary("hard_swish"),
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _unary("logistic"),
    "Add": _binary,
    "BatchNormalization": _batch_norm,
    "Conv": _conv,
    "Flatten": _flatten,
    "Gemm": _gemm,
    "Identity": _unary("reshape"),
    "MatMul": _matmul,
    "MaxPool": _max_pool,
    "Pad": _pad,
    "PRelu": _prelu,
    "Mul": _binary,
    "Sub": _binary,
    "Relu": _unary("relu"),
    "Reshape": _flatten,
    "Sign": _unary("sign"),
    "Softmax": _softmax,
}
SUPPORTED_OPS = tuple(sorted((*TRANSLATE, "Constant")))
#: ops whose output is an image when their first input is one (Conv and MaxPool always are)
_IMAGE_PRESERVING = ("Relu", "Sign", "Add", "Mul", "Sub", "Identity", "BatchNormalization", "Abs", "AveragePool",
                     "Clip", "Concat", "Dropout", "GlobalAveragePool", "HardSwish", "LeakyRelu", "Pad", "PRelu", "Sigmoid")


#: ops over a window of an image (or a 1-D signal): their input must be one, their output is one
_WINDOWED = ("Conv", "MaxPool", "AveragePool")


def _is_image_input(g, name: str, shape) -> bool:
    """A 4-D graph input is an NCHW image; a 3-D one an NCL signal where windowed ops read it."""
    if len(shape) == 4:
        return True
    readers = [node.op_type for node in g.node if name in node.input]
    return len(shape) == 3 and bool(readers) and all(op in _WINDOWED for op in readers)


def load(model, path: str) -> Graph:
    """A float32 ONNX model (checked and shape-inferred by edgert.frontends.onnx) -> edgert Graph
    (model attributes only)."""
    g = model.graph
    bad = [(n.op_type, f"#{i} {n.name}".strip()) for i, n in enumerate(g.node) if n.op_type not in SUPPORTED_OPS]
    if bad:
        raise UnsupportedError(f"{path}: unsupported ONNX op{'s' if len(bad) > 1 else ''}: "
                               f"{unsupported_summary(bad, 'node')}",
                               "supported ONNX ops: " + ", ".join(SUPPORTED_OPS))
    r = _Reader(model, path)

    graph_inputs = []
    for i in g.input:
        if i.name in r.consts:
            continue
        if _is_image_input(g, i.name, r.shapes[i.name]):  # NCHW in, NHWC inside
            outer = r.tname(i.name + " (NCHW)")
            r.tensors[outer] = Tensor(outer, r.shapes[i.name], DType.F32)
            r.images.add(i.name)
            src = outer
            if len(r.shapes[i.name]) == 3:  # a 1-D signal [N, C, L]: the image [N, C, 1, L]
                src = r.fresh(r.image_shape(i.name))
                r.emit("reshape", [outer], [src], {}, f"input {i.name}")
            r.emit("transpose", [src], [r.act(i.name)], {"perm": TO_NHWC}, f"input {i.name}")
            graph_inputs.append(outer)
        else:
            graph_inputs.append(r.act(i.name))

    for i, node in enumerate(g.node):
        n = Node(r, node, f"{node.op_type} #{i}" + (f" ({node.name})" if node.name else ""))
        if node.op_type in _WINDOWED or (n.image_in and node.op_type in _IMAGE_PRESERVING):
            r.images.add(n.out)
        if node.op_type == "Constant":  # every PyTorch export writes some: a constant like an initializer
            r.consts[n.out] = _constant_value(n)
            r.images.discard(n.out)
            continue
        # constant folding of weight binarisation and pass-throughs
        if node.op_type in ("Sign", "Identity") and n.ins[0] in r.consts:
            r.consts[n.out] = np.sign(r.consts[n.ins[0]]) if node.op_type == "Sign" else r.consts[n.ins[0]]
            r.images.discard(n.out)
            continue
        if node.op_type in _WINDOWED and not n.image_in:
            raise UnsupportedError(f"{n.where}: expected an NCHW image or an NCL signal as input, got "
                                   f"{list(r.shapes.get(n.ins[0], ()))}", "export 1-D or 2-D convolutions")
        TRANSLATE[node.op_type](n)

    graph_outputs = []
    for o in g.output:
        if o.name in r.images:  # NHWC inside, NCHW out
            outer = r.fresh(r.image_shape(o.name))
            r.emit("transpose", [r.act(o.name)], [outer], {"perm": TO_NCHW}, f"output {o.name}")
            if len(r.shapes[o.name]) == 3:  # back to the signal's [N, C, L]
                signal = r.fresh(r.shapes[o.name])
                r.emit("reshape", [outer], [signal], {}, f"output {o.name}")
                outer = signal
            graph_outputs.append(outer)
        else:
            graph_outputs.append(r.act(o.name))

    stem = os.path.splitext(os.path.basename(path))[0]
    graph = Graph(tensors=r.tensors, ops=r.ops, inputs=graph_inputs, outputs=graph_outputs, name=stem)
    verify(graph)
    return graph
