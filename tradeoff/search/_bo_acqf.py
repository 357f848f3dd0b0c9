"""The BoTorch side of :class:`~tradeoff.search._mobo.MOBOSampler`: one tensor-in/tensor-out
function, :func:`propose`, in the spirit of optuna-integration's ``candidates_func``. The models
and the acquisition function live here, its maximization in :mod:`~tradeoff.search._bo_optim`.

All tensors are double precision on one device, inputs in the unit cube, outcomes in BoTorch's
maximization convention. Shapes: ``n`` observations, ``p`` pending points, ``d`` columns,
``m`` objectives (measured and known), ``c`` measured constraints.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import (
    GenericMCMultiOutputObjective,
    IdentityMCMultiOutputObjective,
    MCMultiOutputObjective,
)
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.acquisition.multi_objective.utils import prune_inferior_points_multi_objective
from botorch.acquisition.objective import GenericMCObjective
from botorch.exceptions.errors import ModelFittingError
from botorch.exceptions.warnings import BotorchWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models.deterministic import GenericDeterministicModel
from botorch.models.gp_regression import SingleTaskGP
from botorch.models.model import Model, ModelList
from botorch.models.model_list_gp_regression import ModelListGP
from botorch.models.transforms.input import NumericToCategoricalEncoding
from botorch.models.transforms.outcome import Standardize
from botorch.sampling.base import MCSampler
from botorch.sampling.index_sampler import IndexSampler
from botorch.sampling.list_sampler import ListSampler
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.multi_objective.pareto import is_non_dominated
from gpytorch.mlls import ExactMarginalLogLikelihood  # type: ignore[import-untyped]
from linear_operator.utils.warnings import NumericalWarning  # type: ignore[import-untyped]
from torch import Tensor

from tradeoff.search._bo_optim import GuardedAcquisition, optimize
from tradeoff.search._bo_warp import LogWarp

logger = logging.getLogger("tradeoff")

TensorFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Effort:
    """How hard one proposal works. At 200 observations the defaults take about 1.3 CPU seconds
    on a dense two-objective front (ZDT1) and about 2.8 s with three objectives (DTLZ2), on 2
    cores (``benchmarks/proposal_speed.py``; the hedge's TPE proposals take milliseconds).

    Attributes:
        fit_maxiter: L-BFGS iterations per GP fit, from the prior's hyperparameters (no
            warm start from the last proposal's fit: fully converged fits lost most of the
            hypervolume on DTLZ2; these early-stopped ones did not).
        fit_subset: Fit the hyperparameters on at most this many observations (the Pareto
            set, then a random share of the rest; ``None``: all); the GPs still condition on
            all of them.
        mc_samples: Quasi-MC samples of the acquisition (at most; see ``mc_budget``).
        mc_budget: With a large baseline, ``mc_budget // baseline points`` samples, but not
            fewer than ``min_mc_samples``: each acquisition value costs about
            samples x baseline points (the joint posterior of the baseline and the candidate,
            and one box per Pareto point of each sample). ``None``: always ``mc_samples``.
        min_mc_samples: The fewest samples ``mc_budget`` leaves.
        prune_samples: MC samples used to prune the baseline to likely Pareto points.
        max_baseline: At most this many baseline points, or ``None``: the likely Pareto
            points, thinned to a spread subset of their posterior means (:func:`spread`)
            when there are more, or to the likeliest ones (``spread_baseline=False``).
        spread_baseline: Thin (and order) the baseline by :func:`spread`; else keep the
            likeliest Pareto points and score them among the starting points (as before
            the baseline was thinned: kept from 3 objectives on).
        raw_samples: Sobol points scored to pick starting points.
        num_restarts: Starting points of the mixed alternating local search.
        maxiter_alternating: Discrete/continuous rounds of that search.
        maxiter_continuous: L-BFGS iterations of each continuous round.
        spray_points: Perturbed copies of each sprayed baseline point scored as starting
            points.
        spray_from: Spray around at most this many baseline points: with qLogNEHVI a spread
            of them over the front (:func:`spread`), else a random subset; ``None``: all.
        fallback_samples: Random points scored when the search ends on an infeasible or an
            already-tried point.
        batch: Candidates scored at once when every candidate is scored.
    """

    fit_maxiter: int = 30
    fit_subset: int | None = 128
    mc_samples: int = 64
    mc_budget: int | None = 64 * 24
    min_mc_samples: int = 32
    prune_samples: int = 256
    max_baseline: int | None = 48
    spread_baseline: bool = True
    raw_samples: int = 256
    num_restarts: int = 4
    maxiter_alternating: int = 3
    maxiter_continuous: int = 8
    spray_points: int = 8
    spray_from: int | None = 16
    fallback_samples: int = 1024
    batch: int = 512

    def samples_for(self, n_baseline: int) -> int:
        """Quasi-MC samples of an acquisition over ``n_baseline`` baseline points."""
        if self.mc_budget is None or n_baseline * self.mc_samples <= self.mc_budget:
            return self.mc_samples
        return max(min(self.min_mc_samples, self.mc_samples), self.mc_budget // n_baseline)

    def for_objectives(self, m: int) -> Effort:
        """From 3 objectives on, a quarter of the samples, raw points and sprays (around every
        baseline point), half the restarts, and at most 48 baseline points: qLogNEHVI's box
        decompositions (one per sample, of the baseline's Pareto set) then have many more
        cells, and every acquisition value costs in proportion (DTLZ2, 200 observations:
        2.5 s -> 1.0 s a proposal; the hypervolume after 100 trials did not drop). A cap of
        24 and sprays around 16 baseline points cost DTLZ2 (3 objectives, 100 evaluations)
        0.02-0.04 of the front's hypervolume for 10% less time, and a spread of 48 baseline
        points 0.30 on one seed of paretobench's DTLZ2: the likeliest ones are kept there.
        """
        if m <= 2:
            return self
        return replace(
            self,
            mc_samples=max(8, self.mc_samples // 4),
            min_mc_samples=max(8, self.min_mc_samples // 4),
            raw_samples=max(16, self.raw_samples // 4),
            spray_points=max(1, self.spray_points // 4),
            spray_from=None,
            spread_baseline=False,
            num_restarts=max(1, self.num_restarts // 2),
            prune_samples=self.prune_samples // 2,
            max_baseline=48 if self.max_baseline is None else min(self.max_baseline, 48),
        )


@dataclass(frozen=True)
class Problem:
    """What one proposal needs besides the data.

    Attributes:
        is_known: Per objective (study order), whether it is a known cost (not modelled).
        ref_point: ``(m,)`` hypervolume reference point, maximization convention; ``None``
            with one objective.
        discrete_dims: Column -> sorted allowed unit values (integer-like columns).
        cat_dims: Column -> unit codes (categorical columns).
        snap: ``(N, d) -> (N, d)``: discrete and categorical columns onto their levels.
        known_values: ``(N, d) -> (N, k)`` exact known costs (maximization), in study
            order of the known objectives; ``None`` without known costs.
        known_feasible: ``(N, d) -> (N,)`` bool, known-cost constraints hold; or ``None``.
        acquisition: ``"qlognehvi"`` or ``"qnparego"`` (several objectives), ``"qlognei"``
            (one measured objective).
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
    ref_point: Tensor | None
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


class FitCache:
    """The models of the last proposal, for the next one if it sees the same observations.

    When several workers free up at once the driver asks for several trials in a row: each
    ask after the first sees the same completed trials and only more pending ones, so it
    takes the GPs (and the objectives' warp) fitted for the first instead of fitting them
    again; only the acquisition, which depends on the pending points, is built anew. Up to
    ``Effort.fit_subset`` observations a fit is a deterministic function of the data, so the
    proposals are exactly those of fitting again; beyond, the hyperparameters come from the
    first ask's random subset of the rows, and the acquisition's random starting points from
    a generator that did not draw the next ask's subset (as good a proposal, not the same).
    """

    def __init__(self) -> None:
        self._last: tuple[bytes, tuple[LogWarp, ModelListGP]] | None = None
        self.hits = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": None}  # a pickled sampler carries no models

    def fitted(
        self, train_x: Tensor, train_obj: Tensor, train_con: Tensor | None, problem: Problem
    ) -> tuple[LogWarp, ModelListGP]:
        """The warp and GPs for these observations: the last ones if the data and the fit's
        settings are the same and this thread fitted them (threads asking at once, as with
        Optuna's ``n_jobs``, never share models), else fitted now and kept in their place."""
        key = threading.get_ident().to_bytes(8, "little") + _fit_key(
            train_x, train_obj, train_con, problem
        )
        last = self._last
        if last is not None and last[0] == key:
            self.hits += 1
            return last[1]
        warp = LogWarp.fit(train_obj)
        fitted = warp, fit_gps(train_x, warp.forward(train_obj), train_con, problem)
        self._last = key, fitted
        return fitted


def _fit_key(
    train_x: Tensor, train_obj: Tensor, train_con: Tensor | None, problem: Problem
) -> bytes:
    """A digest of what a fit depends on: the observations and the fit's settings."""
    digest = hashlib.blake2b(digest_size=20)
    for tensor in (train_x, train_obj, train_con):
        if tensor is None:
            digest.update(b"none")
            continue
        digest.update(str((tuple(tensor.shape), tensor.dtype, tensor.device)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    effort = problem.effort
    digest.update(repr((sorted(problem.cat_dims.items()), effort.fit_subset)).encode())
    digest.update(repr(effort.fit_maxiter).encode())
    return digest.digest()


def propose(
    train_x: Tensor,
    train_obj: Tensor,
    train_con: Tensor | None,
    pending_x: Tensor | None,
    problem: Problem,
    fits: FitCache | None = None,
) -> Tensor:
    """Fit the models and maximize the acquisition function.

    Args:
        train_x: ``(n, d)`` observed points.
        train_obj: ``(n, m_measured)`` measured objectives (maximization), study order.
        train_con: ``(n, c)`` measured constraint values (``<= 0`` feasible), or ``None``.
        pending_x: ``(p, d)`` points being evaluated, or ``None``.
        problem: The rest of the setup.
        fits: Reuses the last proposal's models when the observations are the same
            (several asks in a row); ``None``: fit every time.

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
        if fits is None:
            warp = LogWarp.fit(train_obj)
            gps = fit_gps(train_x, warp.forward(train_obj), train_con, problem)
        else:
            warp, gps = fits.fitted(train_x, train_obj, train_con, problem)
        acqf = build_acquisition(gps, train_x, train_obj.shape[-1], pending_x, problem, warp)
        return optimize(acqf, train_x, problem)


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
    warp: LogWarp | None = None,
) -> GuardedAcquisition:
    """qLogNEI (one objective), qLogNEHVI or qLogNParEGO over the GPs and the exact
    known-cost model, guarded; ``warp`` maps the GPs' objective samples back to values."""
    n_con = gps.num_outputs - n_measured
    unwarp = _unwarp(warp, n_measured)
    dense = False  # a qLogNEHVI baseline thinned to a spread of max_baseline, in that order
    if problem.acquisition == "qlognei":
        inner = _single_objective(gps, train_x, n_con, pending_x, problem, unwarp)
    else:
        inner, dense = _multi_objective(gps, train_x, n_measured, pending_x, problem, unwarp)
    # Only on a dense front: spray around a spread of it, and do not score the baseline
    # itself (a front of 100+ points cost 7 s a proposal there); else as always.
    return GuardedAcquisition(
        inner, problem.snap, problem.known_feasible,
        spray_from=problem.effort.spray_from if dense else None, spread_first=dense,
        score_baseline=not dense,
    )  # fmt: skip


def _single_objective(
    gps: ModelListGP,
    train_x: Tensor,
    n_con: int,
    pending_x: Tensor | None,
    problem: Problem,
    unwarp: TensorFn | None,
) -> AcquisitionFunction:
    """qLogNEI of output 0 (the one measured objective), constrained by the other outputs."""
    shape = torch.Size([problem.effort.mc_samples])
    sampler = SobolQMCNormalSampler(shape, seed=problem.seed)
    objective = GenericMCObjective(_first_output if unwarp is None else _first(unwarp))
    if n_con == 0:  # one GP: its root decomposition can be cached
        gp = gps.models[0]
        assert isinstance(gp, Model)
        return qLogNoisyExpectedImprovement(
            gp, train_x, sampler=sampler, objective=None if unwarp is None else objective,
            X_pending=pending_x, prune_baseline=True,
        )  # fmt: skip
    return qLogNoisyExpectedImprovement(
        gps, train_x, sampler=sampler, objective=objective,
        constraints=_constraint_fns(1, n_con), X_pending=pending_x, prune_baseline=True,
        cache_root=False,
    )  # fmt: skip


def _first_output(samples: Tensor, X: Tensor | None = None) -> Tensor:
    return samples[..., 0]


def _first(unwarp: TensorFn) -> Callable[..., Tensor]:
    return lambda samples, X=None: unwarp(samples)[..., 0]


def _select(unwarp: TensorFn, outcomes: list[int]) -> Callable[..., Tensor]:
    def objective(samples: Tensor, X: Tensor | None = None) -> Tensor:
        return unwarp(samples)[..., outcomes]

    return objective


def _unwarp(warp: LogWarp | None, n_measured: int) -> TensorFn | None:
    """``(..., outputs)`` samples -> the same with the measured objectives (the first
    ``n_measured`` outputs) mapped back from the GPs' log warp; ``None``: nothing warped."""
    if warp is None or not warp.columns:
        return None

    def unwarp(samples: Tensor) -> Tensor:
        head = warp.inverse(samples[..., :n_measured])
        return torch.cat([head, samples[..., n_measured:]], dim=-1)

    return unwarp


def _multi_objective(
    gps: ModelListGP,
    train_x: Tensor,
    n_measured: int,
    pending_x: Tensor | None,
    problem: Problem,
    unwarp: TensorFn | None,
) -> tuple[AcquisitionFunction, bool]:
    """qLogNEHVI (baseline pruned to likely Pareto points; a dense front, more of them than
    ``max_baseline``, thinned to a spread subset in spread order, with fewer samples) or
    qLogNParEGO; and whether the baseline was thinned so."""
    e = problem.effort
    model, sampler_of, outcomes = _joint_model(gps, n_measured, problem)
    objective: MCMultiOutputObjective = IdentityMCMultiOutputObjective(outcomes=outcomes)
    if unwarp is not None:
        objective = GenericMCMultiOutputObjective(_select(unwarp, outcomes))
    constraints = _constraint_fns(n_measured, gps.num_outputs - n_measured)
    if problem.acquisition == "qnparego":
        return qLogNParEGO(
            model, train_x, sampler=sampler_of(e.mc_samples), objective=objective,
            constraints=constraints, X_pending=pending_x, prune_baseline=True, cache_root=False,
        ), False  # fmt: skip
    assert problem.ref_point is not None  # set by MOBOSampler for several objectives
    cap, max_frac = e.max_baseline, 1.0
    if cap is not None and not e.spread_baseline:  # the likeliest Pareto points
        max_frac = min(1.0, cap / len(train_x))
    baseline = prune_inferior_points_multi_objective(
        model, train_x, problem.ref_point, objective=objective, constraints=constraints,
        num_samples=e.prune_samples, max_frac=max_frac,
    )  # fmt: skip
    # A dense front (more likely Pareto points than the cap; empty: no observation inside the
    # reference point) is thinned to a spread subset, in spread order (GuardedAcquisition
    # sprays around its first spray_from points), with fewer samples; other baselines are
    # used whole, as before the cap (thinning them cost constrained CF2 0.14-0.28).
    dense = bool(e.spread_baseline and cap is not None and len(baseline) > cap)
    samples = e.mc_samples
    if dense and cap is not None:
        with torch.no_grad():
            mean = model.posterior(baseline).mean  # type: ignore[attr-defined]
            means = objective(mean.unsqueeze(0), baseline)[0]
        baseline = baseline[spread(means, cap)]
        samples = e.samples_for(len(baseline))
    return qLogNoisyExpectedHypervolumeImprovement(
        model, problem.ref_point, baseline, sampler=sampler_of(samples),
        objective=objective, constraints=constraints, X_pending=pending_x,
        cache_root=problem.known_values is None,  # unsupported with the exact model
    ), dense  # fmt: skip


def spread(values: Tensor, k: int) -> Tensor:
    """Indices of ``k`` rows of ``values`` ``(n, m)`` spread over their range, in the order
    taken: the best row of each column first, then, one at a time, the row farthest
    (Euclidean, each column scaled to its range) from those taken, so the first ``j`` of them
    are a spread of ``j``. A dense front keeps its ends and its shape, with gaps of about
    ``1 / k`` of its extent, not the ``k`` likeliest points bunched wherever ties fall."""
    k = min(k, len(values))
    if k <= 0:
        return torch.zeros(0, dtype=torch.long, device=values.device)
    span = (values.max(dim=0).values - values.min(dim=0).values).clamp_min(1e-12)
    z = values / span
    taken = list(dict.fromkeys(int(i) for i in values.argmax(dim=0)))[:k]
    distance = torch.cdist(z, z[taken]).min(dim=-1).values
    while len(taken) < k:
        i = int(distance.argmax())
        taken.append(i)
        distance = torch.minimum(distance, torch.cdist(z, z[i : i + 1])[:, 0])
    return torch.tensor(taken, dtype=torch.long, device=values.device)


def _joint_model(
    gps: ModelListGP, n_measured: int, problem: Problem
) -> tuple[Model, Callable[[int], MCSampler], list[int]]:
    """Outputs ``[measured..., constraints..., known...]``, a sampler of ``s`` samples for
    them, and where each objective sits."""
    m = len(problem.is_known)
    measured = iter(range(n_measured))
    known = iter(range(gps.num_outputs, gps.num_outputs + m))
    outcomes = [next(known) if k else next(measured) for k in problem.is_known]

    def gp_sampler(s: int) -> MCSampler:
        return SobolQMCNormalSampler(torch.Size([s]), seed=problem.seed)

    if problem.known_values is None:
        return gps, gp_sampler, outcomes
    f = _batched(problem.known_values)
    exact = GenericDeterministicModel(f, num_outputs=sum(problem.is_known))

    def sampler(s: int) -> MCSampler:
        return ListSampler(gp_sampler(s), IndexSampler(torch.Size([s])))

    return ModelList(gps, exact), sampler, outcomes


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
