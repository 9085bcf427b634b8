"""Write the PyTorch / onnxruntime fixtures of tests/fixtures/pruned/: the digits CNN in torch,
trained, pruned with torch.nn.utils.prune (l1_unstructured 0.5/0.75/0.9 per layer;
ln_structured n=2 dim=0 on the convolutions and the first Linear at 0.5 and 0.75, with the
pruned channels' biases zeroed), fine-tuned under the masks, prune.remove'd, exported with
torch.onnx.export (opset 17) and quantized by onnxruntime's quantize_static (QDQ, per-channel,
int8 activations and weights).

It needs torch, onnx, onnxscript and onnxruntime, which edgert does not: run it in the side
environment made by scripts/pruned_fixtures/env.sh:

    scripts/pruned_fixtures/env.sh torch
    ~/.cache/edgert-fixture-envs/torch/bin/python scripts/pruned_fixtures/make_torch.py

Also writes tests/fixtures/pruned/digits_test.npz (if changed) and the torch section of
tests/fixtures/pruned/PROVENANCE.md.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
warnings.filterwarnings("ignore")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.nn.utils.prune as prune  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,  # noqa: E402
                                      quantize_static)

import common  # noqa: E402

EPOCHS, FINETUNE_EPOCHS, BATCH = 30, 20, 32
LR, FINETUNE_LR = 1e-3, 5e-4
OPSET = 17
CALIBRATION = 100            # training images for quantize_static's calibration
# torch.onnx.export's default, the dynamo exporter (needs onnxscript). It builds an opset 18 graph
# and converts it down to 17 (onnx's version converter); Flatten comes out as Reshape.
# EDGERT_FIXTURE_DYNAMO=0 takes the older TorchScript-based exporter instead (Flatten stays).
DYNAMO = os.environ.get("EDGERT_FIXTURE_DYNAMO", "1") == "1"
UNSTRUCTURED = {"l1u50": 0.5, "l1u75": 0.75, "l1u90": 0.9}
STRUCTURED = {"ln50": 0.5, "ln75": 0.75}


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc1 = nn.Linear(512, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    def layers(self):
        return [("conv1", self.conv1), ("conv2", self.conv2), ("conv3", self.conv3),
                ("fc1", self.fc1), ("fc2", self.fc2)]


def seed(s: int = common.SEED) -> None:
    torch.manual_seed(s)
    np.random.seed(s)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, s: int) -> None:
    g = torch.Generator().manual_seed(s)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def copy(model: DigitsCNN) -> DigitsCNN:
    m = DigitsCNN()
    m.load_state_dict(model.state_dict())
    return m


def prune_unstructured(dense: DigitsCNN, amount: float, x, y) -> DigitsCNN:
    """l1_unstructured on every Conv2d and Linear weight, each at `amount` of its own weights."""
    m = copy(dense)
    for _, layer in m.layers():
        prune.l1_unstructured(layer, "weight", amount=amount)
    fit(m, x, y, FINETUNE_EPOCHS, FINETUNE_LR, s=1)
    for _, layer in m.layers():
        prune.remove(layer, "weight")
    return m


def prune_structured(dense: DigitsCNN, amount: float, x, y) -> DigitsCNN:
    """ln_structured(n=2, dim=0) (whole output channels, by L2 norm) on the three convolutions and
    fc1, and the same channels' bias entries masked to zero (custom_from_mask), so that a pruned
    channel outputs exactly zero; fc2 is left dense."""
    m = copy(dense)
    for name, layer in m.layers():
        if name == "fc2":
            continue
        prune.ln_structured(layer, "weight", amount=amount, n=2, dim=0)
        keep = layer.weight_mask.reshape(layer.weight_mask.shape[0], -1).amax(1)
        prune.custom_from_mask(layer, "bias", mask=keep)
    fit(m, x, y, FINETUNE_EPOCHS, FINETUNE_LR, s=1)
    for name, layer in m.layers():
        if name != "fc2":
            prune.remove(layer, "weight")
            prune.remove(layer, "bias")
    return m


def export(model: DigitsCNN, path: Path) -> None:
    model.eval()
    x = torch.zeros(1, 1, 8, 8)
    if DYNAMO:
        prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=OPSET, input_names=["input"],
                                 output_names=["logits"], external_data=False)
        prog.save(str(path), external_data=False)
    else:
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(path)))


class Calibration(CalibrationDataReader):
    def __init__(self, x: np.ndarray, input_name: str):
        self.items = iter([{input_name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


def quantize(float_path: Path, out_path: Path, x_cal: np.ndarray) -> None:
    name = onnx.load(str(float_path)).graph.input[0].name
    quantize_static(str(float_path), str(out_path), Calibration(x_cal, name),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def ort_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    hits = sum(int(np.argmax(sess.run(None, {name: x[i:i + 1]})[0][0]) == y[i]) for i in range(len(x)))
    return hits / len(y)


def weight_stats(path: Path) -> list[dict]:
    """Per Conv / Gemm / MatMul node: its weight as stored (the int8 initializer behind the
    DequantizeLinear in a QDQ file), zero fraction, dead output channels, bias zeros."""
    g = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}

    def stored(name):
        n = producer.get(name)
        if n is not None and n.op_type == "DequantizeLinear":
            return n.input[0], inits[n.input[0]], (inits.get(n.input[1]) if len(n.input) > 1 else None)
        return name, inits.get(name), None

    rows = []
    for n in g.node:
        if n.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        wname, w, scale = stored(n.input[1])
        if w is None:
            continue
        transposed = n.op_type == "MatMul" or (n.op_type == "Gemm" and not any(
            a.name == "transB" and a.i == 1 for a in n.attribute))
        per_out = (w.T if transposed else w).reshape(w.shape[1] if transposed else w.shape[0], -1)
        dead = np.all(per_out == 0, axis=1)
        bname, b, _ = stored(n.input[2]) if len(n.input) > 2 and n.input[2] else (None, None, None)
        dead_scales = ""
        if scale is not None and dead.any() and np.ndim(scale) == 1:
            dead_scales = ", ".join(sorted({f"{v:g}" for v in np.asarray(scale)[dead]}))
        rows.append(dict(node=n.name, op=n.op_type, weight=wname, shape=list(w.shape), dtype=str(w.dtype),
                         zero=float(np.mean(w == 0)), dead=int(dead.sum()), channels=len(dead),
                         bias_dtype=str(b.dtype) if b is not None else "-",
                         bias_zero_dead=(bool(np.all(b[dead] == 0)) if b is not None and dead.any() else None),
                         dead_scales=dead_scales))
    return rows


def node_summary(path: Path) -> tuple[str, str]:
    """The op types of the file (with counts) and, for each Conv/Gemm, what follows it."""
    g = onnx.load(str(path)).graph
    counts = Counter(n.op_type for n in g.node)
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    chains = []
    for n in g.node:
        if n.op_type in ("Conv", "Gemm", "MatMul"):
            nxt = consumers.get(n.output[0], [])
            chain = [n.op_type] + ["/".join(c.op_type for c in nxt) or "(graph output)"]
            if len(nxt) == 1 and nxt[0].op_type in ("Relu", "Add"):
                chain.append("/".join(c.op_type for c in consumers.get(nxt[0].output[0], [])) or "(graph output)")
            chains.append(" -> ".join(chain))
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())), "; ".join(chains)


def main() -> int:
    seed()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = common.digits()
    common.write_test_npz(x_test, y_test)
    xt = torch.from_numpy(np.ascontiguousarray(x_train.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y_train)
    xv_np = np.ascontiguousarray(x_test.transpose(0, 3, 1, 2))
    xv, yv = torch.from_numpy(xv_np), torch.from_numpy(y_test)
    x_cal = np.ascontiguousarray(xt[:CALIBRATION].numpy())

    seed()
    dense = DigitsCNN()
    fit(dense, xt, yt, EPOCHS, LR, s=0)
    models = {"dense": dense}
    for name, amount in UNSTRUCTURED.items():
        seed(1)
        models[name] = prune_unstructured(dense, amount, xt, yt)
    for name, amount in STRUCTURED.items():
        seed(1)
        models[name] = prune_structured(dense, amount, xt, yt)

    rows, layer_rows, node_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, m in models.items():
            float_path = (common.OUT if name == "dense" else Path(tmp)) / f"torch_digits_{name}_float.onnx"
            export(m, float_path)
            qdq_path = common.OUT / f"torch_digits_{name}_qdq.onnx"
            quantize(float_path, qdq_path, x_cal)
            paths = [float_path, qdq_path] if name == "dense" else [qdq_path]
            for p in paths:
                common.check_size(p, common.MAX_FLOAT_FILE_BYTES if p == float_path else common.MAX_FILE_BYTES)
                acc = ort_accuracy(p, xv_np, y_test)
                rows.append([f"`{p.name}`", p.stat().st_size, f"`{common.md5(p)}`",
                             f"{accuracy(m, xv, yv):.4f}", f"{acc:.4f}"])
                print(f"{p.name}: {p.stat().st_size} B, torch acc {accuracy(m, xv, yv):.4f}, ort acc {acc:.4f}")
                for st in weight_stats(p):
                    bias = {None: "-", True: "yes", False: "NO"}[st["bias_zero_dead"]]
                    layer_rows.append([f"`{p.name}`", st["op"], f"`{st['weight']}`", st["shape"], st["dtype"],
                                       f"{st['zero']:.4f}", f"{st['dead']}/{st['channels']}", bias,
                                       st["dead_scales"] or "-"])
                    print(f"   {st['op']} {st['weight']} {st['shape']} {st['dtype']} zero {st['zero']:.4f} "
                          f"dead {st['dead']}/{st['channels']} bias0 {bias} dead-scale {st['dead_scales']}")
                ops, chains = node_summary(p)
                node_rows.append([f"`{p.name}`", ops, chains])
                print("  ", ops, "|", chains)

    import onnxscript  # noqa: PLC0415 - only for its version
    versions = common.md_table(["package", "version"], [
        ["python", common.python_version()], ["torch", torch.__version__], ["onnx", onnx.__version__],
        ["onnxruntime", ort.__version__], ["onnxscript", onnxscript.__version__], ["numpy", np.__version__],
        ["scikit-learn", __import__("sklearn").__version__]])
    exporter = ("`torch.onnx.export(..., dynamo=True, opset_version=17, external_data=False)` (the dynamo exporter)"
                if DYNAMO else
                "`torch.onnx.export(..., dynamo=False, opset_version=17, do_constant_folding=True)` "
                "(the TorchScript-based exporter)")
    body = f"""## torch.nn.utils.prune + onnxruntime quantize_static (ONNX, QDQ)

