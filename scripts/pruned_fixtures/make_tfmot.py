"""Write the tensorflow-model-optimization fixtures of tests/fixtures/pruned/: a small Keras CNN
for the 8x8 digits, trained, pruned by tfmot's prune_low_magnitude (ConstantSparsity 0.5, 0.75,
0.9, and 2:4), stripped, and converted by the TFLite converter to full-integer int8.

It needs TensorFlow, tf_keras and tensorflow-model-optimization, which edgert does not: run it
in the side environment made by scripts/pruned_fixtures/env.sh:

    scripts/pruned_fixtures/env.sh tfmot
    ~/.cache/edgert-fixture-envs/tfmot/bin/python scripts/pruned_fixtures/make_tfmot.py

Also writes tests/fixtures/pruned/digits_test.npz (if changed) and the tfmot section of
tests/fixtures/pruned/PROVENANCE.md.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot builds on tf.keras 2 (tf_keras)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
warnings.filterwarnings("ignore")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras  # noqa: E402

import common  # noqa: E402

K = tf.keras
SPARSITIES = {"sparse50": 0.5, "sparse75": 0.75, "sparse90": 0.9}
EPOCHS, FINETUNE_EPOCHS, BATCH = 30, 12, 32
REPRESENTATIVE = 300          # training images for the converter's calibration
PRUNE_FREQUENCY = 10          # ConstantSparsity: recompute the masks every 10 steps
# also converted with Optimize.EXPERIMENTAL_SPARSITY (sparse weight format + DENSIFY ops), as
# tfmot's guide to sparse on-device inference does: tfmot_digits_<name>_int8_encoded.tflite
ENCODED = ("sparse90",)


def seed(s: int = common.SEED) -> None:
    K.utils.set_random_seed(s)


def build() -> K.Model:
    return K.Sequential([
        K.Input((8, 8, 1)),
        K.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        K.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2"),
        K.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3"),
        K.layers.Flatten(name="flatten"),
        K.layers.Dense(64, activation="relu", name="fc1"),
        K.layers.Dense(10, name="fc2"),
    ], name="digits_cnn")


def compile_(m: K.Model, lr: float) -> None:
    m.compile(optimizer=K.optimizers.Adam(lr),
              loss=K.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def train_dense(x, y) -> K.Model:
    seed()
    m = build()
    compile_(m, 1e-3)
    m.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)
    return m


def prune(dense: K.Model, x, y, **prune_kw) -> K.Model:
    """prune_low_magnitude over the whole model (every Conv2D and Dense), fine-tuned with the
    UpdatePruningStep callback, then strip_pruning."""
    seed(1)
    m = K.models.clone_model(dense)
    m.set_weights(dense.get_weights())
    pm = tfmot.sparsity.keras.prune_low_magnitude(m, **prune_kw)
    compile_(pm, 5e-4)
    pm.fit(x, y, batch_size=BATCH, epochs=FINETUNE_EPOCHS, shuffle=True, verbose=0,
           callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pm)
    compile_(stripped, 5e-4)  # for evaluate() only
    return stripped


def to_int8(m: K.Model, x_train, sparse_encoding: bool = False) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if sparse_encoding:  # store sparse weights in TFLite's sparse format, each behind a DENSIFY op
        conv.optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    rep = x_train[:REPRESENTATIVE]
    conv.representative_dataset = lambda: ([rep[i:i + 1]] for i in range(len(rep)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


RESOLVERS = {  # TFLite interpreter kernels: its default (XNNPACK delegate) and the reference ones
    "default": tf.lite.experimental.OpResolverType.AUTO,
    "reference": tf.lite.experimental.OpResolverType.BUILTIN_REF,
}


def interpreter(flat: bytes, kernels: str = "reference", **kw):
    return tf.lite.Interpreter(model_content=flat, experimental_op_resolver_type=RESOLVERS[kernels], **kw)


def tflite_accuracy(flat: bytes, x, y, kernels: str) -> float:
    it = interpreter(flat, kernels)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    s, z = inp["quantization"]
    hits = 0
    for xi, yi in zip(x, y):
        q = np.clip(np.round(xi / s) + z, -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], q[None])
        it.invoke()
        hits += int(np.argmax(it.get_tensor(out["index"])[0]) == yi)
    return hits / len(y)


def weight_stats(flat: bytes) -> list[dict]:
    """Per CONV_2D / FULLY_CONNECTED op of the file: its int8 weight tensor's zero fraction,
    the number of output channels whose weights are all zero, and whether every group of 4
    along the input-channel axis has at least 2 zeros (2:4)."""
    # one invocation, keeping every tensor, so that the output of a DENSIFY op can be read
    it = interpreter(flat, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    it.invoke()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = it._get_ops_details()
    producer = {o: op for op in ops for o in op["outputs"]}
    rows = []
    for op in ops:
        if op["op_name"] not in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
            continue
        t = tensors[op["inputs"][1]]
        w = it.get_tensor(t["index"])
        stored, name = "dense", t["name"]
        src = producer.get(op["inputs"][1])
        if src is not None and src["op_name"] == "DENSIFY":
            values = it.get_tensor(src["inputs"][0])
            stored, name = f"sparse format ({values.size} values) + DENSIFY", tensors[src["inputs"][0]]["name"]
        per_out = w.reshape(w.shape[0], -1)          # TFLite: [O, H, W, I] and [O, I]
        dead_mask = np.all(per_out == 0, axis=1)
        dead = int(dead_mask.sum())
        scales = np.asarray(t["quantization_parameters"]["scales"])
        dead_scales = ", ".join(sorted({f"{v:g}" for v in scales[dead_mask]})) if dead and len(scales) > 1 else ""
        inner = w.shape[-1]
        two4 = ""
        if inner % 4 == 0:
            g = (w.reshape(-1, inner // 4, 4) == 0).sum(-1)
            two4 = "yes" if np.all(g >= 2) else "no"
        rows.append(dict(op=op["op_name"], tensor=name, stored=stored, shape=list(w.shape), dtype=str(w.dtype),
                         zero=float(np.mean(w == 0)), dead=dead, channels=w.shape[0], two4=two4,
                         scales=len(scales), dead_scales=dead_scales))
    return rows


def main() -> int:
    tf.config.experimental.enable_op_determinism()
    x_train, x_test, y_train, y_test = common.digits()
    common.write_test_npz(x_test, y_test)

    dense = train_dense(x_train, y_train)
    float_acc = {"dense": float(dense.evaluate(x_test, y_test, verbose=0)[1])}
    models = {"dense": dense}
    for name, s in SPARSITIES.items():
        sched = tfmot.sparsity.keras.ConstantSparsity(s, begin_step=0, frequency=PRUNE_FREQUENCY)
        models[name] = prune(dense, x_train, y_train, pruning_schedule=sched)
    notes = []
    try:
        models["2by4"] = prune(dense, x_train, y_train, sparsity_m_by_n=(2, 4))
    except Exception as e:  # noqa: BLE001 - report, and still write the other fixtures
        notes.append(f"2:4 pruning failed: {type(e).__name__}: {e}")
        print("2by4:", notes[-1])

    rows, layer_rows, op_lists = [], [], {}
    variants = [(name, m, False) for name, m in models.items()] + [
        (f"{name}_int8_encoded", models[name], True) for name in ENCODED]
    for name, m, encoded in variants:
        if name not in float_acc:
            float_acc[name] = float(m.evaluate(x_test, y_test, verbose=0)[1])
        flat = to_int8(m, x_train, sparse_encoding=encoded)
        path = common.OUT / (f"tfmot_digits_{name}.tflite" if encoded else f"tfmot_digits_{name}_int8.tflite")
        path.write_bytes(flat)
        common.check_size(path)
        acc = tflite_accuracy(flat, x_test, y_test, "default")
        acc_ref = tflite_accuracy(flat, x_test, y_test, "reference")
        stats = weight_stats(flat)
        it = interpreter(flat)
        it.allocate_tensors()
        op_lists.setdefault(", ".join(o["op_name"] for o in it._get_ops_details()), []).append(path.name)
        rows.append([f"`{path.name}`", path.stat().st_size, f"`{common.md5(path)}`",
                     f"{float_acc[name]:.4f}", f"{acc:.4f}", f"{acc_ref:.4f}"])
        for st in stats:
            layer_rows.append([f"`{path.name}`", st["op"], f"`{st['tensor']}`", st["stored"], st["shape"], st["dtype"],
                               f"{st['zero']:.4f}", f"{st['dead']}/{st['channels']}", st["scales"],
                               st["two4"] or "n/a", st["dead_scales"] or "-"])
        print(f"{path.name}: {path.stat().st_size} B, float acc {float_acc[name]:.4f}, int8 acc {acc:.4f} (reference kernels {acc_ref:.4f}), "
              "zeros " + ", ".join(f"{st['zero']:.3f}" for st in stats))

    versions = common.md_table(["package", "version"], [
        ["python", common.python_version()], ["tensorflow", tf.__version__], ["tf_keras", tf_keras.__version__],
        ["tensorflow-model-optimization", tfmot.__version__], ["numpy", np.__version__],
        ["scikit-learn", __import__("sklearn").__version__]])
    body = f"""## tfmot (TensorFlow Lite, int8)

