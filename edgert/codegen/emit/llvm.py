"""TIR PrimFuncs -> one relocatable object for a CPU, by TVM's LLVM back end.

Contract
--------
``emit_object(funcs, llvm_target)`` lowers the kernels together, exactly as ``emit.c`` does
up to code generation (same pass list, ``bind_raw_pointers`` instead of the packed API), but
with TVM's vectorizer on, and has LLVM compile them for ``llvm_target`` (a TVM target dict:
``{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}``). Every kernel is
an ordinary C-ABI function with the same prototype ``emit.c.emit_c`` would print, so model.c calls
either alike. The object references only the helpers of ``tir.extern_helpers()`` (compile
that C beside it); it needs no TVM runtime.

LLVM schedules each kernel for the CPU named by ``mcpu``: NEON on AArch64, and the int8
dot-product instructions (SDOT) where that CPU has them.
"""
from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

import tvm
from tvm import tirx

from . import tir
from .tir import Param

__all__ = ["MAX_LOCAL_BYTES", "ObjectCode", "emit_object"]

#: Largest kernel-local array on a Linux board (its stack): a position's accumulators for
#: every channel (see edgert.codegen.schedule), far below the 8 MiB default stack.
MAX_LOCAL_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ObjectCode(tir.KernelSignatures):
    """Result of ``emit_object``: the ELF object, its assembly (for reading), and each
    kernel's parameters in call order (names ``p0``, ``p1``, ...)."""

    object: bytes
    assembly: str
    signatures: dict[str, list[Param]]


def emit_object(funcs: Mapping[str, tirx.PrimFunc], llvm_target: dict, *, aliased: Collection[str] = ()) -> ObjectCode:
    tir.check_signatures(funcs)
    tir.register_intrinsic_lowerings()  # edgert_clz32 and friends are external calls alike
    target = tvm.target.Target(llvm_target)
    mod = tvm.IRModule({name: func.with_attr("global_symbol", name).with_attr("target", target)
                        for name, func in funcs.items()})
    with tvm.transform.PassContext(opt_level=3):
        mod = tvm.ir.transform.Sequential(tir.lowering_passes(vectorize=True))(mod)
    signatures = {}
    for name, func in funcs.items():
        params = tir.params(name, func, mod[name], aliased=name in aliased, vectors=True,
                               max_local_bytes=MAX_LOCAL_BYTES)
        signatures[name] = [dataclasses.replace(p, name=f"p{i}") for i, p in enumerate(params)]
    built = tvm.get_global_func("target.build.llvm")(mod, target)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernels.o"
        built.write_to_file(str(path))
        obj = path.read_bytes()
    return ObjectCode(object=obj, assembly=built.inspect_source("asm"), signatures=signatures)
