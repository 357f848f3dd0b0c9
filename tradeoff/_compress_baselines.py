"""The baselines of :func:`~tradeoff.compress`: the dense model, the uniform levels and the
additive-proxy knapsack, measured with the search's own evaluation (on its workers), read from
the study's trials where one ran the same Config, and recorded on the study for a resumed call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from tradeoff._compress_eval import CompressEvaluate, config_key
from tradeoff._result import SearchResult
from tradeoff.objectives import Constraint, Objective
from tradeoff.search._baselines import ProxyResult, additive_proxy
from tradeoff.spaces import Config, SearchSpace
from tradeoff.workers import WorkerPool, evaluate_all
from tradeoff.workers._base import AtBudget

logger = logging.getLogger("tradeoff")

BASELINES_ATTR = "tradeoff.compress.baselines"  # measured baselines, reused on resume
STARTS = "additive proxy starts"  # the knapsack Configs the search started from, in that attr

Level = tuple[str, Config, dict[str, float]]  # (label, Config, known costs)


def meets(values: Mapping[str, float], constraints: Sequence[Constraint]) -> bool:
    return all(c.violation(values[c.name]) <= 0 for c in constraints if c.name in values)


def excess(values: Mapping[str, float], constraints: Sequence[Constraint]) -> float:
    return sum(max(0.0, c.violation(values[c.name])) / abs(c.bound or 1.0) for c in constraints)


def all_kept(config: Mapping[str, Any]) -> bool:
    return all(v for k, v in config.items() if k.endswith(".keep"))


def budget_texts(bounds: Sequence[float]) -> list[str]:
    """``bounds`` (distinct) as text: 4 significant digits, more where two would read alike."""
    for digits in range(4, 18):
        texts = [f"{b:.{digits}g}" for b in bounds]
        if len(set(texts)) == len(texts):
            break
    return texts


def _merge_same(
    rows: list[dict[str, Any]], cost: str, texts: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per distinct proxy Config: budgets that gave the same one (``texts``, one per
    row) share a row, labelled with the range of those budgets."""
    out: list[dict[str, Any]] = []
    bounds: list[list[str]] = []
    for row, text in zip(rows, texts):
        if out and row["config"] is not None and row["config"] == out[-1]["config"]:
            bounds[-1].append(text)
            continue
        out.append(dict(row))
        bounds.append([text])
    for row, seen in zip(out, bounds):
        ends = dict.fromkeys((seen[0], seen[-1]))  # one number when both ends read the same
        row["baseline"] = f"additive proxy, {cost} <= {'..'.join(ends)}"
    return out


