"""Fault benchmark: a search on a real two-node Ray cluster through killed workers and a killed
driver, counting what was lost and what ran twice.

Starts the cluster of tests/servers/ray_cluster.py on this machine (head: 1 CPU, worker node:
2 CPUs) and runs one search of a cheap objective that sleeps ``sleep_s``, on ``n_workers`` Ray
workers with SQLite (or PostgreSQL) storage. The search's driver is its own process, the
command ``python benchmarks/faults.py --driver SETTINGS``. While it runs, this script:

- SIGKILLs the Ray worker process running a trial each time another ``kill_every`` trials have
  finished (Ray re-runs the trial: ``max_retries``);
- SIGKILLs the driver once, after half the trials, and runs the same command again, which
  resumes: once the dead driver's heartbeats are older than the grace period (tradeoff's
  default: 20 s), its trials are failed as stale and their Configs re-run. By default the
  command is re-run after the grace period; ``--restart-now`` re-runs it at once.

Every evaluation appends (event, Config, pid, driver pid) to a log; the study and the log give:
trials completed and failed, trials lost (budget not reached, or a dead driver's trial never
re-run: must be 0), finished trials re-run (a trial completed before the driver died that ran
again: must be 0), Ray retries, and wall time.

Usage:
    python benchmarks/faults.py [--quick] [--storage sqlite|postgres] [--restart-now]
                                [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from provenance import command_line, commit_info

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/servers: the cluster and PostgreSQL helpers

import tradeoff  # noqa: E402
from tests.servers.ray_cluster import RayCluster, driver_env  # noqa: E402
from tradeoff._study import GRACE_PERIOD_S  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "faults.json"
STUDY = "faults"


@dataclass(frozen=True)
class Settings:
    """How much to run; ``--quick`` shrinks it for a smoke test."""

    n_trials: int = 120
    n_workers: int = 3
    sleep_s: float = 0.2
    kill_every: int = 10  # finished trials between two worker kills
    max_retries: int = 3
    grace_s: int | None = None  # None: tradeoff's default heartbeats (a storage URL)
    restart_now: bool = False  # re-run the killed driver at once, not after the grace period


QUICK = Settings(n_trials=30, grace_s=3)


# The driver: one run of the search (this file's --driver mode) --------------------------------
def driver(settings: dict[str, Any]) -> None:
    """Run the search to ``n_trials``; resumes the study when it exists."""
    from tradeoff.objectives import Objective
    from tradeoff.spaces import Float, SearchSpace

    log, sleep_s, driver_pid = settings["log"], settings["sleep_s"], os.getpid()

    def evaluate(config: dict[str, float]) -> dict[str, float]:
        _append(log, {"event": "start", "config": config, "driver": driver_pid})
        time.sleep(sleep_s)
        _append(log, {"event": "done", "config": config, "driver": driver_pid})
        return {"f1": config["x0"], "f2": 1.0 - config["x0"] ** 0.5 + config["x1"]}

    storage: Any = settings["storage"]
    if settings["grace_s"] is not None:
        storage = optuna.storages.RDBStorage(
            storage, heartbeat_interval=1, grace_period=settings["grace_s"]
        )
    tradeoff.optimize(
        evaluate,
        SearchSpace({"x0": Float(0.0, 1.0), "x1": Float(0.0, 1.0)}),
        objectives=[Objective("f1"), Objective("f2")],
        optimizer="random",
        n_trials=settings["n_trials"],
        n_workers=settings["n_workers"],
        backend="ray",
        ray_address=settings["address"],
        max_retries=settings["max_retries"],
        storage=storage,
        study_name=STUDY,
        seed=0,
        show_progress=False,
    )


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as f:  # one short write with O_APPEND: lines never interleave
        f.write(json.dumps({**record, "pid": os.getpid(), "t": time.time()}) + "\n")


# The supervisor: starts, kills and re-runs drivers ------------------------------------------
class Supervisor:
    """Runs the driver command, kills workers and the driver, and keeps the tallies."""

    def __init__(self, cluster: RayCluster, settings: Settings, storage: str, work: Path):
        self.cluster, self.s = cluster, settings
        self.work, self.log, self.storage = work, work / "evaluations.jsonl", storage
        config = {**asdict(settings), "log": str(self.log), "storage": storage}
        config["address"] = cluster.address
        self.command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--driver",
            json.dumps(config),
        ]
        self.kills: list[tuple[int, tuple[Any, ...]]] = []  # (worker pid, Config it ran)
        self.finished_at_driver_kill: set[tuple[Any, ...]] = set()
        self.first_driver = 0
        self.resumed_s = self.restart_wait_s = 0.0
        self.grace_s = GRACE_PERIOD_S if settings.grace_s is None else settings.grace_s

    def run(self) -> None:
        """First driver until half the trials are done, SIGKILL it, run the command again."""
        first = self._start(1)
        self.first_driver = first.pid
        self._supervise(first, kill_driver_at=self.s.n_trials // 2)
        if first.returncode != -signal.SIGKILL:
            raise RuntimeError(f"the first driver was not killed: {self._output(1)}")
        self.finished_at_driver_kill = self._completed_configs()
        start = time.perf_counter()
        if not self.s.restart_now:
            time.sleep(self.grace_s + 1.0)  # until the dead driver's heartbeats are stale
        self.restart_wait_s = time.perf_counter() - start
        start = time.perf_counter()
        second = self._start(2)
        self._supervise(second, kill_driver_at=None)
        self.resumed_s = time.perf_counter() - start
        if second.returncode != 0:
            raise RuntimeError(f"the resumed driver failed: {self._output(2)}")

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def _start(self, run: int) -> subprocess.Popen[bytes]:
        with open(self.work / f"driver-{run}.out", "wb") as out:  # the child keeps its copy
            return subprocess.Popen(
                self.command, env=driver_env(), stdout=out, stderr=subprocess.STDOUT
            )

    def _output(self, run: int) -> str:
        return (self.work / f"driver-{run}.out").read_text(errors="replace")[-3000:]

    def _supervise(self, proc: subprocess.Popen[bytes], *, kill_driver_at: int | None) -> None:
        deadline = time.monotonic() + 600
        next_kill = self._done() + self.s.kill_every
        with _reaped(proc):
            while proc.poll() is None:
                done = self._done()
                if kill_driver_at is not None and done >= kill_driver_at:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return
                if done >= next_kill and self._kill_busy_worker(proc.pid):
                    next_kill += self.s.kill_every
                if time.monotonic() > deadline:
                    raise TimeoutError("the driver ran for more than 600 s")
                time.sleep(0.02)

    def _done(self) -> int:
        return sum(e["event"] == "done" for e in self.events())

    def _kill_busy_worker(self, driver_pid: int) -> bool:
        """SIGKILL the worker that started a trial most recently and has not finished it."""
        last: dict[int, dict[str, Any]] = {}
        for e in self.events():
            if e["driver"] == driver_pid:
                last[e["pid"]] = e
        busy = sorted((e for e in last.values() if e["event"] == "start"), key=lambda e: -e["t"])
        for e in busy:
            try:
                self.cluster.kill_worker(e["pid"])
            except (ValueError, ProcessLookupError):
                continue  # already gone (killed earlier)
            self.kills.append((e["pid"], _key(e["config"])))
            return True
        return False

    def _completed_configs(self) -> set[tuple[Any, ...]]:
        study = optuna.load_study(study_name=STUDY, storage=self.storage)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return {_key(t.params) for t in done}


@contextmanager
def _reaped(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


def _key(config: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(config.items()))


# Tallies ------------------------------------------------------------------------------------
def tally(sup: Supervisor, wall_s: float) -> dict[str, Any]:
    """What the study and the evaluation log say about the faults."""
    result = tradeoff.SearchResult.load(sup.storage, STUDY)
    trials = result.trials
    status = Counter(trials["status"])
    completed = [
        _key({"x0": r.x0, "x1": r.x1}) for r in trials.itertuples() if r.status == "complete"
    ]
    # A trial killed while its parameters were being drawn is stale with no complete Config
    # (none, or x0 without x1): nothing to re-run (the optimizer proposes another in its place;
    # the budget count shows any loss).
    stale = {
        _key({"x0": r.x0, "x1": r.x1})
        for r in trials.itertuples()
        if r.status == "stale" and r.x0 == r.x0 and r.x1 == r.x1  # NaN: not drawn
    }
    events = sup.events()
    starts = Counter((e["driver"], _key(e["config"])) for e in events if e["event"] == "start")
    second = {k for (d, k) in starts if d != sup.first_driver}
    finished = {(e["pid"], _key(e["config"])) for e in events if e["event"] == "done"}
    mid_trial = [kill for kill in sup.kills if kill not in finished]
    s = sup.s
    short = s.n_trials - status["complete"] - status["failed"]
    lost_configs = stale - set(completed)
    results: dict[str, Any] = {
        "trials_requested": s.n_trials,
        "completed": status["complete"],
        "failed": status["failed"],
        "stale_reenqueued": status["stale"],
        "left_running": status["running"],  # RUNNING for good: holds budget, never re-run
        "budget_short": short,
        "stale_never_rerun": len(lost_configs),
        "trials_lost": max(short, len(lost_configs)),  # the same trial may show in both
        "finished_trials_rerun": len(sup.finished_at_driver_kill & second)
        + len(completed)
        - len(set(completed)),
        "worker_kills": len(sup.kills),
        "worker_kills_mid_trial": len(mid_trial),
        "driver_kills": 1,
        "task_retries": sum(n - 1 for n in starts.values()),
        "evaluations": sum(starts.values()),
        "wall_s": wall_s,
        "restart_wait_s": sup.restart_wait_s,
        "resumed_run_s": sup.resumed_s,
        "grace_period_s": sup.grace_s,
        "ideal_s": s.n_trials * s.sleep_s / s.n_workers,
    }
    if results["trials_lost"] or results["finished_trials_rerun"]:
        results["diagnosis"] = diagnosis(sup, trials, lost_configs, events)
    return results


def diagnosis(
    sup: Supervisor, trials: Any, never: set[tuple[Any, ...]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a missed target needs to be understood: every trial, the stale Configs never
    re-run, the evaluation log and both drivers' output."""
    wanted = ("trial", "status", "failure", "worker", "x0", "x1")
    columns = [c for c in wanted if c in trials.columns]
    return {
        "trials": json.loads(trials[columns].to_json(orient="records")),
        "stale_never_rerun": [list(k) for k in sorted(never)],
        "events": events,
        "kills": [[pid, list(k)] for pid, k in sup.kills],
        "driver_output": [sup._output(1), sup._output(2)],
    }


