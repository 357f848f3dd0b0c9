"""Encoding between Optuna parameters and the unit-cube points BoTorch optimizes over.

Every parameter becomes one column in ``[0, 1]``:

* ``FloatDistribution`` without ``step``: continuous (log-scaled when ``log=True``).
* ``IntDistribution`` (so also an :class:`~tradeoff.spaces.Ordinal` of evenly stepped
  integers) and ``FloatDistribution`` with ``step``: discrete; its allowed values sit at fixed
  unit positions (log-scaled when ``log=True``), and :meth:`Encoding.snap` moves a point onto
  the nearest.
* ``CategoricalDistribution`` of an Ordinal's levels (``ordered``): discrete, level ``i`` of
  ``k`` at ``i / (k - 1)``, so neighbouring levels are near each other.
* Any other ``CategoricalDistribution``: categorical, ``k`` codes ``i / (k - 1)``; the GP sees
  them one-hot, so choices have no order.

Shapes: a point is ``(d,)``, a batch ``(n, d)``; ``d`` is the number of parameters.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tradeoff.search._levels import find_choice

FloatArray = NDArray[np.float64]
Kind = Literal["continuous", "discrete", "categorical"]

MAX_SEARCHED_LEVELS = 128
"""Discrete columns with more levels are relaxed to continuous while the acquisition is
optimized; the acquisition is still only evaluated on snapped, allowed points."""


@dataclass(frozen=True)
class _Column:
    name: str
    dist: BaseDistribution
    kind: Kind  # an ordered categorical is "discrete"
    n_levels: int  # 0 for continuous columns


class Encoding:
    """Maps ``trial.params`` of ``search_space`` to unit-cube points and back.

    Args:
        search_space: Name -> distribution; every distribution must have at least two values.
        ordered: Names of ``CategoricalDistribution`` parameters whose choices are ordered
            levels (:func:`~tradeoff.search._levels.ordered_choices`).
    """

    def __init__(
        self,
        search_space: Mapping[str, BaseDistribution],
        *,
        ordered: Collection[str] = frozenset(),
    ) -> None:
        self.columns = tuple(
            _column(name, dist, ordered=name in ordered) for name, dist in search_space.items()
        )
        self.names = tuple(c.name for c in self.columns)

    @property
    def dim(self) -> int:
        """Number of columns ``d``."""
        return len(self.columns)

    @property
    def discrete_dims(self) -> dict[int, list[float]]:
        """Column -> sorted unit levels, for discrete columns searched level by level."""
        return {
            j: _levels(c).tolist()
            for j, c in enumerate(self.columns)
            if c.kind == "discrete" and c.n_levels <= MAX_SEARCHED_LEVELS
        }

    @property
    def cat_dims(self) -> dict[int, list[float]]:
        """Column -> unit codes, for categorical columns."""
        return {
            j: _levels(c).tolist() for j, c in enumerate(self.columns) if c.kind == "categorical"
        }

    @property
    def discrete(self) -> bool:
        """Whether every column is discrete or categorical (the space is a finite grid)."""
        return all(c.kind != "continuous" for c in self.columns)

    def grid(self, limit: int) -> FloatArray | None:
        """``(N, d)`` every allowed point (in C order), if the space is a grid of at most
        ``limit`` points; else ``None``."""
        if not self.discrete or math.prod(c.n_levels for c in self.columns) > limit:
            return None
        mesh = np.meshgrid(*(_levels(c) for c in self.columns), indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=-1).reshape(-1, self.dim)

    def indices(self, x: FloatArray) -> NDArray[np.int64]:
        """``(n, d)`` unit points of a discrete space -> ``(n, d)`` indices of their levels
        (robust to rounding, unlike the unit values themselves)."""
        if not self.discrete:
            raise ValueError("indices() needs a space without continuous columns.")
        x = np.clip(np.asarray(x, dtype=float).reshape(-1, self.dim), 0.0, 1.0)
        columns = [_index_of_unit(c, x[:, j]) for j, c in enumerate(self.columns)]
        return np.stack(columns, axis=-1).reshape(-1, self.dim)

    def covers(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` has a valid value for every column (extra names are ignored)."""
        return all(c.name in params and _valid(c, params[c.name]) for c in self.columns)

    def encode(self, params: Mapping[str, Any]) -> FloatArray:
        """``trial.params`` -> a ``(d,)`` unit point (``params`` must be covered)."""
        return np.array([_encode(c, params[c.name]) for c in self.columns], dtype=float)

    def decode(self, x: FloatArray) -> dict[str, Any]:
        """A ``(d,)`` unit point -> ``trial.params`` (snapped to the nearest allowed value)."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        return {c.name: _decode(c, float(u)) for c, u in zip(self.columns, x)}

    def snap(self, x: FloatArray) -> FloatArray:
        """``(n, d)`` unit points with discrete and categorical columns on allowed values."""
        out = np.clip(np.array(x, dtype=float), 0.0, 1.0)
        for j, c in enumerate(self.columns):
            if c.kind != "continuous":
                out[:, j] = _unit_of_index(c, _index_of_unit(c, out[:, j]))
        return np.asarray(out, dtype=float)

    def sample(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``(n, d)`` random points: uniform per column; levels of a linear grid and
        categories equally likely, log-scaled integers log-uniform."""
        return self.stretch(rng.uniform(size=(n, self.dim)))

    def stretch(self, u: FloatArray) -> FloatArray:
        """``(n, d)`` points of ``[0, 1)^d`` (random, or a quasi-random sequence's) -> points of
        the space, as :meth:`sample` maps its uniform draws: a discrete or categorical column's
        interval widened by half a step at each end, so that every level gets an equal share."""
        half = np.array(
            [0.0 if c.kind == "continuous" else 0.5 / (c.n_levels - 1) for c in self.columns]
        )
        low, high = -half, 1.0 + half
        return self.snap(low + (high - low) * np.asarray(u, dtype=float))


