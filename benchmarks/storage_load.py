"""Storage load: a 1,000-trial search on each storage, and two drivers sharing one study.

1. One driver (``tradeoff.optimize``, 2 local worker threads) runs ``n_trials`` of an instant
   2-objective ZDT1 objective on each storage: in memory, SQLite (as created, and switched to
   write-ahead logging), Optuna's journal file and PostgreSQL (a real server on 127.0.0.1, from
   ``tests/servers/postgres.py``). The objective costs microseconds, so the time per trial is
   the driver's and the storage's overhead.
2. The "service" case on PostgreSQL and SQLite: two driver processes, each calling
   ``tradeoff.optimize(..., n_trials=N, storage=url, study_name=name)`` with 2 workers, share
   one study; between them they must stop at exactly N completed trials.

Every case is checked: N COMPLETE trials, no Config recorded twice, no result lost and no
trial left RUNNING or WAITING. The driver counts the whole study on each proposal, so the cost
per trial is also reported over the first and the last ``window`` completions (growth), with
the SQL commits and writes per trial, and a cProfile of the driver when PostgreSQL is slow.

Usage:
    python benchmarks/storage_load.py [--quick] [--storages memory,sqlite,journal,postgres]
        [--optimizers random,tpe] [--n-trials N] [--service-seeds 1,2/none,none] [--profile]
        [--out PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState
from provenance import command_line, commit_info
from sqlalchemy.engine import Engine

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.spaces import Float, SearchSpace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "storage_load.json"
# sqlite-wal: the SQLite file is switched to write-ahead logging (PRAGMA journal_mode=WAL) first.
# Since tradeoff itself opens SQLite studies in WAL mode, "sqlite" measures WAL as well; the
# recorded results/storage_load.json predates that and compares the rollback journal with WAL.
STORAGES = ("memory", "sqlite", "sqlite-wal", "journal", "postgres")
SERVICE_STORAGES = ("postgres", "sqlite", "sqlite-wal")  # heartbeats: several drivers allowed
N_PARAMS = 4


def space_of(n_params: int) -> SearchSpace:
    return SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(n_params)})


SPACE = space_of(N_PARAMS)
OBJECTIVES = [Objective("f1"), Objective("f2")]
PROFILE_THRESHOLD_MS = 20.0  # PostgreSQL, last window: above this, profile the driver
PROFILE_TOP = 15
SQL = {"commits": 0, "writes": 0}  # counted on every SQLAlchemy engine (RDB storages)
COLUMNS = [
    ("storage", "storage", ""),
    ("optimizer", "optimizer", ""),
    ("drivers", "drivers", "d"),
    ("seeds", "seeds", ""),
    ("wall s", "wall_s", ".1f"),
    ("trials/s", "trials_per_s", ".1f"),
    ("ms/trial", "ms_per_trial", ".2f"),
    ("first", "ms_first_window", ".2f"),
    ("last", "ms_last_window", ".2f"),
    ("complete", "complete", "d"),
    ("dupl.", "duplicates", "d"),
    ("lost", "lost", "d"),
    ("surplus", "surplus", "d"),
    ("commits/tr", "commits_per_trial", ".1f"),
    ("writes/tr", "writes_per_trial", ".1f"),
]


@dataclass(frozen=True)
class Settings:
    """How much to run; ``--quick`` shrinks it for a smoke test."""

    n_trials: int = 1000
    n_workers: int = 2
    n_params: int = N_PARAMS  # the Config's size: Optuna writes each parameter on its own
    window: int = 100
    storages: tuple[str, ...] = STORAGES
    optimizers: tuple[str, ...] = ("random", "tpe")
    # Optimizers other than random run on these only: their proposals dominate, not storage.
    sampler_storages: tuple[str, ...] = ("memory", "postgres")
    service_optimizer: str = "random"
    # The two service drivers' seeds, one shared study per pair: distinct seeds as a user would
    # pass them, and no seed at all.
    service_seeds: tuple[tuple[int | None, int | None], ...] = ((1, 2), (None, None))


QUICK = Settings(
    100, window=20, storages=("memory", "sqlite", "journal"), optimizers=("random",),
    service_seeds=((None, None),),
)  # fmt: skip


@dataclass
class Row:
    """One search (or one shared study, for the service case) and its count check.

    ``ms_per_trial`` is the span from the first trial's start to the last completion divided
    by the trials, ``trials_per_s`` its inverse (setup excluded); ``wall_s`` is the whole call
    (service case: both processes from launch to exit, imports included). ``duplicates``:
    Configs recorded COMPLETE twice; ``lost``: trials left RUNNING or WAITING plus evaluated
    Configs whose result was never recorded COMPLETE.
    """

    storage: str
    optimizer: str
    drivers: int
    seeds: str
    n_workers: int
    trials: int
    wall_s: float
    ms_per_trial: float
    trials_per_s: float
    ms_first_window: float
    ms_last_window: float
    growth: float  # ms/trial over the last window / over the first
    ms_per_window: list[float]
    complete: int
    duplicates: int
    lost: int
    surplus: int
    other_states: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0
    evaluated_twice: int = 0  # by one driver or two
    commits_per_trial: float = 0.0  # SQL transactions the drivers committed, per trial
    writes_per_trial: float = 0.0  # SQL INSERT/UPDATE/DELETE statements, per trial


# Search -------------------------------------------------------------------------------------
def zdt1(config: Mapping[str, Any]) -> dict[str, float]:
    """ZDT1 on the Config's variables ``x0``, ``x1``... in [0, 1]; both objectives minimized."""
    x = [float(config[f"x{i}"]) for i in range(len(config))]
    g = 1.0 + 9.0 * sum(x[1:]) / (len(x) - 1)
    return {"f1": x[0], "f2": g * (1.0 - math.sqrt(x[0] / g))}


