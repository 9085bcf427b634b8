"""Validation on the device: every sample through the board and through the reference
interpreter on the host, compared; latency and memory of the same run.

Metrics (per sample, then summarised):
  exact          every output byte equal to the reference's
  max_abs_diff   the largest |device - reference| over all outputs (in output units)
  top-1          argmax of the first output, the device's vs the reference's, and vs the
                 label where the dataset has one (accuracy)
Latency is the device's own timer around edgert_invoke, in instructions on the emulator
(exact: -icount shift=0), cycles on hardware. The per-layer table comes from one extra
profiled inference of the first sample (profiling adds two timer reads a layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgert.errors import DeviceError, UserError, ValidationFailed
from edgert.ops import BINARY_KINDS
from edgert.report import format_table
from edgert.validate.journal import FILE as JOURNAL_FILE, Journal

REFERENCES = ("auto", "tflm", "edgert")


def resolve_reference(build, name: str) -> str:
    """``auto``: TensorFlow Lite Micro where it can run the model (TFLite files without Larq
    Compute Engine ops); otherwise (ONNX models, LCE ops) edgert's numpy reference, which the
    test suite holds bit-exact to the LCE interpreter and to onnxruntime's integer semantics."""
    if name != "auto":
        return name
    kinds = set(build.meta.get("op_kinds", ()))
    tflite = str(build.meta.get("model_file", "")).endswith(".tflite")
    return "edgert" if kinds & BINARY_KINDS or not tflite else "tflm"


@dataclass(frozen=True)
class Thresholds:
    """What the device must meet; the defaults demand bit-exactness."""

    min_exact: float = 1.0        # fraction of samples bit-exact with the reference
    max_abs_diff: float = 0.0     # largest allowed |device - reference|
    min_top1: float = 0.0         # fraction of samples whose top-1 matches the reference's
    min_accuracy: float = 0.0     # fraction of labelled samples the device classifies right


def reference_runner(build, name: str) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    if name == "tflm" and not str(build.meta.get("model_file", "")).endswith(".tflite"):
        raise UserError(f"{build.dir}: TensorFlow Lite Micro runs TFLite models, and this build is of "
                        f"{build.meta.get('model_file')}", "use --reference edgert (or auto)")
    if name == "tflm" and set(build.meta.get("op_kinds", ())) & BINARY_KINDS:
        raise UserError(f"{build.dir}: TensorFlow Lite Micro cannot run this model's Larq Compute Engine ops",
                        "use --reference edgert (or auto), which is held bit-exact to the LCE interpreter")
    if name == "tflm":
        from edgert.validate.tflm_ref import run_tflm

        model = build.model_path.read_bytes()
        return lambda xs: run_tflm(model, xs)
    if name == "edgert":
        from edgert import api
        from edgert.ops import reference

        g = api.compile_model(build.model_path).graph
        return lambda xs: [v for k, v in reference.run(g, xs).items() if k in g.outputs]
    raise UserError(f"unknown reference {name!r}", f"choose one of: {', '.join(REFERENCES)}")


def _percentile(values: list[int], q: float) -> int:
    return int(np.percentile(np.array(values, dtype=np.float64), q, method="nearest")) if values else 0


SLOW_FACTOR = 1.2  # a board whose median latency is this much over the boards' median is flagged


@dataclass
class _Worker:
    """One board of a run and what it did."""

    name: str
    board: object                      # an edgert.device.board.Board
    done: int = 0
    dropped: dict | None = None        # {"after": samples done, "at": seconds into the run, "error": message}


