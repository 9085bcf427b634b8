"""A float edgert graph (from a float .tflite) written as a float ONNX model, so that
`edgert quantize` quantizes TFLite and ONNX models the same way (edgert.quantize.onnx_ptq).

Layout: ONNX images are NCHW. Every 4-D (NHWC) tensor of the graph is written NCHW, its
weights transposed to ONNX's layouts (conv OIHW, depthwise [C*M, 1, kh, kw] with group C); the
model's 4-D inputs and outputs become NCHW too (``input_layout`` tells the caller). A reshape
or dense layer that would flatten an image with more than one pixel is refused (its order
would need a transpose); MLPerf Tiny's classifiers flatten 1x1 images, which is exact.
"""
from __future__ import annotations

import numpy as np

from edgert.errors import UnsupportedError
from edgert.ir import Graph, Op
from edgert.ir.activations import FUSED_ACTIVATIONS
from edgert.ops.common import where

from ..common import TO_NCHW

OPSET = 17


def _pads(g: Graph, op: Op, kh: int, kw: int) -> list[int]:
    """ONNX pads [top, left, bottom, right] that give the IR op's output shape."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    (sh, sw), (pt, pl) = op.attrs["stride"], op.attrs["pad"]
    dh, dw = op.attrs.get("dilation", (1, 1))
    pb = max((y.shape[1] - 1) * sh + (kh - 1) * dh + 1 - pt - x.shape[1], 0)
    pr = max((y.shape[2] - 1) * sw + (kw - 1) * dw + 1 - pl - x.shape[2], 0)
    return [pt, pl, pb, pr]


def export(g: Graph) -> tuple[bytes, dict[str, str]]:
    """(ONNX model bytes, input layout by input name: "NCHW" for images, "as is" otherwise)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def shape(name: str) -> list[int]:
        s = list(g.tensor(name).shape)
        return [s[p] for p in TO_NCHW] if len(s) == 4 else s

    def const(name: str, data: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(data.astype(np.float32)), name))
        return name

    pending = []  # the fused activation of the node being written, appended after it

    def act(op: Op, out: str) -> str:
        """The op's own output name; its fused activation, a node writing ``out``, follows it."""
        kind = op.attrs.get("act", "none")
        if kind == "none":
            return out
        raw = f"{out}/pre_{kind}"
        if kind == "relu":
            pending.append(helper.make_node("Relu", [raw], [out]))
        else:
            lo, hi = FUSED_ACTIVATIONS[kind]
            pending.append(helper.make_node("Clip", [raw, const(f"{out}/lo", np.array(lo)),
                                                     const(f"{out}/hi", np.array(hi))], [out]))
        return raw

    def flat_ok(name: str, op: Op) -> None:
        s = g.tensor(name).shape
        if len(s) == 4 and s[1] * s[2] > 1:
            raise UnsupportedError(f"{where(op)}: flattens a {s[1]}x{s[2]} image, whose order differs between "
                                   "TFLite (NHWC) and ONNX (NCHW)", "export the model to ONNX directly")

    for op in g.ops:
        x, y = op.inputs[0], op.outputs[0]
        if op.kind in ("conv2d", "depthwise_conv2d"):
            w = g.tensor(op.inputs[1]).data
            if op.kind == "conv2d":
                wo, group = np.transpose(w, (0, 3, 1, 2)), 1
            else:
                wo, group = np.transpose(w, (3, 0, 1, 2)), g.tensor(x).shape[3]
            ins = [x, const(f"{op.name}/W", wo)] + ([op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] else [])
            nodes.append(helper.make_node("Conv", ins, [act(op, y)], name=op.name, group=group,
                                          strides=list(op.attrs["stride"]), dilations=list(op.attrs["dilation"]),
                                          pads=_pads(g, op, w.shape[1], w.shape[2]), kernel_shape=list(w.shape[1:3])))
        elif op.kind == "fully_connected":
            flat_ok(x, op)
            src = x
            if len(g.tensor(x).shape) != 2:
                src = f"{x}/2d"
                depth = g.tensor(op.inputs[1]).shape[1]
                inits.append(numpy_helper.from_array(np.array([-1, depth], np.int64), f"{op.name}/shape"))
                nodes.append(helper.make_node("Reshape", [x, f"{op.name}/shape"], [src]))
            ins = [src, const(f"{op.name}/W", g.tensor(op.inputs[1]).data)]
            if len(op.inputs) > 2 and op.inputs[2]:
                ins.append(op.inputs[2])
            nodes.append(helper.make_node("Gemm", ins, [act(op, y)], name=op.name, transB=1))
        elif op.kind in ("avg_pool2d", "max_pool2d"):
            fh, fw = op.attrs["filter"]
            kw = {"count_include_pad": 0} if op.kind == "avg_pool2d" else {}
            nodes.append(helper.make_node("AveragePool" if op.kind == "avg_pool2d" else "MaxPool", [x], [act(op, y)],
                                          name=op.name, kernel_shape=[fh, fw], strides=list(op.attrs["stride"]),
                                          pads=_pads(g, op, fh, fw), **kw))
        elif op.kind in ("add", "mul"):
            if any(g.tensor(t).is_const for t in op.inputs):
                raise UnsupportedError(f"{where(op)}: {op.kind} with a constant", "export the model to ONNX directly")
            nodes.append(helper.make_node(op.kind.capitalize(), list(op.inputs), [act(op, y)], name=op.name))
        elif op.kind == "reshape":
            flat_ok(x, op)
            if len(g.tensor(y).shape) == 4:
                raise UnsupportedError(f"{where(op)}: reshape to an image", "export the model to ONNX directly")
            inits.append(numpy_helper.from_array(np.array(g.tensor(y).shape, np.int64), f"{op.name}/shape"))
            nodes.append(helper.make_node("Reshape", [x, f"{op.name}/shape"], [y], name=op.name))
        elif op.kind == "softmax" and op.attrs.get("beta", 1.0) == 1.0:
            nodes.append(helper.make_node("Softmax", [x], [y], name=op.name, axis=-1))
        elif op.kind == "logistic":
            nodes.append(helper.make_node("Sigmoid", [x], [y], name=op.name))
        else:
            raise UnsupportedError(f"{where(op)}: {op.kind} has no ONNX translation for quantization",
                                   "export the float model to ONNX directly (tf2onnx) and quantize that")
        nodes.extend(pending)
        pending.clear()
    for t in g.constants():
        if t.data.ndim == 1 and t.name not in {i.name for i in inits}:  # biases
            inits.append(numpy_helper.from_array(t.data.astype(np.float32), t.name))

    def info(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape(name))

    graph = helper.make_graph(nodes, g.name, [info(n) for n in g.inputs], [info(n) for n in g.outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    layout = {n: ("NCHW" if len(g.tensor(n).shape) == 4 else "as is") for n in g.inputs}
    return model.SerializeToString(), layout
