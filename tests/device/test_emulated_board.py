"""The emulated Cortex-M7 (QEMU mps2-an500) end to end through the CLI, and every device
error a user can meet: no such port, a board that does not answer, a board running another
model, a firmware that does not fit."""
from __future__ import annotations

import re
import socket
import subprocess
import threading

import numpy as np
import pytest

from edgert import api
from edgert.cli import main
from edgert.device import emulator
from edgert.device.board import connect
from edgert.validate.tflm_ref import run_tflm

from tests.conftest import HELLO_WORLD
from .malformed import CASES, expect_error

pytestmark = [pytest.mark.qemu, pytest.mark.cross]

REPO_TARGETS = api.targets.targets_dir()


def _sample(tmp_path, value=64):
    path = tmp_path / "x.npy"
    np.save(path, np.array([[value]], dtype=np.int8))
    return path


def test_flash_run_validate_through_the_cli(hello_m7_build, tmp_path, capsys):
    d = str(hello_m7_build.dir)
    try:
        assert main(["flash", d]) == 0
        running = emulator.running(hello_m7_build.dir)
        assert running is not None and running.url.startswith("socket://")
        assert main(["run", d, "--input", str(_sample(tmp_path)), "--output", str(tmp_path / "y.npy")]) == 0
        expected = run_tflm(hello_m7_build.model_path.read_bytes(), [np.array([[64]], dtype=np.int8)])[0]
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected.reshape(1, 1))
        assert main(["validate", d, "--random", "8", "--report", str(tmp_path / "r.json")]) == 0
        out = capsys.readouterr().out
        assert "bit-exact        100.0%" in out and "instructions" in out
        # the same board served all three commands
        assert emulator.running(hello_m7_build.dir).pid == running.pid
    finally:
        main(["flash", "--stop", d])
    assert emulator.running(hello_m7_build.dir) is None


def test_malformed_frames_then_a_correct_inference(hello_m7_build):
    with connect(hello_m7_build) as board:
        for wire, codes in CASES.values():
            expect_error(board.session, wire, codes)
        board.session.check_build(hello_m7_build.meta)
        x = np.array([[-100]], dtype=np.int8)
        result = board.session.run([x], hello_m7_build.meta["io"]["outputs"])
        expected = run_tflm(hello_m7_build.model_path.read_bytes(), [x])[0]
        np.testing.assert_array_equal(result.outputs[0], expected.reshape(result.outputs[0].shape))


def test_instruction_count_is_deterministic(hello_m7_build):
    x = np.array([[33]], dtype=np.int8)
    counts = []
    for _ in range(2):  # two boards, two runs each
        with connect(hello_m7_build) as board:
            for _ in range(2):
                counts.append(board.latency(board.session.run([x], hello_m7_build.meta["io"]["outputs"]).ticks))
    assert len(set(counts)) == 1 and counts[0] > 0, counts


