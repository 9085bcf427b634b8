"""`--method smp`: the build signed with imgtool (MCUboot's tool) and uploaded with smpclient
to a protocol peer written from the SMP and MCUboot specifications (smp_peer.py), which
stands in for an MCUboot board and checks the image the way MCUboot does before booting."""
from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from edgert import api
from edgert.cli import main
from edgert.errors import UserError
from edgert.flashing import smp

from tests.conftest import HELLO_WORLD
from .smp_peer import SmpPeer

pytestmark = [pytest.mark.qemu, pytest.mark.cross]


@pytest.fixture(scope="module")
def mcuboot_build(tmp_path_factory):
    return api.build(HELLO_WORLD, "cortex-m7", tmp_path_factory.mktemp("mcuboot"), board="nucleo-f767zi-mcuboot")


def _key(tmp_path, name):
    path = tmp_path / name
    subprocess.run([*smp.imgtool(), "keygen", "-k", str(path), "-t", "ecdsa-p256"], check=True)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return path, private.public_key()


def test_signed_upload_boots_on_the_peer(mcuboot_build, tmp_path):
    key, public = _key(tmp_path, "k.pem")
    with SmpPeer(public_key=public) as peer:
        stats = smp.flash(mcuboot_build, peer.path, key=str(key))
    signed = (mcuboot_build.dir / "firmware" / "firmware.signed.bin").read_bytes()
    assert stats.signed and stats.bytes_written == len(signed)
    assert bytes(peer.image) == signed
    assert peer.boot_result is None, peer.boot_result       # MCUboot's checks pass
    assert (0, 5) in peer.requests                           # and the board was reset into it
    # The application inside sits right after the header, as linked (slot0 + header_size).
    binary = (mcuboot_build.dir / "firmware" / "firmware.bin").read_bytes()
    assert signed[0x200:0x200 + len(binary)] == binary


def test_an_image_signed_with_another_key_does_not_boot(mcuboot_build, tmp_path):
    key, _ = _key(tmp_path, "mine.pem")
    _, trusted = _key(tmp_path, "theirs.pem")
    with SmpPeer(public_key=trusted) as peer:
        smp.flash(mcuboot_build, peer.path, key=str(key))
    assert peer.boot_result == "signed with another key (key hash differs)"


def test_unsigned_image_carries_its_hash(mcuboot_build):
    with SmpPeer() as peer:
        stats = smp.flash(mcuboot_build, peer.path)
    assert not stats.signed and peer.boot_result is None


def test_small_server_buffers_still_upload(mcuboot_build):
    # The server's advertised buffer sets the chunk size: many small chunks, same image.
    with SmpPeer(buf_size=256) as peer:
        smp.flash(mcuboot_build, peer.path)
    assert peer.boot_result is None and sum(r == (1, 1) for r in peer.requests) > 20


def test_a_board_without_an_mcuboot_layout_is_refused(tmp_path, capsys):
    b = api.build(HELLO_WORLD, "cortex-m7", tmp_path / "f767", board="nucleo-f767zi")
    rc = main(["flash", str(b.dir), "--method", "smp", "--port", "/dev/null"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be flashed with --method smp" in err and "serial-stm32, probe" in err
    with pytest.raises(UserError, match="no MCUboot layout"):
        smp.options(b.target.board)
