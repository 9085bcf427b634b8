#!/usr/bin/env bash
# The main job on a fresh machine: set up, build a bundled MLPerf Tiny model for the
# Cortex-M7, flash it to the emulated board, validate it there against TensorFlow Lite Micro
# (bit-exactness, accuracy, latency in instructions, memory), and bench it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODELS=models/mlperf_tiny
MODEL=${MODEL:-$MODELS/kws_dscnn_int8.tflite}
OUT=build/demo
.venv/bin/edgert build "$MODEL" --target cortex-m7 -o "$OUT"
.venv/bin/edgert flash "$OUT"
trap '.venv/bin/edgert flash --stop "$OUT" >/dev/null' EXIT
# The shipped KWS sample (the keyword "on", class 5) plus 19 seeded random inputs.
.venv/bin/edgert validate "$OUT" --dataset "$MODELS/kws_sample_on_int8.npy" --labels 5 --random 19
.venv/bin/edgert bench --target cortex-m7 "$OUT"
