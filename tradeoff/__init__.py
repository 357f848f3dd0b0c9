"""tradeoff: the Pareto set of model configurations, quality against cost.

``import tradeoff`` stays light: torch, ray and botorch load only when a search uses them
(``tradeoff.compress`` loads torch on first use).
"""

from importlib import import_module
from typing import Any

from tradeoff import objectives, review, search, spaces, workers
from tradeoff._optimize import optimize
from tradeoff._result import SearchResult

__version__ = "0.1.0"

__all__ = [
    "SearchResult",
    "compress",
    "objectives",
    "optimize",
    "review",
    "search",
    "spaces",
    "workers",
]


def __getattr__(name: str) -> Any:
    if name == "compress":  # needs torch: imported on first use
        return import_module("tradeoff._compress").compress
    raise AttributeError(f"module 'tradeoff' has no attribute {name!r}")
