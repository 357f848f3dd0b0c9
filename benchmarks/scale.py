"""Scale: does the driver's cost per trial stay flat as the study grows?

One ``tradeoff.optimize`` call per case runs an instant 2-objective objective (ZDT1 on 4
variables, microseconds) with Optuna's ``RandomSampler`` (its proposals cost the same at any
study size) and one local worker thread, with the progress bar on (written to nowhere): a
20,000-trial in-memory study, a multi-fidelity in-memory study (``Fidelity((1, 3, 9), eta=3)``,
5,000 Configs, so about 7,000 trials: the promoter picks a promotion before every proposal; the
objective adds noise shrinking with the budget), and 10,000-trial SQLite and PostgreSQL studies
(heartbeats; PostgreSQL is a throw-away server of Debian's binaries on loopback, started by
``tests/servers/postgres.py``), each time-boxed by ``optimize(timeout=...)``. The cases
``tpe`` and ``mobo`` run the in-memory search with Optuna's multivariate TPE and tradeoff's
``mobo`` instead of random search (1,000 trials by default): each sampler call is timed, so the
sampler's share of every gap is reported apart from the driver's. The case ``evolution``
runs tradeoff's evolution sampler (``auto``'s pick for a compression search under a size
budget) on the budget ladder with a SQLite study, as ``compress`` does by default, timed the
same way (``--sampler-trials`` Configs).
``evaluate`` stamps ``time.perf_counter()``; the gap between
consecutive calls is one full trip of the driver loop (tell, budget, ask, record, submit), so
with an objective that costs nothing it is the driver's (and Optuna's and the storage's) cost
per trial. The gaps are split into tenths in trial order and the median of each tenth is
reported; the target is last tenth <= 1.5x the first. The same is reported in CPU time of
this process (``time.process_time()``), which other jobs on the machine disturb far less than
wall time (it leaves out waiting, e.g. for SQLite's fsync).

``--efficiency 8,32,64`` measures instead how well the driver keeps that many 1-s trials in
flight (issue #18 item 2): Ray is started once with as many logical CPUs as the largest level
(startup excluded), then for each level ``tradeoff.optimize(backend="ray", n_workers=level)``
runs ``--rounds`` rounds of sleeping trials, and bare Ray tasks (no engine: submit, ``ray.wait``
for one, submit the next) run the same trials, the floor. Each pair runs ``--repeats`` times,
the order alternating (the first run after another level pays for Ray's worker churn), and
the best run of each is compared. Efficiency = ideal wall (rounds x
sleep) / measured wall; the driver's CPU seconds per trial (``time.process_time()`` of this
process, Ray's client threads included) are recorded beside it.

``--before PATH`` embeds a report this script wrote on an earlier commit under ``"before"``
(the driver before it kept its counts itself), and ``--before-fidelity PATH`` one under
``"before_fidelity"`` (the promoter before it ranked rungs incrementally), so one JSON holds all.

Usage:
    python benchmarks/scale.py [--quick] [--cases memory,fidelity,sqlite,postgres]
        [--memory-trials 20000] [--fidelity-trials 5000] [--sqlite-trials 10000]
        [--postgres-trials 10000] [--sampler-trials 1000] [--time-box 1200] [--before PATH]
        [--before-fidelity PATH] [--out PATH]
    python benchmarks/scale.py --efficiency 8,32,64,128,256 [--rounds 6] [--repeats 2]
        [--sleep 1.0] --out PATH
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from optimizers import quiet, recorded, write_report

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.search import Fidelity
from tradeoff.spaces import Float, SearchSpace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "scale.json"
N_PARAMS = 4
SPACE = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(N_PARAMS)})
OBJECTIVES = [Objective("f1"), Objective("f2")]
TENTHS = 10
TARGET_GROWTH = 1.5  # median ms/trial, last tenth over first tenth
LADDER = Fidelity((1, 3, 9), eta=3, name="steps")
CASES = ("memory", "fidelity", "sqlite", "postgres", "tpe", "mobo", "evolution")
STORAGE = {
    "memory": "memory", "fidelity": "memory", "sqlite": "sqlite", "postgres": "postgres",
    "tpe": "memory", "mobo": "memory", "evolution": "sqlite",
}  # fmt: skip
SAMPLERS = ("tpe", "mobo", "evolution")  # cases whose sampler is timed
LADDERED = ("fidelity", "evolution")  # cases searched on the budget ladder
SAMPLER_CALLS = (
    "infer_relative_search_space", "sample_relative", "sample_independent", "before_trial",
    "after_trial",
)  # fmt: skip


def zdt1(config: Mapping[str, Any]) -> dict[str, float]:
    x = [float(config[f"x{i}"]) for i in range(N_PARAMS)]
    g = 1.0 + 9.0 * sum(x[1:]) / (len(x) - 1)
    return {"f1": x[0], "f2": g * (1.0 - math.sqrt(x[0] / g))}


def noisy_zdt1(config: Mapping[str, Any], budget: float) -> dict[str, float]:
    """ZDT1 seen through noise that shrinks as the budget grows (seeded by the Config)."""
    rng = random.Random(repr((sorted(config.items()), budget)))  # str seeds: not hash()
    return {k: v + rng.gauss(0.0, 0.2 / budget) for k, v in zdt1(config).items()}


def timed_sampler(case: str, n_trials: int, spent: list[float]) -> Any:
    """The case's sampler; with ``tpe``/``mobo``/``evolution``, its calls add their seconds to
    ``spent[0]`` (the instance's methods are wrapped: it stays the class ``optimize`` expects)."""
    if case not in SAMPLERS:
        return "random"
    from tradeoff.objectives import ObjectiveSet
    from tradeoff.search import make_sampler

    objectives = ObjectiveSet.build(OBJECTIVES)
    sampler = make_sampler(case, space=SPACE, objectives=objectives, n_trials=n_trials, seed=0)

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return timed

    for name in SAMPLER_CALLS:
        setattr(sampler, name, wrap(getattr(sampler, name)))
    return sampler


def search(case: str, url: str | None, n_trials: int, time_box: float) -> dict[str, Any]:
    """One time-boxed search; the median ms/trial of each tenth of the trials it ran."""
    stamps: list[float] = []
    cpu: list[float] = []
    budgets: list[float] = []
    spent = [0.0]  # seconds inside the sampler so far
    in_sampler: list[float] = []

    def stamp() -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        in_sampler.append(spent[0])

    def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
        stamp()
        return zdt1(config)

    def at_budget(config: Mapping[str, Any], budget: float) -> dict[str, float]:
        stamp()
        budgets.append(budget)
        return noisy_zdt1(config, budget)

    fidelity = LADDER if case in LADDERED else None
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # the progress bar runs, unseen
        result = tradeoff.optimize(
            evaluate if fidelity is None else at_budget, SPACE, objectives=OBJECTIVES,
            optimizer=timed_sampler(case, n_trials, spent), n_trials=n_trials, n_workers=1,
            storage=url, study_name=None if url is None else f"scale-{case}", seed=0,
            timeout=time_box,
            show_progress=True, fidelity=fidelity,
        )  # fmt: skip
    wall = time.perf_counter() - start
    tenths, cpu_tenths = by_tenth(stamps), by_tenth(cpu)
    sampler = None
    if case in SAMPLERS:  # each gap split into the sampler's time and the rest
        outside = [t - o for t, o in zip(stamps, in_sampler)]
        sampler = {"sampler_ms_per_trial_by_tenth": by_tenth(in_sampler),
                   "driver_ms_per_trial_by_tenth": by_tenth(outside)}  # fmt: skip
    status = result.trials["status"]
    configs = len(stamps) if fidelity is None else budgets.count(LADDER.budgets[0])
    return {
        "case": case,
        "storage": STORAGE[case],
        "fidelity": None if fidelity is None else list(fidelity.budgets),
        "n_trials": n_trials,
        "configs_run": configs,
        "trials_run": len(stamps),
        "evaluations_by_budget": {f"{b:g}": budgets.count(b) for b in LADDER.budgets}
        if fidelity is not None
        else None,
        "study_trials": len(result.trials),
        "complete": int((status == "complete").sum()),
        "time_boxed": configs < n_trials,
        "wall_s": wall,
        "ms_per_trial_by_tenth": tenths,
        "ms_first_tenth": tenths[0],
        "ms_last_tenth": tenths[-1],
        "growth": tenths[-1] / tenths[0],
        "cpu_ms_per_trial_by_tenth": cpu_tenths,
        "cpu_growth": cpu_tenths[-1] / cpu_tenths[0],
        "mean_ms_per_trial": 1e3 * (stamps[-1] - stamps[0]) / (len(stamps) - 1),
        **(sampler or {}),
    }


def sleeper(sleep_s: float) -> Callable[[Mapping[str, Any]], dict[str, float]]:
    def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
        time.sleep(sleep_s)
        return zdt1(config)

    return evaluate


def bare_ray(evaluate: Callable[..., Any], trials: int, n_workers: int) -> None:
    """Bare Ray tasks, ``n_workers`` in flight, a new one as soon as one returns: the floor
    (the engine-overhead benchmark's, on the same 4-parameter Config)."""
    from engine_overhead import N_PARAMS as ITS_PARAMS
    from engine_overhead import run_raw_ray

    assert ITS_PARAMS == N_PARAMS
    run_raw_ray(evaluate, trials, n_workers)


def efficiency(level: int, rounds: int, sleep_s: float, repeats: int) -> list[dict[str, Any]]:
    """tradeoff on Ray and bare Ray tasks with ``level`` trials in flight."""
    trials, ideal = level * rounds, rounds * sleep_s
    evaluate = sleeper(sleep_s)

    def engine() -> None:
        result = tradeoff.optimize(
            evaluate, SPACE, objectives=OBJECTIVES, optimizer="random", n_trials=trials,
            n_workers=level, backend="ray", seed=0, show_progress=False,
        )  # fmt: skip
        complete = int((result.trials["status"] == "complete").sum())
        if complete != trials:
            raise RuntimeError(f"tradeoff: {complete} of {trials} trials completed")

    def floor() -> None:
        bare_ray(evaluate, trials, level)

    rows = []
    pairs = [("tradeoff ray", engine), ("bare ray tasks (floor)", floor)]
    for repeat in range(repeats):
        for name, fn in pairs if repeat % 2 == 0 else pairs[::-1]:
            cpu, start = time.process_time(), time.perf_counter()
            fn()
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows.append({
                "engine": name, "in_flight": level, "repeat": repeat, "trials": trials,
                "sleep_s": sleep_s, "ideal_s": ideal, "wall_s": wall, "efficiency": ideal / wall,
                "driver_cpu_s_per_trial": cpu / trials,
            })  # fmt: skip
            print(f"{level} in flight, {name}, run {repeat + 1}: {ideal / wall:.1%}", flush=True)
    return rows


def best_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level and engine, the run with the highest efficiency (``runs``: how many)."""
    best: dict[tuple[int, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["in_flight"], r["engine"])
        runs = best.get(key, {}).get("runs", 0) + 1
        if key not in best or r["efficiency"] > best[key]["efficiency"]:
            best[key] = dict(r)
        best[key]["runs"] = runs
    return list(best.values())


def run_efficiency(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray

    quiet()
    ray.init(num_cpus=max(args.efficiency), include_dashboard=False, log_to_driver=False)
    try:
        # Warm up every worker (trials that sleep, so all of them run at once): each one
        # imports tradeoff once, outside the measurement.
        top, warm = max(args.efficiency), sleeper(3 * args.sleep)  # Ray starts workers slowly
        bare_ray(warm, top, top)
        tradeoff.optimize(
            warm, SPACE, objectives=OBJECTIVES, optimizer="random", n_trials=top,
            n_workers=top, backend="ray", seed=0, show_progress=False,
        )  # fmt: skip
        return [
            row
            for level in args.efficiency
            for row in efficiency(level, args.rounds, args.sleep, args.repeats)
        ]
    finally:
        ray.shutdown()


def by_tenth(stamps: list[float]) -> list[float]:
    """The median gap (ms) between consecutive stamps over each tenth of them, in order."""
    gaps = [1e3 * (b - a) for a, b in itertools.pairwise(stamps)]
    size = len(gaps) // TENTHS
    return [statistics.median(gaps[i * size : (i + 1) * size]) for i in range(TENTHS)]


@contextlib.contextmanager
def storage_urls(cases: list[str], directory: Path) -> Iterator[Callable[[str], str | None]]:
    """Each case's storage URL: a SQLite file in ``directory``, or a throw-away PostgreSQL
    server (started only when a case needs it)."""
    with contextlib.ExitStack() as stack:
        postgres = None
        if "postgres" in cases:
            sys.path.insert(0, str(ROOT))  # tests/servers holds the server helper
            from tests.servers.postgres import postgres_server

            postgres = stack.enter_context(postgres_server())

        def url(case: str) -> str | None:
            if STORAGE[case] == "sqlite":
                return f"sqlite:///{directory / f'scale-{case}.db'}"
            return postgres if STORAGE[case] == "postgres" else None

        yield url


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    quiet()
    rows = []
    sizes = {
        "memory": args.memory_trials, "fidelity": args.fidelity_trials,
        "sqlite": args.sqlite_trials, "postgres": args.postgres_trials,
        "tpe": args.sampler_trials, "mobo": args.sampler_trials,
        "evolution": args.sampler_trials,
    }  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="tradeoff-scale-") as directory,
        storage_urls(args.cases, Path(directory)) as url,
    ):
        for case in args.cases:
            rows.append(search(case, url(case), sizes[case], args.time_box))
            r = rows[-1]
            print(f"{case}: {r['trials_run']} trials in {r['wall_s']:.0f} s", flush=True)
    return rows


def targets(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{r.get('case', r['storage'])}_growth": {
            "target": f"<= {TARGET_GROWTH}",
            "measured": r["growth"],
            "met": r["growth"] <= TARGET_GROWTH,
        }
        for r in rows
    }


def format_rows(label: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        for clock, key, growth in (("wall", "ms", "growth"), ("cpu", "cpu_ms", "cpu_growth")):
            if f"{key}_per_trial_by_tenth" not in r:
                continue  # made before the CPU times were recorded
            cells = " ".join(f"{ms:6.2f}" for ms in r[f"{key}_per_trial_by_tenth"])
            name = f"{label} {r.get('case', r['storage'])} {clock} ({r['trials_run']:,} trials)"
            lines.append(f"{name:<46} {cells}  {r[growth]:5.2f}x")
    return lines


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(
        f"\n{m['cpu_count']} CPUs, Python {m['python']}, Optuna {m['optuna']}; load avg "
        f"{m['load_avg_1_5_15_at_start']} -> {m['load_avg_1_5_15_at_end']}"
    )
    print("median driver ms/trial per tenth of the trials, instant objective, RandomSampler")
    heads = " ".join(f"{i + 1:>6}" for i in range(TENTHS))
    print(f"{'':<46} {heads}  growth")
    for key in ("before", "before_fidelity"):
        before = report.get(key)
        if before is not None:
            commit = before["machine"].get("tradeoff_commit")
            print("\n".join(format_rows(f"before ({commit})", before["rows"])))
    print("\n".join(format_rows("now", report["rows"])))
    for name, t in report["targets"].items():
        verdict = "MET" if t["met"] else "MISSED"
        print(f"  {name}: {t['measured']:.2f}x (target {t['target']}) {verdict}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few trials (smoke test)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, in order")
    parser.add_argument("--memory-trials", type=int, default=20_000)
    parser.add_argument("--fidelity-trials", type=int, default=5_000, help="Configs")
    parser.add_argument("--sqlite-trials", type=int, default=10_000)
    parser.add_argument("--postgres-trials", type=int, default=10_000)
    parser.add_argument(
        "--sampler-trials", type=int, default=1_000, help="tpe, mobo; evolution: Configs"
    )
    parser.add_argument("--time-box", type=float, default=1200.0, help="seconds per search")
    parser.add_argument("--before", type=Path, default=None, help="a report of an older commit")
    parser.add_argument(
        "--before-fidelity", type=Path, default=None, help="an older commit's fidelity report"
    )
    parser.add_argument(
        "--efficiency", default=None, help="comma-separated trials in flight (e.g. 8,32,64)"
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds of trials (efficiency)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per engine and level")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds a trial sleeps")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    if args.efficiency is not None:
        args.efficiency = [int(x) for x in args.efficiency.split(",") if x.strip()]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    if args.quick:
        args.memory_trials, args.fidelity_trials = 200, 60
        args.sqlite_trials, args.postgres_trials, args.sampler_trials = 40, 40, 30
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.efficiency is not None:
        report = recorded(args, lambda: run_efficiency(args), packages=("ray",), key="runs")
        report["efficiency"] = best_runs(report["runs"])
        for r in report["efficiency"]:
            print(
                f"{r['in_flight']:>4} in flight  {r['engine']:<24} {r['efficiency']:6.1%}  "
                f"driver CPU {1e3 * r['driver_cpu_s_per_trial']:.2f} ms/trial "
                f"(best of {r['runs']})"
            )
        write_report(report, args.out)
        print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
        return 0
    report = recorded(args, lambda: run(args), key="rows")
    report["targets"] = targets(report["rows"])
    if args.before is not None:
        report["before"] = json.loads(args.before.read_text())
    if args.before_fidelity is not None:
        report["before_fidelity"] = json.loads(args.before_fidelity.read_text())
    print_report(report)
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
