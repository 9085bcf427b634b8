#!/usr/bin/env bash
# Side environments for regenerating tests/fixtures/pruned (scripts/pruned_fixtures/make_*.py).
# edgert and its tests do not need them. They live outside the repository, under
# $EDGERT_FIXTURE_ENVS (default ~/.cache/edgert-fixture-envs):
#   tfmot/  TensorFlow (CPU), tf_keras and tensorflow-model-optimization  -> make_tfmot.py
#   torch/  PyTorch (CPU), onnx, onnxscript and onnxruntime                -> make_torch.py
# Usage: scripts/pruned_fixtures/env.sh [tfmot|torch|all]   (default: all)
# Python 3.11 (the CPU wheel of torch 2.13.0 this project's machines hold is for 3.11).
set -euo pipefail
PY=${PYTHON:-python3}
ENVS=${EDGERT_FIXTURE_ENVS:-$HOME/.cache/edgert-fixture-envs}
WHICH=${1:-all}
case $WHICH in tfmot|torch|all) ;; *) echo "usage: $0 [tfmot|torch|all]" >&2; exit 2 ;; esac
mkdir -p "$ENVS"

make_env() {  # name, packages...
    local name=$1; shift
    [ -x "$ENVS/$name/bin/python" ] || "$PY" -m venv "$ENVS/$name"
    "$ENVS/$name/bin/python" -m pip install -q "$@"
    echo "$name environment ready: $ENVS/$name/bin/python"
}

case $WHICH in tfmot|all)
    # tfmot 0.8 needs Keras 2: tf_keras of TensorFlow's version (the scripts set TF_USE_LEGACY_KERAS=1)
    make_env tfmot "tensorflow-cpu==2.21.0" "tf-keras==2.21.0" "tensorflow-model-optimization==0.8.1" \
        "numpy==2.4.6" "scikit-learn==1.9.1" ;;
esac
case $WHICH in torch|all)
    # torch==2.13.0 exactly: pip takes the CPU wheel on disk (a looser pin pulls a CUDA build)
    make_env torch "torch==2.13.0" "onnx==1.23.2" "onnxscript==0.7.2" "onnxruntime==1.32.0" \
        "numpy==2.4.6" "scikit-learn==1.9.1" ;;
esac
