"""Variation operators of :class:`~tradeoff.search.EvolutionSampler`, on ``trial.params`` values.

Operators see ``trial.params`` through a :class:`~tradeoff.search._levels.LevelView`: an
``Ordinal`` the study stores as a categorical of its levels is its level index (an
``IntDistribution(0, k - 1)``), so neighbouring levels are one step apart; every other
parameter is its stored value (an ``Ordinal`` of evenly stepped integers its level, in an
``IntDistribution`` with that step; a ``Choice`` its value, in a ``CategoricalDistribution``).
Each takes an explicit ``numpy.random.Generator`` and returns a new dict, so a seed fixes every
proposal.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tradeoff.objectives import ObjectiveSet
from tradeoff.search._levels import LevelView, find_choice
from tradeoff.spaces import SearchSpace

Params = dict[str, Any]
"""Parameter name -> value, as in ``trial.params``."""
Layers = Mapping[str, tuple[str, ...]]
"""Layer name -> the parameter names that belong to it."""
Dists = Mapping[str, BaseDistribution]
Rng = np.random.Generator
Numeric = FloatDistribution | IntDistribution


# Layers ---------------------------------------------------------------------------------------
def layer_of(name: str, namespaces: Collection[str] | None = None) -> str:
    """The layer of a parameter: its name without namespace and knob (``quant.fc1.bits`` and
    ``prune.fc1.sparsity`` are in ``fc1``, as is ``fc1.bits``; ``lr`` is its own layer).

    ``namespaces`` are a merged space's parts (``SearchSpace.children``): the first component
    is stripped only when it is one of them; ``None`` strips it from names of 3+ components.
    """
    parts = name.split(".")
    strip = len(parts) >= 3 if namespaces is None else parts[0] in namespaces
    if strip and len(parts) >= 2:
        parts = parts[1:]
    return name if len(parts) == 1 else ".".join(parts[:-1])


def group_layers(names: Iterable[str], namespaces: Collection[str] | None = None) -> Layers:
    """Group parameter names by :func:`layer_of`, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(layer_of(name, namespaces), []).append(name)
    return {layer: tuple(members) for layer, members in groups.items()}


# Operator interfaces --------------------------------------------------------------------------
class Crossover(Protocol):
    """Combines two parents into one child (both have the same keys)."""

    def __call__(self, first: Params, second: Params, *, layers: Layers, rng: Rng) -> Params: ...


class Mutation(Protocol):
    """Perturbs some parameters of ``params`` within their distributions."""

    def __call__(self, params: Params, *, distributions: Dists, rng: Rng) -> Params: ...


@dataclass(frozen=True)
class LayerCrossover:
    """Uniform crossover over layers: each layer comes whole from one parent.

    Args:
        swap_prob: Probability that a layer is taken from the second parent.
    """

    swap_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.swap_prob <= 1.0:
            raise ValueError(f"swap_prob must be in [0, 1], got {self.swap_prob!r}.")

    def __call__(self, first: Params, second: Params, *, layers: Layers, rng: Rng) -> Params:
        child = dict(first)
        for names in layers.values():
            if rng.random() < self.swap_prob:
                child.update({name: second[name] for name in names})
        return child


