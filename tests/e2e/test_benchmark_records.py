"""A recorded benchmark (benchmarks/cortex-m7.json) measured again: instruction counts on the
emulated board are exact and repeatable, so the record must match to the instruction."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgert import bench

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_recorded_cortex_m7_figure_is_measured_again(tmp_path):
    record = json.loads((REPO / "benchmarks" / "cortex-m7.json").read_text())
    recorded = {row["model"]: row for row in record["models"]}
    model = REPO / "models" / "mlperf_tiny" / "ad_toycar_int8.tflite"  # the quickest of the four
    result = bench.bench_device([model], "cortex-m7", out_dir=tmp_path, seed=record.get("seed", 0))
    (row,) = result["models"]
    want = recorded[row["model"]]
    assert (row["latency"], row["arena"], row["flash"], row["ram"]) == \
        (want["latency"], want["arena"], want["flash"], want["ram"])
