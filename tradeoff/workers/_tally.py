"""The driver's tally of the study: a :class:`Ledger` it keeps from what it does itself, read
again from storage only when another driver may have written."""

from __future__ import annotations

import itertools
import math
import operator
import time

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from tradeoff.workers._budget import Entry, Ledger, promoted_from

SYNC_S = 5.0
"""Seconds between reads of the whole study, for what other drivers changed meanwhile."""
MAX_GAP = 64
"""Trials other drivers created since the last look that are read one by one; more, and the
whole study is read."""


class Tally:
    """What the study's trials count for, as one driver sees them, at O(1) per trial.

    The driver reports each trial it asks, enqueues and ends; the whole study is read when it
    starts, every ``SYNC_S`` seconds (other drivers' trials finish or are given up), when
    ``ask`` gives a trial number the ledger did not expect (another driver asked or enqueued;
    a few new trials are read one by one instead) and when the driver sets ``resync``.

    Args:
        study: The study.
        storage: Its storage (single trials are read from it).
        keep_trials: Also keep every trial as last read (``trials``, indexed by number) and
            which were read again since the promoter last looked (:meth:`changed`).
    """

    def __init__(self, study: optuna.Study, storage: BaseStorage, *, keep_trials: bool) -> None:
        self.study, self.storage, self.keep_trials = study, storage, keep_trials
        self.ledger = Ledger()
        self.trials: list[FrozenTrial] = []
        self._changed: set[int] | None = None  # None: any of them (never looked at)
        self.resync = True
        self._synced_at = -math.inf
        self._study_id = storage.get_study_id_from_name(study.study_name)

    def refresh(self) -> None:
        """Read the whole study if it is due (``resync``, or ``SYNC_S`` since the last read)."""
        if self.resync or time.monotonic() - self._synced_at >= SYNC_S:
            self.sync()

    def sync(self) -> list[FrozenTrial]:
        """Read the whole study; its trials."""
        trials = self.study.get_trials(deepcopy=False)
        self.ledger = Ledger(trials)
        if self.keep_trials:
            old, self.trials = self.trials, sorted(trials, key=lambda t: t.number)
            if self._changed is not None:  # what differs (storages that keep their trial
                # objects, as in-memory does, give back the same object for an unchanged one)
                moved = map(operator.is_not, self.trials, old)
                self._changed.update(itertools.compress(itertools.count(), moved))
        self._synced_at, self.resync = time.monotonic(), False
        return trials

    def expected(self) -> int:
        """The number ``ask`` should give next: the lowest WAITING trial, else a new one."""
        waiting = self.ledger.next_waiting()
        return self.ledger.size if waiting is None else waiting

    def took(self, trial: optuna.Trial, expected: int) -> None:
        """Count the trial ``ask`` gave, ``expected`` before it asked."""
        gap = range(self.ledger.size, trial.number)
        if trial.number != expected:
            if self.ledger.next_waiting() is not None or not 0 < len(gap) <= MAX_GAP:
                self.sync()
                return
            for number in gap:
                self._read(number)
        entry = Entry(TrialState.RUNNING, promoted_from=promoted_from(trial.user_attrs))
        self.ledger.record(trial.number, entry)
        if self.keep_trials:
            self._read(trial.number)

    def enqueued(self, source: int | None) -> int:
        """Count a trial just enqueued (promoting ``source``'s Config, if not None); the number
        it should have (unless another driver created a trial meanwhile: ``ask`` tells)."""
        number = self.ledger.size
        self.ledger.record(number, Entry(TrialState.WAITING, promoted_from=source))
        return number

    def ended(self, number: int, state: TrialState, status: str | None = None) -> None:
        """Trial ``number`` ended in ``state`` (FAIL: with tradeoff's ``status``)."""
        if self.ledger.entry(number) is None:  # another driver's, never seen: read them all
            self.resync = True
            return
        self.ledger.finish(number, state, status)
        if self.keep_trials:
            self._read(number)

    def changed(self) -> set[int] | None:
        """The numbers of the trials read again, or new, since the last call (None: the
        first call; trials beyond the last call's are new in any case)."""
        changed, self._changed = self._changed, set()
        return changed

    def _read(self, number: int) -> None:
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        t = self.storage.get_trial(trial_id)
        self.ledger.record(number, Entry.of(t))
        if not self.keep_trials:
            return
        for missing in range(len(self.trials), number):  # numbers below exist: read them too
            self._read(missing)
        if number < len(self.trials):
            self.trials[number] = t
        else:
            self.trials.append(t)
        if self._changed is not None:
            self._changed.add(number)
