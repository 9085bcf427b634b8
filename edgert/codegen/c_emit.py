"""TIR PrimFuncs -> one plain C translation unit.

Contract
--------
``emit_c(funcs)`` lowers TVM PrimFuncs (from ``tvm.te.create_prim_func``, optionally
transformed by ``tvm.s_tir.Schedule``) and returns C99 source in which every kernel is an
ordinary function taking one raw typed pointer per buffer parameter::

    void conv0(const int8_t* restrict X, const int8_t* restrict W, int8_t* restrict Out);

The output includes only ``<stdint.h>``, ``<stddef.h>`` and, when used, ``<math.h>`` /
``<stdbool.h>``; it needs no TVM header, runtime or packed-call convention, and compiles with
host cc and arm-none-eabi-gcc alike. Buffers are dense, row-major, with the static shapes of
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
import math
import re
from collections.abc import Collection, Iterator, Mapping

import tvm
import tvm_ffi
from tvm import s_tir, tirx

from edgert.errors import EdgertError

__all__ = ["CEmitError", "CSource", "KernelSignatures", "MAX_LOCAL_BYTES", "Param", "check_signatures", "emit_c", "extern_helpers",
           "lowering_passes", "params"]

#: Largest internal buffer (bytes) a kernel may keep as a C local array. Anything bigger
#: must be a kernel parameter placed by the memory planner (DESIGN: no big stack arrays).
MAX_LOCAL_BYTES = 256

_C_TARGET = {"kind": "c"}

_C_TYPES = {
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "float32": "float", "float64": "double",
}

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto "
    "if inline int long register restrict return short signed sizeof static struct switch "
    "typedef union unsigned void volatile while _Bool _Complex _Imaginary main".split()
)


class CEmitError(EdgertError, ValueError):
    """A kernel cannot become plain allocation-free C. Message names the function (and buffer)."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One C parameter of an emitted kernel: a pointer to ``prod(shape)`` elements of ``ctype``."""

    name: str                 # C identifier, as used in the function body
    ctype: str                # element type: "int8_t", "uint32_t", "float", ...
    is_const: bool            # True when the kernel only reads this buffer
    shape: tuple[int, ...]    # static buffer shape (row-major, dense)
    restrict: bool = True     # False for kernels whose output may alias an input (in place)

    @property
    def decl(self) -> str:
        """The parameter as it appears in the prototype."""
        const = "const " if self.is_const else ""
        return f"{const}{self.ctype}* {'restrict ' if self.restrict else ''}{self.name}"


class KernelSignatures:
    """What every back end's result gives model.c: ``signatures`` (kernel name -> its
    parameters in call order) and each kernel's C prototype."""

    signatures: dict[str, list[Param]]

    def prototype(self, name: str) -> str:
        """``void name(<params>)`` without the trailing semicolon."""
        return _prototype(name, self.signatures[name])


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


def check_signatures(funcs: Mapping[str, tirx.PrimFunc]) -> None:
    """Refuse names and parameters that cannot be plain C-callable kernels (``CEmitError``)."""
    if not funcs:
        raise CEmitError("expected at least one PrimFunc, got none")
    for name, func in funcs.items():
        _check_signature(name, func)


def params(name: str, func: tirx.PrimFunc, lowered: tirx.PrimFunc, *, aliased: bool = False,
           vectors: bool = False, max_local_bytes: int = MAX_LOCAL_BYTES) -> list[Param]:
    """The C parameters of kernel ``name`` (unnamed: ``name=""``), from the PrimFunc and its
    lowered form, which must hold nothing plain C-callable code cannot (see
    ``_check_body_and_find_writes``; ``vectors``: vector expressions are allowed, for the
    LLVM back end, which lowers them itself; ``max_local_bytes``: the largest kernel-local
    array, where the target has more stack than a microcontroller)."""
    written = _check_body_and_find_writes(name, lowered, vectors=vectors, max_local_bytes=max_local_bytes)
    return [Param(name="", ctype=_C_TYPES[str(p.ty.dtype.dtype)], is_const=i not in written,
                  shape=tuple(int(s) for s in p.ty.shape), restrict=not aliased)
            for i, p in enumerate(func.params)]


