"""Op families: for each edgert op kind, the module that checks it (at build time, on the
host), prepares its integer attributes, counts its MACs and gives its numpy reference.

Each family module provides ``check(op, g)``, ``prepare(op, g)``, ``macs(op, g)`` and
``ref(op, g, inputs) -> outputs``. The TVM lowering of each kind lives in edgert.codegen.
"""
from __future__ import annotations

from types import ModuleType

from . import activation, binary, conv, elementwise, pool, quantize, shape, unary

REGISTRY: dict[str, ModuleType] = {
    "conv2d": conv,
    "depthwise_conv2d": conv,
    "fully_connected": conv,
    "avg_pool2d": pool,
    "max_pool2d": pool,
    "mean": pool,
    "add": elementwise,
    "mul": elementwise,
    "softmax": activation,
    "logistic": activation,
    "reshape": shape,
    "transpose": shape,
    "pad": shape,
    "concat": shape,
    "quantize": quantize,
    "dequantize": quantize,
    "lce_quantize": binary,
    "lce_dequantize": binary,
    "bconv2d": binary,
    "bmaxpool2d": binary,
    "sign": unary,
    "relu": unary,
}

#: Ops whose output may share its first input's memory when that input dies at this op:
#: each output element is written only after the same-index input element is read.
IN_PLACE = frozenset({"reshape", "add", "mul", "logistic", "quantize", "sign", "relu"})


def family(kind: str) -> ModuleType:
    return REGISTRY[kind]
