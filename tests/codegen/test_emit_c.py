"""edgert.codegen.emit.c: TE kernels -> plain C, compiled on the host, bit-exact vs numpy.

All kernels are emitted as one translation unit (as the model emitter will do), compiled
once into a shared library, and each is run on random data from a fixed seed.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
from tvm import s_tir, te, tirx  # noqa: E402

from edgert.codegen.emit.c import CEmitError, emit_c  # noqa: E402

CC = shutil.which("cc")
ARM_GCC = shutil.which("arm-none-eabi-gcc")

# -ffp-contract=off: GCC contracts a*b+c into an FMA by default where the CPU has one
# (AArch64, M7 with FPU), which rounds differently from numpy. Bit-exact floats need it off.
HOST_FLAGS = ["-O2", "-shared", "-fPIC", "-ffp-contract=off"]
STRICT_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-c"]


# ---------------------------------------------------------------------------------------
# Kernels (TE) and their numpy references
# ---------------------------------------------------------------------------------------

# conv: NHWC int8, 3x3, pad 1, per-channel fixed-point requantization (TFLM single rounding:
# (acc * M + 2^(s-1)) >> s in int64), input/output zero points, clamp to int8.
N, H, W, CIN, COUT, KS = 1, 6, 6, 3, 4, 3
IN_OFFSET, OUT_ZP = 5, -3


def conv_te():
    x = te.placeholder((N, H, W, CIN), "int8", name="x")
    w = te.placeholder((COUT, KS, KS, CIN), "int8", name="w")
    bias = te.placeholder((COUT,), "int32", name="bias")
    mult = te.placeholder((COUT,), "int32", name="mult")
    rshift = te.placeholder((COUT,), "int32", name="rshift")
    # Zero padding of the offset-corrected input (TFLite pads with the input zero point).
    xp = te.compute(
        (N, H + 2, W + 2, CIN),
        lambda n, h, w_, c: te.if_then_else(
            tirx.all(h >= 1, h <= H, w_ >= 1, w_ <= W),
            x[n, h - 1, w_ - 1, c].astype("int32") + IN_OFFSET,
            tirx.const(0, "int32")),
        name="xp")
    kh, kw, ci = (te.reduce_axis((0, KS), n) for n in ("kh", "kw", "ci"))
    acc = te.compute(
        (N, H, W, COUT),
        lambda n, h, w_, co: te.sum(xp[n, h + kh, w_ + kw, ci] * w[co, kh, kw, ci].astype("int32"),
                                    axis=[kh, kw, ci]),
        name="acc")

    def requant(n, h, w_, co):
        s = rshift[co].astype("int64")
        prod = (acc[n, h, w_, co] + bias[co]).astype("int64") * mult[co].astype("int64")
        y = ((prod + (tirx.const(1, "int64") << (s - 1))) >> s).astype("int32") + OUT_ZP
        return tvm.te.min(tvm.te.max(y, -128), 127).astype("int8")

    out = te.compute((N, H, W, COUT), requant, name="out")
    return te.create_prim_func([x, w, bias, mult, rshift, out])


def conv_scheduled():
    sch = s_tir.Schedule(conv_te())
    sch.compute_inline(sch.get_sblock("xp"))
    # Requantize each accumulator right after its reduction: `acc` shrinks to one int32.
    sch.reverse_compute_at(sch.get_sblock("out"), sch.get_loops(sch.get_sblock("acc"))[3])
    return sch.mod["main"]


def conv_ref(x, w, bias, mult, rshift):
    xp = np.zeros((N, H + 2, W + 2, CIN), np.int64)
    xp[:, 1:-1, 1:-1, :] = x.astype(np.int64) + IN_OFFSET
    acc = np.zeros((N, H, W, COUT), np.int64)
    for kh in range(KS):
        for kw in range(KS):
            acc += np.einsum("nhwc,oc->nhwo", xp[:, kh:kh + H, kw:kw + W, :],
                             w[:, kh, kw, :].astype(np.int64))
    s = rshift.astype(np.int64)
    y = ((acc + bias) * mult.astype(np.int64) + (np.int64(1) << (s - 1))) >> s
    return np.clip(y + OUT_ZP, -128, 127).astype(np.int8)


def lut_te():
    """out[i] = table[x[i] + 128]: indexing one buffer by a value loaded from another."""
    x = te.placeholder((64,), "int8", name="x")
    table = te.placeholder((256,), "int8", name="table")
    out = te.compute((64,), lambda i: table[x[i].astype("int32") + 128], name="out")
    return te.create_prim_func([x, table, out])


# Binary dense (LCE style): 32 channels a uint32 word, dot = bits - 2 * popcount(x ^ w).
BN, BK, BWORDS = 3, 5, 4


def bdense_te():
    x = te.placeholder((BN, BWORDS), "uint32", name="x")
    w = te.placeholder((BK, BWORDS), "uint32", name="w")
    k = te.reduce_axis((0, BWORDS), "k")
    pc = te.compute((BN, BK), lambda n, o: te.sum(tirx.popcount(x[n, k] ^ w[o, k]).astype("int32"),
                                                  axis=k), name="pc")
    out = te.compute((BN, BK), lambda n, o: 32 * BWORDS - 2 * pc[n, o], name="out")
    sch = s_tir.Schedule(te.create_prim_func([x, w, out]))
    sch.reverse_compute_at(sch.get_sblock("out"), sch.get_loops(sch.get_sblock("pc"))[1])
    return sch.mod["main"]


def popcount_np(a):
    bytes_ = a.view(np.uint8).reshape(*a.shape, a.dtype.itemsize)
    return np.unpackbits(bytes_, axis=-1).sum(-1)


def bdense_ref(x, w):
    pc = popcount_np(x[:, None, :] ^ w[None, :, :]).sum(-1)
    return (32 * BWORDS - 2 * pc).astype(np.int32)


def popw_te():
    """popcount on the other widths: uint8 and int64 (negative values included)."""
    a = te.placeholder((16,), "uint8", name="a")
    b = te.placeholder((16,), "int64", name="b")
    pa = te.compute((16,), lambda i: tirx.popcount(a[i]), name="pa")
    pb = te.compute((16,), lambda i: tirx.popcount(b[i]), name="pb")
    return te.create_prim_func([a, b, pa, pb])


def mixed_te():
    """Casts between int16/uint8/int32/int64/uint32/float32 with max/min clamps."""
    a = te.placeholder((32,), "int16", name="a")
    b = te.placeholder((32,), "uint8", name="b")
    c = te.placeholder((32,), "uint32", name="c")
    o_u8 = te.compute((32,), lambda i: tvm.te.min(tvm.te.max(
        a[i].astype("int32") * b[i].astype("int32") - 1000, 0), 255).astype("uint8"), name="o_u8")
    o_i64 = te.compute((32,), lambda i: a[i].astype("int64") * c[i].astype("int64")
                       - (c[i] >> tirx.const(3, "uint32")).astype("int64"), name="o_i64")
    o_u32 = te.compute((32,), lambda i: (c[i] * tirx.const(2654435761, "uint32"))
                       ^ b[i].astype("uint32"), name="o_u32")
    o_f32 = te.compute((32,), lambda i: a[i].astype("float32") * tirx.const(0.125, "float32")
                       + b[i].astype("float32"), name="o_f32")
    return te.create_prim_func([a, b, c, o_u8, o_i64, o_u32, o_f32])


def mixed_ref(a, b, c):
    a32, b32 = a.astype(np.int32), b.astype(np.int32)
    o_u8 = np.clip(a32 * b32 - 1000, 0, 255).astype(np.uint8)
    o_i64 = a.astype(np.int64) * c.astype(np.int64) - (c >> np.uint32(3)).astype(np.int64)
    o_u32 = (c * np.uint32(2654435761)) ^ b.astype(np.uint32)
    o_f32 = a.astype(np.float32) * np.float32(0.125) + b.astype(np.float32)
    return o_u8, o_i64, o_u32, o_f32


def satadd_scheduled():
    """int8 saturating add under split/reorder/unroll/vectorize/compute_inline."""
    a = te.placeholder((8, 32), "int8", name="a")
    b = te.placeholder((8, 32), "int8", name="b")
    s = te.compute((8, 32), lambda i, j: a[i, j].astype("int16") + b[i, j].astype("int16"), name="s")
    out = te.compute((8, 32), lambda i, j: tvm.te.min(tvm.te.max(s[i, j], -128), 127).astype("int8"),
                     name="out")
    sch = s_tir.Schedule(te.create_prim_func([a, b, out]))
    sch.compute_inline(sch.get_sblock("s"))
    i, j = sch.get_loops(sch.get_sblock("out"))
    jo, ji = sch.split(j, [None, 8])
    sch.reorder(jo, i, ji)
    jio, jii = sch.split(ji, [None, 4])
    sch.unroll(jio)
    sch.vectorize(jii)  # becomes a plain inner loop in C (see the edgert.codegen.emit.c docstring)
    return sch.mod["main"]


def kernels():
    return {
        "conv0": conv_scheduled(),
        "lut0": lut_te(),
        "bdense0": bdense_te(),
        "popw0": popw_te(),
        "mixed0": mixed_te(),
        "satadd0": satadd_scheduled(),
    }


# ---------------------------------------------------------------------------------------
# Fixtures: emit once, compile once
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def source():
    return emit_c(kernels())


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr}"


@pytest.fixture(scope="module")
def lib(source, tmp_path_factory):
    if CC is None:
        pytest.skip("no host C compiler (cc)")
    d = tmp_path_factory.mktemp("c_emit")
    (d / "kernels.c").write_text(source.code)
    _run([CC, *HOST_FLAGS, "-o", str(d / "kernels.so"), str(d / "kernels.c")])
    return ctypes.CDLL(str(d / "kernels.so"))


def call(lib, source, name, *arrays):
    """Call kernel ``name`` with numpy arrays, checked against the emitted signature."""
    params = source.signatures[name]
    assert len(arrays) == len(params)
    for p, a in zip(params, arrays):
        assert a.flags.c_contiguous and a.shape == p.shape, (name, p)
    fn = getattr(lib, name)
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * len(arrays)
    fn(*[a.ctypes.data for a in arrays])


rng = np.random.default_rng(0)


def ints(shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------

def test_output_is_plain_c(source):
    assert not re.search(r"tvm", source.code, re.IGNORECASE)
    includes = set(re.findall(r"#include\s*(\S+)", source.code))
    assert includes <= {"<stdint.h>", "<stddef.h>", "<math.h>", "<stdbool.h>"}
    assert "void conv0(const int8_t* restrict x, const int8_t* restrict w, " \
           "const int32_t* restrict bias, const int32_t* restrict mult, " \
           "const int32_t* restrict rshift, int8_t* restrict out)" in source.code
    assert "static inline uint32_t edgert_popcount32(uint32_t x)" in source.code
    assert "__builtin" not in source.code  # portable to any C99 compiler


def test_signatures_mark_read_only_buffers_const(source):
    sig = {n: [(p.name, p.ctype, p.is_const) for p in ps] for n, ps in source.signatures.items()}
    assert sig["lut0"] == [("x", "int8_t", True), ("table", "int8_t", True), ("out", "int8_t", False)]
    assert [p.is_const for p in source.signatures["mixed0"]] == [True] * 3 + [False] * 4
    assert [p.ctype for p in source.signatures["mixed0"]] == [
        "int16_t", "uint8_t", "uint32_t", "uint8_t", "int64_t", "uint32_t", "float"]
    assert source.signatures["conv0"][-1].shape == (N, H, W, COUT)


def test_small_local_accumulator_is_a_c_local(source):
    # After reverse_compute_at the conv accumulator is a 1-element local array.
    body = source.code.split("void conv0(")[2]
    assert re.search(r"int32_t \w+\[1\];", body)


def test_conv_requant_bit_exact(lib, source):
    x = ints((N, H, W, CIN), np.int8)
    w = ints((COUT, KS, KS, CIN), np.int8)
    bias = rng.integers(-5000, 5000, COUT, dtype=np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, COUT, dtype=np.int32)
    rshift = rng.integers(38, 42, COUT, dtype=np.int32)
    out = np.zeros((N, H, W, COUT), np.int8)
    call(lib, source, "conv0", x, w, bias, mult, rshift, out)
    ref = conv_ref(x, w, bias, mult, rshift)
    assert np.array_equal(out, ref)
    assert len(np.unique(ref)) > 10  # the data exercises the requantization, not just clamps


def test_lut_bit_exact(lib, source):
    x, table = ints(64, np.int8), ints(256, np.int8)
    out = np.zeros(64, np.int8)
    call(lib, source, "lut0", x, table, out)
    assert np.array_equal(out, table[x.astype(np.int32) + 128])


def test_binary_dense_popcount_bit_exact(lib, source):
    x, w = ints((BN, BWORDS), np.uint32), ints((BK, BWORDS), np.uint32)
    out = np.zeros((BN, BK), np.int32)
    call(lib, source, "bdense0", x, w, out)
    assert np.array_equal(out, bdense_ref(x, w))


def test_popcount_other_widths_bit_exact(lib, source):
    a, b = ints(16, np.uint8), ints(16, np.int64)
    pa, pb = np.zeros(16, np.uint8), np.zeros(16, np.int64)
    call(lib, source, "popw0", a, b, pa, pb)
    assert np.array_equal(pa, popcount_np(a))
    assert np.array_equal(pb, popcount_np(b))


def test_mixed_dtypes_bit_exact(lib, source):
    a, b, c = ints(32, np.int16), ints(32, np.uint8), ints(32, np.uint32)
    outs = [np.zeros(32, t) for t in (np.uint8, np.int64, np.uint32, np.float32)]
    call(lib, source, "mixed0", a, b, c, *outs)
    for got, ref in zip(outs, mixed_ref(a, b, c)):
        assert np.array_equal(got, ref), (got.dtype, got, ref)


def test_scheduled_kernel_bit_exact(lib, source):
    a, b = ints((8, 32), np.int8), ints((8, 32), np.int8)
    out = np.zeros((8, 32), np.int8)
    call(lib, source, "satadd0", a, b, out)
    ref = np.clip(a.astype(np.int16) + b.astype(np.int16), -128, 127).astype(np.int8)
    assert np.array_equal(out, ref)


@pytest.mark.skipif(CC is None, reason="no host C compiler (cc)")
def test_compiles_as_strict_c99(source, tmp_path):
    (tmp_path / "k.c").write_text(source.code)
    _run([CC, *STRICT_FLAGS, "-o", str(tmp_path / "k.o"), str(tmp_path / "k.c")])


@pytest.mark.skipif(CC is None, reason="no host C compiler (cc)")
def test_header_mode(tmp_path):
    src = emit_c({"lut0": lut_te()}, header_name="kernels.h")
    assert '#include "kernels.h"' in src.code
    assert "void lut0(const int8_t* restrict x, const int8_t* restrict table, int8_t* restrict out);" \
        in src.header
    (tmp_path / "kernels.h").write_text(src.header)
    (tmp_path / "k.c").write_text(src.code)
    _run([CC, *STRICT_FLAGS, "-I", str(tmp_path), "-o", str(tmp_path / "k.o"), str(tmp_path / "k.c")])


@pytest.mark.cross
@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_compiles_for_cortex_m7(source, tmp_path):
    (tmp_path / "k.c").write_text(source.code)
    _run([ARM_GCC, "-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16", "-O2",
          *STRICT_FLAGS, "-o", str(tmp_path / "k.o"), str(tmp_path / "k.c")])


# ---------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------

def test_big_intermediate_buffer_is_refused():
    # Padding inlined but no reverse_compute_at: the whole int32 accumulator
    # (1*6*6*4 * 4 bytes = 576) would be a local array.
    sch = s_tir.Schedule(conv_te())
    sch.compute_inline(sch.get_sblock("xp"))
    with pytest.raises(ValueError, match=r"kernel conv0: internal buffer acc needs 576 bytes"):
        emit_c({"conv0": sch.mod["main"]})
    # Unscheduled, the padded input comes first; the error type is the project's own.
    with pytest.raises(CEmitError, match=r"kernel conv0: internal buffer xp needs 768 bytes"):
        emit_c({"conv0": conv_te()})


def test_parallel_loop_is_refused():
    sch = s_tir.Schedule(lut_te())
    sch.parallel(sch.get_loops(sch.get_sblock("out"))[0])
    with pytest.raises(ValueError, match=r"kernel lut0: loop .* is PARALLEL"):
        emit_c({"lut0": sch.mod["main"]})


@pytest.mark.parametrize("name", ["int", "1conv", "edgert_popcount32", "a-b"])
def test_bad_function_name_is_refused(name):
    with pytest.raises(ValueError, match="not a usable C function name"):
        emit_c({name: lut_te()})


def test_symbolic_shape_is_refused():
    n = tirx.Var("n", "int32")
    x = te.placeholder((n,), "int8", name="x")
    out = te.compute((n,), lambda i: x[i] + 1, name="out")
    with pytest.raises(ValueError, match="kernel k: buffer x has a symbolic shape"):
        emit_c({"k": te.create_prim_func([x, out])})


def test_aliased_kernels_drop_restrict():
    a = te.placeholder((16,), "int8", name="a")
    b = te.compute((16,), lambda i: a[i] + tvm.tirx.const(1, "int8"), name="b")
    funcs = {"inc0": te.create_prim_func([a, b]), "inc1": te.create_prim_func([a, b])}
    source = emit_c(funcs, aliased={"inc1"})
    assert all(p.restrict for p in source.signatures["inc0"])
    assert not any(p.restrict for p in source.signatures["inc1"])
    assert "restrict" in source.prototype("inc0") and "restrict" not in source.prototype("inc1")
    assert re.search(r"void inc1\((?:(?!restrict)[^)])*\)\s*\{", source.code)
