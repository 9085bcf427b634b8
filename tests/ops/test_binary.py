"""The binary family's quantize / dequantize pair on the IR, against the Larq Compute Engine's
definition (LceQuantize: bit 1 for a negative value; LceDequantize: bit 1 -> -1, bit 0 -> +1).
The bconv2d and bmaxpool2d kernels are held to the LCE interpreter by tests/codegen/test_lce.py
over the fixtures of tests/fixtures/lce, none of which holds an LceDequantize."""
from __future__ import annotations

import numpy as np

from edgert.ir import DType, Graph, Op, Tensor, verify
from edgert.ops import reference
from edgert.passes import check_ops, prepare_ops


def test_lce_quantize_then_dequantize_is_the_sign_with_zero_positive():
    channels = 40  # two 32-bit words, the second partly used
    g = Graph(tensors={"x": Tensor("x", (1, 2, 3, channels), DType.F32),
                       "packed": Tensor("packed", (1, 2, 3, 2), DType.I32),
                       "y": Tensor("y", (1, 2, 3, channels), DType.F32)},
              ops=[Op("lce_quantize", ["x"], ["packed"], {}, name="q"),
                   Op("lce_dequantize", ["packed"], ["y"], {}, name="dq")],
              inputs=["x"], outputs=["y"], name="pair")
    verify(g)
    prepare_ops.run(check_ops.run(g))
    x = np.random.default_rng(7).normal(0, 1, (1, 2, 3, channels)).astype(np.float32)
    x[0, 0, 0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    y = reference.run(g, [x])["y"]
    np.testing.assert_array_equal(y, np.where(x < 0, np.float32(-1), np.float32(1)))
