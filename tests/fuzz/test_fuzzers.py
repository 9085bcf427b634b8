"""The fuzzers of scripts/fuzz.py, for a short budget (the long runs are commands: see the
README's "Fuzzing"), and proof that the firmware harness's contract check can fail."""
from __future__ import annotations

import subprocess

import pytest

from tests.support.scripts import load

fuzz = load("scripts/fuzz.py")


def test_the_firmware_server_survives_a_short_fuzzing_run(tmp_path):
    result = fuzz.fuzz_firmware(100_000, None, work=tmp_path)
    assert result["crashes"] == [] and result["runs"] == 100_000, result["log"][-3000:]


@pytest.mark.parametrize("breakage, replacement", [
    # a request answered twice
    ("case EDGERT_CMD_HELLO: do_hello(seq, p, len); break;",
     "case EDGERT_CMD_HELLO: do_hello(seq, p, len); do_hello(seq, p, len); break;"),
    # a reply whose length field lies
    ("put16(reply + 3, (uint32_t)len);", "put16(reply + 3, (uint32_t)len + 1);"),
])
def test_the_harness_catches_a_server_that_breaks_the_protocol(tmp_path, breakage, replacement):
    source = (fuzz.REPO / "firmware" / "runtime" / "server.c").read_text()
    assert breakage in source
    broken = tmp_path / "server.c"
    broken.write_text(source.replace(breakage, replacement))
    binary = fuzz.build_server_fuzzer(tmp_path, server=broken)
    seed = fuzz.SERVER_CORPUS / "seed-session"
    proc = subprocess.run([str(binary), str(seed)], capture_output=True, text=True)
    assert proc.returncode != 0 and "deadly signal" in proc.stderr, proc.stderr[-2000:]


def test_the_loaders_survive_a_short_fuzzing_run(tmp_path):
    pytest.importorskip("atheris", reason="atheris has wheels for Linux on x86-64 only")
    result = fuzz.fuzz_loaders(3_000, None, work=tmp_path)
    assert result["crashes"] == [] and result["runs"] == 3_000, result["log"][-3000:]
