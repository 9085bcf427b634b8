"""What every kernel emitter shares (edgert.codegen.emit): the TIR pass list that lowers the
scheduled PrimFuncs without TVM's packed API (``bind_raw_pointers``), our lowerings of the
intrinsics TVM 0.27 does not lower itself (and the C helpers they call), the checks that a
kernel is plain C-callable code, the parameter descriptions model.c calls kernels by, and
``walk`` over TIR. TVM 0.27 facts: see edgert.codegen.emit.c."""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping

import tvm
import tvm_ffi
from tvm import s_tir, tirx

from edgert.errors import EdgertError
from edgert.ir.dtypes import C_TYPES

#: Largest internal buffer (bytes) a kernel may keep as a C local array. Anything bigger
#: must be a kernel parameter placed by the memory planner (DESIGN: no big stack arrays).
MAX_LOCAL_BYTES = 256

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
        return prototype(name, self.signatures[name])


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
    return [Param(name="", ctype=C_TYPES[str(p.ty.dtype.dtype)], is_const=i not in written,
                  shape=tuple(int(s) for s in p.ty.shape), restrict=not aliased)
            for i, p in enumerate(func.params)]


def extern_helpers() -> str:
    """Every helper the lowered kernels may call, as external C definitions: what a kernel
    object built by another back end (LLVM) links against."""
    return "#include <stdint.h>\n\n" + "\n".join(h.replace("static inline ", "") for h in HELPERS.values())


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
HELPERS = {
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
HELPERS["edgert_clz32"] = (
    "static inline int32_t edgert_clz32(int32_t x) {\n"
    "  return (int32_t)__builtin_clz((uint32_t)x);\n"
    "}\n"
)
# The DSP form of int8 dot products (edgert.codegen.dsp): four int8 values as one word (an
# unaligned LDR where the CPU allows it: Armv7E-M does), and one multiply-accumulate step over
# two such words: SXTB16 splits each into its even and its odd bytes, sign-extended to halfword
# pairs, and two SMLAD add the pairs' products. Both words split alike, so the step adds
# x0*w0 + x1*w1 + x2*w2 + x3*w3 exactly (mod 2^32, as the scalar loop), whatever the byte
# order. The rotated SXTB16 is inline asm: GCC 12's arm_acle.h has no __sxtb16 with a rotation
# and does not fold __ror into it. Without the DSP extension (the host), portable C.
HELPERS["edgert_load_s8x4"] = (
    "static inline int32_t edgert_load_s8x4(const int8_t* p) {\n"
    "  uint32_t v;\n"
    "  __builtin_memcpy(&v, p, 4);\n"
    "  return (int32_t)v;\n"
    "}\n"
)
HELPERS["edgert_acle"] = (  # not a function: the ACLE header, for the helpers that use it
    "#if defined(__ARM_FEATURE_SIMD32) || defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_SAT)\n"
    "#include <arm_acle.h>\n"
    "#endif\n"
)
HELPERS["edgert_smlad_s8x4"] = (
    "static inline int32_t edgert_smlad_s8x4(int32_t acc, int32_t x, int32_t w) {\n"
    "#if defined(__ARM_FEATURE_SIMD32)\n"
    "  int32_t xo, wo;\n"
    "  __asm__(\"sxtb16 %0, %1, ror #8\" : \"=r\"(xo) : \"r\"(x));\n"
    "  __asm__(\"sxtb16 %0, %1, ror #8\" : \"=r\"(wo) : \"r\"(w));\n"
    "  acc = __smlad(__sxtb16(x), __sxtb16(w), acc);\n"
    "  return __smlad(xo, wo, acc);\n"
    "#else\n"
    "  uint32_t sum = (uint32_t)acc;\n"
    "  for (int i = 0; i < 32; i += 8)\n"
    "    sum += (uint32_t)((int32_t)(int8_t)((uint32_t)x >> i) * (int32_t)(int8_t)((uint32_t)w >> i));\n"
    "  return (int32_t)sum;\n"
    "#endif\n"
    "}\n"
)
# int4 weights (edgert.codegen.dsp.int4_words): one word holds eight; shifted and masked, its
# two halves are int8 words of the weights times 16, each taken by the step above.
HELPERS["edgert_smlad_s4x8"] = (
    "static inline int32_t edgert_smlad_s4x8(int32_t acc, int32_t x0, int32_t x1, int32_t w) {\n"
    "  acc = edgert_smlad_s8x4(acc, x0, (int32_t)(((uint32_t)w << 4) & 0xF0F0F0F0u));\n"
    "  return edgert_smlad_s8x4(acc, x1, (int32_t)((uint32_t)w & 0xF0F0F0F0u));\n"
    "}\n"
)
# Depthwise convolutions: words of four channels, each channel its own accumulator; the lane
# (0-3, a constant once the lanes are unrolled) picks the even or odd bytes (SXTB16, with ROR
# #8 for the odd ones) and the bottom or top halfwords (SMLABB, SMLATT): one multiply-add a
# channel, the words' loads and SXTB16 shared by the four lanes.
HELPERS["edgert_smla_s8_lane"] = (
    "static inline int32_t edgert_smla_s8_lane(int32_t acc, int32_t x, int32_t w, int32_t lane) {\n"
    "#if defined(__ARM_FEATURE_SIMD32) && defined(__ARM_FEATURE_DSP)\n"
    "  int32_t xs, ws;\n"
    "  if (lane & 1) {\n"
    "    __asm__(\"sxtb16 %0, %1, ror #8\" : \"=r\"(xs) : \"r\"(x));\n"
    "    __asm__(\"sxtb16 %0, %1, ror #8\" : \"=r\"(ws) : \"r\"(w));\n"
    "  } else {\n"
    "    xs = __sxtb16(x);\n"
    "    ws = __sxtb16(w);\n"
    "  }\n"
    "  return (lane & 2) ? __smlatt(xs, ws, acc) : __smlabb(xs, ws, acc);\n"
    "#else\n"
    "  int32_t p = (int32_t)(int8_t)((uint32_t)x >> (8 * lane)) * (int32_t)(int8_t)((uint32_t)w >> (8 * lane));\n"
    "  return (int32_t)((uint32_t)acc + (uint32_t)p);\n"
    "#endif\n"
    "}\n"
)
# The DSP form's requantization (edgert.codegen.dsp.requantizer): srdhm(a, b) for |a| < 2^30
# as one SMMULR of 2a (the rounding high half of 2a*b: floor((2ab + 2^31) / 2^32)), and int8
# saturation as one SSAT. Portable C elsewhere, exact for every input.
HELPERS["edgert_srdhm_small"] = (
    "static inline int32_t edgert_srdhm_small(int32_t a, int32_t b) {\n"
    "#if defined(__ARM_FEATURE_DSP)\n"
    "  int32_t r;\n"
    "  __asm__(\"smmulr %0, %1, %2\" : \"=r\"(r) : \"r\"(a * 2), \"r\"(b));\n"
    "  return r;\n"
    "#else\n"
    "  return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);\n"
    "#endif\n"
    "}\n"
)
HELPERS["edgert_ssat8"] = (
    "static inline int32_t edgert_ssat8(int32_t x) {\n"
    "#if defined(__ARM_FEATURE_SAT)\n"
    "  return __ssat(x, 8);\n"
    "#else\n"
    "  return x < -128 ? -128 : (x > 127 ? 127 : x);\n"
    "#endif\n"
    "}\n"
)
HELPER_DEPS = {"edgert_popcount16": ["edgert_popcount32"], "edgert_popcount8": ["edgert_popcount32"],
               "edgert_smlad_s8x4": ["edgert_acle"], "edgert_smla_s8_lane": ["edgert_acle"],
               "edgert_smlad_s4x8": ["edgert_smlad_s8x4"],
               "edgert_ssat8": ["edgert_acle"]}
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
        if dtype not in C_TYPES:
            raise CEmitError(f"kernel {name}: buffer {p.name} has dtype {dtype}, which has no C type "
                             f"here (supported: {', '.join(C_TYPES)})")
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
def prototype(name: str, params: list[Param]) -> str:
    return f"void {name}({', '.join(p.decl for p in params)})"
