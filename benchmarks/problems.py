"""Benchmark problems whose true Pareto fronts are known exactly, for ``optimizers.py``.

Each :class:`Problem` has a tradeoff ``SearchSpace``, its objectives (known costs carry
``fn=``, every objective carries its reference coordinate), optional constraints, and the
hypervolume of its true front against that fixed reference point:

* ``zdt1``, ``zdt2``: 10 variables, 2 objectives, reference (1.1, 1.1). Closed form
  ``1.21 - 1/3`` and ``1.21 - 2/3``, bracketed by a 2,001-point grid on the front.
* ``dtlz2``: 7 variables, 3 objectives, front = the unit sphere's positive octant; closed form
  ``1.1^3 - pi/6``, bracketed by a grid on the sphere.
* ``bits8``: per-layer bit-widths (2, 3, 4, 8) of 8 layers with interacting errors (not
  additive over layers); error measured, size a known cost. All 65,536 Configs enumerated;
  ``front_check`` also says how much of the front an additive error model's picks reach.
* ``bits8-budget``: the same under a size budget (a known-cost constraint).
* ``digits``: bits (2, 4, 8) x sparsity (0, 0.5) of a 4-layer MLP trained on scikit-learn's
  offline 8x8 digits; accuracy and ``weight_storage_bytes`` of all 1,296 Configs are measured
  once, cached, then looked up.

Enumerated problems put the reference at the true front's nadir plus 10% of its range (the
rule that gives ZDT's and DTLZ2's (1.1, ...) too). ``python benchmarks/problems.py`` prints
every problem with its front check.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from tradeoff._pareto import hypervolume, to_minimization
from tradeoff.objectives import Constraint, Objective
from tradeoff.spaces import Config, Float, Ordinal, SearchSpace

CACHE = Path(os.environ.get("TRADEOFF_CACHE", Path.home() / ".cache" / "tradeoff"))
FloatArray = NDArray[np.float64]
Evaluate = Callable[[Config], dict[str, float]]
Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem and the hypervolume of its true front.

    Attributes:
        name: Identifier (``--problems``).
        description: One line.
        space: What to search.
        objectives: In order; known costs have ``fn``; each has its ``reference`` coordinate.
        evaluate: ``config -> {measured objective: value}``.
        true_hv: Hypervolume of the true (feasible) front against :attr:`reference`.
        constraints: Hard bounds; infeasible values count for nothing.
        front_check: How ``true_hv`` was obtained and checked (for the report).
    """

    name: str
    description: str
    space: SearchSpace
    objectives: tuple[Objective, ...]
    evaluate: Evaluate
    true_hv: float
    constraints: tuple[Constraint, ...] = ()
    front_check: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def directions(self) -> list[Direction]:
        return [o.direction for o in self.objectives]

    @property
    def reference(self) -> list[float]:
        """The reference point in the objectives' own units and directions."""
        return [float(o.reference) for o in self.objectives if o.reference is not None]

    def values(self, config: Config) -> list[float]:
        """All objective values of ``config`` in order: known costs and measured ones."""
        measured = self.evaluate(config)
        return [o.fn(config) if o.fn is not None else measured[o.name] for o in self.objectives]

    def violations(self, values: Iterable[float]) -> list[float]:
        """Constraint values (``<= 0`` when satisfied), in constraint order."""
        named = dict(zip(self.names, values))
        return [c.violation(named[c.name]) for c in self.constraints]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable description (for the report)."""
        return {
            "description": self.description,
            "parameters": len(self.space),
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "reference": self.reference,
            "true_hv": self.true_hv,
            "front_check": self.front_check,
        }

    def hv_fraction(self, values: FloatArray) -> float:
        """Hypervolume of ``values`` (``(n, n_objectives)``, own directions; infeasible rows are
        dropped) as a fraction of the true front's."""
        y = np.asarray(values, dtype=float).reshape(-1, len(self.objectives))
        feasible = [all(v <= 0 for v in self.violations(row)) for row in y]
        return _hv(y[np.array(feasible, dtype=bool)], self) / self.true_hv


