"""Mixed-precision bit widths under an accuracy bound.

Sensitivity (after "Augmenting Hessians with Inter-Layer Dependencies for Mixed-Precision
Post-Training Quantization"): near a trained model's minimum the loss grows with a weight
perturbation d as the Hessian quadratic form 1/2 d'Hd. For a layer l quantized to low bits,
that form splits into the layer's own block, measured here directly as the loss increase
s_l = L(l low) - L(all int8) on the calibration set, and inter-layer blocks d_l' H_lm d_m,
measured as c_lm = L(l and m low) - L - s_l - s_m. Pairs are the layers that feed each other
(consecutive layers), where dependencies are strongest; the measurements are exact loss
changes of the real quantized model, not a diagonal approximation.

Order: layers join the low-bit set greedily, each time the one whose added cost
s_l + sum of c_lm over the set's members is smallest per flash byte saved. Bisection over the
length of that order then finds the longest prefix whose measured accuracy drop is within
the bound (accuracy falls as more layers go low-bit; the bisection measures, it does not
assume the cost model).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from edgert.errors import UserError


@dataclass
class Score:
    loss: float
    accuracy: float


@dataclass
class Choice:
    low: list[str]  # layers in the low-bit format, in the order they were added
    accuracy: float
    baseline: float  # the float model's accuracy
    int8_accuracy: float
    sensitivity: dict[str, float] = field(default_factory=dict)
    interaction: dict[tuple[str, str], float] = field(default_factory=dict)
    evaluations: int = 0


def choose(layers: list[str], saved_bytes: dict[str, int], evaluate: Callable[[set[str]], Score],
           baseline: float, max_drop: float) -> Choice:
    """``layers`` in graph order; ``evaluate(low)`` scores the model with the layers in ``low``
    at low bits (the rest int8); ``baseline`` is the float model's accuracy; ``max_drop`` the
    largest allowed baseline - accuracy (a fraction)."""
    count = 0

    def ev(low) -> Score:
        nonlocal count
        count += 1
        return evaluate(set(low))

    base = ev([])
    if baseline - base.accuracy > max_drop:
        raise UserError(f"the all-int8 model already loses {100 * (baseline - base.accuracy):.2f} % accuracy "
                        f"({100 * base.accuracy:.2f} % vs {100 * baseline:.2f} % in float), over --max-drop "
                        f"{100 * max_drop:.2f} %", "raise --max-drop, or calibrate with more or more typical samples")
    single = {l: ev([l]).loss - base.loss for l in layers}
    inter = {}
    for a, b in zip(layers, layers[1:]):
        inter[(a, b)] = ev([a, b]).loss - base.loss - single[a] - single[b]

    def added(l: str, chosen: list[str]) -> float:
        return single[l] + sum(inter.get((l, m), inter.get((m, l), 0.0)) for m in chosen)

    order: list[str] = []
    rest = list(layers)
    while rest:
        best = min(rest, key=lambda l: (added(l, order) / max(saved_bytes[l], 1), layers.index(l)))
        order.append(best)
        rest.remove(best)

    lo, hi, best_acc = 0, len(order), base.accuracy  # invariant: prefix lo meets the bound
    while lo < hi:
        mid = (lo + hi + 1) // 2
        acc = ev(order[:mid]).accuracy
        if baseline - acc <= max_drop:
            lo, best_acc = mid, acc
        else:
            hi = mid - 1
    return Choice(low=order[:lo], accuracy=best_acc, baseline=baseline, int8_accuracy=base.accuracy,
                  sensitivity=single, interaction=inter, evaluations=count)
