"""SearchSpace: a named set of parameters, and the Config it decodes to."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

from tradeoff.spaces._params import Ordinal, Parameter

Config = dict[str, Any]
"""A configuration: parameter name -> plain value (picklable, JSON-serializable)."""

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class SearchSpace(Mapping[str, Parameter]):
    """An immutable mapping from parameter names to :class:`Parameter` objects.

    Names may contain dots; :meth:`merge` uses them to namespace composed spaces
    (``quant.fc1.bits``). A space knows how to convert between the Config a user sees and the
    parameters an Optuna sampler draws: each parameter's own encoding, or the one a study
    already stores (:meth:`encode_like`).

    Args:
        parameters: Name -> parameter. Must not be empty.
    """

    def __init__(self, parameters: Mapping[str, Parameter]) -> None:
        if not isinstance(parameters, Mapping):
            raise TypeError(
                f"SearchSpace takes a mapping name -> parameter, got {type(parameters).__name__}."
            )
        if not parameters:
            raise ValueError(
                "The search space is empty: give at least one parameter, e.g. "
                "SearchSpace({'lr': Float(1e-4, 1e-1, log=True)})."
            )
        for name, param in parameters.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(
                    f"Invalid parameter name {name!r}: use letters, digits, '_', '-' and '.'."
                )
            if not isinstance(param, Parameter):
                raise TypeError(
                    f"Parameter {name!r} is {param!r}; expected Float, Int, Ordinal or Choice."
                )
        self._params: dict[str, Parameter] = dict(parameters)
        self._children: dict[str, SearchSpace] = {}
        # Name -> what encodes it: the parameter, or an Ordinal's OrdinalIndex (encode_like).
        self._codecs: dict[str, Parameter] = dict(self._params)

    # Mapping protocol ----------------------------------------------------------------------
    def __getitem__(self, name: str) -> Parameter:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._params.items())
        return f"SearchSpace({{{inner}}})"

    # Conversions ---------------------------------------------------------------------------
    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions, one per parameter, for ``study.ask(...)``."""
        return {name: p.distribution() for name, p in self._codecs.items()}

    def decode(self, params: Mapping[str, Any]) -> Config:
        """Turn ``trial.params`` into a Config.

        Raises:
            ValueError: ``params`` misses or adds parameters.
        """
        self._check_keys(params, what="params")
        return {name: p.decode(params[name]) for name, p in self._codecs.items()}

    def encode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a Config into ``trial.params`` (e.g. for ``study.enqueue_trial``)."""
        self._check_keys(config, what="config")
        return {name: p.encode(config[name]) for name, p in self._codecs.items()}

    def encode_like(self, stored: Mapping[str, BaseDistribution]) -> None:
        """Encode and decode as a study stores its parameters, so it can resume.

        Studies written before tradeoff stored an :class:`Ordinal`'s levels hold its level
        index, ``IntDistribution(0, n - 1)``; Optuna refuses another distribution kind for a
        parameter it has stored, and its samplers would mix indices and levels. Each Ordinal
        whose ``stored`` distribution is that index (and not its own) is then encoded as
        its :meth:`Ordinal.indexed`; every other parameter (and one not in ``stored``) as
        itself. ``encode_like({})`` restores every parameter's own encoding.

        This changes how the space converts until the next call (``optimize`` calls it with
        the study it is about to search); the parameters themselves are not changed.

        Args:
            stored: Parameter name -> the distribution the study stores it with
                (``trial.distributions`` of any of its trials).
        """
        self._codecs = {
            name: _codec(param, stored.get(name)) for name, param in self._params.items()
        }

    def sample(self, rng: np.random.Generator | int | None = None) -> Config:
        """Draw a Config uniformly at random."""
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return {name: p.sample(gen) for name, p in self._params.items()}

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` has exactly this space's keys, each with a valid value."""
        return set(config) == set(self._params) and all(
            p.contains(config[name]) for name, p in self._params.items()
        )

    # Composition ---------------------------------------------------------------------------
    @classmethod
    def merge(cls, **named: SearchSpace) -> SearchSpace:
        """Compose spaces under namespaces: ``merge(quant=q, prune=p)`` has ``quant.<name>``....

        The order of the keyword arguments is kept; model-aware spaces apply in that order.
        """
        if not named:
            raise ValueError("SearchSpace.merge needs at least one space, e.g. merge(quant=q).")
        params: dict[str, Parameter] = {}
        for prefix, space in named.items():
            if not isinstance(space, SearchSpace):
                raise TypeError(f"merge({prefix}=...) must be a SearchSpace, got {space!r}.")
            for name, param in space.items():
                params[f"{prefix}.{name}"] = param
        merged = cls(params)
        merged._children = dict(named)
        for prefix, space in named.items():
            told = getattr(space, "merged_with", None)
            if told is not None:
                told([s for p, s in named.items() if p != prefix])
        return merged

    def apply(self, model: Any, config: Mapping[str, Any], *, inplace: bool = False) -> Any:
        """Apply a merged Config to a model: each model-aware part gets its own sub-Config, in
        the stage order arch -> prune -> quant -> peft (see ``tradeoff.spaces.STAGES``).

        Parts that are plain spaces (training hyperparameters, say) are not applied. The
        original model is untouched unless ``inplace``.

        Raises:
            TypeError: no part of this space is model-aware.
            ValueError: ``config`` is not a Config of this space.
        """
        from tradeoff.spaces._model import STAGES

        parts = {k: c for k, c in self._children.items() if getattr(c, "stage", None) in STAGES}
        if not parts:
            raise TypeError(
                "This space has no model-aware part to apply; build it with e.g. "
                "SearchSpace.merge(quant=QuantizationSpace.for_model(model), ...)."
            )
        if not self.contains(config):
            raise ValueError(
                f"config is not in this space: expected keys {sorted(self)}, got {sorted(config)}."
            )
        import copy

        result = model if inplace else copy.deepcopy(model)
        ordered = sorted(parts.items(), key=lambda kv: STAGES.index(kv[1].stage))  # type: ignore[attr-defined]
        for prefix, part in ordered:
            sub = {k[len(prefix) + 1 :]: v for k, v in config.items() if k.startswith(prefix + ".")}
            result = part.apply(result, sub, inplace=True)  # type: ignore[attr-defined]
        return result

    @property
    def children(self) -> Mapping[str, SearchSpace]:
        """The spaces this one was merged from, by namespace (empty for a plain space)."""
        return dict(self._children)

    def _check_keys(self, values: Mapping[str, Any], *, what: str) -> None:
        missing = [k for k in self._params if k not in values]
        extra = [k for k in values if k not in self._params]
        if missing or extra:
            raise ValueError(
                f"{what} does not match the search space: missing {missing}, unexpected {extra}."
            )


def _codec(param: Parameter, stored: BaseDistribution | None) -> Parameter:
    """``param``, or its level index where a study stores an Ordinal that way."""
    if not isinstance(param, Ordinal) or stored is None or stored == param.distribution():
        return param
    indexed = param.indexed()
    return indexed if stored == indexed.distribution() else param
