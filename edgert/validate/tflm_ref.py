"""Reference execution of .tflite models with TFLite Micro (and LiteRT).

TFLM (``tflite_micro`` pip package) runs the real TFLM reference kernels,
so its int8 outputs are the bit-exactness oracle for edgert.  LiteRT
(``ai_edge_litert``) is provided for side-by-side comparison.

Arena size
----------
The TFLM Python wrapper has no getter for used arena bytes.  It is built in
``kAllocationRecording`` mode (``RecordingMicroAllocator``), whose
``PrintAllocations()`` writes to the C-level stderr (fd 2)::

    [RecordingMicroAllocator] Arena allocation total 24272 bytes
    [RecordingMicroAllocator] Arena allocation head 16000 bytes
    [RecordingMicroAllocator] Arena allocation tail 8272 bytes
    [RecordingMicroAllocator] '<type>' used N bytes with alignment overhead (requested M bytes for K allocations)
    ...

:class:`TflmReference` captures fd 2 around that call and parses it.
``total`` (= head + tail) is the exact minimum ``arena_size`` accepted by the
wrapper (one 16-byte step less fails with "Failed to allocate tail memory").
On a device add up to 15 bytes if the arena array is not 16-byte aligned.
The numbers do not depend on the arena size passed in.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import sys
import tempfile
from typing import Sequence

import numpy as np

__all__ = ["TflmReference", "run_tflm", "run_litert", "tflm_arena_report"]

_MIN_DEFAULT_ARENA = 4 << 20
_MAX_ARENA = 1 << 30


def _capture_fd2(fn) -> str:
    """Run fn() with the process-level stderr (fd 2) redirected; return text."""
    try:
        sys.stderr.flush()
    except Exception:  # pragma: no cover - exotic stderr replacements
        pass
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        err = None
        try:
            fn()
        except Exception as e:  # re-raised below with the TFLM log attached
            err = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode("utf-8", "replace")
    if err is not None:
        raise type(err)(f"{err}\nTFLM log:\n{text}") from err
    return text


_RE_TOTAL = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_RE_ITEM = re.compile(
    r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+)"
)


def _parse_allocations(text: str) -> dict:
    rep: dict = {"raw": text, "items": {}}
    for k, v in _RE_TOTAL.findall(text):
        rep[k] = int(v)
    for name, used, req, count in _RE_ITEM.findall(text):
        rep["items"][name] = {"used": int(used), "requested": int(req), "count": int(count)}
    return rep


class TflmReference:
    """A reusable TFLM interpreter for one model.

    Args:
      model_bytes: the .tflite flatbuffer.
      arena_size: tensor arena bytes.  Default: try max(4 MiB, 10x model
        size) and double on allocation failure (up to 1 GiB).
    """

    def __init__(self, model_bytes: bytes, arena_size: int | None = None):
        from tflite_micro.python.tflite_micro import runtime

        self.model_bytes = bytes(model_bytes)
        explicit = arena_size is not None
        size = arena_size if explicit else max(_MIN_DEFAULT_ARENA, 10 * len(self.model_bytes))
        while True:
            made: list = []
            try:
                log = _capture_fd2(
                    lambda: made.append(runtime.Interpreter.from_bytes(self.model_bytes, arena_size=size))
                )
            except RuntimeError as e:
                if explicit or size >= _MAX_ARENA or "allocate" not in str(e):
                    raise
                size *= 2
                continue
            self._interp = made[0]
            self.init_log = log
            break
        self.arena_size = size
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema_fb

        sg = schema_fb.Model.GetRootAsModel(self.model_bytes, 0).Subgraphs(0)
        self.num_inputs = sg.InputsLength()
        self.num_outputs = sg.OutputsLength()
        self.input_details = [self._interp.get_input_details(i) for i in range(self.num_inputs)]
        self.output_details = [self._interp.get_output_details(i) for i in range(self.num_outputs)]
        self._report: dict | None = None

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Set inputs (dtype/shape must match exactly), invoke, copy outputs."""
        if len(inputs) != self.num_inputs:
            raise ValueError(f"model has {self.num_inputs} inputs, got {len(inputs)}")
        for i, x in enumerate(inputs):
            d = self.input_details[i]
            x = np.ascontiguousarray(np.asarray(x).astype(d["dtype"], copy=False).reshape(d["shape"]))
            self._interp.set_input(x, i)
        self._interp.invoke()
        return [np.array(self._interp.get_output(i), copy=True) for i in range(self.num_outputs)]

    __call__ = run

    def reset(self) -> None:
        """Reset stateful kernels (variables) to their initial state."""
        self._interp.reset()

    def arena_report(self) -> dict:
        """Parsed RecordingMicroAllocator report: total/head/tail/items/raw."""
        if self._report is None:
            self._report = _parse_allocations(_capture_fd2(self._interp.print_allocations))
        return self._report

    @property
    def arena_bytes(self) -> int:
        """Arena bytes TFLM actually uses (= minimum working arena_size)."""
        return self.arena_report()["total"]


_CACHE: "collections.OrderedDict[bytes, TflmReference]" = collections.OrderedDict()
_CACHE_MAX = 16


def _cached(model_bytes: bytes) -> TflmReference:
    key = hashlib.sha1(model_bytes).digest()
    ref = _CACHE.get(key)
    if ref is None:
        ref = TflmReference(model_bytes)
        _CACHE[key] = ref
        if len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return ref


def run_tflm(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a model once in TFLM (interpreters are cached by model hash)."""
    return _cached(bytes(model_bytes)).run(inputs)


def tflm_arena_report(model_bytes: bytes) -> dict:
    """Arena usage report of a model (see TflmReference.arena_report)."""
    return _cached(bytes(model_bytes)).arena_report()


def run_litert(
    model_bytes: bytes,
    inputs: Sequence[np.ndarray],
    *,
    resolver: str = "ref",
    num_threads: int = 1,
) -> list[np.ndarray]:
    """Run a model once with the LiteRT (TFLite) interpreter.

    resolver:
      "ref"     -- LiteRT reference kernels (default).  Bit-identical to TFLM
                   for int8 conv / depthwise / pool / add / mul / softmax /
                   logistic / mean / quantize; its int8 FULLY_CONNECTED uses
                   single rounding and can differ from TFLM by 1 LSB.
      "builtin" -- optimized kernels without default delegates (no XNNPACK).
                   int8 FC matches TFLM; int8 conv/depthwise (ruy/gemmlowp
                   path) and MEAN can differ by 1 LSB in ~0.1% of outputs.
      "auto"    -- LiteRT default (XNNPACK delegate applied).
    """
    from ai_edge_litert import interpreter as litert

    kinds = {
        "builtin": litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        "ref": litert.OpResolverType.BUILTIN_REF,
        "auto": litert.OpResolverType.AUTO,
    }
    it = litert.Interpreter(
        model_content=bytes(model_bytes),
        num_threads=num_threads,
        experimental_op_resolver_type=kinds[resolver],
    )
    it.allocate_tensors()
    ins = it.get_input_details()
    if len(ins) != len(inputs):
        raise ValueError(f"model has {len(ins)} inputs, got {len(inputs)}")
    for d, x in zip(ins, inputs):
        it.set_tensor(d["index"], np.asarray(x).astype(d["dtype"], copy=False).reshape(d["shape"]))
    it.invoke()
    return [np.array(it.get_tensor(d["index"]), copy=True) for d in it.get_output_details()]
