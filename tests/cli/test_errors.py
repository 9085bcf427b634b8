"""Bad input gets one clear line naming the problem, a hint, and exit code 2."""
from __future__ import annotations

import numpy as np
import pytest

from edgert import cli
from edgert.errors import ModelFormatError, ResourceError, UnsupportedError
from edgert.frontends import tflite
from edgert.passes import run_pipeline
from tests.support.tflite_builder import ModelBuilder


def _cli_error(capsys, argv) -> tuple[int, str]:
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, err


def test_truncated_file(tmp_path, capsys, mlperf_dir):
    data = (mlperf_dir / "kws_dscnn_int8.tflite").read_bytes()
    p = tmp_path / "cut.tflite"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFormatError):
        tflite.load(p)
    code, err = _cli_error(capsys, ["inspect", str(p)])
    assert code == 2
    assert "corrupt or truncated" in err and "hint:" in err and "Traceback" not in err


def test_empty_and_not_tflite(tmp_path, capsys):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    code, err = _cli_error(capsys, ["inspect", str(empty)])
    assert code == 2 and "too short" in err
    other = tmp_path / "notes.tflite"
    other.write_bytes(b"this is a text file, not a flatbuffer\n")
    code, err = _cli_error(capsys, ["build", str(other), "-o", str(tmp_path / "b")])
    assert code == 2 and "not a TFLite model" in err and "b'TFL3'" in err


def test_unknown_extension(tmp_path, capsys):
    p = tmp_path / "model.pb"
    p.write_bytes(b"x" * 16)
    code, err = _cli_error(capsys, ["inspect", str(p)])
    assert code == 2 and "unknown model format" in err


def test_unsupported_ops_listed_all_at_once(tmp_path, capsys):
    b = ModelBuilder()
    x = b.add_input((1, 8), "float32")
    y = b.add_tensor((1, 8), "float32")
    b.add_op("TANH", [x], [y])
    z = b.add_tensor((1, 8), "float32")
    b.add_op("GELU", [y], [z])
    b.set_outputs([z])
    p = tmp_path / "ops.tflite"
    p.write_bytes(b.build())
    with pytest.raises(UnsupportedError) as e:
        tflite.load(p)
    assert "TANH (op #0)" in e.value.message and "GELU (op #1)" in e.value.message
    assert "CONV_2D" in e.value.hint  # the list of supported ops
    code, err = _cli_error(capsys, ["build", str(p), "-o", str(tmp_path / "b")])
    assert code == 2 and "TANH (op #0), GELU (op #1)" in err


def test_unsupported_ops_are_grouped_one_entry_each(tmp_path, capsys):
    b = ModelBuilder()
    y = b.add_input((1, 8), "float32")
    for _ in range(5):  # TANH five times, GELU once between them
        z = b.add_tensor((1, 8), "float32")
        b.add_op("TANH", [y], [z])
        y = z
        if _ == 1:
            z = b.add_tensor((1, 8), "float32")
            b.add_op("GELU", [y], [z])
            y = z
    b.set_outputs([y])
    p = tmp_path / "ops.tflite"
    p.write_bytes(b.build())
    code, err = _cli_error(capsys, ["inspect", str(p)])
    assert code == 2 and "unsupported ops: TANH x 5 (ops #0, #1, #3 and 2 more), GELU (op #2)" in err


def test_unsupported_dtype(tmp_path):
    b = ModelBuilder()
    x = b.add_input((1, 8), "int16", scale=0.01, zero_point=0)
    y = b.add_tensor((1, 8), "int16", scale=0.01, zero_point=0)
    b.add_op("RESHAPE", [x], [y])
    b.set_outputs([y])
    p = tmp_path / "i16.tflite"
    p.write_bytes(b.build())
    with pytest.raises(UnsupportedError) as e:
        run_pipeline(tflite.load(p))
    assert "reshape_0" in e.value.message and "i16" in e.value.message


