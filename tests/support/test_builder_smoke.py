"""Smoke tests for tests.support.tflite_builder against TFLM and LiteRT.

Every case builds a model with random parameters, runs it in TFLite Micro
and in LiteRT and checks output shapes/dtypes.  For conv / depthwise / fully
connected int8 the TFLM and LiteRT outputs must be bit-identical; for other
int8 ops TFLM must match LiteRT's *reference* kernels.
"""

from __future__ import annotations

import glob
import os
import time

import numpy as np
import pytest

from edgert.validate.tflm_ref import TflmReference, run_litert, run_tflm
from tests.support.tflite_builder import ModelBuilder, conv_output_size, qparams_from_range

from tests.conftest import MLPERF as _MLPERF

MLPERF_DIR = str(_MLPERF)


# ----------------------------------------------------------------- helpers
def _rand_input(rng, b: ModelBuilder, idx: int) -> np.ndarray:
    t = b.tensor(idx)
    if t.dtype == np.int8:
        return rng.integers(-128, 128, t.shape, dtype=np.int8)
    return rng.normal(0.0, 1.0, t.shape).astype(np.float32)


def _q_in(b, rng, shape, scale=0.05):
    return b.add_input(shape, "int8", scale=scale, zero_point=int(rng.integers(-20, 20)))


def _in(b, shape, dtype, rng, scale=0.05):
    if dtype == "int8":
        return _q_in(b, rng, shape, scale)
    return b.add_input(shape, "float32")


# Each case: fn(rng, dtype) -> ModelBuilder with inputs/outputs set.
def conv_same_relu(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 9, 9, 3), dt, rng)
    y = b.conv2d(x, rng.normal(0, 0.3, (8, 3, 3, 3)), rng.normal(0, 0.2, 8), strides=1, padding="SAME", activation="RELU")
    b.set_outputs([y])
    return b


def conv_valid_s2_relu6(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 11, 10, 4), dt, rng)
    y = b.conv2d(x, rng.normal(0, 0.3, (6, 3, 2, 4)), rng.normal(0, 0.2, 6), strides=(2, 2), padding="VALID", activation="RELU6")
    b.set_outputs([y])
    return b


def conv_dilated_nobias(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 12, 12, 5), dt, rng)
    y = b.conv2d(x, rng.normal(0, 0.3, (7, 3, 3, 5)), None, dilation=2, padding="SAME")
    b.set_outputs([y])
    return b


def conv_1x1_batch2(rng, dt):
    b = ModelBuilder()
    x = _in(b, (2, 6, 6, 16), dt, rng)
    y = b.conv2d(x, rng.normal(0, 0.3, (12, 1, 1, 16)), rng.normal(0, 0.2, 12), strides=2, padding="SAME")
    b.set_outputs([y])
    return b


def dw_m1_same_relu(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 10, 10, 8), dt, rng)
    y = b.depthwise_conv2d(x, rng.normal(0, 0.4, (1, 3, 3, 8)), rng.normal(0, 0.2, 8), activation="RELU")
    b.set_outputs([y])
    return b


def dw_m2_valid_s2(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 9, 11, 3), dt, rng)
    y = b.depthwise_conv2d(x, rng.normal(0, 0.4, (1, 3, 3, 6)), rng.normal(0, 0.2, 6), depth_multiplier=2, strides=2, padding="VALID", activation="RELU6")
    b.set_outputs([y])
    return b


def dw_dilated(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 12, 12, 4), dt, rng)
    y = b.depthwise_conv2d(x, rng.normal(0, 0.4, (1, 3, 3, 4)), rng.normal(0, 0.2, 4), dilation=(2, 2), padding="SAME")
    b.set_outputs([y])
    return b


def fc_per_tensor(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 40), dt, rng)
    y = b.fully_connected(x, rng.normal(0, 0.2, (10, 40)), rng.normal(0, 0.2, 10), activation="RELU")
    b.set_outputs([y])
    return b


def fc_per_channel(rng, dt):
    b = ModelBuilder()
    x = _in(b, (3, 24), dt, rng)
    w = rng.normal(0, 0.2, (16, 24)) * rng.uniform(0.1, 2.0, (16, 1))
    y = b.fully_connected(x, w, rng.normal(0, 0.2, 16), per_channel=True)
    b.set_outputs([y])
    return b


def fc_flatten_4d(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 2, 2, 8), dt, rng)
    y = b.fully_connected(x, rng.normal(0, 0.2, (5, 32)), rng.normal(0, 0.2, 5))
    b.set_outputs([y])
    return b


