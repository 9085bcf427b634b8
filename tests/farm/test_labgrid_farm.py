"""edgert validate --labgrid against a real labgrid coordinator and exporter on loopback,
whose places are emulated boards (edgert farm serve): samples sharded over the boards, each
checked once; a board that dies mid-run; places held by someone else; an unreachable
coordinator; a mixed farm; blank boards flashed over their place's serial port."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest

from edgert import api
from edgert.cli import main
from edgert.farm.coordinator import Coordinator
from edgert.farm.serve import Farm

from tests.conftest import HELLO_WORLD, MLPERF

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


@pytest.fixture(scope="module")
def kws_m7(tmp_path_factory):
    return api.build(MLPERF / "kws_dscnn_int8.tflite", "cortex-m7", tmp_path_factory.mktemp("kws_m7"))


@pytest.fixture(scope="module")
def hello_m7(tmp_path_factory):
    return api.build(HELLO_WORLD, "cortex-m7", tmp_path_factory.mktemp("hello_m7"))


@pytest.fixture(scope="module")
def kws_farm(kws_m7, tmp_path_factory):
    with Farm(kws_m7, boards=4, workdir=tmp_path_factory.mktemp("farm")) as farm:
        yield farm


def _validate(build, farm, report, *extra) -> int:
    return main(["validate", str(build.dir), "--labgrid", "--coordinator", farm.address, "--report", str(report),
                 *extra])


def _checked_once(report_path, samples: int) -> dict:
    report = json.loads(report_path.read_text())
    lines = (report_path.parent / "journal.jsonl").read_text().splitlines()
    indices = [json.loads(line)["index"] for line in lines[1:]]
    assert sorted(indices) == list(range(samples)), "a sample lost or checked twice"
    assert report["summary"]["samples"] == samples and report["summary"]["exact_rate"] == 1.0
    return report


def _all_free(farm) -> bool:
    with Coordinator(farm.address) as c:
        return all(p.acquired_by is None for p in c.places())


@pytest.mark.slow
def test_samples_are_shared_by_four_boards_each_checked_once(kws_m7, kws_farm, tmp_path, capsys):
    assert _validate(kws_m7, kws_farm, tmp_path / "r.json", "--boards", "4", "--random", "200") == 0
    report = _checked_once(tmp_path / "r.json", 200)
    boards = {b["board"]: b for b in report["boards"]}
    assert set(boards) == set(kws_farm.places) and sum(b["samples"] for b in boards.values()) == 200
    assert all(b["samples"] > 0 and b["dropped"] is None for b in boards.values())
    assert report["summary"]["latency_unit"] == "instructions"  # the places are tagged emulated
    assert "acquired 4 place(s)" in capsys.readouterr().err
    assert _all_free(kws_farm)


@pytest.mark.slow
def test_a_board_that_dies_mid_run_is_dropped_and_its_sample_redone(kws_m7, tmp_path, capsys):
    with Farm(kws_m7, boards=4, workdir=tmp_path / "farm") as farm:
        journal = tmp_path / "journal.jsonl"
        victim = farm.places[1]

        def kill_when_running():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if journal.exists() and len(journal.read_text().splitlines()) > 40:
                    os.kill(farm.pids[victim], signal.SIGKILL)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_running)
        killer.start()
        assert _validate(kws_m7, farm, tmp_path / "r.json", "--boards", "4", "--random", "200", "--timeout", "3") == 0
        killer.join()
        report = _checked_once(tmp_path / "r.json", 200)
        boards = {b["board"]: b for b in report["boards"]}
        assert boards[victim]["dropped"] is not None and boards[victim]["samples"] < 200
        assert all(boards[p]["dropped"] is None for p in farm.places if p != victim)
        assert sum(b["samples"] for b in boards.values()) == 200
        out = capsys.readouterr().out
        assert any(line.startswith(victim) and "dropped out" in line for line in out.splitlines()), out
        assert _all_free(farm)


def _labgrid_client(farm, place, *command):
    """labgrid's own client, as another user of the farm would run it."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "labgrid-client"
    subprocess.run([str(exe), "-x", farm.address, "-p", place, *command], check=True, capture_output=True)


