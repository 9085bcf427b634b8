"""The generated kernels of the whole-model builds, pinned by checksum in
tests/golden/kernels.json: a refactoring must leave them byte-identical, and a change in
lowering or scheduling shows up here and is taken deliberately (EDGERT_UPDATE_GOLDEN=1
records the new checksums)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "kernels.json"
# The file that holds a build's generated kernels, by the kind of code its target gets.
KERNEL_FILES = ("kernels.c", "kernels.s", "kernels.ptx")


def check(build, model: str) -> None:
    """Asserts that ``build`` (of ``model``) has its kernel file's recorded checksum."""
    (name,) = [f for f in KERNEL_FILES if (build.dir / f).is_file()]
    key = f"{build.meta['target']}/{model}/{name}"
    digest = hashlib.sha256((build.dir / name).read_bytes()).hexdigest()
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("EDGERT_UPDATE_GOLDEN"):
        golden[key] = digest
        GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), indent=2) + "\n")
    assert key in golden, f"no golden checksum for {key}: record it with EDGERT_UPDATE_GOLDEN=1"
    assert golden[key] == digest, f"{key} changed: the generated kernels differ from the recorded ones"
