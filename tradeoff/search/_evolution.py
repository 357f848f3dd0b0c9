"""EvolutionSampler: a multi-objective evolutionary sampler that knows the space and the budget."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tradeoff._study import ATTR_FIDELITY, ATTR_RESULT
from tradeoff.objectives import ObjectiveSet
from tradeoff.search._levels import LevelView
from tradeoff.search._operators import (
    Crossover,
    Dists,
    KnownCostGuard,
    LayerCrossover,
    Layers,
    Mutation,
    NeighbourMutation,
    Params,
    Rng,
    group_layers,
    uniform,
)
from tradeoff.search._survival import select_survivors
from tradeoff.spaces import SearchSpace

SURVIVALS = ("crowding", "hv")
_RANDOM_DRAWS = 4  # uniform draws tried before a random candidate is repaired
_SHRINK_PROB = 0.5  # share of random candidates walked toward the cheapest Config


class EvolutionSampler(optuna.samplers.BaseSampler):
    """Multi-objective evolutionary sampler that knows the space and the known-cost budget.

    Steady-state and elitist: each proposal rebuilds the population from the study's completed
    trials (the ``population_size`` best by constrained non-dominated sorting, then crowding
    distance or hypervolume contribution), picks two parents by binary tournament, crosses
    them layer by layer and mutates the child. Only caches live in memory: a study resumed
    from storage carries on where it stopped. Until ``population_size`` trials are complete or
    running, proposals are random.

    * Known-cost constraints (a ``Constraint`` on an ``Objective(fn=...)``): no proposal
      violates one (:class:`KnownCostGuard`). A share ``switch_prob`` of the mutations are
      EvoPress level switches (a layer one level up, another one down, within budget);
      infeasible candidates are repaired toward the cheap levels; half of the random ones walk
      a random way toward the cheapest Config, so the first population spans the cost range
      (uniform per-layer draws all cost about the mean). If the cheapest Config is
      infeasible, the first proposal raises ``ValueError``.
    * Measured constraints (``trial.constraints``) rank by constrained domination as in
      Optuna's NSGA-II. FAIL and PRUNED trials (driver-rejected ones too) are not selected,
      except under multi-fidelity (``optimize(..., fidelity=...)``): a Config stopped below
      the top rung is a parent by its highest rung's metrics, ranked below every Config of a
      higher rung, so evolution starts once ``population_size`` Configs have any result.
    * The Config of an existing trial (complete, running or failed) is proposed again only if
      none of ``max_tries`` candidates is new.
    * Parallel workers: each proposal has its own random stream, seeded by ``(seed,
      trial.number)``, and running trials count as existing, so concurrent proposals differ.
      Generations are implicit: the population changes whenever a trial completes.
    * Parameters outside the relative search space are drawn uniformly at random.
    * Ordinal levels are ordered: one the study stores as a categorical of its levels (say
      sparsities ``0.0, 0.25, 0.5``) mutates to a neighbouring level, as evenly stepped integer
      levels do (the operators see its level index, :class:`~tradeoff.search._levels.LevelView`).
      Without ``space``, every categorical is unordered.

    Args:
        population_size: Survivors kept as parents. ``None``: ``min(64, 8 + 4 * ceil(sqrt(d)))``
            for ``d`` parameters, at most ``max(8, n_trials // 4)`` when ``n_trials`` is given.
        n_trials: The evaluation budget if known (only sizes the default population).
        seed: Seed; with sequential ask/tell the same seed gives the same proposals.
        space: The search space: its distributions are the relative search space from the first
            trial on, and ``objectives.known_values`` gets ``space.decode(params)``.
        objectives: Its known-cost constraints bound every proposal (needs ``space``).
        mutation_prob: Per-parameter probability of the default mutation (``None``: ``1 / d``).
        crossover_prob: Probability of crossing two parents (else the first is copied).
        switch_prob: Probability that a level switch replaces the mutation (with known costs).
        survival: ``"crowding"`` (NSGA-II) or ``"hv"`` (hypervolume contribution, SMS-EMOA).
        crossover: Crossover operator (default :class:`LayerCrossover`).
        mutation: Mutation operator (default :class:`NeighbourMutation`).
        max_tries: Candidates tried per proposal before an existing Config is accepted.
    """

    def __init__(
        self,
        *,
        population_size: int | None = None,
        n_trials: int | None = None,
        seed: int | None = None,
        space: SearchSpace | None = None,
        objectives: ObjectiveSet | None = None,
        mutation_prob: float | None = None,
        crossover_prob: float = 0.9,
        switch_prob: float = 0.5,
        survival: str = "crowding",
        crossover: Crossover | None = None,
        mutation: Mutation | None = None,
        max_tries: int = 16,
    ) -> None:
        _check_inputs(space, objectives, seed, survival, mutation, mutation_prob)
        for name, n, low in (("population_size", population_size, 2), ("n_trials", n_trials, 1)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < low):
                raise ValueError(f"{name} must be an integer >= {low} or None, got {n!r}.")
        for name, p in (("crossover_prob", crossover_prob), ("switch_prob", switch_prob)):
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}.")
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise ValueError(f"max_tries must be an integer >= 1, got {max_tries!r}.")
        self._population_size, self._n_trials = population_size, n_trials
        self._space, self._objectives = space, objectives
        self._crossover_prob, self._switch_prob = float(crossover_prob), float(switch_prob)
        self._survival, self._max_tries = survival, max_tries
        self._crossover: Crossover = crossover or LayerCrossover()
        self._mutation: Mutation = mutation or NeighbourMutation(prob=mutation_prob)
        self._seed = _entropy(seed)
        self._intersection = IntersectionSearchSpace()
        # Caches only: all rebuilt from the study when missing.
        self._guard: KnownCostGuard | None = None
        self._layers: dict[tuple[str, ...], Layers] = {}
        # Per study and stored space: each finished trial as _history reads it (finished
        # trials never change), so a proposal does not view every trial's params again.
        self._read: dict[tuple[str, Any], dict[int, _Read]] = {}
        self._survivors: tuple[Any, _Population] | None = None

    # BaseSampler ----------------------------------------------------------------------------
    def reseed_rng(self) -> None:
        self._seed = _entropy(None)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._space is not None:
            return self._space.distributions()
        inferred = self._intersection.calculate(study).items()
        return {name: dist for name, dist in inferred if not dist.single()}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        rng = np.random.default_rng([self._seed, trial.number])
        view = LevelView.of(self._space, search_space)
        return view.to_stored(self._propose(self._history(study, trial, view), view, rng))

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        salt = zlib.crc32(param_name.encode())
        return uniform(param_distribution, np.random.default_rng([self._seed, trial.number, salt]))

    def population_size(self, n_params: int) -> int:
        """The population size for ``n_params`` parameters (see ``population_size``)."""
        if self._population_size is not None:
            return self._population_size
        size = min(64, 8 + 4 * math.ceil(math.sqrt(n_params)))
        return size if self._n_trials is None else min(size, max(8, self._n_trials // 4))

    # Proposal -------------------------------------------------------------------------------
    def _propose(self, history: _History, view: LevelView, rng: Rng) -> Params:
        """A new candidate, in ``view``."""
        dists = view.dists
        guard = self._guard_for(view)
        started = history.n_complete + history.n_running >= self.population_size(len(dists))
        evolve = started and len(history.population.members) >= 2
        n_children = self._max_tries - self._max_tries // 4 if evolve else 0
        fallback: Params | None = None
        for attempt in range(self._max_tries):
            if attempt < n_children:
                candidate: Params | None = self._child(history.population, dists, guard, rng)
            else:
                candidate = self._random(dists, guard, rng)
            if guard is not None and candidate is not None:
                candidate = guard.repair(candidate, rng)
            if candidate is None:
                continue
            if tuple(candidate[name] for name in dists) not in history.seen:
                return candidate
            fallback = fallback or candidate
        if fallback is None:  # every repair failed (costs not monotone in the levels)
            assert guard is not None  # without a guard every candidate is kept
            return dict(guard.cheapest)
        return fallback

    def _child(
        self, population: _Population, dists: Dists, guard: KnownCostGuard | None, rng: Rng
    ) -> Params:
        first = population.tournament(rng)
        second = population.tournament(rng, avoid=first)
        parent, other = population.members[first], population.members[second]
        layers = self._layers_for(tuple(dists))
        child = dict(parent)
        if rng.random() < self._crossover_prob:
            child = self._crossover(parent, other, layers=layers, rng=rng)
        if guard is not None and rng.random() < self._switch_prob:
            switched = guard.switch(child, layers, rng)
            if switched is not None:
                return switched
        return self._mutation(child, distributions=dists, rng=rng)

    def _random(self, dists: Dists, guard: KnownCostGuard | None, rng: Rng) -> Params:
        for _ in range(_RANDOM_DRAWS):
            candidate = {name: uniform(dist, rng) for name, dist in dists.items()}
            if guard is None or guard.feasible(candidate):
                break
        if guard is not None and guard.feasible(candidate) and rng.random() < _SHRINK_PROB:
            return guard.shrink(candidate, rng)
        return candidate

    def _guard_for(self, view: LevelView) -> KnownCostGuard | None:
        space, objectives = self._space, self._objectives
        if space is None or objectives is None or not objectives.known_constraints():
            return None
        if self._guard is None and set(view.dists) == set(space):
            self._guard = KnownCostGuard(space, objectives, view)
        return self._guard

    def _layers_for(self, names: tuple[str, ...]) -> Layers:
        if names not in self._layers:
            namespaces = set(self._space.children) if self._space is not None else set()
            self._layers[names] = group_layers(names, namespaces or None)
        return self._layers[names]

    # State rebuilt from storage -------------------------------------------------------------
    def _history(self, study: optuna.Study, trial: FrozenTrial, view: LevelView) -> _History:
        """The trials of ``study`` other than ``trial``, their params in ``view``."""
        history = _History()
        dists = view.stored
        read = self._read.setdefault((study.study_name, tuple(dists.items())), {})
        best: dict[tuple[Any, ...], _Result] = {}  # each Config's highest-rung result
        names = study.metric_names  # a storage read: once, not once per trial
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            history.n_running += t.state == TrialState.RUNNING
            entry = read.get(t.number)
            if entry is None:
                entry = _read(t, view, names)
                if entry is None:
                    continue
                if t.state.is_finished():
                    read[t.number] = entry
            key, result, fits = entry
            history.seen.add(key)
            # Trials of an older, different space are not parents.
            if result is not None and fits and (key not in best or best[key].rung < result.rung):
                best[key] = result
        history.n_complete = len(best)
        results = sorted(best.values(), key=lambda r: r.trial.number)
        history.population = self._select(study, results, tuple(dists))
        return history

    def _select(
        self, study: optuna.Study, results: list[_Result], names: tuple[str, ...]
    ) -> _Population:
        """Survivors, highest rung first: the best of the completed trials, then (when fewer
        than the population size completed, as early in a multi-fidelity search) the best
        results of the next rung down, and so on; a lower-rung member ranks below every
        higher-rung one in tournaments."""
        key = (study.study_name, names, tuple((r.trial.number, r.rung) for r in results))
        if self._survivors is not None and self._survivors[0] == key:
            return self._survivors[1]
        sign = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
        room = self.population_size(len(names))
        members: list[Params] = []
        all_ranks: list[np.ndarray] = []
        all_scores: list[np.ndarray] = []
        offset = 0
        for rung in sorted({r.rung for r in results}, reverse=True):
            if room <= 0:
                break
            group = [r for r in results if r.rung == rung]
            values = np.array([r.values for r in group], dtype=float) * sign
            penalty = np.array([r.violation for r in group])
            chosen, ranks, scores = select_survivors(
                values, penalty, min(room, len(group)), method=self._survival
            )
            members += [{n: group[i].params[n] for n in names} for i in chosen]
            all_ranks.append(ranks[chosen] + offset)
            all_scores.append(scores[chosen])
            offset += int(ranks[chosen].max()) + 1
            room -= len(chosen)
        population = _Population()
        if members:
            population = _Population(members, np.concatenate(all_ranks), np.concatenate(all_scores))
        self._survivors = (key, population)
        return population


@dataclass(frozen=True)
class _Result:
    """One evaluated trial: its objective values, total constraint violation, rung
    (``math.inf`` for a completed trial; a multi-fidelity rung below the top otherwise) and
    params (as operators see them, :class:`LevelView`)."""

    trial: FrozenTrial
    values: tuple[float, ...]
    violation: float
    rung: float
    params: Mapping[str, Any]


_Read = tuple[tuple[Any, ...], "_Result | None", bool]
"""A trial as :meth:`EvolutionSampler._history` reads it: its Config's key (params in the
view's order), its result (None: none usable), and whether its distributions are the view's."""


def _read(trial: FrozenTrial, view: LevelView, names: list[str] | None) -> _Read | None:
    """``trial`` as the history reads it, or ``None`` if it lacks a parameter of the view."""
    dists = view.stored
    if not dists.keys() <= trial.params.keys():
        return None
    params = view.view(trial.params)
    key = tuple(params[name] for name in dists)
    fits = all(trial.distributions[n] == d for n, d in dists.items())
    return key, _result(trial, params, names), fits


def _result(
    trial: FrozenTrial, params: Mapping[str, Any], names: list[str] | None
) -> _Result | None:
    """The result of a completed trial, or of a PRUNED one that tradeoff's multi-fidelity
    driver stopped below the top rung with its metrics (``tradeoff.result``), else None;
    ``params`` are the trial's, as operators see them; ``names`` the study's metric names."""
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        violation = sum(max(v, 0.0) for v in trial.constraints.values())
        return _Result(trial, tuple(trial.values), violation, math.inf, params)
    tag, run = trial.user_attrs.get(ATTR_FIDELITY), trial.user_attrs.get(ATTR_RESULT)
    if trial.state != TrialState.PRUNED or tag is None or not isinstance(run, dict) or not names:
        return None
    try:
        values = tuple(float(run["values"][name]) for name in names)
        constraints = run.get("constraints", {})
        violation = sum(max(float(v), 0.0) for v in constraints.values())
        return _Result(trial, values, violation, float(tag["rung"]), params)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class _Population:
    """Survivors' params, rank (lower is better) and score within their front (higher is)."""

    members: list[Params] = field(default_factory=list)
    ranks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def tournament(self, rng: Rng, avoid: int | None = None) -> int:
        """Index of the better of two random members other than ``avoid`` (if possible)."""
        pool = [i for i in range(len(self.members)) if i != avoid] or [0]
        i, j = (pool[int(k)] for k in rng.choice(len(pool), size=2, replace=len(pool) < 2))
        fitness_i = (self.ranks[i], -self.scores[i])
        fitness_j = (self.ranks[j], -self.scores[j])
        if fitness_i == fitness_j:
            return i if rng.random() < 0.5 else j
        return i if fitness_i < fitness_j else j


@dataclass
class _History:
    population: _Population = field(default_factory=_Population)
    seen: set[tuple[Any, ...]] = field(default_factory=set)
    n_complete: int = 0
    n_running: int = 0


def _entropy(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    return int(seed) % 2**64


def _check_inputs(
    space: Any, objectives: Any, seed: Any, survival: Any, mutation: Any, mutation_prob: Any
) -> None:
    if space is not None and not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a tradeoff.spaces.SearchSpace, got {space!r}.")
    if objectives is not None and not isinstance(objectives, ObjectiveSet):
        raise TypeError(
            "objectives must be an ObjectiveSet, e.g. "
            f"ObjectiveSet.build([Objective(...)], constraints), got {objectives!r}."
        )
    if objectives is not None and objectives.known_constraints() and space is None:
        raise ValueError(
            "Known-cost constraints need the space to decode params into Configs: "
            "EvolutionSampler(space=space, objectives=...)."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an integer or None, got {seed!r}.")
    if survival not in SURVIVALS:
        raise ValueError(f"Unknown survival {survival!r}; use one of {list(SURVIVALS)}.")
    if mutation is not None and mutation_prob is not None:
        raise ValueError("Give mutation_prob or a mutation operator, not both.")
