"""requirements/lock.txt read for this interpreter: which exact versions it pins here, and how the
running environment differs from it. scripts/setup.sh removes what the lock does not name
(`python scripts/lockfile.py extra`); tests/install/test_lock.py checks the environment the
suite runs in against it.

Contract: the lock is uv's requirements format (`name==version ; marker` lines, hashes on
continuation lines); every pinned name is compared canonicalized (PEP 503), and edgert itself,
installed from this tree, is outside the lock.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[1] / "requirements" / "lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
OUTSIDE_LOCK = {"edgert"}


def pins(lock: Path = LOCK) -> dict[str, str]:
    """{canonical name: version} for the lock's lines whose marker holds on this interpreter."""
    out = {}
    for line in lock.read_text().splitlines():
        m = PIN.match(line)
        if m and (m[3] is None or Marker(m[3]).evaluate()):
            out[canonicalize_name(m[1])] = m[2]
    return out


def installed() -> dict[str, str]:
    """{canonical name: version} of every distribution in the running environment but edgert."""
    found = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return {n: v for n, v in found.items() if n not in OUTSIDE_LOCK}


def differences(lock: Path = LOCK) -> tuple[dict, dict, dict]:
    """(missing: pinned but not installed, extra: installed but not pinned,
    wrong: {name: (pinned, installed)})."""
    want, have = pins(lock), installed()
    missing = {n: v for n, v in want.items() if n not in have}
    extra = {n: v for n, v in have.items() if n not in want}
    wrong = {n: (v, have[n]) for n, v in want.items() if n in have and have[n] != v}
    return missing, extra, wrong


if __name__ == "__main__":
    if sys.argv[1:] != ["extra"]:
        sys.exit("usage: python scripts/lockfile.py extra   (installed packages the lock does not name)")
    print("\n".join(sorted(differences()[1])))
