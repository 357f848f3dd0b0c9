"""Proposing ahead: does asking the sampler while every worker is busy keep the workers busy?

Issue #18 item 2 ("keep sampler time off the critical path"). ``optimize(propose_ahead=True)``
asks the sampler for the next Config while all workers run, so a worker that frees up starts
one at once; without it, the worker waits for the proposal. It pays when a proposal takes a
noticeable share of a trial: a model-based sampler (mobo, Optuna's GP) and trials of a few
seconds on a few workers.

Per sampler and seed, the same search twice, without and with ``propose_ahead`` (alternating
which runs first): ``--workers`` local worker threads, each trial sleeps ``--sleep`` seconds
(no CPU: the proposals get the cores, as a driver does beside GPU or cluster workers) and then
returns ZDT1 on 6 variables (``benchmarks/scale.py``'s space); ``--n-trials`` trials, seeded,
in trial order (``InTrialOrder``: both runs are reproducible, and differ only in when each
proposal is asked). Measured: the workers' utilization (trial seconds over workers x the span
from the first trial's start to the last one's end), that span, the median time a worker
waited between its trials (the proposal on the critical path), and the hypervolume of the
final front (reference (1, 10)), since a proposal made ahead knows one trial fewer.

Usage:
    python benchmarks/propose_ahead.py [--quick] [--samplers mobo,gp] [--seeds 2]
        [--workers 2] [--sleep 4] [--n-trials 40] [--out PATH]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from optimizers import quiet, recorded, write_report
from scale import OBJECTIVES, SPACE, zdt1

import tradeoff
from tradeoff.workers import InTrialOrder, LocalPool

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "propose_ahead.json"
REFERENCE = {"f1": 1.0, "f2": 10.0}


def one(sampler: str, seed: int, ahead: bool, args: argparse.Namespace) -> dict[str, Any]:
    spans: list[tuple[int, float, float]] = []  # (worker thread, start, end) of each trial

    def evaluate(config: dict[str, Any]) -> dict[str, float]:
        start = time.monotonic()
        time.sleep(args.sleep)
        values = zdt1(config)
        spans.append((threading.get_ident(), start, time.monotonic()))
        return values

    result = tradeoff.optimize(
        evaluate, SPACE, objectives=OBJECTIVES, optimizer=sampler, n_trials=args.n_trials,
        backend=InTrialOrder(LocalPool(args.workers)), seed=seed, show_progress=False,
        propose_ahead=ahead,
    )  # fmt: skip
    span = max(e for _, _, e in spans) - min(s for _, s, _ in spans)
    busy = sum(e - s for _, s, e in spans)
    waits = []  # per worker thread: from the end of one of its trials to the start of the next
    for worker in {w for w, _, _ in spans}:
        mine = sorted((s, e) for w, s, e in spans if w == worker)
        waits += [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(mine)]
    return {
        "sampler": sampler,
        "seed": seed,
        "propose_ahead": ahead,
        "optimizer": result.study.user_attrs.get("tradeoff.optimizer", sampler),
        "trials": len(spans),
        "span_s": span,
        "utilization": busy / (args.workers * span),
        "median_worker_wait_s": statistics.median(waits),
        "hypervolume": result.hypervolume(reference=REFERENCE),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for sampler in args.samplers:
        for seed in range(args.seeds):
            order = (False, True) if seed % 2 == 0 else (True, False)
            for ahead in order:
                row = one(sampler, seed, ahead, args)
                rows.append(row)
                print(
                    f"{sampler:<6} seed {seed} ahead={ahead!s:<5} utilization "
                    f"{row['utilization']:.3f}  span {row['span_s']:6.1f} s  median wait "
                    f"{row['median_worker_wait_s']:.2f} s  hypervolume {row['hypervolume']:.3f}",
                    flush=True,
                )
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per sampler: the medians over seeds without and with ``propose_ahead``, and ratios."""
    out: dict[str, Any] = {}
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        cell = {}
        for ahead in (False, True):
            mine = [r for r in rows if r["sampler"] == sampler and r["propose_ahead"] == ahead]
            cell["ahead" if ahead else "plain"] = {
                k: statistics.median(r[k] for r in mine)
                for k in ("utilization", "span_s", "median_worker_wait_s", "hypervolume")
            }
        cell["span_ratio"] = cell["ahead"]["span_s"] / cell["plain"]["span_s"]
        out[sampler] = cell
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="random sampler, tiny budgets")
    parser.add_argument("--samplers", default="mobo,gp", help="comma-separated optimizers")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=4.0, help="seconds a trial sleeps")
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    args.samplers = [s for s in args.samplers.split(",") if s.strip()]
    if args.quick:
        args.samplers, args.seeds, args.sleep, args.n_trials = ["random"], 1, 0.05, 8
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    report = recorded(args, lambda: run(args), packages=("botorch",), key="rows")
    report["summary"] = summary(report["rows"])
    for sampler, cell in report["summary"].items():
        print(
            f"{sampler}: utilization {cell['plain']['utilization']:.3f} -> "
            f"{cell['ahead']['utilization']:.3f}, span x{cell['span_ratio']:.2f}, hypervolume "
            f"{cell['plain']['hypervolume']:.3f} -> {cell['ahead']['hypervolume']:.3f}"
        )
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
