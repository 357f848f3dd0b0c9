"""Baselines every compression search is compared against, measured in the same runs.

* :func:`uniform_configs`: one Config per uniform setting (every ``*.bits`` at 4, every
  ``*.sparsity`` at 0.5, ...), the product over knob kinds.
* :func:`additive_proxy` / :func:`additive_proxy_front`: the additive-proxy optimum. Each
  layer's error is measured alone (one layer changed from a base Config, the others kept), the
  errors are assumed to add up over layers, and an exact multiple-choice knapsack picks one
  option per layer minimizing the summed error within a cost budget. This is HAWQ-V2/V3's
  integer program and EvoPress's dynamic-programming baseline; it is optimal exactly when
  the error is additive over layers, and the gap to a search shows how much it is not.

A *per-layer knob* is an :class:`~tradeoff.spaces.Ordinal` parameter named ``<layer>.<kind>``
(``fc1.bits``; ``quant.fc1.bits`` in a space merged with ``quant=``, whose namespace is
dropped so ``prune.fc1.sparsity`` joins the same layer); layers follow
:func:`~tradeoff.search._operators.layer_of` with the space's ``children`` as namespaces.
A *layer* (a group) is all knobs of one layer: its options are the product of their levels.
The additive proxy also varies a layer's per-layer ``Choice`` parameters (a pruning pattern:
``unstructured`` or ``channel``), as options of that layer; uniform Configs take each
``Choice`` from ``base``, as every parameter that is not per-layer (a learning rate).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tradeoff.search._operators import Layers, group_layers, layer_of
from tradeoff.spaces import Choice, Config, Ordinal, SearchSpace

logger = logging.getLogger("tradeoff")

Metric = Callable[[Config], float]
"""``config -> float``: an error (lower is better) or a cost."""
Batch = Callable[[list[Config]], Sequence[float]]
"""``configs -> errors``: many Configs measured at once (on a worker pool, say)."""
FloatArray = NDArray[np.float64]

_ADDITIVITY_RTOL = 1e-6


@dataclass(frozen=True)
class ProxyResult:
    """The additive-proxy optimum for each budget, and what it took to find it.

    Attributes:
        configs: ``(budget, Config)`` per feasible budget, in the order given (for
            :func:`additive_proxy_front`: ascending, one entry per distinct Config).
        predicted_error: The proxy's error of each Config: base error + the layers' increases.
        predicted_cost: The summed cost of each Config (``cost_fn(config)`` if it is additive).
        infeasible: Budgets no Config meets (below the cheapest Config's summed cost).
        calls: ``error_fn`` evaluations: ``1 + sum over layers of (options - 1)``.
        cost_calls: ``cost_fn`` evaluations (measurement and additivity check).
        cost_additive: Whether ``cost_fn`` matched the summed cost on the random Configs checked.
        base: The Config every layer's change starts from.
        base_error: ``error_fn(base)``.
        table: One row per (layer, option): ``layer``, ``option`` (a label such as
            ``"bits=4, sparsity=0.5"``), one column per knob kind, ``error``, ``delta_error``
            (increase over ``base_error``), ``cost``, ``delta_cost``, ``is_base``.
    """

    configs: list[tuple[float, Config]]
    predicted_error: list[float]
    predicted_cost: list[float]
    infeasible: list[float]
    calls: int
    cost_calls: int
    cost_additive: bool
    base: Config
    base_error: float
    table: pd.DataFrame


# Per-layer knobs ------------------------------------------------------------------------------
def layer_knobs(space: SearchSpace, *, choices: bool = False) -> Layers:
    """Layer -> its per-layer Ordinal knobs (and ``Choice`` ones if ``choices``), in space
    order.

    Raises:
        TypeError: ``space`` is not a SearchSpace.
        ValueError: ``space`` has no per-layer Ordinal knob.
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}.")
    namespaces = set(space.children)
    names = [n for n, p in space.items() if isinstance(p, Ordinal) and layer_of(n, namespaces) != n]
    if not names:
        raise ValueError(
            "The space has no per-layer Ordinal knob (a parameter named '<layer>.<kind>', such "
            "as 'fc1.bits' or 'quant.fc1.bits'): build it with QuantizationSpace/PruningSpace "
            f".for_model, or name its Ordinal parameters that way. Got {list(space)}."
        )
    if choices:
        names = [
            n
            for n, p in space.items()
            if isinstance(p, (Ordinal, Choice)) and layer_of(n, namespaces) != n
        ]
    return group_layers(names, namespaces)


