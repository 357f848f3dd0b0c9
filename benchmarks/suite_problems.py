"""Public benchmark suites as they ship, for ``suites.py``: paretobench and COCO.

Nobody here wrote these problems; they are built from the installed packages (the ``bench``
extra: ``paretobench==0.9.0``, ``coco-experiment==2.8.2``), never copied.

* **paretobench** WFG1-9 (``n = 8`` variables, ``k = 4`` position-related) and DTLZ1-7
  (``n = 8``) at 2 and 3 objectives; the constrained CF1 and CF2 (2 objectives, ``n = 10``,
  paretobench's defaults) and DTLZ8, DTLZ9 (3 objectives, ``n = 9``). Score: hypervolume of
  the feasible evaluated points as a fraction of the true front's, against a fixed reference
  point = the front's nadir + 10% of its range (the rule of ``problems.py``). The front is
  paretobench's ``get_pareto_front`` (1,000 points at 2 objectives, >= 600 at 3); where the
  front has a closed form (DTLZ1-4, WFG4-9, and DTLZ5-6, WFG3 at 2 objectives:
  :func:`closed_form_hv`) that is the truth and the sampled front only checks it. Elsewhere
  (WFG1, WFG2, DTLZ7, CF, DTLZ8-9, and the degenerate 3-objective fronts) the sampled front's
  hypervolume is a lower bound of the true one (0.1% low at 2 objectives, ~3% at 3 where a
  closed form shows it), so a fraction there can slightly exceed 1.
* **COCO** ``bbob-biobj-mixint`` (``cocoex``): functions f001 (sphere/sphere), f028
  (Rosenbrock/Rosenbrock) and f046 (Rastrigin/Rastrigin), instance 1, dimension 5 (four integer
  variables with 2, 4, 8, 16 levels and one continuous in [-100, 100], the suite's own bounds).
  Score as COCO does: its ``bbob-biobj`` logger's hypervolume indicator ``I = ref - HV`` of all
  evaluations, objectives normalized so the ideal point is 0 and the nadir 1 (``I > ref``:
  no point inside the region of interest, ``I - ref`` = the normalized distance to it). cocoex
  2.8.2 compiles reference hypervolumes only for ``bbob-biobj`` (f01-f55); for every
  ``bbob-biobj-mixint`` problem its logger says "best value ... is not known; set to 1.0", so
  ``ref = 1`` and the score reported is ``1 - I``: the normalized hypervolume when inside the
  region of interest, minus the distance to it when not (higher is better, at most < 1).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tradeoff._pareto import hypervolume
from tradeoff.objectives import Constraint, Objective
from tradeoff.spaces import Config, Float, Int, SearchSpace

FloatArray = NDArray[np.float64]


class Cell:
    """One run's problem instance: ``evaluate`` records every evaluation, ``score`` reads them.

    ``rows`` holds ``(objectives..., violations...)`` per evaluation, violations ``<= 0`` when
    satisfied.
    """

    def __init__(self, problem: SuiteProblem) -> None:
        self.problem = problem
        self.rows: list[list[float]] = []

    def evaluate(self, config: Config) -> dict[str, float]:
        row = self._values(np.array([config[k] for k in self.problem.space], dtype=float))
        self.rows.append(row)
        return dict(zip(self.problem.metric_names, row))

    def _values(self, x: FloatArray) -> list[float]:
        raise NotImplementedError

    def score(self) -> dict[str, Any]:
        """``{"score": higher is better, ...}`` over every evaluation so far."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the cell holds (COCO's problem and logger)."""


