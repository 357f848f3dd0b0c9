"""InTrialOrder: a worker pool whose outcomes reach the driver in trial order."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from tradeoff.workers._base import Evaluate, Outcome, WorkerPool


class InTrialOrder(WorkerPool):
    """Wraps ``pool`` so its outcomes reach the driver one at a time, in trial order.

    With several workers, a seeded optimizer's next proposal depends on which trials have
    finished when it is asked, so on which worker happened to finish first. Through this
    wrapper trial ``k`` is proposed when trials ``0 .. k - n_workers`` are finished and the
    rest are running (``0 .. k - n_workers - 1`` with ``propose_ahead``), whatever the
    timing: a seeded search then gives the same trials on every run, with any number of
    workers. The cost is throughput: a worker that finishes
    early holds its result (and its slot) until the trials before it are in.

    Args:
        pool: The pool that runs the evaluations (``LocalPool``, ``RayPool``...).

    Example::

        optimize(..., backend=InTrialOrder(RayPool(4, num_gpus=0.5)), seed=0)
    """

    def __init__(self, pool: WorkerPool) -> None:
        if not isinstance(pool, WorkerPool):
            raise TypeError(f"InTrialOrder wraps a WorkerPool, got {type(pool).__name__}.")
        self.pool, self.n_workers = pool, pool.n_workers
        self._order: deque[int] = deque()  # task ids in submission (= trial) order
        self._done: dict[int, Outcome] = {}  # finished, waiting for the trials before them

    def open(self, evaluate: Evaluate) -> None:
        self.pool.open(evaluate)

    def submit(self, task_id: int, config: dict[str, Any]) -> None:
        self._order.append(task_id)
        self.pool.submit(task_id, config)

    def wait(self, timeout: float | None) -> list[Outcome]:
        """The oldest running trial's outcome once it is in (an empty list at ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._order and self._order[0] not in self._done:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._done.update((o.task_id, o) for o in self.pool.wait(left))
            if deadline is not None and time.monotonic() >= deadline:
                break
        if self._order and self._order[0] in self._done:
            return [self._done.pop(self._order.popleft())]
        return []

    def cancel(self, task_id: int) -> None:
        if task_id in self._order:
            self._order.remove(task_id)
        self._done.pop(task_id, None)
        self.pool.cancel(task_id)

    def close(self) -> None:
        self.pool.close()
