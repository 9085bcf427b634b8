#!/usr/bin/env bash
# Regenerates requirements/lock.txt: the exact Python packages, with their hashes, that
# scripts/setup.sh installs, resolved from pyproject.toml's ranges (with the dev extra) and
# requirements/tools.in, for every platform and Python edgert supports. Pins already in the lock
# are kept; to take newer releases pass uv's options through:
#   scripts/lock.sh --upgrade                     everything
#   scripts/lock.sh --upgrade-package onnxruntime one package
# then run scripts/test.sh and commit the lock with the change that needed it.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
TOOLS=build/lock-tools
if [ ! -x "$TOOLS/bin/uv" ]; then
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q "uv==$UV_VERSION"
fi
exec "$TOOLS/bin/uv" pip compile pyproject.toml requirements/tools.in --extra dev --universal --generate-hashes \
    --custom-compile-command scripts/lock.sh -o requirements/lock.txt "$@"