Made by `scripts/pruned_fixtures/make_torch.py`:

    scripts/pruned_fixtures/env.sh torch
    ~/.cache/edgert-fixture-envs/torch/bin/python scripts/pruned_fixtures/make_torch.py

{versions}

Model (NCHW input [1, 1, 8, 8], batch 1 static): Conv2d 1->16 3x3 pad 1, ReLU, Conv2d 16->32 3x3
stride 2 pad 1, ReLU, Conv2d 32->32 3x3 pad 1, ReLU, Flatten, Linear 512->64, ReLU, Linear 64->10.
Trained {EPOCHS} epochs (Adam {LR:g}, batch {BATCH}). Pruned models, each from the dense one and
fine-tuned {FINETUNE_EPOCHS} epochs (Adam {FINETUNE_LR:g}) under the masks, then `prune.remove`:

- `l1uNN`: `prune.l1_unstructured(layer, "weight", amount)` on every Conv2d and Linear, amount
  0.5 / 0.75 / 0.9 of each layer's weights.
- `lnNN`: `prune.ln_structured(layer, "weight", amount, n=2, dim=0)` on conv1-3 and fc1 (fc2
  dense), amount 0.5 / 0.75, plus `prune.custom_from_mask(layer, "bias", channel_mask)` so the
  pruned output channels' biases stay zero and those channels output exactly zero.

