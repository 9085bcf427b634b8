"""Train a small binary neural network on scikit-learn's bundled digits (8x8 images, no
download, CPU, seconds), export it to ONNX, and write the test split for `edgert validate`.

    python examples/train_bnn.py --estimator reste -o build/bnn
    edgert build build/bnn/digits_bnn.onnx --target cortex-m7 -o build/bnn/m7
    edgert flash build/bnn/m7
    edgert validate build/bnn/m7 --dataset build/bnn/digits_test.npz

The network: a float dense layer (64 -> 128), then two binary dense layers (128 -> 128,
128 -> 10) whose weights and inputs are signs (+-1), each with a per-channel scale and bias:

    h = x W1 + b1 ;  y2 = (sign(h) . sign(W2)) * a2 + c2 ;  logits = (sign(y2) . sign(W3)) * a3 + c3

Binarisation needs a gradient estimator for sign(), which has none; two published ones:

* ReSTE (Wu et al., "Estimator Meets Equilibrium Perspective: A Rectified Straight Through
  Estimator for Binary Neural Networks Training", ICCV 2023): backward as the derivative of
  the power function sign(x)|x|^(1/o), rectified: capped at m and zero for |x| > t. Weights
  use the straight-through estimator with clipping to [-1, 1]. (o, m, t: our settings below.)
* BiPer (Vargas et al., "BiPer: Binary Neural Networks using a Periodic Function", CVPR
  2024): weights binarised by a square wave, sign(sin(w0 w)), with the sine's derivative
  w0 cos(w0 w) as the backward surrogate; activations use the clipped straight-through
  estimator.

The ONNX graph spells binary layers the way PyTorch exports them: Sign on the activations,
MatMul with +-1 weights (ReSTE: Sign of the latent weights; BiPer: the binarised weights),
Mul by the scale, Add of the bias. edgert recognises that pattern (edgert.passes.binarize)
and compiles it to XOR-popcount kernels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HIDDEN = 128
RESTE_O, RESTE_M, RESTE_T = 3.0, 3.0, 1.5   # power 1/o, gradient cap m, window |x| <= t
BIPER_W0 = 3.0                              # square-wave frequency of BiPer's weights


def sign(x: np.ndarray) -> np.ndarray:
    """Forward binarisation: x >= 0 -> +1, else -1 (0 counts as +1, as on the device)."""
    return np.where(x >= 0, np.float32(1), np.float32(-1))


class Estimator:
    """Forward binarisation of weights and activations and their backward surrogates."""

    def __init__(self, name: str):
        self.name = name

    def weights(self, w):
        return sign(np.sin(BIPER_W0 * w)) if self.name == "biper" else sign(w)

    def weights_grad(self, w):
        if self.name == "biper":
            return BIPER_W0 * np.cos(BIPER_W0 * w)
        return (np.abs(w) <= 1).astype(np.float32)          # clipped straight-through

    def act_grad(self, x):
        if self.name == "reste":
            ax = np.maximum(np.abs(x), 1e-6)
            g = np.minimum((1.0 / RESTE_O) * ax ** (1.0 / RESTE_O - 1.0), RESTE_M)
            return (g * (ax <= RESTE_T)).astype(np.float32)
        return (np.abs(x) <= 1).astype(np.float32)          # clipped straight-through


def init(rng) -> dict:
    def u(shape, lim):
        return rng.uniform(-lim, lim, shape).astype(np.float32)

    return {
        "W1": u((64, HIDDEN), 1 / 8), "b1": np.zeros(HIDDEN, np.float32),
        "W2": u((HIDDEN, HIDDEN), 0.5), "a2": np.full(HIDDEN, 1 / np.sqrt(HIDDEN), np.float32),
        "c2": np.zeros(HIDDEN, np.float32),
        "W3": u((HIDDEN, 10), 0.5), "a3": np.full(10, 1 / np.sqrt(HIDDEN), np.float32),
        "c3": np.zeros(10, np.float32),
    }


def forward(p: dict, est: Estimator, x: np.ndarray):
    h = x @ p["W1"] + p["b1"]
    s1 = sign(h)
    B2 = est.weights(p["W2"])
    z2 = s1 @ B2
    y2 = z2 * p["a2"] + p["c2"]
    s2 = sign(y2)
    B3 = est.weights(p["W3"])
    z3 = s2 @ B3
    logits = z3 * p["a3"] + p["c3"]
    return logits, (h, s1, B2, z2, y2, s2, B3, z3)


def backward(p: dict, est: Estimator, x, labels, cache) -> dict:
    h, s1, B2, z2, y2, s2, B3, z3 = cache
    logits = z3 * p["a3"] + p["c3"]
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    d = prob
    d[np.arange(len(labels)), labels] -= 1
    d /= len(labels)
    g = {"a3": (z3 * d).sum(0), "c3": d.sum(0)}
    dz3 = d * p["a3"]
    g["W3"] = (s2.T @ dz3) * est.weights_grad(p["W3"])
    dy2 = (dz3 @ B3.T) * est.act_grad(y2)
    g["a2"], g["c2"] = (z2 * dy2).sum(0), dy2.sum(0)
    dz2 = dy2 * p["a2"]
    g["W2"] = (s1.T @ dz2) * est.weights_grad(p["W2"])
    dh = (dz2 @ B2.T) * est.act_grad(h)
    g["W1"], g["b1"] = x.T @ dh, dh.sum(0)
    return g


def train(x, labels, est: Estimator, *, epochs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    lr, b1, b2, t = 3e-3, 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            _, cache = forward(p, est, x[idx])
            g = backward(p, est, x[idx], labels[idx], cache)
            t += 1
            for k in p:  # Adam
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                p[k] -= (lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + 1e-8)).astype(np.float32)
            if est.name == "reste":  # latent weights stay in [-1, 1] (as Larq's weight_clip)
                for k in ("W2", "W3"):
                    np.clip(p[k], -1, 1, out=p[k])
    return p


def accuracy(p, est, x, labels) -> float:
    logits, _ = forward(p, est, x)
    return float((logits.argmax(1) == labels).mean())


def export_onnx(p: dict, est: Estimator, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value):
        return numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name)

    inits = [const("W1", p["W1"]), const("b1", p["b1"]), const("a2", p["a2"]), const("c2", p["c2"]),
             const("a3", p["a3"]), const("c3", p["c3"])]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h"]),
             helper.make_node("Sign", ["h"], ["s1"])]
    for layer, src, out in (("2", "s1", "y2"), ("3", "s2", "logits")):
        w = p["W" + layer]
        if est.name == "reste":  # Sign of the latent weights, as a PyTorch export would have it
            latent = np.where(w == 0, np.float32(1e-7), w)  # ONNX Sign(0) is 0: keep no exact zero
            inits.append(const("W" + layer, latent))
            nodes.append(helper.make_node("Sign", ["W" + layer], ["B" + layer]))
        else:                    # the binarised weights themselves
            inits.append(const("B" + layer, est.weights(w)))
        nodes += [helper.make_node("MatMul", [src, "B" + layer], ["z" + layer]),
                  helper.make_node("Mul", ["z" + layer, "a" + layer], ["m" + layer]),
                  helper.make_node("Add", ["m" + layer, "c" + layer], [out])]
        if layer == "2":
            nodes.append(helper.make_node("Sign", ["y2"], ["s2"]))
    # The logits are the output: the class is their argmax (a softmax would not change it).
    graph = helper.make_graph(nodes, "digits_bnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgert-examples")
    onnx.checker.check_model(model)
    onnx.save(model, path)


def onnxruntime_accuracy(path: Path, x, labels) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    pred = [int(np.argmax(sess.run(None, {"x": xi[None]})[0])) for xi in x]
    return float((np.array(pred) == labels).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--estimator", choices=["reste", "biper"], default="reste")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", default="build/bnn", help="folder for digits_bnn.onnx and digits_test.npz")
    args = ap.parse_args(argv)

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, random_state=args.seed,
                                                        stratify=digits.target)
    est = Estimator(args.estimator)
    p = train(x_train, y_train, est, epochs=args.epochs, seed=args.seed)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "digits_bnn.onnx"
    export_onnx(p, est, model_path)
    np.savez(out / "digits_test.npz", x=x_test[:, None, :].astype(np.float32), y=y_test.astype(np.int64))
    print(f"{args.estimator}: train accuracy {accuracy(p, est, x_train, y_train):.1%}, "
          f"test accuracy {accuracy(p, est, x_test, y_test):.1%} ({len(y_test)} images)")
    ort_acc = onnxruntime_accuracy(model_path, x_test, y_test)
    if ort_acc is not None:
        print(f"onnxruntime on the exported model: test accuracy {ort_acc:.1%}")
    print(f"wrote {model_path} and {out / 'digits_test.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
