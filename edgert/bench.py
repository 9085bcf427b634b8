"""Benchmarks that print tables. Engines run side by side in one process on the same
inputs and are compared as ratios (these machines are shared and noisy: absolute times
drift, ratios taken in one run much less)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgert import api
from edgert.report import format_table


def _random_inputs(specs: list[dict], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        dt = np.dtype(s["dtype"])
        if dt.kind == "f":
            out.append(rng.standard_normal(s["shape"]).astype(dt))
        else:
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, info.max + 1, s["shape"], dtype=dt))
    return out


def _time(fn, runs: int) -> list[float]:
    fn()  # warm-up: first-call allocation and page faults are not inference latency
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_host(build_dir: str | Path, *, runs: int = 50, seed: int = 0) -> dict:
    """Latency per inference of the edgert build, TFLite (ai-edge-litert with its default
    XNNPACK delegate, 1 thread) and TFLite Micro on the same input; arena bytes of edgert and
    TFLite Micro."""
    from edgert.validate.tflm_ref import TflmReference

    b = api.load_build(build_dir)
    model_bytes = b.model_path.read_bytes()
    inputs = _random_inputs(b.meta["io"]["inputs"], seed)
    engines = {}

    hm = api.host_model(b)
    engines["edgert"] = lambda: hm.run(inputs)

    tflm = TflmReference(model_bytes)
    engines["tflite-micro"] = lambda: tflm.run(inputs)

    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(model_content=model_bytes, num_threads=1)
    it.allocate_tensors()
    details = it.get_input_details()

    def run_litert():
        for d, x in zip(details, inputs):
            it.set_tensor(d["index"], x.reshape(d["shape"]))
        it.invoke()
        return [it.get_tensor(d["index"]) for d in it.get_output_details()]

    engines["litert (xnnpack)"] = run_litert

    rows = []
    for name, fn in engines.items():
        t = np.array(_time(fn, runs)) * 1e3
        rows.append({"engine": name, "p50_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
                     "min_ms": float(t.min())})
    base = rows[0]["p50_ms"]
    for r in rows:
        r["vs_edgert"] = r["p50_ms"] / base
    arena = {"edgert": int(b.report["summary"]["arena_bytes"]), "tflite-micro": int(tflm.arena_bytes)}
    return {"model": b.meta["model_file"], "build": str(b.dir), "runs": runs, "latency": rows, "arena_bytes": arena,
            "arena_ratio_tflm_over_edgert": arena["tflite-micro"] / max(arena["edgert"], 1)}


def format_host(result: dict) -> str:
    lines = [f"{result['build']}: {result['runs']} runs per engine, same input, host CPU", ""]
    lines.append(format_table(result["latency"], [("engine", "engine"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"),
                                                   ("min_ms", "min ms"), ("vs_edgert", "p50 / edgert p50")]))
    a = result["arena_bytes"]
    lines += ["", format_table(
        [{"engine": k, "arena": v, "ratio": v / max(a["edgert"], 1)} for k, v in a.items()],
        [("engine", "engine"), ("arena", "arena bytes"), ("ratio", "/ edgert")])]
    return "\n".join(lines)
