"""Objectives and constraints: what a search measures and what it must respect."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Direction = Literal["minimize", "maximize"]
CostFn = Callable[[Mapping[str, Any]], float]

_OPS = ("<=", ">=")


@dataclass(frozen=True)
class Objective:
    """One objective of the search.

    Args:
        name: Metric name; ``evaluate`` must return it unless ``fn`` is given.
        direction: ``"minimize"`` (default) or ``"maximize"``.
        fn: A *known cost*: ``fn(config) -> float`` computed on the driver before the trial is
            dispatched (model size, bit-ops...). Known costs are never measured by workers, and
            a constraint over them rejects a Config without running it.
        reference: This objective's coordinate of the hypervolume reference point (a value
            worse than any you care about). Derived from the data when not given.
    """

    name: str
    direction: Direction = "minimize"
    fn: CostFn | None = field(default=None, kw_only=True, compare=False)
    reference: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_name("Objective", self.name)
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(
                f"Objective {self.name!r}: unknown direction {self.direction!r}; "
                "use 'minimize' or 'maximize'."
            )
        if self.fn is not None and not callable(self.fn):
            raise TypeError(f"Objective {self.name!r}: fn must be callable, got {self.fn!r}.")
        if self.reference is not None and not is_finite_number(self.reference):
            raise ValueError(
                f"Objective {self.name!r}: reference must be a finite number, "
                f"got {self.reference!r}."
            )

    @property
    def known(self) -> bool:
        """Whether the value is computed from the Config on the driver (``fn`` given)."""
        return self.fn is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable description, stored on the study."""
        return {
            "name": self.name,
            "direction": self.direction,
            "known": self.known,
            "reference": self.reference,
        }


@dataclass(frozen=True)
class Constraint:
    """A hard bound on an objective or a returned metric: ``name op bound``.

    Args:
        name: An objective name, or a metric declared in ``optimize(..., metrics=[...])``.
        op: ``"<="`` or ``">="``.
        bound: The bound, a finite number.
    """

    name: str
    op: Literal["<=", ">="]
    bound: float

    def __post_init__(self) -> None:
        _check_name("Constraint", self.name)
        if self.op not in _OPS:
            raise ValueError(
                f"Constraint on {self.name!r}: unknown operator {self.op!r}; use '<=' or '>='."
            )
        if not is_finite_number(self.bound):
            raise ValueError(
                f"Constraint on {self.name!r}: bound must be a finite number, got {self.bound!r}."
            )

    @property
    def label(self) -> str:
        """A readable key such as ``size_mb<=4.0``."""
        return f"{self.name}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's constraint value: ``<= 0`` when satisfied, the excess otherwise."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "bound": self.bound}


@dataclass(frozen=True)
class ObjectiveSet:
    """Validated objectives, constraints and extra metrics: the one place their order is fixed.

    Objective order = study directions = metric names.
    """

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    metrics: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        metrics: Sequence[str] = (),
    ) -> ObjectiveSet:
        """Validate and freeze; raises ``ValueError``/``TypeError`` saying what to fix."""
        objectives = _as_tuple("objectives", objectives, Objective)
        constraints = _as_tuple("constraints", constraints, Constraint)
        if not objectives:
            raise ValueError("Give at least one objective, e.g. objectives=[Objective('error')].")
        if isinstance(metrics, str):
            raise TypeError(f"metrics takes a list of names, got the string {metrics!r}.")
        metrics = tuple(metrics)
        for m in metrics:
            _check_name("Metric", m)
        names = [o.name for o in objectives] + list(metrics)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Duplicate objective/metric names: {dupes}; each must be unique.")
        for c in constraints:
            if c.name not in names:
                raise ValueError(
                    f"Constraint {c.label!r} refers to unknown name {c.name!r}; known names: "
                    f"{names}. Add Objective({c.name!r}) or declare metrics=[{c.name!r}]."
                )
        return cls(objectives, constraints, metrics)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def directions(self) -> list[Direction]:
        return [o.direction for o in self.objectives]

    @property
    def measured(self) -> list[str]:
        """Names ``evaluate`` must return: measured objectives, then declared metrics."""
        return [o.name for o in self.objectives if not o.known] + list(self.metrics)

    @property
    def known(self) -> list[Objective]:
        return [o for o in self.objectives if o.known]

    def known_values(self, config: Mapping[str, Any]) -> dict[str, float]:
        """Evaluate the known-cost objectives on ``config``.

        Raises:
            ValueError: an ``fn`` returned something other than a finite number.
        """
        out: dict[str, float] = {}
        for o in self.known:
            assert o.fn is not None
            value = o.fn(config)
            if not is_finite_number(value):
                raise ValueError(f"Objective({o.name!r}, fn=...) returned {value!r}, not a number.")
            out[o.name] = float(value)
        return out

    def violations(self, values: Mapping[str, float], *, only_known: bool = False) -> list[float]:
        """Constraint values (``<= 0`` feasible) in constraint order, over available ``values``."""
        return [
            c.violation(values[c.name])
            for c in self.constraints
            if not only_known or c.name in values
        ]

    def known_constraints(self) -> list[Constraint]:
        known = {o.name for o in self.known}
        return [c for c in self.constraints if c.name in known]

    def check_metrics(self, metrics: Any) -> dict[str, float]:
        """Validate what ``evaluate`` returned.

        Raises:
            ValueError: the reason the trial fails (not a dict, missing/extra keys, non-finite).
        """
        if not isinstance(metrics, Mapping):
            raise ValueError(
                f"evaluate returned {type(metrics).__name__} ({metrics!r:.80}); it must return "
                f"a dict with keys {self.measured}."
            )
        expected = self.measured
        missing = [k for k in expected if k not in metrics]
        extra = [k for k in metrics if k not in expected]
        if missing or extra:
            hint = ""
            known = [k for k in extra if k in {o.name for o in self.known}]
            if known:
                hint = f" {known} are computed by Objective(fn=...); don't return them."
            elif extra:
                hint = " Declare extra metrics with optimize(..., metrics=[...])."
            raise ValueError(
                f"evaluate returned keys {sorted(map(str, metrics))}: missing {missing}, "
                f"unexpected {extra}.{hint}"
            )
        out: dict[str, float] = {}
        for k in expected:
            v = metrics[k]
            if not is_finite_number(v):
                raise ValueError(f"evaluate returned {k}={v!r}; it must be a finite number.")
            out[k] = float(v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "metrics": list(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectiveSet:
        """Rebuild from :meth:`to_dict` (known-cost ``fn`` are not stored; ``known`` is kept)."""
        objectives = tuple(
            Objective(o["name"], o["direction"], reference=o.get("reference"))
            for o in data["objectives"]
        )
        constraints = tuple(Constraint(c["name"], c["op"], c["bound"]) for c in data["constraints"])
        return cls(objectives, constraints, tuple(data.get("metrics", ())))


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number: an int, a float, a NumPy scalar or anything
    else with ``__float__`` (a 0-d tensor), but not a bool and not a string of digits."""
    if isinstance(value, (bool, str, bytes, np.bool_)) or not hasattr(type(value), "__float__"):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, RuntimeError):  # e.g. a tensor of several elements
        return False


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} name must be a non-empty string, got {name!r}.")


def _as_tuple(what: str, items: Any, cls: type) -> tuple[Any, ...]:
    if isinstance(items, cls):
        items = [items]
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"{what} must be a list of {cls.__name__}, got {items!r}.")
    for item in items:
        if not isinstance(item, cls):
            raise TypeError(f"{what} must contain {cls.__name__} objects, got {item!r}.")
    return tuple(items)