# Helpers ------------------------------------------------------------------------------------
def _hv(values: FloatArray, problem: Problem) -> float:
    directions = problem.directions
    ref = to_minimization(np.array([problem.reference]), directions)[0]
    return hypervolume(to_minimization(values, directions), ref)


def _front_2d(y: FloatArray) -> FloatArray:
    """Non-dominated rows of a 2-objective minimization array ``(n, 2)``, in ``O(n log n)``
    (one of each set of duplicates)."""
    return y[_front_index_2d(y)]


def _front_index_2d(y: FloatArray) -> NDArray[np.intp]:
    order = np.lexsort((y[:, 1], y[:, 0]))
    second = y[order, 1]
    keep = second < np.minimum.accumulate(np.r_[np.inf, second[:-1]])
    return np.asarray(order[keep], dtype=np.intp)


def _nadir_reference(front_min: FloatArray, directions: Sequence[str]) -> list[float]:
    """Nadir + 10% of the range, per objective, back in the objectives' own directions."""
    worst, best = front_min.max(axis=0), front_min.min(axis=0)
    ref_min = worst + 0.1 * np.where(worst > best, worst - best, 1.0)
    return [float(v) for v in to_minimization(ref_min[None, :], directions)[0]]


def _check_bracket(
    name: str, exact: float, lower: float, upper: float, points: int
) -> dict[str, Any]:
    if not lower <= exact <= upper:
        raise RuntimeError(f"{name}: closed-form HV {exact} outside the grid's [{lower}, {upper}]")
    return {
        "method": "closed form, bracketed by a grid on the front",
        "closed_form": exact,
        "grid_points": points,
        "grid_lower": lower,
        "grid_upper": upper,
    }


def _with_reference(
    objectives: Iterable[Objective], reference: Sequence[float]
) -> tuple[Objective, ...]:
    return tuple(
        Objective(o.name, o.direction, fn=o.fn, reference=r) for o, r in zip(objectives, reference)
    )


# ZDT and DTLZ2 ------------------------------------------------------------------------------
ZDT_VARS = 10
DTLZ_VARS = 7


def _zdt(name: str, shape: Callable[[float], float], area_under: float) -> Problem:
    """ZDT with front ``f2 = 1 - shape(f1)``; ``area_under`` = the integral of that front."""

    def evaluate(config: Config) -> dict[str, float]:
        x = [config[f"x{i}"] for i in range(ZDT_VARS)]
        g = 1.0 + 9.0 * sum(x[1:]) / (ZDT_VARS - 1)
        return {"f1": x[0], "f2": g * (1.0 - shape(x[0] / g))}

    f1 = np.linspace(0.0, 1.0, 2001)
    front = np.stack([f1, 1.0 - np.array([shape(v) for v in f1])], axis=1)
    corners = np.stack([front[:-1, 0], front[1:, 1]], axis=1)  # dominate the front between
    ref = np.array([1.1, 1.1])
    exact = 1.1 * 1.1 - area_under
    check = _check_bracket(
        name, exact, hypervolume(front, ref), hypervolume(corners, ref), len(front)
    )
    return Problem(
        name=name,
        description=f"{name.upper()}, {ZDT_VARS} variables, 2 objectives",
        space=SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(ZDT_VARS)}),
        objectives=(Objective("f1", reference=1.1), Objective("f2", reference=1.1)),
        evaluate=evaluate,
        true_hv=exact,
        front_check=check,
    )


def zdt1() -> Problem:
    return _zdt("zdt1", math.sqrt, 1.0 / 3.0)


def zdt2() -> Problem:
    return _zdt("zdt2", lambda v: v * v, 2.0 / 3.0)


