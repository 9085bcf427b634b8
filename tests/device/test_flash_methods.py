"""How `edgert flash` picks and runs a method for real boards, what `edgert doctor` reports,
and the board-profile errors a user can meet. Real boards and probes cannot exist here: the
probe tests run the real pyOCD and OpenOCD up to the point where they look for a probe."""
from __future__ import annotations

import pytest

from edgert import api, doctor, targets
from edgert.cli import main
from edgert.errors import DeviceError, UserError
from edgert.flashing import choose_method, probe

from tests.conftest import HELLO_WORLD

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


@pytest.fixture(scope="module")
def f767_build(tmp_path_factory):
    return api.build(HELLO_WORLD, "cortex-m7", tmp_path_factory.mktemp("f767"), board="nucleo-f767zi")


def test_method_follows_the_profile():
    f767, emu, disco = (targets.load_board(n) for n in ("nucleo-f767zi", "mps2-an500", "stm32f746g-disco"))
    assert choose_method(emu, None, None) == "qemu"
    assert choose_method(emu, None, "socket://x:1") == "serial-stm32"
    assert choose_method(f767, None, "/dev/ttyACM0") == "serial-stm32"   # the profile's first
    assert choose_method(f767, None, None) == "probe"                    # no port: the probe
    assert choose_method(disco, None, "/dev/ttyACM0") == "probe"
    assert choose_method(f767, "none", "/dev/ttyACM0") == "none"
    with pytest.raises(UserError, match="cannot be flashed with --method qemu"):
        choose_method(f767, "qemu", None)


def test_pyocd_without_a_probe_says_so(f767_build):
    with pytest.raises(DeviceError, match="no debug probe found") as e:
        probe.flash(f767_build, probe_tool="pyocd")
    assert "ST-LINK" in e.value.hint


def test_openocd_without_a_probe_fails_clearly(f767_build, capsys):
    rc = main(["flash", str(f767_build.dir), "--method", "probe", "--probe-tool", "openocd"])
    err = capsys.readouterr().err
    assert rc == 3 and "OpenOCD failed to program the board" in err


def test_serial_flash_of_a_real_board_needs_a_port(f767_build, capsys):
    rc = main(["flash", str(f767_build.dir), "--method", "serial-stm32"])
    assert rc == 2 and "--method serial-stm32 needs the board's serial port" in capsys.readouterr().err


def test_serial_flash_to_a_missing_port(f767_build, capsys):
    rc = main(["flash", str(f767_build.dir), "--method", "serial-stm32", "--port", "/dev/ttyEDGERT-NONE"])
    assert rc == 3 and "cannot open port /dev/ttyEDGERT-NONE" in capsys.readouterr().err


def test_board_must_match_the_target(capsys, tmp_path):
    rc = main(["build", str(HELLO_WORLD), "--target", "cortex-m4", "--board", "nucleo-f767zi", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "board nucleo-f767zi has a cortex-m7" in err and "--target cortex-m7" in err
    rc = main(["build", str(HELLO_WORLD), "--target", "cortex-m7", "--board", "nucleo-f999", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown board 'nucleo-f999'" in err and "nucleo-h743zi" in err


def test_a_board_build_remembers_its_board(f767_build):
    again = api.load_build(f767_build.dir)
    assert again.target.board.name == "nucleo-f767zi" and again.target.board.clock_hz == 216_000_000


def test_doctor_reports_what_is_here_and_what_is_missing(capsys):
    checks = {c.name: c for c in doctor.run_checks()}
    assert checks["arm-none-eabi-gcc"].found and checks["qemu-system-arm"].found   # installed by setup.sh
    assert checks["pyocd"].found and checks["smpclient"].found
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "debug probes:" in out and "serial ports:" in out and "everything edgert needs is here" in out


def test_options_of_another_method_are_refused(f767_build, capsys):
    rc = main(["flash", str(f767_build.dir), "--method", "serial-stm32", "--port", "/dev/null", "--key", "k.pem"])
    assert rc == 2 and "--key applies to --method smp, not serial-stm32" in capsys.readouterr().err
