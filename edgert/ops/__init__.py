"""edgert's ops: for each op kind, everything about it, in its family's module.

A family module (conv, pool, elementwise, activation, quantize, shape, binary, unary) gives,
for each of its kinds:

    check(op, g)            build time, on the host: raise UnsupportedError naming the op
    prepare(op, g)          everything computed on the host (folded biases, requantization
                            multipliers, tables) into op.attrs
    macs(op, g) -> int      multiply-accumulates, for reports and cost estimates
    ref(op, g, inputs)      the numpy reference: the arithmetic contract every target meets
    lower_<kind>(c) -> te.Tensor
                            the TVM TE computation of one layer, given the kernel context
                            ``c`` (edgert.codegen.kernel.KernelCtx); TVM is imported inside
                            these functions only, so checking and planning never load it

REGISTRY is the one table of op kinds; every other list (the kinds a front end may produce,
in-place kinds, the binary kinds, what `edgert targets` prints) is derived from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import activation, binary, conv, elementwise, pool, quantize, shape, unary


@dataclass(frozen=True)
class OpDef:
    """One op kind. ``in_place``: the output may share its first input's memory when that
    input dies at this op (each output element is written only after the same-index input
    element is read)."""

    family: ModuleType
    lower: Callable
    in_place: bool = False

    @property
    def check(self) -> Callable:
        return self.family.check

    @property
    def prepare(self) -> Callable:
        return self.family.prepare

    @property
    def macs(self) -> Callable:
        return self.family.macs

    @property
    def ref(self) -> Callable:
        return self.family.ref


REGISTRY: dict[str, OpDef] = {
    "conv2d": OpDef(conv, conv.lower_conv),
    "depthwise_conv2d": OpDef(conv, conv.lower_conv),
    "fully_connected": OpDef(conv, conv.lower_fc),
    "avg_pool2d": OpDef(pool, pool.lower_pool),
    "max_pool2d": OpDef(pool, pool.lower_pool),
    "mean": OpDef(pool, pool.lower_mean),
    "add": OpDef(elementwise, elementwise.lower_elementwise, in_place=True),
    "mul": OpDef(elementwise, elementwise.lower_elementwise, in_place=True),
    "sub": OpDef(elementwise, elementwise.lower_elementwise, in_place=True),
    "maximum": OpDef(elementwise, elementwise.lower_elementwise, in_place=True),
    "minimum": OpDef(elementwise, elementwise.lower_elementwise, in_place=True),
    "prelu": OpDef(elementwise, elementwise.lower_elementwise, in_place=True),
    "softmax": OpDef(activation, activation.lower_softmax),
    "logistic": OpDef(activation, activation.lower_pointwise, in_place=True),
    "hard_swish": OpDef(activation, activation.lower_pointwise, in_place=True),
    "leaky_relu": OpDef(activation, activation.lower_pointwise, in_place=True),
    "relu": OpDef(activation, activation.lower_pointwise, in_place=True),
    "relu6": OpDef(activation, activation.lower_pointwise, in_place=True),
    "abs": OpDef(activation, activation.lower_pointwise, in_place=True),
    "reshape": OpDef(shape, shape.lower_reshape, in_place=True),
    "transpose": OpDef(shape, shape.lower_transpose),
    "pad": OpDef(shape, shape.lower_pad),
    "concat": OpDef(shape, shape.lower_concat),
    "quantize": OpDef(quantize, quantize.lower_quantize, in_place=True),
    "dequantize": OpDef(quantize, quantize.lower_quantize),
    "lce_quantize": OpDef(binary, binary.lower_lce_quantize),
    "lce_dequantize": OpDef(binary, binary.lower_lce_dequantize),
    "bconv2d": OpDef(binary, binary.lower_bconv),
    "bmaxpool2d": OpDef(binary, binary.lower_bmaxpool),
    "sign": OpDef(unary, unary.lower_unary, in_place=True),
}

#: The kinds whose output may alias their first input (see OpDef.in_place).
IN_PLACE = frozenset(kind for kind, d in REGISTRY.items() if d.in_place)

#: The binary-network kinds (bit-packed tensors, the Larq Compute Engine's semantics).
BINARY_KINDS = frozenset(kind for kind, d in REGISTRY.items() if d.family is binary)
