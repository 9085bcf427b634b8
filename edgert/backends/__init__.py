"""Target kinds. One module per kind, named here; each gives

    policy(target) -> CodegenPolicy    how its kernels are generated (edgert.codegen.policy)
    build(out_dir, target, meta, kernels) -> dict
                                       compile the generated sources into what runs (library,
                                       firmware, runner); returns report entries, adds to meta
    open_link(build, port)             a context manager yielding the Link a session talks over
    describe(target) -> list[str]      what `edgert targets` prints about a target of this kind
    OPS                                the op kinds its code generation supports (None: all of
                                       edgert.ops.REGISTRY); a target's TOML ``ops`` narrows it

A new kind is a module here, a line in BACKENDS, its targets' TOML files and its board support
C under firmware/ (see README, "Adding a target").
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from edgert.errors import UserError

#: target kind (a target TOML's ``kind``) -> its backend module
BACKENDS = {
    "host": "edgert.backends.host",
    "cortex-m": "edgert.backends.cortex_m",
    "linux": "edgert.backends.linux",
}


def backend(kind: str) -> ModuleType:
    """The backend module of a target kind (targets.load has checked the kind)."""
    return importlib.import_module(BACKENDS[kind])


@dataclass
class Link:
    """How a session reaches what runs a build: its byte transport and names for messages."""

    transport: object                 # edgert.device.transport.Transport
    emulated: bool                    # an emulator: latency counts instructions
    where: str                        # the port or URL, or what runs it
    name: str                         # the session's name in errors ("the emulated board")


def built_file(build, kind: str, key: str, not_this_kind: str, example_target: str) -> Path:
    """The file a build of target kind ``kind`` made (``build.meta[key]``: the firmware, the
    runner): a UserError if the build is of another kind (``not_this_kind`` says what it lacks)
    or the file is gone."""
    if build.target.kind != kind:
        raise UserError(f"{build.dir} was built for {build.meta['target']}, {not_this_kind}",
                        f"rebuild with --target {example_target} (see `edgert targets`)")
    path = build.dir / build.meta[key]
    if not path.is_file():
        raise UserError(f"{path} is missing", "rebuild: `edgert build MODEL --target ... -o DIR`")
    return path
