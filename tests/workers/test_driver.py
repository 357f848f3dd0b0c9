"""The driver's cost per trial does not grow with the study: it keeps its own counts (the ledger)
and reads the whole study a bounded number of times per search, yet still sees what another
client wrote."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

import tradeoff
from tradeoff.workers import InTrialOrder, LocalPool
from tradeoff.workers._budget import Entry, Ledger, count_done
from tradeoff.workers._tally import MAX_GAP

from ..conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1


class CountingStorage(optuna.storages.InMemoryStorage):
    """Counts reads of the study's trials that cost O(trials): every ``get_all_trials`` but
    ``ask``'s own look for WAITING trials (which the in-memory storage keeps incremental)."""

    def __init__(self) -> None:
        super().__init__()
        self.scans = 0

    def get_all_trials(self, study_id, deepcopy=True, states=None):
        if states != (TrialState.WAITING,):
            self.scans += 1
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)


def search(storage, n_trials, evaluate=zdt1, n_workers=2):
    return tradeoff.optimize(
        evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="random", n_trials=n_trials,
        n_workers=n_workers, storage=storage, study_name="s", seed=0, show_progress=True,
    )  # fmt: skip


def test_whole_study_reads_do_not_grow_with_the_number_of_trials():
    scans = {}
    for n in (40, 240):
        storage = CountingStorage()
        result = search(storage, n)
        assert (result.trials["status"] == "complete").sum() == n
        scans[n] = storage.scans
    # A read per trial (as before the ledger) would be 200 more; one may come from the timer.
    assert scans[240] <= scans[40] + 1 and scans[240] < 20, scans


def test_what_another_client_writes_meanwhile_keeps_the_budget_exact():
    """Another client asks trials (a gap in the driver's numbers), completes one, gives one up
    and enqueues one: the driver counts them all and stops at exactly ``n_trials``."""
    storage = CountingStorage()
    other = optuna.create_study(storage=storage, study_name="s", directions=["minimize"] * 2)
    calls: list[dict] = []
    held: list[optuna.Trial] = []

    def evaluate(config):
        calls.append(config)
        if len(calls) == 5:
            held.extend(other.ask() for _ in range(3))  # numbers the driver did not make
        if len(calls) == 8:
            other.tell(held[0], [0.5, 0.5])
            held[1].set_user_attr("tradeoff.status", "surplus")  # given up: holds no budget
            other.tell(held[1], state=TrialState.FAIL)
            other.enqueue_trial(ZDT_SPACE.encode(ZDT_SPACE.sample(1)))
        if len(calls) == 12:
            other.tell(held[2], [0.4, 0.6])
        return zdt1(config)

    result = search(storage, 20, evaluate, n_workers=1)
    assert count_done(result.study) == 20
    assert len(calls) == 18  # two of the other client's trials counted, the one given up not
    assert ZDT_SPACE.sample(1) in calls  # its enqueued trial ran here
    assert list(result.trials.query("status == 'surplus'")["trial"]) == [held[1].number]


def test_many_trials_another_client_made_are_read_with_the_whole_study():
    """More new trials than the driver reads one by one (``MAX_GAP``): it reads the study."""
    storage = CountingStorage()
    other = optuna.create_study(storage=storage, study_name="s", directions=["minimize"] * 2)
    calls: list[dict] = []

    def evaluate(config):
        calls.append(config)
        if len(calls) == 5:
            for _ in range(MAX_GAP + 6):
                other.tell(other.ask(), [0.5, 0.5])
        return zdt1(config)

    result = search(storage, MAX_GAP + 30, evaluate, n_workers=1)
    assert count_done(result.study) == MAX_GAP + 30
    assert len(calls) == 24


def test_ledger_counts_claims_waiting_trials_and_promotions():
    ledger = Ledger()
    ledger.record(0, Entry(TrialState.COMPLETE))
    ledger.record(1, Entry(TrialState.RUNNING))
    ledger.record(2, Entry(TrialState.WAITING, promoted_from=0))
    ledger.record(3, Entry(TrialState.RUNNING))
    assert (ledger.done, ledger.claims, ledger.size) == (1, 3, 4)
    assert ledger.claims_up_to(1) == 2 and ledger.next_waiting() == 2
    assert ledger.first_promoting(0) == 2
    ledger.finish(2, TrialState.RUNNING)  # popped: still a promotion, holding no budget
    assert ledger.next_waiting() is None and ledger.claims == 3
    ledger.finish(2, TrialState.FAIL, "surplus")  # given up: no longer promotes trial 0
    assert ledger.first_promoting(0) is None
    ledger.finish(1, TrialState.FAIL, "stale")
    ledger.finish(3, TrialState.FAIL, "failed")  # failed in evaluation: counts
    assert (ledger.done, ledger.claims) == (2, 2)


class RunningAtAsk(optuna.samplers.RandomSampler):
    """Random proposals; records how many other trials were running when each was asked."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.running: list[int] = []

    def before_trial(self, study, trial):
        states = (TrialState.RUNNING,)
        others = [
            t for t in study.get_trials(deepcopy=False, states=states) if t.number != trial.number
        ]
        self.running.append(len(others))
        super().before_trial(study, trial)


def slow_zdt1(config):
    time.sleep(0.02)
    return zdt1(config)


@pytest.mark.parametrize("ahead", [False, True])
def test_propose_ahead_asks_while_every_worker_is_busy_and_keeps_the_budget_exact(ahead):
    sampler = RunningAtAsk(seed=0)
    result = tradeoff.optimize(
        slow_zdt1, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer=sampler, n_trials=12,
        backend=InTrialOrder(LocalPool(3)), seed=0, show_progress=False, propose_ahead=ahead,
    )  # fmt: skip
    # Three workers: the first asks see 0, 1, 2 running; then each ask follows a finished
    # trial (3 - 1 running), or, ahead, comes while all three run.
    steady = 3 if ahead else 2
    assert sampler.running == [0, 1, 2] + [steady] * 9
    assert len(result.trials) == 12 and (result.trials["status"] == "complete").all()


def test_a_proposal_made_ahead_and_never_started_runs_first_on_resume(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    common = dict(
        objectives=ZDT_OBJECTIVES, optimizer="random", n_trials=30, n_workers=2,
        storage=storage, study_name="s", show_progress=False, propose_ahead=True,
    )  # fmt: skip
    calls: list[dict] = []

    def evaluate(config):
        calls.append(dict(config))
        time.sleep(0.05)
        return zdt1(config)

    first = tradeoff.optimize(evaluate, ZDT_SPACE, timeout=0.3, seed=0, **common)
    (spare,) = first.trials.index[first.trials["status"] == "interrupted"]
    unstarted = first.study.trials[spare]
    assert "stopped before it started" in unstarted.user_attrs["tradeoff.reason"]
    assert unstarted.params not in calls  # asked ahead, never evaluated
    done = len(calls)
    assert 0 < done < 30 and not first.study.get_trials(states=(TrialState.RUNNING,))

    second = tradeoff.optimize(evaluate, ZDT_SPACE, seed=1, **common)
    assert calls[done] == unstarted.params  # the proposal left over runs first
    counted = second.trials[second.trials["status"] == "complete"]
    assert len(counted) == 30 and len(calls) == 30  # nothing ran twice, the budget is exact