def _kind(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def default_config(space: SearchSpace, base: Mapping[str, Any] | None = None) -> Config:
    """``base`` checked against ``space``, or the default Config: the first level of each
    Ordinal, the first value of each Choice, ``low`` of each Float and Int.

    Raises:
        TypeError: ``base`` is not a mapping.
        ValueError: ``base`` is not a Config of ``space``.
    """
    if base is None:
        return {name: _first(p) for name, p in space.items()}
    if not isinstance(base, Mapping):
        raise TypeError(f"base must be a Config (a dict), got {type(base).__name__}.")
    if not space.contains(base):
        missing = sorted(set(space) - set(base))
        extra = sorted(set(base) - set(space))
        bad = {k: base[k] for k in space if k in base and not space[k].contains(base[k])}
        raise ValueError(
            f"base is not a Config of the space: missing {missing}, unexpected {extra}, "
            f"values out of range {bad}. Start from space.sample() or a uniform config."
        )
    return dict(base)


def _first(param: Any) -> Any:
    return param.values[0] if isinstance(param, (Ordinal, Choice)) else param.low


# Uniform baselines ----------------------------------------------------------------------------
def uniform_configs(
    space: SearchSpace, *, base: Mapping[str, Any] | None = None
) -> list[tuple[str, Config]]:
    """One Config per uniform setting: every knob of one kind at the same level.

    Kinds are the knobs' last name components (``bits``, ``act_bits``, ``sparsity``), in
    space order; the result is the product over kinds of their levels, labelled like
    ``"bits=4, sparsity=0.5"``. A level that some layer of a kind lacks (an n:m layer's two
    sparsities among four) is left out, so each Config is really uniform (logged at DEBUG).

    Args:
        space: A space with per-layer Ordinal knobs.
        base: Values of the other parameters; default: the first level of each Ordinal and
            value of each Choice, ``low`` of each Float and Int.

    Raises:
        TypeError: ``space`` is not a SearchSpace, or ``base`` not a mapping.
        ValueError: no per-layer Ordinal knob, or ``base`` outside ``space``.
    """
    layers = layer_knobs(space)
    config = default_config(space, base)
    kinds: dict[str, list[str]] = {}
    for name in itertools.chain.from_iterable(layers.values()):
        kinds.setdefault(_kind(name), []).append(name)
    levels = {kind: _common_levels(space, kind, names) for kind, names in kinds.items()}
    out: list[tuple[str, Config]] = []
    for combo in itertools.product(*levels.values()):
        setting = dict(zip(kinds, combo))
        label = ", ".join(f"{kind}={value}" for kind, value in setting.items())
        values = {name: setting[kind] for kind, names in kinds.items() for name in names}
        out.append((label, {**config, **values}))
    return out


def _common_levels(space: SearchSpace, kind: str, names: Sequence[str]) -> list[Any]:
    params = [_ordinal(space, n) for n in names]
    common = [v for v in params[0].values if all(p.contains(v) for p in params)]
    if any(len(p.values) > len(common) for p in params):
        logger.debug("uniform_configs: %s levels not on every layer skipped", kind)
    return common


# Additive proxy -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layer:
    """One layer's options: knob values, and each option's error and cost, measured alone."""

    name: str
    options: list[dict[str, Any]]
    base_index: int
    error: FloatArray
    cost: FloatArray


@dataclass(frozen=True)
class _Measured:
    base: Config
    base_error: float
    base_cost: float
    layers: list[_Layer]
    calls: int
    cost_calls: int
    cost_additive: bool

    def delta(self, attr: str) -> list[FloatArray]:
        ref = self.base_error if attr == "error" else self.base_cost
        return [getattr(layer, attr) - ref for layer in self.layers]


def additive_proxy(
    space: SearchSpace,
    error_fn: Metric,
    cost_fn: Metric,
    *,
    budgets: Sequence[float],
    base: Mapping[str, Any] | None = None,
    checks: int = 5,
    seed: int = 0,
    batch: Batch | None = None,
) -> ProxyResult:
    """The Config minimizing the summed per-layer error within each cost budget.

    Every layer's option is measured alone from ``base``; then, for each budget, an exact
    multiple-choice knapsack picks one option per layer minimizing ``base error + sum of the
    layers' error increases`` subject to ``base cost + sum of cost changes <= budget`` (up to
    a relative 1e-9 for rounding). It runs in well under a second for 40 layers x 8 options.

    Args:
        space: A space with per-layer Ordinal knobs.
        error_fn: ``config -> error`` (lower is better; e.g. ``1 - accuracy``, loss).
        cost_fn: ``config -> cost`` (size, bit-ops, ...), assumed additive over layers: checked
            on ``checks`` random Configs, with a logged warning if it is not.
        budgets: Upper bounds on the total cost, each positive.
        base: The Config layers change from; default: the dearest option of every layer by
            ``cost_fn`` (the least compressed), other parameters as in :func:`default_config`.
        checks: Random Configs on which the additivity of ``cost_fn`` is checked.
        seed: Seed of those random Configs.
        batch: ``configs -> errors`` measuring many Configs at once, in order (on a worker
            pool: ``tradeoff.workers.evaluate_all``); used instead of ``error_fn`` when given.

    Returns:
        The proxy optimum per budget, the ``error_fn`` calls it took and the per-layer table.

    Raises:
        TypeError: a function is not callable, or ``space``/``base`` has the wrong type.
        ValueError: no budgets, a budget not positive and finite, no per-layer Ordinal knob,
            ``base`` outside ``space``, or a function returning a non-finite value.
    """
    wanted = _check_budgets(budgets)
    measured = _measure(space, error_fn, cost_fn, base=base, checks=checks, seed=seed, batch=batch)
    return _solve(measured, wanted, dedupe=False)


def additive_proxy_front(
    space: SearchSpace,
    error_fn: Metric,
    cost_fn: Metric,
    *,
    n_points: int = 20,
    base: Mapping[str, Any] | None = None,
    checks: int = 5,
    seed: int = 0,
    batch: Batch | None = None,
) -> ProxyResult:
    """The additive-proxy optima at ``n_points`` budgets evenly spread from the cheapest to the
    dearest total cost, one entry per distinct Config (at the lowest budget giving it).

    Arguments as in :func:`additive_proxy`; ``n_points`` must be at least 2.
    """
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}.")
    measured = _measure(space, error_fn, cost_fn, base=base, checks=checks, seed=seed, batch=batch)
    deltas = measured.delta("cost")
    low = measured.base_cost + sum(float(d.min()) for d in deltas)
    high = measured.base_cost + sum(float(d.max()) for d in deltas)
    return _solve(measured, [float(b) for b in np.linspace(low, high, n_points)], dedupe=True)