@dataclass(frozen=True)
class NeighbourMutation:
    """Type-aware mutation of each parameter with probability ``prob`` (at least one mutates).

    * Int (and Ordinal level indices): one step up or down (reflected at the bounds); with
      probability ``jump_prob`` a jump of 2 or more steps, uniform over the reachable ones.
      Log-scaled Ints are perturbed like Floats on the log scale, then rounded.
    * Float: polynomial mutation (distribution index ``eta``) on the log scale for ``log=True``,
      clipped to the bounds and rounded to ``step``.
    * Categorical: a different choice, uniformly.

    Args:
        prob: Per-parameter mutation probability; ``None`` means ``1 / len(params)``.
        jump_prob: Probability that an Int moves by more than one step.
        eta: Polynomial-mutation index; larger keeps Floats closer to the parent.
    """

    prob: float | None = None
    jump_prob: float = 0.1
    eta: float = 20.0

    def __post_init__(self) -> None:
        for name, p in (("prob", self.prob), ("jump_prob", self.jump_prob)):
            if p is not None and not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p!r}.")
        if not self.eta >= 0:
            raise ValueError(f"eta must be >= 0, got {self.eta!r}.")

    def __call__(self, params: Params, *, distributions: Dists, rng: Rng) -> Params:
        names = list(params)
        prob = 1.0 / max(len(names), 1) if self.prob is None else self.prob
        chosen = [n for n in names if rng.random() < prob] or [names[rng.integers(len(names))]]
        child = dict(params)
        for name in chosen:
            child[name] = self.mutate_value(distributions[name], params[name], rng)
        return child

    def mutate_value(self, dist: BaseDistribution, value: Any, rng: Rng) -> Any:
        """A mutated copy of one value of ``dist`` (never ``value`` itself if avoidable)."""
        if isinstance(dist, CategoricalDistribution):
            return resample_choice(dist, value, rng)
        if isinstance(dist, IntDistribution) and not dist.log:
            return neighbour(dist, value, rng, jump_prob=self.jump_prob)
        if not isinstance(dist, (FloatDistribution, IntDistribution)):
            raise TypeError(f"Cannot mutate a parameter of distribution {dist!r}.")
        moved = polynomial(dist, value, rng, eta=self.eta)
        if moved != value:
            return moved
        low, high = ends(dist)  # rounded back onto value: take one step instead
        return step_toward(dist, value, high if value == low or rng.random() < 0.5 else low)


# Value-level moves ----------------------------------------------------------------------------
def neighbour(dist: IntDistribution, value: int, rng: Rng, *, jump_prob: float) -> int:
    """An adjacent level of ``value`` (±1 step), or with ``jump_prob`` a farther one."""
    n = (dist.high - dist.low) // dist.step
    k = (int(value) - dist.low) // dist.step
    size = int(rng.integers(2, n + 1)) if n >= 2 and rng.random() < jump_prob else 1
    sign = 1 if rng.random() < 0.5 else -1
    if not 0 <= k + sign * size <= n:
        sign = -sign
    return dist.low + dist.step * min(max(k + sign * size, 0), n)


def polynomial(dist: Numeric, value: float, rng: Rng, *, eta: float) -> Any:
    """Deb's polynomial mutation of ``value`` in the unit (log-aware) scale of ``dist``."""
    u, r = to_unit(dist, value), rng.random()
    power = 1.0 / (eta + 1.0)
    if r < 0.5:
        delta = (2 * r + (1 - 2 * r) * (1 - u) ** (eta + 1)) ** power - 1
    else:
        delta = 1 - (2 * (1 - r) + 2 * (r - 0.5) * (1 - (1 - u)) ** (eta + 1)) ** power
    return from_unit(dist, u + delta)


def resample_choice(dist: CategoricalDistribution, value: Any, rng: Rng) -> Any:
    """A choice other than ``value``, uniformly (``value`` itself when it is the only one)."""
    n = len(dist.choices)
    if n == 1:
        return dist.choices[0]
    j = int(rng.integers(n - 1))
    return dist.choices[j + 1 if j >= choice_index(dist, value) else j]


def choice_index(dist: CategoricalDistribution, value: Any) -> int:
    """Index of ``value`` among the choices (``True`` and ``1`` are told apart)."""
    index = find_choice(dist, value)
    return int(dist.to_internal_repr(value)) if index is None else index


def uniform(dist: BaseDistribution, rng: Rng) -> Any:
    """A value drawn uniformly (log-uniformly for ``log=True``) from ``dist``."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution) and not dist.log:
        return dist.low + dist.step * int(rng.integers((dist.high - dist.low) // dist.step + 1))
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        return from_unit(dist, rng.random())
    raise TypeError(f"Cannot sample a parameter of distribution {dist!r}.")


def ends(dist: BaseDistribution) -> tuple[Any, Any]:
    """The lowest and highest value (first and last choice for a categorical)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0], dist.choices[-1]
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    return from_unit(dist, 0.0), from_unit(dist, 1.0)


def path_toward(dist: Numeric, value: Any, target: Any, *, max_points: int = 16) -> list[Any]:
    """Values from ``value`` (excluded) to ``target`` (included): every level of an Int with
    few levels, else up to ``max_points`` evenly spaced points on the unit scale."""
    if isinstance(dist, IntDistribution) and not dist.log:
        k, t = (int(value) - dist.low) // dist.step, (int(target) - dist.low) // dist.step
        if abs(t - k) <= max_points:
            sign = 1 if t > k else -1
            return [dist.low + dist.step * i for i in range(k + sign, t + sign, sign)]
    u, t_u = to_unit(dist, value), to_unit(dist, target)
    points = [from_unit(dist, u + (t_u - u) * i / max_points) for i in range(1, max_points + 1)]
    return [p for i, p in enumerate(points) if p != value and (i == 0 or p != points[i - 1])]


