"""Optimizers under multi-fidelity: which sampler makes the best of a budget ladder.

Each problem of ``problems.py`` named in ``--problems`` becomes a multi-fidelity problem:
``evaluate(config, budget)`` returns the measured objectives with relative Gaussian noise of
``--noise / budget`` (seeded by the Config and the budget, so every contender sees the same
values for the same Config), like a model trained for more steps or scored on more tokens;
known-cost objectives stay exact. Every contender runs ``tradeoff.optimize`` with
``fidelity=Fidelity((1, 3, 9), eta=3)`` and ``--n-trials`` Configs (about a ninth of which
reach the top rung), one trial at a time, in memory, seeds 0..N-1.

Score: the hypervolume of the Configs that completed at the top rung, on their *noise-free*
values (what a user deploying them gets), as a fraction of the true front's. Contenders:
tradeoff's optimizer names (``auto`` resolves as ``optimize`` resolves it).

Usage:
    python benchmarks/multi_fidelity.py [--problems bits8,bits8-budget,digits]
        [--optimizers evolution,mobo,tpe,random] [--n-trials 90] [--seeds 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optimizers import comma_names, machine_info, quiet, source_info, write_report
from problems import PROBLEMS, Problem, make_problems
from provenance import command_line

import tradeoff
from tradeoff.search import Fidelity

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "multi_fidelity.json"
DEFAULT_PROBLEMS = ("bits8", "bits8-budget", "digits")
DEFAULT_OPTIMIZERS = ("auto", "evolution", "mobo", "tpe", "random")
LADDER = Fidelity((1, 3, 9), eta=3, name="budget")


def noisy(problem: Problem, noise: float) -> Callable[[Mapping[str, Any], float], dict[str, float]]:
    """``evaluate(config, budget)``: the problem's measured values with relative noise
    ``noise / budget``, the same for the same Config and budget in every run."""
    measured = {o.name for o in problem.objectives if o.fn is None}

    def evaluate(config: Mapping[str, Any], budget: float) -> dict[str, float]:
        key = repr(sorted((k, repr(v)) for k, v in config.items())).encode()
        rng = np.random.default_rng([zlib.crc32(key), int(budget)])
        out = dict(problem.evaluate(config))
        for name in measured:
            out[name] += noise / budget * abs(out[name]) * rng.normal()
        return out

    return evaluate


def true_fraction(problem: Problem, study: optuna.Study) -> float:
    """Hypervolume fraction of the completed (top-rung) trials, on noise-free values."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        config = problem.space.decode(t.params)
        out = problem.evaluate(config)
        rows.append([out[o.name] if o.fn is None else o.fn(config) for o in problem.objectives])
    return problem.hv_fraction(np.array(rows, dtype=float)) if rows else 0.0


def run_one(
    problem: Problem, optimizer: str, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    start = time.perf_counter()
    result = tradeoff.optimize(
        noisy(problem, args.noise), problem.space,
        objectives=list(problem.objectives), constraints=list(problem.constraints),
        optimizer=optimizer, n_trials=args.n_trials, fidelity=LADDER, seed=seed,
        show_progress=False,
    )  # fmt: skip
    trials = result.trials
    return {
        "problem": problem.name,
        "optimizer": optimizer,
        "sampler": type(result.study.sampler).__name__,
        "seed": seed,
        "hv_fraction": true_fraction(problem, result.study),
        "evaluations_by_rung": {str(k): int(v) for k, v in trials.groupby("rung").size().items()},
        "wall_s": time.perf_counter() - start,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    problems = make_problems(args.problems)
    load, start = os.getloadavg(), time.perf_counter()
    runs = []
    for problem in problems:
        for optimizer in args.optimizers:
            for seed in range(args.seeds):
                runs.append(run_one(problem, optimizer, seed, args))
                r = runs[-1]
                print(f"  {problem.name:13s} {optimizer:10s} seed {seed}: "
                      f"HV {r['hv_fraction']:.3f} ({r['sampler']}, {r['wall_s']:.0f} s)",
                      flush=True)  # fmt: skip
    median = {
        p.name: {
            o: statistics.median(
                r["hv_fraction"] for r in runs if r["problem"] == p.name and r["optimizer"] == o
            )
            for o in args.optimizers
        }
        for p in problems
    }
    return {
        "command": command_line(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **source_info()},
        "settings": {
            "problems": list(args.problems),
            "optimizers": list(args.optimizers),
            "n_trials": args.n_trials,
            "seeds": args.seeds,
            "noise": args.noise,
            "ladder": list(LADDER.budgets),
            "eta": LADDER.eta,
        },
        "median_hv_fraction": median,
        "runs": runs,
        "benchmark_wall_s": time.perf_counter() - start,
    }


def print_report(report: dict[str, Any]) -> None:
    names = report["settings"]["optimizers"]
    print("\nMedian hypervolume of the top-rung Configs (noise-free), fraction of the true front's")
    print(f"{'problem':14s}" + "".join(f"{n:>11s}" for n in names))
    for problem, row in report["median_hv_fraction"].items():
        best = max(row.values())
        cells = [f"{v:.3f}{'*' if v == best else ' '}" for v in row.values()]
        print(f"{problem:14s}" + "".join(f"{c:>11s}" for c in cells))
    print(f"(* best; {report['benchmark_wall_s']:.0f} s)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--problems", type=comma_names, default=DEFAULT_PROBLEMS,
                        help=f"comma-separated, of {list(PROBLEMS)}")  # fmt: skip
    parser.add_argument("--optimizers", type=comma_names, default=DEFAULT_OPTIMIZERS)
    parser.add_argument("--n-trials", type=int, default=90, help="Configs per search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.3, help="relative noise at budget 1")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    unknown = [p for p in args.problems if p not in PROBLEMS]
    if unknown or args.n_trials < 1 or args.seeds < 1 or args.noise < 0:
        parser.error(f"unknown problems {unknown}, or a count < 1, or noise < 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    report = run(args)
    print_report(report)
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
