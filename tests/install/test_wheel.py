"""edgert as a user installs it from a wheel: the wheel holds every target file and firmware
source, and installed into a fresh virtual environment outside the source tree it builds a
bundled model for the Cortex-M7, flashes the emulated board and validates it there.

The fresh environment gets the wheel alone (--no-deps); its dependencies come from the suite's
own environment through a .pth line, because downloading and installing TVM, onnxruntime and
the reference interpreters again would cost minutes and the network. A .pth line adds that
site-packages folder to sys.path after the new environment's own, without running the .pth
files in it, so the editable install of this tree there is not seen: the test checks that edgert
is imported from the new environment.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import HELLO_WORLD, REPO

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.cross]

# The source folders pyproject.toml ships as package data, and the package each becomes.
PACKAGE_DATA = {"targets": "edgert/target_files", "firmware": "edgert/firmware"}


def _tracked_files(folder: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:  # a source tree without git (an sdist): every file under the folder
        return [p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts]
    return out.stdout.split()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source tree (what git would commit), so that neither
    build leftovers in this checkout reach it nor the build writes into the checkout."""
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True)
    if listed.returncode == 0:
        for name in listed.stdout.splitlines():
            if (REPO / name).is_file():  # a deleted but still-indexed file is not copied
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, src / name)
    else:  # a source tree without git (an sdist) is copied whole
        shutil.copytree(REPO, src, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True)
    (path,) = out.glob("edgert-*.whl")
    return path


def test_wheel_holds_all_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in PACKAGE_DATA.items():
        files = _tracked_files(folder)
        assert files, f"no files under {folder}/"
        missing = [f for f in files if package + f[len(folder):] not in names]
        assert not missing, f"the wheel lacks {missing}"


def test_wheel_holds_every_python_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = [f for f in _tracked_files("edgert") if f.endswith(".py")]
    assert modules
    missing = [f for f in modules if f not in names]
    assert not missing, f"the wheel lacks {missing}: list their package in pyproject.toml"


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """A fresh venv holding the wheel; returns the environment to run its edgert in."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "suite_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"env": env, "venv": venv, "py": py}


def _edgert(installed, cwd, *args) -> str:
    proc = subprocess.run([str(installed["venv"] / "bin" / "edgert"), *args], cwd=cwd, env=installed["env"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"edgert {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_installed_wheel_builds_flashes_and_validates(installed, tmp_path):
    where = subprocess.run([installed["py"], "-c", "import edgert, edgert.package_data as d; "
                            "print(edgert.__file__); print(d.targets_dir()); print(d.firmware_dir('runtime'))"],
                           cwd=tmp_path, env=installed["env"], capture_output=True, text=True, check=True)
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed["venv"]), f"{line} is not in the fresh environment"

    assert "cortex-m7" in _edgert(installed, tmp_path, "targets")
    model = tmp_path / HELLO_WORLD.name
    model.write_bytes(HELLO_WORLD.read_bytes())  # nothing of the source tree is read
    _edgert(installed, tmp_path, "build", model.name, "--target", "cortex-m7", "-o", "b")
    assert (tmp_path / "b" / "firmware" / "firmware.elf").is_file()
    _edgert(installed, tmp_path, "flash", "b")
    try:
        out = _edgert(installed, tmp_path, "validate", "b", "--random", "4")
        assert "bit-exact        100.0%" in out
    finally:
        _edgert(installed, tmp_path, "flash", "--stop", "b")
