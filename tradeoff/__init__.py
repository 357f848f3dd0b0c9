"""tradeoff: the Pareto set of model configurations, quality against cost.

``import tradeoff`` stays light: torch, ray and botorch load only when a search uses them.
"""

from tradeoff import objectives, search, spaces, workers
from tradeoff._optimize import optimize
from tradeoff._result import SearchResult

__version__ = "0.1.0"

__all__ = ["SearchResult", "objectives", "optimize", "search", "spaces", "workers"]