def extern_helpers() -> str:
    """Every helper the lowered kernels may call, as external C definitions: what a kernel
    object built by another back end (LLVM) links against."""
    return "#include <stdint.h>\n\n" + "\n".join(h.replace("static inline ", "") for h in _HELPERS.values())


def lowering_passes(*, vectorize: bool = False, threads: bool = False) -> list[tvm.transform.Pass]:
    """The TIR pass list used by ``emit_c`` (exposed so other back ends can reuse it).

    ``vectorize`` must stay False for the C target; the LLVM targets may turn it on.
    ``threads``: GPU kernels, whose loops are bound to blocks and threads (TVM's GPU pipeline
    steps for thread bindings are added; each PrimFunc stays its own kernel entry).

    It is ``tvm.s_tir.pipeline.default_s_tir_pipeline`` without the GPU-only passes and with
    ``MakePackedAPI`` replaced by ``bind_raw_pointers``; ``LowerIntrin`` runs last as in the
    stock host finalization (``LowerTVMBuiltin`` is left out: it would turn allocations into
    ``TVMBackendAllocWorkspace`` calls).
    """
    return [
        s_tir.transform.CanonicalizeLoop(),
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        *([s_tir.transform.LiftThreadBinding()] if threads else []),
        s_tir.transform.CompactBufferAllocation(),
        *([s_tir.transform.UnifyThreadBinding()] if threads else []),
        s_tir.transform.LowerMatchBuffer(),
        s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(),
        tirx.transform.NarrowDataType(32),
        s_tir.transform.LoopPartition(),
        tirx.transform.VectorizeLoop(vectorize),  # False for C: it prints non-C vector types
        tirx.transform.StorageRewrite(),
        s_tir.transform.HoistIfThenElse(),
        tirx.transform.UnrollLoop(),
        s_tir.transform.RenormalizeSplitPattern(),
        tirx.transform.StmtSimplify(),
        tirx.transform.RemoveNoOp(),
        s_tir.transform.RewriteUnsafeSelect(),  # keeps padded (out-of-bounds) loads guarded
        tirx.transform.CommonSubexprElim(),
        tirx.transform.VerifyMemory(),
        bind_raw_pointers,
        tirx.transform.LowerIntrin(),
    ]


# --------------------------------------------------------------------------------------
# The unpacked-API pass
# --------------------------------------------------------------------------------------

@tirx.transform.prim_func_pass(opt_level=0, name="edgert.BindRawPointers")
def bind_raw_pointers(func: tirx.PrimFunc, _mod, _ctx) -> tirx.PrimFunc:
    """Replace each BufferType parameter by a typed data pointer (``T.handle("int8")``).

    The original buffer Var is re-declared on the pointer at the top of the body, so every
    ``buffer_data(buf)`` / load / store in the body stays valid unchanged.
    """
    params, decls = [], []
    for p in func.params:
        if not tirx.is_buffer_var(p):
            params.append(p)
            continue
        ptr = tirx.Var(p.name, tirx.buffer_data_pointer_type(p))
        params.append(ptr)
        decls.append(tirx.DeclBuffer(p, data=ptr))
    return tirx.PrimFunc(params, tirx.SeqStmt(decls + [func.body]), func.ret_type, func.attrs)


# --------------------------------------------------------------------------------------
# Intrinsics the C target cannot lower by itself
# --------------------------------------------------------------------------------------