Made by `scripts/pruned_fixtures/make_tfmot.py` (`TF_USE_LEGACY_KERAS=1`, so `tf.keras` is
tf_keras, Keras 2, which tfmot needs):

    scripts/pruned_fixtures/env.sh tfmot
    ~/.cache/edgert-fixture-envs/tfmot/bin/python scripts/pruned_fixtures/make_tfmot.py

{versions}

Model (NHWC input [1, 8, 8, 1]): Conv2D 16 3x3 same relu, Conv2D 32 3x3 stride 2 same relu,
Conv2D 32 3x3 same relu, Flatten, Dense 64 relu, Dense 10. Trained {EPOCHS} epochs (Adam 1e-3,
batch {BATCH}). Each pruned model: `prune_low_magnitude` on the whole model,
`ConstantSparsity(s, begin_step=0, frequency={PRUNE_FREQUENCY})` (or `sparsity_m_by_n=(2, 4)`),
fine-tuned {FINETUNE_EPOCHS} epochs (Adam 5e-4) with `UpdatePruningStep`, then `strip_pruning`.
Conversion: `TFLiteConverter.from_keras_model`, `optimizations=[Optimize.DEFAULT]`,
representative dataset of the first {REPRESENTATIVE} training images,
`supported_ops=[TFLITE_BUILTINS_INT8]`, int8 input and output; the weights are stored dense,
except in `*_int8_encoded.tflite`, converted with
`optimizations=[Optimize.DEFAULT, Optimize.EXPERIMENTAL_SPARSITY]` as well: the converter stores
the sparse int8 weights in TFLite's sparse tensor format (`SparsityParameters`: identity
traversal order, no block map, the outer dimensions DENSE and the last, input-channel, one
SPARSE_CSR, so only the nonzero values are stored) and puts a DENSIFY op in front of each
layer. Ops, in order:
{"; ".join(f"{ops} ({', '.join(files) if len(op_lists) > 1 else 'every file'})" for ops, files in op_lists.items())}.
Accuracy: `tf.lite.Interpreter` as it comes (XNNPACK delegate) and with
`experimental_op_resolver_type=OpResolverType.BUILTIN_REF` (TFLite's reference kernels); the
input is quantized with the file's input scale and zero point, the class is the argmax of the
int8 output.

{common.md_table(["file", "bytes", "md5", "float accuracy (Keras)", "int8 accuracy (TFLite interpreter)",
                   "int8 accuracy (TFLite reference kernels)"], rows)}

Per-layer int8 weights (as stored in each file; "scales" is the number of quantization scales:
one per output channel for per-channel weights; "2:4" tells whether every group of 4 along the
input-channel axis holds at least 2 zeros; "dead scale" is the per-channel weight scale the
converter gave the all-zero output channels):

{common.md_table(["file", "op", "weight tensor", "stored as", "shape", "dtype", "zero fraction", "dead channels", "scales", "2:4",
                           "dead scale"],
          layer_rows)}
"""
    if "2by4" in models:
        notes.append("`tfmot_digits_2by4_int8.tflite`: conv1 has a single input channel. tfmot's m-by-n mask "
                     "pads the input-channel axis with zeros to a multiple of 4 and those padded zeros take the 2 "
                     "pruned places of every group, so conv1 is left dense, without an error or a warning.")
    notes.append("The converter gives an all-zero output channel a tiny per-channel weight scale (the "
                 "\"dead scale\" column), not 0 or 1.")
    if notes:
        body += "\nNotes:\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    common.update_provenance("tfmot", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