def fc_keep_dims(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 4, 12), dt, rng)
    y = b.fully_connected(x, rng.normal(0, 0.2, (6, 12)), None, keep_num_dims=True)
    b.set_outputs([y])
    return b


def avgpool_valid(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 8, 8, 4), dt, rng)
    b.set_outputs([b.avg_pool2d(x, 2, 2, "VALID")])
    return b


def avgpool_same_relu(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 7, 7, 3), dt, rng)
    b.set_outputs([b.avg_pool2d(x, 3, 2, "SAME", activation="RELU")])
    return b


def maxpool_valid(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 8, 8, 4), dt, rng)
    b.set_outputs([b.max_pool2d(x, (2, 3), (2, 1), "VALID")])
    return b


def maxpool_same(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 7, 7, 3), dt, rng)
    b.set_outputs([b.max_pool2d(x, 3, 2, "SAME")])
    return b


def add_same_shape(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 5, 5, 6), dt, rng, 0.05)
    y = _in(b, (1, 5, 5, 6), dt, rng, 0.03)
    b.set_outputs([b.add(x, y, activation="RELU")])
    return b


def add_broadcast(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 4, 4, 8), dt, rng, 0.05)
    y = _in(b, (1, 1, 1, 8), dt, rng, 0.02)
    b.set_outputs([b.add(x, y)])
    return b


def mul_same_shape(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 5, 5, 6), dt, rng, 0.05)
    y = _in(b, (1, 5, 5, 6), dt, rng, 0.03)
    b.set_outputs([b.mul(x, y)])
    return b


def mul_broadcast_const(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 4, 4, 8), dt, rng, 0.05)
    if dt == "int8":
        c = b.add_const(rng.integers(-128, 128, (1, 1, 1, 8), dtype=np.int8), scale=0.01, zero_point=3)
    else:
        c = b.add_const(rng.normal(0, 1, (1, 1, 1, 8)).astype(np.float32))
    b.set_outputs([b.mul(x, c, activation="RELU6")])
    return b


def reshape(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 3, 4, 5), dt, rng)
    b.set_outputs([b.reshape(x, (1, -1))])
    return b


def softmax_2d(rng, dt):
    b = ModelBuilder()
    x = _in(b, (2, 10), dt, rng, 0.1)
    b.set_outputs([b.softmax(x)])
    return b


def softmax_4d_beta(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 3, 3, 7), dt, rng, 0.1)
    b.set_outputs([b.softmax(x, beta=0.5)])
    return b


def logistic(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 6, 7), dt, rng, 0.06)
    b.set_outputs([b.logistic(x)])
    return b


def pad(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 5, 6, 3), dt, rng)
    b.set_outputs([b.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]])])
    return b


def padv2(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 5, 6, 3), dt, rng)
    b.set_outputs([b.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_value=5 if dt == "int8" else 0.25)])
    return b


def mean_hw_keep(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 6, 6, 8), dt, rng)
    b.set_outputs([b.mean(x, [1, 2], keep_dims=True)])
    return b


def mean_hw_nokeep(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 6, 6, 8), dt, rng)
    b.set_outputs([b.mean(x, [1, 2], keep_dims=False)])
    return b


def mean_last_axis_rescale(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 4, 5, 8), dt, rng)
    b.set_outputs([b.mean(x, [3], keep_dims=True, out_scale=0.02, out_zero_point=4)])
    return b


def concat_channels(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 4, 4, 3), dt, rng)
    xi = b.tensor(x)
    if dt == "int8":
        s, zp = xi.per_tensor
        y = b.add_input((1, 4, 4, 5), "int8", scale=s, zero_point=zp)
    else:
        y = b.add_input((1, 4, 4, 5), "float32")
    b.set_outputs([b.concatenation([x, y], axis=-1)])
    return b


def concat_axis1_three(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 2, 6), dt, rng)
    kw = {}
    if dt == "int8":
        s, zp = b.tensor(x).per_tensor
        kw = dict(scale=s, zero_point=zp)
    y = b.add_input((1, 3, 6), dt, **kw)
    z = b.add_input((1, 1, 6), dt, **kw)
    b.set_outputs([b.concatenation([x, y, z], axis=1)])
    return b


def concat_mixed_scales(rng, dt):
    b = ModelBuilder()
    x = _in(b, (1, 4, 4, 3), dt, rng, 0.05)
    y = _in(b, (1, 4, 4, 2), dt, rng, 0.08)
    b.set_outputs([b.concatenation([x, y], axis=3, out_scale=0.1, out_zero_point=0)])
    return b


