"""Survival for evolutionary search: constrained non-dominated sorting, then crowding distance
(NSGA-II) or hypervolume contribution (SMS-EMOA) within the front that fits partly."""

from __future__ import annotations

import numpy as np

from tradeoff._pareto import hypervolume


def select_survivors(
    values: np.ndarray, penalty: np.ndarray, size: int, *, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick ``size`` survivors by constrained non-dominated sorting.

    Args:
        values: ``(n, n_objectives)`` objective values, all minimized.
        penalty: ``(n,)`` total constraint violation (``0`` when feasible).
        size: How many survive.
        method: How the front that fits partly is cut: ``"crowding"`` by crowding distance
            (NSGA-II), ``"hv"`` by dropping the least hypervolume contribution one point at a
            time (SMS-EMOA; all at once above two objectives).

    Returns:
        Survivor indices, and for every point its rank and its score within its front
        (crowding distance or hypervolume contribution, ``-penalty`` when infeasible).
    """
    y = _normalize(values)
    ranks = constrained_ranks(y, penalty, limit=size)
    scores = np.zeros(len(y))
    chosen: list[int] = []
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        feasible = penalty[members[0]] <= 0
        front = y[members]
        scores[members] = -penalty[members]
        if feasible:
            scores[members] = (
                hv_contributions(front) if method == "hv" else crowding_distance(front)
            )
        room = size - len(chosen)
        if len(members) > room and feasible and method == "hv" and y.shape[1] == 2:
            members = members[_hv_truncate(front, room)]
        elif len(members) > room:
            members = members[np.argsort(-scores[members], kind="stable")[:room]]
        chosen.extend(int(i) for i in members)
        if len(chosen) >= size:
            break
    return np.array(chosen, dtype=int), ranks, scores


def constrained_ranks(values: np.ndarray, penalty: np.ndarray, *, limit: int) -> np.ndarray:
    """Non-domination rank of each point (minimization), infeasible points (``penalty > 0``)
    after all feasible ones by increasing penalty. Feasible points beyond the first fronts
    holding ``limit`` points share the next rank."""
    feasible = penalty <= 0
    ranks = np.zeros(len(values), dtype=int)
    ranks[feasible] = _pareto_ranks(values[feasible], limit)
    worst = ranks[feasible].max() + 1 if feasible.any() else 0
    ranks[~feasible] = worst + np.unique(penalty[~feasible], return_inverse=True)[1].reshape(-1)
    return ranks


def _pareto_ranks(y: np.ndarray, limit: int) -> np.ndarray:
    dominates = np.all(y[:, None] <= y[None], axis=-1) & np.any(y[:, None] < y[None], axis=-1)
    count = dominates.sum(axis=0)
    ranks = np.zeros(len(y), dtype=int)
    left = np.ones(len(y), dtype=bool)
    rank = 0
    while left.any() and (~left).sum() < limit:
        front = left & (count == 0)
        ranks[front], left = rank, left & ~front
        count = count - dominates[front].sum(axis=0)
        rank += 1
    ranks[left] = rank
    return ranks


def _normalize(values: np.ndarray) -> np.ndarray:
    y = np.nan_to_num(np.asarray(values, dtype=float), posinf=1e300, neginf=-1e300)
    low, high = y.min(axis=0), y.max(axis=0)
    return np.asarray((y - low) / np.where(high > low, high - low, 1.0))


def crowding_distance(y: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point of one front; the extremes get ``inf``."""
    distance = np.zeros(len(y))
    for j in range(y.shape[1]):
        order = np.argsort(y[:, j], kind="stable")
        span = y[order[-1], j] - y[order[0], j]
        if span > 0:
            distance[order[1:-1]] += (y[order[2:], j] - y[order[:-2], j]) / span
            distance[order[[0, -1]]] = np.inf
    return distance


def hv_contributions(y: np.ndarray, *, reference: float | np.ndarray = 1.1) -> np.ndarray:
    """Hypervolume each point of one front (no point dominates another) adds alone: the
    exclusive contribution, at ``reference`` (a point, or one number for every objective)."""
    n, m = y.shape
    if m == 1 or n == 1:
        return np.zeros(n) if m == 1 else np.ones(n)
    if m == 2:
        ref = np.broadcast_to(np.asarray(reference, dtype=float), (2,))
        order = np.lexsort((y[:, 1], y[:, 0]))
        f1, f2 = y[order, 0], y[order, 1]
        right = np.append(f1[1:], ref[0]) - f1
        above = np.insert(f2[:-1], 0, ref[1]) - f2
        out = np.empty(n)
        out[order] = np.maximum(right, 0) * np.maximum(above, 0)
        return out
    # Point i's box minus what the others, clipped into that box, cover (fast: few survive).
    ref = np.broadcast_to(np.asarray(reference, dtype=float), (m,))
    return np.array(
        [
            np.prod(ref - y[i]) - hypervolume(np.maximum(np.delete(y, i, 0), y[i]), ref)
            for i in range(n)
        ]
    )


def _hv_truncate(y: np.ndarray, keep: int) -> np.ndarray:
    idx = np.arange(len(y))
    while len(idx) > keep:
        idx = np.delete(idx, int(np.argmin(hv_contributions(y[idx]))))
    return idx
