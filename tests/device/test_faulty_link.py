"""edgert validate over a link that breaks frames (tests/device/fault_link.py) between the
host and the emulated Cortex-M7: for every kind of fault, the run either completes with
every sample checked exactly once and bit-exact, or stops with exit 3 and a journal from
which --resume completes it, counting none twice."""
from __future__ import annotations

import json
import os
import signal

import pytest

from edgert import api
from edgert.cli import main
from edgert.device import emulator

from tests.conftest import MLPERF
from .fault_link import KINDS, FaultLink, at, every

pytestmark = [pytest.mark.qemu, pytest.mark.cross]

SAMPLES = 50
# Host-to-board frame 1 is the handshake; sample k (from 0) is frames 2+3k (SET_INPUT),
# 3+3k (INVOKE) and 4+3k (GET_OUTPUT). Frame 40 is in the middle of the run, in either direction.
MIDDLE = 40
INVOKE_IN_THE_MIDDLE = 3 + 3 * 12


@pytest.fixture
def board(hello_m7_build):
    """The emulated board running hello_world, started as a user would (edgert flash)."""
    d = hello_m7_build.dir
    assert main(["flash", str(d)]) == 0
    yield hello_m7_build
    main(["flash", "--stop", str(d)])


def _link(build, plan) -> FaultLink:
    return FaultLink(lambda: getattr(emulator.running(build.dir), "url", None), plan,
                     reset=lambda: emulator.reset(build.dir),
                     kill=lambda: os.kill(emulator.running(build.dir).pid, signal.SIGKILL))


def _validate(build, link, report, samples=SAMPLES, *extra) -> int:
    return main(["validate", str(build.dir), "--random", str(samples), "--port", link.url,
                 "--report", str(report), *extra])


def _checked_once(report_path, samples=SAMPLES) -> dict:
    """The report, after asserting that it and its journal hold every sample exactly once."""
    report = json.loads(report_path.read_text())
    lines = (report_path.parent / "journal.jsonl").read_text().splitlines()
    indices = [json.loads(line)["index"] for line in lines[1:]]
    assert sorted(indices) == list(range(samples)), "a sample lost or checked twice"
    assert report["summary"]["samples"] == samples and len(report["samples"]) == samples
    assert report["summary"]["exact_rate"] == 1.0
    return report


# What the host must have seen of each fault, by the session's counts (edgert.device.session.LinkStats).
SURVIVED = [
    ("drop", "up", "timeouts"), ("drop", "down", "timeouts"),
    ("flip", "up", "damaged frames"), ("flip", "down", "damaged frames"),
    ("duplicate", "up", "stale replies"), ("duplicate", "down", "stale replies"),
    ("delay", "up", "timeouts"), ("delay", "down", "timeouts"),
    ("reorder", "up", "timeouts"), ("reorder", "down", "timeouts"),
    ("disconnect", "up", "reconnects"), ("disconnect", "down", "reconnects"),
]


@pytest.mark.parametrize("kind, direction, seen", SURVIVED, ids=[f"{k}-{d}" for k, d, _ in SURVIVED])
def test_a_fault_is_survived_and_every_sample_checked_once(board, tmp_path, capsys, kind, direction, seen):
    with _link(board, at(kind, direction, MIDDLE)) as link:
        assert _validate(board, link, tmp_path / "report.json") == 0
    assert link.injected == [(kind, direction, MIDDLE)]
    report = _checked_once(tmp_path / "report.json")
    assert report["summary"]["link"][seen] >= 1, report["summary"]["link"]
    assert "(all survived)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def kws_m7_build(tmp_path_factory):
    return api.build(MLPERF / "kws_dscnn_int8.tflite", "cortex-m7", tmp_path_factory.mktemp("kws_m7"))


def test_a_board_reset_mid_inference_is_resynchronised_and_the_sample_redone(kws_m7_build, tmp_path, capsys):
    # KWS: an inference long enough (6.3 M instructions) for the reset to land inside it.
    d = str(kws_m7_build.dir)
    assert main(["flash", d]) == 0
    try:
        with _link(kws_m7_build, at("reset", "up", INVOKE_IN_THE_MIDDLE)) as link:
            assert _validate(kws_m7_build, link, tmp_path / "report.json") == 0
    finally:
        main(["flash", "--stop", d])
    assert link.injected == [("reset", "up", INVOKE_IN_THE_MIDDLE)]
    report = _checked_once(tmp_path / "report.json")
    assert report["summary"]["link"]["restarts"] == 1


def test_a_killed_emulator_stops_the_run_and_resume_completes_it(board, tmp_path, capsys):
    report = tmp_path / "report.json"
    with _link(board, at("kill", "up", MIDDLE)) as link:
        assert _validate(board, link, report) == 3
        err = capsys.readouterr().err
        assert "run the same command with --resume" in err and "Traceback" not in err
        journal = (tmp_path / "journal.jsonl").read_text().splitlines()
        done = len(journal) - 1
        assert 0 < done < SAMPLES and not report.exists()
        assert main(["flash", str(board.dir)]) == 0  # the user starts the board again
        assert _validate(board, link, report, SAMPLES, "--resume") == 0
    result = _checked_once(report)
    assert result["summary"]["resumed"] == done


def test_resume_refuses_a_journal_of_other_samples(board, tmp_path, capsys):
    with _link(board, at("kill", "up", MIDDLE)) as link:
        assert _validate(board, link, tmp_path / "report.json") == 3
        assert main(["flash", str(board.dir)]) == 0
        capsys.readouterr()
        assert _validate(board, link, tmp_path / "report.json", SAMPLES, "--resume", "--seed", "7") == 2
    err = capsys.readouterr().err
    assert "--resume: the journal" in err and "is of other samples" in err


@pytest.mark.slow
def test_a_long_run_over_a_link_that_fails_now_and_then(board, tmp_path):
    # 20,000 samples, each frame damaged with probability 1/1000 by any fault the session
    # recovers from by itself (not kill: that one needs the user).
    samples = 20_000
    with _link(board, every(1000, tuple(k for k in KINDS if k != "kill"), seed=1)) as link:
        assert _validate(board, link, tmp_path / "report.json", samples) == 0
    report = _checked_once(tmp_path / "report.json", samples)
    kinds = {k for k, _, _ in link.injected}
    assert len(link.injected) >= 80 and kinds == set(KINDS) - {"kill"}, link.injected
    # Each fault shows in the session's counts; two landing on one request may show as one.
    assert sum(report["summary"]["link"].values()) >= len(link.injected) // 2
