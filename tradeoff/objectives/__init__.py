"""What is measured: objectives, constraints, cost functions and quality objectives.

The cost functions (``weight_storage_bytes``, ``bitops``, ``latency_ms``...) and the quality
objectives (``KLToDense``, ``Perplexity``, ``Accuracy``, ``QualityFn``) need torch; they load on
first use, so importing this package stays light.
"""

from importlib import import_module
from typing import Any

from tradeoff.objectives._objective import Constraint, Objective, ObjectiveSet

_COSTS = (
    "bitops",
    "latency_ms",
    "macs",
    "model_cost",
    "nonzero_parameters",
    "parameters",
    "peak_memory_mb",
    "trainable_parameters",
    "weight_storage_bytes",
)

_QUALITY = ("Accuracy", "KLToDense", "Perplexity", "Quality", "QualityFn")

__all__ = ["Constraint", "Objective", "ObjectiveSet", *_COSTS, *_QUALITY]


def __getattr__(name: str) -> Any:
    if name in _COSTS:
        return getattr(import_module("tradeoff.objectives._costs"), name)
    if name in _QUALITY:
        return getattr(import_module("tradeoff.objectives._quality"), name)
    raise AttributeError(f"module 'tradeoff.objectives' has no attribute {name!r}")
