"""Proposal speed: seconds per proposal with 200 observations, mobo against Optuna's GPSampler.

For each problem of ``problems.py`` named in ``--problems`` (default ZDT1, DTLZ2, bits8 and
digits), a study is filled with ``--n-obs`` completed trials from a seeded sampler (random,
or NSGA-II with ``--fill nsga2``: a history with larger Pareto sets, as after a long search,
or ``--fill front``: random points, 70% of them moved next to the known Pareto set of ZDT1/2
or DTLZ2, a dense observed front like mobo's own history there);
each contender then gets its own copy of that study (in-memory storage), with
``--workers - 1`` extra trials left RUNNING (the pending points the driver's other workers
would have), and makes ``--proposals`` proposals in a row: each is timed as
``study.ask(distributions)`` (which calls the sampler), then told its true values, so the
proposals see 200, 201, ... observations. A warm-up on a tiny study first, so that no timed
proposal pays for a lazy import.

``--in-a-row K`` asks in groups of ``K``: each ask of a group is left RUNNING (a pending point
of the next), then the group is told, as when ``K`` workers free up at once and the driver asks
for ``K`` trials before any completes. ``--proposals`` then counts groups; the report adds each
group's total seconds.

Contenders: ``mobo`` (and any other name of ``tradeoff.search.OPTIMIZERS``) built by
``make_sampler`` as ``tradeoff.optimize`` builds it, and Optuna's ``GPSampler`` (``optuna-gp``)
with its defaults. Both run in the same process, one after the other, problem by problem, so
both see the same machine load; the load average is recorded at the start and the end. Wall
and CPU seconds of this process are both recorded: other processes inflate the first, and
a sampler using several threads (Optuna's GP does) shows CPU above wall.

Usage:
    python benchmarks/proposal_speed.py [--problems zdt1,dtlz2,bits8,digits]
        [--samplers mobo,optuna-gp] [--n-obs 200] [--proposals 5] [--workers 2]
        [--fill random|nsga2|front] [--in-a-row 1] [--seed 0] [--out PATH] [--before CLONE]

``--n-obs 50,200`` times each count in turn. ``--before CLONE`` first runs the same command
in a child process that imports ``tradeoff`` from ``CLONE`` (a clean clone of an earlier
commit), and embeds its report under ``"before"``: before and after back to back, on the same
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optimizers import comma_names, machine_info, quiet, source_info, write_report
from optuna.trial import TrialState, create_trial
from problems import PROBLEMS, Problem, make_problems
from provenance import command_line

from tradeoff.objectives import ObjectiveSet
from tradeoff.search import OPTIMIZERS, make_sampler

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "proposal_speed.json"
DEFAULT_PROBLEMS = ("zdt1", "dtlz2", "bits8", "digits")
DEFAULT_SAMPLERS = ("mobo", "optuna-gp")
TARGET_S = 1.0  # mobo, median seconds per proposal at 200 observations
BUDGET = 300  # n_trials given to make_sampler (sizes startup trials only)


@dataclass
class Timing:
    """One contender on one problem: seconds of each proposal, in order."""

    problem: str
    sampler: str
    n_obs: int
    pending: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def max_s(self) -> float | None:
        return max(self.seconds) if self.seconds else None


def build_sampler(name: str, problem: Problem, seed: int) -> optuna.samplers.BaseSampler:
    """``optuna-gp`` -> Optuna's GPSampler; a tradeoff name -> ``make_sampler``'s sampler."""
    if name == "optuna-gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name not in OPTIMIZERS:
        raise SystemExit(f"unknown sampler {name!r}; use optuna-gp or one of {list(OPTIMIZERS)}")
    objset = ObjectiveSet.build(problem.objectives, problem.constraints)
    return make_sampler(name, space=problem.space, objectives=objset, n_trials=BUDGET, seed=seed)


def random_trial(problem: Problem, study: optuna.Study) -> tuple[optuna.Trial, dict[str, Any]]:
    """Ask ``study`` (driven by a random sampler) for a trial; returns it with its Config."""
    trial = study.ask(problem.space.distributions())
    return trial, problem.space.decode(trial.params)


FILLS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed, population_size=20),
    "front": lambda seed: optuna.samplers.RandomSampler(seed=seed),  # see near_front
}
FRONT_SHARE = 0.7  # --fill front: this share of the observations lies next to the front
FRONT_JITTER = 0.002  # how far (unit coordinates) from the Pareto set they lie
# The Pareto set of each problem with one: the position-like leading variables are free, the
# others sit at this value (ZDT: x1.. = 0; DTLZ2: x2.. = 0.5).
PARETO_SETS: dict[str, tuple[int, float]] = {"zdt1": (1, 0.0), "zdt2": (1, 0.0), "dtlz2": (2, 0.5)}


def near_front(problem: Problem, config: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``config`` moved next to ``problem``'s Pareto set: its free leading variables kept,
    the others at the set's value plus a jitter of at most ``FRONT_JITTER``."""
    free, value = PARETO_SETS[problem.name]
    moved = dict(config)
    for name in list(config)[free:]:
        jitter = rng.uniform(0.0, FRONT_JITTER)
        moved[name] = value + jitter if value == 0.0 else value + rng.choice((-1, 1)) * jitter
    return moved


