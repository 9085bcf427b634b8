"""`edgert export --platformio`: the project compiles with Debian's arm-none-eabi GCC into
the same image `edgert build` made, and PlatformIO itself accepts its platformio.ini
(offline: `pio project config` reads the project without fetching the ST platform)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgert import api
from edgert.cli import main
from edgert.errors import UserError
from edgert.export import export_platformio

from tests.conftest import HELLO_WORLD

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


@pytest.fixture(scope="module", params=["nucleo-f767zi", "nucleo-h743zi", "stm32f746g-disco"])
def board_build(request, tmp_path_factory):
    return api.build(HELLO_WORLD, "cortex-m7", tmp_path_factory.mktemp(request.param), board=request.param)


def _sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    return {p[0]: int(p[1]) for p in (line.split() for line in out.splitlines())
            if len(p) >= 2 and p[0].startswith(".") and p[1].isdigit()}


def test_exported_sources_build_the_same_firmware(board_build, tmp_path):
    proj = export_platformio(board_build, tmp_path / "proj")
    assert sorted(p.name for p in (proj / "src").glob("*.c")) == sorted(
        json.loads((proj / "edgert_flags.json").read_text())["sources"])
    flags = json.loads((proj / "edgert_flags.json").read_text())
    elf = tmp_path / "exported.elf"
    subprocess.run(["arm-none-eabi-gcc", *flags["compile"], f"-I{proj / 'src'}", *(str(proj / "src" / f) for f in flags["sources"]),
                    "-T", str(proj / "linker.ld"), *flags["link"], "-o", str(elf)], check=True, cwd=proj)
    built = _sizes(board_build.dir / board_build.meta["firmware"])
    exported = _sizes(elf)
    for section in (".vectors", ".text", ".rodata", ".bss", ".stack"):
        assert exported[section] == built[section], section


def test_platformio_accepts_the_project(board_build, tmp_path):
    proj = export_platformio(board_build, tmp_path / "proj")
    pio = Path(sys.executable).with_name("pio")
    out = subprocess.run([str(pio), "project", "config", "--json-output"], capture_output=True, text=True, cwd=proj)
    assert out.returncode == 0, out.stderr
    config = dict(json.loads(out.stdout[out.stdout.index("["):]))
    env = dict(config[f"env:{board_build.target.board.name}"])
    assert env["board"] == board_build.target.board.platformio["board"] and env["platform"] == "ststm32"
    assert env["board_build.ldscript"] == "linker.ld" and "Warning" not in out.stderr + out.stdout


def test_cli_export_and_emulated_board_refused(tmp_path, capsys):
    b = api.build(HELLO_WORLD, "cortex-m7", tmp_path / "emu")
    rc = main(["export", str(b.dir), "--platformio", "-o", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 2 and "board mps2-an500 has no PlatformIO board" in err and "nucleo-f767zi" in err
    with pytest.raises(UserError, match="host build"):
        export_platformio(api.build(HELLO_WORLD, "host", tmp_path / "host"), tmp_path / "p2")
