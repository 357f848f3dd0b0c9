"""MOBOSampler: Bayesian optimization (BoTorch) of one or several objectives as an Optuna sampler.

Each proposal is rebuilt from the study's trials (only caches are kept between calls):

1. Completed trials -> unit-cube points (:mod:`~tradeoff.search._bo_encode`), objectives in
   BoTorch's maximization convention, and the measured constraint values of
   ``trial.constraints``. Failed and pruned trials are ignored; running trials are *pending*.
2. One GP per measured objective and per measured constraint. Known-cost objectives
   (``Objective(fn=...)``) are not modelled: a deterministic model decodes candidates to
   Configs and calls their ``fn`` (once per distinct Config, cached); known-cost
   constraints are checked exactly and a violating candidate is never returned (unless
   nothing feasible is found).
3. qLogNEHVI (qLogNParEGO beyond four objectives, qLogNEI for a single objective), with
   pending points as ``X_pending``, is maximized without rounding a continuous optimum. In a
   discrete space of at most ``max_enumerated`` Configs (after the known-cost constraints)
   every Config not tried yet is scored: the maximum is exact. Otherwise BoTorch's mixed
   alternating optimizer (L-BFGS on continuous columns, neighbour moves on integer and
   ordinal levels, every alternative of a categorical one), or L-BFGS-B alone when all
   columns are continuous; both start from random points and sprays around the observed
   Pareto set (:mod:`~tradeoff.search._bo_optim`). In a discrete space a Config already tried
   is not proposed again while the search scores another.

Until ``n_startup_trials`` trials are complete, proposals are space-filling instead: the point
of a scrambled Sobol sequence (seeded by the sampler's seed) at the trial's number, so the
startup covers every column's levels evenly whichever worker asks first.

Ordinal levels are ordered: with ``space``, an Ordinal the study stores as a categorical of its
levels (sparsities ``0.0, 0.25, 0.5``, bit-widths ``2, 3, 4, 8``) is a discrete column, level
``i`` of ``k`` at ``i / (k - 1)``, like evenly stepped integer levels; other categoricals are
one-hot.

With several objectives, the hypervolume reference point is recorded on the study as the user
attribute ``"tradeoff.mobo_reference"`` (objective values in the study's directions).

With ``hedge=True`` (the default) every third proposal after the startup comes from
multivariate TPE over the same trials instead of the model (:mod:`~tradeoff.search._bo_hedge`
says why: a GP can lock onto a local front of a deceptive problem); which one proposed a trial
is its system attribute ``"tradeoff.mobo_arm"``. A TPE proposal that violates a known-cost
constraint, or repeats a tried Config of a discrete space, is replaced by the model's.

With ``winsorize=True`` each measured objective's bad tail is clipped at Tukey's lower fence
before the GPs' fit and the reference point (:func:`~tradeoff.search._bo_data.winsorize`, Ax's
``Winsorize`` transform). Off by default: it helped COCO's Rosenbrock pair and cost its
Rastrigin pair (``benchmarks/results/suites_winsor.json``, the README's "Winsorization").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial
from scipy.stats import qmc  # type: ignore[import-untyped]

from tradeoff.objectives import ObjectiveSet
from tradeoff.search import _bo_hedge
from tradeoff.search._bo_data import (
    KnownCosts,
    Observations,
    gather,
    reference_point,
    scale_constraints,
    signs,
    subsample,
    untried_fn,
    untried_mask,
    winsorize,
)
from tradeoff.search._bo_encode import Encoding, FloatArray
from tradeoff.search._levels import ordered_choices
from tradeoff.spaces import SearchSpace

if TYPE_CHECKING:
    import torch

REFERENCE_ATTR = "tradeoff.mobo_reference"
Acquisition = Literal["auto", "qlognehvi", "qnparego"]
ACQUISITIONS: tuple[Acquisition, ...] = ("auto", "qlognehvi", "qnparego")
_NEHVI_MAX_OBJECTIVES = 4
_MAX_DEFAULT_STARTUP = 20
_STARTUP_TRIES = 256
_GRID_FILTER_FACTOR = 4  # enumerate grids this much larger when known constraints may thin them


class MOBOSampler(BaseSampler):
    """Bayesian optimization with exact known costs, measured constraints and pending trials.

    Works in any Optuna study, with one objective or several (``study.ask()`` or
    ``study.optimize``), and as ``tradeoff.optimize(..., optimizer=MOBOSampler(...))``.
    Constraints are read from ``trial.constraints`` (Optuna's ``trial.set_constraint``).

    Args:
        seed: Makes proposals reproducible when trials are asked and told one at a time.
        space: The search space; gives known-cost ``fn`` their Config. Without it the relative
            search space is the intersection of completed trials' parameters and ``fn``
            receives ``trial.params``.
        objectives: Which objectives are known costs (exact, not modelled), their ``fn``,
            known-cost constraints and user reference points; their order must be the study's.
            Without it every objective and constraint is modelled.
        n_startup_trials: Space-filling proposals (a scrambled Sobol sequence) before the
            first model, counted in completed trials. Defaults to ``min(max(5, 2 * d), 20)``
            for ``d`` parameters.
        acquisition: ``"qlognehvi"``, ``"qnparego"``, or ``"auto"`` (qLogNEHVI up to four
            objectives, qLogNParEGO beyond). A single objective always uses qLogNEI.
        device: Torch device of the models; defaults to CUDA when available, else the CPU.
        max_observations: Fit on at most this many completed trials (the feasible Pareto set,
            then the most recent); ``None`` uses them all.
        max_enumerated: When every parameter is discrete (Int, Ordinal, Choice, stepped
            Float) and at most this many Configs satisfy the known-cost constraints, the
            acquisition is maximized exactly by scoring each one not tried yet; ``0`` always
            searches. In every discrete space a Config already tried (or running) is
            proposed again only if the search scores no other.
        hedge: Every third proposal after the startup from multivariate TPE (see the module
            docstring); ``False``: every proposal from the model.
        winsorize: Clip each measured objective's values worse than the lower quartile minus
            1.5 interquartile ranges (the quartile or the user's reference, whichever is
            worse) to that fence before the fit and the reference point: for objectives
            whose failures are far worse than the rest (a diverged run's loss). See the
            module docstring for what it cost on a multimodal problem.

    Only caches live in memory between proposals: the known costs of Configs, and the models
    of the last proposal, taken again by the next when no trial completed in between (several
    workers freeing up at once ask in a row; see ``_bo_acqf.FitCache``).

    Raises:
        TypeError, ValueError: an argument is invalid (the message says which).
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        space: SearchSpace | None = None,
        objectives: ObjectiveSet | None = None,
        n_startup_trials: int | None = None,
        acquisition: Acquisition = "auto",
        device: str | torch.device | None = None,
        max_observations: int | None = None,
        max_enumerated: int = 4096,
        hedge: bool = True,
        winsorize: bool = False,
    ) -> None:
        _check_args(seed, space, objectives, n_startup_trials, acquisition, max_observations)
        _check_count("max_enumerated", max_enumerated, 0, optional=False)
        if not isinstance(hedge, bool):
            raise TypeError(f"hedge must be True or False, got {hedge!r}.")
        if not isinstance(winsorize, bool):
            raise TypeError(f"winsorize must be True or False, got {winsorize!r}.")
        self._hedge, self._winsorize = hedge, winsorize
        self._base_seed = _fresh_seed() if seed is None else seed
        self._space, self._objectives = space, objectives
        self._n_startup, self._acquisition = n_startup_trials, acquisition
        self._device, self._max_observations = device, max_observations
        self._random = RandomSampler(seed=seed)
        self._max_enumerated = max_enumerated
        self._intersection = IntersectionSearchSpace()
        self._known: tuple[Any, KnownCosts | None] | None = None
        self._fits: Any = None  # a _bo_acqf.FitCache once torch is imported

    # BaseSampler ---------------------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        _check_study(study, self._objectives)
        if self._space is not None:
            source = self._space.distributions()
        else:
            source = self._intersection.calculate(study)
        return {name: dist for name, dist in source.items() if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        enc = Encoding(search_space, ordered=ordered_choices(self._space, search_space))
        data = gather(study, enc, trial.number, self._objectives)
        seed = int(np.random.SeedSequence([self._base_seed, trial.number]).generate_state(1)[0])
        is_known = self._is_known(len(study.directions))
        known = self._known_costs(enc, search_space)
        if len(data.x) < max(2, self.n_startup_trials(enc.dim)) or all(is_known):
            startup = _startup_point(
                enc, known, seed, data.tried, sobol=self._base_seed, index=trial.number
            )
            return enc.decode(startup)
        if self._hedge:
            params = None
            if _bo_hedge.arm(trial) == "tpe":
                params = _bo_hedge.tpe_proposal(study, trial, search_space, enc, known, data, seed)
            _bo_hedge.record(study, trial, "tpe" if params is not None else "model")
            if params is not None:
                return params
        if self._winsorize:
            measured = [not k for k in is_known]
            data = winsorize(data, self._user_reference(study), measured)
        ref = None
        if len(is_known) > 1:
            ref = reference_point(data, self._user_reference(study))
            _record_reference(study, ref)
        x = self._propose(enc, subsample(data, self._max_observations), ref, is_known, known, seed)
        return enc.decode(x)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._base_seed = _fresh_seed()
        self._random.reseed_rng()

    # Helpers -------------------------------------------------------------------------------
    def n_startup_trials(self, dim: int) -> int:
        """Completed trials needed before the first model, for ``dim`` parameters."""
        if self._n_startup is not None:
            return self._n_startup
        return min(max(5, 2 * dim), _MAX_DEFAULT_STARTUP)

    def acquisition_for(self, n_objectives: int) -> str:
        """The acquisition function used for ``n_objectives`` objectives."""
        if n_objectives == 1:
            return "qlognei"
        if self._acquisition != "auto":
            return self._acquisition
        return "qlognehvi" if n_objectives <= _NEHVI_MAX_OBJECTIVES else "qnparego"

    def _known_costs(
        self, enc: Encoding, search_space: dict[str, BaseDistribution]
    ) -> KnownCosts | None:
        """Known costs of this search space's Configs (cached: costs depend on Configs only)."""
        key = tuple(search_space.items())
        if self._known is None or self._known[0] != key:
            costs = None
            if self._objectives is not None and self._objectives.known:
                costs = KnownCosts(enc, self._space, self._objectives)
            self._known = (key, costs)
        return self._known[1]

    def _candidates(
        self, enc: Encoding, known: KnownCosts | None, tried: FloatArray
    ) -> FloatArray | None:
        """Every known-feasible, untried point of a small discrete space, else ``None``."""
        filters = known is not None and known.has_constraints
        grid = enc.grid(self._max_enumerated * (_GRID_FILTER_FACTOR if filters else 1))
        if grid is None:
            return None
        if known is not None and filters:
            grid = grid[known.evaluate(grid)[1]]
        if len(grid) > self._max_enumerated:
            return None
        return grid[untried_mask(enc, tried, grid)]

    def _is_known(self, n_objectives: int) -> tuple[bool, ...]:
        if self._objectives is None:
            return (False,) * n_objectives
        return tuple(o.known for o in self._objectives.objectives)

    def _user_reference(self, study: Study) -> list[float | None]:
        """User reference coordinates in the maximization convention (``None``: derive)."""
        sign = signs(study)
        if self._objectives is None:
            return [None] * len(sign)
        refs = [o.reference for o in self._objectives.objectives]
        return [None if r is None else s * r for r, s in zip(refs, sign)]

    def _propose(
        self,
        enc: Encoding,
        data: Observations,
        ref: FloatArray | None,
        is_known: tuple[bool, ...],
        known: KnownCosts | None,
        seed: int,
    ) -> FloatArray:
        import torch

        from tradeoff.search import _bo_acqf

        device = _resolve_device(self._device)

        def t(a: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=float), dtype=torch.double, device=device)

        candidates = self._candidates(enc, known, data.tried)
        problem = _bo_acqf.Problem(
            is_known=is_known,
            ref_point=None if ref is None else t(ref),
            discrete_dims=enc.discrete_dims,
            cat_dims=enc.cat_dims,
            snap=lambda x: t(enc.snap(x.detach().cpu().numpy())),
            known_values=None if known is None else known.values_fn(t, _known_ref(ref, is_known)),
            known_feasible=None if known is None else known.feasible_fn(t),
            acquisition=self.acquisition_for(len(is_known)),
            seed=seed,
            candidates=None if candidates is None else t(candidates),
            untried=untried_fn(enc, data.tried, t) if enc.discrete else None,
        )
        measured = [j for j, k in enumerate(is_known) if not k]
        con = None if data.con is None else t(scale_constraints(data.con))
        pending = t(data.pending) if len(data.pending) else None
        if self._fits is None:
            self._fits = _bo_acqf.FitCache()
        with _one_torch_thread():
            x = _bo_acqf.propose(
                t(data.x), t(data.y[:, measured]), con, pending, problem, self._fits
            )
        return np.asarray(x.cpu().numpy()[0], dtype=float)


def _startup_point(
    enc: Encoding, known: KnownCosts | None, seed: int, tried: FloatArray, *, sobol: int, index: int
) -> FloatArray:
    """A ``(d,)`` startup point: point ``index`` of a scrambled Sobol sequence seeded with
    ``sobol``, if it satisfies the known-cost constraints and (in a discrete space) was not
    tried yet; else the first random point that does, else the first feasible one.

    Indexed by trial number, the startup points of a study are a prefix of one low-discrepancy
    sequence, whichever trials are asked first and whichever driver or worker asks for them:
    they cover the space more evenly than independent random draws (BoTorch's and Ax's initial
    design), so fewer seeds start the model inside a single basin (issue #17: wfg9)."""
    first = np.empty((0, enc.dim))
    if enc.dim <= qmc.Sobol.MAXDIM:
        sequence = qmc.Sobol(enc.dim, scramble=True, seed=sobol)
        if index:  # scipy's fast_forward(0) overflows
            sequence.fast_forward(index)
        first = enc.stretch(sequence.random(1))
    pool = np.concatenate([first, enc.sample(np.random.default_rng(seed), _STARTUP_TRIES)])
    feasible = np.ones(len(pool), dtype=bool) if known is None else known.evaluate(pool)[1]
    fresh = untried_mask(enc, tried, pool) if enc.discrete else feasible
    best = np.flatnonzero(feasible & fresh)
    return np.asarray(pool[best[0] if len(best) else int(np.argmax(feasible))], dtype=float)


def _known_ref(ref: FloatArray | None, is_known: tuple[bool, ...]) -> FloatArray:
    """The reference coordinates of the known-cost objectives (none with one objective: a
    single known objective is never modelled)."""
    return np.zeros(0) if ref is None else np.asarray(ref[list(is_known)], dtype=float)


def _record_reference(study: Study, ref: FloatArray) -> None:
    value = [float(r) for r in ref * signs(study)]
    if study.user_attrs.get(REFERENCE_ATTR) != value:
        study.set_user_attr(REFERENCE_ATTR, value)


def _resolve_device(device: Any) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Small GP linear algebra is fastest (and not starved by other work) on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


def _check_study(study: Study, objectives: ObjectiveSet | None) -> None:
    directions = [
        "maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in study.directions
    ]
    if objectives is not None and objectives.directions != directions:
        raise ValueError(
            f"MOBOSampler(objectives=...) has directions {objectives.directions}, the study "
            f"{directions}; give the objectives in the study's order."
        )


def _check_count(name: str, value: Any, low: int, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(
            f"{name} must be an integer >= {low}{' or None' if optional else ''}, got {value!r}."
        )


def _check_args(
    seed: Any,
    space: Any,
    objectives: Any,
    n_startup_trials: Any,
    acquisition: Any,
    max_observations: Any,
) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}.")
    if space is not None and not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace or None, got {type(space).__name__}.")
    if objectives is not None and not isinstance(objectives, ObjectiveSet):
        raise TypeError(
            "objectives must be an ObjectiveSet (ObjectiveSet.build([...])) or None, "
            f"got {type(objectives).__name__}."
        )
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"Unknown acquisition {acquisition!r}; use one of {list(ACQUISITIONS)}.")
    _check_count("n_startup_trials", n_startup_trials, 0)
    _check_count("max_observations", max_observations, 2)
