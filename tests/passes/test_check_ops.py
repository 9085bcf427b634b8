"""edgert.passes.check_ops: every op's check runs, and the build is refused once, naming every
op that cannot be compiled (not only the first), with each distinct fix once."""
from __future__ import annotations

import pytest

from edgert.errors import UnsupportedError
from edgert.ir import DType, Graph, Op, QuantParams, Tensor, verify
from edgert.passes import check_ops


def _q(scale: float, zp: int) -> QuantParams:
    return QuantParams(scale=(scale,), zero_point=(zp,))


def test_all_problems_at_once():
    # two logistic ops whose int8 outputs are not TFLite's 1/256, -128; a third that is
    g = Graph(tensors={"x": Tensor("x", (1, 8), DType.I8, _q(0.1, 0)),
                       "a": Tensor("a", (1, 8), DType.I8, _q(0.5, 0)),
                       "b": Tensor("b", (1, 8), DType.I8, _q(0.25, 3)),
                       "c": Tensor("c", (1, 8), DType.I8, _q(1 / 256, -128))},
              ops=[Op("logistic", ["x"], ["a"], {}, name="logistic_0", source="LOGISTIC #0"),
                   Op("logistic", ["a"], ["b"], {}, name="logistic_1", source="LOGISTIC #1"),
                   Op("logistic", ["b"], ["c"], {}, name="logistic_2", source="LOGISTIC #2")],
              inputs=["x"], outputs=["c"], name="three")
    verify(g)
    with pytest.raises(UnsupportedError) as e:
        check_ops.run(g)
    assert "LOGISTIC #0 (logistic_0)" in e.value.message and "LOGISTIC #1 (logistic_1)" in e.value.message
    assert "LOGISTIC #2" not in e.value.message
    assert e.value.hint.count("scale 1/256") == 1  # the same fix, said once
