"""Where evaluations run: worker pools (in-process threads, Ray tasks)."""

from tradeoff.workers._base import Evaluate, Outcome, WorkerPool, evaluate_all
from tradeoff.workers._local import LocalPool
from tradeoff.workers._ordered import InTrialOrder
from tradeoff.workers._ray import RayPool

__all__ = [
    "Evaluate",
    "InTrialOrder",
    "LocalPool",
    "Outcome",
    "RayPool",
    "WorkerPool",
    "evaluate_all",
]
