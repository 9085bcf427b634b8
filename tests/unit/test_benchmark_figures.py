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
    """benchmarks/<target>.json, checked to be what `edgert bench --json` wrote for its command."""
    record = json.loads((REPO / "benchmarks" / f"{target}.json").read_text())
    assert record["command"].startswith(f"edgert bench --target {record['target']} ")
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


def _models(target: str) -> dict[str, dict]:
    return {row["model"]: row for row in _record(target)["models"]}


def _layer(row: dict, name: str) -> dict:
    (layer,) = [r for r in row["layers"] if r["layer"] == name]
    return layer


def test_low_bit_table_is_the_recorded_bench():
    rows = _models("cortex-m7-lowbit")
    table = _table("| model | instructions int8 / int4 / codebook | weight bytes int8 / int4 / codebook "
                   "| flash bytes int8 / int4 / codebook |")
    assert set(table) == {"kws_dscnn", "ad_toycar"}
    for model, cells in table.items():
        variants = [rows[f"{model}_{v}"] for v in ("int8", "int4", "codebook4")]
        for column, key in ((1, "latency"), (2, "weight_bytes"), (3, "flash")):
            want = " / ".join(f"{r[key]:,}" for r in variants)
            assert cells[column] == want, f"{model} {key}: README says {cells[column]}, the record {want}"


def test_binary_layer_table_is_the_recorded_bench():
    rows = _models("cortex-m7-binary")
    table = _table("| layer | instructions | MACs / instruction |")
    for label, model, name in (("LceBconv2d (binary)", "bconv_16x16x64_3x3x64", "bconv2d_0"),
                               ("CONV_2D (int8)", "conv_int8_16x16x64_3x3x64", "conv2d_0")):
        layer = _layer(rows[model], name)
        assert table[label][1] == f"{layer['latency']:,}", f"{label}: README says {table[label][1]}"
        assert table[label][2] == f"{layer['macs_per_unit']:.3g}", f"{label}: README says {table[label][2]}"


def test_mst_table_is_the_recorded_bench():
    rows = _models("cortex-m7-mst")
    table = _table("| layer (16x16x64 -> 64, 3x3) | dense | --bnn-mst |")
    for label, model in (("random filters (kept dense)", "bconv_16x16x64_3x3x64"),
                         ("8 prototype filters, 3 bits flipped per copy", "bconv_16x16x64_3x3x64_similar")):
        dense, mst = (_layer(rows[m], "bconv2d_0")["latency"] for m in (model, f"{model} +mst"))
        assert table[label][1:] == [f"{dense:,}", f"{mst:,}"], f"{label}: README says {table[label][1:]}"


def test_pruned_table_is_the_recorded_bench():
    rows = _models("cortex-m7-pruned")
    table = _table("| variant | float test acc. | instructions int8 → auto | weight bytes int8 → auto "
                   "| flash bytes int8 → auto |")
    names = {"dense": "q_dense", **{f"{kind} {p} %": f"q_{kind[0]}{p}" for kind in ("unstructured", "structured")
                                    for p in (50, 75, 90)}}
    assert set(table) == set(names)
    for label, model in names.items():
        for column, key in ((2, "latency"), (3, "weight_bytes"), (4, "flash")):
            want = " → ".join(f"{rows[f'{model} [{mode}]'][key]:,}" for mode in ("int8", "auto"))
            assert table[label][column] == want, f"{label} {key}: README says {table[label][column]}, the record {want}"


def test_cortex_m4_table_is_the_recorded_bench():
    rows = _models("cortex-m4")
    table = _table("| model | edgert (M4) | arena | flash |")
    assert set(table) == set(rows) and len(rows) == 4
    for model, cells in table.items():
        r = rows[model]
        assert cells[1:] == [f"{r['latency']:,}", f"{r['arena']:,}", f"{r['flash']:,}"], f"{model}: README says {cells[1:]}"


FARM_HEADER = "| boards | samples / s | vs one board |"


def test_farm_scaling_table_is_the_recorded_bench():
    record = json.loads((REPO / "benchmarks" / "farm-scaling.json").read_text())
    assert record["command"].startswith("scripts/bench_farm.py ") and record["command"].endswith(
        "--json benchmarks/farm-scaling.json")
    table = _table(FARM_HEADER)
    assert [int(b) for b in table] == [r["boards"] for r in record["rows"]] == [1, 2, 4]
    for r in record["rows"]:
        cells = table[str(r["boards"])]
        assert cells[1:] == [f"{r['samples_per_second']:.1f}", f"{r['vs_one_board']:.2f}x"], cells
        assert r["exact_rate"] == 1.0
