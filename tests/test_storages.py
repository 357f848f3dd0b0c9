"""The same search on each storage users run: PostgreSQL (a real server), SQLite, journal file."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections import Counter

import optuna
import pytest
import sqlalchemy

import tradeoff

from .conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1


def search(storage, n_trials, *, study="zdt", n_workers=2, calls=None):
    def evaluate(config):
        if calls is not None:
            calls.append(config)
        return zdt1(config)

    return tradeoff.optimize(
        evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="tpe", n_trials=n_trials,
        n_workers=n_workers, storage=storage, study_name=study, seed=0, show_progress=False,
    )  # fmt: skip


@pytest.fixture(params=["postgres", "sqlite", "journal"])
def storage_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return str(tmp_path / "study.log")


def test_search_and_resume_on_each_storage(storage_url, request):
    study = f"zdt-{request.node.callspec.id}"
    first = []
    search(storage_url, 12, study=study, calls=first)
    more = []
    result = search(storage_url, 20, study=study, calls=more)
    assert len(first) == 12 and len(more) == 8
    assert not any(c in first for c in more)  # nothing finished is re-run
    trials = result.trials
    assert len(trials) == 20 and (trials["status"] == "complete").all()
    assert trials["trial"].is_unique
    # A plain Optuna client reads the same study, names and constraints included.
    loaded = optuna.load_study(study_name=study, storage=tradeoff._study.make_storage(storage_url))
    assert loaded.metric_names == ["f1", "f2"]
    assert len(loaded.best_trials) == len(result.pareto)


def test_postgres_result_loads_through_the_cli(postgres_url, capsys):
    from tradeoff.cli import main

    search(postgres_url, 6, study="cli-pg")
    assert main(["pareto", "--storage", postgres_url, "--study", "cli-pg", "--format", "csv"]) == 0
    assert "f1" in capsys.readouterr().out


SHARED_CLIENT = """
import json, sys, time
import tradeoff
from tests.conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1

url, name, log = sys.argv[1], sys.argv[2], sys.argv[3]
n_trials, seed = int(sys.argv[4]), int(sys.argv[5])

def evaluate(config):
    time.sleep(0.02)
    with open(log, "a") as f:
        f.write(json.dumps(config, sort_keys=True) + "\\n")
    return zdt1(config)

tradeoff.optimize(
    evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="random", n_trials=n_trials,
    n_workers=2, storage=url, study_name=name, seed=seed, show_progress=False,
)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_two_drivers_sharing_a_study_stop_at_exactly_the_budget(backend, tmp_path, request):
    """The service case: two clients on one study, each asking for the same total."""
    import subprocess
    import sys
    from pathlib import Path

    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    name = f"shared-{backend}"
    log, n_trials = tmp_path / "evaluations.jsonl", 40
    root = Path(__file__).resolve().parents[1]
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", SHARED_CLIENT, url, name, str(log), str(n_trials), str(seed)],
            cwd=root,
        )
        for seed in (1, 2)
    ]
    assert [c.wait(timeout=300) for c in clients] == [0, 0]
    study = optuna.load_study(study_name=name, storage=tradeoff._study.make_storage(url))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == n_trials
    evaluated = log.read_text().splitlines()
    assert len(evaluated) == n_trials  # no surplus trial evaluated
    assert len(set(evaluated)) == n_trials  # the two clients never proposed the same Config
    recorded = {json.dumps(t.user_attrs["tradeoff.config"], sort_keys=True) for t in complete}
    assert recorded == set(evaluated)
    others = [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]
    assert all(t.user_attrs.get("tradeoff.status") == "surplus" for t in others)


