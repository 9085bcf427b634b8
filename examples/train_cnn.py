"""Train a small CNN on scikit-learn's bundled digits (8x8 images, no download, CPU, seconds),
prune it, and export the dense and pruned models to ONNX with the test split for `edgert validate`.

    python examples/train_cnn.py -o build/cnn                      # dense + all six pruned models
    python examples/train_cnn.py --prune unstructured --sparsity 0.75 -o build/cnn
    python examples/train_cnn.py --prune structured --sparsity 0.5 -o build/cnn
    edgert quantize build/cnn/digits_cnn_u75.onnx --calib build/cnn/digits_train.npz -o build/cnn/q_u75.onnx
    edgert build build/cnn/q_u75.onnx --target cortex-m7 -o build/cnn/m7
    edgert flash build/cnn/m7
    edgert validate build/cnn/m7 --dataset build/cnn/digits_test.npz

examples/digits_cnn.sh runs all of it for every variant, and benches the pruned builds.

The network (float32, NCHW; plain numpy: im2col convolutions, softmax cross-entropy, Adam):

    conv1  Conv 1 -> 16, 3x3, pad 1            + ReLU    [1, 16, 8, 8]
    conv2  Conv 16 -> 32, 3x3, stride 2, pad 1 + ReLU    [1, 32, 4, 4]
    conv3  Conv 32 -> 32, 3x3, pad 1           + ReLU    [1, 32, 4, 4]
    Flatten (NCHW order)                                  [1, 512]
    fc1    Gemm 512 -> 64                      + ReLU    [1, 64]
    fc2    Gemm 64 -> 10                                  [1, 10]  the logits (no Softmax)

Pruning starts from the trained dense model, zeroes weights, then fine-tunes (10 epochs, Adam
at a higher learning rate than the dense run's) with the mask held fixed, so pruned weights
stay exactly 0.0:

* unstructured, sparsity S: in every Conv and Gemm weight tensor separately, the round(S * size)
  weights of smallest |w| become 0 (torch.nn.utils.prune.l1_unstructured per layer); biases
  are kept.
* structured, sparsity S: in every Conv and in fc1, the round(S * channels) output channels
  (units) of smallest L2 norm lose all their weights and their bias
  (torch.nn.utils.prune.ln_structured(n=2, dim=0), plus the bias of the removed channels).
  fc2, the logits, is never pruned.

Without --prune (or with --all) one run writes the dense model and all six pruned variants,
reusing the one trained dense model; with --prune it writes the dense model and that variant;
--prune none writes the dense model only. Files in the output folder:

    digits_cnn.onnx                                   the dense model
    digits_cnn_u50/u75/u90.onnx                       unstructured, 50/75/90 % sparsity
    digits_cnn_s50/s75/s90.onnx                       structured, 50/75/90 % of the channels
    digits_train.npz, digits_test.npz                 x float32 [N, 1, 8, 8] in [0, 1], y int64
    accuracy.json                                     test accuracy and per-layer sparsity

The split is train_bnn.py's: 80/20, stratified, random_state = --seed (pixels 0..16 / 16).
Every exported model is checked with onnxruntime (when installed) against the numpy forward
pass on the whole test set: logits within 1e-4, the same accuracy.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

# (name, kind, output channels, stride); convolutions are 3x3 with padding 1.
LAYERS = (("conv1", "conv", 16, 1), ("conv2", "conv", 32, 2), ("conv3", "conv", 32, 1),
          ("fc1", "gemm", 64, None), ("fc2", "gemm", 10, None))
STRUCTURED = ("conv1", "conv2", "conv3", "fc1")      # layers whose output channels may go
SPARSITIES = (0.5, 0.75, 0.9)
KERNEL, PAD = 3, 1


# ---------------------------------------------------------------------------------- data

def load_split(seed: int = 0):
    """The digits split shared with train_bnn.py: 80 % train, 20 % test, stratified.

    Returns (x_train, y_train, x_test, y_test); x float32 [N, 1, 8, 8] scaled to [0, 1],
    y int64 class labels 0..9.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, random_state=seed,
                                                        stratify=digits.target)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


