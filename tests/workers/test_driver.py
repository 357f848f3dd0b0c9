"""The driver's cost per trial does not grow with the study: it keeps its own counts (the ledger)
and reads the whole study a bounded number of times per search, yet still sees what another
client wrote."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

import tradeoff
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
