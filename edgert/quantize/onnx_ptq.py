"""Post-training quantization of a float ONNX model to an int8 QDQ ONNX model, by
onnxruntime's quantization tool (static calibration, QDQ format, int8 activations, symmetric
per-channel int8 weights), with chosen layers' weights in int4 (ONNX INT4, opset 21) or
snapped to a codebook (int8 values from at most 2**bits levels). The result is a standard
QDQ model: onnxruntime runs it, and edgert builds it (edgert.frontends.onnx.qdq)."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from edgert.errors import UnsupportedError, UserError

from . import lowbit
from .search import Score

LAYER_OPS = ("Conv", "Gemm", "MatMul")
CALIBRATION_SAMPLES = 128  # activation ranges from this many calibration samples (min/max)


def session(model: str | bytes):
    """An onnxruntime session that runs a QDQ model as the ONNX spec defines it: each
    DequantizeLinear -> float op -> QuantizeLinear, in float. With graph optimizations on,
    onnxruntime fuses those into its own int8 kernels, whose results depend on the CPU: on x86
    without VNNI its u8s8 kernels saturate 16-bit pair sums (hence its ``reduce_range``), so
    the int8 MLPerf AD autoencoder measured 9 % more reconstruction error there than on a
    VNNI machine (0.1 % unfused). A score must not depend on the machine that computes it."""
    ort = _need("onnxruntime")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _need(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise UnsupportedError(f"quantizing ONNX models needs the {module.split('.')[0]} package",
                               "pip install onnxruntime") from None


class OnnxFloatModel:
    """A float ONNX model with its calibration set (``x``: samples in the model's input layout;
    ``y``: labels, or None). ``metric``, what ``score`` measures:
      "labels"          top-1 accuracy against ``y``;
      "agreement"       without labels: top-1 agreement with the float model's predictions;
      "reconstruction"  without labels, for a model whose output has its input's size (an
                        autoencoder): the float model's reconstruction error (mean squared,
                        output against input) over the quantized model's, 1.0 for the float
                        model, so a drop of 1 % is about 1 % more error; the loss is that error.
    """

    def __init__(self, path: str | Path, x: np.ndarray, y: np.ndarray | None):
        import onnx

        self.path = Path(path)
        self.model = onnx.load(str(path))
        g = self.model.graph
        inits = {i.name: i for i in g.initializer}
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node):
            raise UserError(f"{path} is already quantized (it has QuantizeLinear/DequantizeLinear nodes)",
                            "quantize the float model")
        if len(g.input) - sum(i.name in inits for i in g.input) != 1:
            raise UnsupportedError(f"{path}: edgert quantize takes models with one input", "export with a single input")
        self.input = next(i.name for i in g.input if i.name not in inits)
        self.layers: list[str] = []  # weight initializer names, in graph order
        self.nodes: dict[str, str] = {}  # weight name -> "Conv #3 (name)"
        self.axes: dict[str, int] = {}  # weight name -> its output-channel axis
        for i, n in enumerate(g.node):
            if n.op_type in LAYER_OPS and len(n.input) > 1 and n.input[1] in inits:
                self.layers.append(n.input[1])
                self.nodes[n.input[1]] = f"{n.op_type} #{i}" + (f" ({n.name})" if n.name else "")
                trans_b = any(a.name == "transB" and a.i for a in n.attribute)
                self.axes[n.input[1]] = 0 if n.op_type == "Conv" or trans_b else 1  # output channels
        self.sizes = {w: int(np.prod(inits[w].dims)) for w in self.layers}
        self.x = np.asarray(x, np.float32)
        self.y = None if y is None else np.asarray(y).reshape(-1)
        self._float = session(str(path))
        out = self._run(self._float)
        self.metric = "labels" if self.y is not None else (
            "reconstruction" if out.shape[1] == self.x[0].size else "agreement")
        self.reference = out.argmax(axis=1)
        if self.metric == "reconstruction":
            self.float_error = self._reconstruction_error(out)
            self.float_accuracy = 1.0
        else:
            self.float_accuracy = float(np.mean(self.reference == self._labels()))

    def _reconstruction_error(self, out: np.ndarray) -> float:
        return float(np.mean((out.astype(np.float64) - self.x.reshape(len(self.x), -1)) ** 2))

    def _labels(self) -> np.ndarray:
        return self.y if self.y is not None else self.reference

    def _run(self, session) -> np.ndarray:
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        return np.concatenate([session.run(None, {self.input: s.reshape(shape)})[0].reshape(1, -1) for s in self.x])

    def quantize(self, formats: dict[str, str]) -> bytes:
        """The QDQ model with weight ``w`` in ``formats.get(w, "int8")``: "int8", "int4" or
        "codebookK"."""
        import onnx
        from onnx import numpy_helper

        q = _need("onnxruntime.quantization")
        int4 = [w for w, f in formats.items() if f == "int4"]
        model = self.model
        if int4 and model.opset_import[0].version < 21:  # ONNX INT4 tensors need opset 21
            model = onnx.version_converter.convert_version(model, 21)
        samples = self.x[:CALIBRATION_SAMPLES]
        shape = [d if isinstance(d, int) else 1 for d in self._float.get_inputs()[0].shape]

        class Reader(q.CalibrationDataReader):
            def __init__(reader):
                reader.it = iter({self.input: s.reshape(shape)} for s in samples)

            def get_next(reader):
                return next(reader.it, None)

        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "float.onnx", Path(tmp) / "q.onnx"
            onnx.save(model, str(src))
            overrides = {w: [{"quant_type": q.QuantType.QInt4, "axis": self.axes[w]}] for w in int4}
            logging.disable(logging.WARNING)  # its advice to pre-process the model, on every call
            try:
                q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                                  activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                                  calibrate_method=q.CalibrationMethod.MinMax,
                                  extra_options={"TensorQuantOverrides": overrides, "ActivationSymmetric": False,
                                                 "WeightSymmetric": True})
            finally:
                logging.disable(logging.NOTSET)
            out = onnx.load(str(dst))
        inits = {i.name: i for i in out.graph.initializer}
        for w, f in formats.items():
            if f.startswith("codebook"):
                t = inits[f"{w}_quantized"]
                v = numpy_helper.to_array(t)
                t.CopyFrom(numpy_helper.from_array(lowbit.codebook_int8(v, int(f[len("codebook"):])), t.name))
        return out.SerializeToString()

    def score(self, qmodel: bytes) -> Score:
        """A quantized model on the calibration set, by ``metric``: cross-entropy and accuracy
        (labels, or the float model's predictions), or reconstruction error and its ratio."""
        logits = self._run(session(qmodel)).astype(np.float64)
        if self.metric == "reconstruction":
            err = self._reconstruction_error(logits)
            return Score(loss=err, accuracy=self.float_error / err if err > 0 else 1.0)
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        labels = self._labels()
        return Score(loss=float(-logp[np.arange(len(labels)), labels].mean()),
                     accuracy=float(np.mean(logits.argmax(axis=1) == labels)))
