"""Shared test fixtures: where the bundled third-party models live (models/, see its PROVENANCE.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
MLPERF = MODELS / "mlperf_tiny"
HELLO_WORLD = MODELS / "tflm" / "hello_world_int8.tflite"
MLPERF_INT8 = ("ad_toycar_int8", "kws_dscnn_int8", "ic_resnet8_int8", "vww_mobilenetv1_int8")


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    if not MLPERF.is_dir():
        pytest.fail(f"model fixtures not found at {MLPERF}: the checkout is incomplete")
    return MLPERF
