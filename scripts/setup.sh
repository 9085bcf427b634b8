#!/usr/bin/env bash
# Installs everything edgert needs on a fresh Debian machine: the C toolchains and emulator
# from Debian's packages, then a virtual environment in .venv with edgert and its Python
# dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Cortex-M: arm-none-eabi toolchain, QEMU system emulator, OpenOCD. Raspberry Pi / Jetson: the
# aarch64 cross toolchain, user-mode QEMU, and OpenSSH (`edgert deploy`; the server for its tests).
APT_PACKAGES=(gcc libc6-dev python3-venv gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm openocd
              gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user openssh-client openssh-server)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
echo "edgert is set up: .venv/bin/edgert"
