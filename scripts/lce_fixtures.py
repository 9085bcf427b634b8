"""Generate the Larq Compute Engine fixtures of tests/fixtures/lce/: small Larq models
converted by the LCE converter, each with seeded inputs and the LCE interpreter's outputs
(its reference and its optimized binary kernels, which must agree).

It needs TensorFlow, Larq and larq-compute-engine, which edgert itself does not: run it in
their own environment, made by scripts/lce_env.sh:

    scripts/lce_env.sh && .venv-lce/bin/python scripts/lce_fixtures.py

The tests read only the committed .tflite and .npz files.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Larq builds on tf.keras (Keras 2)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message=".*experimental_default_int8_range.*")

import larq as lq  # noqa: E402
import larq_compute_engine as lce  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from larq_compute_engine.tflite.python.interpreter import Interpreter  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lce"
SAMPLES = 4
K = tf.keras


def qconv(filters, k=3, **kw):
    kw.setdefault("padding", "valid")
    return lq.layers.QuantConv2D(filters, k, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                 kernel_constraint="weight_clip", use_bias=False, **kw)


def bn():
    return K.layers.BatchNormalization(momentum=0.0)


def randomize(model: K.Model, seed: int) -> None:
    """Random weights and batch-norm statistics, so that multipliers and biases vary per
    channel (some multipliers negative) the way a trained model's do."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, K.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(-1.5, 1.5, c).astype(np.float32),      # gamma: some negative
                               rng.uniform(-4, 4, c).astype(np.float32),          # beta
                               rng.uniform(-6, 6, c).astype(np.float32),          # moving mean
                               rng.uniform(0.5, 20, c).astype(np.float32)])       # moving variance
        elif layer.weights:
            layer.set_weights([rng.normal(0, 1, w.shape).astype(np.float32) for w in layer.get_weights()])


def model(name, shape, body, seed):
    inp = K.Input(shape)
    m = K.Model(inp, body(inp), name=name)
    randomize(m, seed)
    return m


def chain(*layers):
    def body(x):
        for layer in layers:
            x = layer(x)
        return x
    return body


CASES = {
    # single binary convolutions, float in and out (LceQuantize -> LceBconv2d)
    "bconv_valid": ((8, 8, 32), lambda: chain(qconv(32), bn())),
    "bconv_same_one_padding": ((7, 9, 32), lambda: chain(qconv(16, padding="same", pad_values=1.0), bn())),
    "bconv_same_zero_padding": ((7, 9, 32), lambda: chain(qconv(16, padding="same", pad_values=0.0), bn())),
    "bconv_channels_40_to_36": ((6, 6, 40), lambda: chain(qconv(36, padding="same", pad_values=1.0), bn())),
    "bconv_channels_70_zero_pad": ((5, 5, 70), lambda: chain(qconv(9, padding="same", pad_values=0.0), bn())),
    "bconv_stride2": ((9, 9, 64), lambda: chain(qconv(32, strides=2, padding="same", pad_values=1.0), bn())),
    "bconv_dilation2": ((10, 10, 32), lambda: chain(qconv(8, dilation_rate=2), bn())),
    "bconv_1x1_no_bn": ((4, 4, 96), lambda: chain(qconv(40, k=1))),
    # no batch norm: multiplier 1, bias 0, so LCE fuses the activation into the bconv
    "bconv_fused_relu": ((6, 6, 32), lambda: chain(qconv(32, padding="same", pad_values=1.0), K.layers.ReLU())),
    "bconv_fused_relu6": ((6, 6, 32), lambda: chain(qconv(32), K.layers.ReLU(6.0))),
    # bit-packed output: a binary layer feeding another (output_threshold), and a binary max pool
    "bconv_bitpacked_chain": ((8, 8, 32), lambda: chain(qconv(64, padding="same", pad_values=1.0), bn(),
                                                        qconv(32, padding="same", pad_values=1.0), bn())),
    "bconv_bitpacked_40": ((6, 6, 48), lambda: chain(qconv(40, padding="same", pad_values=1.0), bn(),
                                                     qconv(8), bn())),
    "bmaxpool": ((8, 8, 32), lambda: chain(qconv(64, padding="same", pad_values=1.0), bn(),
                                           K.layers.MaxPool2D(2), qconv(16), bn())),
    # a mixed network: float first and last layers, binary in the middle
    "mixed_net": ((16, 16, 3), lambda: chain(
        K.layers.Conv2D(32, 3, padding="same"), bn(),
        qconv(64, padding="same", pad_values=1.0), bn(), K.layers.MaxPool2D(2),
        qconv(64, padding="same", pad_values=1.0), bn(),
        qconv(64, strides=2, padding="same", pad_values=1.0), bn(),
        K.layers.GlobalAveragePooling2D(), K.layers.Dense(10), K.layers.Softmax())),
}