# ------------------------------------------------------------------------------- network

def init(rng: np.random.Generator) -> dict:
    """He-initialised parameters, named and shaped as PyTorch's Conv2d / Linear would be:
    'conv1.weight' [16, 1, 3, 3], 'conv1.bias' [16], ..., 'fc1.weight' [64, 512], ..."""
    p, c, hw = {}, 1, 8
    for name, kind, out, stride in LAYERS:
        if kind == "conv":
            fan_in, shape = c * KERNEL * KERNEL, (out, c, KERNEL, KERNEL)
            hw = (hw + 2 * PAD - KERNEL) // stride + 1
        else:
            fan_in = c * hw * hw
            shape, hw = (out, fan_in), 1
        p[name + ".weight"] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        p[name + ".bias"] = np.zeros(out, np.float32)
        c = out
    return p


def _im2col(x: np.ndarray, stride: int) -> np.ndarray:
    """[N, C, H, W] -> patches [N * OH * OW, C * 3 * 3] (the row order of a Conv weight)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * PAD - KERNEL) // stride + 1, (w + 2 * PAD - KERNEL) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
    cols = np.empty((n, oh, ow, c, KERNEL, KERNEL), np.float32)
    for i in range(KERNEL):
        for j in range(KERNEL):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, c * KERNEL * KERNEL)


def _col2im(dcols: np.ndarray, shape: tuple, stride: int) -> np.ndarray:
    """The adjoint of _im2col: scatter-add patch gradients back to [N, C, H, W]."""
    n, c, h, w = shape
    oh, ow = (h + 2 * PAD - KERNEL) // stride + 1, (w + 2 * PAD - KERNEL) // stride + 1
    d = dcols.reshape(n, oh, ow, c, KERNEL, KERNEL)
    dxp = np.zeros((n, c, h + 2 * PAD, w + 2 * PAD), np.float32)
    for i in range(KERNEL):
        for j in range(KERNEL):
            dxp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, PAD:PAD + h, PAD:PAD + w]


def forward(p: dict, x: np.ndarray, cache: bool = False):
    """Logits [N, 10] for x [N, 1, 8, 8]; with cache=True also what backward() needs."""
    saved, a = [], x.astype(np.float32, copy=False)
    for name, kind, out, stride in LAYERS:
        w, b = p[name + ".weight"], p[name + ".bias"]
        if kind == "conv":
            n, _, h, wd = a.shape
            oh, ow = (h + 2 * PAD - KERNEL) // stride + 1, (wd + 2 * PAD - KERNEL) // stride + 1
            cols = _im2col(a, stride)
            z = (cols @ w.reshape(out, -1).T + b).reshape(n, oh, ow, out).transpose(0, 3, 1, 2)
            saved.append((cols, a.shape))
        else:
            a = a.reshape(len(a), -1)                     # Flatten, NCHW order
            z = a @ w.T + b
            saved.append((a, a.shape))
        a = np.maximum(z, 0) if name != LAYERS[-1][0] else z
        saved[-1] += (z,)
    return (a, saved) if cache else a


def backward(p: dict, labels: np.ndarray, logits: np.ndarray, saved: list) -> tuple[float, dict]:
    """Mean softmax cross-entropy of the logits and its gradient for every parameter."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    rows = np.arange(len(labels))
    loss = float(-np.log(prob[rows, labels] + 1e-12).mean())
    d = prob
    d[rows, labels] -= 1
    d /= len(labels)                                      # dL/dlogits
    g = {}
    for k in range(len(LAYERS) - 1, -1, -1):
        name, kind, out, stride = LAYERS[k]
        inp, shape, z = saved[k]
        if k < len(LAYERS) - 1:
            d = d * (z > 0)                               # ReLU
        w = p[name + ".weight"]
        if kind == "conv":
            d2 = d.transpose(0, 2, 3, 1).reshape(-1, out)
            g[name + ".weight"] = (d2.T @ inp).reshape(w.shape)
            g[name + ".bias"] = d2.sum(0)
            if k > 0:
                d = _col2im(d2 @ w.reshape(out, -1), shape, stride)
        else:
            g[name + ".weight"] = d.T @ inp
            g[name + ".bias"] = d.sum(0)
            d = d @ w
            if LAYERS[k - 1][1] == "conv":
                d = d.reshape(saved[k - 1][2].shape)      # undo Flatten
    return loss, g