def test_unsupported_quantization_asymmetric_weights(tmp_path):
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.add_input((1, 4), "int8", scale=0.1, zero_point=0)
    w = b.add_tensor((3, 4), "int8", scale=0.02, zero_point=5, data=rng.integers(-100, 100, (3, 4), dtype=np.int8))
    bias = b.add_tensor((3,), "int32", scale=0.002, zero_point=0, data=np.zeros(3, np.int32))
    y = b.add_tensor((1, 3), "int8", scale=0.1, zero_point=0)
    b.add_op("FULLY_CONNECTED", [x, w, bias], [y])
    b.set_outputs([y])
    p = tmp_path / "asym.tflite"
    p.write_bytes(b.build())
    with pytest.raises(UnsupportedError) as e:
        run_pipeline(tflite.load(p))
    assert "FULLY_CONNECTED #0" in e.value.message and "nonzero zero point 5" in e.value.message
    assert "symmetric" in e.value.hint


def test_arena_over_ram_limit(tmp_path, capsys, mlperf_dir):
    from edgert import api

    with pytest.raises(ResourceError) as e:
        api.build(mlperf_dir / "kws_dscnn_int8.tflite", "host", tmp_path / "b", ram_limit=10_000)
    assert "16,000 bytes, 6,000 bytes over --ram-limit 10,000" in e.value.message
    code, err = _cli_error(capsys, ["build", str(mlperf_dir / "kws_dscnn_int8.tflite"), "--ram-limit", "10k",
                                    "-o", str(tmp_path / "b")])
    assert code == 2 and "over --ram-limit 10,240" in err


@pytest.mark.parametrize("value", ["inf", "-5", "0", "nan", "1e400"])
def test_a_ram_limit_that_is_no_byte_count_is_refused(tmp_path, capsys, mlperf_dir, value):
    with pytest.raises(SystemExit) as e:
        cli.main(["build", str(mlperf_dir / "ad_toycar_int8.tflite"), f"--ram-limit={value}", "-o", str(tmp_path / "b")])
    assert e.value.code == 2
    assert f"expected a positive, finite byte count like 65536 or 64k, got '{value}'" in capsys.readouterr().err


def test_unknown_target(tmp_path, capsys, mlperf_dir):
    code, err = _cli_error(capsys, ["build", str(mlperf_dir / "ad_toycar_int8.tflite"), "--target", "pdp11",
                                    "-o", str(tmp_path / "b")])
    assert code == 2 and "unknown target 'pdp11'" in err and "host" in err


def _damaged(tmp_path, change) -> Path:
    """A one-convolution int8 model with one field changed by ``change(model_object)``."""
    import flatbuffers

    from tests.support.tflite_builder import ModelBuilder

    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.add_input((1, 6, 6, 2), "int8", scale=0.05, zero_point=3)
    y = b.conv2d(x, rng.normal(0, 0.3, (4, 3, 3, 2)), rng.normal(0, 0.2, 4), padding="SAME")
    b.set_outputs([y])
    model = b.to_object()
    change(model)
    fbb = flatbuffers.Builder(1024)
    fbb.Finish(model.Pack(fbb), file_identifier=b"TFL3")
    path = tmp_path / "damaged.tflite"
    path.write_bytes(bytes(fbb.Output()))
    return path


def _conv_options(model):
    return model.subgraphs[0].operators[0].builtinOptions


def _input_quant(model):
    return model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].quantization


@pytest.mark.parametrize("change, message", [
    (lambda m: setattr(_conv_options(m), "strideH", 0), "CONV_2D #0: stride_h is 0"),
    (lambda m: setattr(_conv_options(m), "strideW", -2), "CONV_2D #0: stride_w is -2"),
    (lambda m: setattr(_conv_options(m), "dilationHFactor", 0), "CONV_2D #0: dilation_h is 0"),
    (lambda m: setattr(_conv_options(m), "padding", 7), "CONV_2D #0: padding is 7, neither SAME"),
    (lambda m: setattr(_input_quant(m), "scale", [0.0]), "quantization scale 0.0 is not a positive finite number"),
    (lambda m: setattr(_input_quant(m), "scale", [float("nan")]), "quantization scale nan is not a positive finite"),
    (lambda m: setattr(_input_quant(m), "scale", [float("inf")]), "quantization scale inf is not a positive finite"),
    (lambda m: setattr(_input_quant(m), "zeroPoint", [1000]), "zero point 1000 is outside [-128, 127] for int8"),
    (lambda m: setattr(_input_quant(m), "zeroPoint", [1, 2]), "1 quantization scales but 2 zero points"),
])
def test_a_damaged_field_is_refused_before_any_work(tmp_path, capsys, change, message):
    path = _damaged(tmp_path, change)
    code, err = _cli_error(capsys, ["build", str(path), "-o", str(tmp_path / "b")])
    assert code == 2 and message in err and "re-export it" in err and "Traceback" not in err


