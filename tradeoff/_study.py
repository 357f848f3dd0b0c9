"""Create or resume the Optuna study behind a search.

Directions and metric names come from the objectives, in their order; the objective and
constraint specification is stored on the study (``tradeoff.spec``) so a resumed search, the
CLI and :class:`~tradeoff.SearchResult` read the same definition back.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from tradeoff.objectives import ObjectiveSet

logger = logging.getLogger(__name__)

SPEC_ATTR = "tradeoff.spec"
# Trial user attributes written by the driver; all JSON. Few keys: each is one storage write.
ATTR_CONFIG = "tradeoff.config"  # the Config (plain values), set when the trial starts
ATTR_RESULT = "tradeoff.result"  # {"values", "constraints", "duration_s", "worker", "node"}
ATTR_STATUS = "tradeoff.status"  # only on trials that did not complete: failed, infeasible...
ATTR_REASON = "tradeoff.reason"  # one line: why it did not complete
ATTR_ERROR = "tradeoff.error"  # the full traceback of a failed evaluation
ATTR_RETRY_OF = "tradeoff.retry_of"  # on a re-enqueued trial: the number of the lost one
ATTR_FIDELITY = "tradeoff.fidelity"  # multi-fidelity: {"rung", "budget", "name", "promoted_from"}
STALE_REASON = "its driver stopped (heartbeat went stale); the Config was re-enqueued"
LOST_REASON = "left unfinished by a driver that stopped; the Config was re-enqueued"
UNDRAWN_REASON = "its driver stopped while the optimizer drew its parameters (nothing to re-run)"
REFERENCE_ATTR = "tradeoff.reference_point"
LEGACY_CONSTRAINTS_KEY = "constraints"  # read by optuna-dashboard 0.21 and by Optuna 5 alike

# Heartbeats let a resumed (or concurrent) driver tell a dead driver's trials from live ones.
HEARTBEAT_INTERVAL_S = 5
GRACE_PERIOD_S = 20


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log or show)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def trial_status(trial: FrozenTrial) -> str | None:
    """tradeoff's status of a finished trial that did not complete, or None.

    A FAIL trial of ours (it has a Config) without a status was failed by Optuna's own
    heartbeat check (``fail_stale_trials``, as earlier drivers did): it is ``"stale"``.
    """
    status = trial.user_attrs.get(ATTR_STATUS)
    if status is None and trial.state == TrialState.FAIL and ATTR_CONFIG in trial.user_attrs:
        return "stale"
    return None if status is None else str(status)


def retry_attrs(number: int, user_attrs: dict[str, Any]) -> dict[str, Any]:
    """User attributes of the trial that retries trial ``number`` (its fidelity rung kept)."""
    attrs = {ATTR_RETRY_OF: user_attrs.get(ATTR_RETRY_OF, number)}
    if ATTR_FIDELITY in user_attrs:
        attrs[ATTR_FIDELITY] = user_attrs[ATTR_FIDELITY]
    return attrs


def stale_trials(storage: BaseStorage, study_id: int) -> list[FrozenTrial]:
    """RUNNING trials of the study whose heartbeat is older than the storage's grace period.

    Optuna's public ``fail_stale_trials`` fails such trials outright, and a finished trial takes
    no more attributes: it would be left without the status, reason and Config that tell a
    lost trial from a failed evaluation and let it be re-run. So the driver asks the storage
    the question ``fail_stale_trials`` asks (the storage's ``_get_stale_trial_ids``, which every
    Optuna storage with heartbeats implements), then records why before it fails each one.
    """
    ids = storage._get_stale_trial_ids(study_id)  # type: ignore[attr-defined]
    return [storage.get_trial(trial_id) for trial_id in ids]


def record_heartbeats(storage: BaseStorage, trial_ids: list[int]) -> None:
    """Record a heartbeat for each of ``trial_ids`` (all of them now).

    Optuna's ``record_heartbeat`` is a transaction of three statements per trial: with 64 trials
    in flight on SQLite, 100-200 ms of the driver's time at every beat. On a database
    (``RDBStorage``, also behind Optuna's cache wrapper) the heartbeat rows are updated in one
    transaction instead (about 5 ms for 64), through the storage's own session and table
    models; another storage gets one ``record_heartbeat`` per trial.
    """
    rdb = getattr(storage, "_backend", storage)
    if trial_ids and isinstance(rdb, optuna.storages.RDBStorage):
        try:
            import sqlalchemy
            from optuna.storages._rdb import models
            from optuna.storages._rdb.storage import _create_scoped_session
        except ImportError:  # pragma: no cover - another Optuna layout: one call each
            pass
        else:
            beat = models.TrialHeartbeatModel
            with _create_scoped_session(rdb.scoped_session, True) as session:
                now = session.execute(sqlalchemy.func.now()).scalar_one()
                rows = (
                    session.query(beat).filter(beat.trial_id.in_(trial_ids)).with_for_update()
                ).all()
                for row in rows:
                    row.heartbeat = now
                for trial_id in set(trial_ids) - {row.trial_id for row in rows}:
                    session.add(beat(trial_id=trial_id, heartbeat=now))
            return
    for trial_id in trial_ids:
        storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]


def _cached_rdb(storage: BaseStorage) -> Any:
    """The ``RDBStorage`` behind Optuna's cache wrapper ``storage`` (a study's ``_storage``)
    when this module can write to it directly, else ``None``."""
    rdb: Any = getattr(storage, "_backend", None)
    try:
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401
    except ImportError:  # pragma: no cover - another Optuna layout
        return None
    usable = (
        isinstance(rdb, optuna.storages.RDBStorage)
        and all(
            callable(getattr(rdb, name, None))
            for name in (
                "_set_trial_param_without_commit", "_set_trial_attr_without_commit",
                "_set_trial_value_without_commit", "check_trial_is_updatable",
            )
        )
        and hasattr(storage, "_studies")
        and hasattr(storage, "_trial_id_to_study_id_and_number")
    )  # fmt: skip
    return rdb if usable else None


class Beats:
    """Heartbeats to record with a transaction (see :func:`params_in_one_transaction`)."""

    def __init__(self, storage: BaseStorage, deferred: bool) -> None:
        self.storage, self.deferred, self.trial_ids = storage, deferred, list[int]()

    def beat(self, trial_id: int) -> None:
        """Record ``trial_id``'s first heartbeat: with the block's transaction, or now."""
        if self.deferred:
            self.trial_ids.append(trial_id)
        else:
            self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]


@contextmanager
def params_in_one_transaction(storage: BaseStorage) -> Iterator[Beats]:
    """Within the block (a ``study.ask``), the parameters the sampler draws, the user
    attributes written through ``storage`` (the trial's Config) and the heartbeats given to
    the yielded :class:`Beats` are written to a database in one transaction when it ends,
    instead of one each: a trial with parameters has its Config and a heartbeat.

    Optuna writes each parameter in its own transaction (a select, an insert and a commit): a
    Config of 60 per-layer settings cost 60 commits per trial, most of a driver's time on
    PostgreSQL. ``storage`` is the study's own (``study._storage``: Optuna's cache in front of
    an ``RDBStorage``); the trial object keeps its parameters itself, so nothing reads them
    back from the storage before the block ends. If the block raises, what was drawn is not
    written (the trial then has no complete Config, as when a driver dies while drawing).
    Another storage, or another Optuna layout, writes as usual.
    """
    rdb = _cached_rdb(storage)
    beats = Beats(storage, deferred=rdb is not None)
    if rdb is None:
        yield beats
        return
    drawn: list[tuple[int, str, float, Any]] = []
    attrs: list[tuple[int, str, Any]] = []
    storage.set_trial_param = lambda *args: drawn.append(args)  # type: ignore[method-assign]
    storage.set_trial_user_attr = lambda *args: attrs.append(args)  # type: ignore[method-assign]
    try:
        yield beats
    finally:
        del storage.set_trial_param, storage.set_trial_user_attr  # the class's again
    if not drawn and not attrs and not beats.trial_ids:
        return
    from optuna.distributions import check_distribution_compatibility, distribution_to_json
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    cache: Any = storage
    with cache._lock, _create_scoped_session(rdb.scoped_session, True) as session:
        checked: set[int] = set()
        for trial_id, name, value, distribution in drawn:
            study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
            known = cache._studies[study_id].param_distribution
            if name not in known:  # the study's first use of it: Optuna's own checks
                rdb._set_trial_param_without_commit(session, trial_id, name, value, distribution)
                known[name] = distribution
                continue
            # What that does for a name the cache knows, but the trial read only once.
            if trial_id not in checked:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
                rdb.check_trial_is_updatable(trial_id, trial.state)
                checked.add(trial_id)
            check_distribution_compatibility(known[name], distribution)
            session.add(
                models.TrialParamModel(
                    trial_id=trial_id, param_name=name, param_value=value,
                    distribution_json=distribution_to_json(distribution),
                )
            )  # fmt: skip
        _write_user_attrs(rdb, session, attrs)
        for trial_id in beats.trial_ids:  # a new trial: no heartbeat row yet
            session.add(models.TrialHeartbeatModel(trial_id=trial_id))


@contextmanager
def finish_in_one_transaction(storage: BaseStorage) -> Iterator[None]:
    """Within the block (a trial's attributes, then its ``tell``), the user attributes written
    through ``storage`` (the study's ``_storage``) go to a database in the transaction that
    writes the trial's final state and values, instead of one transaction each.

    A failed trial wrote its status, reason, error and result, then its state: five commits,
    now one; a complete one two, now one. Either all of it is written or none: a trial is
    never finished without its result, and another driver's finished trial gets no attribute
    (its ``tell`` raises, as before). Attributes written with no state after them are written
    together when the block ends; if the block raises, nothing queued is written. Another
    storage, or another Optuna layout, writes as usual.
    """
    rdb = _cached_rdb(storage)
    if rdb is None or "set_trial_state_values" in vars(storage):  # or within such a block
        yield
        return
    queued: list[tuple[int, str, Any]] = []
    real_state = storage.set_trial_state_values

    def state_values(trial_id: int, state: TrialState, values: Any = None) -> bool:
        if not state.is_finished():
            return real_state(trial_id, state, values)
        written = _finish(rdb, queued, trial_id, state, values)
        queued.clear()
        return written

    storage.set_trial_user_attr = lambda *args: queued.append(args)  # type: ignore[method-assign]
    storage.set_trial_state_values = state_values  # type: ignore[method-assign]
    try:
        yield
    finally:
        del storage.set_trial_user_attr, storage.set_trial_state_values  # the class's again
    if queued:
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(rdb.scoped_session, True) as session:
            _write_user_attrs(rdb, session, queued)


def _write_user_attrs(rdb: Any, session: Any, attrs: list[tuple[int, str, Any]]) -> None:
    """Write ``(trial_id, key, value)`` user attributes in ``session``, uncommitted."""
    from optuna.storages._rdb import models

    for trial_id, key, value in attrs:
        rdb._set_trial_attr_without_commit(
            session, models.TrialUserAttributeModel, trial_id, key, value
        )


def _finish(
    rdb: Any, attrs: list[tuple[int, str, Any]], trial_id: int, state: TrialState, values: Any
) -> bool:
    """``RDBStorage.set_trial_state_values`` for a finished state (Optuna 5.1's statements),
    with ``attrs`` written in the same transaction."""
    from datetime import datetime

    import sqlalchemy.exc
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    try:
        with _create_scoped_session(rdb.scoped_session) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
            rdb.check_trial_is_updatable(trial_id, trial.state)
            _write_user_attrs(rdb, session, attrs)
            for objective, v in enumerate(values or ()):
                rdb._set_trial_value_without_commit(session, trial, objective, v)
            trial.state = state
            trial.datetime_complete = datetime.now()
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def heartbeat_timing(storage: BaseStorage) -> tuple[float, float] | None:
    """The storage's heartbeat interval and grace period in seconds, or None when it records no
    heartbeats (an RDBStorage has them with ``heartbeat_interval``; Optuna's default grace is
    two intervals). Duck-typed on public methods: Optuna's own check is in a private module.
    """
    interval = getattr(storage, "get_heartbeat_interval", None)
    if not callable(interval) or not callable(getattr(storage, "record_heartbeat", None)):
        return None
    seconds = interval()
    if seconds is None:
        return None
    grace = getattr(storage, "grace_period", None)
    return float(seconds), float(grace) if grace is not None else 2.0 * seconds


def make_storage(storage: str | BaseStorage | None) -> BaseStorage:
    """Open ``storage``: ``None`` (in memory), a database URL, a ``.log`` journal file, or a
    ready ``BaseStorage``.

    Raises:
        ValueError: the storage cannot be opened or reached (the message says which and why).
    """
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise TypeError(
            f"storage must be a URL string, a BaseStorage or None, got {type(storage).__name__}."
        )
    if storage.endswith(".log") and "://" not in storage:
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(storage))
    if "://" not in storage:
        raise ValueError(
            f"storage {storage!r} is not a URL; use e.g. 'sqlite:///tradeoff.db', "
            "'postgresql://user:pass@host/db', or a journal file path ending in '.log'."
        )
    return _open_rdb(storage)


def _open_rdb(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An RDBStorage with heartbeats; retries a schema-creation race between clients.

    Several clients opening a fresh database at once all try to create Optuna's tables; the
    losers get an IntegrityError (PostgreSQL's catalogue) and succeed on a second try.
    """
    _sqlite_wal(url)
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=GRACE_PERIOD_S,
                    engine_kwargs=_engine_kwargs(url),
                )
        except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open"
            racing = type(exc).__name__ == "IntegrityError" or "already exists" in str(exc)
            if racing and attempt + 1 < attempts:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ValueError(
                f"Cannot open storage {redact(url)!r}: {type(exc).__name__}: "
                f"{_first_line(exc)}. Check the URL, that the server is reachable, and credentials."
            ) from None
    raise AssertionError("unreachable")


def open_study(
    *,
    storage: BaseStorage,
    study_name: str | None,
    objectives: ObjectiveSet,
    sampler: optuna.samplers.BaseSampler,
) -> optuna.Study:
    """Create the study, or load it when it exists and has the same objectives.

    Raises:
        ValueError: an existing study of that name has other objectives or directions.
    """
    directions = objectives.directions
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        directions=directions,
        load_if_exists=True,
    )
    existing = [d.name.lower() for d in study.directions]
    names = study.metric_names
    if existing != directions or (names is not None and list(names) != objectives.names):
        raise ValueError(
            f"Study {study.study_name!r} already exists with objectives "
            f"{names or '(unnamed)'} / directions {existing}, but this search has "
            f"{objectives.names} / {directions}. Use another study_name or the same objectives."
        )
    if names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(objectives.names)
    spec = json.dumps(objectives.to_dict())
    if study.user_attrs.get(SPEC_ATTR) != spec:
        study.set_user_attr(SPEC_ATTR, spec)
    return study


def load_spec(study: optuna.Study) -> ObjectiveSet:
    """The objectives stored on ``study``, or ones inferred from its directions."""
    raw = study.user_attrs.get(SPEC_ATTR)
    if raw is not None:
        return ObjectiveSet.from_dict(json.loads(raw))
    names = study.metric_names or [f"values_{i}" for i in range(len(study.directions))]
    from tradeoff.objectives import Objective

    return ObjectiveSet.build(
        [Objective(n, d.name.lower()) for n, d in zip(names, study.directions)]  # type: ignore[arg-type]
    )


def fixed_reference(study: optuna.Study, objectives: ObjectiveSet) -> dict[str, float] | None:
    """The hypervolume reference point known without looking at trials: every objective's
    ``reference`` when all are given, else the one recorded on the study, else ``None``."""
    refs = [o.reference for o in objectives.objectives]
    if all(r is not None for r in refs):
        return dict(zip(objectives.names, (float(r) for r in refs if r is not None)))
    recorded = study.user_attrs.get(REFERENCE_ATTR)
    if recorded is not None:
        return {k: float(v) for k, v in json.loads(recorded).items()}
    return None


def write_constraints(
    storage: BaseStorage, study: optuna.Study, number: int, values: list[float]
) -> None:
    """Record constraint values the way both Optuna 5 and optuna-dashboard 0.21 read them.

    Optuna 5's ``trial.set_constraint`` writes ``constraints:<key>`` keys the dashboard does not
    read; writing both would count each constraint twice in samplers. The list under the legacy
    key is read by both (Optuna exposes it as ``trial.constraints == {"0": ..., "1": ...}``).
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    storage.set_trial_system_attr(trial_id, LEGACY_CONSTRAINTS_KEY, list(values))


def _sqlite_wal(url: str) -> None:
    """Put a SQLite study file in write-ahead-log mode (a property of the file).

    Every trial is ~16 commits; in WAL mode a commit is one fsync instead of several and
    readers do not block the writer: about 2x the trials/s of the default rollback journal
    with one driver, 2.6x with two (``benchmarks/storage_load.py``). WAL needs a local file
    system, as SQLite itself does for reliable locking.
    """
    if not url.startswith("sqlite:///"):
        return
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:" or not os.path.isdir(os.path.dirname(path) or "."):
        return
    try:
        with closing(sqlite3.connect(path, timeout=60)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:  # e.g. a read-only file: keep its mode
        logger.debug("could not switch %s to WAL mode: %s", path, exc)


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several threads of one driver share the file; wait instead of failing on a lock.
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
