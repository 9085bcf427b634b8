"""Shared test fixtures: where the third-party model files live, and a TFLM runner."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MLPERF = SHARED / "models" / "mlperf_tiny"
MLPERF_INT8 = ("ad_toycar_int8", "kws_dscnn_int8", "ic_resnet8_int8", "vww_mobilenetv1_int8")


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    if not MLPERF.is_dir():
        pytest.fail(f"model fixtures not found at {MLPERF}: the shared/ folder must sit beside the repository")
    return MLPERF
