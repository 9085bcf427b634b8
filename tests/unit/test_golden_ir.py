"""The IR of one model after all passes, as text: a change in lowering shows up as a diff.
Regenerate deliberately with EDGERT_UPDATE_GOLDEN=1."""
from __future__ import annotations

import os
from pathlib import Path

from edgert import api
from edgert.ir import format_graph

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "kws_dscnn_int8.ir.txt"


def test_kws_ir_snapshot(mlperf_dir):
    text = format_graph(api.compile_model(mlperf_dir / "kws_dscnn_int8.tflite").graph)
    if os.environ.get("EDGERT_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