def _one_blas_thread():
    """Single-threaded BLAS while training: these matrices are small, and a multi-threaded
    OpenBLAS spends more time synchronising threads than multiplying (often 10x slower)."""
    try:
        from threadpoolctl import threadpool_limits      # installed with scikit-learn
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def train(x: np.ndarray, labels: np.ndarray, *, epochs: int = 15, seed: int = 0, params: dict | None = None,
          masks: dict | None = None, lr: float = 2e-3, batch: int = 32, verbose: bool = False) -> dict:
    """Mini-batch Adam on softmax cross-entropy; returns the trained parameters.

    params: start from these (copied) instead of a fresh He initialisation (fine-tuning).
    masks: {parameter name: 0/1 array}; masked entries are set to exactly 0.0 before training
    and after every step, and receive no gradient, so pruned weights stay pruned.
    The learning rate decays linearly to 10 % over the run.
    """
    with _one_blas_thread():
        return _train(x, labels, epochs, seed, params, masks or {}, lr, batch, verbose)


def _train(x, labels, epochs, seed, params, masks, lr, batch, verbose) -> dict:
    rng = np.random.default_rng(seed)
    p = init(rng) if params is None else {k: v.copy() for k, v in params.items()}
    for k, m in masks.items():
        p[k] = np.where(m, p[k], np.float32(0))
    m1 = {k: np.zeros_like(v) for k, v in p.items()}
    m2 = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, t = 0.9, 0.999, 0
    steps = epochs * -(-len(x) // batch)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            logits, saved = forward(p, x[idx], cache=True)
            loss, g = backward(p, labels[idx], logits, saved)
            total += loss * len(idx)
            t += 1
            step = lr * (1 - 0.9 * (t - 1) / max(steps - 1, 1)) * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            for k in p:
                if k in masks:
                    g[k] = g[k] * masks[k]
                m1[k] = b1 * m1[k] + (1 - b1) * g[k]
                m2[k] = b2 * m2[k] + (1 - b2) * g[k] * g[k]
                p[k] -= (step * m1[k] / (np.sqrt(m2[k]) + 1e-8)).astype(np.float32)
                if k in masks:
                    p[k] = np.where(masks[k], p[k], np.float32(0))
        if verbose:
            print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}")
    return p


def accuracy(p: dict, x: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of x whose argmax logit is the label (numpy forward pass)."""
    return float((forward(p, x).argmax(1) == labels).mean())


# ------------------------------------------------------------------------------- pruning

def _n_prune(sparsity: float, count: int) -> int:
    return int(round(sparsity * count))                   # as torch.nn.utils.prune counts


def make_masks(p: dict, mode: str, sparsity: float) -> dict:
    """0/1 masks {parameter name: array} for `mode` ('unstructured' or 'structured') at
    `sparsity` in [0, 1], per layer, from the magnitudes in p (see the module docstring)."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity {sparsity} is not in [0, 1]")
    masks = {}
    for name, kind, out, _ in LAYERS:
        w = p[name + ".weight"]
        if mode == "unstructured":
            mask = np.ones(w.size, np.float32)
            mask[np.argsort(np.abs(w).ravel(), kind="stable")[:_n_prune(sparsity, w.size)]] = 0
            masks[name + ".weight"] = mask.reshape(w.shape)
        elif mode == "structured":
            if name not in STRUCTURED:
                continue
            norms = np.sqrt((w.reshape(out, -1).astype(np.float64) ** 2).sum(1))
            keep = np.ones(out, np.float32)
            keep[np.argsort(norms, kind="stable")[:_n_prune(sparsity, out)]] = 0
            masks[name + ".weight"] = np.broadcast_to(keep.reshape((out,) + (1,) * (w.ndim - 1)), w.shape).copy()
            masks[name + ".bias"] = keep
        else:
            raise ValueError(f"unknown pruning mode {mode!r} (unstructured or structured)")
    return masks


