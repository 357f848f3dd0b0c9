"""The running Pareto set and hypervolume shown by the progress bar."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradeoff import _pareto


class Front:
    """Running Pareto set and provisional hypervolume, for the progress bar.

    Keeps only the non-dominated points plus the per-objective worst and best values, so each
    update costs O(front size), not O(trials); the hypervolume is computed again only after
    the front or the derived reference changed (most trials change neither).
    """

    def __init__(self, directions: Sequence[str], reference: Sequence[float] | None) -> None:
        self.directions = directions
        self.reference = (
            None if reference is None else _pareto.to_minimization(np.array(reference), directions)
        )
        self.front = np.empty((0, len(directions)))
        self.worst = np.full(len(directions), -np.inf)
        self.best = np.full(len(directions), np.inf)
        self._stats: tuple[int, float] | None = (0, 0.0)

    def add(self, values: list[float]) -> None:
        y = _pareto.to_minimization(np.array(values, dtype=float), self.directions)
        worst, best = np.maximum(self.worst, y), np.minimum(self.best, y)
        if self.reference is None and not (
            np.array_equal(worst, self.worst) and np.array_equal(best, self.best)
        ):
            self._stats = None  # the derived reference moved
        self.worst, self.best = worst, best
        if np.any(np.all(self.front <= y, axis=1) & np.any(self.front < y, axis=1)):
            return
        keep = ~(np.all(y <= self.front, axis=1) & np.any(y < self.front, axis=1))
        self.front = np.vstack([self.front[keep], y])
        self._stats = None

    def stats(self) -> tuple[int, float]:
        """(Pareto set size, hypervolume)."""
        if self._stats is None:
            ref = self.reference
            if ref is None:
                ref = _pareto.derive_reference(np.stack([self.worst, self.best]))
            self._stats = len(self.front), _pareto.hypervolume(self.front, ref)
        return self._stats
