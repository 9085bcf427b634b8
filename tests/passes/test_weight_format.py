"""Weight formats (int4, codebook, sparse) and compile-time channel removal: every variant
gives exactly the outputs of the same model run densely by TFLite Micro."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import api
from edgert.ops import packing, sparsity
from edgert.passes import weight_format
from edgert.validate.tflm_ref import run_tflm
from tests.support.tflite_builder import ModelBuilder

CODEBOOK = np.array([-90, -41, -13, -2, 0, 3, 17, 29, 55, 77, 101, -127, 120, 66, -66, 9], np.int8)


def _weights(kind: str, shape, rng) -> np.ndarray:
    if kind == "int4":
        return rng.integers(-8, 8, shape).astype(np.int8)
    if kind == "codebook":
        return rng.choice(CODEBOOK, shape)
    w = rng.integers(-127, 128, shape).astype(np.int8)
    if kind.startswith("sparse"):
        w[rng.random(shape) < int(kind[6:]) / 100] = 0
    return w


def conv_net(kind: str, seed: int = 0) -> bytes:
    """3x3 SAME conv (16 -> 32, ReLU), 1x1 stride-2 conv (-> 24), 3x3 depthwise, dense (-> 10),
    every weight tensor of the given kind."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.add_input((1, 12, 12, 16), "int8", scale=0.05, zero_point=-3)
    y = b.conv2d(x, _weights(kind, (32, 3, 3, 16), rng), rng.integers(-2000, 2000, 32).astype(np.int32),
                 weight_scale=np.full(32, 0.002, np.float32), padding="SAME", activation="RELU")
    y = b.conv2d(y, _weights(kind, (24, 1, 1, 32), rng), None, weight_scale=np.full(24, 0.003, np.float32),
                 padding="VALID", strides=2)
    y = b.depthwise_conv2d(y, _weights(kind, (1, 3, 3, 24), rng), None, weight_scale=np.full(24, 0.01, np.float32),
                           padding="SAME")
    y = b.reshape(y, (1, 6 * 6 * 24))
    y = b.fully_connected(y, _weights(kind, (10, 6 * 6 * 24), rng), None, weight_scale=0.001)
    b.set_outputs([y])
    return b.build()


def _inputs(shape, seed=1):
    return [np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)]


def _build_and_compare(tmp_path, model: bytes, name: str, weights="auto"):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    b = api.build(path, "host", tmp_path / name, weights=weights)
    xs = _inputs(b.meta["io"]["inputs"][0]["shape"])
    got = api.run(b, xs)[0]
    want = run_tflm(model, xs)[0]
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    return b


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("shape,axis", [((6, 3, 3, 5), 0), ((1, 3, 3, 7), 3), ((10, 33), 0)])
def test_packings_round_trip(shape, axis):
    rng = np.random.default_rng(0)
    for vals in (rng.integers(-8, 8, shape), rng.choice(CODEBOOK[:4], shape), rng.choice(CODEBOOK, shape)):
        vals = vals.astype(np.int8)
        for p in packing.candidates(vals, axis):
            packed = packing.pack(vals, p, axis)
            assert packed.nbytes == (vals.size * p.bits + 7) // 8
            np.testing.assert_array_equal(packing.unpack(packed, p, vals.shape, axis), vals)