def filled_trials(
    problem: Problem, n_obs: int, pending: int, seed: int, fill: str = "random"
) -> list[Any]:
    """``n_obs`` completed trials proposed by the ``fill`` sampler, then ``pending`` RUNNING
    ones (frozen). ``front``: random points, ``FRONT_SHARE`` of them moved next to the
    Pareto set (a dense observed front, as after a long search on a smooth problem)."""
    sampler = FILLS[fill](seed)
    study = optuna.create_study(directions=problem.directions, sampler=sampler)
    rng = random.Random(seed)
    for _ in range(n_obs):
        trial, config = random_trial(problem, study)
        if fill == "front" and rng.random() < FRONT_SHARE:
            params = near_front(problem, trial.params, rng)
            study.tell(trial, state=TrialState.FAIL)  # replaced by the moved point
            dists = problem.space.distributions()
            study.add_trial(
                create_trial(params=params, distributions=dists,
                             values=problem.values(problem.space.decode(params)))
            )  # fmt: skip
            continue
        study.tell(trial, problem.values(config))
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL]
    for _ in range(pending):
        trial, _config = random_trial(problem, study)
        frozen = study.trials[trial.number]
        trials.append(
            create_trial(
                state=TrialState.RUNNING,
                params=frozen.params,
                distributions=frozen.distributions,
            )
        )
    return trials