def _sphere(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.stack([np.cos(a) * np.cos(b), np.cos(a) * np.sin(b), np.sin(a)], axis=-1)


def dtlz2() -> Problem:
    """DTLZ2, 3 objectives; the front is ``||f|| = 1``, ``f >= 0``."""

    def evaluate(config: Config) -> dict[str, float]:
        x = [config[f"x{i}"] for i in range(DTLZ_VARS)]
        g = sum((v - 0.5) ** 2 for v in x[2:])
        f = (1.0 + g) * _sphere(np.array(x[0] * math.pi / 2), np.array(x[1] * math.pi / 2))
        return {"f1": float(f[0]), "f2": float(f[1]), "f3": float(f[2])}

    n = 24  # the exact 3-D hypervolume costs O(n^4) here; the closed form is the truth
    a, b = np.meshgrid(np.linspace(0, math.pi / 2, n), np.linspace(0, math.pi / 2, n))
    front = _sphere(a, b).reshape(-1, 3)
    # Each f_i is monotone in each angle, so a cell's componentwise minimum over its four
    # corners dominates the whole patch: those points bound the hypervolume from above.
    cells = _sphere(a, b)
    quad = np.stack([cells[:-1, :-1], cells[1:, :-1], cells[:-1, 1:], cells[1:, 1:]])
    corners = quad.min(axis=0).reshape(-1, 3)
    ref = np.full(3, 1.1)
    exact = 1.1**3 - math.pi / 6
    check = _check_bracket(
        "dtlz2", exact, hypervolume(front, ref), hypervolume(corners, ref), len(front)
    )
    return Problem(
        name="dtlz2",
        description=f"DTLZ2, {DTLZ_VARS} variables, 3 objectives",
        space=SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(DTLZ_VARS)}),
        objectives=tuple(Objective(f"f{i}", reference=1.1) for i in (1, 2, 3)),
        evaluate=evaluate,
        true_hv=exact,
        front_check=check,
    )


# Bit-width allocation with interacting layers ----------------------------------------------
BITS = (2, 3, 4, 8)
N_LAYERS = 8
BUDGET_BITS = 3.5  # bits8-budget: size <= this average width


@dataclass(frozen=True)
class BitModel:
    """A synthetic quantized network whose ``error`` is not a sum over layers.

    ``e_i(b) = min(0.9, 0.1 * s_i * 4^-(b - 2))`` (quantization noise power falls 4x per bit),
    ``error = 1 - prod_i (1 - e_i) + sum_i g_i * sqrt(e_i * e_{i+1})``, clipped to [0, 1]: errors
    compound multiplicatively, and two adjacent low-precision layers hurt more (``g_i > 0``)
    or less (``g_i < 0``, errors partly cancel) than apart, as EvoPress measured on LLMs.
    Sizes ``n_i`` (millions of weights), sensitivities ``s_i`` and ``g_i`` in [-1, 1] are
    drawn from seed 7.
    """

    n: FloatArray
    s: FloatArray
    g: FloatArray

    @classmethod
    def draw(cls, seed: int = 7) -> BitModel:
        rng = np.random.default_rng(seed)
        n = rng.choice([0.5, 1.0, 2.0, 4.0], size=N_LAYERS)
        return cls(n, rng.lognormal(0.0, 0.7, N_LAYERS), rng.uniform(-1.0, 1.0, N_LAYERS - 1))

    def layer_errors(self, bits: FloatArray) -> FloatArray:
        """``bits``: ``(..., N_LAYERS)`` widths -> each layer's own error ``e_i``, same shape."""
        return np.minimum(0.9, 0.1 * self.s * 4.0 ** (2.0 - np.asarray(bits, dtype=float)))

    def error(self, bits: FloatArray) -> FloatArray:
        """``bits``: ``(..., N_LAYERS)`` widths -> error ``(...)``."""
        e = self.layer_errors(bits)
        pairs = (self.g * np.sqrt(e[..., :-1] * e[..., 1:])).sum(axis=-1)
        return np.asarray(np.clip(1.0 - np.prod(1.0 - e, axis=-1) + pairs, 0.0, 1.0))

    def size_mb(self, bits: FloatArray) -> FloatArray:
        return np.asarray(np.asarray(bits, dtype=float) @ self.n / 8.0)