# int8-only cases
def quantize_f2i(rng, dt):
    b = ModelBuilder()
    x = b.add_input((1, 4, 6), "float32")
    b.set_outputs([b.quantize(x, 0.02, -5)])
    return b


def quantize_requant(rng, dt):
    b = ModelBuilder()
    x = _q_in(b, rng, (1, 4, 6), 0.05)
    b.set_outputs([b.quantize(x, 0.07, 9)])
    return b


def dequantize(rng, dt):
    b = ModelBuilder()
    x = _q_in(b, rng, (1, 4, 6), 0.05)
    b.set_outputs([b.dequantize(x)])
    return b


def tiny_net(rng, dt):
    """conv -> dwconv -> avgpool -> reshape -> fc -> softmax (KWS-like)."""
    b = ModelBuilder()
    x = _in(b, (1, 10, 8, 1), dt, rng, 0.5)
    h = b.conv2d(x, rng.normal(0, 0.3, (8, 3, 3, 1)), rng.normal(0, 0.1, 8), strides=2, activation="RELU")
    h = b.depthwise_conv2d(h, rng.normal(0, 0.3, (1, 3, 3, 8)), rng.normal(0, 0.1, 8), activation="RELU")
    h = b.conv2d(h, rng.normal(0, 0.3, (8, 1, 1, 8)), rng.normal(0, 0.1, 8), activation="RELU")
    h = b.avg_pool2d(h, (5, 4))
    h = b.reshape(h, (1, -1))
    h = b.fully_connected(h, rng.normal(0, 0.3, (4, 8)), rng.normal(0, 0.1, 4))
    b.set_outputs([b.softmax(h)])
    return b


def float_io_quant_net(rng, dt):
    """float in -> QUANTIZE -> conv -> add(residual) -> DEQUANTIZE -> float out."""
    b = ModelBuilder()
    x = b.add_input((1, 6, 6, 4), "float32")
    q = b.quantize(x, 0.03, 0)
    h = b.conv2d(q, rng.normal(0, 0.3, (4, 3, 3, 4)), rng.normal(0, 0.1, 4), activation="RELU")
    h = b.add(h, q)
    b.set_outputs([b.dequantize(h)])
    return b


BOTH = [
    conv_same_relu, conv_valid_s2_relu6, conv_dilated_nobias, conv_1x1_batch2,
    dw_m1_same_relu, dw_m2_valid_s2, dw_dilated,
    fc_per_tensor, fc_per_channel, fc_flatten_4d, fc_keep_dims,
    avgpool_valid, avgpool_same_relu, maxpool_valid, maxpool_same,
    add_same_shape, add_broadcast, mul_same_shape, mul_broadcast_const,
    reshape, softmax_2d, softmax_4d_beta, logistic, pad, padv2,
    mean_hw_keep, mean_hw_nokeep, mean_last_axis_rescale,
    concat_channels, concat_axis1_three, concat_mixed_scales, tiny_net,
]
INT8_ONLY = [quantize_f2i, quantize_requant, dequantize, float_io_quant_net]

CASES = [pytest.param(f, dt, id=f"{f.__name__}-{dt}") for f in BOTH for dt in ("int8", "float32")]
CASES += [pytest.param(f, "int8", id=f"{f.__name__}") for f in INT8_ONLY]

# Known rejections: case id -> (TFLM error regex, LiteRT error regex).
REJECTED = {
    "concat_mixed_scales-int8": (r"concatenation\.cc.*scale", r"concatenation\.cc.*scale"),
}


def _expected_shapes(b: ModelBuilder):
    return [b.tensor(i).shape for i in b.outputs]


def _maxdiff(a, b) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()) if a.size else 0


