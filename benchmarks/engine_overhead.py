"""Engine overhead: what tradeoff's driver costs per trial, and how well RayPool parallelizes.

Two measurements, in one run:

1. Driver overhead on a 2-objective ZDT1 objective that returns instantly (RandomSampler and
   in-memory storage everywhere, so the sampler costs the same tiny amount): plain Optuna
   ``study.optimize`` (the baseline), ``tradeoff.optimize`` on the local and Ray backends (Ray
   tasks, and ``ray_actors=True``), and Ray Tune with ``OptunaSearch``. Since the objective
   costs ~0, ms per trial = overhead.
2. Parallel efficiency on an objective that sleeps, with 1, 2 and 4 workers: tradeoff on local
   threads and on Ray, and Ray Tune with ``OptunaSearch`` (2 and 4 workers; it takes ~1 min
   per run) on the same sleeping objective.
   Ideal wall = trials * sleep / n_workers, efficiency = ideal / measured, and the overhead per
   trial = (measured - ideal) / trials.

Both also time bare Ray tasks (no engine): the floor a Ray-based engine can reach here. Ray
is started once (startup excluded) and warmed up before the Ray measurements; each case is
run ``repeats`` times and the median wall time is reported (Ray Tune: once).

Usage:
    python benchmarks/engine_overhead.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import ray
from provenance import command_line, commit_info
from ray import tune
from ray.tune.search.optuna import OptunaSearch

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.spaces import Float, SearchSpace

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "engine_overhead.json"
N_PARAMS = 4
RAY_CPUS = 4
TARGET_OVERHEAD_MS = 5.0  # tradeoff on Ray, per trial
TARGET_EFFICIENCY = 0.95  # tradeoff on Ray with 2 workers
OVERHEAD_COLUMNS = [
    ("engine", "engine", ""),
    ("workers", "n_workers", "d"),
    ("trials", "trials", "d"),
    ("wall s", "wall_s", ".3f"),
    ("ms/trial", "ms_per_trial", ".2f"),
    ("trials/s", "trials_per_s", ".1f"),
]
PARALLEL_COLUMNS = [
    ("engine", "engine", ""),
    ("workers", "n_workers", "d"),
    ("trials", "trials", "d"),
    ("ideal s", "ideal_s", ".2f"),
    ("wall s", "wall_s", ".3f"),
    ("efficiency", "efficiency", ".1%"),
    ("trials/s", "trials_per_s", ".2f"),
    ("overhead ms/trial", "overhead_ms_per_trial", ".1f"),
]
# Tune writes no per-trial logger files (fair: tradeoff writes none either) and prints nothing.
TUNE_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0"}


@dataclass(frozen=True)
class Settings:
    """How much to run; ``--quick`` shrinks everything for a smoke test."""

    n_trials: int = 200
    tune_trials: int = 30
    sleep_trials: int = 20
    sleep_s: float = 0.2
    repeats: int = 3
    worker_counts: tuple[int, ...] = (1, 2, 4)  # parallel efficiency
    tune_worker_counts: tuple[int, ...] = (2, 4)  # Tune on the sleeping objective: ~1 min each


QUICK = Settings(n_trials=20, tune_trials=3, sleep_trials=4, sleep_s=0.2, repeats=1)


@dataclass
class Overhead:
    """Per-trial cost of one engine on the instant objective (median over repeats)."""

    engine: str
    n_workers: int
    trials: int
    wall_s: float
    ms_per_trial: float
    trials_per_s: float
    walls_s: list[float] = field(default_factory=list)


@dataclass
class Parallel:
    """Parallel efficiency of one engine on the sleeping objective (median over repeats)."""

    engine: str
    n_workers: int
    trials: int
    sleep_s: float
    ideal_s: float
    wall_s: float
    efficiency: float
    trials_per_s: float
    overhead_ms_per_trial: float  # (wall - ideal) / trials
    walls_s: list[float] = field(default_factory=list)


# Objectives ---------------------------------------------------------------------------------
def zdt1(x: list[float]) -> tuple[float, float]:
    g = 1.0 + 9.0 * sum(x[1:]) / (len(x) - 1)
    return x[0], g * (1.0 - math.sqrt(x[0] / g))


def instant(config: Mapping[str, Any]) -> dict[str, float]:
    f1, f2 = zdt1([config[f"x{i}"] for i in range(N_PARAMS)])
    return {"f1": f1, "f2": f2}


def make_sleeper(sleep_s: float) -> Callable[[Mapping[str, Any]], dict[str, float]]:
    def sleeper(config: Mapping[str, Any]) -> dict[str, float]:
        time.sleep(sleep_s)
        return instant(config)

    return sleeper


def optuna_objective(trial: optuna.Trial) -> tuple[float, float]:
    return zdt1([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(N_PARAMS)])


def tune_trainable(config: dict[str, Any]) -> None:
    tune.report(instant(config))


def make_tune_sleeper(sleep_s: float) -> Callable[[dict[str, Any]], None]:
    def tune_sleeper(config: dict[str, Any]) -> None:
        time.sleep(sleep_s)
        tune.report(instant(config))

    return tune_sleeper


# Timing helpers -----------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat_walls(fn: Callable[[], object], repeats: int) -> list[float]:
    return [timed(fn) for _ in range(repeats)]


def overhead(
    engine: str, n_workers: int, trials: int, fn: Callable[[], object], repeats: int = 1
) -> Overhead:
    walls = repeat_walls(fn, repeats)
    wall = statistics.median(walls)
    return Overhead(engine, n_workers, trials, wall, 1e3 * wall / trials, trials / wall, walls)


def parallel(
    engine: str, n_workers: int, trials: int, sleep_s: float, fn: Callable[[], object], repeats: int
) -> Parallel:
    walls = repeat_walls(fn, repeats)
    wall = statistics.median(walls)
    ideal = trials * sleep_s / n_workers
    extra = 1e3 * (wall - ideal) / trials
    return Parallel(
        engine, n_workers, trials, sleep_s, ideal, wall, ideal / wall, trials / wall, extra, walls
    )


# Engines ------------------------------------------------------------------------------------
def run_optuna(trials: int) -> None:
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(optuna_objective, n_trials=trials)
    check_done("optuna", sum(t.values is not None for t in study.trials), trials)


def run_tradeoff(evaluate: Callable[..., Any], trials: int, backend: str, n_workers: int) -> None:
    """``backend``: "local", "ray" (a Ray task per trial) or "ray-actors" (persistent actors)."""
    space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(N_PARAMS)})
    result = tradeoff.optimize(
        evaluate,
        space,
        objectives=[Objective("f1"), Objective("f2")],
        optimizer="random",
        n_trials=trials,
        n_workers=n_workers,
        backend=backend.removesuffix("-actors"),
        ray_actors=backend == "ray-actors",
        seed=0,
        show_progress=False,
    )
    check_done(f"tradeoff/{backend}", int((result.trials["status"] == "complete").sum()), trials)


def run_tune(
    trials: int, trainable: Callable[[dict[str, Any]], None] = tune_trainable, n_workers: int = 2
) -> None:
    search = OptunaSearch(
        metric=["f1", "f2"], mode=["min", "min"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    space = {f"x{i}": tune.uniform(0.0, 1.0) for i in range(N_PARAMS)}
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as storage:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                search_alg=search, num_samples=trials, max_concurrent_trials=n_workers
            ),
            run_config=tune.RunConfig(storage_path=storage, name="bench", verbose=0),
        )
        results = tuner.fit()
    completed = sum("f2" in (results[i].metrics or {}) for i in range(len(results)))
    check_done("ray tune", completed, trials)


def run_raw_ray(evaluate: Callable[..., Any], trials: int, n_workers: int) -> None:
    """Bare Ray tasks, no engine around them: the floor any Ray-based engine can reach."""
    task = ray.remote(num_cpus=1)(evaluate)
    config = {f"x{i}": 0.5 for i in range(N_PARAMS)}
    pending: list[Any] = []
    submitted = done = 0
    while done < trials:
        while len(pending) < n_workers and submitted < trials:
            pending.append(task.remote(config))
            submitted += 1
        ready, pending = ray.wait(pending, num_returns=1)
        ray.get(ready)
        done += len(ready)


def check_done(engine: str, completed: int, expected: int) -> None:
    if completed != expected:
        raise RuntimeError(f"{engine}: {completed} of {expected} trials completed.")


# Sections -----------------------------------------------------------------------------------
def measure_overhead(s: Settings) -> tuple[list[Overhead], dict[str, float]]:
    n, r = s.n_trials, s.repeats

    def on(backend: str, n_workers: int) -> Callable[[], None]:
        return partial(run_tradeoff, instant, n, backend, n_workers)

    # The first Ray call starts the worker processes and imports tradeoff there: kept apart.
    warmup = {"tradeoff_ray_first_call_s": timed(on("ray", 2))}
    cases: list[tuple[str, int, Callable[[], object]]] = [
        ("optuna study.optimize", 1, partial(run_optuna, n)),
        ("tradeoff local", 1, on("local", 1)),
        ("tradeoff ray", 2, on("ray", 2)),
        ("raw ray tasks (floor)", 2, partial(run_raw_ray, instant, n, 2)),
        # Last: each call starts and kills its actors, which loads the CPUs for a while after.
        ("tradeoff ray, ray_actors", 2, on("ray-actors", 2)),
    ]
    rows = [overhead(name, k, n, fn, r) for name, k, fn in cases]
    warmup["ray_tune_2_trials_s"] = timed(partial(run_tune, 2))
    tune_n = s.tune_trials  # Tune is slow: fewer trials, run once
    rows.append(overhead("ray tune + OptunaSearch", 2, tune_n, partial(run_tune, tune_n)))
    return rows, warmup


def measure_parallel(s: Settings) -> tuple[list[Parallel], dict[str, float]]:
    n, sleep, r = s.sleep_trials, s.sleep_s, s.repeats
    sleeper = make_sleeper(sleep)

    def on(backend: str, n_workers: int) -> Callable[[], None]:
        return partial(run_tradeoff, sleeper, n, backend, n_workers)

    # Tune's actors took over Ray's worker processes: start as many task workers as the most
    # workers below (tasks that sleep long enough to all need one), then import tradeoff there.
    counts = sorted(s.worker_counts, reverse=True)
    warmup = {
        "ray_workers_start_s": timed(partial(run_raw_ray, make_sleeper(2.0), counts[0], counts[0])),
        "tradeoff_ray_sleep_s": timed(on("ray", counts[0])),
    }
    cases: list[tuple[str, int, Callable[[], object]]] = [
        # Most workers first, right after the warm-up started that many worker processes.
        *((f"tradeoff {b}", k, on(b, k)) for b in ("ray", "local") for k in counts),
        ("raw ray tasks (floor)", 2, partial(run_raw_ray, sleeper, n, 2)),
        ("tradeoff ray, ray_actors", 2, on("ray-actors", 2)),  # after the tasks, as above
    ]
    rows = [parallel(name, k, n, sleep, fn, r) for name, k, fn in cases]
    tune_sleeper = make_tune_sleeper(sleep)
    rows += [  # Tune is slow: run once
        parallel("ray tune + OptunaSearch", k, n, sleep, partial(run_tune, n, tune_sleeper, k), 1)
        for k in s.tune_worker_counts
    ]
    return rows, warmup


# Report -------------------------------------------------------------------------------------
def check_targets(rows: list[Overhead], par: list[Parallel]) -> dict[str, dict[str, Any]]:
    ray_ms = next(o.ms_per_trial for o in rows if o.engine == "tradeoff ray")
    eff = next(p.efficiency for p in par if p.engine == "tradeoff ray" and p.n_workers == 2)
    return {
        "tradeoff_ray_overhead_ms_per_trial": {
            "target": f"<= {TARGET_OVERHEAD_MS}",
            "measured": ray_ms,
            "met": ray_ms <= TARGET_OVERHEAD_MS,
        },
        "tradeoff_ray_2_workers_efficiency": {
            "target": f">= {TARGET_EFFICIENCY}",
            "measured": eff,
            "met": eff >= TARGET_EFFICIENCY,
        },
    }


def machine_info(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "optuna": optuna.__version__,
        "ray": ray.__version__,
        "tradeoff": tradeoff.__version__,
        "ray_num_cpus": RAY_CPUS,
        # Other processes on the machine skew every number here: check these first.
        "load_avg_1_5_15_at_start": [round(x, 2) for x in load_at_start],
        "load_avg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def format_table(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]) -> str:
    """Aligned plain-text table; ``columns`` are (header, key, format spec)."""
    cells = [[header for header, _, _ in columns]]
    cells += [[format(row[key], spec) for _, key, spec in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(
        f"\n{m['cpu_count']} CPUs, Python {m['python']}, Optuna {m['optuna']}, Ray {m['ray']}; "
        f"load avg {m['load_avg_1_5_15_at_start']} -> {m['load_avg_1_5_15_at_end']}"
    )
    print("\n1. Driver overhead, instant 2-objective ZDT1, RandomSampler, in-memory storage")
    print(format_table(OVERHEAD_COLUMNS, report["overhead"]))
    print(f"\n2. Parallel efficiency, objective sleeps {report['parallel'][0]['sleep_s']} s")
    print(format_table(PARALLEL_COLUMNS, report["parallel"]))
    print(
        "\nwarm-up (excluded above): "
        + ", ".join(f"{k}={v:.2f}" for k, v in report["warmup"].items())
    )
    print("\ntargets:")
    for name, t in report["targets"].items():
        verdict = "MET" if t["met"] else "MISSED"
        print(f"  {name}: {t['measured']:.3f} (target {t['target']}) {verdict}")


# Main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few trials (smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    return parser.parse_args(argv)


def quiet() -> None:
    """Silence library logging and progress output; set before Ray starts its workers."""
    for key, value in TUNE_ENV.items():
        os.environ.setdefault(key, value)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Without logger callbacks Tune cannot re-read result files; the results are in memory.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def start_ray() -> bool:
    """Start a local Ray unless one runs in this process; True if we started it."""
    # Ship this module's functions by value, so Ray workers need not import it (when imported
    # as a module, e.g. by a smoke test, rather than run as a script).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]
    if ray.is_initialized():
        return False
    # log_to_driver=False: Tune's actors print tracebacks when killed at the end of a fit.
    # Failed trials are still caught: every run checks that all its trials completed.
    ray.init(
        num_cpus=RAY_CPUS,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def run(settings: Settings) -> dict[str, Any]:
    load, timestamp = os.getloadavg(), datetime.now(timezone.utc)
    started = start_ray()
    try:
        rows, warmup = measure_overhead(settings)
        par, more_warmup = measure_parallel(settings)
    finally:
        if started:
            ray.shutdown()
    return {
        "command": command_line(),
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **commit_info()},
        "settings": asdict(settings),
        "overhead": [asdict(o) for o in rows],
        "parallel": [asdict(p) for p in par],
        "warmup": {**warmup, **more_warmup},
        "targets": check_targets(rows, par),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    start = time.perf_counter()
    report = run(QUICK if args.quick else Settings())
    report["benchmark_wall_s"] = time.perf_counter() - start
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
