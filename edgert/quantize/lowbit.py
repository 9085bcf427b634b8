"""Low-bit weights from int8 or float weights: symmetric int4 per channel, and codebooks
(non-uniform levels found by 1-D k-means, as in the codebook and power-exponent PTQ
literature: weights take one of 2**bits values of a table per layer)."""
from __future__ import annotations

import numpy as np

INT4_MAX = 7  # symmetric: [-7, 7], so that a weight and its negation are both representable


def int4_from_int8(w: np.ndarray, scales: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel int8 weights (scales along ``axis``) -> (int4 values as int8, new scales):
    each channel's largest magnitude maps to 7."""
    w = np.moveaxis(w.astype(np.int64), axis, 0)
    peak = np.maximum(np.abs(w.reshape(w.shape[0], -1)).max(axis=1), 1)
    s = np.broadcast_to(np.asarray(scales, np.float64), (w.shape[0],))
    new_scales = (s * peak / INT4_MAX).astype(np.float32)
    ratio = (s / new_scales.astype(np.float64)).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.round(w * ratio), -INT4_MAX, INT4_MAX).astype(np.int8)
    return np.moveaxis(q, 0, axis), new_scales


def kmeans_levels(values: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """k levels minimising the squared error of ``values`` (Lloyd's algorithm in 1-D, started at
    evenly spaced quantiles: deterministic)."""
    v = np.sort(values.astype(np.float64).reshape(-1))
    levels = np.unique(np.quantile(v, (np.arange(k) + 0.5) / k))
    for _ in range(iterations):
        edges = (levels[1:] + levels[:-1]) / 2
        idx = np.searchsorted(edges, v)
        sums = np.bincount(idx, weights=v, minlength=len(levels))
        counts = np.bincount(idx, minlength=len(levels))
        new = np.where(counts > 0, sums / np.maximum(counts, 1), levels)
        if np.allclose(new, levels):
            break
        levels = new
    return levels


def codebook_int8(w: np.ndarray, bits: int) -> np.ndarray:
    """int8 weights snapped to at most 2**bits integer levels (k-means over the layer's values,
    levels rounded to integers; zero stays a level where the layer has zeros)."""
    levels = np.clip(np.round(kmeans_levels(w, 1 << bits)), -127, 127)
    if (w == 0).any():  # pruned weights stay exactly zero
        levels[np.argmin(np.abs(levels))] = 0
    levels = np.unique(levels)
    edges = (levels[1:] + levels[:-1]) / 2
    return levels[np.searchsorted(edges, w.astype(np.float64))].astype(np.int8)
