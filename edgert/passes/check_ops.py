"""Check every op against what its kernel supports; report all problems at once."""
from __future__ import annotations

from edgert.errors import UnsupportedError
from edgert.ir import Graph
from edgert.ops import REGISTRY


def run(g: Graph) -> Graph:
    problems = []
    hints = []
    for op in g.ops:
        try:
            REGISTRY[op.kind].check(op, g)
        except UnsupportedError as e:
            problems.append(e.message)
            if e.hint not in hints:
                hints.append(e.hint)
    if problems:
        raise UnsupportedError("; ".join(problems), "; ".join(hints))
    return g
