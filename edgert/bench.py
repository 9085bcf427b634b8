"""Benchmarks that print tables. Engines run side by side in one process on the same
inputs and are compared as ratios (these machines are shared and noisy: absolute times
drift, ratios taken in one run much less)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from edgert import api
from edgert.errors import UserError
from edgert.report import format_table


def _random_inputs(specs: list[dict], seed: int) -> list[np.ndarray]:
    from edgert.validate.dataset import random_inputs

    return random_inputs(specs, np.random.default_rng(seed))


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


# TensorFlow Lite Micro on the same emulated board, recorded (not run here: it needs its own
# firmware): TFLM with CMSIS-NN kernels and with its reference kernels, release flags, Debian
# arm-none-eabi-gcc 12.2, QEMU mps2-an500 with -icount shift=0, instructions per inference
# counted by SysTick, input numpy.random.default_rng(0).integers(-128, 128). Keyed by the
# model file's sha256 so a figure is only shown next to the model it was measured on.
TFLM_CORTEX_M7 = {
    "3c002613d1b2475eb51dd78dfb85a546c8ae658dee71cf6ade43b022fe205415":
        {"name": "ic_resnet8_int8", "cmsis_nn": 30_025_840, "reference": 108_686_920, "arena": 54_996},
    "aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae":
        {"name": "kws_dscnn_int8", "cmsis_nn": 7_642_160, "reference": 43_611_840, "arena": 22_820},
    "597a384c8c2c8a1276f04702f25013b7838f2f814f1ca7c174d295b73e3d6b7b":
        {"name": "vww_mobilenetv1_int8", "cmsis_nn": 24_025_560, "reference": 101_224_200, "arena": 100_708},
    "87cf24194ef93d1d9b11a591d805526b98008e351655d29883c825c9c106ba24":
        {"name": "ad_toycar_int8", "cmsis_nn": 583_240, "reference": 1_948_880, "arena": 2_580},
}


def bench_device(paths: list[str | Path], target: str, *, out_dir: str | Path = "build/bench", seed: int = 0,
                 progress: bool = False, layers: bool = False, bnn_mst: bool = False,
                 weights: tuple[str, ...] = ("auto",), board: str | None = None, open_board=None) -> dict:
    """Each model (or build folder) built for ``target`` and run once on its emulated board:
    instructions per inference (exact, deterministic), arena, flash and RAM from the ELF, the
    build's wall time (seconds: this machine's, not a figure to compare across machines);
    next to TFLite Micro's recorded figures where this exact model file has them. With
    ``layers``, also each layer's instructions (a second, profiled inference). With
    ``bnn_mst``, each model is built twice, without and with MST channel reuse ("+mst").
    ``weights``: each model built once per weights mode of edgert.passes.weight_format (with
    more than one, rows are labelled "[mode]"), e.g. ("int8", "auto"): as stored vs packed
    and sparse. ``board``: a board of the target other than its default; ``open_board``: a
    context manager factory, build -> edgert.device.board.Board running it (default: its
    emulated board, started for the run)."""
    from edgert.validate.on_device import profile_layers
    import hashlib

    from edgert.device.board import connect

    rows = []
    files = [Path(p) for p in paths if not Path(p).is_dir()]
    jobs = [(Path(p), False, weights[0]) for p in paths if Path(p).is_dir()]
    jobs += [(p, False, mode) for p in files for mode in weights]
    jobs += [(p, True, weights[0]) for p in files] if bnn_mst else []
    for path, mst, mode in jobs:
        label = (" +mst" if mst else "") + (f" [{mode}]" if len(weights) > 1 and not path.is_dir() else "")
        if path.is_dir():
            b = api.load_build(path)
        else:
            if progress:
                print(f"building {path.name} for {target}{label} ...", file=sys.stderr)
            suffix = ("-mst" if mst else "") + (f"-{mode}" if len(weights) > 1 else "")
            started = time.perf_counter()
            b = api.build(path, target, Path(out_dir) / f"{path.stem}-{Path(str(target)).stem}{suffix}", bnn_mst=mst,
                          weights=mode, board=board)
            build_s = time.perf_counter() - started
        inputs = _random_inputs(b.meta["io"]["inputs"], seed)
        with (open_board or (lambda b: connect(b, None)))(b) as dev:
            result = dev.session.run(inputs, b.meta["io"]["outputs"])
            latency, unit = dev.latency(result.ticks), dev.unit
            per_layer = profile_layers(b, dev, inputs) if layers else None
        mem = b.report["memory"]
        row = {"model": b.report["summary"]["model"] + label, "latency": latency, "unit": unit,
               "macs": b.report["summary"]["macs"], "arena": b.meta["arena_bytes"],
               "weight_bytes": b.report["summary"]["flash_const_bytes"],
               "flash": mem["flash"]["total"], "ram": mem["ram"]["total"]}
        row["macs_per_instruction"] = round(row["macs"] / latency, 3) if latency else 0.0
        if not path.is_dir():  # wall time of edgert build, compiling and linking included
            row["build_s"] = round(build_s, 1)
        if per_layer is not None:
            row["layers"] = per_layer
        base = TFLM_CORTEX_M7.get(hashlib.sha256(b.model_path.read_bytes()).hexdigest())
        if base and unit == "instructions" and b.target.name == "cortex-m7":
            row.update({"tflm_cmsis_nn": base["cmsis_nn"], "vs_cmsis_nn": round(latency / base["cmsis_nn"], 3),
                        "tflm_reference": base["reference"], "vs_tflm_reference": round(latency / base["reference"], 3),
                        "tflm_arena": base["arena"], "arena_vs_tflm": round(row["arena"] / base["arena"], 3)})
        rows.append(row)
    return {"target": str(target), "seed": seed, "models": rows}


def format_device(result: dict) -> str:
    rows = result["models"]
    unit = rows[0]["unit"] if rows else "instructions"
    cols = [("model", "model"), ("latency", unit), ("macs_per_instruction", "MACs/instr"),
            ("tflm_cmsis_nn", "TFLM+CMSIS-NN"), ("vs_cmsis_nn", "/ CMSIS-NN"),
            ("tflm_reference", "TFLM ref"), ("vs_tflm_reference", "/ TFLM ref"),
            ("arena", "arena B"), ("tflm_arena", "TFLM arena B"), ("arena_vs_tflm", "/ TFLM"),
            ("weight_bytes", "weights B"), ("flash", "flash B"), ("ram", "RAM B"), ("build_s", "build s")]
    cols = [c for c in cols if any(c[0] in r for r in rows)]  # TFLM figures exist for cortex-m7 only
    md = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "|".join("---" if k == "model" else "---:" for k, _ in cols) + "|"]
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k, "")
            cells.append(f"{v:,}" if isinstance(v, int) else (f"{v:.3g}" if isinstance(v, float) else str(v)))
        md.append("| " + " | ".join(cells) + " |")
    note = f"\n{result['target']}, emulated board, one inference of seeded input (seed {result['seed']})"
    if any("tflm_cmsis_nn" in r for r in rows):
        note += ("; TFLM columns are recorded figures for the same model files (see edgert/bench.py); "
                 "ratios below 1 mean edgert is smaller or faster")
    note += "."
    layer_rows = [(r["model"], lay) for r in rows for lay in r.get("layers", ())]
    if layer_rows:
        md_l = ["", f"| model | layer | source | {unit} | MACs (binary: bit ops) | MACs/instr |", "|---|---|---|---:|---:|---:|"]
        for model, lay in layer_rows:
            md_l.append(f"| {model} | {lay['layer']} | {lay['source']} | {lay['latency']:,} | {lay['macs']:,} | "
                        f"{lay['macs_per_unit']:.3g} |")
        note += "\n" + "\n".join(md_l)
    return "\n".join(md) + "\n" + note


def bench_labgrid(paths: list[str | Path], coordinator: str, tags: dict[str, str], *,
                  out_dir: str | Path = "build/bench", seed: int = 0, layers: bool = False, wait: float = 600.0,
                  timeout: float = 10.0, say=lambda line: None) -> list[dict]:
    """The device bench on each kind of board a labgrid farm has: the places matching ``tags``
    grouped by their target= and board= tags, one place of each kind held for its run; every
    model built for that target and board, put on the board (a power cycle into its
    bootloader and a flash over its serial port, where it runs another model), and benched
    as bench_device does. One result per kind, as bench_device returns, with "board"."""
    import contextlib

    from edgert.farm import places
    from edgert.farm.coordinator import Coordinator

    results = []
    with Coordinator(coordinator) as coord:
        kinds = sorted({(p.tags.get("target"), p.tags.get("board")) for p in coord.places(tags)}, key=str)
        if not kinds:
            raise UserError(f"no labgrid place at {coordinator} has the tags "
                            f"{' '.join(f'{k}={v}' for k, v in tags.items()) or '(any)'}",
                            "list them with `labgrid-client -x ADDRESS places -v`")
        for target, board in kinds:
            if target is None:
                say(f"skipping the places tagged board={board}: they have no target= tag to build for")
                continue
            kind = {**tags, "target": target, **({"board": board} if board else {})}
            with places.acquired(coord, kind, want=1, wait=wait, say=say) as (name,):
                say(f"{target} on {board}: place {name}")
                url, power = coord.serial_url(name), coord.power_port(name)
                emulated = next(p for p in coord.places() if p.name == name).tags.get(places.EMULATED_TAG) == "yes"

                @contextlib.contextmanager
                def open_place(build):
                    dev = places.open_board(build, name, url, emulated, None, power=power, timeout=timeout,
                                            invoke_timeout=120.0, trace=False, say=say)
                    try:
                        yield dev
                    finally:
                        dev.session.close()

                from edgert import targets

                mcu = targets.load(target).board is not None  # a Linux board's build names none
                result = bench_device(paths, target, out_dir=Path(out_dir) / f"{target}-{board}", seed=seed,
                                      layers=layers, board=board if mcu else None, open_board=open_place)
                results.append({**result, "board": board, "place": name})
    return results
