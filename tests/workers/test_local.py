import threading

import pytest

from tradeoff.workers import LocalPool, WorkerPool, evaluate_all


def collect(pool: WorkerPool, n: int) -> list:
    outcomes = []
    while len(outcomes) < n:
        outcomes += pool.wait(timeout=10)
    return sorted(outcomes, key=lambda o: o.task_id)


def test_local_pool_runs_and_reports_outcomes():
    with LocalPool(2) as pool:
        pool.open(lambda c: {"y": c["x"] * 2})
        for i in range(5):
            pool.submit(i, {"x": i})
        outcomes = collect(pool, 5)
    assert [o.metrics for o in outcomes] == [{"y": 2 * i} for i in range(5)]
    assert all(o.error is None and o.duration_s >= 0 and o.worker for o in outcomes)


def test_local_pool_captures_exceptions_with_traceback():
    def boom(config):
        raise ValueError("bad layer fc1")

    with LocalPool(1) as pool:
        pool.open(boom)
        pool.submit(7, {})
        (outcome,) = collect(pool, 1)
    assert outcome.task_id == 7 and outcome.metrics is None
    assert "Traceback" in outcome.error and "ValueError: bad layer fc1" in outcome.error


def test_local_pool_runs_n_workers_at_once():
    barrier = threading.Barrier(3, timeout=10)

    def meet(config):
        barrier.wait()  # raises BrokenBarrierError unless 3 evaluations overlap
        return {}

    with LocalPool(3) as pool:
        pool.open(meet)
        for i in range(3):
            pool.submit(i, {})
        outcomes = collect(pool, 3)
    assert all(o.error is None for o in outcomes)


def test_wait_without_work_returns_nothing():
    with LocalPool(1) as pool:
        pool.open(lambda c: {})
        assert pool.wait(timeout=0.01) == []


def test_submit_before_open_is_an_error():
    with pytest.raises(RuntimeError, match="before open"):
        LocalPool(1).submit(0, {})


def test_evaluate_all_keeps_order_runs_n_workers_at_once_and_reports_failures():
    barrier = threading.Barrier(2, timeout=10)

    def evaluate(config):
        if config["x"] < 2:  # the first two must run at the same time
            barrier.wait()
        if config["x"] == 3:
            raise ValueError("no x=3")
        return {"y": config["x"] ** 2}

    pool = LocalPool(2)
    outcomes = evaluate_all(pool, evaluate, [{"x": x} for x in range(6)])
    assert [o.task_id for o in outcomes] == list(range(6))
    assert [o.metrics for o in outcomes] == [{"y": x * x} if x != 3 else None for x in range(6)]
    assert "ValueError: no x=3" in outcomes[3].error
    # Closed afterwards, and it opens again (optimize reuses the pool the proxy ran on).
    again = evaluate_all(pool, lambda c: {"y": -c["x"]}, [{"x": 1}])
    assert again[0].metrics == {"y": -1}
