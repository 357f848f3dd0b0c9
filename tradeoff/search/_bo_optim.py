"""Maximizing the acquisition function of :class:`~tradeoff.search._mobo.MOBOSampler`.

Exactly over a list of candidates (small discrete spaces), else by BoTorch's mixed alternating
search or L-BFGS-B; the result always lies on the allowed levels, and a point that breaks a
known-cost constraint or was tried already is replaced when a better one exists.

Tensors are double precision on one device, points in the unit cube. Shapes: ``d`` columns,
``N`` points.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.optim.initializers import initialize_q_batch
from botorch.optim.optimize import optimize_acqf
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from botorch.utils.sampling import draw_sobol_samples
from torch import Tensor

from tradeoff.search._bo_encode import MAX_SEARCHED_LEVELS

if TYPE_CHECKING:
    from tradeoff.search._bo_acqf import Effort, Problem

TensorFn = Callable[[Tensor], Tensor]
# Added to the (log) acquisition value of a point that breaks a known-cost constraint: far
# below any log-improvement, yet finite, so optimizers still rank such points.
_INFEASIBLE_PENALTY = 1e6
_SPRAY_STD = 0.1  # of the Gaussian moves of continuous columns around baseline points


class GuardedAcquisition(AcquisitionFunction):
    """An acquisition function evaluated on snapped points, penalized where a known-cost
    constraint fails.

    Snapping keeps the optimizer and the value in agreement for discrete columns it relaxes
    (the gradient passes straight through). Known-cost constraints are exact, so a violating
    point scores ``-1e6`` lower than any feasible one.

    ``X_baseline`` is what the searches spray starting points around (BoTorch's mixed
    optimizer reads it too): at most ``spray_from`` of the acquisition's baseline points,
    its first ones when ``spread_first`` (a baseline in spread order), else a random subset
    (the baseline itself scores no improvement; on a dense front of 100+ points, scoring 8
    sprays around each cost 7 s a proposal).

    Args:
        acqf: The acquisition function, ``(b, q, d) -> (b,)``.
        snap: ``(N, d) -> (N, d)`` onto the allowed levels.
        feasible: ``(N, d) -> (N,)`` bool, or ``None`` when there is no known constraint.
        spray_from: At most this many baseline points to spray around; ``None``: all.
        spread_first: The baseline's first points are a spread of it: spray around those.
        score_baseline: Score the baseline points themselves among the starting points.
    """

    def __init__(
        self,
        acqf: AcquisitionFunction,
        snap: TensorFn,
        feasible: TensorFn | None,
        spray_from: int | None = None,
        spread_first: bool = False,
        score_baseline: bool = True,
    ):
        super().__init__(model=acqf.model)
        self.acqf, self.snap, self.feasible = acqf, snap, feasible
        base = getattr(acqf, "X_baseline", None)
        if base is not None and spray_from is not None and len(base) > spray_from:
            pick = torch.arange(len(base), device=base.device)
            if not spread_first:
                pick = torch.randperm(len(base), device=base.device)
            base = base[pick[:spray_from]]
        self.X_baseline, self.score_baseline = base, score_baseline

    def forward(self, X: Tensor) -> Tensor:
        flat = X.reshape(-1, X.shape[-1])
        snapped = self.snap(flat.detach())
        Xs = (flat + (snapped - flat).detach()).reshape(X.shape)
        value: Tensor = self.acqf(Xs)
        if self.feasible is None:
            return value
        ok = self.feasible(snapped).reshape(X.shape[:-1]).all(dim=-1)
        return torch.where(ok, value, value - _INFEASIBLE_PENALTY)


def optimize(acqf: GuardedAcquisition, train_x: Tensor, problem: Problem) -> Tensor:
    """Maximize ``acqf``: exactly over ``problem.candidates`` when given, else by search;
    a point that breaks a known constraint or was tried already is replaced by the best
    point around it and at random that does neither (kept if there is none).

    Args:
        acqf: The guarded acquisition function.
        train_x: ``(n, d)`` observed points (give ``d``, dtype and device).
        problem: The columns' levels, the candidates and the search effort.

    Returns:
        ``(1, d)`` snapped candidate.
    """
    if problem.candidates is not None and len(problem.candidates):
        return _best_of(acqf, problem.candidates, problem.effort.batch)
    d = train_x.shape[-1]
    bounds = torch.zeros(2, d, dtype=train_x.dtype, device=train_x.device)
    bounds[1] = 1.0
    if problem.discrete_dims or problem.cat_dims:
        x = _optimize_mixed(acqf, bounds, problem)
    else:
        x = _optimize_continuous(acqf, bounds, problem.effort)
    x = problem.snap(x.detach().reshape(1, d))
    if _allowed(x, problem).all():
        return x
    pool = draw_sobol_samples(bounds, n=problem.effort.fallback_samples, q=1)[:, 0]
    pool = problem.snap(torch.cat([_neighbours(x, problem), pool]))
    pool = pool[_allowed(pool, problem)]
    return x if len(pool) == 0 else _best_of(acqf, pool, problem.effort.batch)


def _allowed(x: Tensor, problem: Problem) -> Tensor:
    """``(N, d) -> (N,)`` bool: known constraints hold and the point was not tried yet."""
    ok = torch.ones(len(x), dtype=torch.bool, device=x.device)
    if problem.known_feasible is not None:
        ok &= problem.known_feasible(x).reshape(-1).bool()
    if problem.untried is not None:
        ok &= problem.untried(x).reshape(-1).bool()
    return ok


def _neighbours(x: Tensor, problem: Problem) -> Tensor:
    """``(1, d) -> (N, d)``: ``x`` moved one level in a discrete column or to another
    category in a categorical one."""
    moves = []
    for j, levels in [*problem.discrete_dims.items(), *problem.cat_dims.items()]:
        values = torch.tensor(levels, dtype=x.dtype, device=x.device)
        if j in problem.discrete_dims:
            at = int((values - x[0, j]).abs().argmin())
            values = values[max(at - 1, 0) : at + 2]
        moved = x.repeat(len(values), 1)
        moved[:, j] = values
        moves.append(moved)
    return torch.cat(moves) if moves else x


def _best_of(acqf: GuardedAcquisition, pool: Tensor, batch: int) -> Tensor:
    """``(N, d) -> (1, d)``: the row of ``pool`` with the highest acquisition value."""
    with torch.no_grad():
        values = torch.cat([acqf(chunk.unsqueeze(-2)) for chunk in torch.split(pool, batch)])
    return pool[values.argmax()].unsqueeze(0)


def _optimize_mixed(acqf: GuardedAcquisition, bounds: Tensor, problem: Problem) -> Tensor:
    """BoTorch's alternating search: L-BFGS on continuous columns, neighbour moves on
    discrete levels and categories, from random points and sprays around the baseline."""
    e = problem.effort
    options = {
        "initialization_strategy": "random",
        "maxiter_alternating": e.maxiter_alternating,
        "maxiter_continuous": e.maxiter_continuous,
        "tol": 1e-4,
        "num_spray_points": e.spray_points,
        "max_discrete_values": MAX_SEARCHED_LEVELS,
    }
    x, _ = optimize_acqf_mixed_alternating(
        acqf, bounds, discrete_dims=problem.discrete_dims, cat_dims=problem.cat_dims,
        raw_samples=e.raw_samples, num_restarts=e.num_restarts, options=options,
    )  # fmt: skip
    return x


def _optimize_continuous(acqf: GuardedAcquisition, bounds: Tensor, e: Effort) -> Tensor:
    """L-BFGS-B from the best of random points and sprays around (a subset of) the baseline
    (optima often sit next to observed Pareto points, e.g. on a face of the cube that random
    points miss); the baseline points themselves too, except on a dense front.
    """
    raw = draw_sobol_samples(bounds, n=e.raw_samples, q=1)[:, 0]
    starts = [raw]
    if acqf.X_baseline is not None and len(acqf.X_baseline):
        base = acqf.X_baseline.repeat_interleave(e.spray_points, dim=0)
        noise = _SPRAY_STD * torch.randn_like(base)
        starts.append((base + noise).clamp(0.0, 1.0))
        if acqf.score_baseline:  # the baseline itself too (not on a dense front)
            starts.insert(1, acqf.X_baseline)
    candidates = torch.cat(starts).unsqueeze(-2)
    with torch.no_grad():
        values = acqf(candidates)
    initial, _ = initialize_q_batch(candidates, values, n=e.num_restarts)
    x, _ = optimize_acqf(
        acqf, bounds, q=1, num_restarts=e.num_restarts, batch_initial_conditions=initial,
        options={"maxiter": 100}, retry_on_optimization_warning=False,
    )  # fmt: skip
    return x
