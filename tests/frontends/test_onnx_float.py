"""The float ONNX front end refuses what it would otherwise read wrongly."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgert import api
from edgert.errors import ModelFormatError, UnsupportedError


def _save(tmp_path, nodes, inits, shape_in, shape_out):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape_out)], inits)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_matmul_over_an_image_is_refused(tmp_path):
    # a Conv makes x an image (held NHWC inside edgert); a MatMul on its W axis would then
    # multiply the wrong axis, so it is refused rather than compiled
    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    m = numpy_helper.from_array(np.ones((4, 5), np.float32), "m")
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("MatMul", ["c", "m"], ["y"])],
                 [w, m], [1, 2, 3, 4], [1, 2, 3, 5])
    with pytest.raises(UnsupportedError, match=r"MatMul over the 4-D image c \[1, 2, 3, 4\]"):
        api.compile_model(path)


@pytest.mark.parametrize("attrs, message", [({"strides": [0, 1]}, "Attribute strides must only contain positive"),
                                            ({"pads": [0, -1, 0, 0]}, "Attribute pads must not contain negative")])
def test_a_conv_window_that_cannot_be_placed_is_refused(tmp_path, attrs, message):
    # ONNX's shape inference refuses these first; edgert.frontends.common.check_window is the
    # front ends' own check for what inference lets through
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], [w], [1, 2, 6, 6], None)
    with pytest.raises(ModelFormatError, match=message) as e:
        api.compile_model(path)
    assert "inconsistent" in e.value.hint