def step_toward(dist: Numeric, value: Any, target: Any, *, fraction: float = 0.1) -> Any:
    """One level toward ``target``: one step of a linear Int, else ``fraction`` of the unit
    range (at least one ``step``); ``value`` itself when already there."""
    if value == target:
        return value
    sign = 1 if target > value else -1
    if isinstance(dist, IntDistribution) and not dist.log:
        return int(value) + sign * dist.step
    u, t_u = to_unit(dist, value), to_unit(dist, target)
    moved = from_unit(dist, u + sign * min(fraction, abs(t_u - u)))
    if moved == value and dist.step is not None:
        moved = from_unit(dist, to_unit(dist, value + sign * dist.step))
    return moved


def to_unit(dist: Numeric, value: float) -> float:
    """``value`` mapped to ``[0, 1]`` (log-linearly for ``log=True``)."""
    low, high, x = float(dist.low), float(dist.high), float(value)
    if dist.log:
        low, high, x = math.log(low), math.log(high), math.log(max(x, dist.low))
    return min(max((x - low) / (high - low), 0.0), 1.0)


def from_unit(dist: Numeric, u: float) -> Any:
    """The value of ``dist`` at unit position ``u`` (clipped), rounded to its grid."""
    u = min(max(float(u), 0.0), 1.0)
    if dist.log:
        x = math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
    else:
        x = dist.low + u * (dist.high - dist.low)
    if dist.step is not None:
        x = dist.low + round((x - dist.low) / dist.step) * dist.step
    x = min(max(x, dist.low), dist.high)
    return round(x) if isinstance(dist, IntDistribution) else float(x)


