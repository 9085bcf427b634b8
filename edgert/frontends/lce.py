"""Larq Compute Engine custom ops in a .tflite file -> edgert IR binary ops.

LCE's converter writes its ops as TFLite custom ops whose options are a FlexBuffer map:

    LceQuantize    -> lce_quantize     (no options)
    LceDequantize  -> lce_dequantize   (no options)
    LceBconv2d     -> bconv2d          channels_in, dilation_height_factor, dilation_width_factor,
                                       fused_activation_function, pad_values, padding,
                                       stride_height, stride_width (all ints, all required)
    LceBMaxPool2d  -> bmaxpool2d       filter_height, filter_width, padding, stride_height,
                                       stride_width

Options are checked here, before any work, naming the op, the attribute and the value
(a model from an older LCE converter, which wrote strings and vectors, is named as such).
What the kernels accept beyond that is decided by edgert.ops.binary.
"""
from __future__ import annotations

from flatbuffers import flexbuffers

from edgert.errors import ModelFormatError, UnsupportedError
from edgert.ir import Op

from .common import TFLITE_ACTIVATIONS, tflite_pad_before
from .tflite_schema import schema as fb

_PADDINGS = {fb.Padding.SAME: "same", fb.Padding.VALID: "valid"}
_BCONV_KEYS = ("channels_in", "dilation_height_factor", "dilation_width_factor", "fused_activation_function",
               "pad_values", "padding", "stride_height", "stride_width")
_BMAXPOOL_KEYS = ("filter_height", "filter_width", "padding", "stride_height", "stride_width")
_REEXPORT = "convert the model again with larq-compute-engine 0.16 (lce.convert_keras_model)"


def options(raw, where: str) -> dict:
    data = bytes(raw) if raw is not None else b""
    if len(data) == 0:
        return {}
    try:
        opts = flexbuffers.Loads(data)
    except Exception:  # the flexbuffers runtime raises assorted errors on bad bytes
        raise ModelFormatError(f"{where}: its custom options are not a readable FlexBuffer",
                               "the file is corrupt; " + _REEXPORT) from None
    if not isinstance(opts, dict):
        raise ModelFormatError(f"{where}: its custom options are not a FlexBuffer map", _REEXPORT)
    return opts


def _ints(opts: dict, keys: tuple[str, ...], where: str) -> dict[str, int]:
    missing = [k for k in keys if k not in opts]
    if missing:
        raise UnsupportedError(f"{where}: attribute {missing[0]} is missing",
                               f"this LCE option layout is not supported; {_REEXPORT}")
    for k in keys:
        if not isinstance(opts[k], int) or isinstance(opts[k], bool):
            raise UnsupportedError(f"{where}: attribute {k} = {opts[k]!r} (expected an integer)",
                                   f"written by an older LCE converter; {_REEXPORT}")
    return {k: int(opts[k]) for k in keys}


def _padding(code: int, where: str) -> str:
    if code not in _PADDINGS:
        raise UnsupportedError(f"{where}: attribute padding = {code}", "expected SAME (0) or VALID (1)")
    return _PADDINGS[code]


def _pad_before(padding: str, size: int, k: int, stride: int, dilation: int) -> int:
    return tflite_pad_before(padding == "same", size, k, stride, dilation)


def _quantize(n) -> Op:
    options(n.custom_options, n.where)
    return n.op("lce_quantize", 1)


def _dequantize(n) -> Op:
    options(n.custom_options, n.where)
    return n.op("lce_dequantize", 1)


def _bconv2d(n) -> Op:
    opts, ins, outs, tensors, where, x = options(n.custom_options, n.where), n.ins, n.outs, n.tensors, n.where, n.x
    o = _ints(opts, _BCONV_KEYS, where)
    if len(ins) != 5:
        raise ModelFormatError(f"{where}: {len(ins)} inputs, LceBconv2d has 5", _REEXPORT)
    if o["pad_values"] not in (0, 1):
        raise UnsupportedError(f"{where}: attribute pad_values = {o['pad_values']}", "expected 0 or 1")
    if o["fused_activation_function"] not in TFLITE_ACTIVATIONS:
        raise UnsupportedError(f"{where}: attribute fused_activation_function = "
                               f"{o['fused_activation_function']}", "expected NONE, RELU, RELU_N1_TO_1 or RELU6")
    for k in ("stride_height", "stride_width", "dilation_height_factor", "dilation_width_factor", "channels_in"):
        if o[k] < 1:
            raise UnsupportedError(f"{where}: attribute {k} = {o[k]}", "expected a positive integer")
    w = tensors[ins[1]]
    padding = _padding(o["padding"], where)
    sh, sw = o["stride_height"], o["stride_width"]
    dh, dw = o["dilation_height_factor"], o["dilation_width_factor"]
    attrs = {
        "channels_in": o["channels_in"], "stride": (sh, sw), "dilation": (dh, dw),
        "pad": (_pad_before(padding, x.shape[1], w.shape[1], sh, dh), _pad_before(padding, x.shape[2], w.shape[2], sw, dw)),
        "pad_values": o["pad_values"], "act": TFLITE_ACTIVATIONS[o["fused_activation_function"]],
    }
    return Op("bconv2d", ins[:5], outs, attrs)


def _bmaxpool2d(n) -> Op:
    opts, ins, outs, where, x = options(n.custom_options, n.where), n.ins, n.outs, n.where, n.x
    o = _ints(opts, _BMAXPOOL_KEYS, where)
    for k in ("stride_height", "stride_width", "filter_height", "filter_width"):
        if o[k] < 1:
            raise UnsupportedError(f"{where}: attribute {k} = {o[k]}", "expected a positive integer")
    padding = _padding(o["padding"], where)
    fh, fw = o["filter_height"], o["filter_width"]
    sh, sw = o["stride_height"], o["stride_width"]
    attrs = {"filter": (fh, fw), "stride": (sh, sw),
             "pad": (_pad_before(padding, x.shape[1], fh, sh, 1), _pad_before(padding, x.shape[2], fw, sw, 1))}
    return Op("bmaxpool2d", ins[:1], outs, attrs)


#: LCE custom code -> translation (edgert.frontends.tflite.Node -> Op), part of the TFLite table
TRANSLATE = {"LceQuantize": _quantize, "LceDequantize": _dequantize, "LceBconv2d": _bconv2d,
             "LceBMaxPool2d": _bmaxpool2d}
OPS = tuple(TRANSLATE)
