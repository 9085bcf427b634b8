"""The recorded benchmarks (benchmarks/<target>.json) measured again: instruction counts on the
emulated boards are exact and repeatable, so each record must match to the instruction."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgert import bench

pytestmark = [pytest.mark.qemu, pytest.mark.cross]

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m4", "rpi4", "rpi5"])
def test_the_recorded_figure_is_measured_again(target, tmp_path):
    record = json.loads((REPO / "benchmarks" / f"{target}.json").read_text())
    recorded = {row["model"]: row for row in record["models"]}
    model = REPO / "models" / "mlperf_tiny" / "ad_toycar_int8.tflite"  # the quickest of the four
    result = bench.bench_device([model], target, out_dir=tmp_path, seed=record.get("seed", 0))
    (row,) = result["models"]
    want = recorded[row["model"]]
    assert (row["latency"], row["arena"], row["flash"], row["ram"]) == \
        (want["latency"], want["arena"], want["flash"], want["ram"])