def fake_quant(lo, hi):
    return K.layers.Lambda(lambda x: tf.quantization.fake_quant_with_min_max_args(x, lo, hi))


CASES["bconv_int8_output"] = ((6, 6, 32), lambda: chain(qconv(24, padding="same", pad_values=1.0), bn(),
                                                        fake_quant(-8.0, 8.0)))

# int8 variants: the same layers with int8 inputs and outputs (experimental_default_int8_range
# gives every tensor without a recorded range this range)
INT8_CASES = ("bconv_same_one_padding", "bconv_channels_40_to_36", "bconv_bitpacked_chain", "mixed_net",
              "bconv_int8_output")


# Models edgert refuses with a named error (no expected outputs): tests/fixtures/lce/unsupported/
UNSUPPORTED = {
    "bconv_groups2": ((6, 6, 64), lambda: chain(qconv(32, groups=2), bn())),
}


# Benchmark pairs (benchmarks/models/): one layer shape as a binary convolution (LCE) and as
# the int8 convolution TFLite's converter makes of the same float layer.
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "models"
BENCH_SHAPE, BENCH_FILTERS = (16, 16, 64), 64


def write_bench_models() -> None:
    BENCH.mkdir(parents=True, exist_ok=True)
    b = model("bconv_16x16x64", BENCH_SHAPE, chain(qconv(BENCH_FILTERS, padding="same", pad_values=1.0), bn()), 7)
    (BENCH / "bconv_16x16x64_3x3x64.tflite").write_bytes(lce.convert_keras_model(b))
    f = model("conv_16x16x64", BENCH_SHAPE, chain(K.layers.Conv2D(BENCH_FILTERS, 3, padding="same")), 7)
    conv = tf.lite.TFLiteConverter.from_keras_model(f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(7)
    conv.representative_dataset = lambda: ([rng.normal(0, 1, (1, *BENCH_SHAPE)).astype(np.float32)] for _ in range(32))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    (BENCH / "conv_int8_16x16x64_3x3x64.tflite").write_bytes(conv.convert())
    print("benchmarks/models: bconv_16x16x64_3x3x64, conv_int8_16x16x64_3x3x64")


def write_case(name, shape, body, seed, int8=False) -> None:
    m = model(name, shape, body(), seed)
    kw = {}
    if int8:
        kw = dict(inference_input_type=tf.int8, inference_output_type=tf.int8,
                  experimental_default_int8_range=(-3.0, 3.0))
    flat = lce.convert_keras_model(m, **kw)
    rng = np.random.default_rng(seed + 1000)
    ref = Interpreter(flat, use_reference_bconv=True)
    opt = Interpreter(flat)
    in_dtype = ref.input_types[0]
    xs = []
    for _ in range(SAMPLES):
        if in_dtype == np.int8:
            xs.append(rng.integers(-128, 128, (1, *shape), dtype=np.int8))
        else:
            xs.append(rng.normal(0, 1, (1, *shape)).astype(np.float32))
    x = np.concatenate(xs)
    y_ref = np.concatenate([ref.predict(xi[None]) for xi in x])
    y_opt = np.concatenate([opt.predict(xi[None]) for xi in x])
    if not np.array_equal(y_ref, y_opt):
        diff = np.max(np.abs(y_ref.astype(np.float64) - y_opt.astype(np.float64)))
        print(f"  note: {name}: LCE reference and optimized kernels differ by up to {diff}")
    stem = name + ("_int8" if int8 else "")
    (OUT / f"{stem}.tflite").write_bytes(flat)
    np.savez(OUT / f"{stem}.npz", x=x, y=y_ref, y_optimized=y_opt)
    print(f"{stem}: {x.dtype}{list(x.shape)} -> {y_ref.dtype}{list(y_ref.shape)}")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for i, (name, (shape, body)) in enumerate(CASES.items()):
        write_case(name, shape, body, seed=i)
        if name in INT8_CASES:
            write_case(name, shape, body, seed=i, int8=True)
    (OUT / "unsupported").mkdir(exist_ok=True)
    for name, (shape, body) in UNSUPPORTED.items():
        (OUT / "unsupported" / f"{name}.tflite").write_bytes(lce.convert_keras_model(model(name, shape, body(), 0)))
        print(f"unsupported/{name}")
    write_bench_models()
    return 0


if __name__ == "__main__":
    sys.exit(main())
