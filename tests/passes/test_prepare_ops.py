"""edgert.passes.prepare_ops: every attribute it derives is an integer (the firmware never sees
a float scale), and the requantization multipliers are TFLite's QuantizeMultiplier of
input scale * weight scale / output scale."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from edgert import api
from edgert.passes import check_ops, prepare_ops
from tests.conftest import MLPERF, MLPERF_INT8


def _integral(v) -> bool:
    if isinstance(v, np.ndarray):
        return np.issubdtype(v.dtype, np.integer)
    if isinstance(v, (tuple, list)):
        return all(_integral(e) for e in v)
    return isinstance(v, (int, np.integer, str)) and not isinstance(v, bool)


def _quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier, from its definition: real = q * 2^(shift - 31), q in [2^30, 2^31)."""
    if real == 0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = round(mantissa * (1 << 31))
    if q == 1 << 31:
        q, shift = q // 2, shift + 1
    return q, shift


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_derived_attributes_are_integers(name):
    g = check_ops.run(api.load_graph(MLPERF / f"{name}.tflite"))
    before = {op.name: copy.copy(op.attrs) for op in g.ops}
    prepare_ops.run(g)
    added = 0
    for op in g.ops:
        for key, value in op.attrs.items():
            if key not in before[op.name]:
                added += 1
                assert _integral(value), f"{op.name}: prepared attribute {key} = {value!r} is not integral"
    assert added > 0


def test_conv_multipliers_are_tflites():
    g = prepare_ops.run(check_ops.run(api.load_graph(MLPERF / "kws_dscnn_int8.tflite")))
    op = next(op for op in g.ops if op.kind == "conv2d")
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    for c, ws in enumerate(np.broadcast_to(w.quant.scale, (w.shape[0],))):
        # the product in double precision, as TFLite computes it
        q, shift = _quantize_multiplier(float(x.quant.scale[0]) * float(ws) / float(y.quant.scale[0]))
        assert (int(op.attrs["mult"][c]), int(op.attrs["shift"][c])) == (q, shift), f"channel {c}"
