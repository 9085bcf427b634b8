"""`edgert quantize`: post-training quantization with per-layer weight bit widths.

    quantize("model.onnx", "q.onnx", calib="train.npz", max_drop=0.01)   # float ONNX -> QDQ ONNX
    quantize("model_float.tflite", "q.onnx", calib="train.npz")          # float TFLite -> QDQ ONNX
    quantize("model_int8.tflite", "m4.tflite", weights="int4")            # int8 TFLite -> int4 weights

Float ONNX models (and float TFLite models, written as ONNX first: edgert.frontends.onnx.export):
onnxruntime's static QDQ quantization (edgert.quantize.onnx_ptq) with each
layer's weights int8 or low-bit (int4, or a codebook with ``codebook`` bits), the low-bit
layers chosen by Hessian-based sensitivity with inter-layer terms and a bisection that keeps
the accuracy drop on the calibration set within ``max_drop`` (edgert.quantize.search).
int8 TFLite models: every layer's weights re-quantized to int4 or a codebook
(edgert.quantize.tflite_weights).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgert.errors import UnsupportedError, UserError

WEIGHTS = ("mixed", "int8", "int4")


def load_calibration(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples (key 'x', or the only array) and labels (key 'y' or 'labels', optional)."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read calibration samples ({e})", "pass a .npz with arrays x and y") from None
    if isinstance(data, np.ndarray):
        return data, None
    keys = list(data.keys())
    x = data["x"] if "x" in keys else (data[keys[0]] if len(keys) == 1 else None)
    if x is None:
        raise UserError(f"{path}: no array 'x' among {keys}", "store the samples under the key 'x'")
    y = data["y"] if "y" in keys else (data["labels"] if "labels" in keys else None)
    if y is not None and len(y) != len(x):
        raise UserError(f"{path}: {len(x)} samples but {len(y)} labels", "store one label per sample")
    return x, y


def _low_format(weights: str, codebook: int | None) -> str:
    if codebook is not None:
        if codebook not in (2, 4):
            raise UserError(f"--codebook {codebook}: codebooks have 2 or 4 index bits", "use --codebook 4 or 2")
        return f"codebook{codebook}"
    return "int4"


def quantize(model: str | Path, out: str | Path, *, calib: str | Path | None = None, max_drop: float = 0.01,
             weights: str = "mixed", codebook: int | None = None) -> dict:
    """Quantize ``model`` into ``out``; returns the report (per-layer formats, accuracies)."""
    model, out = Path(model), Path(out)
    if weights not in WEIGHTS:
        raise UserError(f"unknown --weights {weights!r}", "one of: " + ", ".join(WEIGHTS))
    if not model.is_file():
        raise UserError(f"{model}: no such file", "check the path")
    low = _low_format(weights, codebook)
    if model.suffix.lower() == ".onnx":
        return _quantize_onnx(model, out, calib, max_drop, weights, low)
    if model.suffix.lower() == ".tflite" and _is_float_tflite(model):
        return _quantize_float_tflite(model, out, calib, max_drop, weights, low)
    if model.suffix.lower() == ".tflite":
        return _quantize_tflite(model, out, weights, low)
    raise UserError(f"{model}: unknown model format {model.suffix!r}", "edgert quantize reads .onnx and .tflite files")


def _is_float_tflite(model: Path) -> bool:
    from edgert.api import load_graph
    from edgert.ir import DType

    g = load_graph(model)
    return any(g.tensor(op.inputs[1]).dtype is DType.F32 for op in g.ops
               if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"))


def _quantize_float_tflite(model: Path, out: Path, calib, max_drop: float, weights: str, low: str) -> dict:
    """A float TFLite model, written as float ONNX (edgert.frontends.onnx.export), quantizes as
    an ONNX model does; calibration images come NHWC, as the TFLite model takes them."""
    import tempfile

    from edgert.api import load_graph

    from edgert.frontends.onnx import export as ir_to_onnx

    onnx_bytes, layout = ir_to_onnx.export(load_graph(model))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / (model.stem + ".onnx")
        src.write_bytes(onnx_bytes)
        to_nchw = next(iter(layout.values())) == "NCHW"
        rep = _quantize_onnx(src, out, calib, max_drop, weights, low,
                             transform=(lambda x: np.transpose(x, (0, 3, 1, 2)) if x.ndim == 4 else x) if to_nchw else None)
    rep.update({"model": str(model), "input_layout": "NCHW (the TFLite model's NHWC input, transposed)" if to_nchw
                else "as in the TFLite model"})
    return rep


def _quantize_onnx(model: Path, out: Path, calib, max_drop: float, weights: str, low: str, transform=None) -> dict:
    from . import onnx_ptq, search

    if out.suffix.lower() != ".onnx":
        raise UserError(f"-o {out}: a float model quantizes to an ONNX (QDQ) model", "name the output .onnx")
    if calib is None:
        raise UserError("quantizing a float model needs calibration samples", "pass --calib samples.npz (x, and labels y)")
    x, y = load_calibration(calib)
    if transform is not None:
        x = transform(x)
    m = onnx_ptq.OnnxFloatModel(model, x, y)
    saved = {w: m.sizes[w] - (m.sizes[w] + 1) // 2 for w in m.layers}
    report = {"model": str(model), "output": str(out),
              "calibration": {"samples": len(x), "labels": y is not None, "metric": m.metric},
              "float_accuracy": m.float_accuracy, "max_drop": max_drop, "low_format": low}
    if weights == "mixed":
        choice = search.choose(m.layers, saved, lambda lowset: m.score(m.quantize({w: low for w in lowset})),
                               m.float_accuracy, max_drop)
        formats = {w: (low if w in choice.low else "int8") for w in m.layers}
        report.update({"int8_accuracy": choice.int8_accuracy, "evaluations": choice.evaluations,
                       "sensitivity": choice.sensitivity,
                       "interaction": {f"{a} -> {b}": v for (a, b), v in choice.interaction.items()}})
    else:
        formats = {w: (low if weights == "int4" else "int8") for w in m.layers}
    qbytes = m.quantize(formats)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(qbytes)
    report["accuracy"] = m.score(qbytes).accuracy
    report["layers"] = [{"layer": m.nodes[w], "weights": w, "format": formats[w], "params": m.sizes[w],
                         "bytes": m.sizes[w] if formats[w] == "int8" else m.sizes[w] * int(formats[w][-1]) // 8}
                        for w in m.layers]
    return report


def _quantize_tflite(model: Path, out: Path, weights: str, low: str) -> dict:
    from edgert.frontends import tflite as tfl

    from . import tflite_weights

    if out.suffix.lower() != ".tflite":
        raise UserError(f"-o {out}: an int8 TFLite model re-quantizes to a TFLite model", "name the output .tflite")
    layers = tflite_weights.layers(tfl.parse_model(model.read_bytes(), str(model)))
    if not layers:
        raise UnsupportedError(f"{model}: no convolution or fully-connected weights to quantize",
                               "edgert quantize takes float .onnx and .tflite models, and int8 .tflite models "
                               "for int4 or codebook weights")
    if weights == "mixed" and low.startswith("codebook"):  # --codebook K alone: every layer
        weights = "int4"
    if weights == "mixed":
        raise UnsupportedError(f"{model}: mixed precision needs the float model",
                               "pass the float .onnx with --calib, or choose --weights int4 or --codebook K here")
    formats = {i: (low if weights == "int4" else "int8") for i, _ in layers}
    out.parent.mkdir(parents=True, exist_ok=True)  # as for an ONNX output and edgert build -o
    rows = tflite_weights.requantize(model, out, formats)
    return {"model": str(model), "output": str(out), "low_format": low, "layers": rows}
