"""Targets and boards as data. targets/<name>.toml describes a CPU and its compiler flags
and names its default board; targets/boards/<name>.toml is a board profile (memory map,
clock, the UART's wiring as defines for its support C, flash methods, PlatformIO board).

This module only reads and validates those files; building for a target lives in the
backend named by the file's ``kind``. Either is named (``cortex-m7``, ``nucleo-f767zi``)
or given as a path to a TOML file of the same shape (a new target or board).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edgert.backends import BACKENDS
from edgert.errors import UnsupportedError, UserError
from edgert.flashing.methods import FLASHERS
from edgert.package_data import targets_dir

#: the target kinds, one per backend (edgert.backends)
KINDS = tuple(BACKENDS)


@dataclass(frozen=True)
class Region:
    name: str
    kind: str  # "flash" or "ram"
    origin: int
    length: int


@dataclass(frozen=True)
class Board:
    """A board profile (targets/boards/<name>.toml): what the firmware links against, how
    it reaches the host, and how `edgert flash` programs it."""
    name: str
    description: str
    cpu: str                     # the target it runs ("cortex-m7"); --board checks it
    support_dir: Path            # startup, vector table, UART, clocks (C sources)
    clock_hz: int                # the core clock the firmware runs at after board_init()
    stack_bytes: int
    memory: tuple[Region, ...]
    flash_methods: tuple[str, ...]   # how `edgert flash` programs it, the default first
    flash_options: dict = field(default_factory=dict, compare=False)  # [flash.<method>] tables
    defines: dict = field(default_factory=dict, compare=False)        # -D for the support C
    emulator: tuple[str, ...] = ()   # the QEMU command line of an emulated board
    platformio: dict = field(default_factory=dict, compare=False)     # [platformio] for export
    path: Path | None = None

    @property
    def emulated(self) -> bool:
        return bool(self.emulator)

    def region(self, kind: str) -> Region:
        return next(r for r in self.memory if r.kind == kind)

    def options(self, method: str) -> dict:
        return self.flash_options.get(method, {})


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
    # kind "linux" (Raspberry Pi, Jetson): the runner's kernels and where it runs
    kernels: dict = field(default_factory=dict, compare=False)  # [kernels]: TVM target of the kernel code
    emulator: tuple[str, ...] = ()   # runs the runner here when no board is named (qemu-aarch64 -cpu ...)
    deploy: dict = field(default_factory=dict, compare=False)   # [deploy]: dir on the board, run wrapper
    ops_key: tuple[str, ...] | None = None  # ``ops`` in the TOML: the kinds it allows; None: "all"
    dsp: bool = False  # ``dsp`` in the TOML: the CPU has the Armv7E-M DSP extension (SMLAD, SXTB16)

    @property
    def ops(self) -> frozenset[str]:
        """The op kinds edgert builds for this target: the registry's (edgert.ops), those its
        backend's code generation supports, and those its TOML's ``ops`` allows."""
        from edgert.backends import backend
        from edgert.ops import REGISTRY

        kinds = frozenset(REGISTRY)
        backend_ops = backend(self.kind).OPS
        if backend_ops is not None:
            kinds &= frozenset(backend_ops)
        return kinds & frozenset(self.ops_key) if self.ops_key is not None else kinds

    @property
    def kernel_backend(self) -> str:
        """How the kernels are compiled: "c" (TVM's C, by the target's compiler: microcontrollers
        and the host's reference build), "llvm" (TVM's LLVM back end for the exact CPU: Linux
        boards, host-llvm) or "cuda" (the GPU)."""
        return self.kernels.get("backend", "llvm" if self.kind == "linux" else "c")

    @property
    def llvm(self) -> dict:
        """The TVM LLVM target dict of a CPU target's kernels; mcpu "native": this machine's CPU."""
        target = {k: v for k, v in self.kernels.items() if k in ("mtriple", "mcpu", "mattr")} | {"kind": "llvm"}
        if "native" in (target.get("mcpu"), target.get("mtriple")):
            from tvm.target import codegen

            native = {"mcpu": codegen.llvm_get_system_cpu, "mtriple": codegen.llvm_get_system_triple}
            target.update({k: str(f()) for k, f in native.items() if target.get(k) == "native"})
        return target


def available() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def boards_dir() -> Path:
    return targets_dir() / "boards"


def available_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


#: how boards can be flashed (edgert.flashing: one module each)
FLASH_METHODS = tuple(FLASHERS)


def _board(data: dict, path: Path, where: str) -> Board:
    """A board from its table (a board file, or a target file's inline [board])."""
    try:
        support = data["support"]
        candidates = [path.parent / support, path.parent / "boards" / support, boards_dir() / support]
        support_dir = next((c for c in candidates if c.is_dir()), None)
        if support_dir is None:
            raise UserError(f"{where}: board support folder {support!r} not found",
                            f"create {candidates[0]} with the board's startup and UART sources")
        memory = tuple(Region(m["name"], m["kind"], int(m["origin"]), int(m["length"])) for m in data["memory"])
        flash = data.get("flash", {})
        methods = tuple(flash.get("methods", ()))
        board = Board(
            name=data["name"], description=data.get("description", ""), cpu=data["cpu"],
            support_dir=support_dir, clock_hz=int(data["clock_hz"]), stack_bytes=int(data["stack_bytes"]),
            memory=memory, flash_methods=methods,
            flash_options={k: v for k, v in flash.items() if isinstance(v, dict)},
            defines=dict(data.get("defines", {})), emulator=tuple(data.get("emulator", ())),
            platformio=dict(data.get("platformio", {})), path=path.resolve(),
        )
    except KeyError as e:
        raise UserError(f"{where}: missing key {e.args[0]!r}",
                        "see targets/boards/nucleo-f767zi.toml for the keys a board needs") from None
    for kind in ("flash", "ram"):
        if sum(r.kind == kind for r in memory) != 1:
            raise UserError(f"{where}: needs exactly one memory region of kind {kind!r}",
                            "declare one [[memory]] with kind = 'flash' and one with kind = 'ram'")
    unknown = [m for m in methods if m not in FLASH_METHODS]
    if unknown:
        raise UserError(f"{where}: unknown flash method {unknown[0]!r}", f"use some of: {', '.join(FLASH_METHODS)}")
    if "qemu" in methods and not board.emulated:
        raise UserError(f"{where}: flash method 'qemu' needs an emulator command line",
                        "add emulator = [\"qemu-system-arm\", \"-M\", MACHINE]")
    return board


def load_board(name: str | Path, relative_to: Path | None = None) -> Board:
    """A board by name (targets/boards/<name>.toml, or beside ``relative_to``) or TOML path."""
    path = _board_path(name, relative_to)
    return _board(_board_data(path), path, str(path))


def _board_path(name: str | Path, relative_to: Path | None) -> Path:
    path = Path(name)
    if path.suffix != ".toml":
        candidates = ([relative_to / f"{name}.toml", relative_to / "boards" / f"{name}.toml"] if relative_to else []) \
                     + [boards_dir() / f"{name}.toml"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise UserError(f"unknown board {str(name)!r}",
                            f"choose one of: {', '.join(available_boards())} (see `edgert targets`), "
                            "or give a board .toml file")
    elif not path.is_file():
        raise UserError(f"{path}: no such board file", "check the path, or name a built-in board")
    return path


def _board_data(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The board's table; ``base = "other-board"`` starts from that board's, each top-level
    key of this file (a whole table such as [flash] or the memory list) replacing the base's."""
    data = _read_toml(path)
    if "base" not in data:
        return data
    if path.resolve() in seen:
        raise UserError(f"{path}: board bases form a loop", "make `base` name a board that does not lead back here")
    base = _board_data(_board_path(data["base"], path.parent), (*seen, path.resolve()))
    return {**base, **{k: v for k, v in data.items() if k != "base"}}


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})", "fix the file's syntax") from None


def _ops_key(path: Path, value) -> tuple[str, ...] | None:
    """A target file's ``ops``: "all" (the default), or a list of edgert op kinds."""
    from edgert.ops import REGISTRY

    if value is None or value == "all":
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{path}: ops must be \"all\" or a list of op kinds, got {value!r}",
                        'e.g. ops = ["conv2d", "fully_connected", "softmax"] (see `edgert targets`)')
    unknown = sorted(set(value) - set(REGISTRY))
    if unknown:
        raise UserError(f"{path}: unknown op kind{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in ops",
                        "edgert's op kinds: " + ", ".join(sorted(REGISTRY)))
    return tuple(value)


