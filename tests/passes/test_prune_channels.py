"""edgert.passes.prune_channels: pruned channels are removed from a layer, its bias, its scales
and its readers, and the graph computes the same integers as before the pass (edgert's numpy
reference, and TFLite Micro on the original model)."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.ops import reference
from edgert.passes import check_ops, prepare_ops, prune_channels
from edgert.validate.tflm_ref import run_tflm
from tests.support.tflite_builder import ModelBuilder


def _model(tmp_path, *, padding: str, bias: float) -> tuple[bytes, object]:
    """conv A (6 filters: 1 zeroed, 1 whose readers' weights are zero) -> conv B -> FC."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_input((1, 6, 6, 3), "int8", scale=0.05, zero_point=-4)
    wa = rng.normal(0, 0.5, (6, 3, 3, 3))
    wa[2] = 0  # filter pruning: channel 2 is the constant requantized bias
    a = b.conv2d(x, wa, np.full(6, bias), padding="VALID", activation="RELU")
    wb = rng.normal(0, 0.5, (4, 1, 1, 6) if padding == "VALID" else (4, 3, 3, 6))
    wb[..., 4] = 0  # input-channel pruning: nobody reads channel 4
    c = b.conv2d(a, wb, padding=padding)
    y = b.fully_connected(c, rng.normal(0, 0.3, (5, int(np.prod(b.tensor(c).shape[1:])))))
    b.set_io([x], [y])
    model = b.build()
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    return model, path


def _passes(path, prune: bool):
    g = check_ops.run(api.load_graph(path))
    if prune:
        g = prune_channels.run(g)
    return prepare_ops.run(g)


@pytest.mark.parametrize("padding, bias, removed", [
    ("VALID", 0.3, 2),  # B reads every tap: the constant channel folds into B's bias
    ("SAME", 0.0, 2),   # the constant equals the zero point (RELU of a zero bias): nothing to fold
    ("SAME", 0.3, 1),   # B's border taps read the zero point, not the constant: channel 2 stays
])
def test_pruned_graph_computes_the_same_integers(tmp_path, padding, bias, removed):
    model, path = _model(tmp_path, padding=padding, bias=bias)
    dense, pruned = _passes(path, prune=False), _passes(path, prune=True)
    conv_a = pruned.ops[0]
    assert conv_a.attrs.get("pruned_channels", (0, 6)) == (removed, 6)
    assert pruned.tensor(conv_a.outputs[0]).shape[-1] == 6 - removed
    assert pruned.tensor(pruned.ops[1].inputs[1]).shape[-1] == 6 - removed
    rng = np.random.default_rng(0)
    for _ in range(5):
        xs = [rng.integers(-128, 128, (1, 6, 6, 3), dtype=np.int8)]
        want = reference.run(dense, xs)[dense.outputs[0]]
        got = reference.run(pruned, xs)[pruned.outputs[0]]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, run_tflm(model, xs)[0].reshape(got.shape))


def test_a_graph_output_keeps_every_channel(tmp_path):
    b = ModelBuilder()
    x = b.add_input((1, 4, 4, 2), "int8", scale=0.05, zero_point=0)
    w = np.ones((3, 1, 1, 2))
    w[1] = 0
    y = b.conv2d(x, w, padding="VALID")
    b.set_io([x], [y])
    (tmp_path / "m.tflite").write_bytes(b.build())
    g = _passes(tmp_path / "m.tflite", prune=True)
    assert "pruned_channels" not in g.ops[0].attrs
    assert g.tensor(g.outputs[0]).shape == (1, 4, 4, 3)