def validate(build, boards, dataset, *, reference: str = "auto", progress: bool = True,
             resume: bool = False, journal_path: Path | None = None) -> dict:
    """Run ``dataset`` on ``boards`` and on the reference, and compare. ``boards``: one board
    (an edgert.device.board.Board) or a list of (name, Board) that share the samples, each
    taking the next one as it becomes free.

    Each sample is recorded in the journal (edgert.validate.journal; default
    BUILD/validation/journal.jsonl) as soon as it is checked; with ``resume`` the samples
    already there are taken from it and the rest run. A board that fails (a DeviceError) is
    dropped: its sample goes back to the queue for the others, and the report says which board
    dropped out, when and after how many samples. Only when every board has dropped out does
    the run stop, with a DeviceError that says how many samples are safe in the journal."""
    import threading
    import time

    from tqdm import tqdm

    workers = [_Worker(name, b) for name, b in boards] if isinstance(boards, list) else [_Worker("board", boards)]
    if not workers:
        raise UserError("no board to validate on", "give --port, or --labgrid with places that match")
    reference = resolve_reference(build, reference)
    ref = reference_runner(build, reference)
    outputs_spec = build.meta["io"]["outputs"]
    journal = Journal(journal_path or build.dir / "validation" / JOURNAL_FILE, build.meta["model_hash"], dataset,
                      resume=resume)
    queue = [i for i in range(len(dataset)) if i not in journal.rows][::-1]  # popped from the end: in order
    lock, ref_lock = threading.Condition(), threading.Lock()
    in_flight = [0]  # samples on a board now: one may come back to the queue if its board fails
    start = time.monotonic()
    bar = tqdm(total=len(queue), desc="validating", unit="sample", disable=not progress, leave=False)

    failures: list[BaseException] = []  # what is not a board dropping out ends the run, raised here

    def give_back(i: int) -> None:
        with lock:
            queue.append(i)  # redone by another board, or by --resume
            in_flight[0] -= 1
            lock.notify_all()

    def work(w: _Worker) -> None:
        while True:
            with lock:
                while not queue and in_flight[0] and not failures:
                    lock.wait()  # a sample still on another board may come back
                if not queue or failures:
                    return
                i = queue.pop()
                in_flight[0] += 1
            try:
                result = w.board.session.run(dataset.samples[i], outputs_spec)
                with ref_lock:  # one reference interpreter for all boards
                    row = _compare(result, ref(dataset.samples[i]), w.board, dataset, i)
            except DeviceError as e:
                w.dropped = {"after": w.done, "at": round(time.monotonic() - start, 1), "error": e.message,
                             "hint": e.hint}
                give_back(i)
                return
            except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
                failures.append(e)
                give_back(i)
                return
            with lock:
                journal.add(i, {**row, "board": w.name})
                w.done += 1
                in_flight[0] -= 1
                lock.notify_all()
                bar.update()

    try:
        if len(workers) == 1:
            work(workers[0])
        else:
            threads = [threading.Thread(target=work, args=(w,), name=w.name, daemon=True) for w in workers]
            for t in threads:
                t.start()
            try:
                for t in threads:
                    t.join()
            except KeyboardInterrupt as e:  # Ctrl-C: each board finishes its sample, the journal keeps it
                with lock:
                    failures.append(e)
                    lock.notify_all()
                for t in threads:
                    t.join()
        bar.close()
        if failures:
            raise failures[0]
        alive = [w for w in workers if w.dropped is None]
        if queue or not alive:
            raise _all_dropped(workers, journal, len(dataset))
        seconds = time.monotonic() - start  # the samples' wall time, the profiled inference not included
        layers = profile_layers(build, alive[0].board, dataset.samples[0]) if dataset.samples else []
    finally:
        journal.close()
    rows = [{k: v for k, v in journal.rows[i].items() if k != "index"} for i in range(len(dataset))]
    first = workers[0].board
    report = _report(build, first, rows, reference, journal.resumed, layers)
    ran = len(dataset) - journal.resumed
    report["summary"].update(link=_link_totals(workers), seconds=round(seconds, 3),
                             samples_per_second=round(ran / seconds, 2) if seconds > 0 else None)
    if len(workers) > 1:
        report["boards"] = _per_board(workers, rows)
    return report


def _all_dropped(workers: list[_Worker], journal: Journal, total: int) -> DeviceError:
    safe = (f"{len(journal.rows)} of {total} samples are checked and kept in {journal.path}: run the same "
            "command with --resume to do the rest")
    if len(workers) == 1:
        d = workers[0].dropped
        return DeviceError(d["error"], f"{d['hint']}; {safe}")
    lost = "; ".join(f"{w.name} after {w.dropped['after']} samples ({w.dropped['error']})" for w in workers)
    return DeviceError(f"every board dropped out: {lost}", safe)


