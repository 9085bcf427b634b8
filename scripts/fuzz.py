#!/usr/bin/env python3
"""Coverage-guided fuzzers, each run for a number of executions or seconds:

    .venv/bin/python scripts/fuzz.py firmware --runs 10000000    the firmware's frame parser and
                                                                   dispatcher (libFuzzer, ASan, UBSan)
    .venv/bin/python scripts/fuzz.py loaders --runs 1000000      the TFLite and ONNX model loaders
                                                                   and the passes after them (atheris)

`firmware` builds tests/fuzz/server_fuzz.c with Debian's clang (-fsanitize=fuzzer,address,
undefined, every sanitizer report fatal) around server.c, framing.c and the TFLite Micro
hello_world model compiled for the host, and starts from the corpus in
tests/fixtures/fuzz/server/. `loaders` mutates the bundled models' bytes (seeds: the
hello_world and AD models, an int8 QDQ ONNX model) and fails on any exception that is not an
EdgertError. Both print one line: executions, seconds, and what they found; a finding is
written under build/fuzz/ and ends the run with exit 1.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "fuzz"
SERVER_CORPUS = REPO / "tests" / "fixtures" / "fuzz" / "server"
LOADER_SEEDS = (REPO / "models" / "tflm" / "hello_world_int8.tflite",
                REPO / "models" / "mlperf_tiny" / "ad_toycar_int8.tflite",
                REPO / "tests" / "fixtures" / "pruned" / "torch_digits_dense_qdq.onnx")
SANITIZERS = "fuzzer,address,undefined"


# --------------------------------------------------------------------------- firmware


def build_server_fuzzer(work: Path = WORK, server: Path | None = None) -> Path:
    """The libFuzzer binary for the firmware's server (``server``: another server.c, for the
    test that shows the harness catches a broken one), built in ``work``."""
    from edgert import api
    from edgert.backends import cortex_m
    from edgert.backends.toolchain import tool

    build = api.build(REPO / "models" / "tflm" / "hello_world_int8.tflite", "host", work / "hello")
    desc = build.dir / "model_desc_fuzz.c"
    desc.write_text(cortex_m.model_desc_c(build.meta))
    rt = cortex_m.runtime_dir()
    out = work / "server_fuzz"
    cmd = [tool("clang", "clang"), "-g", "-O1", "-std=c99", f"-fsanitize={SANITIZERS}",
           "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", f"-I{build.dir}", f"-I{rt}",
           *cortex_m.HOOK_FLAGS, *(str(build.dir / s) for s in cortex_m.MODEL_SOURCES), str(desc),
           str(server or rt / "server.c"), str(rt / "framing.c"), str(REPO / "tests" / "fuzz" / "server_fuzz.c"),
           "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building the fuzzer failed:\n{proc.stderr[-3000:]}\nthe command was: {' '.join(cmd)}")
    return out


def fuzz_firmware(runs: int | None, seconds: int | None, work: Path = WORK) -> dict:
    """Run the server fuzzer from the committed corpus; see _run for what it returns."""
    binary = build_server_fuzzer(work)
    env = {**os.environ, "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    return _run("server", [str(binary)], sorted(SERVER_CORPUS.iterdir()), work, runs, seconds, max_len=4096, env=env)


def _run(name: str, argv: list[str], seeds, work: Path, runs: int | None, seconds: int | None, *, max_len: int,
         env: dict | None = None) -> dict:
    """One libFuzzer run (a libFuzzer binary, or atheris, which takes libFuzzer's flags) over
    work/<name>-corpus, seeded with ``seeds``, its output in work/<name>-fuzz.log as it goes.
    Returns {"runs": executions, "seconds", "crashes": the files of inputs that failed, "log"}."""
    corpus, findings, log_path = work / f"{name}-corpus", work / f"{name}-findings", work / f"{name}-fuzz.log"
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(exist_ok=True)
    for seed in seeds:
        shutil.copy(seed, corpus / seed.name)
    limit = [f"-runs={runs}"] if runs is not None else [f"-max_total_time={seconds}"]
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.run([*argv, *limit, f"-max_len={max_len}", "-print_final_stats=1",
                               f"-artifact_prefix={findings}/", str(corpus)],
                              stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    took = time.monotonic() - start
    text = log_path.read_text(errors="replace")
    done = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    # libFuzzer's artifacts: crash-, leak-, timeout-, oom- are findings; slow-unit- only says
    # that an input took over 10 s (a loaded or paused machine), not that anything failed
    crashes = sorted(p.name for p in findings.iterdir() if not p.name.startswith("slow-unit-"))
    if proc.returncode != 0 and not crashes:
        crashes = [f"{argv[0]} exited {proc.returncode}: see {log_path}"]
    return {"runs": int(done.group(1)) if done else 0, "seconds": took, "crashes": crashes, "log": text}


def write_server_seeds(folder: Path = SERVER_CORPUS) -> list[Path]:
    """The seed corpus: a whole session (HELLO, SET_INPUT, INVOKE plain and profiled,
    GET_OUTPUT, GET_LAYERS), a retried and a stale request, and the malformed frames the
    device tests send, in the harness's record format (server_fuzz.c)."""
    import struct

    from edgert.device import protocol as P

    def framed(cmd, seq, payload=b""):
        body = P.HEADER.pack(cmd, seq, len(payload)) + payload
        return struct.pack("<BH", 1, len(body)) + body

    def raw(wire):
        return struct.pack("<BH", 0, len(wire)) + wire

    hello = framed(P.Cmd.HELLO, 1, P.HELLO_REQ.pack(P.PROTOCOL_VERSION))
    set_input = framed(P.Cmd.SET_INPUT, 2, P.SET_INPUT_REQ.pack(0, 0) + b"\x40")
    invoke = framed(P.Cmd.INVOKE, 3, P.INVOKE_REQ.pack(0))
    seeds = {
        "session": hello + set_input + invoke + framed(P.Cmd.GET_OUTPUT, 4, P.GET_OUTPUT_REQ.pack(0, 1, 0)),
        "profiled": hello + set_input + framed(P.Cmd.INVOKE, 3, P.INVOKE_REQ.pack(P.INVOKE_PROFILE))
                    + framed(P.Cmd.GET_LAYERS, 4, P.GET_LAYERS_REQ.pack(0, 3)),
        "retried and stale": hello + set_input + set_input + invoke + set_input,
        "not synced": set_input + invoke,
        "bad crc": struct.pack("<BH", 3, P.HEADER.size + 2) + P.HEADER.pack(P.Cmd.HELLO, 1, 2) + b"\x03\x00",
    }
    sys.path.insert(0, str(REPO))
    from tests.device.malformed import CASES

    for name, (wire, _) in CASES.items():
        seeds[f"malformed {name}"] = hello + raw(wire[:-1] if wire.endswith(b"\x00") else wire)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in seeds.items():
        path = folder / ("seed-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
        path.write_bytes(data)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- loaders


def _load_or_refuse(path: Path) -> None:
    """What the fuzzer checks: a model file either compiles or is refused with an EdgertError."""
    from edgert import api
    from edgert.errors import EdgertError

    try:
        api.compile_model(path)
    except EdgertError:
        pass


def fuzz_loaders(runs: int | None, seconds: int | None, work: Path = WORK) -> dict:
    """Run atheris over the loaders, in a child process (atheris takes the process over); see
    _run for what it returns."""
    return _run("loader", [sys.executable, __file__, "_loaders-child"], LOADER_SEEDS, work, runs, seconds,
                max_len=65536)


def _loaders_child(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["edgert"]):
        import edgert.api  # noqa: F401 - instrumented for coverage
        import edgert.frontends.onnx  # noqa: F401
        import edgert.frontends.tflite  # noqa: F401
    tmp = Path(tempfile.mkdtemp(prefix="edgert-fuzz-"))

    def one(data: bytes) -> None:
        # The seeds' own formats decide the suffix, so both loaders see their own files' mutants.
        path = tmp / ("m.onnx" if data[4:8] != b"TFL3" else "m.tflite")
        path.write_bytes(data)
        _load_or_refuse(path)

    import warnings

    warnings.simplefilter("ignore")  # numpy's warnings on damaged scales: the refusal is what counts
    atheris.Setup([sys.argv[0], *argv], one)
    atheris.Fuzz()


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_loaders-child"]:
        _loaders_child(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["firmware", "loaders", "seeds"],
                   help="which fuzzer (seeds: rewrite the firmware fuzzer's seed corpus)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, help="executions to run")
    budget.add_argument("--seconds", type=int, default=60, help="seconds to run (default 60)")
    args = p.parse_args(argv)
    if args.what == "seeds":
        for path in write_server_seeds():
            print(path.relative_to(REPO))
        return 0
    runs = args.runs
    seconds = None if runs is not None else args.seconds
    result = (fuzz_firmware if args.what == "firmware" else fuzz_loaders)(runs, seconds)
    found = f"{len(result['crashes'])} findings: {', '.join(result['crashes'])}" if result["crashes"] else "0 findings"
    print(f"{args.what}: {result['runs']:,} executions in {result['seconds']:.0f} s, {found}")
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
