"""Multi-fidelity search for several objectives: asynchronous successive halving (MO-ASHA).

Every Config starts at the lowest budget of a :class:`Fidelity` ladder (training steps,
calibration tokens, a data fraction). Each evaluation is one Optuna trial: the ones below the
top budget end PRUNED, with their metrics in the ``tradeoff.result`` user attribute (Optuna's
``trial.report`` takes one objective only); the top budget's end COMPLETE and form the Pareto
set. Whenever a worker is free, :class:`Promoter` looks, from the top rung down, for a Config
in the best ``1/eta`` of its rung that has not moved up yet (with ``Fidelity(capped=True)``,
only while the rung has sent up fewer than that share), ranked by non-dominated sorting
(constraint violations last) and, within a front, by hypervolume contribution, not by one
scalar; if there is none, a new Config starts. All of it is read back from the study's trials,
so a resumed search promotes exactly where the dead one stopped. Each rung's ranking is kept up
to date as results arrive (:mod:`tradeoff.search._rungs`), so a decision costs about the same
in a study of any size; :meth:`Promoter.rerank` ranks from scratch and gives the same answer.
"""

from __future__ import annotations

import collections
import itertools
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from tradeoff import _pareto
from tradeoff._study import ATTR_FIDELITY, ATTR_RESULT
from tradeoff.search._rungs import Rung
from tradeoff.search._survival import hv_contributions

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class _Facts(NamedTuple):
    """What a trial means to the promoter: the trial whose Config it promotes, and its result
    (rung, objective values, total violation) if it ended PRUNED below the top budget."""

    source: int | None
    member: tuple[int, tuple[float, ...], float] | None


@dataclass(frozen=True)
class Fidelity:
    """A budget ladder for ``evaluate(config, budget)``.

    Args:
        budgets: Increasing positive budgets, e.g. ``(50, 150, 450)`` training steps; the last
            is the full evaluation whose results form the Pareto set.
        eta: Keep the best ``1/eta`` of each rung for the next (``>= 2``).
        name: What a budget counts ("steps", "tokens", "fraction"), for tables and logs.
        capped: Each rung sends up at most ``floor(size / eta)`` of its Configs in all, the
            share synchronous successive halving sends. ``False``: ASHA's rule alone, under
            which a Config is promoted whenever it is in its rung's best ``1/eta`` and has not
            moved up yet; with a sampler that keeps improving, most new Configs land in that
            best share when they arrive, so most move up every rung and the lower rungs save
            little (see the README's multi-fidelity benchmarks).

    Raises:
        ValueError: fewer than two budgets, budgets not increasing and positive, or ``eta < 2``.
    """

    budgets: tuple[float, ...]
    eta: float = 3.0
    name: str = "budget"
    capped: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.budgets, (str, bytes)) or not isinstance(self.budgets, Iterable):
            raise TypeError(
                f"Fidelity budgets must be a list of increasing numbers, e.g. (50, 150, 450), "
                f"got {self.budgets!r}."
            )
        budgets = tuple(self.budgets)
        object.__setattr__(self, "budgets", budgets)
        if len(budgets) < 2:
            raise ValueError(
                f"Fidelity needs at least two budgets (low ... full), got {list(budgets)}; "
                "for one budget, pass no fidelity and evaluate at full budget."
            )
        if any(not _is_number(b) or not 0 < b < math.inf for b in budgets):
            raise ValueError(f"Fidelity budgets must be positive numbers, got {list(budgets)}.")
        if any(b >= c for b, c in itertools.pairwise(budgets)):
            raise ValueError(f"Fidelity budgets must increase, got {list(budgets)}.")
        if not (_is_number(self.eta) and 2 <= self.eta < math.inf):
            raise ValueError(f"Fidelity eta must be a number >= 2, got {self.eta!r}.")
        if not isinstance(self.name, str):
            raise TypeError(f"Fidelity name must be a string such as 'steps', got {self.name!r}.")
        if not isinstance(self.capped, bool):
            raise TypeError(f"Fidelity capped must be True or False, got {self.capped!r}.")

    @classmethod
    def geometric(
        cls,
        min_budget: float,
        max_budget: float,
        *,
        eta: float = 3.0,
        name: str = "budget",
        capped: bool = False,
    ) -> Fidelity:
        """``max_budget / eta**k`` down to no less than ``min_budget``, lowest first (as
        Hyperband's brackets); integer arguments give integer budgets."""
        if not 0 < min_budget < max_budget:
            raise ValueError(f"need 0 < min_budget < max_budget, got {min_budget}, {max_budget}.")
        n = math.floor(math.log(max_budget / min_budget, eta) + 1e-9) + 1
        steps = [max_budget / eta**k for k in reversed(range(n))]
        if isinstance(min_budget, int) and isinstance(max_budget, int):
            steps = [round(s) for s in steps]
        return cls(tuple(dict.fromkeys(steps)), eta=eta, name=name, capped=capped)

    @property
    def top(self) -> int:
        """Index of the full budget."""
        return len(self.budgets) - 1

    def tag(self, rung: int, promoted_from: int | None = None) -> dict[str, Any]:
        """The ``tradeoff.fidelity`` user attribute of a trial at ``rung``."""
        tag: dict[str, Any] = {"rung": rung, "budget": self.budgets[rung], "name": self.name}
        if promoted_from is not None:
            tag["promoted_from"] = promoted_from
        return tag


