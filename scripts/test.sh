#!/usr/bin/env bash
# Set up and run the whole test suite (what CI runs). Pass pytest options through, e.g.
#   scripts/test.sh -m "not slow"     the fast set, a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
