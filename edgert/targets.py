"""Targets as data: targets/<name>.toml describes a CPU, its compiler flags and its board.

This module only reads and validates those files; building for a target lives in the
backend named by the file's ``kind``.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from edgert.errors import UserError


def targets_dir() -> Path:
    """targets/ ships as package data next to the edgert package (or in the source tree)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "targets", Path(str(resources.files("edgert"))) / "targets"):
        if candidate.is_dir():
            return candidate
    raise UserError("edgert's targets/ folder is missing", "reinstall edgert")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # backend: "host" (later "cortex-m", "linux-aarch64", "jetson-cuda")
    description: str
    cc: str
    cflags: tuple[str, ...]
    raw: dict = field(default_factory=dict, compare=False)


def available() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def load(name: str) -> Target:
    path = targets_dir() / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown target {name!r}", f"choose one of: {', '.join(available())} (see `edgert targets`)")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    try:
        return Target(
            name=data["name"], kind=data["kind"], description=data.get("description", ""),
            cc=data["cc"], cflags=tuple(data.get("cflags", ())), raw=data,
        )
    except KeyError as e:
        raise UserError(f"{path}: missing key {e.args[0]!r}", "see targets/host.toml for the required keys") from None
