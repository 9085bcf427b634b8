"""Targets as data: targets/<name>.toml describes a CPU, its compiler flags and its board.

This module only reads and validates those files; building for a target lives in the
backend named by the file's ``kind``. A target is named (``cortex-m7``, from edgert's
targets/ folder) or given as a path to a TOML file of the same shape (a new board).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from edgert.errors import UserError

KINDS = ("host", "cortex-m")


def targets_dir() -> Path:
    """targets/ ships as package data next to the edgert package (or in the source tree)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "targets", Path(str(resources.files("edgert"))) / "targets"):
        if candidate.is_dir():
            return candidate
    raise UserError("edgert's targets/ folder is missing", "reinstall edgert")


@dataclass(frozen=True)
class Region:
    name: str
    kind: str  # "flash" or "ram"
    origin: int
    length: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    support_dir: Path            # startup, vector table, UART (C sources)
    clock_hz: int
    stack_bytes: int
    memory: tuple[Region, ...]
    flash: str                   # how `edgert flash` without --port programs it: "qemu"
    qemu: tuple[str, ...] = ()   # the emulator command for flash == "qemu"

    def region(self, kind: str) -> Region:
        return next(r for r in self.memory if r.kind == kind)


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    description: str
    cc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    objcopy: str = ""
    board: Board | None = None
    path: Path | None = None
    raw: dict = field(default_factory=dict, compare=False)


def available() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def _board(data: dict, path: Path) -> Board:
    where = f"{path} [board]"
    try:
        support = data["support"]
        candidates = [path.parent / "boards" / support, targets_dir() / "boards" / support]
        support_dir = next((c for c in candidates if c.is_dir()), None)
        if support_dir is None:
            raise UserError(f"{where}: board support folder {support!r} not found",
                            f"create {candidates[0]} with the board's startup and UART sources")
        memory = tuple(Region(m["name"], m["kind"], int(m["origin"]), int(m["length"])) for m in data["memory"])
        board = Board(
            name=data["name"], description=data.get("description", ""), support_dir=support_dir,
            clock_hz=int(data["clock_hz"]), stack_bytes=int(data["stack_bytes"]), memory=memory,
            flash=data.get("flash", "none"), qemu=tuple(data.get("qemu", ())),
        )
    except KeyError as e:
        raise UserError(f"{where}: missing key {e.args[0]!r}",
                        "see targets/cortex-m7.toml for the keys a board needs") from None
    for kind in ("flash", "ram"):
        if sum(r.kind == kind for r in memory) != 1:
            raise UserError(f"{where}: needs exactly one memory region of kind {kind!r}",
                            "declare one [[board.memory]] with kind = 'flash' and one with kind = 'ram'")
    return board


def load(name: str | Path) -> Target:
    path = Path(name)
    if path.suffix != ".toml":
        path = targets_dir() / f"{name}.toml"
        if not path.is_file():
            raise UserError(f"unknown target {str(name)!r}",
                            f"choose one of: {', '.join(available())} (see `edgert targets`), or give a .toml file")
    elif not path.is_file():
        raise UserError(f"{path}: no such target file", "check the path, or name a built-in target")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})", "fix the file's syntax") from None
    try:
        kind = data["kind"]
        if kind not in KINDS:
            raise UserError(f"{path}: unknown kind {kind!r}", f"use one of: {', '.join(KINDS)}")
        board = _board(data["board"], path) if kind != "host" else None
        return Target(
            name=data["name"], kind=kind, description=data.get("description", ""),
            cc=data["cc"], cflags=tuple(data.get("cflags", ())), ldflags=tuple(data.get("ldflags", ())),
            objcopy=data.get("objcopy", ""), board=board, path=path.resolve(), raw=data,
        )
    except KeyError as e:
        raise UserError(f"{path}: missing key {e.args[0]!r}", "see targets/host.toml for the required keys") from None
