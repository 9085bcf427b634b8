"""ONNX's own backend test data for PyTorch exports (the `pytorch-converted` and
`pytorch-operator` models shipped in the onnx wheel, with their inputs and expected outputs):
every model either builds for the host and gives the expected outputs, or is refused with an
EdgertError (exit 2 at the CLI); none gives a wrong answer, none crashes. PASSING is the list
that builds and agrees; a model that starts or stops agreeing fails the test, so the list is
kept true."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgert import api
from edgert.errors import EdgertError

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
MODELS = sorted(p for suite in ("pytorch-converted", "pytorch-operator") for p in (DATA / suite).iterdir()
                if (p / "model.onnx").exists())
# float32 against the expected outputs PyTorch computed: summation order, a few ULP of the sums
RTOL, ATOL = 1e-4, 1e-4

PASSING = {
    "test_AvgPool2d", "test_AvgPool2d_stride", "test_BatchNorm1d_3d_input_eval", "test_BatchNorm2d_eval",
    "test_BatchNorm2d_momentum_eval", "test_BatchNorm3d_eval", "test_BatchNorm3d_momentum_eval", "test_Conv1d",
    "test_Conv1d_dilated", "test_Conv1d_pad1", "test_Conv1d_pad1size1", "test_Conv1d_pad2",
    "test_Conv1d_pad2size1", "test_Conv1d_stride", "test_Conv2d", "test_Conv2d_depthwise",
    "test_Conv2d_depthwise_padded", "test_Conv2d_depthwise_strided", "test_Conv2d_depthwise_with_multiplier",
    "test_Conv2d_dilated", "test_Conv2d_no_bias", "test_Conv2d_padding", "test_Conv2d_strided",
    "test_LeakyReLU", "test_LeakyReLU_with_negval", "test_Linear", "test_MaxPool1d", "test_MaxPool1d_stride",
    "test_MaxPool2d", "test_PReLU_1d", "test_PReLU_2d", "test_PReLU_3d", "test_ReLU", "test_Sigmoid", "test_Softmax", "test_softmax_lastdim",
    "test_operator_concat2", "test_operator_conv", "test_operator_flatten", "test_operator_maxpool",
    "test_operator_view",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", MODELS, ids=lambda p: p.name)
def test_a_pytorch_export_agrees_or_is_refused(case, tmp_path):
    try:
        build = api.build(case / "model.onnx", "host", tmp_path / "build")
    except EdgertError as e:
        assert case.name not in PASSING, f"{case.name} is refused now: {e.message}"
        return
    model = api.host_model(build)
    for data in sorted(case.glob("test_data_set_*")):
        inputs = [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(data.glob("input_*.pb"))]
        expected = [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(data.glob("output_*.pb"))]
        for got, want in zip(model.run(inputs), expected):
            np.testing.assert_allclose(got.reshape(want.shape), want, rtol=RTOL, atol=ATOL)
    assert case.name in PASSING, f"{case.name} builds and agrees now: add it to PASSING"


def test_the_pass_list_names_real_cases():
    assert len(MODELS) > 100 and PASSING <= {p.name for p in MODELS}