@dataclass(frozen=True)
class SuiteProblem:
    """A public problem: its space, ``m`` minimized objectives and ``k`` constraints.

    Attributes:
        name: Identifier (``--problems``).
        suite: ``"paretobench"`` or ``"coco"``.
        description: One line, with the package's own name and parameters.
        space: ``x0 .. x{n-1}`` with the package's bounds.
        n_objectives: ``m``; metrics ``f1 .. fm``, all minimized.
        n_constraints: ``k``; metrics ``g1 .. gk``, feasible when ``<= 0``.
        open: Makes a fresh :class:`Cell` (one per run).
        reference: What the score is measured against (for the report).
    """

    name: str
    suite: str
    description: str
    space: SearchSpace
    n_objectives: int
    n_constraints: int
    open: Callable[[], Cell]
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def objective_names(self) -> list[str]:
        return [f"f{i + 1}" for i in range(self.n_objectives)]

    @property
    def constraint_names(self) -> list[str]:
        return [f"g{i + 1}" for i in range(self.n_constraints)]

    @property
    def metric_names(self) -> list[str]:
        return self.objective_names + self.constraint_names

    @property
    def objectives(self) -> list[Objective]:
        return [Objective(n) for n in self.objective_names]

    @property
    def constraints(self) -> list[Constraint]:
        return [Constraint(n, "<=", 0.0) for n in self.constraint_names]

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "description": self.description,
            "parameters": len(self.space),
            "objectives": self.n_objectives,
            "constraints": self.n_constraints,
            **self.reference,
        }


# paretobench --------------------------------------------------------------------------------
def _pb_problem(name: str, **params: Any) -> Any:
    import paretobench

    return paretobench.create_problem(name, **params)


def nadir_reference(front: FloatArray) -> FloatArray:
    """Nadir + 10% of the range per objective (1.0 where the range is 0), minimization."""
    worst, best = front.max(axis=0), front.min(axis=0)
    return np.asarray(worst + 0.1 * np.where(worst > best, worst - best, 1.0))


def closed_form_hv(name: str, m: int, reference: FloatArray) -> float | None:
    """Published closed-form hypervolume of the front against ``reference``, or None.

    The volume under each front is taken from the box: DTLZ1's simplex ``sum f = 1/2``;
    DTLZ2-4's unit sphere (DTLZ5-6's too at 2 objectives, where they are not degenerate);
    WFG4-9's ellipsoid with semi-axes ``2i`` and WFG3's simplex ``sum f_i / 2i = 1`` at 2
    objectives (Huband et al. 2006, the scales ``S_i = 2i`` paretobench uses).
    """
    box, ball = float(np.prod(reference)), math.pi ** (m / 2) / math.gamma(m / 2 + 1)
    axes = float(np.prod(2.0 * np.arange(1, m + 1)))
    if name == "DTLZ1":
        return box - 0.5**m / math.factorial(m)
    if name in ("DTLZ2", "DTLZ3", "DTLZ4") or (name in ("DTLZ5", "DTLZ6") and m == 2):
        return box - ball / 2**m
    if name in {f"WFG{i}" for i in range(4, 10)}:
        return box - ball * axes / 2**m
    if name == "WFG3" and m == 2:
        return box - axes / math.factorial(m)
    return None


def sampled_front(problem: Any, m: int) -> FloatArray:
    """paretobench's Pareto front: ``(points, m)``."""
    try:
        front = problem.get_pareto_front(1000 if m == 2 else 600)
    except TypeError:  # a fixed set of points (CF1)
        front = problem.get_pareto_front()
    return np.asarray(front, dtype=float)


def front_reference(name: str, params: dict[str, Any], m: int) -> dict[str, Any]:
    """Reference point and true hypervolume of a paretobench problem, with how they were got."""
    front = sampled_front(_pb_problem(name, **params), m)
    ref = nadir_reference(front)
    sampled = hypervolume(front, ref)
    exact = closed_form_hv(name, m, ref)
    return {
        "reference_point": [float(v) for v in ref],
        "true_hv": exact if exact is not None else sampled,
        "front_points": len(front),
        "front_hv": sampled,
        "true_hv_from": "closed form" if exact is not None else "paretobench front (lower bound)",
    }


class ParetoBenchCell(Cell):
    def __init__(self, problem: SuiteProblem, pb: Any) -> None:
        super().__init__(problem)
        self.pb = pb

    def _values(self, x: FloatArray) -> list[float]:
        pop = self.pb(x[None, :])
        g = np.asarray(pop.g, dtype=float).reshape(-1)
        sign = np.array([1.0 if d == "<" else -1.0 for d in pop.constraint_directions])
        violation = sign * (g - np.asarray(pop.constraint_targets, dtype=float))
        return [float(v) for v in np.asarray(pop.f, dtype=float).reshape(-1)] + [
            float(v) for v in violation
        ]

    def score(self) -> dict[str, Any]:
        m, ref = self.problem.n_objectives, self.problem.reference
        y = np.array(self.rows, dtype=float).reshape(-1, m + self.problem.n_constraints)
        feasible = y[np.all(y[:, m:] <= 0, axis=1)]
        hv = hypervolume(feasible[:, :m], np.array(ref["reference_point"]))
        return {"score": hv / ref["true_hv"], "feasible": len(feasible)}


