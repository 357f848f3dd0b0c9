"""The BoTorch side of :class:`~tradeoff.search._mobo.MOBOSampler`: one tensor-in/tensor-out
function, :func:`propose`, in the spirit of optuna-integration's ``candidates_func``.

All tensors are double precision on one device, inputs in the unit cube, outcomes in BoTorch's
maximization convention. Shapes: ``n`` observations, ``p`` pending points, ``d`` columns,
``m`` objectives (measured and known), ``c`` measured constraints.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.acquisition.multi_objective.utils import prune_inferior_points_multi_objective
from botorch.exceptions.errors import ModelFittingError
from botorch.exceptions.warnings import BotorchWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models.deterministic import GenericDeterministicModel
from botorch.models.gp_regression import SingleTaskGP
from botorch.models.model import Model, ModelList
from botorch.models.model_list_gp_regression import ModelListGP
from botorch.models.transforms.input import NumericToCategoricalEncoding
from botorch.models.transforms.outcome import Standardize
from botorch.optim.initializers import initialize_q_batch
from botorch.optim.optimize import optimize_acqf
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from botorch.sampling.base import MCSampler
from botorch.sampling.index_sampler import IndexSampler
from botorch.sampling.list_sampler import ListSampler
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.utils.sampling import draw_sobol_samples
from gpytorch.mlls import ExactMarginalLogLikelihood  # type: ignore[import-untyped]
from linear_operator.utils.warnings import NumericalWarning  # type: ignore[import-untyped]
from torch import Tensor

from tradeoff.search._bo_encode import MAX_SEARCHED_LEVELS

logger = logging.getLogger("tradeoff")

TensorFn = Callable[[Tensor], Tensor]
# Added to the (log) acquisition value of a point that breaks a known-cost constraint: far
# below any log-hypervolume improvement, yet finite, so optimizers still rank such points.
_INFEASIBLE_PENALTY = 1e6
_SPRAY_STD = 0.1  # of the Gaussian moves of continuous columns around baseline points


@dataclass(frozen=True)
class Effort:
    """How hard one proposal works; the defaults keep it under a second at 200 observations.

    Attributes:
        fit_maxiter: L-BFGS iterations per GP fit, from the prior's hyperparameters (no
            warm start from the last proposal's fit: fully converged fits lost most of the
            hypervolume on DTLZ2; these early-stopped ones did not).
        fit_subset: Fit the hyperparameters on at most this many observations (the Pareto
            set, then a random share of the rest; ``None``: all); the GPs still condition on
            all of them.
        mc_samples: Quasi-MC samples of the acquisition.
        prune_samples: MC samples used to prune the baseline to likely Pareto points.
        max_baseline: At most this many baseline points (the likeliest Pareto points), or
            ``None``.
        raw_samples: Sobol points scored to pick starting points.
        num_restarts: Starting points of the mixed alternating local search.
        maxiter_alternating: Discrete/continuous rounds of that search.
        maxiter_continuous: L-BFGS iterations of each continuous round.
        spray_points: Perturbed copies of each baseline point scored as starting points.
        fallback_samples: Random points scored when the search ends on an infeasible or an
            already-tried point.
        batch: Candidates scored at once when every candidate is scored.
    """

    fit_maxiter: int = 30
    fit_subset: int | None = 128
    mc_samples: int = 64
    prune_samples: int = 256
    max_baseline: int | None = None
    raw_samples: int = 256
    num_restarts: int = 4
    maxiter_alternating: int = 3
    maxiter_continuous: int = 8
    spray_points: int = 8
    fallback_samples: int = 1024
    batch: int = 512

    def for_objectives(self, m: int) -> Effort:
        """From 3 objectives on, a quarter of the samples, raw points and sprays, half the
        restarts and pruning samples, and at most 48 baseline points: qLogNEHVI's box
        decompositions (one per sample, of the baseline's Pareto set) then have many more
        cells, and every acquisition value costs in proportion (DTLZ2, 200 observations:
        2.5 s -> 1.0 s a proposal; the hypervolume after 100 trials did not drop).
        """
        if m <= 2:
            return self
        return replace(
            self,
            mc_samples=max(8, self.mc_samples // 4),
            raw_samples=max(16, self.raw_samples // 4),
            spray_points=max(1, self.spray_points // 4),
            num_restarts=max(1, self.num_restarts // 2),
            prune_samples=self.prune_samples // 2,
            max_baseline=48 if self.max_baseline is None else min(self.max_baseline, 48),
        )


@dataclass(frozen=True)
class Problem:
    """What one proposal needs besides the data.

    Attributes:
        is_known: Per objective (study order), whether it is a known cost (not modelled).
        ref_point: ``(m,)`` hypervolume reference point, maximization convention.
        discrete_dims: Column -> sorted allowed unit values (integer-like columns).
        cat_dims: Column -> unit codes (categorical columns).
        snap: ``(N, d) -> (N, d)``: discrete and categorical columns onto their levels.
        known_values: ``(N, d) -> (N, k)`` exact known costs (maximization), in study
            order of the known objectives; ``None`` without known costs.
        known_feasible: ``(N, d) -> (N,)`` bool, known-cost constraints hold; or ``None``.
        acquisition: ``"qlognehvi"`` or ``"qnparego"``.
        seed: Seeds the quasi-MC base samples and random starting points.
        candidates: ``(N, d)`` every point worth proposing (known-feasible, not tried yet)
            when the space is discrete and small: the acquisition is then maximized exactly
            by scoring them all. ``None``: search the space.
        untried: ``(N, d) -> (N,)`` bool, not tried yet (a discrete space: proposing a
            point again would waste a trial); or ``None``. The search falls back to the best
            untried point it scores.
        effort: Speed/quality knobs.
    """

    is_known: tuple[bool, ...]
    ref_point: Tensor
    discrete_dims: dict[int, list[float]]
    cat_dims: dict[int, list[float]]
    snap: TensorFn
    known_values: TensorFn | None = None
    known_feasible: TensorFn | None = None
    acquisition: str = "qlognehvi"
    seed: int = 0
    candidates: Tensor | None = None
    untried: TensorFn | None = None
    effort: Effort = Effort()


def propose(
    train_x: Tensor,
    train_obj: Tensor,
    train_con: Tensor | None,
    pending_x: Tensor | None,
    problem: Problem,
) -> Tensor:
    """Fit the models and maximize the acquisition function.

    Args:
        train_x: ``(n, d)`` observed points.
        train_obj: ``(n, m_measured)`` measured objectives (maximization), study order.
        train_con: ``(n, c)`` measured constraint values (``<= 0`` feasible), or ``None``.
        pending_x: ``(p, d)`` points being evaluated, or ``None``.
        problem: The rest of the setup.

    Returns:
        A ``(1, d)`` candidate in the unit cube, on the levels of discrete columns.
    """
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # Jitter, early-stopped L-BFGS and input-scaling notes are expected on small data.
        warnings.simplefilter("ignore", category=BotorchWarning)
        warnings.simplefilter("ignore", category=NumericalWarning)
        warnings.filterwarnings("ignore", "Optimization failed", RuntimeWarning)
        torch.manual_seed(problem.seed)
        problem = replace(problem, effort=problem.effort.for_objectives(len(problem.is_known)))
        gps = fit_gps(train_x, train_obj, train_con, problem)
        acqf = build_acquisition(gps, train_x, train_obj.shape[-1], pending_x, problem)
        return optimize(acqf, train_x.shape[-1], problem)


def fit_gps(
    train_x: Tensor, train_obj: Tensor, train_con: Tensor | None, problem: Problem
) -> ModelListGP:
    """One GP per measured objective, then one per measured constraint (standardized)."""
    y = train_obj if train_con is None else torch.cat([train_obj, train_con], dim=-1)
    rows = _fit_rows(train_obj, problem.effort.fit_subset)
    return ModelListGP(
        *(_fit_one(train_x, y[:, i : i + 1], problem, rows) for i in range(y.shape[-1]))
    )


def _fit_one(x: Tensor, y: Tensor, problem: Problem, rows: Tensor | None) -> SingleTaskGP:
    """A GP on all of ``x, y``, its hyperparameters fitted on ``rows`` (``None``: all)."""
    encode = _one_hot(x.shape[-1], problem.cat_dims)
    gp = SingleTaskGP(x, y, outcome_transform=Standardize(m=1), input_transform=encode)
    if rows is not None:
        fitted = dict(_fit_one(x[rows], y[rows], problem, None).named_parameters())
        with torch.no_grad():
            for name, param in gp.named_parameters():
                param.copy_(fitted[name])
        return gp.eval()
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
    options = {"maxiter": problem.effort.fit_maxiter}
    try:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": options})
    except ModelFittingError:  # rare; the prior's hyperparameters still give a usable GP
        logger.warning("GP hyperparameter fitting failed; proposing with the prior's values")
        gp.eval()
    return gp


def _fit_rows(train_obj: Tensor, cap: int | None) -> Tensor | None:
    """Rows to fit hyperparameters on: all (``None``) up to ``cap``, else the Pareto set (at
    most half of ``cap``) and random others (the fit costs ``O(rows^3)`` per iteration)."""
    if cap is None or len(train_obj) <= cap:
        return None
    pareto = is_non_dominated(train_obj)
    front = torch.nonzero(pareto).reshape(-1)[: cap // 2]
    rest = torch.nonzero(~pareto).reshape(-1)
    rest = rest[torch.randperm(len(rest), device=rest.device)[: cap - len(front)]]
    return torch.cat([front, rest]).sort().values


def _one_hot(d: int, cat_dims: dict[int, list[float]]) -> NumericToCategoricalEncoding | None:
    """Categorical columns -> one-hot blocks inside the GP (an RBF over one-hot columns is
    about three times cheaper to evaluate than ``MixedSingleTaskGP``'s categorical kernel)."""
    if not cat_dims:
        return None
    cards = {j: len(codes) for j, codes in cat_dims.items()}
    encoders: dict[int, TensorFn] = {j: _OneHot(k) for j, k in cards.items()}
    return NumericToCategoricalEncoding(dim=d, categorical_features=cards, encoders=encoders)


class _OneHot:
    """Unit codes ``i / (k - 1)`` of one column -> ``(..., k)`` one-hot rows."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, codes: Tensor) -> Tensor:
        index = torch.round(codes * (self.k - 1)).long().clamp(0, self.k - 1)
        return torch.nn.functional.one_hot(index, self.k).to(codes)


def build_acquisition(
    gps: ModelListGP,
    train_x: Tensor,
    n_measured: int,
    pending_x: Tensor | None,
    problem: Problem,
) -> GuardedAcquisition:
    """qLogNEHVI or qLogNParEGO over GPs + the exact known-cost model, guarded."""
    model, sampler, outcomes = _joint_model(gps, n_measured, problem)
    objective = IdentityMCMultiOutputObjective(outcomes=outcomes)
    constraints = _constraint_fns(n_measured, gps.num_outputs - n_measured)
    if problem.acquisition == "qnparego":
        inner: AcquisitionFunction = qLogNParEGO(
            model, train_x, sampler=sampler, objective=objective, constraints=constraints,
            X_pending=pending_x, prune_baseline=True, cache_root=False,
        )  # fmt: skip
    else:
        cap = problem.effort.max_baseline
        max_frac = 1.0 if cap is None else min(1.0, cap / len(train_x))
        baseline = prune_inferior_points_multi_objective(
            model, train_x, problem.ref_point, objective=objective, constraints=constraints,
            num_samples=problem.effort.prune_samples, max_frac=max_frac,
        )  # fmt: skip
        inner = qLogNoisyExpectedHypervolumeImprovement(
            model, problem.ref_point, baseline, sampler=sampler, objective=objective,
            constraints=constraints, X_pending=pending_x,
            cache_root=problem.known_values is None,  # unsupported with the exact model
        )  # fmt: skip
    return GuardedAcquisition(inner, problem.snap, problem.known_feasible)


def _joint_model(
    gps: ModelListGP, n_measured: int, problem: Problem
) -> tuple[Model, MCSampler, list[int]]:
    """Outputs ``[measured..., constraints..., known...]`` and where each objective sits."""
    m = len(problem.is_known)
    shape = torch.Size([problem.effort.mc_samples])
    gp_sampler = SobolQMCNormalSampler(shape, seed=problem.seed)
    measured = iter(range(n_measured))
    known = iter(range(gps.num_outputs, gps.num_outputs + m))
    outcomes = [next(known) if k else next(measured) for k in problem.is_known]
    if problem.known_values is None:
        return gps, gp_sampler, outcomes
    f = _batched(problem.known_values)
    exact = GenericDeterministicModel(f, num_outputs=sum(problem.is_known))
    return ModelList(gps, exact), ListSampler(gp_sampler, IndexSampler(shape)), outcomes


def _batched(fn: TensorFn) -> TensorFn:
    """Lift ``(N, d) -> (N, k)`` to ``(..., n, d) -> (..., n, k)``."""

    def f(x: Tensor) -> Tensor:
        flat = x.detach().reshape(-1, x.shape[-1])
        out = fn(flat)
        return out.reshape(*x.shape[:-1], out.shape[-1])

    return f


def _constraint_fns(start: int, count: int) -> list[TensorFn] | None:
    if count == 0:
        return None
    return [lambda z, i=start + j: z[..., i] for j in range(count)]  # type: ignore[misc]


class GuardedAcquisition(AcquisitionFunction):
    """An acquisition function evaluated on snapped points, penalized where a known-cost
    constraint fails.

    Snapping keeps the optimizer and the value in agreement for discrete columns it relaxes
    (the gradient passes straight through). Known-cost constraints are exact, so a violating
    point scores ``-1e6`` lower than any feasible one.

    Args:
        acqf: The acquisition function, ``(b, q, d) -> (b,)``.
        snap: ``(N, d) -> (N, d)`` onto the allowed levels.
        feasible: ``(N, d) -> (N,)`` bool, or ``None`` when there is no known constraint.
    """

    def __init__(self, acqf: AcquisitionFunction, snap: TensorFn, feasible: TensorFn | None):
        super().__init__(model=acqf.model)
        self.acqf, self.snap, self.feasible = acqf, snap, feasible
        self.X_baseline = getattr(acqf, "X_baseline", None)

    def forward(self, X: Tensor) -> Tensor:
        flat = X.reshape(-1, X.shape[-1])
        snapped = self.snap(flat.detach())
        Xs = (flat + (snapped - flat).detach()).reshape(X.shape)
        value: Tensor = self.acqf(Xs)
        if self.feasible is None:
            return value
        ok = self.feasible(snapped).reshape(X.shape[:-1]).all(dim=-1)
        return torch.where(ok, value, value - _INFEASIBLE_PENALTY)


def optimize(acqf: GuardedAcquisition, d: int, problem: Problem) -> Tensor:
    """Maximize ``acqf``: exactly over ``problem.candidates`` when given, else by search;
    a point that breaks a known constraint or was tried already is replaced by the best
    point around it and at random that does neither (kept if there is none).

    Returns:
        ``(1, d)`` snapped candidate.
    """
    if problem.candidates is not None and len(problem.candidates):
        return _best_of(acqf, problem.candidates, problem.effort.batch)
    bounds = torch.zeros(2, d, dtype=torch.double, device=problem.ref_point.device)
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
    """L-BFGS-B from the best of random points and sprays around the baseline (optima often
    sit next to observed Pareto points, e.g. on a face of the cube that random points miss).
    """
    raw = draw_sobol_samples(bounds, n=e.raw_samples, q=1)[:, 0]
    starts = [raw]
    if acqf.X_baseline is not None and len(acqf.X_baseline):
        base = acqf.X_baseline.repeat_interleave(e.spray_points, dim=0)
        noise = _SPRAY_STD * torch.randn_like(base)
        starts += [acqf.X_baseline, (base + noise).clamp(0.0, 1.0)]
    candidates = torch.cat(starts).unsqueeze(-2)
    with torch.no_grad():
        values = acqf(candidates)
    initial, _ = initialize_q_batch(candidates, values, n=e.num_restarts)
    x, _ = optimize_acqf(
        acqf, bounds, q=1, num_restarts=e.num_restarts, batch_initial_conditions=initial,
        options={"maxiter": 100}, retry_on_optimization_warning=False,
    )  # fmt: skip
    return x