def key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True)


def count_sql() -> None:
    """Count the commits and write statements of every SQLAlchemy engine in ``SQL``."""

    def on_commit(conn: Any) -> None:
        SQL["commits"] += 1

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            SQL["writes"] += 1

    sqlalchemy.event.listen(Engine, "commit", on_commit)
    sqlalchemy.event.listen(Engine, "before_cursor_execute", on_execute)


def search(
    url: str | None,
    study: str,
    optimizer: str,
    s: Settings,
    evaluated: list[str],
    seed: int | None,
) -> tuple[optuna.Study, dict[str, int]]:
    """One driver's search; appends each evaluated Config's key to ``evaluated``.

    Returns:
        The study, and the SQL commits and writes the search made (0 without a database).
    """
    SQL.update(commits=0, writes=0)

    def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
        evaluated.append(key(config))  # list.append is atomic: worker threads may share it
        return zdt1(config)

    space = SPACE if s.n_params == N_PARAMS else space_of(s.n_params)
    result = tradeoff.optimize(
        evaluate, space, objectives=OBJECTIVES, optimizer=optimizer, n_trials=s.n_trials,
        n_workers=s.n_workers, backend="local", storage=url, study_name=study, seed=seed,
        show_progress=False,
    )  # fmt: skip
    return result.study, dict(SQL)