def prune(params: dict, mode: str, sparsity: float, x: np.ndarray | None = None, labels: np.ndarray | None = None,
          *, epochs: int = 10, seed: int = 0, lr: float = 5e-3) -> dict:
    """A pruned copy of params: make_masks(params, mode, sparsity) applied (pruned entries
    exactly 0.0), then, when training data x, labels are given, fine-tuned for `epochs`
    epochs with the mask held fixed. params itself is left unchanged."""
    masks = make_masks(params, mode, sparsity)
    if x is None or epochs <= 0:
        return {k: np.where(masks[k], v, np.float32(0)) if k in masks else v.copy() for k, v in params.items()}
    return train(x, labels, epochs=epochs, seed=seed, params=params, masks=masks, lr=lr)


def sparsity(p: dict) -> dict:
    """Measured fraction of exactly-zero weights per layer (biases not counted)."""
    return {name: float((p[name + ".weight"] == 0).mean()) for name, *_ in LAYERS}


def channels_removed(p: dict) -> dict:
    """Per layer, how many output channels/units have all weights and bias zero."""
    out = {}
    for name, _, n, _ in LAYERS:
        w = p[name + ".weight"].reshape(n, -1)
        out[name] = int(((w == 0).all(1) & (p[name + ".bias"] == 0)).sum())
    return out


# -------------------------------------------------------------------------------- export

def export_onnx(params: dict, path) -> None:
    """Write the network as an opset-17 ONNX model: input 'input' float [1, 1, 8, 8], output
    'logits' float [1, 10]; Conv/Relu, Flatten, Gemm (transB=1, as PyTorch exports Linear);
    parameters as float32 initializers named as in params. Checked with onnx.checker."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ascontiguousarray(v, dtype=np.float32), k) for k, v in params.items()]
    nodes, src = [], "input"
    for k, (name, kind, _, stride) in enumerate(LAYERS):
        ins = [src, name + ".weight", name + ".bias"]
        if kind == "conv":
            nodes.append(helper.make_node("Conv", ins, [name + "_out"], name=name, kernel_shape=[KERNEL, KERNEL],
                                          pads=[PAD] * 4, strides=[stride, stride], dilations=[1, 1], group=1))
        else:
            if LAYERS[k - 1][1] == "conv":
                nodes.append(helper.make_node("Flatten", [src], ["flatten_out"], name="flatten", axis=1))
                ins[0] = "flatten_out"
            last = k == len(LAYERS) - 1
            nodes.append(helper.make_node("Gemm", ins, ["logits" if last else name + "_out"], name=name,
                                          alpha=1.0, beta=1.0, transB=1))
            if last:
                break
        nodes.append(helper.make_node("Relu", [name + "_out"], [name + "_relu"], name=name + "_relu"))
        src = name + "_relu"
    graph = helper.make_graph(nodes, "digits_cnn",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgert-examples")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def check_onnx(path, params: dict, x: np.ndarray, labels: np.ndarray, tol: float = 1e-4) -> float | None:
    """Run the exported model with onnxruntime on every sample of x (batch 1); raise if its
    logits differ from the numpy forward pass by more than tol or its accuracy differs.
    Returns onnxruntime's accuracy, or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(["logits"], {"input": xi[None]})[0] for xi in x])
    want = forward(params, x)
    err = float(np.abs(got - want).max())
    acc = float((got.argmax(1) == labels).mean())
    if err > tol or acc != accuracy(params, x, labels):
        raise RuntimeError(f"{path}: onnxruntime differs from the numpy model (max |diff| {err:.2e}, "
                           f"accuracy {acc:.4f} vs {accuracy(params, x, labels):.4f})")
    return acc


