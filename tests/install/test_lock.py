"""The environment the suite runs in is requirements/lock.txt exactly, so that two machines set
up on different days (scripts/setup.sh) install the same versions."""
from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import lockfile
from tests.conftest import REPO


def test_environment_is_the_lock():
    missing, extra, wrong = lockfile.differences()
    assert not (missing or extra or wrong), (
        f"the environment differs from requirements/lock.txt (run scripts/setup.sh): missing {missing}, "
        f"not in the lock {extra}, other versions (lock, installed) {wrong}")


def test_lock_satisfies_pyproject_ranges():
    """The lock was made from pyproject.toml as it is (scripts/lock.sh after every change)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs = [Requirement(r) for r in project["dependencies"] + extras["dev"]]
    for r in list(reqs):  # the dev extra names others of edgert's own (edgert[jetson])
        if r.name == "edgert":
            reqs += [Requirement(x) for e in r.extras for x in extras[e]]
    pins = lockfile.pins()
    for r in reqs:
        if r.name == "edgert" or (r.marker and not r.marker.evaluate()):
            continue
        version = pins.get(canonicalize_name(r.name))
        assert version is not None, f"{r.name} is in pyproject.toml but not in the lock: run scripts/lock.sh"
        assert r.specifier.contains(version, prereleases=True), f"lock pins {r.name}=={version}, outside {r}"