# Helpers appear in the output only when a kernel calls them. popcount: the SWAR byte
# counts, then their horizontal sum. Armv7E-M has no popcount instruction; measured on the
# emulated Cortex-M7 (LceBconv2d 16x16x64 -> 64, 3x3, instructions for the layer): SWAR with
# the multiply (which GCC turns into shifted adds) 5,399,320; a 256-entry byte table
# 5,626,720; __builtin_popcount (a libgcc call) 6,473,440; SWAR with USADA8 summing the four
# byte counts in one instruction 5,018,040, the cheapest, used where the DSP extension is.
# Elsewhere GCC/Clang recognize the SWAR idiom and use the CPU's popcount (AArch64 CNT).
_HELPERS = {
    "edgert_popcount32": (
        "static inline uint32_t edgert_popcount32(uint32_t x) {\n"
        "  x = x - ((x >> 1) & 0x55555555u);\n"
        "  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);\n"
        "  x = (x + (x >> 4)) & 0x0F0F0F0Fu;\n"
        "#if defined(__ARM_FEATURE_SIMD32)\n"
        "  uint32_t sum;\n"
        "  __asm__(\"usada8 %0, %1, %2, %2\" : \"=r\"(sum) : \"r\"(x), \"r\"(0u));\n"
        "  return sum;\n"
        "#else\n"
        "  return (x * 0x01010101u) >> 24;\n"
        "#endif\n"
        "}\n"
    ),
    "edgert_popcount64": (
        "static inline uint64_t edgert_popcount64(uint64_t x) {\n"
        "  x = x - ((x >> 1) & 0x5555555555555555ull);\n"
        "  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);\n"
        "  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;\n"
        "  return (x * 0x0101010101010101ull) >> 56;\n"
        "}\n"
    ),
    # Narrow types: the uintN_t parameter reinterprets a signed argument modulo 2^N.
    "edgert_popcount16": (
        "static inline uint16_t edgert_popcount16(uint16_t x) {\n"
        "  return (uint16_t)edgert_popcount32(x);\n"
        "}\n"
    ),
    "edgert_popcount8": (
        "static inline uint8_t edgert_popcount8(uint8_t x) {\n"
        "  return (uint8_t)edgert_popcount32(x);\n"
        "}\n"
    ),
}
# Count leading zeros of a nonzero 32-bit value (callers guarantee x != 0): one CLZ
# instruction on ARMv7-M/ARMv8, BSR on x86.
_HELPERS["edgert_clz32"] = (
    "static inline int32_t edgert_clz32(int32_t x) {\n"
    "  return (int32_t)__builtin_clz((uint32_t)x);\n"
    "}\n"
)
_HELPER_DEPS = {"edgert_popcount16": ["edgert_popcount32"], "edgert_popcount8": ["edgert_popcount32"]}
_registered = False


def _lower_popcount(call):
    """tirx.popcount(x) -> edgert_popcount<bits>(x): one helper per bit width."""
    dtype = tvm.runtime.DataType(str(call.args[0].ty.dtype))
    if dtype.lanes != 1 or dtype.bits not in (8, 16, 32, 64) or dtype.type_code not in (0, 1):
        raise CEmitError(f"popcount: expected a scalar 8/16/32/64-bit integer, got {dtype}")
    return tirx.call_pure_extern(call.ty, f"edgert_popcount{dtype.bits}", call.args[0])


def _lower_clz(call):
    """clz(x) of an int32 -> edgert_clz32(x) (one CLZ instruction on Arm)."""
    if str(call.args[0].ty.dtype) != "int32":
        raise CEmitError(f"clz: expected an int32, got {call.args[0].ty.dtype}")
    return tirx.call_pure_extern("int32", "edgert_clz32", call.args[0])


def _lower_clz_llvm(call):
    """clz(x) -> llvm.ctlz(x, is_zero_poison=true): callers guarantee x != 0."""
    return tirx.call_llvm_pure_intrin("int32", "llvm.ctlz", call.args[0], tirx.const(True, "bool"))


def _lower_popcount_llvm(call):
    """popcount(x) -> llvm.ctpop(x) (PTX popc)."""
    return tirx.call_llvm_pure_intrin(str(call.ty.dtype), "llvm.ctpop", call.args[0])


def register_intrinsic_lowerings() -> None:
    """Register our lowerings of ``tirx.popcount`` (C, NVPTX) and ``prim.clz`` (C, and LLVM for
    CPUs and NVPTX): TVM 0.27 lowers popcount for LLVM CPUs and clz for its CUDA source target
    only. Once per process.

    TVM refuses a second registration at the same level, so an existing one (e.g. after a
    module reload) is reset first; that makes ours the one in force, deterministically.
    """
    global _registered
    if _registered:
        return
    for name, target, lowering in (("tirx.popcount", "c", _lower_popcount), ("prim.clz", "c", _lower_clz),
                                   ("prim.clz", "llvm", _lower_clz_llvm), ("prim.clz", "nvptx", _lower_clz_llvm),
                                   ("tirx.popcount", "nvptx", _lower_popcount_llvm)):
        op = tvm.ir.Op.get(name)
        key = f"{target}.FLowerIntrinsic"
        if op.has_attr(key):
            op.reset_attr(key)
        tirx.register_intrin_lowering(name, target=target, f=lowering, level=99)
    _registered = True