# ---------------------------------------------------------------------------------- main

def variant_name(mode: str, s: float) -> str:
    """'digits_cnn_u75' for unstructured 0.75, 'digits_cnn_s50' for structured 0.5."""
    return f"digits_cnn_{mode[0]}{int(round(s * 100))}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prune", choices=["none", "unstructured", "structured"],
                    help="one pruning mode (besides the dense model); without it: --all")
    ap.add_argument("--sparsity", type=float, default=0.75, help="fraction pruned per layer (with --prune)")
    ap.add_argument("--all", action="store_true", help="dense + unstructured and structured at 50/75/90 %% (default)")
    ap.add_argument("--epochs", type=int, default=15, help="dense training epochs")
    ap.add_argument("--finetune-epochs", type=int, default=10, help="fine-tuning epochs after pruning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true", help="print the loss every epoch")
    ap.add_argument("-o", "--output", default="build/cnn", help="folder for the .onnx, .npz and accuracy.json")
    args = ap.parse_args(argv)
    if args.all and args.prune:
        ap.error("--all and --prune exclude each other")
    if not 0.0 < args.sparsity < 1.0:
        ap.error("--sparsity must be between 0 and 1")
    if args.all or args.prune is None:
        variants = [(m, s) for m in ("unstructured", "structured") for s in SPARSITIES]
    else:
        variants = [] if args.prune == "none" else [(args.prune, args.sparsity)]

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_split(args.seed)
    np.savez(out / "digits_train.npz", x=x_train, y=y_train)
    np.savez(out / "digits_test.npz", x=x_test, y=y_test)

    t0 = time.perf_counter()
    dense = train(x_train, y_train, epochs=args.epochs, seed=args.seed, verbose=args.verbose)
    print(f"dense: trained {args.epochs} epochs in {time.perf_counter() - t0:.1f} s, "
          f"train accuracy {accuracy(dense, x_train, y_train):.1%}")
    models = [("digits_cnn", None, None, dense)]
    for mode, s in variants:
        t0 = time.perf_counter()
        p = prune(dense, mode, s, x_train, y_train, epochs=args.finetune_epochs, seed=args.seed)
        print(f"{variant_name(mode, s)}: pruned and fine-tuned in {time.perf_counter() - t0:.1f} s")
        models.append((variant_name(mode, s), mode, s, p))

    report, names = {}, [name for name, *_ in LAYERS]
    for stem, mode, s, p in models:
        path = out / f"{stem}.onnx"
        export_onnx(p, path)
        report[stem] = {"file": path.name, "prune": mode, "target_sparsity": s,
                        "test_accuracy": accuracy(p, x_test, y_test),
                        "onnxruntime_test_accuracy": check_onnx(path, p, x_test, y_test),
                        "sparsity": sparsity(p), "channels_removed": channels_removed(p),
                        "weights": int(sum(p[n + ".weight"].size for n in names)),
                        "nonzero_weights": int(sum(np.count_nonzero(p[n + ".weight"]) for n in names))}
    (out / "accuracy.json").write_text(json.dumps({"test_images": len(y_test), "models": report}, indent=2) + "\n")

    print(f"\n{'model':<16}" + "".join(f"{n:>7}" for n in names) + f"{'total':>7}{'test acc':>10}")
    for stem, r in report.items():
        total = 1 - r["nonzero_weights"] / r["weights"]
        print(f"{stem:<16}" + "".join(f"{r['sparsity'][n]:>7.0%}" for n in names) + f"{total:>7.0%}"
              f"{r['test_accuracy']:>10.1%}")
    print(f"(weight sparsity per layer; test accuracy on {len(y_test)} images, onnxruntime agrees)"
          if all(r["onnxruntime_test_accuracy"] is not None for r in report.values())
          else f"(weight sparsity per layer; test accuracy on {len(y_test)} images)")
    print(f"wrote {len(report)} model(s), digits_train.npz, digits_test.npz and accuracy.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
