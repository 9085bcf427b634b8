"""edgert's integer IR: tensors, ops, graphs, verification and printing."""
from .dtypes import DType
from .graph import Graph, IRError, Op, Tensor, verify
from .printer import format_graph
from .quant import QuantParams

__all__ = ["DType", "Graph", "IRError", "Op", "Tensor", "QuantParams", "verify", "format_graph"]