# --------------------------------------------------------------------------------------
# Checks on the PrimFuncs
# --------------------------------------------------------------------------------------

def _check_signature(name: str, func) -> None:
    if not isinstance(func, tirx.PrimFunc):
        raise CEmitError(f"emit_c: {name!r} must map to a tvm.tirx.PrimFunc, got {type(func).__name__}")
    if not re.fullmatch(r"[A-Za-z_]\w*", name) or name in _C_KEYWORDS or name.startswith("edgert_"):
        raise CEmitError(f"emit_c: {name!r} is not a usable C function name",
                         "use a C identifier that is not a keyword and does not start with 'edgert_'")
    if not func.params:
        raise CEmitError(f"kernel {name}: has no parameters")
    for p in func.params:
        if not tirx.is_buffer_var(p):
            raise CEmitError(f"kernel {name}: parameter {p.name} is a scalar; only buffer parameters "
                             "are supported", "bake scalars into the kernel as constants")
        dtype = str(p.ty.dtype.dtype)
        if dtype not in _C_TYPES:
            raise CEmitError(f"kernel {name}: buffer {p.name} has dtype {dtype}, which has no C type "
                             f"here (supported: {', '.join(_C_TYPES)})")
        if not all(isinstance(s, tvm.tirx.IntImm) for s in p.ty.shape):
            raise CEmitError(f"kernel {name}: buffer {p.name} has a symbolic shape {list(p.ty.shape)}",
                             "specialize the PrimFunc to static shapes before emitting C")
        if len(p.ty.strides) or not _is_zero(p.ty.elem_offset):
            raise CEmitError(f"kernel {name}: buffer {p.name} is strided or offset; expected a dense buffer")


def _is_zero(expr) -> bool:
    return expr is None or (isinstance(expr, tvm.tirx.IntImm) and int(expr) == 0)


def _check_body_and_find_writes(name: str, func, *, vectors: bool = False,
                                max_local_bytes: int = MAX_LOCAL_BYTES) -> set[int]:
    """Refuse what plain allocation-free C cannot hold; return indices of written parameters.

    A parameter counts as written (so not ``const``) when a BufferStore reaches it through any
    chain of ``DeclBuffer`` views, or when its pointer escapes anywhere else (into a call, a
    let binding, ...): conservative, never wrongly const.
    """
    param_index = {p.__chandle__(): i for i, p in enumerate(func.params)}
    decl_data = {}  # buffer var handle -> data expression it is declared on
    for node in walk(func.body):
        if isinstance(node, tirx.DeclBuffer):
            decl_data[node.buffer.__chandle__()] = node.data

    def root(expr) -> int | None:
        """Parameter index a pointer/buffer expression ultimately refers to, if any."""
        for _ in range(len(decl_data) + 1):
            if isinstance(expr, tvm.ir.Var):
                handle = expr.__chandle__()
                if handle in param_index:
                    return param_index[handle]
                if handle not in decl_data:
                    return None
                expr = decl_data[handle]
            elif _call_name(expr) == "tirx.buffer_data":
                expr = expr.args[0]
            else:
                return None
        return None

    written: set[int] = set()
    for node in walk(func.body, skip_decl_data=True):
        if isinstance(node, tirx.BufferStore) or _call_name(node) == "tirx.buffer_data":
            target = node.buffer if isinstance(node, tirx.BufferStore) else node.args[0]
            if (i := root(target)) is not None:
                written.add(i)
        elif isinstance(node, tvm.ir.Var) and node.__chandle__() in param_index:
            written.add(param_index[node.__chandle__()])
        elif isinstance(node, tirx.AllocBuffer):
            _check_alloc(name, node.buffer, max_local_bytes)
        elif isinstance(node, tirx.For) and int(node.kind) in (int(tirx.ForKind.PARALLEL),
                                                              int(tirx.ForKind.THREAD_BINDING)):
            raise CEmitError(f"kernel {name}: loop {node.loop_var.name} is {tirx.ForKind(int(node.kind)).name}; "
                             "emitted kernels run on one core", "drop parallel/bind from the schedule")
        elif isinstance(node, (tirx.Ramp, tirx.Broadcast, tirx.Shuffle)) and not vectors:
            raise CEmitError(f"kernel {name}: vector expression left after lowering ({type(node).__name__})",
                             "use plain loops; the C compiler vectorizes them")
        elif isinstance(node, tvm.ir.Call):
            callee = _call_name(node)
            if callee in ("tirx.call_extern", "tirx.call_pure_extern") and node.args:
                callee = str(node.args[0].value)
            if "tvm" in callee.lower() or "workspace" in callee.lower():
                raise CEmitError(f"kernel {name}: lowering produced a runtime call ({callee}); "
                                 "emitted kernels may not call TVM or allocate at run time")
    return written