def _check_budgets(budgets: Sequence[float]) -> list[float]:
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, (Sequence, np.ndarray)):
        raise TypeError(f"budgets must be a list of numbers, got {budgets!r}.")
    values = list(budgets)
    if not values:
        raise ValueError("budgets is empty: give at least one cost bound, e.g. budgets=[50.0].")
    if not all(_number(b) and b > 0 for b in values):
        raise ValueError(f"Every budget must be a positive finite number; got {values!r}.")
    return [float(b) for b in values]


def _number(value: Any) -> bool:
    real = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return real and math.isfinite(float(value))


def _call(fn: Metric, config: Config, what: str) -> float:
    value = fn(config)
    if not _number(value):
        raise ValueError(f"{what} must return a finite number, got {value!r} for {config}.")
    return float(value)


def _measure(
    space: SearchSpace,
    error_fn: Metric,
    cost_fn: Metric,
    *,
    base: Mapping[str, Any] | None,
    checks: int,
    seed: int,
    batch: Batch | None = None,
) -> _Measured:
    for what, fn in (("error_fn", error_fn), ("cost_fn", cost_fn)):
        if not callable(fn):
            raise TypeError(f"{what} must be a function config -> float, got {fn!r}.")
    if batch is not None and not callable(batch):
        raise TypeError(f"batch must be a function configs -> errors, got {batch!r}.")
    if isinstance(checks, bool) or not isinstance(checks, int) or checks < 0:
        raise ValueError(f"checks must be an integer >= 0, got {checks!r}.")
    knobs = layer_knobs(space, choices=True)
    options = {layer: _options(space, names) for layer, names in knobs.items()}
    start = default_config(space, base)
    cost_calls = 0
    if base is None:
        start, cost_calls = _dearest(start, options, cost_fn)
    base_cost = _call(cost_fn, start, "cost_fn")
    bases = {layer: _base_index(space, start, opts) for layer, opts in options.items()}
    changed = [  # every option of every layer but the base's own, measured alone
        {**start, **option}
        for layer, opts in options.items()
        for i, option in enumerate(opts)
        if i != bases[layer]
    ]
    errors = iter(_errors(error_fn, batch, [start, *changed]))
    base_error = next(errors)
    layers = []
    for layer, opts in options.items():
        error, cost = np.full(len(opts), base_error), np.full(len(opts), base_cost)
        for i, option in enumerate(opts):
            if i != bases[layer]:
                error[i] = next(errors)
                cost[i] = _call(cost_fn, {**start, **option}, "cost_fn")
        layers.append(_Layer(layer, opts, bases[layer], error, cost))
    additive = _check_additive(start, base_cost, layers, cost_fn, checks=checks, seed=seed)
    cost_calls += 1 + len(changed) + checks
    return _Measured(start, base_error, base_cost, layers, 1 + len(changed), cost_calls, additive)


