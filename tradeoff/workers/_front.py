"""The running Pareto set and hypervolume shown by the progress bar."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradeoff import _pareto


class Front:
    """Running Pareto set and provisional hypervolume, for the progress bar.

    Keeps only the non-dominated points plus the per-objective worst and best values, so each
    update costs O(front size), not O(trials).
    """

    def __init__(self, directions: Sequence[str], reference: Sequence[float] | None) -> None:
        self.directions = directions
        self.reference = (
            None if reference is None else _pareto.to_minimization(np.array(reference), directions)
        )
        self.front = np.empty((0, len(directions)))
        self.worst = np.full(len(directions), -np.inf)
        self.best = np.full(len(directions), np.inf)

    def add(self, values: list[float]) -> None:
        y = _pareto.to_minimization(np.array(values, dtype=float), self.directions)
        self.worst, self.best = np.maximum(self.worst, y), np.minimum(self.best, y)
        if np.any(np.all(self.front <= y, axis=1) & np.any(self.front < y, axis=1)):
            return
        keep = ~(np.all(y <= self.front, axis=1) & np.any(y < self.front, axis=1))
        self.front = np.vstack([self.front[keep], y])

    def stats(self) -> tuple[int, float]:
        if len(self.front) == 0:
            return 0, 0.0
        ref = self.reference
        if ref is None:
            ref = _pareto.derive_reference(np.stack([self.worst, self.best]))
        return len(self.front), _pareto.hypervolume(self.front, ref)