def test_smallest_format_and_codebook_groups():
    rng = np.random.default_rng(0)
    assert packing.smallest(rng.integers(-128, 128, (8, 9)).astype(np.int8), 0).kind == "int8"
    assert packing.smallest(rng.integers(-8, 8, (8, 9)).astype(np.int8), 0).kind == "int4"
    # four values per pair of channels, all 8 channels drawing on 16: one 2-bit table per pair
    tables = rng.permutation(CODEBOOK).reshape(4, 4)
    w = np.stack([rng.choice(tables[o // 2], 9) for o in range(8)]).astype(np.int8)
    p = packing.smallest(w, 0)
    assert (p.kind, p.bits, p.group) == ("codebook", 2, 2)


def test_sparse_offsets_address_the_window():
    rng = np.random.default_rng(0)
    w = _weights("sparse70", (5, 3, 3, 4), rng)
    s = sparsity.analyse(w, (10 * 4, 4))  # a 10-wide, 4-channel input
    pos, val = sparsity.encode(w, s)
    assert s.nnz == np.count_nonzero(w) and s.width == max(np.count_nonzero(w.reshape(5, -1), axis=1))
    for o in range(5):
        for p, v in zip(pos[o], val[o]):
            if v:
                ky, rest = divmod(int(p), 40)
                kx, c = divmod(rest, 4)
                assert w[o, ky, kx, c] == v


# --------------------------------------------------------------------------- builds


@pytest.mark.parametrize("kind,expect", [
    ("int4", "int4"),
    ("codebook", "codebook 4-bit, 1 table(s) of 16"),
    ("sparse50", "int8"),          # 3 bytes per nonzero: no flash saved at 50 %
    ("sparse80", "sparse, int8"),
    ("sparse95", "sparse, int8"),
])
def test_weight_formats_are_exact(tmp_path, kind, expect):
    b = _build_and_compare(tmp_path, conv_net(kind), kind)
    rows = {r["layer"]: r for r in b.report["weights"]}
    assert rows["conv2d_0"]["chosen"] == expect
    if expect.startswith("sparse"):
        assert rows["conv2d_0"]["sparse_bytes"] < rows["conv2d_0"]["dense_bytes"]
        assert rows["conv2d_0"]["sparse_macs"] < rows["conv2d_0"]["dense_macs"]
        assert any(op.kind == "pad" for op in api.compile_model(b.model_path, weights="auto").graph.ops)


@pytest.mark.parametrize("kind,layer,scalar,simd", [
    ("int4", "conv2d_0", "int4", "int8"),  # SIMD: decoding stops the vectorization; memory is plentiful
    ("codebook", "conv2d_0", "codebook 4-bit, 1 table(s) of 16", "int8"),
    ("sparse80", "conv2d_0", "sparse, int8", "sparse, int8"),  # against a dot product per output: pays on both
    ("sparse80", "conv2d_1", "sparse, int8", "int8"),  # against the vectorized 1x1 kernel it does not
])
def test_choice_follows_the_targets_costs(tmp_path, kind, layer, scalar, simd):
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(conv_net(kind))
    chosen = {}
    for name, is_simd in (("scalar", False), ("simd", True)):
        rows = {r["layer"]: r for r in api.compile_model(path, weights="auto", simd=is_simd).weight_rows}
        chosen[name] = rows[layer]["chosen"]
        if "estimated_instructions" in rows[layer]:
            est = rows[layer]["estimated_instructions"]
            assert est["costs"] == name and (est["sparse"] < est["dense"]) == chosen[name].startswith("sparse")
    assert chosen == {"scalar": scalar, "simd": simd}


def test_flash_shrinks_with_the_format(tmp_path):
    model = conv_net("int4")
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    flash = {mode: api.build(path, "host", tmp_path / mode, weights=mode).report["summary"]["flash_const_bytes"]
             for mode in ("int8", "auto")}
    layers = [32 * 9 * 16, 24 * 32, 9 * 24, 10 * 864]
    packed = [n for n in layers if n // 2 >= weight_format.MIN_PACK_SAVING]
    assert len(packed) == 3  # the depthwise layer's 216 weights stay int8: 108 bytes are not worth decoding
    assert flash["int8"] - flash["auto"] >= sum(packed) // 2 - 64  # half of each packed weight byte (minus alignment)
    rows = {r["layer"]: r for r in api.compile_model(path, weights="auto").weight_rows}
    assert rows["depthwise_conv2d_0"]["chosen"] == "int8" and rows["conv2d_1"]["chosen"] == "int4"


# --------------------------------------------------------------------------- channel removal


def _pruned_net(first_bias: np.ndarray, second: str) -> bytes:
    """conv 3x3 (8 filters, filters 1, 4 and 6 all zero) -> ReLU, then ``second``:
    "conv_same" (3x3 SAME conv), "conv_valid" (3x3 VALID conv) or "dense" (flatten, FC)."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_input((1, 6, 6, 3), "int8", scale=0.04, zero_point=5)
    w = rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    w[[1, 4, 6]] = 0
    y = b.conv2d(x, w, first_bias.astype(np.int32), weight_scale=np.full(8, 0.01, np.float32), padding="SAME",
                 activation="RELU", out_scale=0.05, out_zero_point=-20)
    if second == "dense":
        y = b.reshape(y, (1, 6 * 6 * 8))
        y = b.fully_connected(y, rng.integers(-127, 128, (5, 288)).astype(np.int8), None, weight_scale=0.002)
    else:
        y = b.conv2d(y, rng.integers(-127, 128, (4, 3, 3, 8)).astype(np.int8), None,
                     weight_scale=np.full(4, 0.003, np.float32), padding="SAME" if second == "conv_same" else "VALID")
    b.set_outputs([y])
    return b.build()


@pytest.mark.parametrize("bias,second,removed", [
    ("zero", "conv_same", 3),      # pruned filters output the zero point: no consumer sees them
    ("positive", "conv_valid", 3),  # constants folded into the next layer's bias
    ("positive", "dense", 3),       # through the flatten, into the dense layer's bias
    ("positive", "conv_same", 0),   # a padded conv reads the zero point at the border, not the constant
])
def test_pruned_filters_are_removed_exactly(tmp_path, bias, second, removed):
    first_bias = np.zeros(8) if bias == "zero" else np.arange(1, 9) * 400
    model = _pruned_net(first_bias, second)
    b = _build_and_compare(tmp_path, model, f"{bias}_{second}")
    g = api.compile_model(b.model_path, weights="auto").graph
    conv = g.ops[0]
    assert conv.attrs.get("pruned_channels", (0, 8)) == (removed, 8)
    assert g.tensor(conv.outputs[0]).shape[-1] == 8 - removed


def test_zero_input_channels_are_removed(tmp_path):
    """Input-channel pruning: every filter of the second conv ignores channels 0 and 5."""
    rng = np.random.default_rng(4)
    b = ModelBuilder()
    x = b.add_input((1, 6, 6, 3), "int8", scale=0.04, zero_point=5)
    y = b.conv2d(x, rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8), None,
                 weight_scale=np.full(8, 0.01, np.float32), padding="SAME", activation="RELU")
    w2 = rng.integers(-127, 128, (4, 3, 3, 8)).astype(np.int8)
    w2[..., [0, 5]] = 0
    y = b.conv2d(y, w2, None, weight_scale=np.full(4, 0.003, np.float32), padding="SAME")
    b.set_outputs([y])
    built = _build_and_compare(tmp_path, b.build(), "inputs")
    assert api.compile_model(built.model_path, weights="auto").graph.ops[0].attrs["pruned_channels"] == (2, 8)
