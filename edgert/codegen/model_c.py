"""Emit model.c / model.h: constants in flash, one static arena, and edgert_invoke() that
calls the generated kernels in order with pointers into the arena.

The generated C is freestanding (stdint/stddef/math only) and is the same for every target:
targets differ only in how they compile and link it.

Contract of the generated API (model.h):
  int  edgert_invoke(void);                    0 on success
  void *edgert_input(int i), *edgert_output(int i);  arena buffers of the graph's I/O
  EDGERT_NUM_LAYERS and edgert_layer_names[]   for per-layer profiles
  EDGERT_LAYER_HOOK(i, phase)                  optional macro, called before (phase 0) and
                                               after (phase 1) each layer: define it when
                                               compiling model.c to time layers.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edgert.ir import Graph
from edgert.ir.dtypes import C_TYPES
from edgert.plan.arena import ALIGN, ArenaPlan

from .emit.c import CSource
from .emit.cuda import CudaCode
from .emit.llvm import ObjectCode
from .lower import Lowered


@dataclass
class ModelSources:
    model_c: str
    model_h: str
    kernels_c: str
    weights_c: str
    flash_const_bytes: int


def _c_array(name: str, data: np.ndarray, ctype: str) -> str:
    flat = data.reshape(-1)
    if data.dtype.kind == "f":
        vals = [repr(float(v)) + "f" if np.isfinite(v) else ("INFINITY" if v > 0 else "-INFINITY") for v in flat]
    else:
        vals = [str(int(v)) for v in flat]
    lines = []
    for i in range(0, len(vals), 24):
        lines.append("  " + ", ".join(vals[i:i + 24]) + ",")
    return (f"const {ctype} {name}[{max(len(vals), 1)}] __attribute__((aligned({ALIGN}))) = {{\n"
            + "\n".join(lines) + "\n};\n")


def model_hash(g: Graph, lowered: Lowered) -> str:
    """A digest of what the firmware computes: graph structure, constants and attributes."""
    h = hashlib.sha256()
    from edgert.ir import format_graph
    h.update(format_graph(g).encode())
    for name in sorted(lowered.consts):
        h.update(name.encode())
        h.update(np.ascontiguousarray(lowered.consts[name]).tobytes())
    return h.hexdigest()


CUDA_CONST_ALIGN = 256  # cuMemAlloc's own alignment: each weight array's device copy starts on one


def _cuda_tables(plan: ArenaPlan, lowered: Lowered, code: CudaCode) -> list[str]:
    """The cubin, the kernel names and the constants' device layout (see edgert_cuda.h)."""
    consts, offset = [], 0
    for name, data in lowered.consts.items():
        consts.append(f"  {{{name}, {data.nbytes}u, {offset}u}},")
        offset += -(-max(data.nbytes, 1) // CUDA_CONST_ALIGN) * CUDA_CONST_ALIGN
    cubin = ",\n".join("  " + ", ".join(f"0x{b:02x}" for b in code.cubin[i:i + 24])
                        for i in range(0, len(code.cubin), 24))
    return [
        '#include "edgert_cuda.h"',
        "",
        f"/* The kernels, compiled for {code.arch} ({code.ptxas_version}). */",
        f"static const uint8_t edgert_cubin[{len(code.cubin)}] __attribute__((aligned(16))) = {{\n{cubin}\n}};",
        "static const char *const edgert_kernels[] = {",
        *[f'  "{k.name}",' for k in lowered.kernels],
        "};",
        f"static const struct edgert_cuda_const edgert_consts[{max(len(consts), 1)}] = {{",
        *(consts or ["  {0, 0u, 0u},"]),
        "};",
        "static const struct edgert_cuda_model edgert_cuda_model = {",
        f"  edgert_cubin, sizeof edgert_cubin, edgert_kernels, {len(lowered.kernels)}, edgert_consts, {len(consts)}, "
        f"{offset}u, {max(plan.size, ALIGN)}u,",
        "};",
    ]


def _cuda_invoke(g: Graph, plan: ArenaPlan, lowered: Lowered, code: CudaCode) -> list[str]:
    """edgert_invoke's body on the GPU: inputs to the device arena, one launch a layer,
    outputs back (see edgert_cuda.h)."""
    const_index = {name: i for i, name in enumerate(lowered.consts)}
    body = ["  int rc = edgert_cuda_init(&edgert_cuda_model);", "  if (rc) return rc;"]
    for n in g.inputs:
        off = plan.offsets[n]
        body.append(f"  if ((rc = edgert_cuda_to_device(edgert_arena + {off}, {off}u, {g.tensor(n).nbytes}u))) return rc;")
    for i, k in enumerate(lowered.kernels):
        args = ", ".join(f"edgert_cuda_const({const_index[a.name]})" if a.kind == "const"
                         else f"edgert_cuda_arena({plan.offsets[a.name]}u)" for a in k.args)
        launch = code.launches[k.name]
        body += [f"  EDGERT_LAYER_HOOK({i}, 0);",
                 f"  {{  /* {k.op.source} */",
                 f"    const uint64_t args[{len(k.args)}] = {{{args}}};",
                 f"    if ((rc = edgert_cuda_launch({i}, {launch.grid}u, {launch.block}u, args, {len(k.args)}))) return rc;",
                 "  }",
                 f"  EDGERT_LAYER_HOOK({i}, 1);"]
    for n in g.outputs:
        off = plan.offsets[n]
        body.append(f"  if ((rc = edgert_cuda_to_host(edgert_arena + {off}, {off}u, {g.tensor(n).nbytes}u))) return rc;")
    return body + ["  return 0;"]


def emit(g: Graph, plan: ArenaPlan, lowered: Lowered, kernels: CSource | ObjectCode | CudaCode) -> ModelSources:
    digest = model_hash(g, lowered)
    consts = lowered.consts
    weights = ['#include "model.h"\n', "#include <math.h>\n\n"]
    for name, data in consts.items():
        weights.append(_c_array(name, data, C_TYPES[str(data.dtype)]))
    flash_bytes = sum(int(d.nbytes) for d in consts.values())

    h = [
        "/* Generated by edgert. Do not edit. */",
        "#ifndef EDGERT_MODEL_H_",
        "#define EDGERT_MODEL_H_",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f'#define EDGERT_MODEL_NAME "{g.name}"',
        f'#define EDGERT_MODEL_HASH "{digest}"',
        f"#define EDGERT_ARENA_BYTES {plan.size}u",
        f"#define EDGERT_NUM_INPUTS {len(g.inputs)}",
        f"#define EDGERT_NUM_OUTPUTS {len(g.outputs)}",
        f"#define EDGERT_NUM_LAYERS {len(lowered.kernels)}",
    ]
    for kind, names in (("INPUT", g.inputs), ("OUTPUT", g.outputs)):
        for i, n in enumerate(names):
            t = g.tensor(n)
            h.append(f"#define EDGERT_{kind}{i}_BYTES {t.nbytes}u")
    h += [
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "int edgert_invoke(void);",
        "void *edgert_input(int i);",
        "void *edgert_output(int i);",
        "size_t edgert_input_bytes(int i);",
        "size_t edgert_output_bytes(int i);",
        "extern const char *const edgert_layer_names[];",
        "extern uint8_t edgert_arena[];",
    ]
    for name, data in consts.items():
        h.append(f"extern const {C_TYPES[str(data.dtype)]} {name}[];")
    h += ["#ifdef __cplusplus", "}", "#endif", "#endif /* EDGERT_MODEL_H_ */", ""]

    def ptr(arg, ctype: str, is_const: bool) -> str:
        if arg.kind == "const":
            return arg.name
        q = "const " if is_const else ""
        return f"({q}{ctype}*)(edgert_arena + {plan.offsets[arg.name]})"

    c = [
        "/* Generated by edgert. Do not edit. */",
        '#include "model.h"',
        "",
        "#ifndef EDGERT_LAYER_HOOK",
        "#define EDGERT_LAYER_HOOK(layer, phase) ((void)0)",
        "#endif",
        "",
    ]
    cuda = isinstance(kernels, CudaCode)
    if cuda:
        c += _cuda_tables(plan, lowered, kernels)
    else:
        for k in lowered.kernels:
            c.append(kernels.prototype(k.name) + ";")
    c += [
        "",
        f"uint8_t edgert_arena[{max(plan.size, ALIGN)}] __attribute__((aligned({ALIGN})));",
        "",
        "const char *const edgert_layer_names[] = {",
        *[f'  "{k.op.name}",' for k in lowered.kernels],
        "  0,",
        "};",
        "",
        "int edgert_invoke(void) {",
    ]
    if cuda:
        c += _cuda_invoke(g, plan, lowered, kernels)
    else:
        for i, k in enumerate(lowered.kernels):
            params = kernels.signatures[k.name]
            args = ", ".join(ptr(a, p.ctype, p.is_const) for a, p in zip(k.args, params))
            c.append(f"  EDGERT_LAYER_HOOK({i}, 0);")
            c.append(f"  {k.name}({args});  /* {k.op.source} */")
            c.append(f"  EDGERT_LAYER_HOOK({i}, 1);")
        c += ["  return 0;"]
    c += ["}", ""]
    for kind, names in (("input", g.inputs), ("output", g.outputs)):
        c.append(f"void *edgert_{kind}(int i) {{")
        c.append("  switch (i) {")
        for i, n in enumerate(names):
            c.append(f"    case {i}: return edgert_arena + {plan.offsets[n]};")
        c += ["    default: return 0;", "  }", "}"]
        c.append(f"size_t edgert_{kind}_bytes(int i) {{")
        c.append("  switch (i) {")
        for i, n in enumerate(names):
            c.append(f"    case {i}: return {g.tensor(n).nbytes}u;")
        c += ["    default: return 0;", "  }", "}", ""]
    return ModelSources(
        model_c="\n".join(c),
        model_h="\n".join(h),
        kernels_c=getattr(kernels, "code", ""),  # C source; an object (LLVM) has none
        weights_c="".join(weights),
        flash_const_bytes=flash_bytes,
    )
