#!/usr/bin/env python3
"""Validation throughput as boards are added: one farm of emulated boards (edgert farm serve's
Farm, behind a private labgrid coordinator), the same validation run on 1, 2, ... of them in
turn, in one process; samples per second and the ratio to one board.

    .venv/bin/python scripts/bench_farm.py models/mlperf_tiny/kws_dscnn_int8.tflite \\
        --boards 1,2,4 --samples 200 --json benchmarks/farm-scaling.json

Wall-clock figures on a shared machine: only the ratios, measured side by side in one run,
mean anything; the record holds the machine's CPU count with them.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(model: Path, target: str, counts: list[int], samples: int, out: Path) -> dict:
    from edgert import api
    from edgert.cli import main
    from edgert.farm.serve import Farm

    build = api.build(model, target, out / "build")
    rows = []
    with Farm(build, boards=max(counts), workdir=out / "farm") as farm:
        for n in counts:
            report = out / f"boards-{n}.json"
            argv = ["validate", str(build.dir), "--labgrid", "--coordinator", farm.address, "--boards", str(n),
                    "--random", str(samples), "--report", str(report)]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
                code = main(argv)
            if code != 0:
                raise SystemExit(f"edgert {' '.join(argv)} exited {code}:\n{err.getvalue()}")
            s = json.loads(report.read_text())["summary"]
            rows.append({"boards": n, "samples": s["samples"], "seconds": s["seconds"],
                         "samples_per_second": s["samples_per_second"], "exact_rate": s["exact_rate"]})
    base = rows[0]["samples_per_second"]
    for r in rows:
        r["vs_one_board"] = round(r["samples_per_second"] / base, 2)
    return {"model": build.report["summary"]["model"], "target": target, "board": build.meta.get("board"),
            "cpus": os.cpu_count(), "rows": rows}


def table(result: dict) -> str:
    lines = ["| boards | samples / s | vs one board |", "|---:|---:|---:|"]
    lines += [f"| {r['boards']} | {r['samples_per_second']:.1f} | {r['vs_one_board']:.2f}x |" for r in result["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--boards", default="1,2,4", help="board counts, one run each, in this order (default 1,2,4)")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("-o", "--output", default="build/bench/farm")
    p.add_argument("--json", help="also write the result, with this command line, here")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.boards.split(",")]
    if counts[0] != 1:
        p.error("--boards must start with 1: the other counts are compared with one board")
    result = measure(Path(args.model), args.target, counts, args.samples, Path(args.output))
    print(f"{result['model']} on emulated {result['board']}, {args.samples} samples a run, {result['cpus']} CPUs\n")
    print(table(result))
    if args.json:
        command = "scripts/bench_farm.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        Path(args.json).write_text(json.dumps({"command": command, **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
