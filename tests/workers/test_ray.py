"""RayPool and optimize(backend="ray") on a real local Ray instance."""

import os

import pytest

import tradeoff
from tradeoff.workers import RayPool

from ..conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1

pytestmark = pytest.mark.ray


def run_on_ray(evaluate, **kwargs):
    options = {
        "objectives": ZDT_OBJECTIVES,
        "optimizer": "random",
        "n_workers": 2,
        "backend": "ray",
        "show_progress": False,
        **kwargs,
    }
    return tradeoff.optimize(evaluate, ZDT_SPACE, **options)


def collect(pool, n):
    outcomes = []
    while len(outcomes) < n:
        outcomes += pool.wait(timeout=30)
    return sorted(outcomes, key=lambda o: o.task_id)


def worker_pid(config):
    return {"pid": float(os.getpid())}


def test_ray_pool_runs_tasks_in_other_processes(ray_session):
    pool = RayPool(2)
    pool.open(worker_pid)
    for i in range(4):
        pool.submit(i, {"i": i})
    outcomes = collect(pool, 4)
    pool.close()
    assert [o.task_id for o in outcomes] == [0, 1, 2, 3]
    assert all(o.metrics["pid"] != os.getpid() for o in outcomes)
    assert all(o.node and o.worker for o in outcomes)
    assert ray_session.is_initialized()  # a pool does not shut down a Ray it did not start


def test_ray_pool_reports_exceptions(ray_session):
    def boom(config):
        raise MemoryError("worker ran out of memory")

    pool = RayPool(1)
    pool.open(boom)
    pool.submit(0, {})
    (outcome,) = collect(pool, 1)
    pool.close()
    assert "MemoryError: worker ran out of memory" in outcome.error


def test_ray_pool_warns_when_no_node_can_run_a_trial(ray_session, caplog):
    pool = RayPool(1, resources={"tpu_v9": 1})  # a typo or a node that is not there
    with caplog.at_level("WARNING", logger="tradeoff"):
        pool.open(worker_pid)
    pool.close()
    assert "No node of the Ray cluster offers {'CPU': 1.0, 'tpu_v9': 1}" in caplog.text
    caplog.clear()
    pool = RayPool(1, num_cpus=0.5)
    with caplog.at_level("WARNING", logger="tradeoff"):
        pool.open(worker_pid)
    pool.close()
    assert "No node" not in caplog.text


def test_ray_pool_validates_resources():
    with pytest.raises(ValueError, match="num_cpus and num_gpus must be >= 0"):
        RayPool(1, num_gpus=-1)
    with pytest.raises(ValueError, match="n_workers"):
        RayPool(0)


def slow_zdt1(config):
    import time

    time.sleep(0.2)  # long enough that both Ray slots are busy at once
    return zdt1(config)


def test_end_to_end_on_ray_with_sqlite(ray_session, tmp_path):
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    result = run_on_ray(slow_zdt1, n_trials=16, storage=url, study_name="zdt-ray", seed=0)
    trials = result.trials
    assert len(trials) == 16 and (trials["status"] == "complete").all()
    assert trials["worker"].nunique() >= 2  # evaluated by more than one Ray worker
    assert trials["node"].notna().all()
    assert len(result.pareto) >= 1 and result.hypervolume() > 0
    # The same search file-free resume works on Ray too.
    again = run_on_ray(zdt1, n_trials=20, storage=url, study_name="zdt-ray", seed=0)
    assert len(again.trials) == 20


def test_ray_failures_and_timeouts_are_recorded(ray_session):
    import time

    def evaluate(config):
        if config["x0"] < 0.2:
            raise ValueError("diverged")
        if config["x0"] > 0.9:
            time.sleep(60)
        return zdt1(config)

    result = run_on_ray(evaluate, n_trials=20, seed=1, trial_timeout=2.0)
    trials = result.trials
    failed = trials[trials["status"] == "failed"]
    assert len(trials) == 20
    assert (failed["failure"].str.contains("diverged") == (failed["x0"] < 0.2)).all()
    assert failed.loc[failed["x0"] > 0.9, "failure"].str.contains("timed out").all()
    assert (trials.loc[trials["status"] == "complete", "x0"].between(0.2, 0.9)).all()


class CallCounter:
    """An evaluate object with state: how many trials this copy of it has run."""

    def __init__(self):
        self.calls = 0

    def __call__(self, config):
        self.calls += 1
        return {"calls": float(self.calls), "pid": float(os.getpid())}


def test_actors_keep_evaluate_loaded_across_trials(ray_session):
    pool = RayPool(2, actors=True)
    pool.open(CallCounter())
    outcomes = []
    for i in range(6):
        if i >= 2:
            outcomes += pool.wait(timeout=30)  # keep at most 2 in flight
        pool.submit(i, {})
    outcomes += collect(pool, 6 - len(outcomes))
    pool.close()
    by_pid = {}
    for o in outcomes:
        by_pid.setdefault(o.metrics["pid"], []).append(o.metrics["calls"])
    # Each actor's copy of evaluate counts up: it was loaded once and reused.
    assert len(by_pid) == 2
    assert all(sorted(calls) == list(range(1, len(calls) + 1)) for calls in by_pid.values())
    assert sum(len(c) for c in by_pid.values()) == 6


def test_a_dying_actor_fails_only_its_trial(ray_session):
    def evaluate(config):
        if config["x0"] < 0.25:
            os._exit(1)  # the worker process dies mid-trial
        return zdt1(config)

    result = run_on_ray(evaluate, n_trials=10, ray_actors=True, seed=3)
    trials = result.trials
    failed = trials[trials["status"] == "failed"]
    assert len(trials) == 10
    assert len(failed) >= 1 and (failed["x0"] < 0.25).all()
    assert failed["failure"].str.contains("Actor").all()
    assert (trials["status"] == "complete").sum() == (trials["x0"] >= 0.25).sum()


def test_large_evaluate_closures_go_through_the_object_store(ray_session):
    import numpy as np

    from tradeoff.workers._ray import INLINE_LIMIT_BYTES

    weights = np.arange(INLINE_LIMIT_BYTES // 4, dtype=np.float64)  # ~2 MB, over the limit

    def evaluate(config):
        return {"f1": config["x0"], "f2": float(weights[-1]) - config["x0"]}

    result = run_on_ray(evaluate, n_trials=4, seed=0)
    assert (result.trials["status"] == "complete").all()
    assert (result.trials["f2"] == weights[-1] - result.trials["x0"]).all()


def zdt1_at_budget(config, budget):
    """ZDT1 with an offset of ``1 / budget`` on f2 (runs in a Ray worker)."""
    values = zdt1(config)
    return {"f1": values["f1"], "f2": values["f2"] + 1.0 / budget}


def test_multi_fidelity_runs_on_ray(ray_session):
    from tradeoff.search import Fidelity

    result = run_on_ray(zdt1_at_budget, n_trials=12, fidelity=Fidelity((1, 4), eta=2))
    trials = result.trials
    assert (trials["rung"] == 0).sum() == 12 and (trials["rung"] == 1).sum() >= 1
    assert (trials.loc[trials["status"] == "complete", "budget"] == 4).all()
    # The budget reached the workers: each evaluation carries its own budget's offset.
    for _, row in trials[trials["status"] != "failed"].iterrows():
        config = {name: row[name] for name in ZDT_SPACE}
        assert row["f2"] == pytest.approx(zdt1(config)["f2"] + 1.0 / row["budget"])