# Known-cost budget ----------------------------------------------------------------------------
class KnownCostGuard:
    """Keeps params within the known-cost constraints of ``objectives``.

    Params are in ``view`` (level indices for Ordinals stored as categoricals); each distinct
    params costs one ``objectives.known_values(space.decode(view.to_stored(params)))``
    (cached); one that raises counts as infeasible. On creation each knob's cheap end is
    probed: the cost change from its lowest to its highest value, from the all-lowest and from
    the all-highest params (``2 d + 2`` evaluations; one per choice for categoricals). Knobs
    with no effect on the constrained costs are never moved by :meth:`repair`, :meth:`shrink`,
    :meth:`switch`.

    Raises:
        ValueError: even the cheapest params violate a known-cost constraint.
    """

    def __init__(self, space: SearchSpace, objectives: ObjectiveSet, view: LevelView) -> None:
        self._space, self._objectives, self._view = space, objectives, view
        self._dists = dict(view.dists)
        self._constraints = objectives.known_constraints()
        self._cache: dict[tuple[Any, ...], tuple[float, float]] = {}
        self.cheap: Params = {}  # knob -> its cheapest value
        self.dear: Params = {}  # numeric knob -> its dearest value
        lows = {name: ends(dist)[0] for name, dist in self._dists.items()}
        self._probe(lows, {name: ends(dist)[1] for name, dist in self._dists.items()})
        self.cheapest: Params = {**lows, **self.cheap}
        if not self.feasible(self.cheapest):
            labels = [c.label for c in self._constraints]
            config = self._config(self.cheapest)
            raise ValueError(
                f"No Config satisfies the known-cost constraints {labels}: the cheapest found, "
                f"{config}, has {_known(objectives, config)}. Loosen the bounds or widen the space."
            )

    def feasible(self, params: Params) -> bool:
        """Whether ``params`` satisfies every known-cost constraint."""
        return self._measure(params)[1] <= 0.0

    def repair(self, params: Params, rng: Rng) -> Params | None:
        """``params`` if feasible, else the shortest feasible prefix (binary search) of a random
        walk moving knobs one level at a time toward their cheap end; ``None`` if none is."""
        if self.feasible(params):
            return params
        moves = self._moves(params, rng)
        if not moves or not self.feasible(_walk(params, moves, len(moves))):
            return None
        lo, hi = 0, len(moves)  # walking lo moves is infeasible, hi moves feasible
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.feasible(_walk(params, moves, mid)) else (mid, hi)
        return _walk(params, moves, hi)

    def shrink(self, params: Params, rng: Rng) -> Params:
        """``params`` walked a uniformly random number of levels toward the cheapest params."""
        moves = self._moves(params, rng)
        shrunk = _walk(params, moves, int(rng.integers(len(moves) + 1)))
        return shrunk if self.feasible(shrunk) else params

    def switch(self, params: Params, layers: Layers, rng: Rng) -> Params | None:
        """EvoPress level switch: one knob a level dearer, a knob of another layer a level
        cheaper, kept within the budget; ``None`` if 8 random pairs all break it."""
        layer = {name: lay for lay, names in layers.items() for name in names}
        ups = [n for n in self.dear if params[n] != self.dear[n]]
        downs = [n for n in self.dear if params[n] != self.cheap[n]]
        for _ in range(8 if ups and downs else 0):
            up = ups[int(rng.integers(len(ups)))]
            others = [n for n in downs if layer[n] != layer[up]] or [n for n in downs if n != up]
            if not others:
                return None
            down = others[int(rng.integers(len(others)))]
            child = dict(params)
            child[up] = step_toward(self._numeric(up), params[up], self.dear[up])
            child[down] = step_toward(self._numeric(down), params[down], self.cheap[down])
            if self.feasible(child):
                return child
        return None

    def _moves(self, params: Params, rng: Rng) -> list[tuple[str, Any]]:
        paths: dict[str, list[Any]] = {}
        for name, cheap in self.cheap.items():
            dist = self._dists[name]
            if isinstance(dist, CategoricalDistribution):
                same = choice_index(dist, params[name]) == choice_index(dist, cheap)
                paths[name] = [] if same else [cheap]
            else:
                paths[name] = path_toward(self._numeric(name), params[name], cheap)
        order = [name for name, path in paths.items() for _ in path]
        rng.shuffle(order)
        steps = {name: iter(path) for name, path in paths.items()}
        return [(name, next(steps[name])) for name in order]

    def _probe(self, lows: Params, highs: Params) -> None:
        base_low, base_high = self._load(lows), self._load(highs)
        tol = 1e-9 * (abs(base_low) + abs(base_high) + 1e-12)
        for name, dist in self._dists.items():
            if isinstance(dist, CategoricalDistribution):
                choices = dist.choices if 2 <= len(dist.choices) <= 32 else ()
                loads = [
                    self._load({**lows, name: c}) + self._load({**highs, name: c}) for c in choices
                ]
                if loads and max(loads) - min(loads) > tol and math.isfinite(max(loads)):
                    self.cheap[name] = choices[int(np.argmin(loads))]
                continue
            low, high = lows[name], highs[name]
            diff = base_high - self._load({**highs, name: low})
            diff += self._load({**lows, name: high}) - base_low
            if math.isfinite(diff) and abs(diff) > tol:
                self.cheap[name], self.dear[name] = (low, high) if diff > 0 else (high, low)

    def _config(self, params: Params) -> dict[str, Any]:
        return self._space.decode(self._view.to_stored(params))

    def _numeric(self, name: str) -> Numeric:
        dist = self._dists[name]
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        return dist

    def _load(self, params: Params) -> float:
        return self._measure(params)[0]

    def _measure(self, params: Params) -> tuple[float, float]:
        """(signed cost, total excess), summed over the known constraints scaled by bound."""
        key = tuple(params[name] for name in self._dists)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= 100_000:
                self._cache.clear()
            hit = self._cache[key] = self._compute(params)
        return hit

    def _compute(self, params: Params) -> tuple[float, float]:
        try:
            known = self._objectives.known_values(self._config(params))
        except Exception:  # the driver would fail this Config: never propose it
            return math.inf, math.inf
        load = excess = 0.0
        for c in self._constraints:
            scale = abs(c.bound) or 1.0
            load += (known[c.name] if c.op == "<=" else -known[c.name]) / scale
            excess += max(c.violation(known[c.name]), 0.0) / scale
        return load, excess


def _walk(params: Params, moves: list[tuple[str, Any]], k: int) -> Params:
    return {**params, **dict(moves[:k])}


def _known(objectives: ObjectiveSet, config: Mapping[str, Any]) -> str:
    try:
        return str(objectives.known_values(config))
    except Exception as exc:
        return f"a known cost raising {type(exc).__name__}: {exc}"
