"""TIR PrimFuncs -> one plain C translation unit.

Contract
--------
``emit_c(funcs)`` lowers TVM PrimFuncs (from ``tvm.te.create_prim_func``, optionally
transformed by ``tvm.s_tir.Schedule``) and returns C99 source in which every kernel is an
ordinary function taking one raw typed pointer per buffer parameter::

    void conv0(const int8_t* restrict X, const int8_t* restrict W, int8_t* restrict Out);

The output includes only ``<stdint.h>``, ``<stddef.h>`` and, when used, ``<math.h>`` /
``<stdbool.h>`` (and ``<arm_acle.h>`` inside the DSP helpers' ``#if`` for CPUs with the DSP
extension); it needs no TVM header, runtime or packed-call convention, and compiles with host
cc and arm-none-eabi-gcc alike. Buffers are dense, row-major, with the static shapes of
the PrimFunc, and must not overlap (the pointers are ``restrict``) unless the kernel is named
in ``aliased``: in-place kernels, whose output reuses an input's bytes. Buffers the kernel never
writes are ``const``. Kernels do not allocate: an internal buffer over
``MAX_LOCAL_BYTES`` or any dynamic/workspace allocation is refused with ``CEmitError``.

How (TVM 0.27 facts this module rests on)
-----------------------------------------
* The stock pipelines (``tvm.tirx.get_tir_pipeline("default")`` -> ``s_tir``) end in
  ``tirx.transform.MakePackedAPI``; there is no ``MakeUnpackedAPI`` in 0.27. We run our own
  pass list: the target-independent part of ``tvm.s_tir.pipeline.default_s_tir_pipeline``,
  then ``bind_raw_pointers`` (ours, replacing MakePackedAPI), then ``LowerIntrin``, and call
  the registered ``"target.build.c"`` on the whole module at once.
* In 0.27 buffers are ``tvm.ir.Var`` s whose type is ``tirx.BufferType`` (there is no
  ``buffer_map``); the body reaches the memory through ``tirx.buffer_data(buf)`` calls.
  ``bind_raw_pointers`` swaps each buffer parameter for a ``PointerType`` Var and declares the
  old buffer on it (``DeclBuffer(buf, data=ptr)``): no expression rewriting needed.
* ``VectorizeLoop`` must be disabled for C: the C codegen prints vector types such as
  ``int32_t4`` that are not C. ``sch.vectorize`` therefore becomes a plain loop here (the C
  compiler auto-vectorizes it).
* ``target.build.c`` still prints a TVM preamble (``#include "tvm/..."``, ``TVM_DLL``,
  ``__tvm_ffi__library_ctx``). We keep only the function bodies from it, check that nothing
  else was emitted, and print our own signatures, includes and helpers.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping

import tvm
from tvm import tirx

from .tir import (HELPER_DEPS, HELPERS, CEmitError, KernelSignatures, Param, check_signatures, lowering_passes,
                  params, prototype, register_intrinsic_lowerings)

__all__ = ["CEmitError", "CSource", "emit_c"]

_C_TARGET = {"kind": "c"}


@dataclasses.dataclass(frozen=True)
class CSource(KernelSignatures):
    """Result of ``emit_c``.

    ``code`` is a complete C99 translation unit. ``signatures`` maps each kernel name to its
    parameters in call order (all kernels return void). ``header`` is set only when
    ``emit_c(..., header_name=...)`` was given: then it holds the prototypes and ``code``
    includes it by that name.
    """

    code: str
    signatures: dict[str, list[Param]]
    header: str | None = None


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------

def emit_c(funcs: Mapping[str, tirx.PrimFunc], *, header_name: str | None = None,
           aliased: Collection[str] = ()) -> CSource:
    """Lower ``funcs`` (C name -> PrimFunc) together and return one plain C translation unit.

    Pointer parameters are ``restrict`` except in the kernels named in ``aliased``, whose
    output may share memory with an input (in-place kernels).

    Raises ``CEmitError`` (a ``ValueError``) for a bad name, a non-buffer or dynamically shaped
    parameter, an internal buffer over ``MAX_LOCAL_BYTES``, a workspace/packed call, a parallel
    or thread-bound loop, or a leftover vector expression.
    """
    check_signatures(funcs)
    if header_name is not None and not re.fullmatch(r"[\w./-]+\.h", header_name):
        raise CEmitError(f"emit_c: header_name must look like 'name.h', got {header_name!r}")

    register_intrinsic_lowerings()
    target = tvm.target.Target(_C_TARGET)
    mod = tvm.IRModule({
        name: func.with_attr("global_symbol", name).with_attr("target", target)
        for name, func in funcs.items()
    })
    with tvm.transform.PassContext(opt_level=3):
        mod = tvm.ir.transform.Sequential(lowering_passes())(mod)

    # Parameters as far as the IR tells (names come from the printed C, which may rename).
    unnamed = {name: params(name, func, mod[name], aliased=name in aliased) for name, func in funcs.items()}

    raw = tvm.get_global_func("target.build.c")(mod, target).inspect_source()
    found = _extract_bodies(raw, unnamed)
    signatures = {name: found[name][0] for name in funcs}
    return _assemble(signatures, {name: found[name][1] for name in funcs}, header_name)


# Turning target.build.c output into our translation unit
# --------------------------------------------------------------------------------------

_DEF_RE = re.compile(r"^TVM_DLL void (?P<name>\w+)\((?P<params>[^)]*)\) \{\n(?P<body>.*?)^\}\n",
                     re.M | re.S)
_PARAM_RE = re.compile(r"(?P<ctype>\w+)\* (?P<name>\w+)")
_PREAMBLE_RE = re.compile(
    r"^(// tvm target: .*|#define TVM_EXPORTS|#include .*|void\* __tvm_ffi__library_ctx = NULL;"
    r"|#ifdef __cplusplus|extern \"C\"|#endif|\s*)$")
_PROTO_RE = re.compile(r"^TVM_DLL \w+ (?P<name>\w+)\([^)]*\);$")
_MATH_RE = re.compile(r"\b(?:INFINITY|NAN|HUGE_VALF?|(?:exp|exp2|expm1|log|log2|log10|log1p|sqrt|"
                      r"pow|fabs|floor|ceil|trunc|round|nearbyint|rint|fmod|tanh|sinh|cosh|sin|cos|"
                      r"tan|asin|acos|atan|atan2|erf|hypot|copysign|ldexp|fmin|fmax|isnan|isinf|"
                      r"isfinite)f?)\b")


def _extract_bodies(raw: str, signatures: dict[str, list[Param]]) -> dict[str, tuple[list[Param], str]]:
    """Cut each kernel's body out of ``target.build.c`` output and name its parameters.

    Anything in ``raw`` other than the known TVM preamble, prototypes and these definitions
    is an error: nothing the bodies might depend on is dropped silently.
    """
    found: dict[str, tuple[list[Param], str]] = {}
    rest = raw
    for m in _DEF_RE.finditer(raw):
        name = m.group("name")
        if name not in signatures or name in found:
            raise RuntimeError(f"emit_c: unexpected function {name!r} in TVM's C output")
        printed = [p.strip() for p in m.group("params").split(",") if p.strip()]
        params = signatures[name]
        parsed = [_PARAM_RE.fullmatch(p) for p in printed]
        if len(parsed) != len(params) or any(
                pm is None or pm.group("ctype") != p.ctype for pm, p in zip(parsed, params)):
            raise RuntimeError(f"emit_c: TVM printed {name}({m.group('params')}), expected "
                               f"pointers to {[p.ctype for p in params]}")
        params = [dataclasses.replace(p, name=pm.group("name")) for pm, p in zip(parsed, params)]
        found[name] = (params, m.group("body"))
        rest = rest.replace(m.group(0), "", 1)
    missing = set(signatures) - set(found)
    if missing:
        raise RuntimeError(f"emit_c: TVM's C output has no definition of {sorted(missing)}")
    leftovers = []
    for line in rest.splitlines():
        proto = _PROTO_RE.fullmatch(line)
        if proto:  # prototypes: our kernels, our helpers, or libm (declared by <math.h>)
            callee = proto.group("name")
            if callee not in signatures and callee not in HELPERS and not _MATH_RE.fullmatch(callee):
                raise CEmitError(f"emit_c: kernels call external function {callee}, which plain C "
                                 "output cannot provide", "express it in TE/TIR arithmetic")
        elif not _PREAMBLE_RE.fullmatch(line):
            leftovers.append(line)
    if leftovers:
        raise RuntimeError(f"emit_c: TVM's C output has unexpected top-level code: {leftovers[:5]}")
    for name, (_, body) in found.items():
        if re.search(r"tvm|TVM", body):
            raise RuntimeError(f"emit_c: kernel {name} still references TVM after lowering:\n{body}")
    return found


def _helpers_for(bodies: str) -> list[str]:
    """Helper names used in ``bodies``, with their dependencies first."""
    used: list[str] = []

    def add(h: str) -> None:
        for dep in HELPER_DEPS.get(h, []):
            add(dep)
        if h not in used:
            used.append(h)

    for h in HELPERS:
        if re.search(rf"\b{h}\(", bodies):
            add(h)
    return used


def _assemble(signatures: dict[str, list[Param]], bodies: dict[str, str],
              header_name: str | None) -> CSource:
    all_bodies = "".join(bodies.values())
    system = ["stdint.h", "stddef.h"]
    if re.search(r"\bbool\b", all_bodies):
        system.append("stdbool.h")
    if _MATH_RE.search(all_bodies):
        system.append("math.h")
    includes = "".join(f"#include <{h}>\n" for h in system)
    prototypes = "".join(f"{prototype(n, ps)};\n" for n, ps in signatures.items())
    banner = "/* Generated by edgert: plain C kernels. Do not edit. */\n"

    header = None
    if header_name is not None:
        guard = "EDGERT_" + re.sub(r"\W", "_", header_name).upper() + "_"
        header = (f"{banner}#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n"
                  f"{prototypes}\n#endif /* {guard} */\n")
        decls = f'#include "{header_name}"\n'
    else:
        decls = prototypes

    parts = [banner, includes, "\n", decls]
    helpers = _helpers_for(all_bodies)
    if helpers:
        parts += ["\n"] + [HELPERS[h] for h in helpers]
    for name, params in signatures.items():
        parts += ["\n", f"{prototype(name, params)} {{\n", bodies[name], "}\n"]
    return CSource(code="".join(parts), signatures=dict(signatures), header=header)
