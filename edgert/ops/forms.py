"""The loop form a kernel takes on a SIMD CPU: read by edgert.codegen.schedule, and by
passes.weight_format's cost estimate before anything is lowered (no TVM import)."""
from __future__ import annotations

from edgert.ir import DType, Graph, Op


def channels_inner(g: Graph, op: Op) -> bool:
    """Whether a SIMD CPU computes ``op`` with output channels innermost (edgert.codegen.schedule) rather
    than as one dot product per output: depthwise convolutions, convolutions over few input
    channels, 1x1 convolutions, and convolutions to 64 channels or more. Measured per layer
    under qemu-aarch64 (instructions, channels-innermost vs dot product): KWS's first
    convolution (1 input channel) 237,269 vs 2,377,217 on the A72, its depthwise ones 117,504
    vs 716,835, its 1x1 64 -> 64 ones 317,814 vs 487,348 (A72) and 317,914 vs 359,326 (A76,
    whose dot products use SDOT); IC's 3x3 32 -> 64 676,402 vs 832,577 but its 3x3 16 -> 16
    6,790,437 vs 2,468,952: few output channels fill few vector registers. Binary convolutions
    (but MST ones, whose channels depend on each other): the LceBconv2d 16x16x64 -> 64 3x3 of
    benchmarks/models 614,890 vs 2,676,198 on the A72. Sparse convolutions never: their
    channels read different inputs."""
    if op.kind == "depthwise_conv2d" or (op.kind == "bconv2d" and "mst" not in op.attrs):
        return True
    if op.kind != "conv2d" or op.attrs.get("sparse") is not None:
        return False
    oc, kh, kw, cin = g.tensor(op.inputs[1]).shape
    return cin <= 4 or kh * kw == 1 or oc >= 64


def dsp_dot(g: Graph, op: Op) -> bool:
    """Whether a CPU with the Armv7E-M DSP extension computes ``op`` as dot products over runs
    of four int8 values (edgert.codegen.schedule's DSP form: one word load and two SXTB16 per
    run of each operand, two SMLAD per run): int8 convolutions and fully-connected layers with
    dense int8 weights (or int4 ones whose rows are whole words of eight) whose reduction is
    contiguous in both the input and the weights, with at least one whole run. A convolution's reduction over one filter row (kw x cin values)
    is contiguous when its input has no padding (passes.padding makes it explicit) and
    no horizontal dilation. Depthwise convolutions (multiplier 1, channels a multiple of
    four) take four channels a word instead, each channel with its own accumulator."""
    if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected") or op.attrs.get("sparse") is not None:
        return False
    x, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
    kind = getattr(op.attrs.get("packing"), "kind", "int8")
    if x.dtype is not DType.I8 or kind not in ("int8", "int4"):
        return False
    run = 8 if kind == "int4" else 4  # int4 weights: eight a word, whole words only
    if op.kind == "fully_connected":
        return w.shape[1] >= 4 and w.shape[1] % run == 0 if kind == "int4" else w.shape[1] >= 4
    if op.kind == "depthwise_conv2d":  # four channels a word, each its own accumulator (SMLABB/SMLATT)
        return kind == "int8" and op.attrs.get("depth_multiplier", 1) == 1 and w.shape[3] % 4 == 0
    _, _, kw, cin = w.shape
    return op.attrs["dilation"][1] == 1 and kw * cin >= 4 and (kind == "int8" or kw * cin % 8 == 0)
