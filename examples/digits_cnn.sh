#!/usr/bin/env bash
# The digits CNN end to end on the emulated Cortex-M7: train it and prune it (structured and
# unstructured, 50/75/90 %; examples/train_cnn.py), quantize it (the dense model with mixed
# int8/int4 weights within 1 % of its float accuracy, the pruned ones in int8), build each for
# the Cortex-M7, flash the emulated board and validate it on the held-out split, then bench the
# pruned builds against their dense int8 builds. Run after scripts/setup.sh:
#     examples/digits_cnn.sh [OUT]          (default build/cnn; a few minutes)
# The bench results go to $BENCH_JSON (default OUT/bench.json; scripts/bench_records.sh points it
# at benchmarks/cortex-m7-pruned.json).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/cnn}
E=.venv/bin/edgert
.venv/bin/python examples/train_cnn.py -o "$OUT"
$E quantize "$OUT/digits_cnn.onnx" --calib "$OUT/digits_train.npz" --max-drop 1% -o "$OUT/q.onnx"
$E quantize "$OUT/digits_cnn.onnx" --calib "$OUT/digits_train.npz" --weights int8 -o "$OUT/q_dense.onnx" >/dev/null
for v in u50 u75 u90 s50 s75 s90; do
  $E quantize "$OUT/digits_cnn_$v.onnx" --calib "$OUT/digits_train.npz" --weights int8 -o "$OUT/q_$v.onnx" >/dev/null
done
for m in q q_u50 q_u75 q_u90 q_s50 q_s75 q_s90; do
  $E build "$OUT/$m.onnx" --target cortex-m7 -o "$OUT/m7_$m" >/dev/null
  $E flash "$OUT/m7_$m" >/dev/null
  echo "== $m on the emulated Cortex-M7"
  $E validate "$OUT/m7_$m" --dataset "$OUT/digits_test.npz"
  $E flash --stop "$OUT/m7_$m" >/dev/null
done
$E bench --target cortex-m7 --weights int8,auto "$OUT"/q_*.onnx -o "$OUT/bench" --json "${BENCH_JSON:-$OUT/bench.json}"
