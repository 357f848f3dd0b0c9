"""``auto`` against Optuna's samplers on public suites nobody here wrote (issue #17).

The problems are paretobench's WFG/DTLZ/CF and COCO's ``bbob-biobj-mixint``, built from the
installed packages as they ship (``suite_problems.py`` says which, with which parameters, and
how each is scored). Contenders, each on every problem with the same budget, one trial at a
time, in-memory storage, seeds 0..N-1:

* ``auto`` (and any other name in ``tradeoff.search.OPTIMIZERS``) through
  ``tradeoff.optimize``, as users run it; constraints as ``Constraint(g, "<=", 0)`` on
  returned metrics;
* Optuna's ``GPSampler``, ``TPESampler(multivariate=True)``, ``TPESampler()`` (default
  settings), ``NSGAIISampler`` and ``RandomSampler``, natively through ``study.optimize``,
  constraints through ``trial.set_constraint`` (the anchors of ``optimizers.py``, plus default
  TPE);
* ``ax``: Ax's ``Client`` (``ax-platform``, the ``bench`` extra) with its default generation
  strategy, objectives ``-f1, -f2, ...`` and constraints ``g <= 0``, one trial at a time. It is
  slow (seconds to a minute per proposal): run it apart, one seed per call, into its own
  ``--out``; cells already there are kept.

Score (higher is better): paretobench, the hypervolume of the feasible evaluations as a
fraction of the true front's; COCO, ``1 -`` COCO's own hypervolume indicator (its logger's).
Reported: median and interquartile range over seeds (numpy's linear percentiles), and seconds
per proposal = (run wall time - time in ``evaluate``) / proposals.

Resumable and time-boxed: one (problem, optimizer, seed, budget) is one cell; each finished
cell is merged into ``--out`` at once, cells already there are skipped, and no new cell starts
after ``--max-minutes``. Cells run problem by problem, seed by seed, so what finishes is whole
seeds of whole problems.

Usage:
    python benchmarks/suites.py [--problems wfg4-m2,cf2] [--optimizers auto,optuna-gp]
        [--seeds 3] [--n-trials 100] [--max-minutes 60] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from datetime import datetime, timezone
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optimizers import (
    OPTUNA_SAMPLERS,
    Meter,
    WatchedStorage,
    comma_names,
    machine_info,
    quiet,
    source_info,
    suggest,
)
from provenance import command_line
from suite_problems import CORE, SUITE, SuiteProblem, make_problem

import tradeoff
from tradeoff.search import OPTIMIZERS

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "suites.json"
PACKAGES = ("paretobench", "coco-experiment", "scipy", "ax-platform", "botorch", "torch")

S = optuna.samplers
ANCHORS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "optuna-gp": OPTUNA_SAMPLERS["optuna-gp"],
    "optuna-tpe": OPTUNA_SAMPLERS["optuna-tpe"],  # multivariate=True
    "optuna-tpe-default": lambda seed: S.TPESampler(seed=seed),
    "optuna-nsga2": OPTUNA_SAMPLERS["optuna-nsga2"],
    "optuna-random": OPTUNA_SAMPLERS["optuna-random"],
}
AX = "ax"
# mobo as "auto" builds it for these problems (make_sampler's "mobo" preset) with winsorize=True.
MOBO_WINSOR = "mobo-winsor"
DEFAULT_OPTIMIZERS = ("auto", *ANCHORS)


# One cell -----------------------------------------------------------------------------------
def run_cell(
    problem: SuiteProblem, optimizer: str, seed: int, n_trials: int, timeout: float
) -> dict[str, Any]:
    """One optimizer on one problem with one seed: its score, proposals and timings."""
    cell, meter, extra = problem.open(), Meter(), {}
    evaluate = meter.timed(cell.evaluate)
    start = time.perf_counter()
    try:
        if optimizer in ANCHORS:
            proposals = _run_optuna(problem, ANCHORS[optimizer](seed), evaluate, n_trials, timeout)
        elif optimizer == AX:
            proposals, seconds = _run_ax(problem, seed, evaluate, n_trials, timeout)
            extra["proposal_s"] = seconds
        else:
            proposals, extra["picked"] = _run_tradeoff(
                problem, optimizer, seed, evaluate, meter, n_trials, timeout
            )
        wall = time.perf_counter() - start
        score = cell.score()
    finally:
        cell.close()
    return {
        **score,
        "s_per_proposal": (wall - meter.seconds) / max(proposals, 1),
        "proposals": proposals,
        "evaluations": meter.calls,
        "wall_s": wall,
        "eval_s": meter.seconds,
        **extra,
    }


def _run_tradeoff(
    problem: SuiteProblem,
    name: str,
    seed: int,
    evaluate: Callable[..., Any],
    meter: Meter,
    n_trials: int,
    timeout: float,
) -> tuple[int, str]:
    """Trials run, and the optimizer ``"auto"`` picked (the study records it) or ``name``."""
    optimizer: str | optuna.samplers.BaseSampler = name
    if name == MOBO_WINSOR:
        optimizer = winsor_sampler(problem, seed, n_trials)
    elif name not in OPTIMIZERS:
        raise ValueError(f"{name!r} is not in tradeoff.search.OPTIMIZERS {list(OPTIMIZERS)}")
    storage = WatchedStorage(meter)
    tradeoff.optimize(
        evaluate,
        problem.space,
        objectives=problem.objectives,
        constraints=problem.constraints,
        metrics=problem.constraint_names,
        optimizer=optimizer,
        n_trials=n_trials,
        seed=seed,
        storage=storage,
        study_name="bench",
        timeout=timeout,
        show_progress=False,
    )
    study = optuna.load_study(study_name="bench", storage=storage)
    return len(study.trials), str(study.user_attrs.get("tradeoff.optimizer", name))


def winsor_sampler(problem: SuiteProblem, seed: int, n_trials: int) -> Any:
    """``make_sampler``'s ``"mobo"`` preset for ``problem`` (what ``"auto"`` picks on every
    suite problem), with ``winsorize=True``, seeded as ``optimize`` seeds a named optimizer
    in a new study (its ``seed`` mixed with the study's trial count, 0), so the cells are
    paired with ``auto``'s: with ``winsorize=False`` they reproduce them exactly."""
    from tradeoff._optimize import _mix_seed
    from tradeoff.objectives import ObjectiveSet
    from tradeoff.search import MOBOSampler

    return MOBOSampler(
        seed=_mix_seed(seed, 0),
        space=problem.space,
        objectives=ObjectiveSet.build(
            problem.objectives, problem.constraints, problem.constraint_names
        ),
        n_startup_trials=max(5, min(10, n_trials // 10)),  # the preset's
        winsorize=True,
    )


def _run_optuna(
    problem: SuiteProblem,
    sampler: optuna.samplers.BaseSampler,
    evaluate: Callable[..., Any],
    n_trials: int,
    timeout: float,
) -> int:
    study = optuna.create_study(directions=["minimize"] * problem.n_objectives, sampler=sampler)
    distributions = problem.space.distributions()

    def objective(trial: optuna.Trial) -> list[float]:
        params = {n: suggest(trial, n, d) for n, d in distributions.items()}
        values = evaluate(problem.space.decode(params))
        for c in problem.constraints:
            trial.set_constraint(c.label, c.violation(values[c.name]))
        return [values[n] for n in problem.objective_names]

    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return len(study.trials)


def _ax_client(problem: SuiteProblem, seed: int) -> Any:
    """Ax's ``Client`` on ``problem``: its parameters, minimized objectives and constraints;
    the default generation strategy (none configured)."""
    from ax.api.client import Client
    from ax.api.configs import RangeParameterConfig

    from tradeoff.spaces import Float, Int

    parameters = []
    for name, p in problem.space.items():
        if not isinstance(p, (Float, Int)):
            raise TypeError(f"ax: parameter {name!r} is neither Float nor Int")
        kind: Any = "int" if isinstance(p, Int) else "float"
        bounds = (float(p.low), float(p.high))
        parameters.append(RangeParameterConfig(name=name, parameter_type=kind, bounds=bounds))
    client = Client(random_seed=seed)
    client.configure_experiment(parameters=parameters, name="bench")
    client.configure_optimization(
        objective=", ".join(f"-{n}" for n in problem.objective_names),
        outcome_constraints=[f"{n} <= 0" for n in problem.constraint_names] or None,
    )
    return client


def _run_ax(
    problem: SuiteProblem,
    seed: int,
    evaluate: Callable[..., Any],
    n_trials: int,
    timeout: float,
) -> tuple[int, list[float]]:
    """Ax's default generation strategy, one trial at a time: proposals and each one's
    seconds."""
    client, start, seconds = _ax_client(problem, seed), time.perf_counter(), []
    while len(seconds) < n_trials and time.perf_counter() - start < timeout:
        t = time.perf_counter()
        trials = client.get_next_trials(max_trials=1)
        seconds.append(time.perf_counter() - t)
        for index, params in trials.items():
            values = evaluate(problem.space.decode(dict(params)))
            client.complete_trial(trial_index=index, raw_data={k: float(values[k]) for k in values})
    return len(seconds), seconds


def ax_proposal_seconds(
    problem: SuiteProblem, n_observed: int, seed: int = 0, proposals: int = 3
) -> list[float]:
    """Seconds of each of ``proposals`` Ax proposals (each evaluated before the next) after
    ``n_observed`` random evaluations attached. The first is often Ax's center point (its
    default strategy proposes the center once, in milliseconds): read the later ones."""
    from tradeoff.spaces import Int

    client, cell = _ax_client(problem, seed), problem.open()
    rng = np.random.default_rng(seed)
    try:
        for _ in range(n_observed):
            params: dict[str, Any] = {}
            for name, p in problem.space.items():
                u = float(rng.uniform(p.low, p.high))  # type: ignore[attr-defined]
                params[name] = round(u) if isinstance(p, Int) else u
            index = client.attach_trial(parameters=params)
            values = cell.evaluate(problem.space.decode(params))
            client.complete_trial(trial_index=index, raw_data={k: float(values[k]) for k in values})
        seconds = []
        for _ in range(proposals):
            start = time.perf_counter()
            trials = client.get_next_trials(max_trials=1)
            seconds.append(time.perf_counter() - start)
            for index, params in trials.items():
                values = cell.evaluate(problem.space.decode(dict(params)))
                raw = {k: float(values[k]) for k in values}
                client.complete_trial(trial_index=index, raw_data=raw)
        return seconds
    finally:
        cell.close()


# The grid, resumable ------------------------------------------------------------------------
Key = tuple[str, str, int, int]


def key_of(run: dict[str, Any]) -> Key:
    return (run["problem"], run["optimizer"], run["seed"], run["n_trials"])


def cells(problems: Iterable[str], optimizers: Iterable[str], seeds: int, n: int) -> list[Key]:
    """Problem by problem, seed by seed, every optimizer."""
    return [(p, o, s, n) for p in problems for s in range(seeds) for o in optimizers]


def load(out: Path) -> dict[str, Any]:
    return json.loads(out.read_text()) if out.exists() else {"runs": [], "sessions": []}


def save(report: dict[str, Any], out: Path) -> None:
    """Write atomically: an interrupted run leaves the last complete file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)


def run_grid(args: argparse.Namespace, report: dict[str, Any], session: dict[str, Any]) -> None:
    """Run every missing cell until done or ``--max-minutes``, ``--jobs`` at a time in worker
    processes; this process alone writes ``--out``, after each cell."""
    done = {key_of(r) for r in report["runs"] if r.get("error") is None or not args.retry_errors}
    report["runs"] = [r for r in report["runs"] if key_of(r) in done]
    grid = cells(args.problems, args.optimizers, args.seeds, args.n_trials)
    todo = [c for c in grid if c not in done]
    deadline = time.monotonic() + 60.0 * args.max_minutes
    session["cells_left"] = len(todo)
    with _executor(args.jobs, args.threads) as ex:
        running: set[Future[tuple[dict[str, Any], dict[str, Any] | None]]] = set()
        while todo or running:
            while todo and len(running) < args.jobs and time.monotonic() <= deadline:
                running.add(ex.submit(run_job, todo.pop(0), args.run_timeout))
            if todo and not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                run, problem = future.result()
                if problem is not None:
                    report.setdefault("problems", {})[run["problem"]] = problem
                report["runs"].append(run)
                session.update(cells_run=session["cells_run"] + 1, cells_left=len(todo))
                save(summarize(report, args), args.out)
    if todo:
        session["stopped"] = f"--max-minutes {args.max_minutes:g}: {len(todo)} cells left"


class _Inline:
    """``--jobs 1``: each cell in this process, when submitted (no worker to start)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future


def _executor(jobs: int, threads: int) -> ProcessPoolExecutor | _Inline:
    if jobs == 1:
        return _Inline()  # main() set the threads and quieted the loggers
    ctx = get_context("spawn")  # torch and fork do not mix
    return ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(threads,))


def _init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    quiet()


@cache
def _problem(name: str) -> SuiteProblem | str:
    try:
        return make_problem(name)
    except Exception as exc:
        return f"problem does not build: {type(exc).__name__}: {exc}"


def run_job(key: Key, run_timeout: float) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One cell, in a worker process: the run, and its problem's description (None if it
    does not build); a crash is recorded, not raised."""
    p, o, seed, n = key
    run: dict[str, Any] = {"problem": p, "optimizer": o, "seed": seed, "n_trials": n}
    problem = _problem(p)
    if isinstance(problem, str):
        return {**run, "error": problem}, None
    try:
        run.update(run_cell(problem, o, seed, n, run_timeout))
    except Exception as exc:
        run["error"] = f"crashed: {type(exc).__name__}: {exc}"
    run.update(commit=source_info()["tradeoff_commit"], load_1min=round(os.getloadavg()[0], 2))
    print(f"  {p:<16} {o:<19} seed {seed}: {_line(run)}", file=sys.stderr, flush=True)
    return run, problem.to_dict()


def _line(run: dict[str, Any]) -> str:
    if run.get("error"):
        return str(run["error"])
    return (
        f"score {run['score']:.3f}, {run['s_per_proposal']:.3f} s/proposal, {run['wall_s']:.0f} s"
    )


# Report -------------------------------------------------------------------------------------
def summarize(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``report`` with its tables recomputed from every run at this budget."""
    runs = [r for r in report["runs"] if r["n_trials"] == args.n_trials and not r.get("error")]
    score: dict[str, dict[str, Any]] = {}
    speed: dict[str, dict[str, float]] = {}
    order = [*args.problems, *args.optimizers]  # rows and columns in the order asked
    rank = {name: i for i, name in enumerate(order)}
    runs.sort(key=lambda r: (rank.get(r["problem"], len(order)), rank.get(r["optimizer"], 0)))
    for p in dict.fromkeys(r["problem"] for r in runs):
        for o in dict.fromkeys(r["optimizer"] for r in runs if r["problem"] == p):
            mine = [r for r in runs if (r["problem"], r["optimizer"]) == (p, o)]
            values = [r["score"] for r in mine]
            q25, med, q75 = (float(v) for v in np.percentile(values, [25, 50, 75]))
            seeds = sorted(r["seed"] for r in mine)
            score.setdefault(p, {})[o] = {"median": med, "q25": q25, "q75": q75, "seeds": seeds}
            speed.setdefault(p, {})[o] = statistics.median(r["s_per_proposal"] for r in mine)
    report.update(**provenance(report))
    picks: dict[str, list[str]] = {}
    for r in runs:
        if r["optimizer"] == "auto" and "picked" in r:
            picks.setdefault(r["problem"], [])
            picks[r["problem"]] = sorted({*picks[r["problem"]], r["picked"]})
    report.update(score=score, s_per_proposal=speed, auto_vs_best_anchor=versus(score, args.seeds))
    report["auto_picks"] = picks  # what "auto" resolved to per problem (one name when stable)
    return report


def versus(score: dict[str, dict[str, Any]], seeds: int) -> dict[str, dict[str, Any]]:
    """Per problem with auto and every anchor at ``seeds`` seeds: auto's median minus the
    best anchor's (negative: auto loses). Other contenders (earlier versions of auto, kept
    beside it) may have fewer seeds."""
    table = {}
    for p, row in score.items():
        anchors = {o: v["median"] for o, v in row.items() if o in ANCHORS}
        compared = [v for o, v in row.items() if o == "auto" or o in ANCHORS]
        if "auto" not in row or not anchors or any(len(v["seeds"]) < seeds for v in compared):
            continue
        best = max(anchors, key=lambda o: anchors[o])
        auto = row["auto"]["median"]
        table[p] = {
            "auto": auto,
            "best_anchor": best,
            "best": anchors[best],
            "diff": auto - anchors[best],
        }
    return table


def print_tables(report: dict[str, Any]) -> None:
    optimizers = list(dict.fromkeys(o for row in report["score"].values() for o in row))
    print("\nMedian score [IQR] over seeds (higher is better); seconds per proposal")
    print(f"{'problem':<16} " + " ".join(f"{o:>22}" for o in optimizers))
    for p, row in report["score"].items():
        cells_ = [
            f"{row[o]['median']:.3f} [{row[o]['q25']:.2f},{row[o]['q75']:.2f}]" if o in row else "-"
            for o in optimizers
        ]
        print(f"{p:<16} " + " ".join(f"{c:>22}" for c in cells_))
        speed = [f"{report['s_per_proposal'][p].get(o, float('nan')):.3f} s" for o in optimizers]
        print(f"{'':<16} " + " ".join(f"{c:>22}" for c in speed))
    for p, v in report["auto_vs_best_anchor"].items():
        verdict = "wins" if v["diff"] >= 0 else "LOSES"
        print(f"{p:<16} auto {verdict} by {v['diff']:+.3f} against {v['best_anchor']}")


# Main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=comma_names, default=CORE, help=f"of {list(SUITE)}")
    parser.add_argument("--all", action="store_true", help="every problem of the suite")
    parser.add_argument("--optimizers", type=comma_names, default=DEFAULT_OPTIMIZERS)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--n-trials", type=int, default=100, help="budget per run")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="no new cell after")
    parser.add_argument("--run-timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--jobs", type=int, default=1, help="cells at a time, in processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--retry-errors", action="store_true", help="rerun cells that failed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument(
        "--ax-seconds",
        type=comma_names,
        default=(),
        help="instead of the grid: seconds of 3 Ax proposals after N random evaluations, "
        "e.g. 50,200, per problem (stored under ax_proposal_s)",
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    if args.all:
        args.problems = tuple(SUITE)
    unknown = [p for p in args.problems if p not in SUITE]
    bad = [o for o in args.optimizers if o not in (*ANCHORS, AX, MOBO_WINSOR, *OPTIMIZERS)]
    if unknown or bad or min(args.seeds, args.n_trials, args.jobs, args.threads) < 1:
        parser.error(f"unknown problems {unknown} or optimizers {bad}, or a count < 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    quiet()
    report, load_avg, start = load(args.out), os.getloadavg(), time.perf_counter()
    session: dict[str, Any] = {
        "command": command_line(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **source_info(),
        "machine": {**machine_info(load_avg), **{p: _version(p) for p in PACKAGES}},
        "cells_run": 0,
    }
    report["sessions"] = [*report.get("sessions", []), session]
    report["settings"] = {
        "n_trials": args.n_trials,
        "seeds": args.seeds,
        "problems": list(args.problems),
        "optimizers": list(args.optimizers),
        "run_timeout_s": args.run_timeout,
        "jobs": args.jobs,
        "torch_threads_per_job": args.threads,
        "tradeoff_optimizers": list(OPTIMIZERS),
    }
    try:
        if args.ax_seconds:
            time_ax(args, report, session)
        else:
            run_grid(args, report, session)
    finally:
        session["wall_s"] = time.perf_counter() - start
        session["machine"]["load_avg_1_5_15_at_end"] = [round(x, 2) for x in os.getloadavg()]
        save(summarize(report, args), args.out)
    print_tables(report)
    print(f"wrote {args.out} ({session['cells_run']} cells, {session['wall_s']:.0f} s)")
    return 0


def time_ax(args: argparse.Namespace, report: dict[str, Any], session: dict[str, Any]) -> None:
    """``--ax-seconds``: timed Ax proposals per problem and observation count."""
    table = report.setdefault("ax_proposal_s", {})
    for p in args.problems:
        for n in args.ax_seconds:
            seconds = ax_proposal_seconds(make_problem(p), int(n))
            table.setdefault(p, {})[n] = {"seconds": seconds, "load_1min": os.getloadavg()[0]}
            session["cells_run"] += 1
            shown = ", ".join(f"{s:.1f}" for s in seconds)
            print(f"  {p:<16} ax after {n} observations: {shown} s", file=sys.stderr)


def provenance(report: dict[str, Any]) -> dict[str, Any]:
    """The top-level command, timestamp and machine: the last session that ran cells (every
    session is kept under ``sessions``, every cell records its commit and load)."""
    sessions = report["sessions"]
    last = next((s for s in reversed(sessions) if s.get("cells_run")), sessions[-1])
    machine = {
        **last.get("machine", sessions[-1].get("machine", {})),
        "tradeoff_commit": last["tradeoff_commit"],
        "tradeoff_dirty": last["tradeoff_dirty"],
    }
    return {
        "command": last["command"],
        "timestamp": last["timestamp"],
        "machine": machine,
        "benchmark_wall_s": sum(s.get("wall_s", 0.0) for s in sessions),
        "cells_wall_s": sum(r.get("wall_s", 0.0) for r in report["runs"]),
    }


def _version(package: str) -> str | None:
    from importlib.metadata import version

    try:
        return version(package)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