def check_targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {"target": "== 0", "measured": results[name], "met": results[name] == 0}
        for name in ("trials_lost", "finished_trials_rerun")
    }


# Report -------------------------------------------------------------------------------------
ROWS = [
    ("trials requested", "trials_requested", "d"),
    ("completed", "completed", "d"),
    ("failed", "failed", "d"),
    ("stale, re-enqueued (driver kill)", "stale_reenqueued", "d"),
    ("trials lost (target 0)", "trials_lost", "d"),
    ("  budget not reached by", "budget_short", "d"),
    ("  stale Configs never re-run", "stale_never_rerun", "d"),
    ("  left RUNNING for good", "left_running", "d"),
    ("finished trials re-run (target 0)", "finished_trials_rerun", "d"),
    ("worker processes killed", "worker_kills", "d"),
    ("  of which mid-trial", "worker_kills_mid_trial", "d"),
    ("driver killed", "driver_kills", "d"),
    ("Ray task retries", "task_retries", "d"),
    ("evaluations run", "evaluations", "d"),
    ("wall s", "wall_s", ".1f"),
    ("  of which waiting to re-run", "restart_wait_s", ".1f"),
    ("  of which the resumed run", "resumed_run_s", ".1f"),
    ("heartbeat grace period s", "grace_period_s", "d"),
    ("ideal s (no faults, no overhead)", "ideal_s", ".1f"),
]


