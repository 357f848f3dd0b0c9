"""In-process evaluation on a thread pool: the default pool, and the test double."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any

from tradeoff.workers._base import (
    Evaluate,
    Outcome,
    WorkerPool,
    check_n_workers,
    host_worker_id,
    run_evaluation,
)


class LocalPool(WorkerPool):
    """Evaluates Configs in this process on ``n_workers`` threads.

    Threads suit evaluations that release the GIL (torch, numpy, I/O). A timed-out evaluation
    cannot be killed in a thread: its trial is failed and its late result discarded.

    Args:
        n_workers: Evaluations run at once.
    """

    def __init__(self, n_workers: int = 1) -> None:
        self.n_workers = check_n_workers(n_workers)
        self._executor: cf.ThreadPoolExecutor | None = None
        self._evaluate: Evaluate | None = None
        self._futures: dict[cf.Future[Outcome], int] = {}
        self._node = host_worker_id().split(":")[0]

    def open(self, evaluate: Evaluate) -> None:
        self._evaluate = evaluate
        self._executor = cf.ThreadPoolExecutor(self.n_workers, thread_name_prefix="tradeoff")

    def submit(self, task_id: int, config: dict[str, Any]) -> None:
        if self._executor is None or self._evaluate is None:
            raise RuntimeError("LocalPool.submit called before open().")
        future = self._executor.submit(self._run, self._evaluate, config, task_id)
        self._futures[future] = task_id

    def _run(self, evaluate: Evaluate, config: dict[str, Any], task_id: int) -> Outcome:
        worker = host_worker_id(threading.current_thread().name)
        return run_evaluation(evaluate, config, task_id, worker, self._node)

    def wait(self, timeout: float | None) -> list[Outcome]:
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        outcomes = []
        for future in done:
            del self._futures[future]
            outcomes.append(future.result())
        return outcomes

    def cancel(self, task_id: int) -> None:
        for future, tid in list(self._futures.items()):
            if tid == task_id:
                future.cancel()
                del self._futures[future]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._futures.clear()