def time_proposals(
    problem: Problem, name: str, trials: list[Any], proposals: int, seed: int, in_a_row: int = 1
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (this process) of each ask on a copy of ``trials``: ``proposals``
    groups of ``in_a_row`` asks, each group told once all of it is asked; CPU time is what
    other processes on the machine do not inflate."""
    study = optuna.create_study(
        directions=problem.directions, sampler=build_sampler(name, problem, seed)
    )
    study.add_trials(trials)
    distributions = problem.space.distributions()
    wall, cpu = [], []
    for _ in range(proposals):
        group = []
        for _ in range(in_a_row):
            start, start_cpu = time.perf_counter(), time.process_time()
            group.append(study.ask(distributions))
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        for trial in group:
            study.tell(trial, problem.values(problem.space.decode(trial.params)))
    return wall, cpu


def warm_up(names: tuple[str, ...]) -> None:
    """A few proposals of each contender on a tiny problem, so that no timed proposal pays
    for a lazy import or a first call."""
    problem = make_problems(["zdt1"])[0]
    trials = filled_trials(problem, 12, 0, seed=0)
    for name in names:
        time_proposals(problem, name, trials, 2, seed=0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    warm_up(args.samplers)
    load, timestamp, sources = os.getloadavg(), datetime.now(timezone.utc), source_info()
    timings: list[Timing] = []
    for problem in make_problems(args.problems):
        for n_obs in args.n_obs:
            trials = filled_trials(problem, n_obs, args.workers - 1, args.seed, args.fill)
            for name in args.samplers:
                timing = Timing(problem.name, name, n_obs, args.workers - 1)
                try:
                    timing.seconds, timing.cpu_seconds = time_proposals(
                        problem, name, trials, args.proposals, args.seed, args.in_a_row
                    )
                except Exception as exc:
                    timing.error = f"{type(exc).__name__}: {exc}"
                _log(timing)
                timings.append(timing)
    several = len(args.n_obs) > 1
    return {
        "command": command_line(),
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **sources},
        "settings": {
            "problems": list(args.problems),
            "samplers": list(args.samplers),
            "n_obs": list(args.n_obs) if several else args.n_obs[0],
            "proposals": args.proposals,
            "workers": args.workers,
            "fill": args.fill,
            "in_a_row": args.in_a_row,
            "seed": args.seed,
            "target_s": TARGET_S,
        },
        "median_s": _nested(timings, lambda t: t.median_s, several),
        "max_s": _nested(timings, lambda t: t.max_s, several),
        "median_cpu_s": _nested(
            timings,
            lambda t: statistics.median(t.cpu_seconds) if t.cpu_seconds else None,
            several,
        ),
        "group_s": _nested(timings, lambda t: _groups(t.seconds, args.in_a_row), several),
        "timings": [{**asdict(t), "median_s": t.median_s, "max_s": t.max_s} for t in timings],
    }


def _groups(seconds: list[float], size: int) -> list[float]:
    """Total seconds of each group of ``size`` asks in a row."""
    return [sum(seconds[i : i + size]) for i in range(0, len(seconds), size)]


def _nested(
    timings: list[Timing], key: Any, several: bool = False
) -> dict[str, dict[str, float | None]]:
    """``{problem: {sampler: key(timing)}}``; with several observation counts the rows are
    ``"problem@n_obs"``."""
    out: dict[str, dict[str, float | None]] = {}
    for t in timings:
        out.setdefault(f"{t.problem}@{t.n_obs}" if several else t.problem, {})[t.sampler] = key(t)
    return out


def run_before(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """``--before DIR``: this script, same arguments, in a child process that imports
    ``tradeoff`` from ``DIR`` (a clean clone of an earlier commit; ``PYTHONPATH``); its
    report, with that clone's commit and state."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "before.json"
        rest = _without(argv, ("--before", "--out"))
        env = {**os.environ, "PYTHONPATH": str(args.before)}
        cmd = [sys.executable, str(Path(__file__).resolve()), *rest, "--out", str(out)]
        subprocess.run(cmd, env=env, check=True)
        report = json.loads(out.read_text())

    def git(*a: str) -> str:
        done = subprocess.run(["git", "-C", str(args.before), *a], capture_output=True, text=True)
        return done.stdout.strip()

    report["machine"]["tradeoff_commit"] = git("rev-parse", "--short", "HEAD")
    report["machine"]["tradeoff_dirty"] = bool(git("status", "--porcelain", "--", "tradeoff"))
    report["tradeoff_from"] = str(args.before)
    return report


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``argv`` without ``options`` and their values (``--opt value`` or ``--opt=value``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in options:
            skip = True
        elif not a.startswith(tuple(f"{o}=" for o in options)):
            out.append(a)
    return out


def _log(t: Timing) -> None:
    what = t.error or " ".join(f"{s:.3f}" for s in t.seconds)
    print(f"  {t.problem:<8} {t.sampler:<10} s per proposal: {what}", file=sys.stderr)


def print_report(report: dict[str, Any]) -> None:
    m, s = report["machine"], report["settings"]
    print(
        f"\n{s['fill']} observations; {m['cpu_count']} CPUs, Optuna {m['optuna']}, "
        f"BoTorch {m['botorch']}, torch {m['torch']}; load avg {m['load_avg_1_5_15_at_start']} -> "
        f"{m['load_avg_1_5_15_at_end']}; {s['n_obs']} observations, {s['workers'] - 1} "
        f"pending, {s['proposals']} proposals each (the first one cold)"
    )
    rows = [["problem", "sampler", "median s", "max s", "median CPU s", "seconds"]]
    for t in report["timings"]:
        cpu = statistics.median(t["cpu_seconds"]) if t["cpu_seconds"] else None
        cells = [_fmt(t["median_s"]), _fmt(t["max_s"]), _fmt(cpu)]
        detail = t["error"] or " ".join(f"{x:.2f}" for x in t["seconds"])
        rows.append([f"{t['problem']}@{t['n_obs']}", t["sampler"], *cells, detail])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if j in (0, 1, 5) else c.rjust(w) for j, (c, w) in
                        enumerate(zip(r, widths))))  # fmt: skip
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=comma_names, default=DEFAULT_PROBLEMS,
                        help=f"comma-separated, of {list(PROBLEMS)}")  # fmt: skip
    parser.add_argument("--samplers", type=comma_names, default=DEFAULT_SAMPLERS,
                        help="comma-separated: optuna-gp and tradeoff optimizer names")  # fmt: skip
    parser.add_argument("--n-obs", type=comma_ints, default=(200,),
                        help="completed trials before timing (comma-separated: each)")  # fmt: skip
    parser.add_argument("--proposals", type=int, default=5, help="timed proposals per sampler")
    parser.add_argument("--workers", type=int, default=2, help="workers - 1 trials are pending")
    parser.add_argument("--fill", choices=list(FILLS), default="random",
                        help="who proposed the observations (NSGA-II: larger fronts)")  # fmt: skip
    parser.add_argument("--in-a-row", type=int, default=1,
                        help="asks per group, told together (workers free at once)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--before", type=Path, default=None,
                        help="a clean clone of an earlier commit: timed first, in a child "
                        "process importing tradeoff from it, embedded under 'before'")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = [p for p in args.problems if p not in PROBLEMS]
    if args.fill == "front":
        unknown += [p for p in args.problems if p not in PARETO_SETS]
    if unknown or min(args.n_obs) < 1 or min(args.proposals, args.workers, args.in_a_row) < 1:
        parser.error(f"unknown problems {unknown}, or a count < 1")
    return args


def comma_ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    before = (
        None if args.before is None else run_before(args, sys.argv[1:] if argv is None else argv)
    )
    report = run(args)
    if before is not None:
        report["before"] = before
        print_report(before)
    print_report(report)
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
