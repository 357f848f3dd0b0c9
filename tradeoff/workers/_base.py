"""The worker-pool extension point: where configurations are evaluated.

A pool receives plain Configs and hands back plain :class:`Outcome` objects; it never sees
the study. Call order: ``open(evaluate)`` once, then any number of ``submit`` / ``wait`` /
``cancel``, then ``close()`` (also done by the context manager).
"""

from __future__ import annotations

import abc
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

Evaluate = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass
class Outcome:
    """What one evaluation produced.

    Attributes:
        task_id: The id given to :meth:`WorkerPool.submit`.
        metrics: What ``evaluate`` returned (unvalidated), or ``None`` when it raised.
        error: The full traceback (or reason) of a failure, else ``None``.
        duration_s: Wall time of the evaluation on the worker, in seconds.
        worker: Which worker ran it (``host:pid`` plus a thread or Ray worker id).
        node: The machine or Ray node id.
    """

    task_id: int
    metrics: Any = None
    error: str | None = None
    duration_s: float = 0.0
    worker: str = ""
    node: str = ""


def run_evaluation(
    evaluate: Evaluate, config: dict[str, Any], task_id: int, worker: str, node: str
) -> Outcome:
    """Run ``evaluate(config)`` and capture its result, timing and any exception."""
    start = time.perf_counter()
    try:
        metrics = evaluate(config)
        error = None
    except Exception:  # a failing evaluation is a result, not a crash of the search
        metrics, error = None, traceback.format_exc()
    return Outcome(task_id, metrics, error, time.perf_counter() - start, worker, node)


class AtBudget:
    """Multi-fidelity: ``evaluate(config, budget)`` behind the pools' one-argument call.

    The driver submits ``{"config": ..., "budget": ...}`` payloads; picklable, so it ships to
    Ray workers like the function it wraps.
    """

    def __init__(self, evaluate: Callable[..., Mapping[str, Any]]) -> None:
        self.evaluate = evaluate

    def __call__(self, payload: dict[str, Any]) -> Mapping[str, Any]:
        return self.evaluate(payload["config"], payload["budget"])


def host_worker_id(suffix: str = "") -> str:
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{suffix}" if suffix else base


class WorkerPool(abc.ABC):
    """Runs evaluations somewhere and reports their outcomes asynchronously.

    Implementations must let ``n_workers`` evaluations run at once and never block in
    ``submit``; ``wait`` returns as soon as any evaluation finished.
    """

    n_workers: int

    @abc.abstractmethod
    def open(self, evaluate: Evaluate) -> None:
        """Prepare workers for ``evaluate`` (start threads, connect to Ray, ship the function)."""

    @abc.abstractmethod
    def submit(self, task_id: int, config: dict[str, Any]) -> None:
        """Start evaluating ``config``; its outcome carries ``task_id``."""

    @abc.abstractmethod
    def wait(self, timeout: float | None) -> list[Outcome]:
        """Outcomes finished since the last call; waits up to ``timeout`` s for the first one."""

    def cancel(self, task_id: int) -> None:  # noqa: B027 - optional hook
        """Stop an evaluation if the backend can (Ray kills it; threads cannot be killed)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers. Evaluations still running are abandoned."""

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_n_workers(n_workers: Any) -> int:
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}.")
    return n_workers


def evaluate_all(
    pool: WorkerPool, evaluate: Evaluate, configs: Sequence[dict[str, Any]]
) -> list[Outcome]:
    """Evaluate every Config on ``pool``, at most ``pool.n_workers`` at a time; the outcomes
    in the order of ``configs``. Opens the pool and closes it again (a pool can be opened
    again afterwards, by ``optimize`` for instance).

    For batches of measurements outside a search (a baseline's per-layer errors): a failed
    evaluation is an outcome with its ``error``, the others still run.
    """
    outcomes: dict[int, Outcome] = {}
    todo = list(enumerate(configs))[::-1]
    running = 0
    pool.open(evaluate)
    try:
        while todo or running:
            while todo and running < pool.n_workers:
                task_id, config = todo.pop()
                pool.submit(task_id, config)
                running += 1
            for outcome in pool.wait(None):
                outcomes[outcome.task_id] = outcome
                running -= 1
    finally:
        pool.close()
    return [outcomes[i] for i in range(len(configs))]
