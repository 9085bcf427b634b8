"""What edgert compiles, generated from the tables that decide it (so that no list is kept by
hand): the ops each front end reads (their TRANSLATE tables) and where each op kind compiles
(edgert.ops.REGISTRY, narrowed by each target's backend and TOML). `edgert targets --markdown`
prints it; the README's "Supported" section is this text, and a test keeps them equal."""
from __future__ import annotations


def _targets_of(kind: str, loaded: list) -> str:
    where = [t.name for t in loaded if kind in t.ops]
    if len(where) == len(loaded):
        return "all"
    return ", ".join(where) if where else "none"


def markdown() -> str:
    from edgert import targets
    from edgert.frontends import lce, tflite
    from edgert.frontends.onnx import float as onnx_float, qdq
    from edgert.ops import REGISTRY

    tflite_ops = sorted(op for op in tflite.SUPPORTED_OPS if op not in lce.TRANSLATE)
    loaded = [targets.load(name) for name in targets.available()]
    lines = [
        "| model format | ops read |",
        "|---|---|",
        f"| TFLite, int8 and float32 ({len(tflite_ops)}) | {', '.join(tflite_ops)} |",
        f"| Larq Compute Engine ({len(lce.TRANSLATE)}) | {', '.join(sorted(lce.TRANSLATE))} |",
        f"| ONNX, float32 ({len(onnx_float.SUPPORTED_OPS)}) | {', '.join(sorted(onnx_float.SUPPORTED_OPS))} |",
        f"| ONNX, int8 QDQ ({len(qdq.SUPPORTED_OPS)}) | {', '.join(qdq.SUPPORTED_OPS)} |",
        "",
        f"| op kind ({len(REGISTRY)}) | family | targets |",
        "|---|---|---|",
    ]
    for kind in sorted(REGISTRY):
        family = REGISTRY[kind].family.__name__.rsplit(".", 1)[-1]
        lines.append(f"| {kind} | {family} | {_targets_of(kind, loaded)} |")
    return "\n".join(lines)