def check_ops(target: Target, kinds) -> None:
    """Refuse a graph using op kinds the target does not build, naming them all."""
    missing = sorted(set(kinds) - target.ops)
    if missing:
        raise UnsupportedError(f"target {target.name} does not build op kind{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(missing)}",
                               f"build for another target, or allow them in {target.path} (ops = \"all\")")


def _check_kernels(path: Path, kernels: dict) -> None:
    """A Linux target's [kernels] table: backend "llvm" (mtriple, mcpu) or "cuda" (arch sm_NN)."""
    backend = kernels.get("backend", "llvm")
    if backend == "llvm":
        missing = [k for k in ("mtriple", "mcpu") if k not in kernels]
        if missing:
            raise UserError(f"{path}: [kernels] needs {' and '.join(missing)} for the LLVM back end",
                            'e.g. mtriple = "aarch64-linux-gnu", mcpu = "cortex-a72" (see targets/rpi4.toml)')
    elif backend == "cuda":
        arch = str(kernels.get("arch", ""))
        if not (arch.startswith("sm_") and arch[3:].isdigit()):
            raise UserError(f"{path}: [kernels] arch must name the GPU architecture as sm_NN, got {arch or 'nothing'!r}",
                            'e.g. arch = "sm_87" (see targets/jetson-orin-nano.toml)')
    else:
        raise UserError(f"{path}: unknown [kernels] backend {backend!r}", 'use "llvm" (a CPU) or "cuda" (a GPU)')