def paretobench_problem(name: str, m: int, **params: Any) -> SuiteProblem:
    """A paretobench problem by its class name, with ``m`` objectives and ``params``."""
    params = {**params, "m": m} if name.startswith(("WFG", "DTLZ")) else params
    pb = _pb_problem(name, **params)
    low, high = np.asarray(pb.var_lower_bounds, float), np.asarray(pb.var_upper_bounds, float)
    space = SearchSpace(
        {f"x{i}": Float(float(a), float(b)) for i, (a, b) in enumerate(zip(low, high))}
    )
    tag = name.lower() + (f"-m{m}" if name.startswith(("WFG", "DTLZ")) else "")
    reference = front_reference(name, params, m)
    problem = SuiteProblem(
        name=tag,
        suite="paretobench",
        description=f"paretobench {pb.to_line_fmt()}",
        space=space,
        n_objectives=pb.n_objs,
        n_constraints=pb.n_constraints,
        open=lambda: ParetoBenchCell(problem, _pb_problem(name, **params)),
        reference=reference,
    )
    return problem


# COCO ---------------------------------------------------------------------------------------
def coco_problem(suite: str, function: int, instance: int, dimension: int) -> Any:
    """cocoex's problem ``suite_f{function}_i{instance}_d{dimension}`` (and its suite)."""
    import cocoex

    cocoex.log_level("error")
    s = cocoex.Suite(suite, f"instances: {instance}", f"dimensions: {dimension}")
    width = 3 if suite.endswith("mixint") else 2
    pid = f"{suite}_f{function:0{width}d}_i{instance:02d}_d{dimension:0{width}d}"
    return s, s.get_problem(pid)


_LINE = re.compile(r"^(\d+)\s+(\S+)")
_REF = re.compile(r"reference value = (\S+)")


def read_coco_log(folder: Path) -> dict[str, float]:
    """The bbob-biobj logger's ``*_hyp.dat`` under ``folder``: its reference value and the
    last (evaluations, indicator) line."""
    (dat,) = folder.rglob("*_hyp.dat")
    text = dat.read_text()
    refs = _REF.findall(text)
    lines = [_LINE.match(line) for line in text.splitlines()]
    last = [m for m in lines if m][-1]
    return {
        "reference_value": float(refs[-1]),
        "evaluations": int(last.group(1)),
        "indicator": float(last.group(2)),
    }


class CocoCell(Cell):
    """A COCO problem observed by the ``bbob-biobj`` logger in a temporary folder."""

    def __init__(self, problem: SuiteProblem, key: tuple[str, int, int, int]) -> None:
        import cocoex

        super().__init__(problem)
        # COCO writes under ./exdata/<result_folder>: work in a temporary directory meanwhile.
        self.tmp, self.cwd = tempfile.TemporaryDirectory(prefix="coco-"), os.getcwd()
        os.chdir(self.tmp.name)
        self.folder = Path(self.tmp.name) / "exdata" / "log"
        self.suite, self.coco = coco_problem(*key)
        self.observer = cocoex.Observer("bbob-biobj", "result_folder: log log_nondominated: none")
        self.coco.observe_with(self.observer)
        self.log: dict[str, float] | None = None

    def _values(self, x: FloatArray) -> list[float]:
        return [float(v) for v in self.coco(x)]

    def close(self) -> None:
        if self.log is None:
            self.coco.free()  # the logger writes its last line
            self.suite.free()
            os.chdir(self.cwd)
            self.log = read_coco_log(self.folder)
            self.tmp.cleanup()

    def score(self) -> dict[str, Any]:
        self.close()
        assert self.log is not None
        return {
            "score": self.log["reference_value"] - self.log["indicator"],
            "coco_indicator": self.log["indicator"],
            "coco_reference_value": self.log["reference_value"],
            "feasible": len(self.rows),
        }