def _column(name: str, dist: BaseDistribution, *, ordered: bool) -> _Column:
    if dist.single():
        raise ValueError(f"Parameter {name!r} has a single value; leave it out of the encoding.")
    if isinstance(dist, CategoricalDistribution):
        kind: Kind = "discrete" if ordered else "categorical"
        return _Column(name, dist, kind, len(dist.choices))
    if isinstance(dist, IntDistribution):
        return _Column(name, dist, "discrete", (dist.high - dist.low) // dist.step + 1)
    if isinstance(dist, FloatDistribution):
        if dist.step is None:
            return _Column(name, dist, "continuous", 0)
        return _Column(name, dist, "discrete", round((dist.high - dist.low) / dist.step) + 1)
    raise TypeError(f"Parameter {name!r}: unsupported distribution {dist!r}.")


def _numeric(c: _Column) -> FloatDistribution | IntDistribution:
    assert isinstance(c.dist, (FloatDistribution, IntDistribution))
    return c.dist


def _to_unit(dist: FloatDistribution | IntDistribution, v: FloatArray) -> FloatArray:
    """Values -> ``[0, 1]`` (on a log scale for ``log=True``)."""
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        u = (np.log(v) - math.log(low)) / (math.log(high) - math.log(low))
    else:
        u = (v - low) / (high - low)
    return np.asarray(np.clip(u, 0.0, 1.0), dtype=float)


def _from_unit(dist: FloatDistribution | IntDistribution, u: FloatArray) -> FloatArray:
    low, high = float(dist.low), float(dist.high)
    if dist.log:
        v = np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        v = low + u * (high - low)
    return np.asarray(np.clip(v, low, high), dtype=float)


def _index_of_unit(c: _Column, u: FloatArray) -> NDArray[np.int64]:
    """Index of the allowed value nearest to each unit value (discrete and categorical)."""
    if isinstance(c.dist, CategoricalDistribution):
        k = np.round(u * (c.n_levels - 1))
    else:
        dist = _numeric(c)
        k = np.round((_from_unit(dist, u) - dist.low) / _step(dist))
    return np.clip(k, 0, c.n_levels - 1).astype(np.int64)


def _unit_of_index(c: _Column, k: NDArray[np.int64]) -> FloatArray:
    if isinstance(c.dist, CategoricalDistribution):
        return np.asarray(k / (c.n_levels - 1), dtype=float)
    return _to_unit(_numeric(c), _value_of_index(c, k))


def _value_of_index(c: _Column, k: NDArray[np.int64]) -> FloatArray:
    """Allowed values; the last level is ``high`` exactly (``low + k * step`` can miss it by
    a rounding error, and BoTorch needs a discrete column to end at the upper bound 1)."""
    dist = _numeric(c)
    value = np.minimum(dist.low + k * _step(dist), dist.high)
    return np.asarray(np.where(k >= c.n_levels - 1, dist.high, value), dtype=float)


def _step(dist: FloatDistribution | IntDistribution) -> float:
    """The spacing of a discrete column's values (``IntDistribution.step`` is 1 by default)."""
    assert dist.step is not None
    return float(dist.step)


def _levels(c: _Column) -> FloatArray:
    return _unit_of_index(c, np.arange(c.n_levels))


def _encode(c: _Column, value: Any) -> float:
    if isinstance(c.dist, CategoricalDistribution):
        index = find_choice(c.dist, value)
        assert index is not None  # encode() needs covered params
        return index / (c.n_levels - 1)
    return float(_to_unit(_numeric(c), np.array([float(value)]))[0])


def _decode(c: _Column, u: float) -> Any:
    if c.kind == "continuous":
        return float(_from_unit(_numeric(c), np.array([u]))[0])
    k = _index_of_unit(c, np.array([u]))
    if isinstance(c.dist, CategoricalDistribution):
        return c.dist.choices[int(k[0])]
    value = float(_value_of_index(c, k)[0])
    return round(value) if isinstance(c.dist, IntDistribution) else value


def _valid(c: _Column, value: Any) -> bool:
    if isinstance(c.dist, CategoricalDistribution):
        return find_choice(c.dist, value) is not None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return False
    dist = _numeric(c)
    return bool(dist.low <= value <= dist.high)
