"""ONNX models -> edgert IR: float32 graphs (edgert.frontends.onnx.float) and int8 QDQ graphs
(edgert.frontends.onnx.qdq); edgert.frontends.onnx.export writes an edgert float graph back
as ONNX (for `edgert quantize`).

A graph with any QuantizeLinear / DequantizeLinear node is an int8 QDQ model (onnxruntime's
quantize_static with QuantFormat.QDQ; int8 or int4 weights, int8 or uint8 activations), read
into the same integer IR the TFLite front end produces: every Q / DQ pair folded away, each
float op between them the int8 op it stands for. onnxruntime's QOperator format (QLinearConv,
MatMulInteger ...) and dynamic quantization are refused with the way to re-quantize in QDQ
format.
"""
from __future__ import annotations

import os

from edgert.errors import DAMAGED_ONNX, ModelFormatError, UnsupportedError
from edgert.ir import Graph


def _read(path: str):
    try:
        import onnx
    except ImportError:
        raise UnsupportedError("reading .onnx models needs the onnx package", "pip install onnx") from None
    from . import qdq

    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf raises DecodeError and friends on a bad file
        raise ModelFormatError(f"{path}: not a readable ONNX model ({type(e).__name__})",
                               "export the model again (torch.onnx.export, or onnx.save)") from None
    _check_readable(model, path)
    qdq.refuse_qoperator(model.graph, path)  # before shape inference, which lacks their domain
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise ModelFormatError(f"{path}: ONNX shape inference failed ({str(e).splitlines()[0][:200]})",
                               "the model's shapes or attributes are inconsistent (as it says); export it again, "
                               "with static input shapes (batch size 1)") from None


def _attribute(a):
    """An attribute's value, its tensor decoded; a ValueError if it holds none of its type."""
    from onnx import helper, numpy_helper

    value = helper.get_attribute_value(a)
    if value is None:
        raise ValueError(f"no value of its declared type {a.type}")
    return numpy_helper.to_array(value) if hasattr(value, "data_type") else value


def _check_readable(model, path: str) -> None:
    """Every initializer, attribute and declared element type decodes (onnx's own readers
    raise assorted errors on damaged ones: a wrong byte count, an unknown type code): refused
    here, naming it, before anything reads it."""
    from onnx import helper, numpy_helper

    fix = DAMAGED_ONNX

    def readable(what: str, read) -> None:
        try:
            read()
        except Exception as e:  # onnx raises ValueError, KeyError, TypeError ... on damaged protos
            raise ModelFormatError(f"{path}: {what} cannot be read ({type(e).__name__}: {str(e)[:120]})", fix) from None

    g = model.graph
    if not g.output or not g.node:
        what = "no graph outputs" if not g.output else "no nodes"
        raise ModelFormatError(f"{path}: the ONNX model has {what} (an empty or cut-short file reads as one)",
                               "export the model again (torch.onnx.export, or onnx.save)")
    for init in g.initializer:
        readable(f"initializer {init.name!r}", lambda init=init: numpy_helper.to_array(init))
    for node in g.node:
        if not isinstance(node.op_type, str) or not node.op_type:
            raise ModelFormatError(f"{path}: a node has op type {node.op_type!r}", fix)
        for a in node.attribute:
            readable(f"attribute {a.name!r} of node {node.name or node.op_type!r}", lambda a=a: _attribute(a))
    for vi in list(g.input) + list(g.output):
        if vi.type.HasField("tensor_type"):
            readable(f"the element type of {vi.name!r}",
                     lambda vi=vi: helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))


def load(path: str | os.PathLike) -> Graph:
    """Read a .onnx file (float32, or int8 QDQ) into an edgert Graph (model attributes only)."""
    from . import float as float_onnx, qdq

    path = os.fspath(path)
    model = _read(path)
    return qdq.load(model, path) if qdq.is_quantized(model.graph) else float_onnx.load(model, path)