@pytest.mark.parametrize("array, message", [
    (np.zeros(100, np.int8), "input 0: the board's model takes int8[1x1] (1 values), got int8[100] (100 values)"),
    (np.zeros((1, 0), np.int8), "input 0: the board's model takes int8[1x1] (1 values), got int8[1x0] (0 values)"),
    (np.zeros((1, 1), np.float32), "input 0: the board's model takes int8[1x1], got float32[1x1]"),
    (np.zeros((1, 1), np.int16), "input 0: the board's model takes int8[1x1], got int16[1x1]"),
])
def test_a_wrong_input_is_refused_before_anything_is_sent(hello_m7_build, tmp_path, capsys, array, message):
    path = tmp_path / "x.npy"
    np.save(path, array)
    d = str(hello_m7_build.dir)
    try:
        assert main(["flash", d]) == 0
        capsys.readouterr()
        assert main(["run", d, "--input", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and "hint:" in err
        # the board still answers, with the right output for a right input
        assert main(["run", d, "--input", str(_sample(tmp_path)), "--output", str(tmp_path / "y.npy")]) == 0
        want = run_tflm(hello_m7_build.model_path.read_bytes(), [np.array([[64]], dtype=np.int8)])[0]
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want.reshape(1, 1))
    finally:
        main(["flash", "--stop", d])


def test_no_such_port_is_a_device_error(hello_m7_build, tmp_path, capsys):
    rc = main(["run", str(hello_m7_build.dir), "--input", str(_sample(tmp_path)), "--port", "/dev/ttyEDGERT-NONE"])
    err = capsys.readouterr().err
    assert rc == 3 and "cannot open port /dev/ttyEDGERT-NONE" in err and "hint:" in err


def test_a_silent_board_times_out(hello_m7_build, tmp_path, capsys):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    try:
        rc = main(["run", str(hello_m7_build.dir), "--input", str(_sample(tmp_path)), "--port", url, "--timeout", "0.5"])
    finally:
        server.close()
    err = capsys.readouterr().err
    assert rc == 3 and "did not answer HELLO within 0.5 s" in err and "hint:" in err


def test_a_board_running_another_model_is_refused(hello_m7_build, tmp_path, capsys):
    other = api.build(HELLO_WORLD.with_name("hello_world_float.tflite"), "cortex-m7", tmp_path / "other")
    running = emulator.start(other.dir, other.target.board.emulator, other.dir / other.meta["firmware"],
                             other.target.board.name, detach=False)
    try:
        rc = main(["run", str(hello_m7_build.dir), "--input", str(_sample(tmp_path)), "--port", running.url])
    finally:
        emulator.stop(other.dir)
    err = capsys.readouterr().err
    assert rc == 3 and "runs a different model" in err and "edgert flash" in err


def test_validation_below_threshold_exits_4(hello_m7_build, tmp_path, capsys):
    # Three samples labelled with a class the one-output model cannot predict otherwise than 0.
    np.savez(tmp_path / "d.npz", x=np.array([[[1]], [[2]], [[3]]], dtype=np.int8), y=np.array([5, 5, 5]))
    rc = main(["validate", str(hello_m7_build.dir), "--dataset", str(tmp_path / "d.npz"), "--min-accuracy", "0.5"])
    err = capsys.readouterr().err
    assert rc == 4 and "accuracy 0.0% < --min-accuracy 50.0%" in err


def test_a_firmware_that_does_not_fit_names_the_region_and_bytes(tmp_path, capsys):
    small = (REPO_TARGETS / "boards" / "mps2-an500.toml").read_text().replace(
        "length = 0x00400000             # 4 MiB SSRAM", "length = 0x4000")
    assert "0x4000" in small
    toml = tmp_path / "tiny-m7.toml"
    toml.write_text(small)  # its support = "mps2" resolves to edgert's own board folder
    rc = main(["build", str(HELLO_WORLD), "--target", "cortex-m7", "--board", str(toml), "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err
    m = re.search(r"([\d,]+) bytes over the RAM region of 16,384 bytes", err)
    assert rc == 2 and m, err
    assert int(m.group(1).replace(",", "")) > 0 and "stack" in err


def test_memory_report_agrees_with_the_elf(hello_m7_build):
    mem = hello_m7_build.report["memory"]
    elf = hello_m7_build.dir / hello_m7_build.meta["firmware"]
    sizes = {}
    for line in subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    assert mem["flash"]["text"] == sizes[".vectors"] + sizes[".text"] + sizes.get(".ARM.exidx", 0)
    assert mem["flash"]["rodata"] == sizes[".rodata"]
    assert mem["ram"]["bss"] + mem["ram"]["arena"] == sizes[".bss"]
    assert mem["ram"]["arena"] >= hello_m7_build.meta["arena_bytes"]
    assert mem["ram"]["stack"] == hello_m7_build.target.board.stack_bytes
    ram = next(r for r in mem["regions"] if r["kind"] == "ram")
    assert ram["used"] == mem["ram"]["total"] and ram["free"] == ram["length"] - ram["used"]


def test_cortex_m4_board_runs_the_same_model(tmp_path):
    b = api.build(HELLO_WORLD, "cortex-m4", tmp_path / "m4")
    assert b.target.board.name == "mps2-an386"
    x = np.array([[12]], dtype=np.int8)
    with connect(b) as board:
        result = board.session.run([x], b.meta["io"]["outputs"])
    np.testing.assert_array_equal(result.outputs[0], run_tflm(b.model_path.read_bytes(), [x])[0].reshape(1, 1))


def test_targets_lists_the_boards(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "cortex-m7" in out and "mps2-an500" in out and "cortex-m4" in out and "mps2-an386" in out


def test_bench_on_the_board_prints_markdown_and_json(tmp_path, capsys):
    rc = main(["bench", "--target", "cortex-m7", str(HELLO_WORLD), "-o", str(tmp_path / "bench"),
               "--json", str(tmp_path / "bench.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0].startswith("| model | instructions |")
    row = __import__("json").loads((tmp_path / "bench.json").read_text())["models"][0]
    assert row["model"] == "hello_world_int8" and row["latency"] > 0 and row["unit"] == "instructions"
    assert row["flash"] > row["arena"] > 0 and "tflm_cmsis_nn" not in row  # no recorded TFLM figure for this model
