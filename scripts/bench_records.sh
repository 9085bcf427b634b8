#!/usr/bin/env bash
# Measure again every benchmark record the README quotes (benchmarks/*.json): each is written
# by `edgert bench --json`, which stores its own command line in it. Instruction counts on the
# emulated boards are deterministic, so a rerun on any machine gives the same figures.
#   scripts/bench_records.sh            all of them (about 6 minutes on 2 cores)
#   scripts/bench_records.sh rpi4 ...   only the named records
set -euo pipefail
cd "$(dirname "$0")/.."
edgert=.venv/bin/edgert
mlperf=(models/mlperf_tiny/{ic_resnet8,kws_dscnn,vww_mobilenetv1,ad_toycar}_int8.tflite)
want=("$@")
all=(cortex-m7 cortex-m4 rpi4 rpi5 cortex-m7-lowbit cortex-m7-binary cortex-m7-mst cortex-m7-pruned farm-scaling)
[ ${#want[@]} -eq 0 ] && want=("${all[@]}")

for record in "${want[@]}"; do
    case "$record" in
        cortex-m7|cortex-m4|rpi4|rpi5)
            $edgert bench --target "$record" "${mlperf[@]}" -o "build/bench/$record" --json "benchmarks/$record.json" ;;
        cortex-m7-lowbit)  # int4 and codebook weights made from the int8 models' weights
            for m in kws_dscnn ad_toycar; do
                $edgert quantize "models/mlperf_tiny/${m}_int8.tflite" --weights int4 -o "build/lowbit/${m}_int4.tflite"
                $edgert quantize "models/mlperf_tiny/${m}_int8.tflite" --weights int4 --codebook 4 -o "build/lowbit/${m}_codebook4.tflite"
            done
            $edgert bench --target cortex-m7 models/mlperf_tiny/kws_dscnn_int8.tflite build/lowbit/kws_dscnn_{int4,codebook4}.tflite \
                models/mlperf_tiny/ad_toycar_int8.tflite build/lowbit/ad_toycar_{int4,codebook4}.tflite \
                -o build/bench/lowbit --json benchmarks/cortex-m7-lowbit.json ;;
        cortex-m7-binary)  # one 3x3 layer as an LCE binary convolution and as TFLite's int8 one
            $edgert bench --target cortex-m7 --layers benchmarks/models/bconv_16x16x64_3x3x64.tflite \
                benchmarks/models/conv_int8_16x16x64_3x3x64.tflite -o build/bench/binary --json benchmarks/cortex-m7-binary.json ;;
        cortex-m7-mst)
            $edgert bench --target cortex-m7 --layers --bnn-mst benchmarks/models/bconv_16x16x64_3x3x64.tflite \
                benchmarks/models/bconv_16x16x64_3x3x64_similar.tflite -o build/bench/mst --json benchmarks/cortex-m7-mst.json ;;
        cortex-m7-pruned)  # the digits CNN trained, pruned, quantized, validated, then benched
            BENCH_JSON=benchmarks/cortex-m7-pruned.json examples/digits_cnn.sh build/cnn ;;
        farm-scaling)  # validation throughput on 1, 2 and 4 emulated boards of a labgrid farm (wall clock)
            .venv/bin/python scripts/bench_farm.py models/mlperf_tiny/kws_dscnn_int8.tflite --boards 1,2,4 \
                --samples 200 --json benchmarks/farm-scaling.json ;;
        *) echo "unknown record '$record': one of ${all[*]}" >&2; exit 2 ;;
    esac
done