def _errors(error_fn: Metric, batch: Batch | None, configs: list[Config]) -> list[float]:
    """``error_fn`` of each Config, or ``batch`` of all of them; each checked finite."""
    if batch is None:
        return [_call(error_fn, config, "error_fn") for config in configs]
    values = list(batch(configs))
    if len(values) != len(configs):
        raise ValueError(f"batch returned {len(values)} errors for {len(configs)} Configs.")
    for value, config in zip(values, configs):
        if not _number(value):
            raise ValueError(f"batch must return finite numbers, got {value!r} for {config}.")
    return [float(v) for v in values]


def _options(space: SearchSpace, names: Sequence[str]) -> list[dict[str, Any]]:
    """The layer's options: the product of its knobs' levels (last knob varying fastest)."""
    levels = [_levels(space, n) for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*levels)]


def _levels(space: SearchSpace, name: str) -> list[Any]:
    param = space[name]
    assert isinstance(param, (Ordinal, Choice))  # what layer_knobs keeps
    return list(param.values)


def _ordinal(space: SearchSpace, name: str) -> Ordinal:
    param = space[name]
    assert isinstance(param, Ordinal)  # layer_knobs keeps Ordinals only
    return param


def _dearest(
    start: Config, options: Mapping[str, list[dict[str, Any]]], cost_fn: Metric
) -> tuple[Config, int]:
    """``start`` with every layer at its dearest option (each costed alone from ``start``;
    the first of tied options), and the ``cost_fn`` calls that took."""
    picks: Config = {}
    for opts in options.values():
        costs = [_call(cost_fn, {**start, **o}, "cost_fn") for o in opts]
        picks.update(opts[int(np.argmax(costs))])
    return {**start, **picks}, sum(len(opts) for opts in options.values())


def _base_index(space: SearchSpace, base: Config, options: list[dict[str, Any]]) -> int:
    """Which of a layer's ``options`` ``base`` takes."""
    names = list(options[0])
    levels = [_levels(space, n) for n in names]
    position = tuple(values.index(base[n]) for n, values in zip(names, levels))
    return int(np.ravel_multi_index(position, tuple(len(values) for values in levels)))


def _check_additive(
    base: Config, base_cost: float, layers: list[_Layer], cost_fn: Metric, *, checks: int, seed: int
) -> bool:
    """Whether ``cost_fn`` equals the summed cost on ``checks`` random Configs (warns if not)."""
    rng = np.random.default_rng(seed)
    misses = []
    for _ in range(checks):
        picks = [int(rng.integers(len(layer.options))) for layer in layers]
        config = dict(base)
        for layer, pick in zip(layers, picks):
            config.update(layer.options[pick])
        summed = base_cost + sum(layer.cost[p] - base_cost for layer, p in zip(layers, picks))
        actual = _call(cost_fn, config, "cost_fn")
        if not math.isclose(actual, summed, rel_tol=_ADDITIVITY_RTOL, abs_tol=1e-12):
            misses.append(f"{config} costs {actual:g}, its layers' changes sum to {summed:g}")
    if misses:
        logger.warning(
            "additive_proxy: cost_fn is not additive over layers (%d of %d random Configs), "
            "e.g. %s. Budgets bound the summed cost; check the returned Configs' own cost.",
            len(misses),
            checks,
            misses[0],
        )
    return not misses


# Exact multiple-choice knapsack ---------------------------------------------------------------
def knapsack_front(
    costs: Sequence[FloatArray], errors: Sequence[FloatArray]
) -> tuple[FloatArray, FloatArray, list[NDArray[np.intp]]]:
    """All Pareto-optimal (total cost, total error) of picking one option per group.

    Exact dynamic programming over groups that keeps only non-dominated partial sums, so any
    real costs work (no grid). ``costs[g]``, ``errors[g]``: ``(options_g,)`` per group ``g``.

    Returns:
        ``(cost, error, parents)``: the front by ascending cost (``(m,)`` each, error strictly
        decreasing) and, per group, ``(m_g,)`` flat indices ``parent state * options + option``
        of the states kept after that group.
    """
    cost, err = np.zeros(1), np.zeros(1)
    parents: list[NDArray[np.intp]] = []
    for dc, de in zip(costs, errors):
        c = (cost[:, None] + dc[None, :]).ravel()
        e = (err[:, None] + de[None, :]).ravel()
        order = np.lexsort((e, c))  # by cost, then error
        keep = e[order] < np.minimum.accumulate(np.r_[np.inf, e[order][:-1]])
        kept = order[keep]
        parents.append(kept)
        cost, err = c[kept], e[kept]
    return cost, err, parents


