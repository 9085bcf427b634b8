"""The library entry points: each step takes files or artifacts and returns a typed artifact.

    compile_model(path)            -> Compiled   (graph after passes + arena plan)
    build(path, target, out_dir)   -> Build      (sources, report.json, compiled binary)
    load_build(out_dir)            -> Build
    run(build, inputs)             -> outputs

Everything raises edgert.errors.EdgertError subclasses; nothing here exits the process.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgert import passes, report, targets
from edgert.errors import ResourceError, UserError
from edgert.ir import Graph, format_graph, verify
from edgert.plan.arena import ArenaPlan, plan as plan_arena

BUILD_FORMAT = 2  # version of build/meta.json


@dataclass
class Compiled:
    graph: Graph
    plan: ArenaPlan
    weight_rows: list[dict]  # how each int8 layer stores its weights (passes.weight_format)


@dataclass
class Build:
    dir: Path
    meta: dict

    @property
    def target(self) -> targets.Target:
        return targets.load(self.meta["target"], self.meta.get("board_ref"))

    @property
    def report(self) -> dict:
        return json.loads((self.dir / "report.json").read_text())

    @property
    def model_path(self) -> Path:
        return self.dir / self.meta["model_file"]


def load_graph(path: str | Path) -> Graph:
    """The model file's graph, before the passes (edgert.frontends)."""
    from edgert import frontends

    return frontends.load(path)


def compile_model(path: str | Path, *, weights: str = "int8", simd: bool = False, dsp: bool = False) -> Compiled:
    """The model's graph after the pass pipeline, its weight formats chosen (``weights``: a mode
    of passes.weight_format, which may add padding ops; "int8", the weights as the model stores
    them, also keeps pruned channels; ``simd``: by the cost estimate of vectorized kernels, not
    of scalar ones), and its arena plan. ``dsp``: for a CPU with the DSP extension, by the costs
    of the DSP form, whose int8 dot products need their padding explicit (passes.padding)."""
    from edgert.passes import padding, weight_format

    if weights not in weight_format.MODES:
        raise UserError(f"unknown weights mode {weights!r}", "one of: " + ", ".join(weight_format.MODES))
    g = passes.run_pipeline(load_graph(path), prune=weights != "int8")
    costs = weight_format.SIMD if simd else weight_format.DSP if dsp else weight_format.SCALAR
    rows = weight_format.run(g, weights, costs)
    if dsp:
        padding.run(g)
    verify(g)
    return Compiled(graph=g, plan=plan_arena(g), weight_rows=rows)


def io_spec(g: Graph) -> dict:
    def spec(name):
        t = g.tensor(name)
        q = {"scale": float(t.quant.scale[0]), "zero_point": t.quant.zp} if t.quant is not None else None
        return {"name": name, "shape": list(t.shape), "dtype": t.dtype.np_name, "quant": q}

    return {"inputs": [spec(n) for n in g.inputs], "outputs": [spec(n) for n in g.outputs]}


def build(model: str | Path, target: str | Path = "host", out_dir: str | Path = "build",
          *, board: str | Path | None = None, ram_limit: int | None = None, bnn_mst: bool = False,
          weights: str = "auto") -> Build:
    """Compile ``model`` for ``target`` (a name or a target .toml) into ``out_dir``, for the
    target's default board or ``board`` (a name or board .toml); refuse an arena over
    ``ram_limit``, and for a board, an image over the board's memory. ``bnn_mst``: binary
    convolutions reuse other channels' results where that saves work (edgert.passes.mst).
    ``weights``: how int8 layers store their weights, one of passes.weight_format.MODES."""
    from edgert.backends import backend
    from edgert.codegen import lower, model_c
    from edgert.codegen.emit import emit_kernels, kernel_files

    tgt = targets.load(target, board)
    model = Path(model)
    be = backend(tgt.kind)
    policy = be.policy(tgt)
    compiled = compile_model(model, weights=weights, simd=policy.simd_costs, dsp=policy.dsp)
    g, p = compiled.graph, compiled.plan
    op_kinds = sorted({op.kind for op in g.ops})
    targets.check_ops(tgt, op_kinds)
    if ram_limit is not None and p.size > ram_limit:
        raise ResourceError(
            f"the arena needs {p.size:,} bytes, {p.size - ram_limit:,} bytes over --ram-limit {ram_limit:,}",
            "raise --ram-limit, or use a smaller model or input resolution",
        )
    mst_rows = None
    if bnn_mst:
        from edgert.passes import mst

        mst_rows = mst.run(g, policy.mst_entry_cost)
    lowered = lower.lower(g, p, policy)
    funcs = {k.name: k.func for k in lowered.kernels}
    kernels = emit_kernels(funcs, policy, aliased={k.name for k in lowered.kernels if k.in_place})
    sources = model_c.emit(g, p, lowered, kernels)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.c").write_text(sources.model_c)
    (out / "model.h").write_text(sources.model_h)
    for name, data in kernel_files(policy, kernels).items():
        if isinstance(data, bytes):
            (out / name).write_bytes(data)
        else:
            (out / name).write_text(data)
    (out / "weights.c").write_text(sources.weights_c)
    (out / "graph.txt").write_text(format_graph(g))
    model_file = "model" + model.suffix.lower()
    if model.resolve() != (out / model_file).resolve():
        shutil.copyfile(model, out / model_file)

    const_bytes: dict[str, int] = {}
    for k in lowered.kernels:
        const_bytes[k.op.name] = sum(int(lowered.consts[a.name].nbytes) for a in k.args if a.kind == "const")
    rows = report.layer_rows(g, const_bytes)
    rep = {
        "target": tgt.name,
        "summary": report.summary(g, p, rows, sources.flash_const_bytes),
        "layers": rows,
        "model_hash": model_c.model_hash(g, lowered),
    }
    if mst_rows is not None:
        rep["mst"] = mst_rows
    if compiled.weight_rows:
        rep["weights"] = compiled.weight_rows
    target_ref = tgt.name if Path(str(target)).suffix != ".toml" else str(tgt.path)
    meta = {"format": BUILD_FORMAT, "target": target_ref, "model_file": model_file, "io": io_spec(g),
            "model_hash": rep["model_hash"], "arena_bytes": p.size,
            "kernels": [k.op.name for k in lowered.kernels],  # the device's layer order
            "op_kinds": op_kinds}
    if board is not None:  # how Build.target finds the board again
        meta["board_ref"] = str(board) if Path(str(board)).suffix != ".toml" else str(Path(board).resolve())
    rep.update(be.build(out, tgt, meta, kernels))
    (out / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Build(dir=out, meta=meta)


def load_build(build_dir: str | Path) -> Build:
    d = Path(build_dir)
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise UserError(f"{d}: not an edgert build folder (no meta.json)", "run `edgert build MODEL -o DIR` first")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != BUILD_FORMAT:
        raise UserError(f"{d}: built by another edgert version (format {meta.get('format')})", "rebuild it")
    return Build(dir=d, meta=meta)


def host_model(b: Build):
    from edgert.backends import host

    if b.target.kind != "host":
        raise UserError(f"{b.dir} was built for {b.meta['target']}, not the host",
                        "rebuild with --target host to run it here")
    lib = b.dir / host.LIBRARY
    if not lib.is_file():
        host.compile_library(b.dir, b.target)
    return host.HostModel(lib, b.meta["io"])


def run(b: Build, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return host_model(b).run(inputs)