def test_an_internal_error_is_reported_as_a_bug(tmp_path, capsys, monkeypatch, mlperf_dir):
    from edgert import api

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(api, "build", broken)
    code, err = _cli_error(capsys, ["build", str(mlperf_dir / "ad_toycar_int8.tflite"), "-o", str(tmp_path / "b")])
    assert code == 1 and "internal error: ZeroDivisionError: division by zero" in err
    assert "this is a bug in edgert" in err and "`edgert build " in err and "Traceback" not in err


def _second_writer(model):
    """The convolution writes the graph's input too: two writers (and a cycle)."""
    op = model.subgraphs[0].operators[0]
    op.outputs = [model.subgraphs[0].inputs[0]]


def _weights_past_the_end(model):
    """The convolution's weights stored outside the flatbuffer, at an offset past the file."""
    from tests.support.tflite_builder import schema_fb

    buf = schema_fb.BufferT()  # the builder's own buffers pack their data only
    buf.offset, buf.size = 10 ** 6, 72
    model.buffers[model.subgraphs[0].tensors[model.subgraphs[0].operators[0].inputs[1]].buffer] = buf


@pytest.mark.parametrize("change, message", [
    (lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 9), "operator #0 names op code 9, the file has 1"),
    (_weights_past_the_end, "is stored at bytes 1,000,000-1,000,072, past the file's end"),
    (lambda m: setattr(m.subgraphs[0].operators[0], "inputs", [0, 99, 2]), "tensor index 99 is out of range"),
    (_second_writer, "the model's graph is malformed"),
    (lambda m: setattr(m.subgraphs[0].tensors[m.subgraphs[0].operators[0].outputs[0]], "shape", [1, 6, 6, 5]),
     "has shape [1, 6, 6, 5], the weights [4, 3, 3, 2] give 4 output channels"),
])
def test_a_damaged_graph_is_refused(tmp_path, capsys, change, message):
    path = _damaged(tmp_path, change)
    code, err = _cli_error(capsys, ["build", str(path), "-o", str(tmp_path / "b")])
    assert code == 2 and message in err and "internal error" not in err


@pytest.fixture(scope="module")
def hello_build(tmp_path_factory):
    from edgert import api
    from tests.conftest import HELLO_WORLD

    return api.build(HELLO_WORLD, "host", tmp_path_factory.mktemp("hello"))


@pytest.mark.parametrize("value, message", [("-1", "'-1' is negative: give a number of samples, 0 or more"),
                                            ("x", "'x' is not a whole number")])
def test_a_random_count_that_is_no_count_is_refused(hello_build, capsys, value, message):
    with pytest.raises(SystemExit) as e:
        cli.main(["validate", str(hello_build.dir), f"--random={value}"])
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("x, message", [
    (np.zeros((5, 3), np.int8), "cannot read samples of shape [1, 1] from an array of shape [5, 3]"),
    # int16 samples that do not fit int8 (ones that fit are taken as they are: lossless)
    (np.full((5, 1, 1), 300, np.int16), "is int8, the sample is int16"),
])
def test_a_dataset_that_does_not_match_the_model_is_refused(hello_build, tmp_path, capsys, x, message):
    path = tmp_path / "d.npz"
    np.savez(path, x=x)
    code, err = _cli_error(capsys, ["validate", str(hello_build.dir), "--dataset", str(path)])
    assert code == 2 and message in err and "hint:" in err
