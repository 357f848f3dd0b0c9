"""Optimizer quality: hypervolume after a fixed budget, tradeoff's optimizers against Optuna's.

Every contender runs on every problem of ``problems.py`` (true fronts known exactly) with the
same budget, one trial at a time, in-memory storage, seeds 0..N-1:

* tradeoff's named optimizers, whatever ``tradeoff.search.OPTIMIZERS`` lists at run time,
  run by ``tradeoff.optimize`` as users run them; a name that fails to build, or crashes, is
  reported as n/a;
* Optuna's ``RandomSampler``, ``NSGAIISampler``, ``TPESampler(multivariate=True)`` and
  ``GPSampler``, and optuna-integration's ``BoTorchSampler`` (otherwise default settings),
  run natively by ``study.optimize``, constraints through ``trial.set_constraint``. BoTorch
  runs only when named in ``--optimizers``: its default acquisition costs 20-50 s a proposal
  on 2 CPUs.

Both sides search the same distributions (the SearchSpace's: an ``Ordinal`` was an integer
index when the recorded results were made; it now stores its levels, evenly stepped integers
as an integer range and other levels as a categorical). Score: hypervolume of the feasible
completed trials (minimization form) against the problem's fixed reference point, as a
fraction of the true front's. Cost: seconds per proposal
= (run wall time - time in ``evaluate``) / proposals, the sampler's and engine's time. The
budget is ``n_trials`` in each library's terms; they differ under a known-cost constraint
(``bits8-budget``): tradeoff rejects an over-budget Config unevaluated and without spending a
trial (a run that rejects ``max_rejected`` in a row is stopped, marked ``*``), Optuna
evaluates it. Each run records its proposals and evaluations.

Same sampler class and settings with the same seed make the same trials, so such contenders
share runs (recorded as ``alias``): ``auto`` and the preset it builds, and a tradeoff preset
and the Optuna sampler it is, on a problem without constraints (the engines treat those
differently). ``--no-alias`` runs every contender itself.

Usage:
    python benchmarks/optimizers.py [--quick] [--problems zdt1,digits] [--optimizers auto,gp]
        [--seeds 3] [--n-trials 100] [--jobs 1] [--no-alias] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState
from problems import PROBLEMS, Problem, make_problems
from provenance import command_line, commit_info

import tradeoff
from tradeoff.objectives import ObjectiveSet
from tradeoff.search import OPTIMIZERS, make_sampler

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "optimizers.json"


def _botorch(seed: int) -> optuna.samplers.BaseSampler:
    from optuna_integration import BoTorchSampler

    sampler: optuna.samplers.BaseSampler = BoTorchSampler(seed=seed)
    return sampler


S = optuna.samplers
# Optuna 5 samplers read constraints from trial.constraints (Trial.set_constraint).
OPTUNA_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "optuna-random": lambda seed: S.RandomSampler(seed=seed),
    "optuna-nsga2": lambda seed: S.NSGAIISampler(seed=seed),
    "optuna-tpe": lambda seed: S.TPESampler(seed=seed, multivariate=True),
    "optuna-gp": lambda seed: S.GPSampler(seed=seed),
    "botorch": _botorch,
}
# Listed but not run unless named in --optimizers (measured on 2 CPUs, ZDT1, 10-13 trials).
NOT_BY_DEFAULT = {
    "botorch": "skipped unless named in --optimizers: its default qLogEHVI takes 20-50 s "
    "per proposal here (100 trials x 3 seeds x 6 problems would take a day)",
}
# Expensive per proposal: run first, so parallel jobs end together.
SLOW_FIRST = ("botorch", "optuna-gp", "gp", "mobo", "auto")
# --quick: tradeoff's own picks (and new optimizers when registered) against cheap baselines.
QUICK_OPTIMIZERS = ("auto", "random", "mobo", "evolution", "optuna-random", "optuna-tpe")


@dataclass(frozen=True)
class Settings:
    """What to run; ``--quick`` is 2 seeds x 30 trials over a subset of optimizers."""

    n_trials: int = 100
    seeds: int = 3
    problems: tuple[str, ...] = tuple(PROBLEMS)
    optimizers: tuple[str, ...] = ()  # empty: every tradeoff name and every Optuna sampler
    jobs: int = 1
    alias: bool = True
    run_timeout_s: float = 1800.0  # a run stops proposing after this
    max_rejected: int = 50  # tradeoff's own guard stops a search after 1,000


@dataclass
class Run:
    """One optimizer on one problem with one seed; ``error`` says why it is n/a."""

    problem: str
    optimizer: str
    seed: int
    hv_fraction: float | None = None
    s_per_proposal: float | None = None
    proposals: int = 0
    evaluations: int = 0
    feasible: int = 0
    wall_s: float = 0.0
    eval_s: float = 0.0
    error: str | None = None
    stopped: str | None = None
    alias: str | None = None


class Stuck(BaseException):
    """Ends a run whose optimizer only proposes Configs a known-cost constraint rejects (a
    ``BaseException``, so tradeoff's driver lets it through)."""


@dataclass
class Meter:
    """Time spent in ``evaluate``, its calls, and trials proposed since the last call."""

    seconds: float = 0.0
    calls: int = 0
    since_eval: int = 0
    max_rejected: int | None = None

    def timed(self, evaluate: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            self.calls, self.since_eval = self.calls + 1, 0
            start = time.perf_counter()
            try:
                return evaluate(*args)
            finally:
                self.seconds += time.perf_counter() - start

        return wrapper

    def proposed(self) -> None:
        """A new trial; raises :class:`Stuck` after ``max_rejected`` with no evaluation."""
        self.since_eval += 1
        if self.max_rejected is not None and self.since_eval > self.max_rejected:
            raise Stuck(f"{self.max_rejected} proposals in a row rejected unevaluated")


class WatchedStorage(optuna.storages.InMemoryStorage):
    """In-memory storage that tells a :class:`Meter` of every new trial."""

    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self.meter = meter

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        self.meter.proposed()
        return super().create_new_trial(study_id, template_trial)


# Running one contender ----------------------------------------------------------------------
def run_tradeoff(problem: Problem, name: str, seed: int, s: Settings) -> Run:
    """``tradeoff.optimize`` with optimizer ``name``, as a user runs it."""
    run = Run(problem.name, name, seed)
    if name not in OPTIMIZERS:
        return replace(run, error=f"not in tradeoff.search.OPTIMIZERS {list(OPTIMIZERS)}")
    objset = ObjectiveSet.build(problem.objectives, problem.constraints)
    try:
        make_sampler(name, space=problem.space, objectives=objset, n_trials=s.n_trials, seed=seed)
    except Exception as exc:
        return replace(run, error=f"does not build: {type(exc).__name__}: {exc}")
    meter, stopped = Meter(max_rejected=s.max_rejected), None
    storage = WatchedStorage(meter)  # ours: to stop a stuck run and still read it
    start = time.perf_counter()
    try:
        tradeoff.optimize(
            meter.timed(problem.evaluate),
            problem.space,
            objectives=list(problem.objectives),
            constraints=list(problem.constraints),
            optimizer=name,
            n_trials=s.n_trials,
            seed=seed,
            storage=storage,
            study_name="bench",
            timeout=s.run_timeout_s,
            show_progress=False,
        )
    except Stuck as exc:
        stopped = f"stopped: {exc}"
    wall = time.perf_counter() - start
    frame = tradeoff.SearchResult(optuna.load_study(study_name="bench", storage=storage)).trials
    done = frame[frame["status"] == "complete"]
    values = done[problem.names].to_numpy(float)
    return replace(_score(run, problem, values, len(frame), meter, wall), stopped=stopped)


def run_optuna(problem: Problem, name: str, seed: int, s: Settings) -> Run:
    """An Optuna sampler through ``study.optimize``, its native use."""
    run = Run(problem.name, name, seed)
    try:
        sampler = OPTUNA_SAMPLERS[name](seed)
    except Exception as exc:
        return replace(run, error=f"does not build: {type(exc).__name__}: {exc}")
    study = optuna.create_study(directions=problem.directions, sampler=sampler)
    distributions = problem.space.distributions()
    meter = Meter()
    values_of = meter.timed(problem.values)  # known costs too: microseconds here

    def objective(trial: optuna.Trial) -> list[float]:
        params = {n: suggest(trial, n, d) for n, d in distributions.items()}
        values: list[float] = values_of(problem.space.decode(params))
        for c, violation in zip(problem.constraints, problem.violations(values)):
            trial.set_constraint(c.label, violation)
        return values

    start = time.perf_counter()
    study.optimize(objective, n_trials=s.n_trials, timeout=s.run_timeout_s)
    wall = time.perf_counter() - start
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = np.array([t.values for t in done], dtype=float)
    return _score(run, problem, values, len(study.trials), meter, wall)


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*`` for one of the SearchSpace's distributions."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"no suggest_* for {dist!r}")


def _score(
    run: Run, problem: Problem, values: np.ndarray, proposals: int, meter: Meter, wall: float
) -> Run:
    """Fill in the score (HV fraction over the feasible rows of ``values``) and the costs."""
    feasible = sum(all(v <= 0 for v in problem.violations(row)) for row in values)
    return replace(
        run,
        hv_fraction=problem.hv_fraction(values.reshape(-1, len(problem.names))),
        s_per_proposal=(wall - meter.seconds) / max(proposals, 1),
        proposals=proposals,
        evaluations=meter.calls,
        feasible=int(feasible),
        wall_s=wall,
        eval_s=meter.seconds,
    )


@cache
def _problem(name: str) -> Problem:
    return make_problems([name])[0]


def run_job(problem: str, optimizer: str, seed: int, s: Settings) -> Run:
    """One run, by names (so it can run in a worker process); a crash is reported, not raised."""
    if optimizer in NOT_BY_DEFAULT and optimizer not in s.optimizers:
        return Run(problem, optimizer, seed, error=NOT_BY_DEFAULT[optimizer])
    runner = run_optuna if optimizer in OPTUNA_SAMPLERS else run_tradeoff
    try:
        run = runner(_problem(problem), optimizer, seed, s)
    except Exception as exc:
        return Run(problem, optimizer, seed, error=f"crashed: {type(exc).__name__}: {exc}")
    if run.error is None and run.stopped is None and run.evaluations < s.n_trials:
        run.stopped = f"stopped: {s.run_timeout_s:g} s timeout"
    return run


# The whole grid -----------------------------------------------------------------------------
def contenders(s: Settings, quick: bool) -> list[str]:
    """Requested names in order: tradeoff's (as listed at run time), then Optuna's."""
    if s.optimizers:
        return list(dict.fromkeys(s.optimizers))
    names = [*OPTIMIZERS, *OPTUNA_SAMPLERS]
    return [n for n in names if n in QUICK_OPTIMIZERS] if quick else names


def shared_runs(problem: Problem, names: Sequence[str], s: Settings) -> dict[str, str]:
    """Contender -> the contender whose runs it takes: same sampler class and settings and same
    seed make the same trials. ``auto`` may share with the preset it builds; a tradeoff preset
    with the Optuna sampler it is, on a problem without constraints (which the two engines
    handle differently). Optuna's run is kept, then the preset's."""
    if not s.alias:
        return {}
    prints = {n: fp for n in names if (fp := _fingerprint(problem, n, s)) is not None}
    shared: dict[str, str] = {}
    for n, fp in prints.items():
        peers = [m for m, q in prints.items() if q == fp and _may_share(n, m, problem)]
        keep = max([n, *peers], key=lambda m: (m in OPTUNA_SAMPLERS, m != "auto"))
        if keep != n:
            shared[n] = keep
    return shared


def _may_share(a: str, b: str, problem: Problem) -> bool:
    return a != b and (not problem.constraints or OPTUNA_SAMPLERS.keys().isdisjoint((a, b)))


def _fingerprint(problem: Problem, name: str, s: Settings) -> Any:
    """The sampler's class and settings (seed 0), or None if it does not build."""
    try:
        if name in OPTUNA_SAMPLERS:
            sampler = OPTUNA_SAMPLERS[name](0)
        else:
            objset = ObjectiveSet.build(problem.objectives, problem.constraints)
            sampler = make_sampler(
                name, space=problem.space, objectives=objset, n_trials=s.n_trials, seed=0
            )
    except Exception:
        return None
    return _settings(sampler, depth=2)


def _settings(obj: Any, *, depth: int) -> Any:
    """``obj``'s class and plain attributes, recursively (functions by name)."""
    plain = (bool, int, float, str, type(None))
    if isinstance(obj, plain):
        return obj
    if isinstance(obj, (tuple, list)):
        return tuple(_settings(v, depth=depth) for v in obj)
    attrs = vars(obj) if depth > 0 and hasattr(obj, "__dict__") else {}
    fields = sorted((k, _settings(v, depth=depth - 1)) for k, v in attrs.items())
    return (type(obj).__qualname__, getattr(obj, "__qualname__", None), *fields)


def run_all(s: Settings, quick: bool) -> tuple[list[Run], dict[str, dict[str, str]]]:
    """Every (problem, optimizer, seed); shared runs are copied from the contender run."""
    names = contenders(s, quick)
    runnable = [n for n in names if n not in NOT_BY_DEFAULT or n in s.optimizers]
    shared = {p: shared_runs(_problem(p), runnable, s) for p in s.problems}
    jobs = [
        (p, o, seed)
        for p in s.problems
        for o in names
        for seed in range(s.seeds)
        if o not in shared[p]
    ]
    jobs.sort(key=lambda job: SLOW_FIRST.index(job[1]) if job[1] in SLOW_FIRST else 99)
    runs = _execute(jobs, s)
    by_key = {(r.problem, r.optimizer, r.seed): r for r in runs}
    for p, pairs in shared.items():
        for o, keep in pairs.items():
            runs += [
                replace(by_key[(p, keep, seed)], optimizer=o, alias=keep) for seed in range(s.seeds)
            ]
    order = {n: i for i, n in enumerate(names)}
    runs.sort(key=lambda r: (s.problems.index(r.problem), order[r.optimizer], r.seed))
    return runs, {p: pairs for p, pairs in shared.items() if pairs}


def threads_per_job(s: Settings) -> int:
    return max(1, (os.cpu_count() or 1) // s.jobs)


def _execute(jobs: list[tuple[str, str, int]], s: Settings) -> list[Run]:
    if s.jobs == 1:
        return [_log(run_job(*job, s)) for job in jobs]
    threads = threads_per_job(s)
    ctx = get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(s.jobs, mp_context=ctx, initializer=_init, initargs=(threads,)) as ex:
        futures = [ex.submit(run_job, *job, s) for job in jobs]
        return [_log(f.result()) for f in futures]


def _init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    quiet()


def _log(run: Run) -> Run:
    what = run.error or f"HV {run.hv_fraction:.3f}, {run.s_per_proposal:.3f} s/proposal"
    print(f"  {run.problem:<13} {run.optimizer:<14} seed {run.seed}: {what}", file=sys.stderr)
    return run


# Report -------------------------------------------------------------------------------------
def median_table(runs: list[Run], key: str) -> dict[str, dict[str, float | None]]:
    """problem -> optimizer -> median of ``key`` over seeds (None if any seed is n/a)."""
    table: dict[str, dict[str, float | None]] = {}
    for r in runs:
        table.setdefault(r.problem, {}).setdefault(r.optimizer, None)
    for p, row in table.items():
        for o in row:
            cells = [getattr(r, key) for r in runs if (r.problem, r.optimizer) == (p, o)]
            row[o] = None if None in cells else statistics.median(cells)
    return table


def contender_wall(runs: list[Run]) -> dict[str, float]:
    """Seconds each contender's own runs took (runs it shares are not counted again)."""
    spent: dict[str, float] = {}
    for r in runs:
        spent[r.optimizer] = spent.get(r.optimizer, 0.0) + (0.0 if r.alias else r.wall_s)
    return spent


def format_grid(
    table: dict[str, dict[str, float | None]], spec: str, flagged: set[tuple[str, str]]
) -> str:
    """Rows = problems, columns = optimizers; ``n/a`` where a run could not be made, ``*``
    where a seed stopped early."""
    columns = list(next(iter(table.values())))
    cells = [["problem", *columns]]
    for p, row in table.items():
        cells.append(
            [p, *(_cell(row[c], spec) + ("*" if (p, c) in flagged else "") for c in columns)]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(ln, widths)))
        for ln in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def machine_info(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    import torch

    packages = ("optuna", "optuna-integration", "botorch", "torch", "numpy", "scikit-learn")
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        **cpu_info(),
        "python": sys.version.split()[0],
        "tradeoff": tradeoff.__version__,
        **{name: _version(name) for name in packages},
        # Other processes on the machine skew the timings: check these first.
        "load_avg_1_5_15_at_start": [round(x, 2) for x in load_at_start],
        "load_avg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_info() -> dict[str, Any]:
    """The CPU's model and the vector instruction sets that change torch's and numpy's float
    rounding (``avx2``, ``avx512f``, ...): a GP search's path after a few dozen proposals
    differs between CPUs that differ in these, so scores reproduce exactly only on the same
    kind of CPU. Empty where ``/proc/cpuinfo`` is missing."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():  # the first processor's block
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")
    return {
        "cpu_model": fields.get("model name") or None,
        "cpu_vector_isa": [f for f in wanted if f in flags],
    }


def source_info() -> dict[str, Any]:
    """The tradeoff commit (and whether the checkout differs from it) and a hash of each
    optimizer source file, at the start."""
    root = Path(tradeoff.__file__).resolve().parent
    files = sorted((root / "search").glob("*.py"))
    digests = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:12] for f in files}
    return {**commit_info(), "tradeoff_search_sha256": digests}


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None


def print_report(report: dict[str, Any]) -> None:
    m, st = report["machine"], report["settings"]
    threads = st["torch_threads_per_job"] or m["torch_threads"]
    print(
        f"\n{m['cpu_count']} CPUs, torch threads {threads}, Optuna {m['optuna']}, "
        f"BoTorch {m['botorch']}; load avg {m['load_avg_1_5_15_at_start']} -> "
        f"{m['load_avg_1_5_15_at_end']}; {st['n_trials']} trials x {st['seeds']} seeds, "
        f"{st['jobs']} job(s)"
    )
    stopped = {(r["problem"], r["optimizer"]): r["stopped"] for r in report["runs"] if r["stopped"]}
    print("\n1. Median hypervolume, fraction of the true front's")
    print(format_grid(report["hv_fraction"], ".3f", set(stopped)))
    print("\n2. Median seconds per proposal (sampler + engine, evaluation excluded)")
    print(format_grid(report["s_per_proposal"], ".3f", set(stopped)))
    print("\n".join(f"* {p}, {o}: a seed {why}" for (p, o), why in stopped.items()))
    print(footnotes(report))


def footnotes(report: dict[str, Any]) -> str:
    """Shared runs, time per contender, and why cells are n/a."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for p, shared in report["shared_runs"].items():
        for o, keep in shared.items():
            pairs.setdefault((o, keep), []).append(p)
    lines = [f"{o} = {keep} (runs shared) on {', '.join(ps)}" for (o, keep), ps in pairs.items()]
    spent = {o: round(t) for o, t in report["contender_wall_s"].items()}
    lines.append(f"wall seconds per contender, its own runs: {spent}")
    na = {(r["optimizer"], r["error"]) for r in report["runs"] if r["error"]}
    return "\n".join(["", *lines, *(f"n/a {o}: {e}" for o, e in sorted(na)), ""])


# Main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 30 trials, a subset")
    parser.add_argument(
        "--problems", type=comma_names, help=f"comma-separated, of {list(PROBLEMS)}"
    )
    parser.add_argument("--optimizers", type=comma_names, help="comma-separated optimizer names")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 3, quick 2)")
    parser.add_argument("--n-trials", type=int, help="budget per run (default 100, quick 30)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument("--no-alias", action="store_true", help="run every contender itself")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    return parser.parse_args(argv)


def comma_names(text: str) -> tuple[str, ...]:
    """``"a, b,"`` -> ``("a", "b")``: an argparse type for comma-separated names."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def recorded(
    args: argparse.Namespace,
    compute: Callable[[], Any],
    *,
    packages: Sequence[str] = (),
    key: str = "result",
) -> dict[str, Any]:
    """``compute()``'s result under ``key`` in a report saying how it was made: the command,
    the start time, the machine (load, commit, and the versions of ``packages`` beside
    :func:`machine_info`'s), the parsed ``args`` and the wall time."""
    load, timestamp, start = os.getloadavg(), datetime.now(timezone.utc), time.perf_counter()
    source = commit_info()
    result = compute()
    return {
        "command": command_line(),
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **source, **{p: _version(p) for p in packages}},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        key: result,
        "benchmark_wall_s": time.perf_counter() - start,
    }


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write ``report`` as indented JSON to ``out``, creating its directory."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def settings_from(args: argparse.Namespace) -> Settings:
    base = Settings(n_trials=30, seeds=2) if args.quick else Settings()
    s = replace(
        base,
        n_trials=args.n_trials or base.n_trials,
        seeds=args.seeds or base.seeds,
        problems=args.problems or base.problems,
        optimizers=args.optimizers or base.optimizers,
        jobs=args.jobs,
        alias=not args.no_alias,
    )
    unknown = [p for p in s.problems if p not in PROBLEMS]
    if unknown or s.n_trials < 1 or s.seeds < 1 or s.jobs < 1:
        raise SystemExit(f"bad settings: unknown problems {unknown} or a count < 1 ({s})")
    return s


def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", module=r"botorch\.")  # e.g. random initial conditions
    logging.getLogger("tradeoff").setLevel(logging.ERROR)  # infeasible/failed trials are counted


def run(s: Settings, quick: bool) -> dict[str, Any]:
    load, timestamp, sources = os.getloadavg(), datetime.now(timezone.utc), source_info()
    problems = {p: _problem(p).to_dict() for p in s.problems}  # builds the digits table
    runs, shared = run_all(s, quick)
    return {
        "command": command_line(),
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **sources},
        "settings": {
            **asdict(s),
            "quick": quick,
            "tradeoff_optimizers": list(OPTIMIZERS),
            "torch_threads_per_job": threads_per_job(s) if s.jobs > 1 else None,
        },
        "problems": problems,
        "shared_runs": shared,
        "hv_fraction": median_table(runs, "hv_fraction"),
        "s_per_proposal": median_table(runs, "s_per_proposal"),
        "contender_wall_s": contender_wall(runs),
        "runs": [asdict(r) for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    quiet()
    start = time.perf_counter()
    report = run(settings, args.quick)
    report["benchmark_wall_s"] = time.perf_counter() - start
    print_report(report)
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