def coco_reference_value(suite: str, function: int, instance: int, dimension: int) -> float | None:
    """The reference hypervolume cocoex compiles in for a problem, as its logger reports it;
    None where COCO has none (its logger then uses 1.0)."""
    space = SearchSpace({"x0": Float(0.0, 1.0)})  # unused: the probe evaluates COCO directly
    problem = SuiteProblem("probe", "coco", "", space, 2, 0, open=lambda: Cell(problem))
    cell = CocoCell(problem, (suite, function, instance, dimension))
    cell.coco(np.asarray(cell.coco.initial_solution, dtype=float))
    cell.close()
    assert cell.log is not None
    value = cell.log["reference_value"]
    return None if value == 1.0 else value


def mixint_problem(function: int, *, instance: int = 1, dimension: int = 5) -> SuiteProblem:
    """COCO ``bbob-biobj-mixint`` problem: integer variables first, as the suite orders them."""
    key = ("bbob-biobj-mixint", function, instance, dimension)
    suite, coco = coco_problem(*key)
    n_int = coco.number_of_integer_variables
    low, high = coco.lower_bounds, coco.upper_bounds
    params = {
        f"x{i}": Int(int(low[i]), int(high[i]))
        if i < n_int
        else Float(float(low[i]), float(high[i]))
        for i in range(len(low))
    }
    name, coco_id = coco.name, coco.id
    coco.free()
    suite.free()
    problem = SuiteProblem(
        name=f"mixint-f{function:03d}-d{dimension:02d}",
        suite="coco",
        description=f"COCO {coco_id} ({name})",
        space=SearchSpace(params),
        n_objectives=2,
        n_constraints=0,
        open=lambda: CocoCell(problem, key),
        reference={
            "score": "1 - COCO hyp indicator (reference value 1.0: none compiled in)",
            "coco_id": coco_id,
            "integer_variables": n_int,
        },
    )
    return problem


# Registry -----------------------------------------------------------------------------------
WFG = {"n": 8, "k": 4}
DTLZ = {"n": 8}


def _registry() -> dict[str, Callable[[], SuiteProblem]]:
    table: dict[str, Callable[[], SuiteProblem]] = {}
    for m in (2, 3):
        for i in range(1, 10):
            table[f"wfg{i}-m{m}"] = lambda i=i, m=m: paretobench_problem(f"WFG{i}", m, **WFG)
        for i in range(1, 8):
            table[f"dtlz{i}-m{m}"] = lambda i=i, m=m: paretobench_problem(f"DTLZ{i}", m, **DTLZ)
    table["cf1"] = lambda: paretobench_problem("CF1", 2)
    table["cf2"] = lambda: paretobench_problem("CF2", 2)
    table["dtlz8-m3"] = lambda: paretobench_problem("DTLZ8", 3, n=9)
    table["dtlz9-m3"] = lambda: paretobench_problem("DTLZ9", 3, n=9)
    for f in (1, 28, 46):
        table[f"mixint-f{f:03d}-d05"] = lambda f=f: mixint_problem(f)
    return table


SUITE: dict[str, Callable[[], SuiteProblem]] = _registry()
# Run first, in this order (the default of --problems): one of each kind of front and
# difficulty that fits the machine's time, then the rest of the suite.
CORE = (
    "wfg4-m2",
    "dtlz2-m2",
    "mixint-f001-d05",
    "cf2",
    "dtlz2-m3",
    "wfg9-m2",
    "mixint-f046-d05",
    "wfg2-m2",
    "dtlz7-m2",
    "wfg1-m2",
    "wfg4-m3",
    "dtlz1-m2",
    "mixint-f028-d05",
    "cf1",
    "wfg6-m2",
)


def make_problem(name: str) -> SuiteProblem:
    """Build one suite problem by name.

    Raises:
        ValueError: an unknown name.
    """
    if name not in SUITE:
        raise ValueError(f"Unknown suite problem {name!r}; choose from {list(SUITE)}.")
    return SUITE[name]()