def _bits_problem(name: str, budget: bool) -> Problem:
    model = BitModel.draw()
    keys = [f"layer{i}.bits" for i in range(N_LAYERS)]

    def bits_of(config: Mapping[str, Any]) -> FloatArray:
        return np.array([config[k] for k in keys], dtype=float)

    def evaluate(config: Config) -> dict[str, float]:
        return {"error": float(model.error(bits_of(config)))}

    grid = np.array(list(itertools.product(BITS, repeat=N_LAYERS)), dtype=float)
    limit = float(model.size_mb(np.full(N_LAYERS, BUDGET_BITS)))
    if budget:
        grid = grid[model.size_mb(grid) <= limit]
    y = np.stack([model.error(grid), model.size_mb(grid)], axis=1)
    front = _front_2d(y)
    unreferenced = (
        Objective("error"),
        Objective("size_mb", fn=lambda c: float(model.size_mb(bits_of(c)))),
    )
    objectives = _with_reference(unreferenced, _nadir_reference(front, ["minimize"] * 2))
    where = f", size <= {limit:g} MB ({BUDGET_BITS} bits on average)" if budget else ""
    problem = Problem(
        name=name,
        description=f"{N_LAYERS}-layer bit allocation {BITS}, interacting errors{where}",
        space=SearchSpace({k: Ordinal(list(BITS)) for k in keys}),
        objectives=objectives,
        evaluate=evaluate,
        true_hv=1.0,
        constraints=(Constraint("size_mb", "<=", limit),) if budget else (),
    )
    problem = _enumerated(problem, front, len(BITS) ** N_LAYERS, len(grid))
    # How much an additive error model (sum of e_i) misses: its Pareto-optimal Configs,
    # scored with the true error.
    proxy = np.stack([model.layer_errors(grid).sum(axis=1), y[:, 1]], axis=1)
    additive = problem.hv_fraction(y[_front_index_2d(proxy)])
    return replace(problem, front_check={**problem.front_check, "additive_proxy_hv": additive})


def _enumerated(
    problem: Problem, front_min: FloatArray, configs: int, feasible: int, **meta: Any
) -> Problem:
    """``problem`` with the hypervolume of its enumerated front (minimization form)."""
    ref = to_minimization(np.array([problem.reference]), problem.directions)[0]
    check = {
        "method": "exact enumeration",
        "configs": configs,
        "feasible_configs": feasible,
        "front_size": len(front_min),
        **meta,
    }
    return replace(problem, true_hv=hypervolume(front_min, ref), front_check=check)


def bits8() -> Problem:
    return _bits_problem("bits8", budget=False)


def bits8_budget() -> Problem:
    return _bits_problem("bits8-budget", budget=True)


# A real model: an MLP on the offline 8x8 digits -------------------------------------------
DIGITS_BITS = (2, 4, 8)
DIGITS_SPARSITY = (0.0, 0.5)
DIGITS_WIDTHS = (64, 128, 64, 32, 10)
DIGITS_TABLE = CACHE / "digits_mlp_table_v1.json"


def digits() -> Problem:
    """Per-layer bits x sparsity of a trained 4-layer MLP, evaluated by table look-up."""
    space, table = _digits_table()
    lookup = {_key(space, row["config"]): row for row in table["rows"]}

    def evaluate(config: Config) -> dict[str, float]:
        return {"accuracy": lookup[_key(space, config)]["accuracy"]}

    objectives = (
        Objective("accuracy", "maximize"),
        Objective("weight_kb", fn=lambda c: lookup[_key(space, c)]["weight_kb"]),
    )
    values = np.array([[r["accuracy"], r["weight_kb"]] for r in table["rows"]])
    directions = [o.direction for o in objectives]
    front = _front_2d(to_minimization(values, directions))
    problem = Problem(
        name="digits",
        description="MLP 64-128-64-32-10 on sklearn digits, bits (2,4,8) x sparsity (0,0.5)",
        space=space,
        objectives=_with_reference(objectives, _nadir_reference(front, directions)),
        evaluate=evaluate,
        true_hv=1.0,
    )
    return _enumerated(problem, front, len(values), len(values), **table["meta"])