def _link_totals(workers: list[_Worker]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for w in workers:
        for k, v in w.board.session.stats.summary().items():
            totals[k] = totals.get(k, 0) + v
    return totals


def _per_board(workers: list[_Worker], rows: list[dict]) -> list[dict]:
    """Each board's share of the run; a board much slower than its siblings is flagged."""
    out = []
    for w in workers:
        mine = [r for r in rows if r.get("board") == w.name]
        lat = [r["latency"] for r in mine]
        out.append({"board": w.name, "samples": len(mine),
                    "exact_rate": sum(r["exact"] for r in mine) / len(mine) if mine else None,
                    "latency_p50": _percentile(lat, 50), "latency_p90": _percentile(lat, 90),
                    "dropped": w.dropped, "slow": False})
    medians = [b["latency_p50"] for b in out if b["samples"]]
    typical = float(np.median(medians)) if medians else 0.0
    for b in out:
        b["slow"] = bool(b["samples"] and typical and b["latency_p50"] > SLOW_FACTOR * typical)
    return out


def _report(build, board, rows: list[dict], reference: str, resumed: int, layers: list[dict]) -> dict:
    latencies = [r["latency"] for r in rows]
    labelled = [r for r in rows if r["label"] is not None]
    n = len(rows)
    summary = {
        "samples": n,
        "reference": reference,
        "exact_rate": sum(r["exact"] for r in rows) / n if n else 0.0,
        "max_abs_diff": max((r["max_abs_diff"] for r in rows), default=0.0),
        "top1_agreement": sum(r["top1_device"] == r["top1_reference"] for r in rows) / n if n else 0.0,
        "labelled": len(labelled),
        "accuracy": (sum(r["top1_device"] == r["label"] for r in labelled) / len(labelled)) if labelled else None,
        "reference_accuracy": (sum(r["top1_reference"] == r["label"] for r in labelled) / len(labelled))
        if labelled else None,
        "latency_unit": board.unit,
        "latency_p50": _percentile(latencies, 50),
        "latency_p90": _percentile(latencies, 90),
        "latency_max": max(latencies, default=0),
        "resumed": resumed,
    }
    mem = build.report.get("memory", {})
    return {
        "model": build.report["summary"]["model"],
        "target": build.meta["target"],
        "board": build.meta.get("board"),
        "emulated": board.emulated,
        "model_hash": build.meta["model_hash"],
        "summary": summary,
        "memory": {"arena": build.meta["arena_bytes"], "flash": mem.get("flash"), "ram": mem.get("ram"),
                   "board_arena": board.hello.arena_bytes},
        "layers": layers,
        "samples": rows,
    }


def _compare(result, expected, board, dataset, i: int) -> dict:
    """Sample ``i``'s device result against the reference's outputs."""
    diff = max(float(np.max(np.abs(d.astype(np.float64) - np.asarray(e, dtype=np.float64).reshape(d.shape))))
               if d.size else 0.0 for d, e in zip(result.outputs, expected))
    exact = all(np.array_equal(d, np.asarray(e).reshape(d.shape)) for d, e in zip(result.outputs, expected))
    return {"sample": dataset.sources[i] if dataset.sources else str(i), "exact": exact,
            "max_abs_diff": diff, "top1_device": int(np.argmax(result.outputs[0].reshape(-1))),
            "top1_reference": int(np.argmax(np.asarray(expected[0]).reshape(-1))),
            "label": dataset.labels[i] if dataset.labels else None, "latency": board.latency(result.ticks)}


def profile_layers(build, board, inputs) -> list[dict]:
    """One profiled inference: each layer's latency, share, MACs and MACs per unit."""
    names = build.meta["kernels"]
    ticks = board.session.run(inputs, build.meta["io"]["outputs"], profile=True).layer_ticks
    by_name = {r["layer"]: r for r in build.report["layers"]}
    total = sum(ticks) or 1
    rows = []
    for name, t in zip(names, ticks):
        lat = board.latency(t)
        r = by_name.get(name, {})
        macs = r.get("macs", 0)
        rows.append({"layer": name, "source": r.get("source", ""), "latency": lat, "macs": macs,
                     "share": round(100.0 * t / total, 1),
                     "macs_per_unit": round(macs / lat, 3) if lat and macs else 0.0})
    return rows


def check(report: dict, t: Thresholds) -> None:
    """Raise ValidationFailed naming every threshold the report misses."""
    s = report["summary"]
    failed = []
    if s["exact_rate"] < t.min_exact:
        failed.append(f"bit-exact {s['exact_rate']:.1%} < --min-exact {t.min_exact:.1%}")
    if s["max_abs_diff"] > t.max_abs_diff:
        failed.append(f"max abs diff {s['max_abs_diff']:g} > --max-diff {t.max_abs_diff:g}")
    if s["top1_agreement"] < t.min_top1:
        failed.append(f"top-1 agreement {s['top1_agreement']:.1%} < --min-top1 {t.min_top1:.1%}")
    if s["accuracy"] is not None and s["accuracy"] < t.min_accuracy:
        failed.append(f"accuracy {s['accuracy']:.1%} < --min-accuracy {t.min_accuracy:.1%}")
    if failed:
        worst = [r["sample"] for r in report["samples"] if not r["exact"]][:5]
        raise ValidationFailed("the device disagrees with the reference: " + "; ".join(failed),
                               (f"first differing samples: {', '.join(worst)}; " if worst else "") +
                               "compare layer by layer with `edgert run BUILD --input SAMPLE` on a host build")


def format_report(report: dict) -> str:
    s, m = report["summary"], report["memory"]
    unit = s["latency_unit"]
    board = report["board"] or report["target"]
    where = f"emulated {board}" if report["emulated"] else board
    lines = [f"{report['model']} on {where}: {s['samples']} samples vs {s['reference'].upper()}", ""]
    lines.append(f"  bit-exact        {s['exact_rate']:.1%}   (max abs diff {s['max_abs_diff']:g})")
    lines.append(f"  top-1 agreement  {s['top1_agreement']:.1%}")
    if s["accuracy"] is not None:
        lines.append(f"  accuracy         {s['accuracy']:.1%} of {s['labelled']} labelled "
                     f"(reference {s['reference_accuracy']:.1%})")
    lines.append(f"  latency          p50 {s['latency_p50']:,}  p90 {s['latency_p90']:,}  max {s['latency_max']:,} {unit}")
    if s.get("resumed"):
        lines.append(f"  resumed          {s['resumed']:,} samples from the journal, {s['samples'] - s['resumed']:,} run now")
    link = s.get("link") or {}
    if any(link.values()):
        lines.append("  link faults      " + ", ".join(f"{v:,} {k}" for k, v in link.items() if v) + " (all survived)")
    if report.get("boards"):
        lines += ["", format_table(
            [{**b, "exact": "-" if b["exact_rate"] is None else f"{b['exact_rate']:.1%}",
              "note": _board_note(b)} for b in report["boards"]],
            [("board", "board"), ("samples", "samples"), ("exact", "bit-exact"), ("latency_p50", f"p50 {unit}"),
             ("latency_p90", f"p90 {unit}"), ("note", "")]), ""]
    flash, ram = m.get("flash") or {}, m.get("ram") or {}
    if flash:
        lines.append(f"  flash            {flash['total']:,} B (text {flash['text']:,}, rodata {flash['rodata']:,}, "
                     f"data {flash['data']:,})")
        stack = f", stack {ram['stack']:,}" if "stack" in ram else ""  # a Linux runner's stack is the OS's
        lines.append(f"  RAM              {ram['total']:,} B (arena {ram['arena']:,}, bss {ram['bss']:,}, "
                     f"data {ram['data']:,}{stack})")
    else:
        lines.append(f"  arena            {m['arena']:,} B")
    if report["layers"]:
        lines += ["", "per layer (one profiled inference):",
                  format_table(report["layers"], [("layer", "layer"), ("source", "source"), ("latency", unit),
                                                  ("share", "%"), ("macs_per_unit", f"MACs/{unit[:5]}")])]
    return "\n".join(lines)


def _board_note(b: dict) -> str:
    notes = []
    if b["dropped"]:
        d = b["dropped"]
        notes.append(f"dropped out {d['at']:g} s into the run, after {d['after']} samples: {d['error']}")
    if b["slow"]:
        notes.append(f"slow: median latency over {SLOW_FACTOR:g}x its siblings'")
    return "; ".join(notes)