@pytest.mark.parametrize("make,dt", CASES)
def test_op_tflm_vs_litert(make, dt):
    rng = np.random.default_rng(1234)
    b = make(rng, dt)
    model = b.build()
    inputs = [_rand_input(rng, b, i) for i in b.inputs]
    exp = _expected_shapes(b)
    exp_dt = [b.tensor(i).dtype for i in b.outputs]

    key = f"{make.__name__}-{dt}" if make in BOTH else make.__name__
    if key in REJECTED:
        tflm_re, litert_re = REJECTED[key]
        with pytest.raises(RuntimeError, match=tflm_re):
            run_tflm(model, inputs)
        with pytest.raises(RuntimeError, match=litert_re):
            run_litert(model, inputs, resolver="ref")
        return

    out = run_tflm(model, inputs)
    lref = run_litert(model, inputs, resolver="ref")
    lopt = run_litert(model, inputs, resolver="builtin")
    assert [o.shape for o in out] == exp
    assert [o.dtype for o in out] == exp_dt
    assert [o.shape for o in lref] == exp
    assert [o.shape for o in lopt] == exp

    name = make.__name__
    for t, r, o in zip(out, lref, lopt):
        if t.dtype == np.int8:
            # conv/depthwise: TFLM == LiteRT reference kernels bit for bit
            # (LiteRT's optimized conv rounds differently in ~0.1% of outputs).
            # fully connected: TFLM == LiteRT optimized kernels (LiteRT's
            # reference FC uses single rounding and differs by 1 LSB sometimes).
            if name.startswith(("conv", "dw_")):
                np.testing.assert_array_equal(t, r, err_msg="TFLM vs LiteRT reference kernels")
            elif name.startswith("fc_"):
                np.testing.assert_array_equal(t, o, err_msg="TFLM vs LiteRT optimized kernels")
            else:
                np.testing.assert_array_equal(t, r, err_msg="TFLM vs LiteRT reference kernels")
            assert _maxdiff(t, r) <= 1 and _maxdiff(t, o) <= 1
        else:
            np.testing.assert_allclose(t, r, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(t, o, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------- TFLM quirks (documented)
def _q(b, shape, s=0.05, z=3):
    return b.add_input(shape, "int8", scale=s, zero_point=z)


def _quirk_concat_diff_zp(b, rng):
    x, y = _q(b, (1, 2, 2, 3), 0.05, 3), _q(b, (1, 2, 2, 3), 0.05, -7)
    b.set_outputs([b.concatenation([x, y], 3)])


def _quirk_concat_relu(b, rng):
    x, y = _q(b, (1, 2, 2, 3)), _q(b, (1, 2, 2, 3))
    b.set_outputs([b.concatenation([x, y], 3, activation="RELU")])


def _quirk_pool_rescale(b, rng):
    x = _q(b, (1, 4, 4, 2))
    y = b.add_tensor((1, 2, 2, 2), "int8", scale=0.1, zero_point=0)
    b.add_op("AVERAGE_POOL_2D", [x], [y], {"padding": 1, "stride_h": 2, "stride_w": 2, "filter_height": 2, "filter_width": 2})
    b.set_outputs([y])


def _quirk_softmax_zp(b, rng):
    x = _q(b, (1, 10))
    y = b.add_tensor((1, 10), "int8", scale=1 / 256, zero_point=0)
    b.add_op("SOFTMAX", [x], [y], {"beta": 1.0})
    b.set_outputs([y])


def _quirk_logistic_zp(b, rng):
    x = _q(b, (1, 10))
    y = b.add_tensor((1, 10), "int8", scale=1 / 256, zero_point=0)
    b.add_op("LOGISTIC", [x], [y])
    b.set_outputs([y])


def _quirk_conv_unquantized_filter(b, rng):
    x = b.add_input((1, 4, 4, 2), "int8")
    w = b.add_const(np.ones((2, 1, 1, 2), np.int8))
    bias = b.add_const(np.zeros(2, np.int32))
    y = b.add_tensor((1, 4, 4, 2), "int8")
    b.add_op("CONV_2D", [x, w, bias], [y], {"stride_h": 1, "stride_w": 1})
    b.set_outputs([y])


TFLM_REJECTS = [
    pytest.param(_quirk_concat_diff_zp, r"concatenation\.cc.*zero_point", id="concat-different-zero-points"),
    pytest.param(_quirk_concat_relu, r"concatenation\.cc.*activation != kTfLiteActNone", id="concat-fused-activation"),
    pytest.param(_quirk_pool_rescale, r"pooling_common\.cc.*scale_diff", id="avgpool-output-scale-differs"),
    pytest.param(_quirk_softmax_zp, r"softmax_common\.cc.*zero_point != -128", id="softmax-output-zp-not-128"),
    pytest.param(_quirk_logistic_zp, r"logistic_common\.cc.*zero_point", id="logistic-output-zp-not-128"),
    pytest.param(_quirk_conv_unquantized_filter, r"conv_common\.cc.*kTfLiteAffineQuantization", id="int8-conv-unquantized-filter"),
]


@pytest.mark.parametrize("make,pattern", TFLM_REJECTS)
def test_tflm_rejects(make, pattern):
    """TFLM fails in Prepare (RuntimeError at interpreter creation)."""
    b = ModelBuilder()
    make(b, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=pattern):
        TflmReference(b.build())


def test_tflm_accepts_what_litert_rejects():
    """Conv without bias and int8 conv weights with nonzero zero point load in
    TFLM but not in LiteRT, so keep the converter's form (zero bias, zp 0)."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = _q(b, (1, 6, 6, 3))
    b.set_outputs([b.conv2d(x, rng.normal(0, 0.3, (4, 3, 3, 3)), omit_bias=True)])
    model = b.build()
    xs = [np.zeros((1, 6, 6, 3), np.int8)]
    assert run_tflm(model, xs)[0].shape == (1, 6, 6, 4)
    with pytest.raises(RuntimeError):
        run_litert(model, xs)


def test_quantized_params_are_converter_like():
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.add_input((1, 5, 5, 2), "int8", scale=0.1, zero_point=3)
    w = rng.normal(0, 0.3, (4, 3, 3, 2))
    y = b.conv2d(x, w, rng.normal(0, 0.1, 4))
    wt, bt = b.tensor(1), b.tensor(2)
    assert wt.dtype == np.int8 and wt.quantized_dimension == 0 and len(wt.scale) == 4
    assert np.all(wt.zero_point == 0) and np.abs(wt.data).max() == 127
    np.testing.assert_allclose(bt.scale, np.float32(0.1) * wt.scale, rtol=1e-6)
    assert bt.dtype == np.int32 and np.all(bt.zero_point == 0)
    d = b.depthwise_conv2d(y, rng.normal(0, 0.3, (1, 3, 3, 4)), np.zeros(4))
    assert b.tensor(d - 2).quantized_dimension == 3
    s = b.softmax(d)
    assert b.tensor(s).per_tensor == (1.0 / 256, -128)
    b.set_outputs([s])
    model = b.build()
    assert model[4:8] == b"TFL3"
    assert conv_output_size(10, 3, 2, 1, "VALID") == 4 and conv_output_size(10, 3, 2, 1, "SAME") == 5
    sc, zp = qparams_from_range(-1.0, 3.0)
    assert zp == -64 and abs(sc - 4 / 255) < 1e-7


def test_tflm_reference_reuse_and_arena():
    rng = np.random.default_rng(5)
    b = conv_same_relu(rng, "int8")
    model = b.build()
    ref = TflmReference(model)
    x = _rand_input(rng, b, b.inputs[0])
    a = ref.run([x])[0]
    c = ref.run([x])[0]
    np.testing.assert_array_equal(a, c)
    rep = ref.arena_report()
    assert rep["total"] == rep["head"] + rep["tail"] > 0
    # the reported total is the smallest arena TFLM accepts
    np.testing.assert_array_equal(TflmReference(model, arena_size=ref.arena_bytes).run([x])[0], a)
    with pytest.raises(RuntimeError):
        TflmReference(model, arena_size=ref.arena_bytes - 16)


MLPERF_INT8 = sorted(glob.glob(os.path.join(MLPERF_DIR, "*_int8.tflite")))


@pytest.mark.skipif(not MLPERF_INT8, reason="mlperf_tiny models not available")
@pytest.mark.parametrize("path", MLPERF_INT8, ids=os.path.basename)
def test_mlperf_tiny_int8_tflm(path):
    model = open(path, "rb").read()
    ref = TflmReference(model)
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, d["shape"], dtype=np.int8) for d in ref.input_details]
    out = ref.run(xs)
    n = 3
    t0 = time.perf_counter()
    for _ in range(n):
        ref.run(xs)
    per = (time.perf_counter() - t0) / n
    print(f"\n{os.path.basename(path)}: arena total={ref.arena_bytes} head={ref.arena_report()['head']} "
          f"tail={ref.arena_report()['tail']} invoke={per * 1e3:.2f} ms")
    # TFLM matches LiteRT's reference kernels (conv models) or optimized
    # kernels (FC-only ad_toycar) -- at least one of them, bit for bit.
    lref = run_litert(model, xs, resolver="ref")
    lopt = run_litert(model, xs, resolver="builtin")
    assert [o.shape for o in out] == [o.shape for o in lref]
    same_ref = all(np.array_equal(t, r) for t, r in zip(out, lref))
    same_opt = all(np.array_equal(t, o) for t, o in zip(out, lopt))
    assert same_ref or same_opt
