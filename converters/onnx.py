"""ONNX (float32) -> edgert IR. Reads the file and translates; nothing else.

This first ONNX front end covers the float32 graphs that binary networks export as
(PyTorch's torch.onnx, or examples/train_bnn.py): Conv, MaxPool, BatchNormalization, MatMul,
Gemm, Add, Mul, Sign, Relu, Softmax, Flatten, Reshape, Identity. Binary layers are
recognised afterwards, on the IR (edgert.passes.binarize): Sign on activations feeding a
Conv or MatMul whose weights are +-1 (or Sign of a constant), with a per-channel Mul and Add.

Layout: ONNX images are NCHW, edgert's are NHWC. A 4-D graph input is transposed to NHWC
once, a 4-D output back to NCHW, and Flatten/Reshape of an image goes through NCHW so that
the flattened order is ONNX's; in between, per-channel constants ([C, 1, 1]) become [C].

Constants: initializers, and Sign / Identity of an initializer folded here (ONNX Sign(0) is
0, kept as such: a weight of exactly 0 is not binary). Shapes must be static (batch 1).

Quantized models: a graph with any QuantizeLinear / DequantizeLinear node is an int8 QDQ
model (onnxruntime's quantize_static with QuantFormat.QDQ; int8 or int4 weights, int8 or
uint8 activations) and is read by edgert.converters.onnx_qdq into the same integer IR the
TFLite front end produces: every Q / DQ pair folded away, each float op between them the
int8 op it stands for. onnxruntime's QOperator format (QLinearConv, MatMulInteger ...) and
dynamic quantization are refused with the way to re-quantize in QDQ format.
"""
from __future__ import annotations

import os

import numpy as np

from edgert.errors import ModelFormatError, UnsupportedError
from edgert.ir import DType, Graph, Op, Tensor, verify

from . import onnx_qdq

SUPPORTED_OPS = ("Add", "BatchNormalization", "Conv", "Flatten", "Gemm", "Identity", "MatMul", "MaxPool", "Mul",
                 "Relu", "Reshape", "Sign", "Softmax")
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _load(path: str):
    try:
        import onnx
    except ImportError:
        raise UnsupportedError("reading .onnx models needs the onnx package", "pip install onnx") from None
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf raises DecodeError and friends on a bad file
        raise ModelFormatError(f"{path}: not a readable ONNX model ({type(e).__name__})",
                               "export the model again (torch.onnx.export, or onnx.save)") from None
    onnx_qdq.refuse_qoperator(model.graph, path)  # before shape inference, which lacks their domain
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise ModelFormatError(f"{path}: ONNX shape inference failed ({str(e).splitlines()[0][:200]})",
                               "export with static input shapes (batch size 1)") from None


