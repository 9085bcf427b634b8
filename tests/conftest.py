"""Shared test fixtures: where the bundled third-party models live (models/, see its PROVENANCE.md)."""
from __future__ import annotations

import functools
import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
MLPERF = MODELS / "mlperf_tiny"
HELLO_WORLD = MODELS / "tflm" / "hello_world_int8.tflite"
MLPERF_INT8 = ("ad_toycar_int8", "kws_dscnn_int8", "ic_resnet8_int8", "vww_mobilenetv1_int8")


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    if not MLPERF.is_dir():
        pytest.fail(f"model fixtures not found at {MLPERF}: the checkout is incomplete")
    return MLPERF


# Markers for what a test needs beyond Python (registered in pyproject.toml), so a developer
# can deselect them: `-m "not qemu"`, `-m "not cross"`. They are checked, not trusted: every
# process a test starts (in its setup, its call or its teardown) is looked at, and a test that
# boots QEMU or runs a cross toolchain without carrying the marker fails, naming the program.
NEEDS = {
    "qemu": ("qemu-system-", "qemu-aarch64"),
    "cross": ("arm-none-eabi-", "aarch64-linux-gnu-"),
}
_current: list[pytest.Item] = []
_unmarked = pytest.StashKey[set]()


def _program(args) -> str:
    if isinstance(args, (str, bytes, os.PathLike)):
        first = shlex.split(os.fsdecode(args))[0] if isinstance(args, (str, bytes)) else args
    else:
        first = list(args)[0]
    return Path(os.fsdecode(first)).name


def _watch(init):
    @functools.wraps(init)
    def wrapper(self, args, *rest, **kwargs):
        if _current:
            item = _current[-1]
            name = _program(args)
            for marker, prefixes in NEEDS.items():
                if name.startswith(prefixes) and item.get_closest_marker(marker) is None:
                    item.stash.setdefault(_unmarked, set()).add(f"{marker} (it ran {name})")
        return init(self, args, *rest, **kwargs)
    return wrapper


subprocess.Popen.__init__ = _watch(subprocess.Popen.__init__)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current.append(item)
    try:
        yield
    finally:
        _current.pop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    missing = item.stash.get(_unmarked, set())
    if call.when == "teardown" and missing and report.passed:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} is not marked {', '.join(sorted(missing))}: add "
                           f"@pytest.mark.<marker> (or the module's pytestmark) so that "
                           f"-m 'not <marker>' deselects it")
