"""ONNX (float32) -> edgert IR. Reads the file and translates; nothing else.

This first ONNX front end covers the dense float32 graphs that binary MLPs export as
(PyTorch's torch.onnx, or examples/train_bnn.py): MatMul, Gemm, Add, Mul, Sign, Relu,
Softmax, Flatten, Reshape, Identity. Binary layers are recognised afterwards, on the IR
(edgert.passes.binarize): Sign on activations feeding a MatMul whose weights are +-1 (or
Sign of a constant), with a per-channel Mul and Add.

Constants: initializers, and Sign / Identity of an initializer folded here (ONNX Sign(0) is
0, kept as such: a weight of exactly 0 is not binary). Shapes must be static (batch 1).
"""
from __future__ import annotations

import os

import numpy as np

from edgert.errors import ModelFormatError, UnsupportedError
from edgert.ir import DType, Graph, Op, Tensor, verify

SUPPORTED_OPS = ("Add", "Flatten", "Gemm", "Identity", "MatMul", "Mul", "Relu", "Reshape", "Sign", "Softmax")


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
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise ModelFormatError(f"{path}: ONNX shape inference failed ({str(e).splitlines()[0][:200]})",
                               "export with static input shapes (batch size 1)") from None


def load(path: str | os.PathLike) -> Graph:
    import onnx
    from onnx import numpy_helper

    path = os.fspath(path)
    model = _load(path)
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
            tensors[t] = Tensor(t, shapes[name], DType.F32)
        return t

    ops: list[Op] = []
    counters: dict[str, int] = {}

    def emit(kind: str, ins: list[str], outs: list[str], attrs: dict, source: str) -> None:
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        ops.append(Op(kind, ins, outs, attrs, name=f"{kind}_{n}", source=source))

    graph_inputs = [i.name for i in g.input if i.name not in consts]
    for i, node in enumerate(g.node):
        where = f"{node.op_type} #{i}" + (f" ({node.name})" if node.name else "")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins = list(node.input)
        out = node.output[0]
        # constant folding of weight binarisation and pass-throughs
        if node.op_type in ("Sign", "Identity") and ins[0] in consts:
            consts[out] = np.sign(consts[ins[0]]) if node.op_type == "Sign" else consts[ins[0]]
            continue
        if node.op_type == "Identity":
            emit("reshape", [act(ins[0])], [act(out)], {}, where)
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
            emit(node.op_type.lower(), [act(ins[0]), act(ins[1])], [act(out)], {"act": "none"}, where)
        elif node.op_type == "Sign":
            emit("sign", [act(ins[0])], [act(out)], {}, where)
        elif node.op_type == "Relu":
            emit("relu", [act(ins[0])], [act(out)], {}, where)
        elif node.op_type == "Softmax":
            axis = attrs.get("axis", -1)
            if axis not in (-1, len(shapes[ins[0]]) - 1):
                raise UnsupportedError(f"{where}: Softmax over axis {axis}", "softmax over the last axis only")
            emit("softmax", [act(ins[0])], [act(out)], {"beta": 1.0}, where)
        elif node.op_type in ("Flatten", "Reshape"):
            emit("reshape", [act(ins[0])], [act(out)], {}, where)
        else:  # guarded by SUPPORTED_OPS
            raise AssertionError(node.op_type)

    stem = os.path.splitext(os.path.basename(path))[0]
    graph = Graph(tensors=tensors, ops=ops, inputs=[act(n) for n in graph_inputs],
                  outputs=[act(o.name) for o in g.output], name=stem)
    verify(graph)
    return graph
