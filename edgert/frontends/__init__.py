"""Model files -> edgert IR. One front end per file format, each reading and translating only
(what compiles is decided by edgert.ops):

    tflite.py       TFLite flatbuffers, with lce.py for Larq Compute Engine custom ops
    onnx/           ONNX: float.py (float32 graphs), qdq.py (int8 QDQ graphs), export.py (IR -> ONNX)
    common.py       TFLite's padding rule and activation codes, NCHW/NHWC permutations

Each front end has a TRANSLATE table (op name -> translation function) from which its
SUPPORTED_OPS are derived.
"""
from __future__ import annotations

from pathlib import Path

from edgert.errors import ModelFormatError
from edgert.ir import Graph

#: file suffix -> the front-end module reading it (imported on use)
SUFFIXES = {".tflite": "edgert.frontends.tflite", ".onnx": "edgert.frontends.onnx"}


def load(path: str | Path) -> Graph:
    """The model file's graph (model attributes only; edgert.passes runs next)."""
    import importlib

    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file", "check the path")
    if suffix not in SUFFIXES:
        raise ModelFormatError(f"{path}: unknown model format {suffix or '(no extension)'!r}",
                               "edgert reads " + " and ".join(SUFFIXES) + " files")
    return importlib.import_module(SUFFIXES[suffix]).load(path)
