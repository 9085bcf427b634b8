"""The README's measured figures are the recorded benchmark results (benchmarks/*.json, each
written by `edgert bench --json` with the command that produced it), so prose cannot drift
from what the bench measured. tests/e2e/test_benchmark_records.py measures one of them again."""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


HEADER = "| model | edgert | TFLM + CMSIS-NN | TFLM reference kernels | arena edgert / TFLM |"
PI_HEADER = "| model | rpi4 (A72) | rpi5 (A76, SDOT) | MACs / instruction rpi4 |"


def _table(header: str) -> dict[str, list[str]]:
    """The README table under ``header``: model -> its cells."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index(header) + 2  # past the header and the alignment row
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def _record(target: str) -> dict:
    record = json.loads((REPO / "benchmarks" / f"{target}.json").read_text())
    assert record["command"].startswith(f"edgert bench --target {target} ")
    assert record["command"].endswith(f"--json benchmarks/{target}.json")
    return record


def test_cortex_m7_table_is_the_recorded_bench():
    record = _record("cortex-m7")
    assert len(record["models"]) == 4
    table = _table(HEADER)
    assert len(table) == 4
    for row in record["models"]:
        cells = table.get(row["model"])
        assert cells, f"README has no cortex-m7 row for {row['model']}"
        assert row["unit"] == "instructions"
        assert cells[1] == f"{row['latency']:,}", f"{row['model']}: README says {cells[1]} instructions"
        assert cells[4].split(" / ")[0] == f"{row['arena']:,}", f"{row['model']}: README says arena {cells[4]}"


def test_pi_table_is_the_recorded_bench():
    table = _table(PI_HEADER)
    assert len(table) == 4
    for column, target in ((1, "rpi4"), (2, "rpi5")):
        record = _record(target)
        assert len(record["models"]) == 4
        for row in record["models"]:
            cells = table.get(row["model"])
            assert cells, f"README has no Pi row for {row['model']}"
            assert row["unit"] == "instructions"
            assert cells[column] == f"{row['latency']:,}", f"{row['model']} on {target}: README says {cells[column]}"
            if target == "rpi4":
                assert cells[3] == f"{row['macs_per_instruction']:.3g}", f"{row['model']}: README says {cells[3]} MACs/instr"