def test_sqlite_studies_use_write_ahead_logging(tmp_path):
    import sqlite3

    path = tmp_path / "wal.db"
    search(f"sqlite:///{path}", 3, study="wal")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_trials_a_killed_driver_left_half_started_are_marked_and_their_configs_rerun(
    kind, tmp_path
):
    """Killed inside ask(): before its Config was recorded, while drawing its parameters, and
    after popping an enqueued retry whose parameters were not yet set. Journal files have no
    heartbeats (every RUNNING trial is lost); SQLite's have none yet (adopted, then stale)."""
    if kind == "journal":
        url: object = str(tmp_path / "study.log")
    else:
        url = optuna.storages.RDBStorage(
            f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1
        )
    search(url, 3, study="half")
    study = optuna.load_study(study_name="half", storage=tradeoff._study.make_storage(url))
    drawn = study.ask(ZDT_SPACE.distributions())  # all parameters, no tradeoff.config
    undrawn = study.ask()  # no parameters yet
    retried = ZDT_SPACE.encode(ZDT_SPACE.sample(0))
    study.enqueue_trial(retried, user_attrs={"tradeoff.retry_of": 1})
    popped = study.ask()  # the enqueued retry: fixed_params only
    calls: list[dict] = []
    result = search(url, 6, study="half", calls=calls)
    trials = result.study.trials
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 6
    for lost in (drawn, undrawn, popped):
        attrs = trials[lost.number].user_attrs
        assert trials[lost.number].state == optuna.trial.TrialState.FAIL
        assert attrs["tradeoff.status"] == "stale" and attrs["tradeoff.reason"]
    assert "nothing to re-run" in trials[undrawn.number].user_attrs["tradeoff.reason"]
    assert len(calls) == 3  # 3 of 6 were done; the lost ones do not count
    assert ZDT_SPACE.decode(drawn.params) in calls and ZDT_SPACE.decode(retried) in calls
    retry_of = {t.user_attrs.get("tradeoff.retry_of") for t in trials if t.number > popped.number}
    assert retry_of >= {drawn.number, 1}  # a retry's retry names the first lost trial


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_heartbeats_of_all_trials_in_flight_are_recorded_in_one_transaction(
    backend, tmp_path, request
):
    from tradeoff._study import record_heartbeats, stale_trials

    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'beats.db'}"
    )
    with warnings.catch_warnings():  # heartbeat_interval is "experimental"
        warnings.simplefilter("ignore")
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name=f"beats-{backend}")
    study_id = storage.get_study_id_from_name(study.study_name)
    ids = [study.ask()._trial_id for _ in range(6)]
    record_heartbeats(storage, ids[:4])  # first beats: rows inserted; the last two never beat
    statements = []
    engine = storage.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sqlalchemy.event.listen(engine, "before_cursor_execute", listen)
    time.sleep(2.2)  # SQLite keeps whole seconds
    try:
        assert {t._trial_id for t in stale_trials(storage, study_id)} == set(ids[:4])
        statements.clear()
        record_heartbeats(storage, ids[1:])  # the beaten ones again and the two new ones
        beats = Counter(s.split()[0] for s in statements if "trial_heartbeats" in s)
        # One select and one update for the 3 rows there, an insert (at most one each) for the
        # 2 new ones; Optuna's record_heartbeat would read each row twice.
        assert beats["SELECT"] == beats["UPDATE"] == 1 and 1 <= beats["INSERT"] <= 2, beats
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", listen)
    assert {t._trial_id for t in stale_trials(storage, study_id)} == {ids[0]}  # only it aged
    time.sleep(2.2)  # SQLite keeps whole seconds
    assert {t._trial_id for t in stale_trials(storage, study_id)} == set(ids)  # all rows exist


def database_url(backend, path, request):
    """The throw-away PostgreSQL server's URL, or a SQLite file at ``path``."""
    return request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{path}"