def _solve(measured: _Measured, budgets: Sequence[float], *, dedupe: bool) -> ProxyResult:
    cost, err, parents = knapsack_front(measured.delta("cost"), measured.delta("error"))
    # The dearest front point within the budget has the least error (error falls with cost).
    slack = [b - measured.base_cost + 1e-9 * (abs(b) + abs(measured.base_cost)) for b in budgets]
    states = [int(i) - 1 for i in np.searchsorted(cost, slack, side="right")]
    found = [(b, s) for b, s in zip(budgets, states) if s >= 0]
    if dedupe:  # budgets ascend: keep each front point at the first budget reaching it
        first: dict[int, float] = {}
        found = [(first.setdefault(s, b), s) for b, s in found if s not in first]
    return ProxyResult(
        configs=[(b, _config_at(measured, parents, s)) for b, s in found],
        predicted_error=[measured.base_error + float(err[s]) for _, s in found],
        predicted_cost=[measured.base_cost + float(cost[s]) for _, s in found],
        infeasible=[b for b, s in zip(budgets, states) if s < 0],
        calls=measured.calls,
        cost_calls=measured.cost_calls,
        cost_additive=measured.cost_additive,
        base=measured.base,
        base_error=measured.base_error,
        table=_table(measured),
    )


def _config_at(measured: _Measured, parents: list[NDArray[np.intp]], state: int) -> Config:
    """The Config of front point ``state``: backtrack the option picked in each layer."""
    config = dict(measured.base)
    for layer, kept in zip(reversed(measured.layers), reversed(parents)):
        state, option = divmod(int(kept[state]), len(layer.options))
        config.update(layer.options[option])
    return config


def _table(measured: _Measured) -> pd.DataFrame:
    rows = []
    for layer in measured.layers:
        for i, option in enumerate(layer.options):
            knobs = {_kind(name): value for name, value in option.items()}
            rows.append(
                {
                    "layer": layer.name,
                    "option": ", ".join(f"{k}={v}" for k, v in knobs.items()),
                    **knobs,
                    "error": float(layer.error[i]),
                    "delta_error": float(layer.error[i] - measured.base_error),
                    "cost": float(layer.cost[i]),
                    "delta_cost": float(layer.cost[i] - measured.base_cost),
                    "is_base": i == layer.base_index,
                }
            )
    return pd.DataFrame(rows)


# Domination report ----------------------------------------------------------------------------
def dominated_by(
    front: Sequence[Sequence[float]] | FloatArray,
    points: Sequence[Sequence[float]] | FloatArray,
    directions: Sequence[str],
) -> list[list[int]]:
    """For each of ``points`` (baselines), the rows of ``front`` that dominate it: no worse in
    every objective and better in one, in the objectives' own ``directions``.

    Args:
        front: ``(n, k)`` objective values, e.g. the Pareto set of a search.
        points: ``(m, k)`` objective values to compare; a row with a NaN is dominated by none.
        directions: ``k`` of ``"minimize"`` / ``"maximize"``.

    Returns:
        ``m`` lists of row indices into ``front``, ascending.

    Raises:
        ValueError: the shapes do not match ``directions``, or a direction is unknown.
    """
    k = len(directions)
    if any(d not in ("minimize", "maximize") for d in directions):
        raise ValueError(f"directions must be 'minimize' or 'maximize', got {list(directions)}.")
    a, b = (_rows(x, k, what) for x, what in ((front, "front"), (points, "points")))
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    a, b = a * sign, b * sign
    no_worse = np.all(a[:, None, :] <= b[None, :, :], axis=2)
    better = np.any(a[:, None, :] < b[None, :, :], axis=2)
    hits = no_worse & better  # (n, m); NaN compares False, so a NaN row is dominated by none
    return [[int(i) for i in np.flatnonzero(hits[:, j])] for j in range(len(b))]


def _rows(values: Any, k: int, what: str) -> FloatArray:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return np.empty((0, k))
    if arr.ndim != 2 or arr.shape[1] != k:
        raise ValueError(f"{what} must be (n, {k}) values, one per direction; got {arr.shape}.")
    return arr
