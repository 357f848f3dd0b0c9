"""Non-dominated sorting and exact hypervolume, all in minimization form.

Shapes: ``values`` is ``(n_points, n_objectives)``; ``reference`` is ``(n_objectives,)``.
Maximized objectives are negated by the caller (:func:`to_minimization`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def to_minimization(values: FloatArray, directions: Sequence[str]) -> FloatArray:
    """Negate the columns of maximized objectives."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(np.asarray(values, dtype=float) * sign, dtype=float)


def non_dominated(values: FloatArray) -> NDArray[np.bool_]:
    """Mask of the points no other point dominates (duplicates are all kept)."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by_i = np.all(y[i] <= y, axis=1) & np.any(y[i] < y, axis=1)
        mask &= ~dominated_by_i
    return mask


def hypervolume(values: FloatArray, reference: FloatArray) -> float:
    """Exact volume dominated by ``values`` and bounded by ``reference`` (minimization).

    Points not strictly better than the reference in every objective contribute nothing.
    Uses a sweep for two objectives and slicing along the last objective above that
    (``O(n^(d-1) log n)``, fast for the few hundred points and few objectives of a search).
    """
    y = np.asarray(values, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    y = y[np.all(y < ref, axis=1)]
    if len(y) == 0:
        return 0.0
    return _hv(y[non_dominated(y)], ref)


def _hv(y: FloatArray, ref: FloatArray) -> float:
    d = y.shape[1]
    if d == 1:
        return float(ref[0] - y[:, 0].min())
    if d == 2:
        return _hv2d(y, ref)
    order = np.argsort(y[:, -1], kind="stable")
    y = y[order]
    total = 0.0
    for i in range(len(y)):
        upper = y[i + 1, -1] if i + 1 < len(y) else ref[-1]
        height = upper - y[i, -1]
        if height <= 0:
            continue
        slab = y[: i + 1, :-1]
        total += _hv(slab[non_dominated(slab)], ref[:-1]) * height
    return float(total)


def _hv2d(y: FloatArray, ref: FloatArray) -> float:
    y = y[np.lexsort((y[:, 1], y[:, 0]))]
    total, best_y1 = 0.0, ref[1]
    for x0, x1 in y:
        if x1 < best_y1:
            total += (ref[0] - x0) * (best_y1 - x1)
            best_y1 = x1
    return float(total)


def derive_reference(values: FloatArray, *, margin: float = 0.1) -> FloatArray:
    """A reference point just worse than the worst observed value of each objective.

    ``worst + margin * (worst - best)``, or ``worst + margin * max(|worst|, 1)`` when all values
    are equal, so the extreme Pareto points still contribute volume.
    """
    y = np.asarray(values, dtype=float)
    worst, best = y.max(axis=0), y.min(axis=0)
    span = worst - best
    span = np.where(span > 0, span, np.maximum(np.abs(worst), 1.0))
    return np.asarray(worst + margin * span, dtype=float)
