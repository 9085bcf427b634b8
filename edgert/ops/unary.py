"""Float32 elementwise ops from ONNX graphs: SIGN (-1, 0 or +1, as ONNX: Sign(0) = 0). (ONNX's
Relu is the activation family's relu.)

A Sign that feeds a binary layer is replaced by edgert.passes.binarize; one that remains is
computed as written."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgert.ir import DType, Graph, Op

from .common import require_dtypes

if TYPE_CHECKING:  # annotations only: TVM is imported inside the lowering functions
    from tvm import te

F32 = DType.F32


def check(op: Op, g: Graph) -> None:
    require_dtypes(op, g, ((F32, F32),))


def prepare(op: Op, g: Graph) -> None:
    pass


def macs(op: Op, g: Graph) -> int:
    return g.tensor(op.outputs[0]).size


def ref(op: Op, g: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.sign(inputs[0].astype(np.float32)).astype(np.float32)]


# --------------------------------------------------------------------------- lowering (TVM TE)


def lower_unary(c) -> te.Tensor:
    """sign (ONNX: 0 stays 0), float32."""
    from tvm import te, tirx

    op, g = c.op, c.g
    y = g.tensor(op.outputs[0])
    X = c.act(op.inputs[0])
    zero, one = tirx.const(0.0, "float32"), tirx.const(1.0, "float32")
    return te.compute(y.shape, lambda *i: tirx.Select(X(*i) > zero, one,
                                                      tirx.Select(X(*i) < zero, -one, zero)), name="out")
