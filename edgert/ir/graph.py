"""edgert IR: a typed, integer-exact dataflow graph.

A Graph is a list of Ops in execution order over named Tensors. Tensors with ``data`` are
constants (weights, biases, tables) that go to flash; the others are activations that the
memory planner places in the arena. Ops carry two kinds of attributes:

* model attributes set by a converter (strides, padding, fused activation, axes ...);
* integer attributes set by passes (fixed-point multipliers and shifts, clamp ranges,
  lookup tables), which are all a kernel needs at run time: no float in int8 paths.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .dtypes import DType
from .quant import QuantParams


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: DType
    quant: QuantParams | None = None
    data: np.ndarray | None = None  # set for constants only

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        q = f" {self.quant}" if self.quant is not None else ""
        return f"{self.dtype.short}[{dims}]{q}"


@dataclass
class Op:
    kind: str  # edgert op name, e.g. "conv2d"; see edgert.ops.REGISTRY
    inputs: list[str]  # tensor names, in the kernel's order; "" for an absent optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # stable layer name used in reports and generated C
    source: str = ""  # where it came from, e.g. "CONV_2D #3" for error messages


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    name: str = "model"

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producer(self) -> dict[str, int]:
        """tensor name -> index of the op that writes it."""
        return {t: i for i, op in enumerate(self.ops) for t in op.outputs}

    def consumers(self) -> dict[str, list[int]]:
        """tensor name -> indices of the ops that read it, in execution order."""
        out: dict[str, list[int]] = {}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t:
                    out.setdefault(t, []).append(i)
        return out

    def activations(self) -> Iterator[Tensor]:
        """Non-constant tensors that are used by the graph (the arena's tenants)."""
        used = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(t for t in op.inputs + op.outputs if t)
        for name, t in self.tensors.items():
            if name in used and not t.is_const:
                yield t

    def constants(self) -> Iterator[Tensor]:
        used = {t for op in self.ops for t in op.inputs if t}
        for name, t in self.tensors.items():
            if name in used and t.is_const:
                yield t

    def in_tensors(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[t] if t else None for t in op.inputs]

    def out_tensors(self, op: Op) -> list[Tensor]:
        return [self.tensors[t] for t in op.outputs]


class IRError(Exception):
    """The graph breaks an IR invariant: a bug in a converter or pass, not user input."""


def verify(g: Graph) -> None:
    """Check the invariants every pass relies on; raise IRError naming the first violation.

    * every tensor an op names exists, and is written once (SSA);
    * an op only reads constants, graph inputs, or tensors written by earlier ops;
    * graph outputs are written by some op or are inputs;
    * constants carry data of their declared dtype and shape.
    """
    written: set[str] = set(g.inputs)
    for name in g.inputs:
        if name not in g.tensors:
            raise IRError(f"graph input {name!r} is not a tensor")
        if g.tensors[name].is_const:
            raise IRError(f"graph input {name!r} is a constant")
    for i, op in enumerate(g.ops):
        label = f"op {i} ({op.kind} {op.name})"
        for t in op.inputs:
            if not t:
                continue
            if t not in g.tensors:
                raise IRError(f"{label} reads unknown tensor {t!r}")
            if not g.tensors[t].is_const and t not in written:
                raise IRError(f"{label} reads {t!r} before it is written")
        for t in op.outputs:
            if t not in g.tensors:
                raise IRError(f"{label} writes unknown tensor {t!r}")
            if t in written:
                raise IRError(f"{label} writes {t!r}, which is already written")
            if g.tensors[t].is_const:
                raise IRError(f"{label} writes constant {t!r}")
            written.add(t)
    for name in g.outputs:
        if name not in written:
            raise IRError(f"graph output {name!r} is never written")
    for t in g.constants():
        if t.data.dtype != t.dtype.np or tuple(t.data.shape) != tuple(t.shape):
            raise IRError(
                f"constant {t.name!r} holds {t.data.dtype}{list(t.data.shape)}, "
                f"declared {t.dtype.np_name}{list(t.shape)}"
            )