def _dsp(path: Path, value) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{path}: dsp must be true or false, got {value!r}",
                        "dsp = true for a CPU with the Armv7E-M DSP extension (Cortex-M4, M7, M33 with DSP)")
    return value


def load(name: str | Path, board: str | Path | None = None) -> Target:
    """A target by name or TOML path; ``board`` (a name or board TOML) replaces the target's
    default board, and must have the target's CPU."""
    path = Path(name)
    if path.suffix != ".toml":
        path = targets_dir() / f"{name}.toml"
        if not path.is_file():
            raise UserError(f"unknown target {str(name)!r}",
                            f"choose one of: {', '.join(available())} (see `edgert targets`), or give a .toml file")
    elif not path.is_file():
        raise UserError(f"{path}: no such target file", "check the path, or name a built-in target")
    data = _read_toml(path)
    try:
        kind = data["kind"]
        if kind not in KINDS:
            raise UserError(f"{path}: unknown kind {kind!r}", f"use one of: {', '.join(KINDS)}")
        if kind in ("host", "linux"):
            if board is not None:
                where = "runs on this machine" if kind == "host" else "is a Linux board, reached over SSH or a port"
                raise UserError(f"target {data['name']} {where}; it takes no --board",
                                "drop --board, or choose a microcontroller target such as cortex-m7")
            chosen = None
        elif board is not None:
            chosen = load_board(board, path.parent)
            if chosen.cpu != data["name"]:
                raise UserError(f"board {chosen.name} has a {chosen.cpu}, target {data['name']} builds for another CPU",
                                f"use --target {chosen.cpu} with --board {chosen.name}")
        elif isinstance(data["board"], str):
            chosen = load_board(data["board"], path.parent)
        else:
            chosen = _board(data["board"], path, f"{path} [board]")
        if kind == "linux" or "kernels" in data:
            _check_kernels(path, data.get("kernels", {}))
        return Target(
            name=data["name"], kind=kind, description=data.get("description", ""),
            cc=data["cc"], cflags=tuple(data.get("cflags", ())), ldflags=tuple(data.get("ldflags", ())),
            objcopy=data.get("objcopy", ""), board=chosen, path=path.resolve(), raw=data,
            kernels=dict(data.get("kernels", {})), emulator=tuple(data.get("emulator", ())),
            deploy=dict(data.get("deploy", {})), ops_key=_ops_key(path, data.get("ops")),
            dsp=_dsp(path, data.get("dsp", False)),
        )
    except KeyError as e:
        raise UserError(f"{path}: missing key {e.args[0]!r}", "see targets/host.toml for the required keys") from None
