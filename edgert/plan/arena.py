"""Static arena planning: every activation tensor gets an offset in one byte arena.

Lifetimes come from the execution order: a tensor written by op i and last read by op j is
live over [i, j] (graph inputs from -1, graph outputs to the end). Tensors whose lifetimes
intersect never share bytes, except that an in-place op's output takes over its first
input's bytes when that input dies at the op (edgert.ops.IN_PLACE). Placement is greedy
by size, largest first, each at the lowest aligned offset free over its whole lifetime, the
strategy of TFLite Micro's GreedyMemoryPlanner.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from edgert.ir import Graph
from edgert.ops import IN_PLACE

ALIGN = 16  # bytes; word-aligned for every target and cache-line friendly on Cortex-M7


@dataclass
class ArenaPlan:
    offsets: dict[str, int]  # tensor name -> byte offset
    size: int  # arena bytes
    lifetimes: dict[str, tuple[int, int]]
    aliases: dict[str, str] = field(default_factory=dict)  # in-place output -> tensor it reuses

    def verify(self, g: Graph) -> None:
        """Raise AssertionError if two tensors that are live at once overlap in the arena."""
        names = list(self.offsets)
        root = {n: self._root(n) for n in names}
        for i, a in enumerate(names):
            ta = g.tensor(a)
            assert self.offsets[a] % ALIGN == 0, f"{a} misaligned"
            assert self.offsets[a] + ta.nbytes <= self.size, f"{a} outside the arena"
            for b in names[i + 1:]:
                if root[a] == root[b]:
                    continue
                (s1, e1), (s2, e2) = self.lifetimes[a], self.lifetimes[b]
                if s1 > e2 or s2 > e1:
                    continue
                o1, o2 = self.offsets[a], self.offsets[b]
                assert o1 + ta.nbytes <= o2 or o2 + g.tensor(b).nbytes <= o1, (
                    f"{a} [{o1}, +{ta.nbytes}) and {b} [{o2}, +{g.tensor(b).nbytes}) overlap while both live"
                )

    def _root(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(g: Graph) -> dict[str, tuple[int, int]]:
    end = len(g.ops)
    first: dict[str, int] = {n: -1 for n in g.inputs}
    last: dict[str, int] = {n: -1 for n in g.inputs}
    for i, op in enumerate(g.ops):
        for t in op.outputs:
            first.setdefault(t, i)
            last[t] = max(last.get(t, i), i)
        for t in op.inputs:
            if t and not g.tensor(t).is_const:
                last[t] = max(last.get(t, i), i)
    for n in g.outputs:
        last[n] = end
    return {n: (first[n], last[n]) for n in first}


def plan(g: Graph, *, in_place: bool = True) -> ArenaPlan:
    life = lifetimes(g)
    aliases: dict[str, str] = {}
    if in_place:
        for i, op in enumerate(g.ops):
            if op.kind not in IN_PLACE:
                continue
            src, dst = op.inputs[0], op.outputs[0]
            ts, td = g.tensor(src), g.tensor(dst)
            same_layout = ts.nbytes == td.nbytes and (op.kind == "reshape" or ts.shape == td.shape)
            if (not ts.is_const and src not in g.inputs and life[src][1] == i and same_layout):
                aliases[dst] = src

    def root(n: str) -> str:
        while n in aliases:
            n = aliases[n]
        return n

    groups: dict[str, list[str]] = {}
    for n in life:
        groups.setdefault(root(n), []).append(n)
    spans = {
        r: (min(life[m][0] for m in ms), max(life[m][1] for m in ms), max(g.tensor(m).nbytes for m in ms))
        for r, ms in groups.items()
    }
    order = sorted(spans, key=lambda r: (-spans[r][2], spans[r][0], r))
    placed: list[tuple[int, int, int, int]] = []  # (start, end, offset, size)
    offset_of: dict[str, int] = {}
    for r in order:
        s, e, size = spans[r]
        busy = sorted((o, o + sz) for (s2, e2, o, sz) in placed if not (s > e2 or s2 > e))
        off = 0
        for lo, hi in busy:
            if off + size <= lo:
                break
            off = max(off, _align(hi))
        offset_of[r] = off
        placed.append((s, e, off, size))
    offsets = {n: offset_of[root(n)] for n in life}
    total = max((o + sz for (_, _, o, sz) in placed), default=0)
    return ArenaPlan(offsets=offsets, size=_align(total), lifetimes=life, aliases=aliases)
