#!/usr/bin/env bash
# A separate environment with TensorFlow, Larq and the Larq Compute Engine converter and
# interpreter, for regenerating tests/fixtures/lce (scripts/lce_fixtures.py). edgert and its
# tests do not need it. LCE 0.16 is built against TensorFlow 2.16 and numpy 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv-lce/bin/python ] || "$PY" -m venv .venv-lce
.venv-lce/bin/python -m pip install -q "tensorflow==2.16.2" "tf-keras==2.16.0" "larq==0.14.0" \
    "larq-compute-engine==0.16.0" "numpy<2"
echo "LCE environment ready: .venv-lce/bin/python scripts/lce_fixtures.py"