def _check_alloc(name: str, buf, max_local_bytes: int = MAX_LOCAL_BYTES) -> None:
    shape = list(buf.ty.shape)
    if not all(isinstance(s, tvm.tirx.IntImm) for s in shape):
        raise CEmitError(f"kernel {name}: internal buffer {buf.name} has a dynamic size {shape}",
                         "kernels may not allocate at run time; give the kernel a static temporary")
    dtype = tvm.runtime.DataType(str(buf.ty.dtype.dtype))
    nbytes = math.prod(int(s) for s in shape) * dtype.bits * dtype.lanes // 8
    if nbytes > max_local_bytes:
        raise CEmitError(
            f"kernel {name}: internal buffer {buf.name} needs {nbytes} bytes "
            f"({'x'.join(str(int(s)) for s in shape)} {dtype}), over the {max_local_bytes}-byte limit "
            "for kernel-local arrays",
            "split the computation into two kernels so the planner places the intermediate, "
            "or schedule it (compute_at / reverse_compute_at) so only a small tile stays live")


def _call_name(node) -> str | None:
    if isinstance(node, tvm.ir.Call) and isinstance(node.op, tvm.ir.Op):
        return str(node.op.name)
    return None


def walk(root, *, skip_decl_data: bool = False) -> Iterator[object]:
    """Pre-order walk over every IR object reachable from ``root`` through reflected fields.

    TVM 0.27 exposes no Python stmt/expr visitor, so this uses tvm_ffi reflection. Types
    (``ty``) and spans are not entered; with ``skip_decl_data`` neither are ``DeclBuffer.data``
    and ``DeclBuffer.buffer`` (a declaration is not a use of the pointer).
    """
    stack = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, (tvm_ffi.Array, tvm_ffi.List)):
            stack.extend(reversed(list(obj)))
            continue
        if isinstance(obj, (tvm_ffi.Map, tvm_ffi.Dict)):
            for key, value in obj.items():
                stack.extend((value, key))
            continue
        if not isinstance(obj, tvm_ffi.Object):
            continue
        yield obj
        if skip_decl_data and isinstance(obj, tirx.DeclBuffer):
            continue
        children = []
        info = getattr(type(obj), "__tvm_ffi_type_info__", None)
        while info is not None:
            children[:0] = [f.name for f in info.fields if f.name not in ("span", "ty")]
            info = info.parent_type_info
        stack.extend(reversed([getattr(obj, field) for field in children]))


# --------------------------------------------------------------------------------------
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
            if callee not in signatures and callee not in _HELPERS and not _MATH_RE.fullmatch(callee):
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


def _prototype(name: str, params: list[Param]) -> str:
    return f"void {name}({', '.join(p.decl for p in params)})"


def _helpers_for(bodies: str) -> list[str]:
    """Helper names used in ``bodies``, with their dependencies first."""
    used: list[str] = []

    def add(h: str) -> None:
        for dep in _HELPER_DEPS.get(h, []):
            add(dep)
        if h not in used:
            used.append(h)

    for h in _HELPERS:
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
    prototypes = "".join(f"{_prototype(n, ps)};\n" for n, ps in signatures.items())
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
        parts += ["\n"] + [_HELPERS[h] for h in helpers]
    for name, params in signatures.items():
        parts += ["\n", f"{_prototype(name, params)} {{\n", bodies[name], "}\n"]
    return CSource(code="".join(parts), signatures=dict(signatures), header=header)
