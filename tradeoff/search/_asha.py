"""Multi-fidelity search for several objectives: asynchronous successive halving (MO-ASHA).

Every Config starts at the lowest budget of a :class:`Fidelity` ladder (training steps,
calibration tokens, a data fraction). Each evaluation is one Optuna trial: the ones below the
top budget end PRUNED, with their metrics in the ``tradeoff.result`` user attribute (Optuna's
``trial.report`` takes one objective only); the top budget's end COMPLETE and form the Pareto
set. Whenever a worker is free, :class:`Promoter` looks, from the top rung down, for a Config
in the best ``1/eta`` of its rung that has not moved up yet, ranked by non-dominated sorting
(constraint violations last) and, within a front, by hypervolume contribution, not by one
scalar; if there is none, a new Config starts. All of it is read back from the study's trials,
so a resumed search promotes exactly where the dead one stopped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from tradeoff import _pareto
from tradeoff._study import ATTR_FIDELITY, ATTR_RESULT
from tradeoff.search._survival import hv_contributions

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Fidelity:
    """A budget ladder for ``evaluate(config, budget)``.

    Args:
        budgets: Increasing positive budgets, e.g. ``(50, 150, 450)`` training steps; the last
            is the full evaluation whose results form the Pareto set.
        eta: Keep the best ``1/eta`` of each rung for the next (``>= 2``).
        name: What a budget counts ("steps", "tokens", "fraction"), for tables and logs.

    Raises:
        ValueError: fewer than two budgets, budgets not increasing and positive, or ``eta < 2``.
    """

    budgets: tuple[float, ...]
    eta: float = 3.0
    name: str = "budget"

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

    @classmethod
    def geometric(
        cls, min_budget: float, max_budget: float, *, eta: float = 3.0, name: str = "budget"
    ) -> Fidelity:
        """``max_budget / eta**k`` down to no less than ``min_budget``, lowest first (as
        Hyperband's brackets); integer arguments give integer budgets."""
        if not 0 < min_budget < max_budget:
            raise ValueError(f"need 0 < min_budget < max_budget, got {min_budget}, {max_budget}.")
        n = math.floor(math.log(max_budget / min_budget, eta) + 1e-9) + 1
        steps = [max_budget / eta**k for k in reversed(range(n))]
        if isinstance(min_budget, int) and isinstance(max_budget, int):
            steps = [round(s) for s in steps]
        return cls(tuple(dict.fromkeys(steps)), eta=eta, name=name)

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

    @property
    def top(self) -> int:
        """Index of the full budget."""
        return self.fidelity.top

    def tag(self, rung: int, promoted_from: int | None = None) -> dict[str, Any]:
        """The ``tradeoff.fidelity`` user attribute of a trial at ``rung``."""
        return self.fidelity.tag(rung, promoted_from)

    def next(self, trials: Iterable[FrozenTrial]) -> Promotion | None:
        """The next promotion, from the highest rung that has one, or None."""
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
            for t in self.best(rungs[rung]):
                if t.number not in promoted:
                    return Promotion(t.number, dict(t.params), rung + 1)
        return None

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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
