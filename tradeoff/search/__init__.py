"""Who proposes: optimizers, all of them Optuna samplers."""

from importlib import import_module
from typing import Any

from tradeoff.search._presets import (
    OPTIMIZERS,
    auto_choice,
    auto_optimizer,
    check_optimizer,
    make_sampler,
)

_LAZY = {
    "EvolutionSampler": "tradeoff.search._evolution",
    "Fidelity": "tradeoff.search._asha",
    "HandoverSampler": "tradeoff.search._handover",
    "LayerCrossover": "tradeoff.search._operators",
    "MOBOSampler": "tradeoff.search._mobo",
    "NeighbourMutation": "tradeoff.search._operators",
    "ProxyResult": "tradeoff.search._baselines",
    "additive_proxy": "tradeoff.search._baselines",
    "additive_proxy_front": "tradeoff.search._baselines",
    "uniform_configs": "tradeoff.search._baselines",
}

__all__ = [
    "OPTIMIZERS",
    "auto_choice",
    "auto_optimizer",
    "check_optimizer",
    "make_sampler",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tradeoff.search' has no attribute {name!r}")