# Count check and timings --------------------------------------------------------------------
def check(trials: Sequence[FrozenTrial], evaluated: Sequence[str]) -> dict[str, Any]:
    """Counts: complete, duplicates, lost, surplus, and trials of any other status."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    recorded = {key(t.user_attrs["tradeoff.config"]) for t in done}
    unfinished = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    statuses = [str(t.user_attrs.get("tradeoff.status", t.state.name.lower())) for t in trials]
    return {
        "complete": len(done),
        "duplicates": len(done) - len(recorded),
        "lost": unfinished + len(set(evaluated) - recorded),
        "surplus": statuses.count("surplus"),
        "other_states": {s: statuses.count(s) for s in set(statuses) - {"complete", "surplus"}},
        "evaluations": len(evaluated),
        "evaluated_twice": len(evaluated) - len(set(evaluated)),
    }


def timeline(trials: Sequence[FrozenTrial], window: int) -> dict[str, Any]:
    """ms per trial over the whole search and per ``window`` completions (completion order)."""
    done = sorted(
        t.datetime_complete
        for t in trials
        if t.state == TrialState.COMPLETE and t.datetime_complete is not None
    )
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)

    def ms_each(a: datetime, b: datetime, n: int) -> float:
        return 1e3 * (b - a).total_seconds() / n

    edges = range(0, len(done) - window, window)
    per_window = [ms_each(done[i], done[i + window], window) for i in edges]
    first, last = per_window[0], ms_each(done[-1 - window], done[-1], window)
    overall = ms_each(start, done[-1], len(done))
    return {"ms_per_trial": overall, "trials_per_s": 1e3 / overall, "ms_first_window": first,
            "ms_last_window": last, "growth": last / first,
            "ms_per_window": per_window}  # fmt: skip


def make_row(
    case: tuple[str, str, Sequence[int | None]], s: Settings, wall: float, study: optuna.Study,
    evaluated: Sequence[str], sql: Mapping[str, int],
) -> Row:  # fmt: skip
    """``case``: (storage, optimizer, the drivers' seeds)."""
    trials, seeds = study.get_trials(), ",".join(str(seed).lower() for seed in case[2])
    return Row(storage=case[0], optimizer=case[1], drivers=len(case[2]), seeds=seeds,
               n_workers=s.n_workers, trials=s.n_trials, wall_s=wall, **timeline(trials, s.window),
               **check(trials, evaluated), commits_per_trial=sql["commits"] / s.n_trials,
               writes_per_trial=sql["writes"] / s.n_trials)  # fmt: skip


# Storages and cases -------------------------------------------------------------------------
class Storages:
    """URLs of fresh studies: a file per study for SQLite and journal, one PostgreSQL server."""

    def __init__(self, stack: ExitStack, names: Sequence[str]) -> None:
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
        self.postgres: str | None = None
        if "postgres" in names:
            sys.path.insert(0, str(ROOT))  # tests/servers holds the server helper
            from tests.servers.postgres import postgres_server

            self.postgres = stack.enter_context(postgres_server())

    def url(self, storage: str, study: str) -> str | None:
        if storage == "memory":
            return None
        if storage.startswith("sqlite"):
            path = self.tmp / f"{study}-{storage}.db"
            if storage == "sqlite-wal":  # persistent: a property of the file
                with closing(sqlite3.connect(path)) as db:
                    db.execute("PRAGMA journal_mode=WAL")
            return f"sqlite:///{path}"
        if storage == "journal":
            return str(self.tmp / f"{study}.log")
        assert self.postgres is not None
        return self.postgres


def single(storages: Storages, storage: str, optimizer: str, s: Settings) -> Row:
    """One driver, ``s.n_workers`` threads."""
    evaluated: list[str] = []
    name = f"single-{optimizer}"
    start = time.perf_counter()
    study, sql = search(storages.url(storage, name), name, optimizer, s, evaluated, seed=0)
    wall = time.perf_counter() - start
    return make_row((storage, optimizer, [0]), s, wall, study, evaluated, sql)


def service(
    storages: Storages, storage: str, seeds: tuple[int | None, int | None], s: Settings
) -> Row:
    """Two driver processes on one study, each asking for ``s.n_trials``."""
    optimizer = s.service_optimizer
    name = f"service-{optimizer}-{seeds[0]}-{seeds[1]}"
    url = storages.url(storage, name)
    assert url is not None
    logs = [storages.tmp / f"{name}-{storage}-{i}.json" for i in range(len(seeds))]
    spec = {"url": url, "study": name, "optimizer": optimizer, "settings": asdict(s)}
    argv = [sys.executable, __file__, "--client"]
    start = time.perf_counter()
    clients = [
        subprocess.Popen([*argv, json.dumps({**spec, "seed": seed, "log": str(log)})])
        for seed, log in zip(seeds, logs)
    ]
    codes = [c.wait(timeout=3600) for c in clients]
    wall = time.perf_counter() - start
    if codes != [0, 0]:
        raise RuntimeError(f"service case on {storage}: drivers exited with {codes}")
    reports = [json.loads(log.read_text()) for log in logs]
    evaluated = [k for r in reports for k in r["evaluated"]]
    sql = {k: sum(r["sql"][k] for r in reports) for k in SQL}
    study = optuna.load_study(study_name=name, storage=url)
    return make_row((storage, optimizer, seeds), s, wall, study, evaluated, sql)


def client(spec: dict[str, Any]) -> None:
    """A service-case driver process: search, then write the evaluated Configs' keys."""
    settings = Settings(**{**spec["settings"], "storages": (), "optimizers": ()})
    evaluated: list[str] = []
    count_sql()
    study, seed = spec["study"], spec["seed"]
    _, sql = search(spec["url"], study, spec["optimizer"], settings, evaluated, seed)
    Path(spec["log"]).write_text(json.dumps({"evaluated": evaluated, "sql": sql}))


def profile(storages: Storages, storage: str, s: Settings) -> dict[str, Any]:
    """The hottest functions of one more random search on ``storage``, under cProfile."""
    profiler, name = cProfile.Profile(), "profiled"
    profiler.enable()
    search(storages.url(storage, name), name, "random", s, [], seed=0)
    profiler.disable()
    stats = pstats.Stats(profiler).get_stats_profile()
    rows = [
        {"function": f"{Path(p.file_name).name}:{p.line_number}({fn})", "ncalls": p.ncalls,
         "tottime_s": p.tottime, "cumtime_s": p.cumtime, "ours": _ours(p.file_name)}
        for fn, p in stats.func_profiles.items()
    ]  # fmt: skip

    def top(by: str, among: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(among, key=lambda r: -float(r[by]))[:PROFILE_TOP]

    return {
        "storage": storage,
        "trials": s.n_trials,
        "total_s": stats.total_tt,
        "by_cumtime": top("cumtime_s", rows),
        "by_tottime": top("tottime_s", rows),
        # The driver's and Optuna's study/storage functions: where the per-trial work goes.
        "tradeoff_and_optuna_by_cumtime": top("cumtime_s", [r for r in rows if r["ours"]]),
    }


def _ours(file_name: str) -> bool:
    return any(part in file_name for part in ("/tradeoff/", "/optuna/study/", "/optuna/storages/"))


# Report -------------------------------------------------------------------------------------
def fsync_ms(directory: Path, repeats: int = 20) -> float:
    """Median time of a small write + fsync in ``directory`` (what a commit waits for), in ms."""
    path, times = directory / "fsync-probe", []
    with open(path, "wb") as f:
        for _ in range(repeats):
            start = time.perf_counter()
            f.write(b"x" * 100)
            f.flush()
            os.fsync(f.fileno())
            times.append(1e3 * (time.perf_counter() - start))
    path.unlink()
    return statistics.median(times)


def machine_info(
    load_at_start: tuple[float, float, float], fsync_at_start: float, storages: Storages
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "optuna": optuna.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "tradeoff": tradeoff.__version__,
        # Other processes on the machine skew every number here: check these first.
        "load_avg_1_5_15_at_start": [round(x, 2) for x in load_at_start],
        "load_avg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
        # SQLite, journal and PostgreSQL commits wait for the disk: others' I/O counts too.
        "fsync_ms_at_start": round(fsync_at_start, 2),
        "fsync_ms_at_end": round(fsync_ms(storages.tmp), 2),
    }
    if storages.postgres is not None:
        engine = sqlalchemy.create_engine(storages.postgres)
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(sqlalchemy.text("SHOW server_version")).scalar()
        engine.dispose()
    return info


def format_table(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]) -> str:
    """Aligned plain-text table; ``columns`` are (header, key, format spec)."""
    cells = [[header for header, _, _ in columns]]
    cells += [[format(row[key], spec) for _, key, spec in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(report: dict[str, Any]) -> None:
    m, s = report["machine"], report["settings"]
    print(
        f"\n{m['cpu_count']} CPUs, Python {m['python']}, Optuna {m['optuna']}, "
        f"PostgreSQL {m.get('postgresql', '-')}; load avg {m['load_avg_1_5_15_at_start']} -> "
        f"{m['load_avg_1_5_15_at_end']}; fsync {m['fsync_ms_at_start']} -> "
        f"{m['fsync_ms_at_end']} ms"
    )
    print(
        f"\n{s['n_trials']} trials of instant ZDT1, {s['n_workers']} local workers per driver. "
        "ms/trial: first trial's start to last completion / trials; first, last: ms/trial "
        f"over the first and last {s['window']} completions"
    )
    print(format_table(COLUMNS, report["rows"]))
    for prof in report["profiles"]:
        print(f"\nprofile on {prof['storage']} ({prof['total_s']:.1f} s), by cumulative time:")
        for r in prof["tradeoff_and_optuna_by_cumtime"]:
            print(f"  {r['cumtime_s']:8.2f} s  {r['ncalls']:>11}  {r['function']}")


# Main ---------------------------------------------------------------------------------------
def run(s: Settings, force_profile: bool) -> dict[str, Any]:
    load, timestamp = os.getloadavg(), datetime.now(timezone.utc)
    with ExitStack() as stack:
        storages = Storages(stack, s.storages)
        fsync_at_start = fsync_ms(storages.tmp)
        cases = [(st, opt) for opt in s.optimizers for st in s.storages
                 if opt == "random" or st in s.sampler_storages]  # fmt: skip
        rows = [single(storages, st, opt, s) for st, opt in cases]
        services = [st for st in SERVICE_STORAGES if st in s.storages]
        rows += [service(storages, st, seeds, s) for st in services for seeds in s.service_seeds]
        slow = {r.storage for r in rows if r.drivers == 1 and r.optimizer == "random"
                and r.ms_last_window > PROFILE_THRESHOLD_MS}  # fmt: skip
        targets = [st for st in s.storages if force_profile or (st == "postgres" and st in slow)]
        profiles = [profile(storages, st, s) for st in targets]
        machine = machine_info(load, fsync_at_start, storages)
    return {
        "command": command_line(),
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "machine": {**machine, **commit_info()},
        "settings": asdict(s),
        "rows": [asdict(r) for r in rows],
        "profiles": profiles,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 trials, no PostgreSQL")
    parser.add_argument("--storages", help=f"comma-separated subset of {','.join(STORAGES)}")
    parser.add_argument("--optimizers", help="comma-separated, each run on every storage")
    parser.add_argument("--n-trials", type=int, help="trials per search (and per shared study)")
    parser.add_argument(
        "--service-seeds", help="the two drivers' seeds, pairs split by '/' (1,2/none,none)"
    )
    parser.add_argument("--n-params", type=int, help=f"parameters per Config (default {N_PARAMS})")
    parser.add_argument("--profile", action="store_true", help="profile a search per storage")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # a service-case driver process
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    s = QUICK if args.quick else Settings()
    if args.storages:
        names = tuple(n.strip() for n in args.storages.split(","))
        if set(names) - set(STORAGES):
            raise SystemExit(f"--storages: unknown {set(names) - set(STORAGES)}; use {STORAGES}")
        s = replace(s, storages=names)
    if args.optimizers:
        names = tuple(n.strip() for n in args.optimizers.split(","))
        s = replace(s, optimizers=names, sampler_storages=STORAGES)
    if args.service_seeds:
        pairs = [pair.split(",") for pair in args.service_seeds.split("/")]
        s = replace(s, service_seeds=tuple((_seed(a), _seed(b)) for a, b in pairs))
    if args.n_trials:
        s = replace(s, n_trials=args.n_trials, window=min(s.window, args.n_trials // 5))
    if args.n_params:
        s = replace(s, n_params=args.n_params)
    return s


def _seed(text: str) -> int | None:
    return None if text.strip().lower() == "none" else int(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.client:
        client(json.loads(args.client))
        return 0
    count_sql()
    start = time.perf_counter()
    report = run(settings_from(args), args.profile)
    report["benchmark_wall_s"] = time.perf_counter() - start
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
