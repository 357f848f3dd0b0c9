"""What a study's trials count for: ``n_trials`` counts Configs (a Config's first evaluation,
however it ended: at the first rung, or at the top for an initial Config), not promotions and
not trials given up; claims order drivers sharing a study.

:class:`Ledger` keeps those counts for the driver, so that a check costs O(1) instead of a read
of the whole study."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tradeoff._study import ATTR_FIDELITY, trial_status

# Statuses of FAIL trials that do not use up the evaluation budget.
NOT_COUNTED = ("infeasible", "stale", "interrupted", "surplus")


@dataclass(frozen=True)
class Entry:
    """What one trial counts for: its state, tradeoff's status of a FAIL trial, and the trial
    whose Config it promotes (None unless it is a promotion)."""

    state: TrialState
    status: str | None = None
    promoted_from: int | None = None

    @classmethod
    def of(cls, t: FrozenTrial) -> Entry:
        status = trial_status(t) if t.state == TrialState.FAIL else None
        return cls(t.state, status, promoted_from(t.user_attrs))

    @property
    def given_up(self) -> bool:
        """Ended without using budget: lost, interrupted, surplus, or rejected as infeasible
        before it ran."""
        return self.state == TrialState.FAIL and self.status in NOT_COUNTED

    @property
    def counts(self) -> bool:
        """Used up budget (a Config's first evaluation, however it ended)."""
        if self.promoted_from is not None:
            return False  # the budget counts Configs, not evaluations
        if self.state in (TrialState.COMPLETE, TrialState.PRUNED):
            return True
        return self.state == TrialState.FAIL and not self.given_up

    @property
    def claims(self) -> bool:
        """Holds budget: done, or running anywhere (promotions hold none)."""
        running = self.state == TrialState.RUNNING and self.promoted_from is None
        return self.counts or running


def promoted_from(user_attrs: dict[str, Any]) -> int | None:
    """The trial whose Config a trial with these user attributes promotes, or None."""
    source = (user_attrs.get(ATTR_FIDELITY) or {}).get("promoted_from")
    return None if source is None else int(source)


def count_done(study: optuna.Study) -> int:
    """Trials that used up budget: completed, pruned, or failed in evaluation."""
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def counts(t: FrozenTrial) -> bool:
    """Whether ``t`` used up budget (a Config's first evaluation, however it ended)."""
    return Entry.of(t).counts


def given_up(t: FrozenTrial) -> bool:
    """Whether ``t`` ended without using budget: lost, interrupted, surplus, or rejected as
    infeasible before it ran."""
    return Entry.of(t).given_up


def claims(trials: Sequence[FrozenTrial], *, up_to: int | None = None) -> int:
    """Trials holding budget (done, or running anywhere), optionally up to a trial number."""
    return sum(Entry.of(t).claims and (up_to is None or t.number <= up_to) for t in trials)


def promoted(t: FrozenTrial) -> bool:
    """Whether ``t`` re-evaluates a Config at a higher rung (a promotion)."""
    return promoted_from(t.user_attrs) is not None


class Ledger:
    """The study's trials as one driver last saw them, reduced to what they count for.

    Built from all the study's trials, then kept by :meth:`record` as the driver asks, enqueues
    and finishes trials. Queries cost O(1), but ``claims_up_to`` (the trials numbered after it,
    usually none) and ``next_waiting`` (the WAITING trials, usually few), so the driver reads
    the whole study only when another driver may have written.
    """

    def __init__(self, trials: Iterable[FrozenTrial] = ()) -> None:
        self._entries: dict[int, Entry] = {}
        self._waiting: set[int] = set()
        self._promoting: dict[int, set[int]] = {}  # source -> trials promoting it, not given up
        self.done = 0  # trials that used up budget
        self.claims = 0  # trials holding budget
        self.size = 0  # one past the highest trial number seen
        for t in trials:
            self.record(t.number, Entry.of(t))

    def record(self, number: int, entry: Entry) -> None:
        """Trial ``number`` now counts for ``entry``."""
        old = self._entries.get(number)
        if old is not None:
            self._count(number, old, -1)
        self._entries[number] = entry
        self._count(number, entry, +1)
        self.size = max(self.size, number + 1)

    def finish(self, number: int, state: TrialState, status: str | None = None) -> None:
        """Trial ``number`` ended in ``state`` (FAIL: with tradeoff's ``status``)."""
        old = self._entries.get(number)
        self.record(number, Entry(state, status, None if old is None else old.promoted_from))

    def entry(self, number: int) -> Entry | None:
        return self._entries.get(number)

    def next_waiting(self) -> int | None:
        """The lowest WAITING trial number (the one ``study.ask`` pops next), or None."""
        return min(self._waiting) if self._waiting else None

    def claims_up_to(self, number: int) -> int:
        """Trials holding budget numbered ``number`` or lower."""
        later = (self._entries.get(n) for n in range(number + 1, self.size))
        return self.claims - sum(e is not None and e.claims for e in later)

    def first_promoting(self, source: int) -> int | None:
        """The lowest-numbered trial promoting ``source``'s Config that was not given up."""
        numbers = self._promoting.get(source)
        return min(numbers) if numbers else None

    def _count(self, number: int, entry: Entry, sign: int) -> None:
        self.done += sign * entry.counts
        self.claims += sign * entry.claims
        if entry.state == TrialState.WAITING:
            (self._waiting.add if sign > 0 else self._waiting.discard)(number)
        if entry.promoted_from is not None and not entry.given_up:
            numbers = self._promoting.setdefault(entry.promoted_from, set())
            (numbers.add if sign > 0 else numbers.discard)(number)