def _key(space: SearchSpace, config: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(config[k] for k in space)


def _digits_table() -> tuple[SearchSpace, dict[str, Any]]:
    """The space, and every Config's accuracy and weight KB (measured once, then cached)."""
    from tradeoff.spaces import PruningSpace, QuantizationSpace

    model = _digits_mlp()
    space = SearchSpace.merge(
        prune=PruningSpace.for_model(model, sparsity=DIGITS_SPARSITY),
        quant=QuantizationSpace.for_model(model, bits=DIGITS_BITS),
    )
    if DIGITS_TABLE.exists():
        return space, json.loads(DIGITS_TABLE.read_text())
    data = _digits_data()
    _train(model, data[0], data[1])
    levels = [p.values for p in space.values() if isinstance(p, Ordinal)]
    configs = [dict(zip(space, combo)) for combo in itertools.product(*levels)]
    rows = [{"config": c, **_measure(space.apply(model, c), data)} for c in configs]
    meta = {"table": str(DIGITS_TABLE), "float_accuracy": _measure(model, data)["accuracy"]}
    table = {"meta": {**meta, "test_size": len(data[3])}, "rows": rows}
    DIGITS_TABLE.parent.mkdir(parents=True, exist_ok=True)
    DIGITS_TABLE.write_text(json.dumps(table))
    return space, table


def _digits_data() -> tuple[Any, Any, Any, Any]:
    """``(x_train, y_train, x_test, y_test)``: a seeded 70/30 split of the 1,797 digits."""
    import torch
    from sklearn.datasets import load_digits

    digits_data = load_digits()  # ships with scikit-learn: no download
    x = torch.tensor(digits_data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits_data.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(0.7 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def _digits_mlp() -> Any:
    """The untrained MLP (layers ``0``, ``2``, ``4``, ``6``), seeded."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(DIGITS_WIDTHS)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(DIGITS_WIDTHS) - 2 else [])
    return nn.Sequential(*layers)


def _train(model: Any, x: Any, y: Any, *, epochs: int = 30) -> None:
    """Seeded Adam on CPU; leaves ``model`` in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=batches).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def _measure(model: Any, data: tuple[Any, Any, Any, Any]) -> dict[str, float]:
    import torch

    from tradeoff.objectives import weight_storage_bytes

    with torch.no_grad():
        hits = int((model(data[2]).argmax(1) == data[3]).sum())
    return {"accuracy": hits / len(data[3]), "weight_kb": weight_storage_bytes(model) / 1024}


# Registry -----------------------------------------------------------------------------------
PROBLEMS: dict[str, Callable[[], Problem]] = {
    "zdt1": zdt1,
    "zdt2": zdt2,
    "dtlz2": dtlz2,
    "bits8": bits8,
    "bits8-budget": bits8_budget,
    "digits": digits,
}


def make_problems(names: Iterable[str] | None = None) -> list[Problem]:
    """Build the named problems (all by default), checking each true front.

    Raises:
        ValueError: an unknown name.
    """
    names = list(PROBLEMS) if names is None else list(names)
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        raise ValueError(f"Unknown problem(s) {unknown}; choose from {list(PROBLEMS)}.")
    return [PROBLEMS[n]() for n in names]


if __name__ == "__main__":
    for p in make_problems():
        print(f"{p.name:<13} {p.description}")
        print(f"{'':<13} reference {[round(r, 4) for r in p.reference]}, true HV {p.true_hv:.6g}")
        print(f"{'':<13} {p.front_check}")
