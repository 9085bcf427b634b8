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

from edgert.errors import ModelFormatError, UnsupportedError
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
    qdq.refuse_qoperator(model.graph, path)  # before shape inference, which lacks their domain
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise ModelFormatError(f"{path}: ONNX shape inference failed ({str(e).splitlines()[0][:200]})",
                               "export with static input shapes (batch size 1)") from None


def load(path: str | os.PathLike) -> Graph:
    """Read a .onnx file (float32, or int8 QDQ) into an edgert Graph (model attributes only)."""
    from . import float as float_onnx, qdq

    path = os.fspath(path)
    model = _read(path)
    return qdq.load(model, path) if qdq.is_quantized(model.graph) else float_onnx.load(model, path)
