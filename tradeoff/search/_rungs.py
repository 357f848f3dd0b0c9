"""One rung of a multi-fidelity search, ranked as results arrive.

:class:`Rung` holds a rung's results in the order :func:`tradeoff.search._asha.rank` ranks them:
feasible ones in non-dominated fronts (each front ordered by hypervolume contribution at the
rung's reference point, ties by trial number), then infeasible ones by total violation. A new
result costs a binary search over the fronts and a cascade down the fronts below it, not a
sort of the whole rung; which Config moves up next is then found front by front, and only the
front where the answer lies is ordered by contribution.

Why the cascade is exact: a point's front is the length of the longest chain of points that
dominate it, so one new point ``p`` moves a point down by at most one front, and a point of
front ``j`` moves exactly when a point that has just entered front ``j`` (``p``, or one pushed
down from ``j - 1``) dominates it. Every member of front ``j > 0`` is dominated by a member of
front ``j - 1``, so the fronts holding a dominator of ``p`` form a prefix: binary search.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from tradeoff import _pareto
from tradeoff.search._survival import hv_contributions

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


class _Front:
    """Members of one non-dominated front: trial numbers and values (minimization), in the
    order they joined (sorted by number only where the order matters, in :meth:`ordered`)."""

    def __init__(self, m: int) -> None:
        self.numbers: IntArray = np.empty(0, dtype=np.int64)
        self.matrix: FloatArray = np.empty((0, m))
        self.pending: set[int] = set()  # members not promoted yet
        self._order: tuple[bytes, list[int]] | None = None  # (reference, members best first)

    def __len__(self) -> int:
        return len(self.numbers)

    def add(self, numbers: IntArray, rows: FloatArray, pending: set[int]) -> None:
        self.numbers = np.concatenate([self.numbers, numbers])
        self.matrix = np.concatenate([self.matrix, rows])
        self.pending |= pending
        self._order = None

    def pop(self, mask: BoolArray) -> tuple[IntArray, FloatArray]:
        """Remove the members under ``mask``; their numbers and values."""
        gone = (self.numbers[mask], self.matrix[mask])
        self.numbers, self.matrix = self.numbers[~mask], self.matrix[~mask]
        self._order = None
        return gone

    def has_dominator_of(self, point: FloatArray) -> bool:
        y = self.matrix
        return bool(((y <= point).all(axis=1) & (y < point).any(axis=1)).any())

    def dominated_by(self, points: FloatArray) -> BoolArray:
        """Mask over members: dominated by any of ``points`` (``(k, m)``)."""
        y, p = self.matrix[None, :, :], points[:, None, :]
        return np.asarray(((p <= y).all(axis=2) & (p < y).any(axis=2)).any(axis=0))

    def ordered(self, reference: FloatArray) -> list[int]:
        """Members best first: by hypervolume contribution at ``reference``, ties by number,
        as ``rank`` orders a front."""
        key = reference.tobytes()
        if self._order is None or self._order[0] != key:
            by_number = np.argsort(self.numbers, kind="stable")
            contribution = hv_contributions(self.matrix[by_number], reference=reference)
            best = by_number[np.argsort(-contribution, kind="stable")]
            self._order = (key, self.numbers[best].tolist())
        return self._order[1]


class Rung:
    """One rung's results, ranked incrementally (see the module docstring).

    Args:
        m: Number of objectives.
        eta: The rung keeps its best ``floor(size / eta)`` for the next one.
        capped: And sends up no more than that many in all (``Fidelity.capped``).
    """

    def __init__(self, m: int, eta: float, *, capped: bool = False) -> None:
        self.m, self.eta, self.capped = m, eta, capped
        self.size = 0  # results, feasible or not
        self.fronts: list[_Front] = []
        self.infeasible: list[tuple[float, int]] = []  # (violation, number), best first
        self.promoted: set[int] = set()  # members that moved up
        self._front_of: dict[int, _Front] = {}
        self._worst: FloatArray | None = None
        self._best: FloatArray | None = None

    def add(self, number: int, values: FloatArray, violation: float, *, promoted: bool) -> None:
        """A new result: ``values`` ``(m,)`` in minimization form, total ``violation``."""
        self.size += 1
        if promoted:
            self.promoted.add(number)
        if violation > 0:
            bisect.insort(self.infeasible, (violation, number))
        elif violation <= 0:  # as rank(): a NaN violation is neither feasible nor infeasible
            self._add_feasible(number, values, set() if promoted else {number})

    def promote(self, number: int) -> None:
        """Member ``number``'s Config has moved up."""
        self.promoted.add(number)
        front = self._front_of.get(number)
        if front is not None:
            front.pending.discard(number)

    def first_pending(self) -> int | None:
        """The best-ranked member in the rung's best ``floor(size / eta)`` that has not moved
        up, or None (also when ``capped`` and that many have moved up)."""
        keep = int(self.size // self.eta)
        if self.capped and len(self.promoted) >= keep:
            return None
        for front in self.fronts:
            if keep <= 0:
                return None
            if front.pending:
                if len(front) <= keep and len(front.pending) == 1:
                    return next(iter(front.pending))
                order = front.ordered(self.reference())
                return next((n for n in order[:keep] if n in front.pending), None)
            keep -= len(front)
        return next((n for _, n in self.infeasible[:keep] if n not in self.promoted), None)

    def reference(self) -> FloatArray:
        """``derive_reference`` of the feasible results (as ``rank`` derives it)."""
        assert self._worst is not None and self._best is not None
        return _pareto.derive_reference(np.vstack([self._worst, self._best]))

    def _add_feasible(self, number: int, point: FloatArray, pending: set[int]) -> None:
        if self._worst is None or self._best is None:
            self._worst, self._best = point.copy(), point.copy()
        else:
            self._worst = np.maximum(self._worst, point)
            self._best = np.minimum(self._best, point)
        lo, hi = 0, len(self.fronts)
        while lo < hi:  # the first front without a dominator of point
            mid = (lo + hi) // 2
            if self.fronts[mid].has_dominator_of(point):
                lo = mid + 1
            else:
                hi = mid
        moving, rows = np.array([number], dtype=np.int64), point[None, :]
        for level in range(lo, len(self.fronts) + 1):
            if level == len(self.fronts):
                self.fronts.append(_Front(self.m))
            front = self.fronts[level]
            mask = front.dominated_by(rows)
            pushed = front.pop(mask) if mask.any() else None
            moved = moving.tolist()
            carried = pending.intersection(moved)
            pending = set() if pushed is None else front.pending.intersection(pushed[0].tolist())
            front.pending -= pending
            front.add(moving, rows, carried)
            for n in moved:
                self._front_of[n] = front
            if pushed is None:
                return
            moving, rows = pushed
