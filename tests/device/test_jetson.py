"""Jetson targets: CUDA kernels assembled into a cubin for each board's GPU architecture, and an
aarch64 runner that loads the CUDA driver at run time.

This machine has no GPU: here the tests check the cubins (their ELF header names the SM), the
kernel entries and launch sizes, the runner's linkage, and that the runner answers the
protocol under qemu-aarch64 and reports the missing driver when asked to invoke. The last
test runs the models on a GPU where one is present (it needs the NVIDIA driver and
nvidia-smi); elsewhere it is skipped and says so."""
from __future__ import annotations

import ctypes.util
import re
import shutil
import subprocess

import numpy as np
import pytest

from edgert import api, targets
from edgert.codegen.emit.cuda import cubin_arch
from edgert.device import protocol as P
from edgert.device.board import connect
from edgert.device.session import ProtocolError
from edgert.errors import UserError
from edgert.validate.tflm_ref import run_tflm
from tests.conftest import MLPERF

from tests.conftest import HELLO_WORLD
from tests.support import golden_kernels

pytestmark = [pytest.mark.qemu, pytest.mark.cross]

BOARDS = {"jetson-nano": 53, "jetson-xavier-nx": 72, "jetson-orin-nano": 87}
KWS = MLPERF / "kws_dscnn_int8.tflite"


@pytest.fixture(scope="module", params=list(BOARDS))
def jetson_build(request, tmp_path_factory):
    return api.build(HELLO_WORLD, request.param, tmp_path_factory.mktemp(request.param))


def test_kernels_are_the_recorded_ones(jetson_build):
    golden_kernels.check(jetson_build, HELLO_WORLD.stem)


def test_cubin_is_for_the_boards_gpu(jetson_build):
    b = jetson_build
    cubin = (b.dir / "kernels.cubin").read_bytes()
    assert cubin_arch(cubin) == BOARDS[b.target.name]
    assert b.report["cuda"]["arch"] == f"sm_{BOARDS[b.target.name]}" and "12.9" in b.report["cuda"]["ptxas"]
    # every layer is a kernel entry of the PTX, and its cubin bytes are inside the runner
    entries = re.findall(r"^\.visible \.entry (\w+)\(", (b.dir / "kernels.ptx").read_text(), flags=re.M)
    assert sorted(entries) == sorted(b.meta["kernels"])
    assert cubin in (b.dir / b.meta["runner"]).read_bytes()
    for name, (grid, block) in b.report["cuda"]["launches"].items():
        assert 1 <= block <= 64 and grid >= 1


def test_runner_is_cross_compiled_without_cuda_libraries(jetson_build):
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(jetson_build.dir / jetson_build.meta["runner"], "rb") as f:
        elf = ELFFile(f)
        assert elf["e_machine"] == "EM_AARCH64"
        needed = [t.needed for s in elf.iter_sections() if isinstance(s, DynamicSection)
                  for t in s.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
    assert needed == ["libc.so.6"]  # libcuda is opened at run time, not linked


def test_runner_without_a_gpu_answers_and_names_the_missing_driver(jetson_build):
    b = jetson_build
    with connect(b, None) as board:
        assert board.hello.model_hash == b.meta["model_hash"]
        with pytest.raises(ProtocolError) as e:
            board.session.run([np.array([[1]], dtype=np.int8)], b.meta["io"]["outputs"])
    assert e.value.code is P.Err.INVOKE_FAILED and e.value.detail == 0x10001  # EDGERT_CUDA_NO_DRIVER
    assert "no GPU driver" in e.value.hint


def _local_gpu_arch() -> str | None:
    if ctypes.util.find_library("cuda") is None or shutil.which("nvidia-smi") is None:
        return None
    proc = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return "sm_" + proc.stdout.split()[0].replace(".", "")


@pytest.mark.slow
@pytest.mark.skipif(_local_gpu_arch() is None, reason="no NVIDIA GPU and driver on this machine")
def test_models_bit_exact_on_a_local_gpu(tmp_path):
    """The Jetson runner built for this machine's CPU and GPU: KWS and hello_world bit-exact
    with TFLite Micro (int8 end to end, so no tolerance)."""
    arch = _local_gpu_arch()
    toml = (targets.targets_dir() / "jetson-orin-nano.toml").read_text()
    toml = toml.replace('cc = "aarch64-linux-gnu-gcc"', 'cc = "cc"').replace("-mcpu=cortex-a78ae", "-march=native")
    toml = re.sub(r'emulator = \[.*\]', "emulator = []", toml).replace('arch = "sm_87"', f'arch = "{arch}"')
    toml = toml.replace('mtriple = "aarch64-linux-gnu"', f'mtriple = "{__import__("platform").machine()}-linux-gnu"')
    (tmp_path / "local-gpu.toml").write_text(toml)
    for model in (HELLO_WORLD, KWS):
        b = api.build(model, tmp_path / "local-gpu.toml", tmp_path / model.stem)
        rng = np.random.default_rng(0)
        spec = b.meta["io"]["inputs"][0]
        with connect(b, None) as board:
            for _ in range(5):
                x = rng.integers(-128, 128, spec["shape"], dtype=np.int8)
                out = board.session.run([x], b.meta["io"]["outputs"]).outputs[0]
                np.testing.assert_array_equal(out, run_tflm(b.model_path.read_bytes(), [x])[0].reshape(out.shape))


@pytest.mark.parametrize("target, old, new, message", [
    ("jetson-orin-nano", 'arch = "sm_87"', 'arch = "87"', "arch must name the GPU architecture as sm_NN, got '87'"),
    ("jetson-orin-nano", 'backend = "cuda"', 'backend = "opencl"', "unknown [kernels] backend 'opencl'"),
    ("rpi4", 'mcpu = "cortex-a72"', "", "[kernels] needs mcpu for the LLVM back end"),
])
def test_bad_kernels_table_is_named(tmp_path, target, old, new, message):
    toml = (targets.targets_dir() / f"{target}.toml").read_text()
    assert old in toml
    (tmp_path / "bad.toml").write_text(toml.replace(old, new))
    with pytest.raises(UserError, match=re.escape(message)):
        targets.load(tmp_path / "bad.toml")
