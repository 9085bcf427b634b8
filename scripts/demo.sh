#!/usr/bin/env bash
# The main job on a fresh machine: set up, build a bundled MLPerf Tiny model, run it, and
# compare it with TensorFlow Lite Micro side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=${MODEL:-../shared/models/mlperf_tiny/kws_dscnn_int8.tflite}
.venv/bin/edgert build "$MODEL" --target host -o build/demo
.venv/bin/edgert run build/demo --input ../shared/models/mlperf_tiny/kws_sample_on_int8.npy
.venv/bin/edgert bench build/demo --runs 20