@contextlib.contextmanager
def counted_commits():
    """Counts SQL commits on every SQLAlchemy engine (``commits[1]``) within the block."""
    commits = Counter()

    def count(conn):
        commits[1] += 1

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", count)
    try:
        yield commits
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", count)


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_a_trials_parameters_are_written_in_one_transaction(backend, tmp_path, request):
    """Optuna commits each parameter on its own: per trial, the driver's commits would grow
    with the Config's size (60 per-layer settings: 60 commits). They do not, and every
    parameter reads back as drawn, from a fresh connection."""
    from tradeoff.spaces import Int, SearchSpace

    url = database_url(backend, tmp_path / "params.db", request)
    results = {}
    with counted_commits() as commits:
        for n_params in (4, 40):
            space = SearchSpace({f"layer{i}.bits": Int(2, 8) for i in range(n_params)})
            commits.clear()
            results[n_params] = tradeoff.optimize(
                lambda c: {"f1": sum(c.values()), "f2": -min(c.values())}, space,
                objectives=ZDT_OBJECTIVES, optimizer="random", n_trials=10,
                storage=url, study_name=f"params-{n_params}", seed=0, show_progress=False,
            )  # fmt: skip
            results[n_params, "commits"] = commits[1]
    # Not 36 more per trial (360 in all); timers (heartbeats, recovery) may add a few.
    assert abs(results[40, "commits"] - results[4, "commits"]) < 10, results
    for n_params in (4, 40):
        drawn = {t.number: t.params for t in results[n_params].study.trials}
        fresh = optuna.load_study(study_name=f"params-{n_params}", storage=url)
        stored = {t.number: t.params for t in fresh.trials}
        assert stored == drawn and all(len(p) == n_params for p in stored.values())
        assert {t.state for t in fresh.trials} == {optuna.trial.TrialState.COMPLETE}


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_a_trial_costs_four_commits_fewer_and_its_attributes_arrive_with_its_state(
    backend, tmp_path, request, monkeypatch
):
    """The Config and first heartbeat go with the parameters, a finished trial's attributes
    with its state, and no trial's id is read back: per trial, 4 commits fewer than one each
    (a complete trial; a failed one saves more), and every attribute reads back."""
    from tradeoff import _study
    from tradeoff.workers import _driver

    url = database_url(backend, tmp_path / "writes.db", request)

    def run(name, evaluate, n=12):
        commits.clear()
        result = tradeoff.optimize(
            evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="random", n_trials=n,
            storage=url, study_name=name, seed=0, show_progress=False,
        )  # fmt: skip
        return result, commits[1] / n

    def fails(config):
        raise RuntimeError("out of memory")

    with counted_commits() as commits:
        batched, per_trial = run("batched", zdt1)
        failed, per_failed = run("batched-failed", fails)
        with monkeypatch.context() as m:  # one transaction per write, as Optuna does
            m.setattr(_driver, "finish_in_one_transaction", lambda s: contextlib.nullcontext())
            m.setattr(
                _driver, "params_in_one_transaction",
                lambda s: contextlib.nullcontext(_study.Beats(s, deferred=False)),
            )  # fmt: skip
            m.setattr(_driver.Driver, "_trial_id", _read_trial_id)
            _, per_trial_before = run("one-each", zdt1)
            _, per_failed_before = run("one-each-failed", fails)
    assert per_trial <= per_trial_before - 4, (per_trial, per_trial_before)
    assert per_failed <= per_failed_before - 6, (per_failed, per_failed_before)
    fresh = optuna.load_study(study_name="batched", storage=url).trials
    assert all({"tradeoff.result", "tradeoff.config"} <= set(t.user_attrs) for t in fresh)
    assert [ZDT_SPACE.decode(t.params) for t in fresh] == [
        t.user_attrs["tradeoff.config"] for t in fresh
    ]  # fmt: skip
    assert all(t.values for t in fresh)
    fresh = optuna.load_study(study_name="batched-failed", storage=url).trials
    assert len(fresh) == 12 and {t.state for t in fresh} == {optuna.trial.TrialState.FAIL}
    for t in fresh:
        attrs = t.user_attrs
        assert attrs["tradeoff.status"] == "failed" and "out of memory" in attrs["tradeoff.reason"]
        assert "RuntimeError" in attrs["tradeoff.error"]
    assert list(failed.trials["status"]) == ["failed"] * 12 and batched.pareto.shape[0]


def _read_trial_id(driver, number):
    return driver.storage.get_trial_id_from_study_id_trial_number(driver._study_id, number)


def test_a_failed_draw_writes_no_parameter_and_restores_the_storage(tmp_path):
    from tradeoff._study import params_in_one_transaction

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'fail.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    cached = study._storage
    dist = optuna.distributions.IntDistribution(0, 9)
    with params_in_one_transaction(cached):
        study.ask({"a": dist})
    with pytest.raises(RuntimeError), params_in_one_transaction(cached):
        trial = study.ask({"a": dist})
        raise RuntimeError("the sampler failed")
    assert "set_trial_param" not in vars(cached)  # the class's method again
    first, second = optuna.load_study(study_name="s", storage=storage).trials
    assert set(first.params) == {"a"} and second.params == {} and trial.params
