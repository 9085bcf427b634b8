"""The bundled third-party models are the files models/PROVENANCE.md names, unchanged."""
from __future__ import annotations

import hashlib
import re

from tests.conftest import MODELS

ROW = re.compile(r"^\| (\S+) \| .+ \| ([0-9a-f]{64}) \|$")


def provenance() -> dict[str, str]:
    rows = (ROW.match(line) for line in (MODELS / "PROVENANCE.md").read_text().splitlines())
    return {m[1]: m[2] for m in rows if m}


def test_every_bundled_file_has_its_recorded_checksum():
    recorded = provenance()
    bundled = {p.relative_to(MODELS).as_posix() for p in MODELS.rglob("*")
               if p.is_file() and p.name not in ("PROVENANCE.md", "LICENSE")}
    assert bundled == set(recorded), "models/ and its PROVENANCE.md table list different files"
    for name, sha in recorded.items():
        assert hashlib.sha256((MODELS / name).read_bytes()).hexdigest() == sha, f"{name} changed"


def test_every_folder_carries_its_licence():
    folders = {p.parent for p in MODELS.rglob("*") if p.is_file() and p.parent != MODELS}
    assert folders and all((f / "LICENSE").is_file() for f in folders)
