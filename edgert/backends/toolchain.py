"""What the backends share about compilers and their output: finding a tool, and reading
section sizes from an ELF."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from edgert.errors import ToolchainError

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
ARENA_SYMBOL = "edgert_arena"   # the model's arena array (firmware/runtime)


def tool(name: str, package: str) -> str:
    """The path of executable ``name``, or ToolchainError naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} is not installed", f"install Debian's {package}, or run scripts/setup.sh")
    return path


def allocated_sections(elf) -> Iterator[object]:
    """The sections of an ELFFile that occupy memory at run time (SHF_ALLOC, not empty)."""
    for sec in elf.iter_sections():
        if sec["sh_flags"] & SHF_ALLOC and sec["sh_size"] > 0:
            yield sec


def symbol_size(elf, name: str) -> int:
    """Bytes of symbol ``name`` (0 if the ELF has no such symbol)."""
    symtab = elf.get_section_by_name(".symtab")
    sym = symtab.get_symbol_by_name(name) if symtab else None
    return int(sym[0]["st_size"]) if sym else 0


def open_elf(path: Path):
    """An ELFFile over the file's bytes (read whole: the callers' ELFs are a few MB at most)."""
    import io

    from elftools.elf.elffile import ELFFile

    return ELFFile(io.BytesIO(Path(path).read_bytes()))
