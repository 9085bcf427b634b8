"""Facts every front end shares: TFLite's padding rule, TFLite's activation codes, and the
permutations between ONNX's NCHW and edgert's NHWC image layout."""
from __future__ import annotations

#: axis permutations for np.transpose / the IR's transpose op (4-D images)
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)

#: TFLite's (and the Larq Compute Engine's) ActivationFunctionType codes -> edgert's fused
#: activation names (edgert.ir.activations); TANH and SIGN_BIT have no fused form in edgert
TFLITE_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


def same_pad_total(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """The padding SAME adds along one axis (TFLite's SAME, ONNX's SAME_UPPER / SAME_LOWER):
    enough that ceil(size / stride) windows fit."""
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    return max((out - 1) * stride + effective - size, 0)


def tflite_pad_before(same: bool, size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Padding before the first element along one axis, as TFLite computes it
    (ComputePaddingHeightWidth): none for VALID; for SAME, half the total (rounded down), the
    larger half after."""
    return same_pad_total(size, kernel, stride, dilation) // 2 if same else 0


def onnx_nhwc_shape(shape) -> tuple[int, ...]:
    """An ONNX NCHW image shape in edgert's NHWC order (other ranks unchanged)."""
    shape = tuple(shape)
    return tuple(shape[p] for p in TO_NHWC) if len(shape) == 4 else shape


def require_at_least(where: str, minimum: int, hint: str, **fields) -> None:
    """Refuse a model field (a stride, a dilation, a window size, a pad) that is not a whole
    number of at least ``minimum``: the kernels divide and loop by them. One ModelFormatError
    naming the first such field."""
    from edgert.errors import ModelFormatError

    for name, value in fields.items():
        if not isinstance(value, int) or value < minimum:
            raise ModelFormatError(f"{where}: {name} is {value!r}", hint)


def check_window(where: str, kernel=(), strides=(), dilations=(), pads=()) -> None:
    """Refuse a window the kernels cannot place: kernel sizes, strides and dilations must be
    whole numbers of at least 1, pads at least 0 (ONNX attributes; TFLite's are checked where
    its options are read, by the same require_at_least)."""
    from edgert.errors import DAMAGED_ONNX

    hint = "sizes, strides and dilations must be at least 1, pads at least 0; " + DAMAGED_ONNX
    for name, values, minimum in (("kernel", kernel, 1), ("strides", strides, 1), ("dilations", dilations, 1),
                                  ("pads", pads, 0)):
        require_at_least(where, minimum, hint, **{f"{name}[{i}]": v for i, v in enumerate(values)})


SHOWN_INDICES = 3  # a refused op's first few places, then how many more


def unsupported_summary(found: list[tuple[str, str]], noun: str = "op") -> str:
    """(op name, its place: "#3", or "#3 conv1" with the node's name) of every refused op -> one
    entry per distinct op, in the order first met:
    "HARD_SWISH x 17 (ops #1, #19, #23 and 14 more), TANH (op #4)"."""
    where: dict[str, list[str]] = {}
    for name, place in found:
        where.setdefault(name, []).append(place)
    parts = []
    for name, places in where.items():
        shown = ", ".join(places[:SHOWN_INDICES])
        more = f" and {len(places) - SHOWN_INDICES} more" if len(places) > SHOWN_INDICES else ""
        count = f" x {len(places)}" if len(places) > 1 else ""
        parts.append(f"{name}{count} ({noun}{'s' if len(places) > 1 else ''} {shown}{more})")
    return ", ".join(parts)
