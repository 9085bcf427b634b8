"""Write a copy of a Larq Compute Engine model whose binary convolution filters are made of a
few prototype filters with a few bits flipped in each copy: a layer whose channels are
similar, as MST-compression's training makes them, for benchmarks and tests of
`edgert build --bnn-mst`.

    python scripts/similar_filters.py IN.tflite OUT.tflite --prototypes 8 --flips 3
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import flatbuffers
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edgert.frontends.tflite_schema import schema as fb  # noqa: E402


def rewrite(src: Path, dst: Path, prototypes: int, flips: int, seed: int = 0) -> None:
    data = Path(src).read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    rng = np.random.default_rng(seed)
    for op in sg.operators:
        if model.operatorCodes[op.opcodeIndex].customCode != b"LceBconv2d":
            continue
        t = sg.tensors[op.inputs[1]]
        shape = tuple(int(d) for d in t.shape)
        buf = model.buffers[t.buffer]
        u = np.frombuffer(bytes(buf.data), dtype=np.uint32).reshape(shape).copy()
        base = u[rng.integers(0, shape[0], prototypes)]
        for c in range(shape[0]):
            u[c] = base[c % prototypes]
            for _ in range(flips):  # (a flip may land on an unused channel bit: those stay 0)
                ky, kx, j = (int(rng.integers(0, n)) for n in shape[1:])
                u[c, ky, kx, j] ^= np.uint32(1 << int(rng.integers(0, 32)))
        mask = _channel_mask(op, sg, shape)
        u &= mask
        buf.data = list(u.view(np.uint8).ravel())
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(dst).write_bytes(bytes(builder.Output()))


def _channel_mask(op, sg, shape) -> np.ndarray:
    """Words with only the bits of real input channels (LCE keeps the others 0)."""
    from flatbuffers import flexbuffers

    cin = flexbuffers.Loads(bytes(op.customOptions))["channels_in"]
    bits = np.zeros(shape[3] * 32, dtype=bool)
    bits[:cin] = True
    words = (bits.reshape(shape[3], 32) * (np.uint64(1) << np.arange(32, dtype=np.uint64))).sum(1)
    return words.astype(np.uint32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--prototypes", type=int, default=8)
    ap.add_argument("--flips", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rewrite(Path(a.src), Path(a.dst), a.prototypes, a.flips, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
