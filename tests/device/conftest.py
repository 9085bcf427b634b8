"""Builds shared by the device tests (built once per session: compiling takes seconds)."""
from __future__ import annotations

import pytest

from edgert import api
from tests.conftest import HELLO_WORLD


@pytest.fixture(scope="session")
def hello_host_build(tmp_path_factory):
    return api.build(HELLO_WORLD, "host", tmp_path_factory.mktemp("hello_host"))


@pytest.fixture(scope="session")
def hello_m7_build(tmp_path_factory):
    return api.build(HELLO_WORLD, "cortex-m7", tmp_path_factory.mktemp("hello_m7"))


@pytest.fixture(scope="session")
def hello_rpi4_build(tmp_path_factory):
    return api.build(HELLO_WORLD, "rpi4", tmp_path_factory.mktemp("hello_rpi4"))
