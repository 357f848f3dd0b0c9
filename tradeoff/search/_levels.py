"""Ordinal levels in order, whatever distribution the study stores them with.

A study stores an :class:`~tradeoff.spaces.Ordinal`'s levels themselves: evenly stepped
integers as an ``IntDistribution`` (ordered for every sampler), other levels (sparsities
``0.0, 0.25, 0.5``, bit-widths ``2, 3, 4, 8``) as a ``CategoricalDistribution``, which says
nothing of their order. tradeoff's samplers read the order from the space: MOBO encodes such
a parameter as a discrete column (:mod:`~tradeoff.search._bo_encode`), evolution's operators
see its level index (:class:`LevelView`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from tradeoff.spaces import Ordinal, SearchSpace

Params = dict[str, Any]
"""Parameter name -> value, as in ``trial.params``."""


def ordered_choices(
    space: SearchSpace | None, dists: Mapping[str, BaseDistribution]
) -> frozenset[str]:
    """Names of ``dists`` that are an Ordinal of ``space`` stored as a categorical of its
    levels (choices in level order); none without a space."""
    if space is None:
        return frozenset()
    return frozenset(
        name
        for name, dist in dists.items()
        if isinstance(dist, CategoricalDistribution)
        and isinstance(space.get(name), Ordinal)
        and dist == space[name].distribution()
    )


def find_choice(dist: CategoricalDistribution, value: Any) -> int | None:
    """Index of ``value`` among the choices, or ``None``; unlike ``to_internal_repr``, ``True``,
    ``1`` and ``1.0`` are different choices, and NaN is found."""
    nan = isinstance(value, float) and math.isnan(value)
    for index, choice in enumerate(dist.choices):
        if type(choice) is type(value) and (choice == value or (nan and choice != choice)):
            return index
    return None


@dataclass(frozen=True)
class LevelView:
    """``trial.params`` as operators that move level by level see them: each Ordinal stored
    as a categorical (:func:`ordered_choices`) is its level index, an
    ``IntDistribution(0, k - 1)``; every other parameter is as stored.

    Attributes:
        stored: Name -> the distribution the study stores.
        dists: Name -> the distribution operators see.
        ordered: The names seen as level indices.
    """

    stored: Mapping[str, BaseDistribution]
    dists: Mapping[str, BaseDistribution]
    ordered: frozenset[str]

    @classmethod
    def of(cls, space: SearchSpace | None, stored: Mapping[str, BaseDistribution]) -> LevelView:
        """The view of ``stored`` (a relative search space) given the space it comes from."""
        ordered = ordered_choices(space, stored)
        dists = {
            name: IntDistribution(0, len(dist.choices) - 1) if name in ordered else dist  # type: ignore[attr-defined]
            for name, dist in stored.items()
        }
        return cls(dict(stored), dists, ordered)

    def view(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """Stored values -> viewed ones (a value that is no level is kept as it is);
        ``params`` itself when no name is seen otherwise."""
        names = self.ordered & params.keys()
        if not names:
            return params
        out = dict(params)
        for name in names:
            index = find_choice(self._categorical(name), out[name])
            out[name] = out[name] if index is None else index
        return out

    def to_stored(self, params: Mapping[str, Any]) -> Params:
        """Viewed values -> the values the study stores."""
        out = dict(params)
        for name in self.ordered & out.keys():
            out[name] = self._categorical(name).choices[int(out[name])]
        return out

    def _categorical(self, name: str) -> CategoricalDistribution:
        dist = self.stored[name]
        assert isinstance(dist, CategoricalDistribution)  # what ordered_choices keeps
        return dist