# Baselines --------------------------------------------------------------------------------------
class Baselines:
    """Measures baselines at the full budget: from the study's trials where one ran the same
    Config, else from the study's record of an earlier call, else with ``evaluate`` here."""

    def __init__(
        self,
        evaluate: CompressEvaluate,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint],
        low: float | None,
        *,
        seed: int | None,
        pool: WorkerPool,
        stored: Mapping[str, Any],
    ) -> None:
        self.evaluate, self.constraints, self.pool = evaluate, constraints, pool
        self.quality = objectives[0].name
        self.costs = {o.name: o.fn for o in objectives if o.fn is not None}
        self.low = low  # the quality's budget the knapsack measures at (None: all of it)
        self.seed = seed or 0
        self.cache: dict[str, Any] = dict(stored)
        self.trials: dict[Hashable, tuple[int, float]] = {}

    def proxy_starts(
        self,
        space: SearchSpace,
        levels: Sequence[Level],
        budget: Mapping[str, float] | None,
        n_points: int = 10,
    ) -> list[Config]:
        """The additive-proxy knapsack's Configs at ``n_points`` budgets from the cheapest
        uniform level's cost to the budget (or the dearest level's), the budget itself among
        them; measured once (per-layer errors at ``low``) before the search, so the
        search starts from them, and recorded for the baselines table and a resumed call."""
        if STARTS in self.cache:
            return [dict(c) for c in self.cache[STARTS]]
        cost, bounds, labels, base = self._proxy_setting(levels, budget)
        kept = sorted(v[cost] for _, c, v in levels if all_kept(c))
        top = bounds[0] if budget and cost in budget else kept[-1]
        spread = [float(b) for b in np.linspace(kept[0], top, n_points)] if top > kept[0] else []
        try:
            found = self._run_proxy(space, cost, [*bounds, *spread], labels, base=base)
        except Exception as error:  # a per-layer measurement failed: report, go on
            logger.warning("compress: the additive-proxy baseline failed: %s", error)
            self.cache[labels[0]] = {"config": None, "failure": str(error)}
            return []
        starts = list({config_key(c): c for _, c in found.configs}.values())
        self.cache[STARTS] = starts
        return starts

    def attach(self, result: SearchResult) -> None:
        """Read the search's trials (baselines a trial measured are taken from it)."""
        self.result = result
        self.cache = {**dict(result.study.user_attrs.get(BASELINES_ATTR, {})), **self.cache}
        frame = result.trials
        self.trials = {
            config_key(config): (int(row["trial"]), float(row[self.quality]))
            for (_, row), config in zip(frame.iterrows(), result.configs(pareto=False))
            if row["status"] == "complete"
        }

    def dense(self, value: float, costs: Mapping[str, float]) -> dict[str, Any]:
        """The dense model's row: its quality ``value`` and known ``costs``."""
        return self._row("dense", "dense", None, {self.quality: value, **costs}, None, None)

    def uniform(self, levels: Sequence[Level]) -> list[dict[str, Any]]:
        rows = []
        for label, config, _ in levels:
            if all_kept(config):
                shown = ", ".join(p for p in label.split(", ") if not p.startswith("keep="))
                rows.append(self._measured(f"uniform {shown or 'dense'}", "uniform", config))
        return rows

    def proxy(
        self, space: SearchSpace, levels: Sequence[Level], budget: Mapping[str, float] | None
    ) -> list[dict[str, Any]]:
        """The additive-proxy knapsack at the budget (or at each uniform level's cost)."""
        cost, bounds, labels, base = self._proxy_setting(levels, budget)
        if not all(label in self.cache for label in labels):
            try:
                self._run_proxy(space, cost, bounds, labels, base=base)
            except Exception as error:  # a per-layer measurement failed: report, go on
                logger.warning("compress: the additive-proxy baseline failed: %s", error)
                return [self._row(labels[0], "proxy", None, {}, None, str(error))]
        rows = [
            self._measured(label, "proxy", self.cache[label]["config"])
            if self.cache[label].get("config") is not None
            else self._row(label, "proxy", None, {}, None, self.cache[label]["failure"])
            for label in labels
        ]
        return _merge_same(rows, cost, budget_texts(bounds))

    def save(self) -> None:
        self.result.study.set_user_attr(BASELINES_ATTR, self.cache)

    def _proxy_setting(
        self, levels: Sequence[Level], budget: Mapping[str, float] | None
    ) -> tuple[str, list[float], list[str], Config]:
        """(the cost it budgets, the baseline budgets, their labels, the Config it starts from)."""
        cost = next((n for n in (budget or {}) if n in self.costs), next(iter(self.costs)))
        kept = sorted(((v[cost], c) for _, c, v in levels if all_kept(c)), key=lambda x: x[0])
        bounds = [budget[cost]] if budget and cost in budget else [v for v, _ in kept[:-1]]
        bounds = list(dict.fromkeys(bounds))  # levels of one cost (both patterns at sparsity 0)
        labels = [f"additive proxy, {cost} <= {text}" for text in budget_texts(bounds)]
        return cost, bounds, labels, kept[-1][1]

    def _run_proxy(
        self, space: SearchSpace, cost: str, bounds: Sequence[float], labels: Sequence[str], *,
        base: Config,
    ) -> ProxyResult:  # fmt: skip
        """The knapsack at ``bounds`` (and any more budgets after them); the first
        ``len(labels)`` bounds are the baselines, cached under ``labels``."""
        sign = -1.0 if self.evaluate.quality.direction == "maximize" else 1.0

        def batch(configs: list[Config]) -> list[float]:  # on the workers, as trials run
            evaluate: Any = self.evaluate if self.low is None else AtBudget(self.evaluate)
            payloads = [
                c if self.low is None else {"config": c, "budget": self.low} for c in configs
            ]
            outcomes = evaluate_all(self.pool, evaluate, payloads)
            failed = next((o for o in outcomes if o.error is not None), None)
            if failed is not None:
                raise RuntimeError(str(failed.error).strip().splitlines()[-1])
            return [sign * float(o.metrics[self.quality]) for o in outcomes]

        cost_fn = self.costs[cost]
        assert cost_fn is not None
        budgets = sorted(set(bounds))
        found = additive_proxy(  # every error through batch: one path, on the workers
            space, lambda c: batch([c])[0], cost_fn, budgets=budgets, base=base,
            seed=self.seed, batch=batch,
        )  # fmt: skip
        by_bound = dict(found.configs)
        for bound, label in zip(bounds, labels):
            config = by_bound.get(bound)
            failure = None if config is not None else f"no Config has {cost} <= {bound:g}"
            self.cache[label] = {"config": config, "failure": failure}
        return found

    def _measured(self, label: str, kind: str, config: Config) -> dict[str, Any]:
        trial, value, failure = self._value(label, config)
        costs = {name: fn(config) for name, fn in self.costs.items() if fn is not None}
        return self._row(label, kind, trial, {self.quality: value, **costs}, config, failure)

    def _value(self, label: str, config: Config) -> tuple[int | None, float, str | None]:
        hit = self.trials.get(config_key(config))
        if hit is not None:
            return hit[0], hit[1], None
        cached = self.cache.get(label, {})
        if cached.get("config") == config and "value" in cached:
            return None, float(cached["value"]), None
        try:
            value = self.evaluate(config)[self.quality]
        except Exception as error:  # a non-finite quality: the row says why
            return None, math.nan, f"{type(error).__name__}: {error}"
        self.cache[label] = {**cached, "config": config, "value": value}
        return None, value, None

    def _row(
        self, label: str, kind: str, trial: int | None, values: Mapping[str, float],
        config: Config | None, failure: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        names = [self.quality, *self.costs]
        row = {n: float(values.get(n, math.nan)) for n in names}
        feasible = all(math.isfinite(v) for v in row.values()) and meets(row, self.constraints)
        return {
            "baseline": label, "kind": kind, "trial": trial, **row, "feasible": feasible,
            "config": config, "failure": failure,
        }  # fmt: skip