@dataclass(frozen=True)
class Promotion:
    """Run trial ``number``'s parameters again at ``rung``."""

    number: int
    params: dict[str, Any]
    rung: int


class Promoter:
    """Decides promotions from a study's trials (see the module docstring).

    Args:
        fidelity: The ladder.
        names: Objective names, in study order.
        directions: ``"minimize"``/``"maximize"`` per objective.
    """

    def __init__(self, fidelity: Fidelity, names: Sequence[str], directions: Sequence[str]) -> None:
        self.fidelity, self.names, self.directions = fidelity, list(names), list(directions)
        self._last: list[FrozenTrial] = []  # the trials of the last call, in its order
        self._numbers: list[int] = []  # their numbers
        self._open: set[int] = set()  # positions in _last of trials not finished then
        self._seen = 0  # how many trials the last call had
        self._reset()

    @property
    def top(self) -> int:
        """Index of the full budget."""
        return self.fidelity.top

    def tag(self, rung: int, promoted_from: int | None = None) -> dict[str, Any]:
        """The ``tradeoff.fidelity`` user attribute of a trial at ``rung``."""
        return self.fidelity.tag(rung, promoted_from)

    def next(
        self, trials: Sequence[FrozenTrial], changed: Iterable[int] | None = None
    ) -> Promotion | None:
        """The next promotion, from the highest rung that has one, or None.

        ``trials`` is the study's trials as last read, by number. Only trials that are new or
        not yet finished since the last call are looked at; each rung keeps its results ranked
        (:class:`~tradeoff.search._rungs.Rung`), so a call costs about the same at any study
        size. Trials out of number order are ranked from scratch (:meth:`rerank`).

        ``changed``, when given, are the numbers of the trials that may have changed since the
        last call (the caller read them again); ``trials[i]`` must then be trial ``i``, and
        the other trials are not looked at at all, not even compared (the caller may pass the
        same list, updated in place). Without it, every trial is compared with the last call's.
        """
        todo = self._changed(trials) if changed is None else self._hinted(trials, changed)
        if todo is None:
            return self.rerank(trials)
        if not all(map(self._update, todo)) or len(self._facts) != len(trials):
            self._reset()
            for t in trials:
                self._update(t)
        for rung in reversed(range(self.top)):
            number = self._rungs[rung].first_pending()
            if number is not None:
                return Promotion(number, dict(self._params[number]), rung + 1)
        return None

    def rerank(self, trials: Iterable[FrozenTrial]) -> Promotion | None:
        """What :meth:`next` returns, computed from all of ``trials`` at once."""
        rungs: list[list[FrozenTrial]] = [[] for _ in self.fidelity.budgets]
        promoted: set[int] = set()
        for t in trials:
            tag = t.user_attrs.get(ATTR_FIDELITY)
            if tag is None:
                continue
            if "promoted_from" in tag:
                promoted.add(int(tag["promoted_from"]))
            if t.state == TrialState.PRUNED and ATTR_RESULT in t.user_attrs:
                rungs[int(tag["rung"])].append(t)
        for rung in reversed(range(self.fidelity.top)):
            best = self.best(rungs[rung])
            if self.fidelity.capped and sum(t.number in promoted for t in rungs[rung]) >= len(best):
                continue
            for t in best:
                if t.number not in promoted:
                    return Promotion(t.number, dict(t.params), rung + 1)
        return None

    def _reset(self) -> None:
        m = len(self.names)
        self._rungs = [
            Rung(m, self.fidelity.eta, capped=self.fidelity.capped) for _ in self.fidelity.budgets
        ]
        self._facts: dict[int, _Facts] = {}
        self._sources: collections.Counter[int] = collections.Counter()
        self._params: dict[int, dict[str, Any]] = {}

    def _changed(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial] | None:
        """The trials to look at: new since the last call, replaced by another object (read
        again), or not finished then (a storage may update those in place); None if
        ``trials`` is not in increasing number order. C-speed over the unchanged ones."""
        trials, n = list(trials), len(trials)
        moved = map(operator.is_not, trials, self._last)
        todo = {*itertools.compress(range(n), moved), *range(len(self._last), n)}
        todo.update(i for i in self._open if i < n)
        numbers = self._numbers
        del numbers[n:]
        numbers.extend(itertools.repeat(-1, n - len(numbers)))
        for i in todo:
            numbers[i] = trials[i].number
        for i in todo:  # the rest kept their numbers, in order last time
            if (i > 0 and numbers[i - 1] >= numbers[i]) or (
                i + 1 < n and numbers[i] >= numbers[i + 1]
            ):
                self._last, self._numbers, self._open, self._seen = [], [], set(), 0
                return None
        self._last, self._seen = trials, n
        self._open = {i for i in todo if not trials[i].state.is_finished()}
        return [trials[i] for i in sorted(todo)]

    def _hinted(self, trials: Sequence[FrozenTrial], changed: Iterable[int]) -> list[FrozenTrial]:
        """The trials to look at when the caller says which changed: those, the new ones and
        the ones not finished at the last call. A trial not at its number's position starts
        everything over (all of them are looked at)."""
        n = len(trials)
        todo = {i for i in changed if i < n}
        todo.update(range(self._seen, n))
        todo.update(i for i in self._open if i < n)
        if any(trials[i].number != i for i in todo):
            todo = set(range(n))
        # The next call without ``changed`` compares nothing: it looks at every trial.
        self._last, self._numbers, self._seen = [], [], n
        self._open = {i for i in todo if not trials[i].state.is_finished()}
        return [trials[i] for i in sorted(todo)]

    def _update(self, trial: FrozenTrial) -> bool:
        """Take in a new or changed trial; False if it changed in a way only a reset handles."""
        facts = self._facts_of(trial)
        old = self._facts.get(trial.number)
        if old is not None and _same(old, facts):
            return True
        if old is not None and not (old.member is None and old.source == facts.source):
            return False
        self._facts[trial.number] = facts
        if facts.source is not None and old is None:
            self._sources[facts.source] += 1
            if self._sources[facts.source] == 1 and facts.source in self._facts:
                member = self._facts[facts.source].member
                if member is not None:
                    self._rungs[member[0]].promote(facts.source)
        if facts.member is not None:
            rung, values, violation = facts.member
            self._params[trial.number] = trial.params
            self._rungs[rung].add(
                trial.number, self._minimized(values), violation,
                promoted=self._sources[trial.number] > 0,
            )  # fmt: skip
        return True

    def _facts_of(self, trial: FrozenTrial) -> _Facts:
        tag = trial.user_attrs.get(ATTR_FIDELITY)
        if tag is None:
            return _Facts(None, None)
        source = int(tag["promoted_from"]) if "promoted_from" in tag else None
        if trial.state != TrialState.PRUNED or ATTR_RESULT not in trial.user_attrs:
            return _Facts(source, None)
        values = tuple(_value(trial, n) for n in self.names)
        return _Facts(source, (int(tag["rung"]), values, _violation(trial)))

    def _minimized(self, values: tuple[float, ...]) -> FloatArray:
        row = _pareto.to_minimization(np.array([values], dtype=float), self.directions)[0]
        return np.asarray(row, dtype=float)

    def best(self, results: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """The top ``floor(len / eta)`` results of one rung, best first."""
        keep = int(len(results) // self.fidelity.eta)
        if keep == 0:
            return []
        values = np.array([[_value(t, n) for n in self.names] for t in results], dtype=float)
        violation = np.array([_violation(t) for t in results])
        order = rank(_pareto.to_minimization(values, self.directions), violation)
        return [results[i] for i in order[:keep]]


def rank(values: FloatArray, violation: FloatArray) -> list[int]:
    """Indices best first: feasible before infeasible (by total violation), then by
    non-dominated front, then by hypervolume contribution within the front.

    Args:
        values: ``(n, m)`` objectives, minimization.
        violation: ``(n,)`` sum of positive constraint values (0 when feasible).
    """
    feasible = np.flatnonzero(violation <= 0)
    infeasible = np.flatnonzero(violation > 0)
    order: list[int] = []
    remaining = feasible
    reference = _pareto.derive_reference(values[feasible]) if len(feasible) else None
    while len(remaining):
        mask = _pareto.non_dominated(values[remaining])
        front = remaining[mask]
        assert reference is not None
        order += [int(i) for i in _by_contribution(values[front], reference, front)]
        remaining = remaining[~mask]
    order += [int(i) for i in infeasible[np.argsort(violation[infeasible], kind="stable")]]
    return order


def _by_contribution(front: FloatArray, reference: FloatArray, index: np.ndarray[Any, Any]) -> Any:
    """``index`` sorted by each point's exclusive hypervolume contribution, largest first."""
    contribution = hv_contributions(front, reference=reference)
    return index[np.argsort(-contribution, kind="stable")]


def _value(trial: FrozenTrial, name: str) -> float:
    return float(trial.user_attrs[ATTR_RESULT]["values"][name])


def _violation(trial: FrozenTrial) -> float:
    constraints = trial.user_attrs[ATTR_RESULT].get("constraints", {})
    return float(sum(max(0.0, float(v)) for v in constraints.values()))


def _same(a: _Facts, b: _Facts) -> bool:
    """``a == b``, NaN equal to NaN."""
    if a == b:
        return True
    if a.source != b.source or a.member is None or b.member is None:
        return False
    return (a.member[0], a.member[2]) == (b.member[0], b.member[2]) and bool(
        np.array_equal(a.member[1], b.member[1], equal_nan=True)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
