"""Search parameters: what one named knob of a configuration can take.

Each parameter maps to exactly one Optuna distribution. ``encode`` turns a Config value into
Optuna's external representation, ``decode`` turns it back, so a Config (plain values, e.g.
bit-widths) and ``trial.params`` (what the sampler sees, e.g. an ordinal index) never mix.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

_PLAIN_TYPES = (type(None), bool, int, float, str)


class Parameter(abc.ABC):
    """One dimension of a search space.

    Subclasses validate their arguments in ``__init__`` and implement the four conversions.
    """

    @abc.abstractmethod
    def distribution(self) -> BaseDistribution:
        """The Optuna distribution the sampler draws from."""

    @abc.abstractmethod
    def decode(self, raw: Any) -> Any:
        """Map a value drawn from :meth:`distribution` to the Config value."""

    @abc.abstractmethod
    def encode(self, value: Any) -> Any:
        """Map a Config value to the distribution's external value (inverse of ``decode``)."""

    @abc.abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a valid Config value for this parameter."""

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw a Config value uniformly (log-uniformly for ``log=True``)."""
        dist = self.distribution()
        if isinstance(dist, CategoricalDistribution):
            return self.decode(dist.choices[int(rng.integers(len(dist.choices)))])
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        return self.decode(_sample_numeric(dist, rng))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


class Float(Parameter):
    """A real number in ``[low, high]``.

    Args:
        low: Lower bound (inclusive).
        high: Upper bound (inclusive); must exceed ``low``.
        log: Sample on a log scale; requires ``low > 0``.
        step: Discretization step; incompatible with ``log``.
    """

    def __init__(
        self, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> None:
        _check_bounds("Float", low, high, log=log)
        if step is not None:
            if log:
                raise ValueError("Float(..., log=True, step=...) is not supported: drop one.")
            if isinstance(step, bool) or not isinstance(step, (int, float, np.number)):
                raise TypeError(f"Float step must be a number or None, got {step!r}.")
            if not step > 0:
                raise ValueError(f"Float step must be > 0, got {step!r}.")
        self.low, self.high, self.log, self.step = float(low), float(high), log, step

    def distribution(self) -> FloatDistribution:
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def decode(self, raw: Any) -> float:
        return float(raw)

    def encode(self, value: Any) -> float:
        return float(value)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return math.isfinite(value) and self.low <= value <= self.high

    def __repr__(self) -> str:
        return f"Float({self.low!r}, {self.high!r}, log={self.log!r}, step={self.step!r})"


class Int(Parameter):
    """An integer in ``[low, high]``.

    Args:
        low: Lower bound (inclusive).
        high: Upper bound (inclusive); must exceed ``low``.
        log: Sample on a log scale; requires ``low > 0`` and ``step == 1``.
        step: Spacing between allowed values.
    """

    def __init__(self, low: int, high: int, *, log: bool = False, step: int = 1) -> None:
        for name, v in (("low", low), ("high", high), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Int {name} must be an integer, got {v!r}.")
        _check_bounds("Int", low, high, log=log)
        if step < 1:
            raise ValueError(f"Int step must be >= 1, got {step!r}.")
        if log and step != 1:
            raise ValueError("Int(..., log=True) requires step=1.")
        self.low, self.high, self.log, self.step = int(low), int(high), log, int(step)

    def distribution(self) -> IntDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def decode(self, raw: Any) -> int:
        return int(raw)

    def encode(self, value: Any) -> int:
        return int(value)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return bool(self.low <= value <= self.high and (value - self.low) % self.step == 0)

    def __repr__(self) -> str:
        return f"Int({self.low!r}, {self.high!r}, log={self.log!r}, step={self.step!r})"


class Ordinal(Parameter):
    """Ordered levels, such as bit-widths ``[2, 3, 4, 8]`` or sparsities.

    The sampler sees the level's index (an integer, so neighbouring levels are near each other);
    the Config holds the level itself.

    Args:
        values: The levels, in order. At least two, no duplicates, plain JSON values.
    """

    def __init__(self, values: Sequence[CategoricalChoiceType]) -> None:
        self.values = _check_values("Ordinal", values)

    def distribution(self) -> IntDistribution:
        return IntDistribution(0, len(self.values) - 1)

    def decode(self, raw: Any) -> CategoricalChoiceType:
        return self.values[int(raw)]

    def encode(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if _same(v, value):
                return i
        raise ValueError(f"{value!r} is not one of the Ordinal levels {list(self.values)}.")

    def contains(self, value: Any) -> bool:
        return any(_same(v, value) for v in self.values)

    def __repr__(self) -> str:
        return f"Ordinal({list(self.values)!r})"


class Choice(Parameter):
    """Unordered alternatives, such as ``["lora", "ia3"]``.

    Args:
        values: The alternatives. At least one, no duplicates, plain JSON values.
    """

    def __init__(self, values: Sequence[CategoricalChoiceType]) -> None:
        self.values = _check_values("Choice", values, min_len=1)

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.values)

    def decode(self, raw: Any) -> CategoricalChoiceType:
        return raw  # type: ignore[no-any-return]

    def encode(self, value: Any) -> CategoricalChoiceType:
        if not self.contains(value):
            raise ValueError(f"{value!r} is not one of the Choice values {list(self.values)}.")
        return value  # type: ignore[no-any-return]

    def contains(self, value: Any) -> bool:
        return any(_same(v, value) for v in self.values)

    def __repr__(self) -> str:
        return f"Choice({list(self.values)!r})"


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; a level list [0, 1] must not accept True, nor [True] accept 1.
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float))
        and isinstance(b, (int, float, np.number))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def _check_bounds(kind: str, low: float, high: float, *, log: bool) -> None:
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{kind} {name} must be a number, got {value!r}.")
    if not isinstance(log, bool):
        raise TypeError(f"{kind} log must be True or False, got {log!r}.")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{kind} bounds must be finite, got low={low!r}, high={high!r}.")
    if low >= high:
        raise ValueError(
            f"{kind} needs low < high, got low={low!r}, high={high!r}; "
            "for a fixed value leave the parameter out of the space."
        )
    if log and low <= 0:
        raise ValueError(f"{kind}(..., log=True) needs low > 0, got low={low!r}.")


def _check_values(
    kind: str, values: Sequence[CategoricalChoiceType], *, min_len: int = 2
) -> tuple[CategoricalChoiceType, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{kind} takes a list of values, got {values!r}.")
    values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    if len(values) < min_len:
        raise ValueError(f"{kind} needs at least {min_len} value(s), got {list(values)!r}.")
    for v in values:
        if not isinstance(v, _PLAIN_TYPES):
            raise TypeError(
                f"{kind} values must be None, bool, int, float or str (storable as JSON), "
                f"got {v!r} of type {type(v).__name__}."
            )
    dupes = [v for i, v in enumerate(values) if any(_same(v, w) for w in values[:i])]
    if dupes:
        raise ValueError(f"{kind} values must be distinct; duplicated: {dupes!r}.")
    return values


def _sample_numeric(dist: FloatDistribution | IntDistribution, rng: np.random.Generator) -> Any:
    low, high = dist.low, dist.high
    if dist.log:
        x = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        if isinstance(dist, IntDistribution):
            return int(min(max(round(x), low), high))
        return min(max(x, low), high)
    if dist.step is not None:
        n = round((high - low) / dist.step)
        k = int(rng.integers(n + 1))
        return min(low + k * dist.step, high)
    return float(rng.uniform(low, high))
