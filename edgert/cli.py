"""The edgert command line. The only place that prints for the user and exits.

Exit codes: 0 ok, 1 internal error (a bug: please report), 2 user error (bad model, option
or file), 3 device or transport error, 4 validation failed.
"""
from __future__ import annotations

import argparse
import math
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from edgert import flashing
from edgert.device.session import DEFAULT_INVOKE_TIMEOUT, DEFAULT_TIMEOUT
from edgert.errors import DeviceError, EdgertError, UserError

EXIT_OK, EXIT_BUG = 0, 1


def _parse_size(text: str) -> int:
    """'65536', '64k', '64KiB', '1M' -> bytes."""
    t = text.strip().lower().replace("ib", "").replace("b", "")
    mult = 1
    if t and t[-1] in "km":
        mult = 1024 if t[-1] == "k" else 1024 * 1024
        t = t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a byte count like 65536 or 64k, got {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive, finite byte count like 65536 or 64k, got {text!r}")
    return int(value)


# --------------------------------------------------------------------------- commands


def cmd_inspect(args) -> int:
    from edgert import api, report, targets

    compiled = api.compile_model(args.model)
    g, plan = compiled.graph, compiled.plan
    print(f"model {g.name}: {len(g.ops)} ops, {sum(1 for _ in g.constants())} constant tensors")
    for kind, names in (("input", g.inputs), ("output", g.outputs)):
        for n in names:
            print(f"  {kind} {n}: {g.tensor(n)}")
    print()
    print("tensors:")
    for t in g.tensors.values():
        q = ""
        if t.quant is not None:
            q = f"per-channel(axis {t.quant.axis}, {len(t.quant.scale)})" if t.quant.per_channel else \
                f"per-tensor(scale {t.quant.scale[0]:.6g}, zp {t.quant.zp})"
        role = "const" if t.is_const else "act"
        print(f"  {t.name:>6} {role:5} {t.dtype.short:4} {'x'.join(map(str, t.shape)) or 'scalar':>14}  "
              f"{t.nbytes:>9,} B  {q}")
    print()
    rows = report.layer_rows(g)
    print(report.format_table(rows, report.LAYER_COLUMNS))
    print()
    used = sorted({op.kind for op in g.ops})
    for name in targets.available():
        tgt = targets.load(name)
        missing = [k for k in used if k not in tgt.ops]
        print(f"target {tgt.name}: {'all ' + str(len(used)) + ' op kinds supported' if not missing else 'missing ' + ', '.join(missing)}")
    total_macs = sum(r["macs"] for r in rows)
    weights = sum(t.nbytes for t in g.constants())
    print(f"MACs {total_macs:,}; weight bytes {weights:,}; planned arena {plan.size:,} bytes")
    return EXIT_OK


def cmd_build(args) -> int:
    from edgert import api, report

    b = api.build(args.model, args.target, args.output, board=args.board, ram_limit=args.ram_limit,
                  bnn_mst=args.bnn_mst, weights=args.weights)
    rep = b.report
    print(report.format_table(rep["layers"], report.LAYER_COLUMNS))
    s = rep["summary"]
    print()
    print(f"built {s['model']} for {rep['target']} in {b.dir}/: {s['layers']} layers, {s['macs']:,} MACs, "
          f"flash (weights and tables) {s['flash_const_bytes']:,} bytes, arena {s['arena_bytes']:,} bytes")
    for layer, m in rep.get("mst", {}).items():
        saved = m["bitops_dense"] - m["bitops_mst"]
        how = (f"{m['centers']} of {m['channels']} channels in full, the rest from them (<= {m['bound']} words each)"
               if m["applied"] else "kept dense (reuse would not save work)")
        print(f"--bnn-mst {layer}: {how}; bit operations per output position {m['bitops_dense']:,} -> {m['bitops_mst']:,} "
              f"({saved:,} saved)")
    mem = rep.get("memory")
    if mem and "runner" in b.meta:
        f, r = mem["flash"], mem["ram"]
        linked = "static" if mem["static"] else "dynamic: libc, and the board's CUDA driver at run time"
        print(f"runner {b.dir / b.meta['runner']} ({mem['runner_bytes']:,} B, {linked}):")
        print(f"  code and constants {f['total']:,} B = text {f['text']:,} + rodata {f['rodata']:,} + data {f['data']:,}")
        print(f"  static RAM {r['total']:,} B = data {r['data']:,} + bss {r['bss']:,} + arena {r['arena']:,}")
    elif mem:
        f, r = mem["flash"], mem["ram"]
        print(f"firmware {b.dir / b.meta['firmware']} for board {mem['board']}:")
        print(f"  flash {f['total']:,} B = text {f['text']:,} + rodata {f['rodata']:,} + data {f['data']:,}")
        print(f"  RAM   {r['total']:,} B = data {r['data']:,} + bss {r['bss']:,} + arena {r['arena']:,} "
              f"+ stack {r['stack']:,}")
        for reg in mem["regions"]:
            print(f"  {reg['name']:6} {reg['used']:>10,} of {reg['length']:>10,} B used "
                  f"({100 * reg['used'] / reg['length']:.1f} %), {reg['free']:,} free")
    return EXIT_OK


def _load_inputs(path: str, specs: list[dict]) -> list[np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such input file", "pass a .npy file (or .npz with one array per input)")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError for bad files
        raise UserError(f"{path}: not a readable .npy/.npz file ({type(e).__name__})", "save it with numpy.save") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        arrays = [data[k] for k in data.files]
    else:
        arrays = [data]
    if len(arrays) != len(specs):
        raise UserError(f"{path} holds {len(arrays)} arrays, the model takes {len(specs)} inputs",
                        "pass one array per model input")
    return arrays


def _device_options(args) -> dict:
    return {"timeout": args.timeout, "trace": args.trace}


def _session_options(args) -> dict:
    """connect()'s options: the device options and the inference's own budget."""
    return {**_device_options(args), "invoke_timeout": args.invoke_timeout}


def cmd_run(args) -> int:
    from edgert import api

    b = api.load_build(args.build)
    inputs = _load_inputs(args.input, b.meta["io"]["inputs"])
    if b.target.kind == "host":
        outs = api.run(b, inputs)
    else:
        from edgert.device.board import connect

        with connect(b, args.port, **_session_options(args)) as board:
            result = board.session.run(inputs, b.meta["io"]["outputs"])
        outs = result.outputs
        print(f"latency {board.latency(result.ticks):,} {board.unit}", file=sys.stderr)
    if args.output:
        if len(outs) == 1:
            np.save(args.output, outs[0])
        else:
            np.savez(args.output, *outs)
        print(f"saved {len(outs)} output(s) to {args.output}")
    else:
        for spec, o in zip(b.meta["io"]["outputs"], outs):
            with np.printoptions(threshold=64, linewidth=100):
                print(f"{spec['name']} {o.dtype}{list(o.shape)}:\n{o}")
    return EXIT_OK


def cmd_flash(args) -> int:
    from edgert import api
    from edgert.device import board as boards

    b = api.load_build(args.build)
    if args.stop:
        stopped = boards.stop(b)
        print(f"stopped the emulated board of {b.dir}" if stopped else f"no emulated board was running for {b.dir}")
        return EXIT_OK
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not sys.stderr.isatty():
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc="flashing", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        result = flashing.flash(b, args.method, args.port, progress=progress, **_device_options(args),
                                **{name: getattr(args, name) for m in flashing.FLASHERS
                                   for name in flashing.flasher(m).OPTIONS})
    finally:
        if bar is not None:
            bar.close()
    model = b.report["summary"]["model"]
    stats = result.stats
    if stats is not None:
        print(f"flashed {stats.bytes_written:,} bytes by {result.method}"
              + (f", read back and verified, {stats.retries} retries" if result.method == "serial-stm32" else ""))
    running, hello = result.running, result.hello
    if hello is None:
        print(f"not checked: give --port to ask the board for its model, or run "
              f"`edgert flash {b.dir} --method none --port PORT`")
        return EXIT_OK
    if running is not None:
        print(f"emulated board {running.board} runs {model} ({b.dir / b.meta['firmware']})")
        print(f"  reachable at {running.url} (pid {running.pid}); `edgert run/validate {b.dir}` use it")
        print(f"  stop it with `edgert flash --stop {b.dir}`")
    else:
        print(f"the board at {args.port} runs {model}")
    print(f"  protocol v{hello.version}, model hash {hello.model_hash[:16]}…, arena {hello.arena_bytes:,} bytes, "
          f"clock {hello.clock_hz / 1e6:g} MHz, timer {hello.timer.name.lower()}")
    return EXIT_OK


def cmd_deploy(args) -> int:
    from edgert import api
    from edgert.device import deploy

    b = api.load_build(args.build)
    if args.forget:
        forgotten = deploy.forget(b)
        print(f"{b.dir} no longer names a board; run/validate/bench use the emulator" if forgotten
              else f"{b.dir} was not deployed")
        return EXIT_OK
    if not args.host:
        raise UserError("deploy needs --host USER@BOARD", "e.g. `edgert deploy build/kws --host pi@raspberrypi`")
    path, hello = deploy.deploy(b, args.host, identity=args.identity, ssh_options=args.ssh_option,
                                timeout=args.timeout)
    print(f"{args.host}:{path} runs {b.report['summary']['model']} "
          f"(protocol v{hello.version}, model hash {hello.model_hash[:16]}…, arena {hello.arena_bytes:,} bytes, "
          f"timer {hello.timer.name.lower()})")
    print(f"  `edgert run/validate/bench {b.dir}` start it over SSH; `edgert deploy --forget {b.dir}` undoes that")
    return EXIT_OK


def cmd_validate(args) -> int:
    from edgert import api
    from edgert.device.board import connect
    from edgert.validate import dataset as ds, on_device
    from edgert.validate.journal import FILE as JOURNAL_FILE

    b = api.load_build(args.build)
    specs = b.meta["io"]["inputs"]
    data = ds.load(args.dataset, specs) if args.dataset else ds.Dataset([], [], [])
    if args.labels:
        data.labels = ds.parse_labels(args.labels, len(data))
    n_random = args.random if args.random is not None else (0 if args.dataset else 20)
    extra = ds.random(specs, n_random, args.seed)
    data = ds.Dataset(data.samples + extra.samples, (data.labels or [None] * len(data)) + extra.labels,
                      (data.sources or [str(i) for i in range(len(data))]) + extra.sources)
    if not len(data):
        raise UserError("nothing to validate: the dataset is empty and --random is 0", "give --dataset or --random N")
    thresholds = on_device.Thresholds(args.min_exact, args.max_diff, args.min_top1, args.min_accuracy)
    out = Path(args.report) if args.report else b.dir / "validation" / "report.json"
    run = dict(reference=args.reference, progress=sys.stderr.isatty(), resume=args.resume,
               journal_path=out.parent / JOURNAL_FILE)
    if args.labgrid:
        if args.port:
            raise UserError("--port and --labgrid both name boards", "give one: --labgrid takes them from the farm")
        report = _validate_on_farm(b, data, args, run)
    else:
        with connect(b, args.port, **_session_options(args)) as board:
            report = on_device.validate(b, board, data, **run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(on_device.format_report(report))
    print(f"\nreport: {out}")
    on_device.check(report, thresholds)
    return EXIT_OK


def _validate_on_farm(b, data, args, run: dict) -> dict:
    """validate --labgrid: the samples sharded over the farm's boards (edgert.farm)."""
    from edgert.farm import places
    from edgert.farm.coordinator import Coordinator
    from edgert.validate import on_device

    say = _say
    tags = {**places.default_tags(b), **args.tags} if args.tags is not None else places.default_tags(b)
    with Coordinator(args.coordinator) as coord:
        want = args.boards if args.boards is not None else max(1, len(coord.places(tags)))
        with places.acquired(coord, tags, want=want, at_least=args.boards_min, wait=args.wait, say=say) as names:
            say(f"acquired {len(names)} place(s): {', '.join(names)}")
            with places.boards(b, coord, names, method=args.method, timeout=args.timeout,
                               invoke_timeout=args.invoke_timeout, trace=args.trace, say=say) as (ready, lost):
                for name, why in lost.items():
                    say(f"{name}: not used: {why}")
                if not ready:
                    raise DeviceError(f"none of the {len(names)} place(s) acquired could run {b.dir}",
                                      "the reasons are above")
                report = on_device.validate(b, ready, data, **run)
    report["farm"] = {"coordinator": args.coordinator, "tags": tags, "acquired": names, "not_used": lost}
    return report


def _tags(text: str) -> dict[str, str]:
    """--tags board=nucleo-f767zi,lab=2 -> {"board": "nucleo-f767zi", "lab": "2"}."""
    out = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise argparse.ArgumentTypeError(f"{item!r} is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _positive(text: str) -> int:
    v = _count(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return v


def cmd_farm_serve(args) -> int:
    import signal
    import time

    from edgert import api
    from edgert.farm.serve import Farm

    b = api.load_build(args.build)
    workdir = Path(args.workdir) if args.workdir else b.dir / "farm"
    with Farm(b, boards=args.boards, workdir=workdir, coordinator=args.coordinator, name=args.name,
              tags=args.tags, blank=args.blank) as farm:
        state = "blank, in the serial bootloader" if args.blank else f"running {b.report['summary']['model']}"
        print(f"labgrid coordinator {farm.address}: {len(farm.places)} emulated {b.meta.get('board') or b.meta['target']} "
              f"place(s), {state}")
        for place in farm.places:
            print(f"  {place} (pid {farm.pids[place]})")
        print(f"tags: {' '.join(f'{k}={v}' for k, v in farm.tags.items())}")
        print(f"try: edgert validate {b.dir} --labgrid --coordinator {farm.address} --random 100")
        print("serving until Ctrl-C", flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    print("farm stopped")
    return EXIT_OK


def _count(text: str) -> int:
    """A number of samples: an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative: give a number of samples, 0 or more")
    return v


def _parse_fraction(text: str) -> float:
    """'1%' -> 0.01, '0.01' -> 0.01."""
    try:
        v = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (1% or 0.01)") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 100 %")
    return v


def cmd_quantize(args) -> int:
    from edgert import quantize, report

    rep = quantize.quantize(args.model, args.output, calib=args.calib, max_drop=args.max_drop,
                            weights=args.weights, codebook=args.codebook)
    rows = rep["layers"]
    if "params" in rows[0]:
        for r in rows:
            r["sensitivity"] = rep.get("sensitivity", {}).get(r["weights"], "")
        print(report.format_table(rows, [("layer", "layer"), ("format", "weights"), ("params", "params"),
                                         ("bytes", "bytes"), ("sensitivity", "loss increase at low bits")]))
        print()
        metric = {"labels": "labels", "agreement": "top-1 agreement with the float model",
                  "reconstruction": "float model's reconstruction error / this one's"}[rep["calibration"]["metric"]]
        line = (f"accuracy on the calibration set ({rep['calibration']['samples']} samples, {metric}): "
                f"float {100 * rep['float_accuracy']:.2f} %")
        if "int8_accuracy" in rep:
            line += f", all int8 {100 * rep['int8_accuracy']:.2f} %"
        line += f", chosen {100 * rep['accuracy']:.2f} % (drop {100 * (rep['float_accuracy'] - rep['accuracy']):.2f} %"
        line += f", bound {100 * rep['max_drop']:.2f} %)" if "int8_accuracy" in rep else ")"
        print(line)
    else:
        print(report.format_table(rows, [("op", "operator #"), ("tensor", "weights"), ("format", "format")]))
    print(f"wrote {rep['output']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2, default=str) + "\n")
    return EXIT_OK


def cmd_bench(args) -> int:
    from edgert import bench, targets

    if args.labgrid:
        results = bench.bench_labgrid(args.paths, args.coordinator, args.tags or {}, out_dir=args.output,
                                      seed=args.seed, layers=args.layers, say=_say)
        for r in results:
            print(f"\n{r['target']} on {r['board']} (place {r['place']})")
            print(bench.format_device(r))
        result = {"kinds": results}
    elif args.target is None or targets.load(args.target).kind == "host":
        if len(args.paths) != 1:
            raise UserError("the host bench takes one build folder", "edgert bench BUILD (or --target cortex-m7 MODELS...)")
        result = bench.bench_host(args.paths[0], runs=args.runs, seed=args.seed)
        print(bench.format_host(result))
    else:
        result = bench.bench_device(args.paths, args.target, out_dir=args.output, seed=args.seed,
                                    progress=sys.stderr.isatty(), layers=args.layers, bnn_mst=args.bnn_mst,
                                    weights=tuple(args.weights.split(",")))
        print(bench.format_device(result))
    if args.json:  # with the command that measured it, so a recorded figure can be measured again
        Path(args.json).write_text(json.dumps({"command": args.command_line, **result}, indent=2) + "\n")
    return EXIT_OK


def cmd_targets(args) -> int:
    from edgert import targets
    from edgert.backends import backend
    from edgert.ops import REGISTRY

    if args.markdown:
        from edgert import support

        print(support.markdown())
        return EXIT_OK

    for name in targets.available():
        t = targets.load(name)
        print(f"{t.name:16} {t.kind:9} {t.description}")
        for line in backend(t.kind).describe(t):
            print(f"{'':16} {line}")
        ops = t.ops
        if ops == frozenset(REGISTRY):
            print(f"{'':16} ops: all {len(ops)} kinds")
        else:
            print(f"{'':16} ops: {len(ops)} of {len(REGISTRY)} kinds: {', '.join(sorted(ops))}")
    print(f"\nop kinds (edgert.ops): {', '.join(sorted(REGISTRY))}")
    return EXIT_OK


def cmd_export(args) -> int:
    from edgert import api, export

    b = api.load_build(args.build)
    out = export.export_platformio(b, Path(args.output))
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    print(f"PlatformIO project for {b.target.board.name} in {out}/ ({len(files)} files)")
    print(f"  build and upload: cd {out} && pio run -t upload")
    print(f"  then: edgert validate {b.dir} --port <the board's serial port>")
    return EXIT_OK


def cmd_doctor(args) -> int:
    from edgert import doctor

    checks = doctor.run_checks()
    print(doctor.format_checks(checks))
    return EXIT_OK if all(c.found for c in checks if c.required) else 2


# --------------------------------------------------------------------------- parser


def _add_device_args(s) -> None:
    s.add_argument("--port", help="the board's serial port (/dev/ttyACM0) or URL (socket://host:port); "
                                  "default: the emulated board")
    s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds a request may take, its retries on a faulty link included (default {DEFAULT_TIMEOUT:g})")
    s.add_argument("--invoke-timeout", type=float, default=DEFAULT_INVOKE_TIMEOUT,
                   help=f"seconds one inference may take (default {DEFAULT_INVOKE_TIMEOUT:g}); later inferences "
                        "are retried sooner, after four times the slowest so far")
    s.add_argument("--trace", action="store_true", help="hex dump every frame, and every fault survived, to stderr")


def _add_labgrid_args(s, what: str, tags_help: str) -> None:
    """--labgrid, --coordinator and --tags, for the commands that take boards from a farm."""
    from edgert.farm.coordinator import DEFAULT_ADDRESS

    s.add_argument("--labgrid", action="store_true", help=what)
    s.add_argument("--coordinator", default=DEFAULT_ADDRESS, metavar="HOST:PORT",
                   help=f"with --labgrid: the labgrid coordinator (default {DEFAULT_ADDRESS})")
    s.add_argument("--tags", type=_tags, default=None, metavar="KEY=VALUE[,...]", help=tags_help)


def _say(line: str) -> None:
    """A progress line of a long device command, on stderr."""
    print(line, file=sys.stderr, flush=True)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from edgert import doctor

        print(doctor.versions())
        parser.exit()


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgert", description="Compile compressed neural networks for small devices.")
    p.add_argument("--version", action=_VersionAction, help="edgert's version and those of TVM, the toolchains "
                                                             "and the emulators it finds")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="show a model's ops, tensors, MACs and planned arena")
    s.add_argument("model")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("build", help="compile a model for a target")
    s.add_argument("model")
    s.add_argument("--target", default="host", help="target name (see `edgert targets`)")
    s.add_argument("--board", help="a board of that target (nucleo-f767zi, ... see `edgert targets`) or a board "
                                   ".toml; default: the target's own")
    s.add_argument("-o", "--output", default="build", help="output folder (default: build)")
    s.add_argument("--ram-limit", type=_parse_size, default=None, help="refuse an arena larger than this (bytes, 64k, 1M)")
    s.add_argument("--bnn-mst", action="store_true",
                   help="binary convolutions compute channels from similar channels' results (MST channel reuse)")
    s.add_argument("--weights", choices=("auto", "dense", "int8"), default="auto",
                   help="int8 layers' weights in flash: auto (sparse where it saves flash and estimated work; "
                        "dense ones on Cortex-M in their smallest exact format: int8, int4 or codebook, on SIMD CPUs "
                        "and GPUs int8), dense (smallest exact format, never sparse), int8 (as the model stores them, "
                        "pruned channels kept)")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("quantize", help="post-training quantization with per-layer int8/int4 (or codebook) weights")
    s.add_argument("model", help="a float .onnx model, or an int8 .tflite model (for int4 or codebook weights)")
    s.add_argument("-o", "--output", required=True, help="the quantized model (.onnx for ONNX input, .tflite for TFLite)")
    s.add_argument("--calib", help="calibration samples (.npz: x in the model's input layout, labels y; without "
                                    "labels, agreement with the float model, or for an autoencoder its reconstruction error)")
    s.add_argument("--max-drop", type=_parse_fraction, default=0.01,
                   help="largest accuracy drop allowed on the calibration set, vs the float model (default 1%%)")
    s.add_argument("--weights", choices=("mixed", "int8", "int4"), default="mixed",
                   help="mixed: int8 or low-bit per layer within --max-drop (float ONNX); int8; int4: every "
                        "layer low-bit (int4, or the codebook of --codebook)")
    s.add_argument("--codebook", type=int, choices=(2, 4), help="low-bit layers as codebooks of 2**K levels instead of int4")
    s.add_argument("--json", help="also write the report to this file")
    s.set_defaults(func=cmd_quantize)

    s = sub.add_parser("run", help="run one inference of a build (on its board for a board target)")
    s.add_argument("build")
    s.add_argument("--input", required=True, help=".npy file (or .npz, one array per input)")
    s.add_argument("--output", help="save outputs to this .npy/.npz instead of printing them")
    _add_device_args(s)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("flash", help="put a build's firmware on its board (emulated, serial bootloader, SMP, probe)")
    s.add_argument("build")
    _add_device_args(s)
    s.add_argument("--method", choices=tuple(flashing.FLASHERS),
                   help="how to program the board (default: the first its profile lists that fits; "
                        "qemu for the emulated board without --port)")
    flashing.add_args(s)
    s.add_argument("--stop", action="store_true", help="stop the emulated board started for this build")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("deploy", help="copy a Linux board build's runner to the board over SSH and check it")
    s.add_argument("build")
    s.add_argument("--host", help="the board: [user@]host, or a Host of ~/.ssh/config")
    s.add_argument("--identity", "-i", help="SSH private key (default: ssh's own choice)")
    s.add_argument("--ssh-option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="an ssh -o option, e.g. -o Port=2222 (repeatable)")
    s.add_argument("--timeout", type=float, default=None, help="seconds to wait for the runner's answer")
    s.add_argument("--forget", action="store_true", help="drop the deployment record: run/validate use the emulator")
    s.set_defaults(func=cmd_deploy)

    s = sub.add_parser("validate", help="run samples on the device and compare with the reference interpreter")
    s.add_argument("build")
    s.add_argument("--dataset", help=".npz (x, optional y), .npy, or a folder of .npy samples")
    s.add_argument("--labels", help="class index per dataset sample: a .npy, or a list like 5,3,1")
    s.add_argument("--random", type=_count, default=None,
                   help="add N seeded random inputs (default: 20 without --dataset, else 0)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    s.add_argument("--reference", default="auto", choices=["auto", "tflm", "edgert"],
                   help="reference interpreter: TFLite Micro, or edgert's numpy reference; auto (default): "
                        "TFLite Micro unless the model has Larq Compute Engine ops")
    s.add_argument("--min-exact", type=float, default=1.0, help="fraction of samples that must be bit-exact (default 1)")
    s.add_argument("--max-diff", type=float, default=0.0, help="largest allowed |device - reference| (default 0)")
    s.add_argument("--min-top1", type=float, default=0.0, help="fraction whose top-1 must match the reference's")
    s.add_argument("--min-accuracy", type=float, default=0.0, help="accuracy the labelled samples must reach")
    s.add_argument("--report", help="where to write the JSON report (default BUILD/validation/report.json); "
                                    "the journal of checked samples is written beside it")
    s.add_argument("--resume", action="store_true",
                   help="continue a run that stopped: samples in the journal are not run again")
    _add_device_args(s)
    farm = s.add_argument_group("a board farm (labgrid)")
    _add_labgrid_args(farm, "take boards from a labgrid coordinator and share the samples among them",
                      "the places to use (default: board=<the build's board>)")
    farm.add_argument("--boards", type=_positive, default=None, metavar="N",
                      help="use up to N places (default: every matching one)")
    farm.add_argument("--boards-min", type=_positive, default=1, metavar="M",
                      help="wait while fewer than M places are free (default 1)")
    farm.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                      help="how long to wait for --boards-min places (default 600)")
    farm.add_argument("--method", choices=("serial-stm32", "smp", "none"), default=None,
                      help="how to put the build on a place's board that runs another model (default: its "
                           "board's first serial method; none: use only boards that already run it)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("farm", help="emulated boards as labgrid places, to try a board farm without hardware")
    farm_sub = s.add_subparsers(dest="farm_command", required=True)
    s = farm_sub.add_parser("serve", help="start emulated boards, export them to a labgrid coordinator, serve "
                                          "until Ctrl-C")
    s.add_argument("build", help="a Cortex-M or Raspberry Pi build: the boards run it")
    s.add_argument("--boards", type=_positive, default=2, help="how many boards (default 2)")
    s.add_argument("--coordinator", metavar="HOST:PORT",
                   help="a running labgrid coordinator (default: start one on a free loopback port)")
    s.add_argument("--name", default="edgert", help="the exporter's name and the places' prefix (default edgert)")
    s.add_argument("--tags", type=_tags, default=None, metavar="KEY=VALUE[,...]",
                   help="more tags for the places (they get target=, board= and emulated=yes)")
    s.add_argument("--blank", action="store_true",
                   help="Cortex-M: start the boards in the serial bootloader, for validate --labgrid to flash")
    s.add_argument("--workdir", help="where the boards' and labgrid's files go (default BUILD/farm)")
    s.set_defaults(func=cmd_farm_serve)

    s = sub.add_parser("bench", help="latency and memory: a host build against TFLite and TFLite Micro, "
                                     "or models on a board target (instructions, arena, flash)")
    s.add_argument("paths", nargs="+", metavar="BUILD|MODEL",
                   help="a host build folder; with --target, models (.tflite) or build folders")
    s.add_argument("--target", help="a board target (cortex-m7, ...): build each model and run it on the board")
    s.add_argument("-o", "--output", default="build/bench", help="where --target builds go (default build/bench)")
    s.add_argument("--layers", action="store_true", help="with --target: also each layer's instructions")
    s.add_argument("--bnn-mst", action="store_true",
                   help="with --target: each model also built with MST channel reuse, side by side")
    s.add_argument("--weights", default="auto", metavar="MODE[,MODE...]",
                   help="with --target: build each model once per weights mode (auto, dense, int8; see `edgert "
                        "build --weights`), side by side: e.g. int8,auto")
    s.add_argument("--runs", type=int, default=50, help="timed inferences per engine on the host (default 50)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", help="also write the results, with this command line, to this file "
                                   "(benchmarks/*.json hold the figures the README quotes)")
    _add_labgrid_args(s, "models on every kind of board of a labgrid farm, one table a kind (see validate --labgrid)",
                      "with --labgrid: only places with these tags")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("targets", help="list targets and their boards")
    s.add_argument("--markdown", action="store_true",
                   help="print what edgert compiles (ops read per model format, op kinds per target) as "
                        "the README's Supported tables")
    s.set_defaults(func=cmd_targets)

    s = sub.add_parser("export", help="export a board build as a PlatformIO project")
    s.add_argument("build")
    s.add_argument("--platformio", action="store_true", required=True,
                   help="the project format (PlatformIO is the one there is)")
    s.add_argument("-o", "--output", required=True, help="the project folder to write")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("doctor", help="list serial ports, probes, toolchains and emulators, and what is missing")
    s.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = make_parser().parse_args(argv)
    args.command_line = shlex.join(["edgert", *argv])  # recorded with --json results
    try:
        return args.func(args)
    except EdgertError as e:
        print(f"edgert: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"edgert: hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgert: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`edgert ... | head`): nothing left to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # anything but an EdgertError is a bug in edgert, never the user's input
        import os
        import traceback

        if os.environ.get("EDGERT_TRACEBACK"):
            traceback.print_exc()
        frame = traceback.extract_tb(e.__traceback__)[-1]
        print(f"edgert: internal error: {type(e).__name__}: {e} (at {Path(frame.filename).name}:{frame.lineno})",
              file=sys.stderr)
        print(f"edgert: hint: this is a bug in edgert, not in your input; please report it with the command "
              f"that shows it, `{args.command_line}` (EDGERT_TRACEBACK=1 prints the traceback)", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
