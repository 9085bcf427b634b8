"""Channel reuse in binary convolutions (opt-in: `edgert build --bnn-mst`), after "MST-
compression: Compressing and Accelerating Binary Neural Networks with Minimum Spanning
Tree" (Vo et al., ICCV 2023).

Output channels c and p of a binary layer see the same input x. Where their filters differ
(D = w_c XOR w_p), popcount(x ^ w_c) - popcount(x ^ w_p) = |D| - 2 popcount((x & D) ^ (w_p & D)),
and it is 0 where they agree. So channel c costs only the filter words in which it differs
from p, once p's accumulator is known.

edgert builds a spanning tree of depth one (the paper's minimum-depth case, which keeps
every dependency one step long): some channels ("centers") are computed in full, every other
channel from its nearest center (fewest differing words) plus its differing words. The
kernel reads a fixed number of difference entries per channel, so the plan picks the bound
P on differing words that minimises the estimated cost: centers x all words + others x P
(each difference entry counted as ENTRY_COST plain words). A layer where that saves nothing,
or with more than MAX_LOCAL centers or other channels, keeps its dense kernel. Results are
bit-exact either way.
"""
from __future__ import annotations

import numpy as np

from edgert.ir import Graph
from edgert.ops import binary

ENTRY_COST = 2.7  # instructions of a difference entry / a dense word, measured on the Cortex-M7
                  # (benchmarks/models/bconv_16x16x64_3x3x64_similar: ~46 vs ~17)
# The same on a CPU whose dense kernel is vectorized over channels (edgert.ops.forms.channels_inner),
# measured on the Cortex-A72 under qemu-aarch64 on the same layer: about 56 instructions an
# entry against 2.1 a dense word (614,890 instructions dense, 2,478,143 with bound 3). There
# reuse pays only for nearly identical filters.
ENTRY_COST_SIMD = 27.0
MAX_LOCAL = 64    # one position's accumulators live in 64-entry kernel-local arrays


def plan(w: np.ndarray, entry_cost: float = ENTRY_COST) -> dict | None:
    """For packed filters w [cout, kh, kw, words]: the center of every channel (itself for
    a center), the difference entries of the others, and the estimated word costs; None if
    reuse does not pay with a difference entry costing ``entry_cost`` dense words."""
    cout = w.shape[0]
    flat = w.reshape(cout, -1).view(np.uint32)
    full = flat.shape[1]
    differ = (flat[:, None, :] != flat[None, :, :])          # [cout, cout, words]
    nz = differ.sum(-1)                                       # differing words per pair
    best = None
    for bound in sorted(set(nz.ravel().tolist())):
        if bound >= full / entry_cost:
            break
        centers = _cover(nz, bound)
        cost = len(centers) * full + (cout - len(centers)) * bound * entry_cost
        if best is None or cost < best[0]:
            best = (cost, bound, centers)
    if best is None or best[0] >= cout * full:
        return None
    cost, bound, centers = best
    if max(len(centers), cout - len(centers)) > MAX_LOCAL:
        return None
    center_of = np.empty(cout, dtype=np.int64)
    for c in range(cout):
        center_of[c] = c if c in centers else min(centers, key=lambda s: (nz[s, c], s))
    return {"center_of": center_of, "bound": int(bound), "centers": sorted(centers),
            "words_dense": cout * full, "words_mst": float(cost)}


def _cover(nz: np.ndarray, bound: int) -> list[int]:
    """Greedy centers: each new center covers the most uncovered channels within ``bound``."""
    uncovered = np.ones(nz.shape[0], dtype=bool)
    centers: list[int] = []
    within = nz <= bound
    while uncovered.any():
        gain = (within & uncovered[None, :]).sum(1)
        s = int(np.argmax(gain))
        centers.append(s)
        uncovered &= ~within[s]
    return centers


def run(g: Graph, entry_cost: float = ENTRY_COST) -> dict[str, dict]:
    """Plan every bit-packed binary convolution (a difference entry costing ``entry_cost``
    dense words on the target); returns the report rows by layer."""
    report = {}
    for op in g.ops:
        if op.kind != "bconv2d":
            continue
        w = g.tensor(op.inputs[1]).data
        p = plan(w, entry_cost)
        cout, kh, kw, _ = w.shape
        k = kh * kw * op.attrs["channels_in"]
        if p is None:
            report[op.name] = {"applied": False, "bitops_dense": cout * k, "bitops_mst": cout * k}
            continue
        op.attrs["mst"] = p
        bits = binary.unpack_bits(w, op.attrs["channels_in"]).reshape(cout, -1)
        hamming = sum(int((bits[c] != bits[p["center_of"][c]]).sum()) for c in range(cout))
        report[op.name] = {"applied": True, "centers": len(p["centers"]), "channels": cout, "bound": p["bound"],
                           "bitops_dense": cout * k, "bitops_mst": len(p["centers"]) * k + hamming}
    return report
