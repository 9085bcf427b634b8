"""What make_tfmot.py and make_torch.py share: the digits data, the test-split fixture and the
sections of tests/fixtures/pruned/PROVENANCE.md (each script rewrites only its own section).

Needs numpy and scikit-learn only (both side environments have them)."""
from __future__ import annotations

import hashlib
import platform
import re
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "pruned"
TEST_NPZ = OUT / "digits_test.npz"
PROVENANCE = OUT / "PROVENANCE.md"
SEED = 0
MAX_FILE_BYTES = 100 * 1024
# The float ONNX of the dense model holds its 47,562 float32 parameters (190 KB): the one file
# allowed past MAX_FILE_BYTES.
MAX_FLOAT_FILE_BYTES = 200 * 1024


def digits():
    """scikit-learn's bundled 8x8 digits (no download), pixels / 16 -> [0, 1] float32, NHWC
    [N, 8, 8, 1], and the fixed stratified 80/20 split. Returns x_train, x_test, y_train, y_test."""
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)


def write_test_npz(x_test: np.ndarray, y_test: np.ndarray) -> None:
    """digits_test.npz: x (NHWC float32, for the .tflite models), x_nchw (for the .onnx ones) and
    y (int64). Left untouched when it already holds the same arrays, so its md5 stays put."""
    arrays = {"x": x_test.astype(np.float32), "x_nchw": np.ascontiguousarray(x_test.transpose(0, 3, 1, 2)),
              "y": y_test.astype(np.int64)}
    if TEST_NPZ.exists():
        with np.load(TEST_NPZ) as old:
            if set(old.files) == set(arrays) and all(
                    old[k].dtype == v.dtype and np.array_equal(old[k], v) for k, v in arrays.items()):
                return
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(TEST_NPZ, **arrays)  # pixels are multiples of 1/16: compresses well


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def check_size(path: Path, limit: int = MAX_FILE_BYTES) -> None:
    size = path.stat().st_size
    if size >= limit:
        raise SystemExit(f"{path.name}: {size} bytes, over the {limit} byte limit for a fixture")


def python_version() -> str:
    return platform.python_version()


HEADER = """# Pruned-model fixtures: provenance

Small networks for the 8x8 digits of scikit-learn (`sklearn.datasets.load_digits`, pixels / 16,
split `train_test_split(test_size=0.2, random_state=0, stratify=y)`), pruned and quantized by
the tools users prune with, so that edgert's tests need neither TensorFlow nor PyTorch:

- `tfmot_*.tflite`: Keras (tf_keras) models pruned with tensorflow-model-optimization and
  converted by the TFLite converter to full-integer int8 (int8 input and output).
- `torch_*.onnx`: PyTorch models pruned with `torch.nn.utils.prune`, exported with
  `torch.onnx.export` and quantized by onnxruntime's `quantize_static` (QDQ, per-channel int8
  weights, int8 activations); `torch_digits_dense_float.onnx` is the float export.
- `digits_test.npz`: the test split (360 images): `x` NHWC float32 [N, 8, 8, 1] for the .tflite
  models, `x_nchw` float32 [N, 1, 8, 8] for the .onnx ones, `y` int64 labels.

Made by `scripts/pruned_fixtures/` (see its README.md). Each script rewrites only its own
section below. Accuracies are on the test split, measured by the tool's own runtime (the TFLite
interpreter of TensorFlow, onnxruntime). "Zero fraction" is the fraction of exactly-zero int8
weights of each layer as stored in the file; "dead channels" counts output channels whose
weights are all zero.

md5 of `digits_test.npz`: `-`
"""


def update_provenance(section: str, body: str) -> None:
    """Replace the text between <!-- section:begin --> and <!-- section:end --> (appending the
    section if it is not there yet) and keep the other sections as they are."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    text = PROVENANCE.read_text() if PROVENANCE.exists() else HEADER
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    # the test split is shared: keep its md5 line in the header current
    text = re.sub(r"md5 of `digits_test.npz`: `[-0-9a-f]*`", f"md5 of `digits_test.npz`: `{md5(TEST_NPZ)}`", text)
    PROVENANCE.write_text(text)


def md_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
