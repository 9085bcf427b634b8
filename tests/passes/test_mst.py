"""`--bnn-mst`: binary convolutions computing channels from similar channels' accumulators
stay bit-exact (host C and the emulated Cortex-M7) for every padding and output kind, are
planned only where they save work, and report the bit operations they save."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device.board import connect
from edgert.passes import mst
from tests.support import scripts

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "lce"


def _similar(case: str, tmp_path, prototypes=4, flips=2) -> Path:
    mod = scripts.load("scripts/similar_filters.py")
    out = tmp_path / f"{case}_similar.tflite"
    mod.rewrite(FIXTURES / f"{case}.tflite", out, prototypes, flips)
    return out


def _inputs(b, n=4):
    spec = b.meta["io"]["inputs"][0]
    rng = np.random.default_rng(3)
    if spec["dtype"] == "int8":
        return [rng.integers(-128, 128, spec["shape"], dtype=np.int8) for _ in range(n)]
    return [rng.normal(size=spec["shape"]).astype(np.float32) for _ in range(n)]


# one padding (float out), zero padding, 40 -> 36 channels, bit-packed output + valid, int8 output
@pytest.mark.parametrize("case", ["bconv_same_one_padding", "bconv_same_zero_padding", "bconv_channels_40_to_36",
                                  "bconv_bitpacked_chain", "bconv_int8_output_int8", "bconv_stride2"])
def test_mst_is_bit_exact(case, tmp_path):
    model = _similar(case, tmp_path)
    dense = api.build(model, "host", tmp_path / "dense")
    reuse = api.build(model, "host", tmp_path / "mst", bnn_mst=True)
    rows = reuse.report["mst"]
    assert any(r["applied"] for r in rows.values()), rows
    for r in rows.values():
        assert r["bitops_mst"] <= r["bitops_dense"]
    for x in _inputs(dense):
        np.testing.assert_array_equal(api.run(reuse, [x])[0], api.run(dense, [x])[0])


def test_dissimilar_filters_keep_the_dense_kernel(tmp_path):
    b = api.build(FIXTURES / "bconv_stride2.tflite", "host", tmp_path / "b", bnn_mst=True)
    assert [r["applied"] for r in b.report["mst"].values()] == [False]


def test_plan_assigns_every_channel_to_a_center():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**31, (3, 3, 3, 2), dtype=np.int64).astype(np.int32)
    w = np.concatenate([base] * 8)  # 24 channels, 3 distinct filters
    p = mst.plan(w)
    assert p is not None and len(p["centers"]) == 3 and p["bound"] == 0
    for c in range(24):
        assert np.array_equal(w[c], w[p["center_of"][c]])


@pytest.mark.qemu
@pytest.mark.cross
def test_cli_reports_the_saving_and_the_board_agrees(tmp_path, capsys):
    model = _similar("bconv_same_zero_padding", tmp_path)
    assert main(["build", str(model), "--target", "cortex-m7", "-o", str(tmp_path / "m7"), "--bnn-mst"]) == 0
    out = capsys.readouterr().out
    assert "--bnn-mst bconv2d_0:" in out and "saved)" in out
    b = api.load_build(tmp_path / "m7")
    host = api.build(model, "host", tmp_path / "host")
    with connect(b) as board:
        for x in _inputs(host, 2):
            got = board.session.run([x], b.meta["io"]["outputs"]).outputs[0]
            np.testing.assert_array_equal(got.reshape(-1), api.run(host, [x])[0].reshape(-1))


def test_a_vectorizing_cpu_needs_much_more_similar_filters():
    """On the Pi the dense kernel runs over channels in NEON lanes, so a difference entry costs
    ENTRY_COST_SIMD dense words: filters with a few differing words keep the dense kernel
    there, identical ones are still reused."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**31, (8, 3, 3, 2), dtype=np.int64).astype(np.int32)
    near = np.concatenate([base] * 8)          # 64 channels, 8 prototypes
    for c in range(8, 64):                     # each copy differs from its prototype in one word
        near[c, c % 3, (c // 3) % 3, c % 2] ^= 1 << (c % 31)
    assert mst.plan(near) is not None
    assert mst.plan(near, mst.ENTRY_COST_SIMD) is None
    same = np.concatenate([base] * 8)
    assert mst.plan(same, mst.ENTRY_COST_SIMD)["bound"] == 0
