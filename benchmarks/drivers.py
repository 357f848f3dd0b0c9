"""Several drivers as a service: does the trial rate grow with drivers on one PostgreSQL study?

Issue #18 item 3. A throw-away PostgreSQL server (Debian's binaries on loopback, from
``tests/servers/postgres.py``) holds one study per level; at each level 1, 2, 4 driver processes
start at once, each calling ``tradeoff.optimize(..., n_trials=N, storage=url, study_name=...)``
with one local worker thread, random search (each driver its own seed) and an objective that
sleeps ``--sleep`` seconds (0 by default: an instant objective, so the rate is what the drivers
and the storage can do). Between them they must stop at exactly N completed trials.

For each level: trials per second over the span from the first trial's start to the last one's
completion (processes' start-up and imports excluded), the speed-up over one driver, and the
count check: N COMPLETE, every evaluation recorded COMPLETE exactly once (the drivers log each
Config they evaluate), nothing left RUNNING or WAITING, and the ``surplus`` trials (asked by a
driver after the others had filled the budget; not evaluated) counted. The drivers' CPU
seconds per trial (``time.process_time()`` of each process, start-up included) tell whether
they were CPU-bound.

Usage:
    python benchmarks/drivers.py [--quick] [--drivers 1,2,4] [--n-trials 600] [--sleep 0]
        [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optimizers import quiet, recorded, write_report
from optuna.trial import TrialState
from scale import OBJECTIVES, SPACE, zdt1
from storage_load import key

import tradeoff

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "drivers.json"


def client(spec: dict[str, Any]) -> None:
    """One driver process: search, logging every Config it evaluates."""
    quiet()
    log = Path(spec["log"])

    def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
        time.sleep(spec["sleep"])
        with log.open("a") as f:
            f.write(key(config) + "\n")
        return zdt1(config)

    tradeoff.optimize(
        evaluate, SPACE, objectives=OBJECTIVES, optimizer="random", n_trials=spec["n_trials"],
        n_workers=1, storage=spec["url"], study_name=spec["study"], seed=spec["seed"],
        show_progress=False,
    )  # fmt: skip
    Path(spec["log"] + ".cpu").write_text(str(time.process_time()))  # this driver's CPU seconds


def level(url: str, drivers: int, n_trials: int, sleep: float, work: Path) -> dict[str, Any]:
    """``drivers`` processes on one fresh study; the rate and the count check."""
    study = f"drivers-{drivers}"
    logs = [work / f"{study}-{i}.log" for i in range(drivers)]
    specs = [
        {"url": url, "study": study, "n_trials": n_trials, "sleep": sleep, "seed": i,
         "log": str(log)}
        for i, log in enumerate(logs)
    ]  # fmt: skip
    argv = [sys.executable, __file__, "--client"]
    start = time.perf_counter()
    procs = [subprocess.Popen([*argv, json.dumps(spec)]) for spec in specs]
    codes = [p.wait(timeout=3600) for p in procs]
    wall = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"{drivers} drivers: exit codes {codes}")
    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    states = Counter(t.state.name for t in trials)
    status = Counter(str(t.user_attrs.get("tradeoff.status")) for t in trials)
    evaluated = Counter(
        line for log in logs if log.exists() for line in log.read_text().splitlines()
    )
    recorded_keys = Counter(key(t.params) for t in complete)
    span = max(t.datetime_complete for t in complete) - min(t.datetime_start for t in trials)
    return {
        "drivers": drivers,
        "n_trials": n_trials,
        "sleep_s": sleep,
        "wall_s": wall,
        "span_s": span.total_seconds(),
        "trials_per_s": len(complete) / span.total_seconds(),
        "complete": len(complete),
        "study_trials": len(trials),
        "states": dict(states),
        "surplus": status.get("surplus", 0),
        "evaluations": sum(evaluated.values()),
        "evaluated_twice": sum(1 for n in evaluated.values() if n > 1),
        "evaluated_not_complete": sum(1 for k in evaluated if k not in recorded_keys),
        "left_running_or_waiting": states.get("RUNNING", 0) + states.get("WAITING", 0),
        # CPU seconds of the drivers (imports and start-up included) per trial: with 2 cores,
        # rate x this near 2 means the drivers are CPU-bound.
        "driver_cpu_s_per_trial": sum(float(Path(str(log) + ".cpu").read_text()) for log in logs)
        / max(1, len(complete)),
        "per_driver_evaluations": [
            len(log.read_text().splitlines()) if log.exists() else 0 for log in logs
        ],
    }


def exact(row: dict[str, Any]) -> bool:
    """N COMPLETE, each evaluation recorded once, nothing left behind."""
    return (
        row["complete"] == row["n_trials"] == row["evaluations"]
        and row["evaluated_twice"] == 0
        and row["evaluated_not_complete"] == 0
        and row["left_running_or_waiting"] == 0
    )


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT))  # tests/servers holds the server helper
    from tests.servers.postgres import postgres_server

    rows = []
    with (
        postgres_server() as url,
        tempfile.TemporaryDirectory(prefix="tradeoff-drivers-") as work,
    ):
        for drivers in args.drivers:
            rows.append(level(url, drivers, args.n_trials, args.sleep, Path(work)))
            r = rows[-1]
            r["speedup"] = r["trials_per_s"] / rows[0]["trials_per_s"]
            r["exact"] = exact(r)
            print(
                f"{drivers} drivers: {r['trials_per_s']:.1f} trials/s ({r['speedup']:.2f}x), "
                f"{r['complete']} complete, {r['surplus']} surplus, exact: {r['exact']}",
                flush=True,
            )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 and 2 drivers, 40 trials")
    parser.add_argument("--drivers", default="1,2,4", help="comma-separated driver counts")
    parser.add_argument("--n-trials", type=int, default=600, help="trials per study")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds a trial sleeps")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # one driver process
    args = parser.parse_args(argv)
    args.drivers = [int(d) for d in args.drivers.split(",") if d.strip()]
    if args.quick:
        args.drivers, args.n_trials = [1, 2], 40
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        client(json.loads(args.client))
        return 0
    quiet()
    report = recorded(args, lambda: run(args), packages=("sqlalchemy", "psycopg2"), key="rows")
    report["all_exact"] = all(r["exact"] for r in report["rows"])
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0 if report["all_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