def load(path: str | os.PathLike) -> Graph:
    """Read a .onnx file (float32, or int8 QDQ) into an edgert Graph (model attributes only)."""
    import onnx
    from onnx import numpy_helper

    path = os.fspath(path)
    model = _load(path)
    if onnx_qdq.is_quantized(model.graph):
        return onnx_qdq.load(model, path)
    g = model.graph
    bad = [f"{n.op_type} (node #{i} {n.name or ''})".replace(" )", ")") for i, n in enumerate(g.node)
           if n.op_type not in SUPPORTED_OPS]
    if bad:
        raise UnsupportedError(f"{path}: unsupported ONNX op{'s' if len(bad) > 1 else ''}: {', '.join(bad)}",
                               "supported ONNX ops: " + ", ".join(SUPPORTED_OPS))

    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise UnsupportedError(f"{path}: tensor {vi.name} is {onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)}",
                                   "this ONNX front end reads float32 models")
        if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            raise ModelFormatError(f"{path}: tensor {vi.name} has a dynamic shape",
                                   "export with static shapes: a fixed batch size of 1")
        shapes[vi.name] = tuple(int(d.dim_value) for d in dims)

    tensors: dict[str, Tensor] = {}
    names: dict[str, str] = {}
    images: set[str] = set()  # ONNX names of 4-D activations, held NHWC in the IR

    def tname(onnx_name: str) -> str:
        if onnx_name not in names:
            names[onnx_name] = f"t{len(names)}"
        return names[onnx_name]

    def const(name: str, data: np.ndarray) -> str:
        t = tname(name)
        data = np.ascontiguousarray(data.astype(np.float32) if data.dtype.kind == "f" else data)
        tensors[t] = Tensor(t, tuple(data.shape), DType.from_numpy(data.dtype), data=data)
        return t

    def act(name: str) -> str:
        if name in consts:
            return const(name, consts[name])
        t = tname(name)
        if t not in tensors:
            shape = shapes[name]
            if name in images:
                shape = tuple(shape[p] for p in TO_NHWC)
            tensors[t] = Tensor(t, shape, DType.F32)
        return t

    def fresh(shape) -> str:
        t = f"t{len(names)}"
        names[f"<edgert {t}>"] = t
        tensors[t] = Tensor(t, tuple(shape), DType.F32)
        return t

    ops: list[Op] = []
    counters: dict[str, int] = {}

    def emit(kind: str, ins: list[str], outs: list[str], attrs: dict, source: str) -> None:
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        ops.append(Op(kind, ins, outs, attrs, name=f"{kind}_{n}", source=source))

    def channel_const(name: str, where: str) -> str:
        """A constant next to an image: [C, 1, 1] or [1, C, 1, 1] per channel -> [C]."""
        v = consts[name]
        if v.size == 1:
            return const(name, v.reshape(()))
        if v.ndim >= 3 and all(d == 1 for d in v.shape[-2:]) and v.size == v.shape[-3]:
            return const(f"{name}/C", v.reshape(-1))
        raise UnsupportedError(f"{where}: constant {name} of shape {list(v.shape)} next to an image",
                               "per-channel ([C, 1, 1]) or scalar constants are supported")

    graph_inputs = []
    for i in g.input:
        if i.name in consts:
            continue
        if len(shapes[i.name]) == 4:  # NCHW in, NHWC inside
            outer = tname(i.name + " (NCHW)")
            tensors[outer] = Tensor(outer, shapes[i.name], DType.F32)
            images.add(i.name)
            emit("transpose", [outer], [act(i.name)], {"perm": TO_NHWC}, f"input {i.name}")
            graph_inputs.append(outer)
        else:
            graph_inputs.append(act(i.name))

    for i, node in enumerate(g.node):
        where = f"{node.op_type} #{i}" + (f" ({node.name})" if node.name else "")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins = list(node.input)
        out = node.output[0]
        image_in = bool(ins) and ins[0] in images
        if node.op_type in ("Conv", "MaxPool") or (
                image_in and node.op_type in ("Relu", "Sign", "Add", "Mul", "Identity", "BatchNormalization")):
            images.add(out)
        # constant folding of weight binarisation and pass-throughs
        if node.op_type in ("Sign", "Identity") and ins[0] in consts:
            consts[out] = np.sign(consts[ins[0]]) if node.op_type == "Sign" else consts[ins[0]]
            images.discard(out)
            continue
        if node.op_type in ("Conv", "MaxPool") and not image_in:
            raise UnsupportedError(f"{where}: expected a 4-D NCHW image input", "export 2-D convolutions only")
        if node.op_type == "Identity":
            emit("reshape", [act(ins[0])], [act(out)], {}, where)
        elif node.op_type == "Conv":
            _conv(node, attrs, ins, out, where, consts, act, const, emit)
        elif node.op_type == "MaxPool":
            k = attrs["kernel_shape"]
            pads = attrs.get("pads", [0, 0, 0, 0])
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or len(k) != 2 \
                    or attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise UnsupportedError(f"{where}: MaxPool with auto_pad, ceil_mode, dilation or not 2-D",
                                       "export MaxPool2d with explicit pads")
            emit("max_pool2d", [act(ins[0])], [act(out)], {"filter": tuple(k), "stride": tuple(attrs.get("strides", [1, 1])),
                                                           "pad": (pads[0], pads[1]), "act": "none"}, where)
        elif node.op_type == "BatchNormalization":
            gamma, beta, mean, var = (consts.get(n) for n in ins[1:5])
            if any(v is None for v in (gamma, beta, mean, var)):
                raise UnsupportedError(f"{where}: batch-norm parameters must be constants", "export in eval mode")
            scale = (gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + attrs.get("epsilon", 1e-5)))
            shift = beta - mean * scale
            mid = fresh(tensors[act(ins[0])].shape)
            emit("mul", [act(ins[0]), const(f"{out}/scale", scale.astype(np.float32))], [mid], {"act": "none"}, where)
            emit("add", [mid, const(f"{out}/shift", shift.astype(np.float32))], [act(out)], {"act": "none"}, where)
        elif node.op_type == "MatMul":
            if ins[1] not in consts or consts[ins[1]].ndim != 2:
                raise UnsupportedError(f"{where}: the second input must be a constant 2-D weight matrix",
                                       "edgert compiles models with constant weights")
            w = const(f"{ins[1]}/T", consts[ins[1]].T)   # [K, M] -> fully_connected's [M, K]
            emit("fully_connected", [act(ins[0]), w, ""], [act(out)], {"act": "none"}, where)
        elif node.op_type == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise UnsupportedError(f"{where}: Gemm with transA or alpha/beta other than 1",
                                       "export as MatMul and Add, or with default Gemm attributes")
            wm = consts.get(ins[1])
            if wm is None:
                raise UnsupportedError(f"{where}: the weight input must be a constant", "check the export")
            w = const(f"{ins[1]}/gemm", wm if attrs.get("transB", 0) else wm.T)
            b = const(ins[2], consts[ins[2]].reshape(-1)) if len(ins) > 2 and ins[2] else ""
            emit("fully_connected", [act(ins[0]), w, b], [act(out)], {"act": "none"}, where)
        elif node.op_type in ("Add", "Mul"):
            a, b = ins
            if image_in and b in consts:
                pair = [act(a), channel_const(b, where)]
            else:
                pair = [act(a), act(b)]
            emit(node.op_type.lower(), pair, [act(out)], {"act": "none"}, where)
        elif node.op_type == "Sign":
            emit("sign", [act(ins[0])], [act(out)], {}, where)
        elif node.op_type == "Relu":
            emit("relu", [act(ins[0])], [act(out)], {}, where)
        elif node.op_type == "Softmax":
            axis = attrs.get("axis", -1)
            if image_in or axis not in (-1, len(shapes[ins[0]]) - 1):
                raise UnsupportedError(f"{where}: Softmax over axis {axis}", "softmax over the last axis of a 2-D tensor")
            emit("softmax", [act(ins[0])], [act(out)], {"beta": 1.0}, where)
        elif node.op_type in ("Flatten", "Reshape"):
            src = act(ins[0])
            if image_in:  # flatten in ONNX's (c, h, w) order
                nchw = fresh(shapes[ins[0]])
                emit("transpose", [src], [nchw], {"perm": TO_NCHW}, where)
                src = nchw
            emit("reshape", [src], [act(out)], {}, where)
        else:  # guarded by SUPPORTED_OPS
            raise AssertionError(node.op_type)

    graph_outputs = []
    for o in g.output:
        if o.name in images:  # NHWC inside, NCHW out
            outer = fresh(shapes[o.name])
            emit("transpose", [act(o.name)], [outer], {"perm": TO_NCHW}, f"output {o.name}")
            graph_outputs.append(outer)
        else:
            graph_outputs.append(act(o.name))

    stem = os.path.splitext(os.path.basename(path))[0]
    graph = Graph(tensors=tensors, ops=ops, inputs=graph_inputs, outputs=graph_outputs, name=stem)
    verify(graph)
    return graph


def _conv(node, attrs, ins, out, where, consts, act, const, emit) -> None:
    if attrs.get("group", 1) != 1:
        raise UnsupportedError(f"{where}: attribute group = {attrs['group']}", "grouped ONNX convolutions are not read yet")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedError(f"{where}: attribute auto_pad = {attrs['auto_pad']!r}", "export with explicit pads")
    if ins[1] not in consts or consts[ins[1]].ndim != 4:
        raise UnsupportedError(f"{where}: the weights must be a constant 4-D tensor",
                               "edgert compiles models with constant weights")
    w = consts[ins[1]]
    pads = attrs.get("pads", [0, 0, 0, 0])
    wt = const(f"{ins[1]}/OHWI", np.transpose(w, (0, 2, 3, 1)))   # OIHW -> OHWI
    b = const(ins[2], consts[ins[2]].reshape(-1)) if len(ins) > 2 and ins[2] else ""
    emit("conv2d", [act(ins[0]), wt, b], [act(out)],
         {"stride": tuple(attrs.get("strides", [1, 1])), "dilation": tuple(attrs.get("dilations", [1, 1])),
          "pad": (pads[0], pads[1]), "act": "none"}, where)
