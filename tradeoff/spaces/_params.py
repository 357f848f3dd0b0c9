"""Search parameters: what one named knob of a configuration can take.

Each parameter maps to exactly one Optuna distribution. ``encode`` turns a Config value into
Optuna's external representation, ``decode`` turns it back. Every parameter stores its real
value (an :class:`Ordinal` its level, not its position), so ``trial.params`` and
optuna-dashboard show what a Config holds; only studies written before Ordinals stored their
levels hold level indices (:meth:`Ordinal.indexed` reads and writes them).
"""

from __future__ import annotations

import abc
import itertools
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

    The study stores the level itself, so ``trial.params`` and optuna-dashboard show real
    levels: evenly stepped integers (``[2, 3, 4]``, ``[4, 6, 8]``) as
    ``IntDistribution(low, high, step)``, any other levels (uneven integers, floats, booleans,
    strings) as a ``CategoricalDistribution`` of the levels, whose order tradeoff's samplers
    read from the space (Optuna's own samplers see an unordered categorical). Levels Optuna
    cannot tell apart in a categorical (``True`` beside ``1``, ``False`` beside ``0``) are
    stored as their index, ``IntDistribution(0, len(values) - 1)``, as every Ordinal was
    before tradeoff stored levels (:meth:`indexed`).

    Args:
        values: The levels, in order. At least two, no duplicates, plain JSON values.
    """

    def __init__(self, values: Sequence[CategoricalChoiceType]) -> None:
        self.values = _check_values("Ordinal", values)
        self._step = _int_step(self.values)
        self._by_index = self._step is None and not _categorical_safe(self.values)

    def distribution(self) -> IntDistribution | CategoricalDistribution:
        if self._step is not None:
            ints = [int(v) for v in self.values]  # type: ignore[arg-type]
            return IntDistribution(min(ints), max(ints), step=self._step)
        if self._by_index:
            return self.indexed().distribution()
        return CategoricalDistribution(self.values)

    def decode(self, raw: Any) -> CategoricalChoiceType:
        if self._by_index:
            return self.indexed().decode(raw)
        return self.values[self.index(raw)]

    def encode(self, value: Any) -> CategoricalChoiceType:
        if self._by_index:
            return self.indexed().encode(value)
        return self.values[self.index(value)]

    def contains(self, value: Any) -> bool:
        return _find(self.values, value) is not None

    def index(self, value: Any) -> int:
        """The position of level ``value`` in :attr:`values`.

        Raises:
            ValueError: ``value`` is not a level.
        """
        found = _find(self.values, value)
        if found is None:
            raise ValueError(f"{value!r} is not one of the Ordinal levels {list(self.values)}.")
        return found

    def indexed(self) -> OrdinalIndex:
        """The same levels encoded as their index, ``IntDistribution(0, len(values) - 1)``:
        how studies written before tradeoff stored levels hold an Ordinal."""
        return OrdinalIndex(self)

    def __repr__(self) -> str:
        return f"Ordinal({list(self.values)!r})"


class OrdinalIndex(Parameter):
    """An :class:`Ordinal` whose study holds level indices (``0`` for the first level).

    Studies written before tradeoff stored an Ordinal's levels hold their index; a search
    resumed on one keeps that encoding (``SearchSpace.encode_like``), so its trials stay
    comparable. The Config still holds the level.

    Args:
        ordinal: The levels.
    """

    def __init__(self, ordinal: Ordinal) -> None:
        self.ordinal = ordinal

    def distribution(self) -> IntDistribution:
        return IntDistribution(0, len(self.ordinal.values) - 1)

    def decode(self, raw: Any) -> CategoricalChoiceType:
        return self.ordinal.values[int(raw)]

    def encode(self, value: Any) -> int:
        return self.ordinal.index(value)

    def contains(self, value: Any) -> bool:
        return self.ordinal.contains(value)

    def __repr__(self) -> str:
        return f"{self.ordinal!r}.indexed()"


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


def _find(values: Sequence[Any], value: Any) -> int | None:
    """Index of ``value`` among ``values`` (as :func:`_same` compares; NaN finds NaN)."""
    nan = isinstance(value, float) and math.isnan(value)
    for i, v in enumerate(values):
        if _same(v, value) or (nan and isinstance(v, float) and math.isnan(v)):
            return i
    return None


def _int_step(values: Sequence[Any]) -> int | None:
    """The step of integer levels that are evenly spaced (in either direction), else None."""
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return None
    ordered = sorted(int(v) for v in values)
    steps = {b - a for a, b in itertools.pairwise(ordered)}
    return steps.pop() if len(steps) == 1 else None


def _categorical_safe(values: Sequence[Any]) -> bool:
    """Whether Optuna's CategoricalDistribution finds each level at its own index (it cannot
    tell ``True`` from ``1``, nor ``False`` from ``0``)."""
    dist = CategoricalDistribution(values)
    return all(
        _find(values, dist.choices[int(dist.to_internal_repr(v))]) == i
        for i, v in enumerate(values)
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
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        raise ValueError(
            f"{kind} values must not be NaN (NaN equals no value, so no trial's value would "
            f"match it); got {list(values)!r}. Use None for a missing level."
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