@pytest.mark.slow
def test_places_held_by_someone_else_are_waited_for_or_done_without(kws_m7, kws_farm, tmp_path, capsys):
    held = kws_farm.places[:2]  # another user holds two of the four
    for p in held:
        _labgrid_client(kws_farm, p, "acquire")
    try:
        assert _validate(kws_m7, kws_farm, tmp_path / "r.json", "--boards", "4", "--random", "20") == 0
        err = capsys.readouterr().err
        assert "using 2 of the 4 places wanted" in err
        report = _checked_once(tmp_path / "r.json", 20)
        assert {b["board"] for b in report["boards"]} == set(kws_farm.places[2:])
        # at least three, waiting at most 2 s: it says what it waits for, then gives up (exit 3)
        assert _validate(kws_m7, kws_farm, tmp_path / "r2.json", "--boards", "4", "--boards-min", "3",
                         "--wait", "2", "--random", "5") == 3
        err = capsys.readouterr().err
        assert "waiting for places: holding 2 of the 4 wanted (at least 3)" in err
        assert "waited 2 s for 3 labgrid place(s)" in err
    finally:
        for p in held:
            _labgrid_client(kws_farm, p, "release")
    assert _all_free(kws_farm)


def test_an_unreachable_coordinator_is_one_line_exit_3(kws_m7, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    code = main(["validate", str(kws_m7.dir), "--labgrid", "--coordinator", f"127.0.0.1:{port}", "--random", "5"])
    err = capsys.readouterr().err
    assert code == 3 and f"cannot reach the labgrid coordinator at 127.0.0.1:{port}" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_each_build_goes_only_to_places_of_its_board(hello_m7, tmp_path, tmp_path_factory, capsys):
    pi = api.build(HELLO_WORLD, "rpi4", tmp_path_factory.mktemp("hello_rpi4"))
    with Farm(hello_m7, boards=2, workdir=tmp_path / "m7", name="m7") as m7, \
            Farm(pi, boards=2, workdir=tmp_path / "pi", name="pi", coordinator=m7.address) as pis:
        for build, farm, other in ((hello_m7, m7, pis), (pi, pis, m7)):
            report_path = tmp_path / f"{farm.name}.json"
            assert _validate(build, m7, report_path, "--random", "30") == 0
            report = _checked_once(report_path, 30)
            assert sorted(report["farm"]["acquired"]) == farm.places
            assert not set(report["farm"]["acquired"]) & set(other.places)


@pytest.mark.slow
def test_blank_boards_are_flashed_over_their_places_serial_port(hello_m7, tmp_path, capsys):
    with Farm(hello_m7, boards=2, workdir=tmp_path / "farm", blank=True) as farm:
        assert _validate(hello_m7, farm, tmp_path / "r.json", "--random", "20") == 0
        err = capsys.readouterr().err
        assert all(f"{p}: flashing hello_world_int8 by serial-stm32" in err for p in farm.places)
        _checked_once(tmp_path / "r.json", 20)
        # now they run it: a second run flashes nothing
        assert _validate(hello_m7, farm, tmp_path / "r.json", "--random", "20") == 0
        assert "flashing" not in capsys.readouterr().err


@pytest.mark.slow
def test_bench_runs_on_every_kind_of_board_in_the_farm(hello_m7, tmp_path, tmp_path_factory, capsys):
    from edgert import bench

    pi = api.build(HELLO_WORLD, "rpi4", tmp_path_factory.mktemp("hello_rpi4_bench"))
    with Farm(hello_m7, boards=1, workdir=tmp_path / "m7", name="m7", blank=True) as m7, \
            Farm(pi, boards=1, workdir=tmp_path / "pi", name="pi", coordinator=m7.address):
        assert main(["bench", "--labgrid", "--coordinator", m7.address, str(HELLO_WORLD),
                     "-o", str(tmp_path / "bench"), "--json", str(tmp_path / "b.json")]) == 0
    out, err = capsys.readouterr()
    assert "cortex-m7 on mps2-an500 (place m7-0)" in out and "rpi4 on" in out
    assert "m7-0: power cycle (into its bootloader)" in err and "m7-0: flashing hello_world_int8" in err
    kinds = {r["target"]: r for r in json.loads((tmp_path / "b.json").read_text())["kinds"]}
    # the same instruction counts as the emulated boards give directly: deterministic
    direct = bench.bench_device([HELLO_WORLD], "cortex-m7", out_dir=tmp_path / "direct")
    assert kinds["cortex-m7"]["models"][0]["latency"] == direct["models"][0]["latency"]
    assert kinds["rpi4"]["models"][0]["unit"] == "instructions"
