"""The driver loop: the only code that touches the study during a search.

It keeps ``pool.n_workers`` trials in flight, asks the sampler for a new trial as soon as one
finishes (a slow trial never blocks the others), validates what workers return, and records
every trial with its Config, timings, worker and reason of failure. Lost trials (left RUNNING
by a driver that died, or interrupted) are failed, marked with why (before failing: a finished
trial takes no more attributes), and their Configs enqueued again.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

try:  # Study.tell is this plus a deep copy of the trial it returns (the driver never reads it)
    from optuna.study._tell import _tell_with_warning
except ImportError:  # pragma: no cover - another Optuna layout: the public call
    _tell_with_warning = None  # type: ignore[assignment]

from tradeoff._study import (
    ATTR_CONFIG,
    ATTR_ERROR,
    ATTR_FIDELITY,
    ATTR_REASON,
    ATTR_RESULT,
    ATTR_STATUS,
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    LOST_REASON,
    STALE_REASON,
    UNDRAWN_REASON,
    finish_in_one_transaction,
    heartbeat_timing,
    params_in_one_transaction,
    record_heartbeats,
    retry_attrs,
    stale_trials,
    write_constraints,
)
from tradeoff.objectives import ObjectiveSet
from tradeoff.spaces import Config, SearchSpace
from tradeoff.workers._base import Outcome, WorkerPool
from tradeoff.workers._budget import promoted_from
from tradeoff.workers._front import Front
from tradeoff.workers._tally import Tally

logger = logging.getLogger("tradeoff")

MAX_INFEASIBLE_STREAK = 1000


class Promoting(Protocol):
    """Multi-fidelity scheduling (``tradeoff.search.Promoter``); the driver only calls it."""

    @property
    def top(self) -> int: ...

    def tag(self, rung: int, promoted_from: int | None = None) -> dict[str, Any]: ...

    def next(self, trials: Sequence[FrozenTrial], changed: Iterable[int] | None = None) -> Any:
        """A promotion (``.number``, ``.params``, ``.rung``) or None; ``changed``: the numbers
        of the trials read again since the last call (None: any may have changed)."""


@dataclass
class _InFlight:
    trial: optuna.Trial
    config: Config
    known: dict[str, float]
    deadline: float
    trial_id: int | None = None
    rung: dict[str, Any] | None = None  # the tradeoff.fidelity tag, with multi-fidelity


class Driver:
    """Runs one search over ``study`` with ``pool`` until ``n_trials`` are done.

    Args:
        study: The study (its sampler proposes).
        storage: The study's storage (for constraint attributes and heartbeats).
        space: Decodes ``trial.params`` into Configs.
        objectives: Validates results; computes known costs.
        pool: Where evaluations run.
        evaluate: The user's function.
        n_trials: Total budgeted trials the study should reach.
        timeout: Stop proposing after this many seconds (running trials finish).
        trial_timeout: Fail (and cancel) a trial running longer than this, in seconds.
        on_progress: Called after each finished trial with (done, pareto size, hypervolume).
        reference: Hypervolume reference point for progress; derived from the data if None.
        promoter: Multi-fidelity: ``n_trials`` then counts Configs started at the lowest
            budget; ``pool`` evaluates ``{"config": ..., "budget": ...}`` payloads, and
            evaluations below the top budget end PRUNED with their metrics recorded.
        propose_ahead: While every worker is busy, ask the sampler for the next Config, so a
            worker that frees up starts it at once and the sampler's time overlaps the
            trials' instead of following them (a slow sampler, many workers). That proposal
            sees one more running trial than it would otherwise (samplers that model running
            trials, like mobo and Optuna's GP, account for it). Not with ``promoter`` (a
            promotion depends on the trials that finish). A proposal left unstarted when the
            search stops is recorded ``interrupted`` (not counted) and its Config enqueued
            again, for a resumed search.
    """

    def __init__(
        self,
        *,
        study: optuna.Study,
        storage: BaseStorage,
        space: SearchSpace,
        objectives: ObjectiveSet,
        pool: WorkerPool,
        evaluate: Callable[[Config], Any],
        n_trials: int,
        timeout: float | None = None,
        trial_timeout: float | None = None,
        on_progress: Callable[[int, int, float], None] | None = None,
        reference: Sequence[float] | None = None,
        promoter: Promoting | None = None,
        propose_ahead: bool = False,
    ) -> None:
        self.study, self.storage, self.space, self.objectives = study, storage, space, objectives
        self.pool, self.evaluate, self.n_trials = pool, evaluate, n_trials
        self.timeout, self.trial_timeout = timeout, trial_timeout
        self.on_progress, self.promoter = on_progress, promoter
        self._distributions = space.distributions()
        self._in_flight: dict[int, _InFlight] = {}
        self._ids: dict[int, int] = {}  # trial number -> storage id, of trials asked here, live
        self._front = Front(objectives.directions, reference)
        self._last_beat = 0.0
        self._last_recover = time.monotonic()
        timing = heartbeat_timing(storage)
        self._heartbeat = timing is not None
        self._beat_s, self._grace_s = timing or (float(HEARTBEAT_INTERVAL_S), float(GRACE_PERIOD_S))
        self._study_id = storage.get_study_id_from_name(study.study_name)
        self._infeasible_streak = 0
        self._adopted: set[int] = set()
        self._tally = Tally(study, storage, keep_trials=promoter is not None)
        self.stopped_reason: str | None = None
        self.propose_ahead = propose_ahead and promoter is None
        self._spare: _InFlight | None = None  # asked ahead, claimed, not started

    @property
    def done(self) -> int:
        """Trials that used up budget (any driver's, as this driver last counted them)."""
        return self._tally.ledger.done

    # Public ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Recover lost trials, then search until the budget or the timeout is reached."""
        self.recover()
        self._seed_front(self._tally.sync())
        start = time.monotonic()
        self.pool.open(self.evaluate)
        try:
            while True:
                expired = self.timeout is not None and time.monotonic() - start >= self.timeout
                if not expired:
                    self._fill()
                    self._ask_ahead()
                if not self._in_flight:
                    if expired or not self._others_hold_budget():
                        break
                    time.sleep(self._beat_s / 2)  # a co-driver's trials may yet fail
                    continue
                for outcome in self.pool.wait(timeout=self._wait_s()):
                    self._finish(outcome)
                self._expire()
                self._beat()
        except BaseException:
            self._abandon("interrupted", "the search was interrupted; the Config is re-enqueued")
            raise
        finally:
            self.pool.close()
        self._release_spare("the search stopped before it started; the Config is re-enqueued")

    def recover(self) -> None:
        """Fail trials a dead driver left RUNNING, marked ``stale`` with the reason, and enqueue
        their Configs again (they do not count toward ``n_trials``).

        With heartbeats (RDB storages) only trials whose heartbeat went stale count as lost,
        so drivers sharing a study leave each other's live trials alone; failing a trial is
        atomic, so only the driver that fails it enqueues its Config. The storage's
        ``heartbeat_stale_trial_callback``, if any, is not called: the driver re-enqueues.
        Without heartbeats every RUNNING trial is taken as lost: such storages suit one driver
        at a time.
        """
        if self._heartbeat:
            lost = stale_trials(self.storage, self._study_id)
            reason = STALE_REASON
        else:
            lost = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            reason = LOST_REASON
        for t in lost:
            if t.number not in self._ours():  # ours are live, whatever their heartbeat says
                self._mark_lost(t, reason)
        if self._heartbeat:
            self._adopt_unbeaten()

    def _adopt_unbeaten(self) -> None:
        """Beat once for other drivers' RUNNING trials older than the grace period.

        Optuna only finds trials whose heartbeat went stale, never one without any: a driver
        killed between ``ask()`` and its first heartbeat leaves such a trial RUNNING for good,
        holding budget. One beat makes it stale a grace period later if nobody owns it (a live
        driver's trial is merely refreshed); each driver beats a trial at most once.
        """
        cutoff = datetime.now() - timedelta(seconds=self._grace_s)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number in self._ours() or t.number in self._adopted:
                continue
            if t.datetime_start is None or t.datetime_start >= cutoff:
                continue
            self._adopted.add(t.number)
            self.storage.record_heartbeat(self._trial_id(t.number))  # type: ignore[attr-defined]

    # Internals ------------------------------------------------------------------------------
    def _fill(self) -> None:
        while len(self._in_flight) < self.pool.n_workers and self.stopped_reason is None:
            if self._spare is not None:  # asked and claimed while the workers were busy
                spare, self._spare = self._spare, None
                self._start(spare.trial, spare.trial_id)
                continue
            self._tally.refresh()
            promoting = self._promote()
            if promoting is None and self._budget_full():
                return
            trial, trial_id = self._ask()
            if promoting is not None and promoting != self._promoting(trial):
                self._tally.resync = True  # it waits elsewhere: the promoter must see it
            if not self._claim(trial):
                return
            if self._promoted_twice(trial):
                continue
            self._start(trial, trial_id)

    def _ask_ahead(self) -> None:
        """With ``propose_ahead``, every worker busy and budget left: the next trial, asked and
        claimed now and started when a worker frees up (see ``_fill``)."""
        if not self.propose_ahead or self._spare is not None or self.stopped_reason is not None:
            return
        if len(self._in_flight) < self.pool.n_workers or self._budget_full():
            return
        self._tally.refresh()
        trial, trial_id = self._ask()
        if self._claim(trial):
            self._spare = _InFlight(trial, {}, {}, math.inf, trial_id=trial_id)

    def _release_spare(self, reason: str) -> None:
        """Give up the trial asked ahead, if any: recorded ``interrupted`` (not counted), its
        parameters enqueued again."""
        spare, self._spare = self._spare, None
        if spare is None:
            return
        self._fail(spare.trial.number, "interrupted", reason, None, {})
        self._requeue(spare.trial.params, retry_attrs(spare.trial.number, spare.trial.user_attrs))

    def _live(self) -> list[_InFlight]:
        """This driver's live trials: in flight, and the one asked ahead."""
        return [*self._in_flight.values(), *([self._spare] if self._spare else [])]

    def _ours(self) -> set[int]:
        """Numbers of this driver's live trials (see ``_live``)."""
        return {f.trial.number for f in self._live()}

    def _budget_full(self) -> bool:
        """Whether done and running trials (any driver's) hold all of ``n_trials``. Before this
        driver stops for it, the whole study is read: other drivers' trials may have been given
        up since the last read (with trials in flight, that waits for the next read)."""
        if self._tally.ledger.claims < self.n_trials:
            return False
        if not self._in_flight:
            self._tally.sync()
        return self._tally.ledger.claims >= self.n_trials

    def _promote(self) -> tuple[int, int | None] | None:
        """Enqueue the promoter's next promotion, if any: (the trial number it should get, the
        trial it promotes)."""
        if self.promoter is None:
            return None
        # Indexed by number, with the numbers read since the last call: the promoter looks at
        # those only, so a proposal costs the same at any study size.
        promotion = self.promoter.next(self._tally.trials, changed=self._tally.changed())
        if promotion is None:
            return None
        tag = self.promoter.tag(promotion.rung, promotion.number)
        self.study.enqueue_trial(promotion.params, user_attrs={ATTR_FIDELITY: tag})
        return self._tally.enqueued(promotion.number), promotion.number

    def _promoting(self, trial: optuna.Trial) -> tuple[int, int | None]:
        entry = self._tally.ledger.entry(trial.number)
        return trial.number, None if entry is None else entry.promoted_from

    def _ask(self) -> tuple[optuna.Trial, int | None]:
        """A new trial (or a popped enqueued one), counted, with its Config (and fidelity rung)
        recorded; with heartbeats it beats at once (a trial that never beats never goes
        stale). On a database the parameters, Config and heartbeat are one transaction."""
        expected = self._tally.expected()
        with warnings.catch_warnings():
            # We record heartbeats ourselves (see _beat); Optuna warns outside optimize().
            warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
            with params_in_one_transaction(self.study._storage) as beats:
                trial = self.study.ask(self._distributions)
                self._ids[trial.number] = trial._trial_id
                trial_id = trial._trial_id if self._heartbeat else None
                if trial_id is not None:
                    beats.beat(trial_id)  # with the parameters, on a database
                trial.set_user_attr(ATTR_CONFIG, self.space.decode(trial.params))
                if self.promoter is not None and ATTR_FIDELITY not in trial.user_attrs:
                    trial.set_user_attr(ATTR_FIDELITY, self.promoter.tag(0))
        self._tally.took(trial, expected)
        return trial, trial_id

    def _start(self, trial: optuna.Trial, trial_id: int | None) -> None:
        config = self.space.decode(trial.params)  # recorded by _ask, with the rung
        rung = trial.user_attrs.get(ATTR_FIDELITY) if self.promoter is not None else None
        try:
            known = self.objectives.known_values(config)
        except Exception as exc:
            self._fail(trial, "failed", f"known-cost objective raised: {_line(exc)}", None, {})
            return
        if self._reject_infeasible(trial, known):
            return
        self._infeasible_streak = 0
        flight = _InFlight(trial, config, known, self._deadline(), trial_id=trial_id, rung=rung)
        self._in_flight[trial.number] = flight
        payload = config if rung is None else {"config": config, "budget": rung["budget"]}
        self.pool.submit(trial.number, payload)

    def _claim(self, trial: optuna.Trial) -> bool:
        """Whether ``trial`` fits the budget, given drivers that asked at the same moment.

        Trial numbers order the claims: the trial holding the ``n_trials``-th claim (done or
        running, counted in number order) is the last one in; later ones are recorded as
        ``surplus`` (not counted) and their fixed parameters are enqueued again. The whole
        study is read before that (other drivers' trials may have been given up since).
        """
        if self._tally.ledger.claims_up_to(trial.number) > self.n_trials:
            self._tally.sync()
        if self._tally.ledger.claims_up_to(trial.number) <= self.n_trials:
            return True
        reason = "the budget was filled by another driver sharing the study"
        self._fail(trial, "surplus", reason, None, {})
        fixed = self.storage.get_trial(self._trial_id(trial.number)).system_attrs
        if "fixed_params" in fixed:
            self._requeue(trial.params, retry_attrs(trial.number, trial.user_attrs))
        return False

    def _promoted_twice(self, trial: optuna.Trial) -> bool:
        """Whether ``trial`` promotes a Config that an earlier trial (a lower number) already
        promotes: drivers sharing a study that picked the same promotion at the same moment.
        The later ones are recorded as ``surplus`` (not counted) and do not run. An earlier
        trial that was given up (lost, interrupted, surplus) holds nothing: its retry runs."""
        entry = self._tally.ledger.entry(trial.number)
        source = None if entry is None else entry.promoted_from
        if source is None:
            return False
        if self._tally.ledger.first_promoting(source) != trial.number:
            self._tally.sync()  # the earlier one may have been given up since the last read
        first = self._tally.ledger.first_promoting(source)
        if first is None or first == trial.number:
            return False
        reason = f"trial {first} already promotes trial {source}'s Config (another driver)"
        self._fail(trial, "surplus", reason, None, {})
        return True

    def _others_hold_budget(self) -> bool:
        """The study is short of ``n_trials`` though this driver has nothing to start: other
        drivers' trials hold the rest (live ones finish, a dead driver's go stale and are
        re-enqueued for the next fill), so wait for them.

        Only with heartbeats: without, a RUNNING trial of another driver cannot be told from a
        lost one.
        """
        if not self._heartbeat or self.stopped_reason is not None:
            return False
        self.recover()
        self._tally.sync()
        return self._tally.ledger.done < self.n_trials

    def _reject_infeasible(self, trial: optuna.Trial, known: dict[str, float]) -> bool:
        """Record a Config that violates a known-cost constraint without evaluating it."""
        broken = [c for c in self.objectives.known_constraints() if c.violation(known[c.name]) > 0]
        if not broken:
            return False
        reason = "; ".join(f"{c.name}={known[c.name]:g} violates {c.label}" for c in broken)
        violations = self.objectives.violations(known, only_known=True)
        write_constraints(self.storage, self.study, trial.number, violations)
        self._fail(trial, "infeasible", reason, None, known)
        self._infeasible_streak += 1
        if self._infeasible_streak >= MAX_INFEASIBLE_STREAK:
            self.stopped_reason = (
                f"the optimizer proposed {MAX_INFEASIBLE_STREAK} infeasible Configs in a row; "
                "loosen the constraints or narrow the space"
            )
            logger.warning("stopping: %s", self.stopped_reason)
        return True

    def _finish(self, outcome: Outcome) -> None:
        flight = self._in_flight.pop(outcome.task_id, None)
        if flight is None:  # already failed by its timeout
            return
        run = {"duration_s": outcome.duration_s, "worker": outcome.worker, "node": outcome.node}
        if outcome.error is not None:
            self._fail(
                flight.trial,
                "failed",
                _summary_line(outcome.error),
                outcome.error,
                flight.known,
                run=run,
            )
        else:
            try:
                metrics = self.objectives.check_metrics(outcome.metrics)
            except ValueError as exc:
                self._fail(flight.trial, "failed", str(exc), None, flight.known, run=run)
            else:
                self._complete(flight, {**flight.known, **metrics}, run)
        self._report()

    def _complete(self, flight: _InFlight, values: dict[str, float], run: dict[str, Any]) -> None:
        violations = self.objectives.violations(values)
        run["values"] = values
        if violations:
            labels = [c.label for c in self.objectives.constraints]
            run["constraints"] = dict(zip(labels, violations))
            write_constraints(self.storage, self.study, flight.trial.number, violations)
        with finish_in_one_transaction(self.study._storage):  # the result with the state
            flight.trial.set_user_attr(ATTR_RESULT, run)
            if flight.rung is not None and flight.rung["rung"] < self.promoter.top:  # type: ignore[union-attr]
                self._stop_at_rung(flight)
                return
            objective_values = [values[n] for n in self.objectives.names]
            self._tell(flight.trial, objective_values)
        self._tally.ended(flight.trial.number, TrialState.COMPLETE)
        if all(v <= 0 for v in violations):
            self._front.add(objective_values)

    def _stop_at_rung(self, flight: _InFlight) -> None:
        """End a lower-budget evaluation PRUNED; its metrics stay in ``tradeoff.result``."""
        assert flight.rung is not None and self.promoter is not None
        top = self.promoter.tag(self.promoter.top)
        reason = (
            f"evaluated at {flight.rung['name']}={flight.rung['budget']:g} (rung "
            f"{flight.rung['rung'] + 1} of {top['rung'] + 1}); it moves up to "
            f"{top['name']}={top['budget']:g} only while in its rung's best by "
            "non-dominated rank (see later trials' tradeoff.fidelity.promoted_from)"
        )
        with finish_in_one_transaction(self.study._storage):
            flight.trial.set_user_attr(ATTR_REASON, reason)
            self._tell(flight.trial, state=TrialState.PRUNED)
        self._tally.ended(flight.trial.number, TrialState.PRUNED)

    def _fail(
        self,
        trial: optuna.Trial | int,
        status: str,
        reason: str,
        error: str | None,
        known: dict[str, float],
        *,
        run: dict[str, Any] | None = None,
    ) -> None:
        number = trial if isinstance(trial, int) else trial.number
        attrs: dict[str, Any] = {ATTR_STATUS: status, ATTR_REASON: reason}
        if error is not None:
            attrs[ATTR_ERROR] = error
        if run is not None or known:
            attrs[ATTR_RESULT] = {**(run or {}), "values": known}
        trial_id, cached = self._trial_id(number), self.study._storage
        with finish_in_one_transaction(cached):  # attributes and state: one transaction
            for key, value in attrs.items():
                cached.set_trial_user_attr(trial_id, key, value)
            self._tell(number, state=TrialState.FAIL)
        self._tally.ended(number, TrialState.FAIL, status)
        if status == "failed":
            logger.warning("trial %d failed: %s", number, reason)
        else:
            logger.info("trial %d %s: %s", number, status, reason)

    def _mark_lost(self, t: FrozenTrial, reason: str) -> None:
        """Record ``t`` (left RUNNING by a driver that stopped) as ``stale`` with ``reason`` and
        its Config, fail it, and enqueue its parameters again. A driver killed while the
        optimizer drew them leaves no complete Config: that trial is only marked. A trial that
        finished meanwhile (another driver owns it, or recovered it first) is left alone."""
        params = self._lost_params(t)
        attrs: dict[str, Any] = {ATTR_STATUS: "stale", ATTR_REASON: reason}
        if params is None:
            attrs[ATTR_REASON] = UNDRAWN_REASON
        elif ATTR_CONFIG not in t.user_attrs:  # killed before recording it
            attrs[ATTR_CONFIG] = self.space.decode(params)
        trial_id, cached = self._trial_id(t.number), self.study._storage
        try:
            with finish_in_one_transaction(cached):  # nothing written if it finished meanwhile
                for key, value in attrs.items():
                    cached.set_trial_user_attr(trial_id, key, value)
                self.study.tell(t.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            # Finished meanwhile (tell raises ValueError for a trial already finished): with
            # heartbeats another driver recovered it first; without, another driver owns it
            # (storages without heartbeats support one driver at a time; see the README).
            logger.info("trial %d finished while being recovered; left as it is", t.number)
            self._tally.resync = True
            return
        self._tally.ended(t.number, TrialState.FAIL, "stale")
        if params is not None:
            self._requeue(params, retry_attrs(t.number, t.user_attrs))
        logger.warning("trial %d: %s", t.number, attrs[ATTR_REASON])

    def _lost_params(self, t: FrozenTrial) -> dict[str, Any] | None:
        """The complete parameters of a lost trial (drawn, or fixed by ``enqueue_trial``), or
        None when its driver died while the optimizer was still drawing them."""
        fixed = t.system_attrs.get("fixed_params") or {}
        for params in (t.params, fixed):
            if set(params) == set(self._distributions):
                return dict(params)
        return None

    def _requeue(self, params: dict[str, Any], attrs: dict[str, Any]) -> None:
        if set(params) == set(self._distributions):
            self.study.enqueue_trial(params, user_attrs=attrs)
            self._tally.enqueued(promoted_from(attrs))

    def _abandon(self, status: str, reason: str) -> None:
        for number, flight in list(self._in_flight.items()):
            try:
                self.pool.cancel(number)
                self._fail(number, status, reason, None, flight.known)
                self._requeue(flight.trial.params, retry_attrs(number, flight.trial.user_attrs))
            except Exception:  # never mask the original exception
                logger.exception("could not record trial %d as %s", number, status)
        self._in_flight.clear()
        try:
            self._release_spare(reason)
        except Exception:  # never mask the original exception
            logger.exception("could not record the trial asked ahead as %s", status)

    def _expire(self) -> None:
        now = time.monotonic()
        for number, flight in list(self._in_flight.items()):
            if now >= flight.deadline:
                self.pool.cancel(number)
                del self._in_flight[number]
                reason = f"timed out after {self.trial_timeout:g} s (trial_timeout)"
                self._fail(number, "failed", reason, None, flight.known)
                self._report()

    def _beat(self) -> None:
        now = time.monotonic()
        if self._heartbeat and now - self._last_beat >= self._beat_s / 2:
            self._last_beat = now
            ids = [f.trial_id for f in self._live() if f.trial_id is not None]
            record_heartbeats(self.storage, ids)  # one transaction on a database
        if self._heartbeat and now - self._last_recover >= self._grace_s:
            self._last_recover = now
            self.recover()  # a co-driver that died leaves stale trials holding budget

    def _wait_s(self) -> float:
        wait = self._beat_s
        if self.trial_timeout is not None and self._in_flight:
            next_deadline = min(f.deadline for f in self._in_flight.values())
            wait = min(wait, max(0.0, next_deadline - time.monotonic()))
        return wait

    def _deadline(self) -> float:
        if self.trial_timeout is None:
            return math.inf
        return time.monotonic() + self.trial_timeout

    def _tell(
        self,
        trial: optuna.Trial | int,
        values: Sequence[float] | None = None,
        state: TrialState | None = None,
    ) -> None:
        """``study.tell`` (sampler's ``after_trial``, checks, storage write) without the deep
        copy of the finished trial it returns: with in-memory storage that copy was a third of
        the driver's CPU per trial."""
        if _tell_with_warning is None:  # pragma: no cover
            self.study.tell(trial, values, state)
        else:
            _tell_with_warning(self.study, trial, values, state)
        self._ids.pop(trial if isinstance(trial, int) else trial.number, None)

    def _trial_id(self, number: int) -> int:
        """The storage's id of trial ``number``: remembered for the trials this driver asked
        (a read of the database saved per trial), else read."""
        found = self._ids.get(number)
        if found is None:
            found = self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        return found

    def _seed_front(self, trials: Sequence[FrozenTrial]) -> None:
        for t in trials:
            if t.state != TrialState.COMPLETE or t.values is None:
                continue
            if all(v <= 0 for v in t.constraints.values()):
                self._front.add(list(t.values))

    def _report(self) -> None:
        if self.on_progress is not None:
            size, hv = self._front.stats()
            self.on_progress(self.done, size, hv)


def _line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _summary_line(error: str) -> str:
    """One line for a failure: a traceback's last line (the exception), else the first line."""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    if not lines:
        return error
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]