def print_report(report: dict[str, Any]) -> None:
    m, s, r = report["machine"], report["settings"], report["results"]
    print(
        f"\n{m['cpu_count']} CPUs, Python {m['python']}, Optuna {m['optuna']}, Ray {m['ray']}; "
        f"load avg {m['load_avg_1_5_15_at_start']} -> {m['load_avg_1_5_15_at_end']}"
    )
    print(
        f"\nTwo-node Ray cluster (head 1 CPU, worker node 2 CPUs), {report['storage']} storage; "
        f"{s['n_trials']} trials sleeping {s['sleep_s']} s on {s['n_workers']} workers; a worker "
        f"killed every {s['kill_every']} trials, the driver killed once and re-run "
        + ("at once" if s["restart_now"] else "after the grace period")
    )
    width = max(len(label) for label, _, _ in ROWS)
    for label, key, spec in ROWS:
        print(f"  {label.ljust(width)}  {format(r[key], spec):>8}")
    print("\ntargets:")
    for name, t in report["targets"].items():
        print(f"  {name}: {t['measured']} (target {t['target']}) {'MET' if t['met'] else 'MISSED'}")


def machine_info(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    import ray

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "optuna": optuna.__version__,
        "ray": ray.__version__,
        "tradeoff": tradeoff.__version__,
        # Other processes on the machine skew the wall times: check these first.
        "load_avg_1_5_15_at_start": [round(x, 2) for x in load_at_start],
        "load_avg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
    }


# Main ---------------------------------------------------------------------------------------
@contextmanager
def open_storage(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'faults.db'}"
        return
    from tests.servers.postgres import postgres_server

    with postgres_server() as url:
        yield url


def run(settings: Settings, storage_kind: str) -> dict[str, Any]:
    load, timestamp = os.getloadavg(), datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="tradeoff-faults-") as tmp:
        work = Path(tmp)
        with open_storage(storage_kind, work) as storage, RayCluster() as cluster:
            sup = Supervisor(cluster, settings, storage, work)
            start = time.perf_counter()
            sup.run()
            results = tally(sup, time.perf_counter() - start)
    return {
        "command": command_line(),
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **commit_info()},
        "settings": asdict(settings),
        "storage": storage_kind,
        "results": results,
        "targets": check_targets(results),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few trials (smoke test)")
    parser.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--restart-now", action="store_true", help="re-run the killed driver without waiting"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--driver", metavar="SETTINGS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.driver is not None:
        driver(json.loads(args.driver))
        return 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster on the way out
    start = time.perf_counter()
    settings = replace(QUICK if args.quick else Settings(), restart_now=args.restart_now)
    report = run(settings, args.storage)
    report["benchmark_wall_s"] = time.perf_counter() - start
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
