"""Larq Compute Engine models (tests/fixtures/lce, made by scripts/lce_fixtures.py with the
LCE converter, with the LCE interpreter's outputs): edgert's numpy reference and its
TVM-generated C, built for the host, against the LCE interpreter's reference kernels.

Every binary op is bit-exact. One tolerance: mixed_net (float32) has float CONV_2D, MEAN and
FULLY_CONNECTED layers around its binary ones, whose float sums edgert adds in another order
than TFLite's kernels (see tests/support/op_models.py: a few ULP of the largest partial sum).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flatbuffers import flexbuffers

from edgert.frontends.tflite_schema import schema as fb
from edgert import api
from edgert.cli import main
from edgert.errors import UnsupportedError
from edgert.ops import binary, reference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lce"
CASES = sorted(p.stem for p in FIXTURES.glob("*.tflite"))
FLOAT_LAYERS = {"mixed_net"}  # float32 non-binary layers: summation order (see the docstring)
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-6


def _expect(case: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if case in FLOAT_LAYERS:
        np.testing.assert_allclose(got, want, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    else:
        np.testing.assert_array_equal(got, want)  # bit for bit, float outputs included


def test_the_fixtures_cover_the_lce_variants():
    ops = {}
    for case in CASES:
        g = api.compile_model(FIXTURES / f"{case}.tflite").graph
        for op in g.ops:
            ops.setdefault(op.kind, []).append((case, op, g))
    bconvs = [(op, g) for _, op, g in ops["bconv2d"]]
    out_dtypes = {g.tensor(op.outputs[0]).dtype.short for op, g in bconvs}
    assert out_dtypes == {"f32", "i8", "i32"}                                  # float, int8, bit-packed
    assert {op.attrs["pad_values"] for op, _ in bconvs if any(op.attrs["pad"])} == {0, 1}
    assert any(op.attrs["stride"] != (1, 1) for op, _ in bconvs)
    assert any(op.attrs["dilation"] != (1, 1) for op, _ in bconvs)
    assert any(op.attrs["channels_in"] % 32 for op, _ in bconvs)
    assert any(g.tensor(op.outputs[0]).shape[-1] % 32 for op, g in bconvs)   # output channels
    assert {op.attrs["act"] for op, _ in bconvs} >= {"none", "relu", "relu6"}
    assert {"lce_quantize", "bmaxpool2d", "conv2d", "fully_connected"} <= set(ops)
    quant_in = {g.tensor(op.inputs[0]).dtype.short for _, op, g in ops["lce_quantize"]}
    assert quant_in == {"f32", "i8"}


@pytest.mark.parametrize("case", CASES)
def test_numpy_reference_matches_lce(case):
    g = api.compile_model(FIXTURES / f"{case}.tflite").graph
    d = np.load(FIXTURES / f"{case}.npz")
    got = np.concatenate([reference.run(g, [x[None]])[g.outputs[0]] for x in d["x"]])
    _expect(case, got, d["y"])


@pytest.mark.parametrize("case", CASES)
def test_generated_c_matches_lce(case, tmp_path):
    b = api.build(FIXTURES / f"{case}.tflite", "host", tmp_path / case)
    d = np.load(FIXTURES / f"{case}.npz")
    got = np.concatenate([api.run(b, [x[None]])[0] for x in d["x"]])
    _expect(case, got, d["y"])


def test_bit_packing_order():
    neg = np.zeros((1, 40), dtype=bool)
    neg[0, [0, 31, 32, 39]] = True
    packed = binary.pack_bits(neg)
    assert packed.tolist() == [[np.int32(-(1 << 31)) | 1, (1 << 0) | (1 << 7)]]   # channel c -> bit c % 32
    np.testing.assert_array_equal(binary.unpack_bits(packed, 40), neg)


# --------------------------------------------------------------------------- errors


def _with_options(case: str, op_code: str, change, tmp_path) -> Path:
    """A copy of a fixture with one custom op's FlexBuffer options changed."""
    data = (FIXTURES / f"{case}.tflite").read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    for op in model.subgraphs[0].operators:
        if model.operatorCodes[op.opcodeIndex].customCode == op_code.encode():
            opts = flexbuffers.Loads(bytes(op.customOptions))
            change(opts)
            op.customOptions = list(flexbuffers.Dumps(opts))
            break
    import flatbuffers

    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / f"{case}_changed.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda o: o.update(pad_values=2), r"LceBconv2d #1: attribute pad_values = 2"),
    (lambda o: o.update(fused_activation_function=5), r"attribute fused_activation_function = 5"),
    (lambda o: o.update(padding=7), r"attribute padding = 7"),
    (lambda o: o.pop("channels_in"), r"attribute channels_in is missing"),
    (lambda o: o.update(padding="SAME"), r"attribute padding = 'SAME' \(expected an integer\)"),
    (lambda o: o.update(stride_width=0), r"attribute stride_width = 0"),
])
def test_unsupported_lce_options_are_named(change, message, tmp_path):
    path = _with_options("bconv_same_one_padding", "LceBconv2d", change, tmp_path)
    with pytest.raises(UnsupportedError, match=message):
        api.compile_model(path)


def test_grouped_binary_convolution_is_refused():
    # A Larq QuantConv2D(groups=2) as LCE converts it: 64 channels in, filters of one word.
    with pytest.raises(UnsupportedError, match=r"LceBconv2d #1 \(bconv2d_0\): attribute groups = 2 .*not supported"):
        api.compile_model(FIXTURES / "unsupported" / "bconv_groups2.tflite")


def test_cli_names_the_op_and_attribute(tmp_path, capsys):
    path = _with_options("bmaxpool", "LceBMaxPool2d", lambda o: o.update(filter_height=0), tmp_path)
    rc = main(["build", str(path), "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "LceBMaxPool2d #2: attribute filter_height = 0" in err
