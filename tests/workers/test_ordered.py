"""InTrialOrder: outcomes in trial order, so seeded parallel searches reproduce."""

import time

import pytest

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.spaces import Float, Ordinal, SearchSpace
from tradeoff.workers import InTrialOrder, LocalPool

SPACE = SearchSpace({"x": Float(0.0, 1.0), "bits": Ordinal([2, 3, 4, 8])})
OBJECTIVES = [Objective("error"), Objective("size", fn=lambda c: float(c["bits"]))]


def test_outcomes_come_out_in_submission_order():
    # Later trials finish first; the wrapper holds them until the earlier ones are in.
    with InTrialOrder(LocalPool(3)) as pool:
        pool.open(lambda c: time.sleep(c["delay"]) or {"y": c["i"]})
        for i, delay in enumerate([0.3, 0.1, 0.0]):
            pool.submit(i, {"i": i, "delay": delay})
        order = []
        while len(order) < 3:
            order += [o.task_id for o in pool.wait(timeout=5)]
    assert order == [0, 1, 2]


def test_a_cancelled_trial_does_not_block_the_ones_after_it():
    with InTrialOrder(LocalPool(2)) as pool:
        pool.open(lambda c: time.sleep(c["delay"]) or {"y": 1.0})
        pool.submit(0, {"delay": 0.5})
        pool.submit(1, {"delay": 0.0})
        assert pool.wait(timeout=0.1) == []  # trial 1 is done but waits for trial 0
        pool.cancel(0)
        assert [o.task_id for o in pool.wait(timeout=1)] == [1]


def _search(slow_bits: int) -> list[dict]:
    """A seeded 2-worker TPE search in which Configs with ``slow_bits`` take longer."""

    def evaluate(config):
        time.sleep(0.05 if config["bits"] == slow_bits else 0.0)
        return {"error": (config["x"] - 0.3) ** 2 + 1.0 / config["bits"]}

    result = tradeoff.optimize(
        evaluate,
        SPACE,
        objectives=OBJECTIVES,
        optimizer="tpe",
        n_trials=16,
        backend=InTrialOrder(LocalPool(2)),
        seed=0,
        show_progress=False,
    )
    return result.trials[["trial", "x", "bits", "error"]].to_dict("records")


@pytest.mark.slow
def test_a_seeded_parallel_search_is_the_same_whichever_worker_is_faster():
    assert _search(slow_bits=2) == _search(slow_bits=8)


def test_only_a_worker_pool_is_wrapped():
    with pytest.raises(TypeError, match="InTrialOrder wraps a WorkerPool, got str"):
        InTrialOrder("ray")