Export: {exporter}, input `input`, output `logits`.
Quantization: `quantize_static(float, qdq, reader, quant_format=QuantFormat.QDQ, per_channel=True,
activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)` (calibration: MinMax, the
default) with a CalibrationDataReader over the first {CALIBRATION} training images, one at a time.
The quantized files take and return float32 (QuantizeLinear / DequantizeLinear at the edges).

{common.md_table(["file", "bytes", "md5", "float accuracy (torch)", "accuracy (onnxruntime)"], rows)}

Node types, and what follows each Conv / Gemm (a Relu that the quantizer kept would show as
`Conv -> Relu -> QuantizeLinear`):

{common.md_table(["file", "op types", "after each Conv / Gemm"], node_rows)}

Per-layer weights as stored ("bias 0 on dead" tells whether the bias of every all-zero output
channel is zero too; "dead scale" is the per-channel weight scale onnxruntime gave those channels):

{common.md_table(["file", "op", "weight", "shape", "dtype", "zero fraction", "dead channels", "bias 0 on dead",
                  "dead scale"], layer_rows)}

Notes:

- The QDQ quantizer dropped every Relu: each Conv / Gemm output goes straight to a QuantizeLinear
  whose zero point is -128 (int8's lowest value), so the quantized range does the clamping; the
  tensors keep the Relu's names (`relu`, `relu_1`, ...). The Reshape sits between a
  DequantizeLinear and a QuantizeLinear sharing conv3's output scale and zero point. Weights are
  int8 with per-output-channel scales (DequantizeLinear axis 0), biases int32 (scale = input
  scale x weight scale, zero point 0), each behind its own DequantizeLinear.
- onnxruntime gives an all-zero output channel the weight scale 1.0 ("dead scale").
- l1_unstructured can leave an output channel with all-zero weights but a nonzero bias ("bias 0
  on dead": NO): such a channel outputs the constant relu(bias), not zero. ln_structured with the
  bias mask makes the channel output exactly zero.
"""
    common.update_provenance("torch", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
