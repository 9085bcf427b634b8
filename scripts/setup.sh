#!/usr/bin/env bash
# Installs everything edgert needs on a fresh Debian machine: the C toolchains and emulators
# from Debian's packages, then a virtual environment in .venv holding exactly the Python
# packages of requirements/lock.txt (hash-checked; scripts/lock.sh updates it) and edgert itself,
# editable. Prints one line per step; a failing step prints its log. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
LOG=build/setup.log
: >"$LOG"

# Runs one command with its output in the log; on failure shows the log and stops.
run() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "failed: $*" >&2
    tail -n 40 "$LOG" >&2
    echo "(the whole log: $LOG)" >&2
    exit 1
  fi
}

# Cortex-M: arm-none-eabi toolchain, QEMU system emulator, OpenOCD. Raspberry Pi / Jetson: the
# aarch64 cross toolchain, user-mode QEMU, and OpenSSH (`edgert deploy`; the server for its tests).
# clang and its runtime libraries (libFuzzer, the sanitizers): scripts/fuzz.py firmware.
APT_PACKAGES=(gcc libc6-dev python3-venv gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm openocd
              gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user openssh-client openssh-server
              clang libclang-rt-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  run $SUDO apt-get update -qq
  run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  echo "apt packages: installed ${missing[*]}"
else
  echo "apt packages: all ${#APT_PACKAGES[@]} present"
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "edgert needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1). Set PYTHON=python3.11 (or newer)." >&2
  exit 1
fi
if [ -x .venv/bin/python ]; then
  echo "venv: .venv present ($(.venv/bin/python --version))"
else
  run "$PY" -m venv .venv
  echo "venv: .venv created ($(.venv/bin/python --version))"
fi

# The lock first (pip and setuptools included, so edgert builds without an isolated build
# environment of whatever setuptools is newest), then edgert alone.
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
run "${PIP[@]}" install --require-hashes --no-deps -r requirements/lock.txt
run "${PIP[@]}" install --no-deps --no-build-isolation -e .
# An older .venv may hold packages a previous lock named: remove them, so that the environment
# is the lock, nothing more.
extra=$(.venv/bin/python scripts/lockfile.py extra)
[ -z "$extra" ] || run "${PIP[@]}" uninstall -y $extra
run "${PIP[@]}" check
echo "Python packages: as pinned in requirements/lock.txt (hash-checked), and" \
     "edgert $(.venv/bin/python -c 'from importlib.metadata import version; print(version("edgert"))') editable"
