"""The main job over several seeds: ``compress`` against the ``optimize`` version it replaced.

``make run``'s search (``examples/mnist_compression.py``: per layer of the MNIST CNN weight bits
2/3/4/8, sparsity 0-75%, unstructured or channel pruning; accuracy on the 1,000 held-out
digits, weight KB and Mbit-ops; 80 trials, Ray with 2 workers in trial order) run as the
example is today (one ``compress`` call: 19 of its 80 trials are the uniform levels and the
knapsack's Configs) and as it was before (commit ``83ed4af``: ``optimize`` with all 80 trials
to TPE), at each seed, the same trained CNN. Both fronts' hypervolume against the main job's
reference point (accuracy 0, 450 KB, 1,200 Mbit-ops), read back from each run's study.

The old example runs from that commit's tree (``git archive``), with this checkout's
environment; each run its own SQLite study in a temporary directory.

Usage:
    python benchmarks/mnist_seeds.py [--seeds 0,1,2] [--n-trials 80] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from optimizers import recorded, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "mnist_seeds.json"
OLD_COMMIT = "83ed4af"  # the last main job on optimize (783a797 moved it onto compress)
REFERENCE = (0.0, 450.0, 1200.0)  # accuracy, weight KB, Mbit-ops: both versions' corner
VERSIONS = ("compress", "optimize")


def run(version: str, tree: Path, seed: int, n_trials: int, work: Path) -> dict[str, Any]:
    """One run of the example; its study's hypervolume and Pareto-set size."""
    import tradeoff

    storage = f"sqlite:///{work / f'{version}-{seed}.db'}"
    command = [
        sys.executable, str(tree / "examples" / "mnist_compression.py"),
        "--backend", "ray", "--n-workers", "2", "--n-trials", str(n_trials),
        "--storage", storage, "--study", "mnist", "--seed", str(seed),
        "--report", str(work / f"{version}-{seed}.json"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}  # that tree's tradeoff, this environment
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=work, check=True, capture_output=True)
    wall = time.perf_counter() - start
    result = tradeoff.SearchResult.load(storage, "mnist")
    done = result.trials[result.trials["status"] == "complete"]
    return {
        "hypervolume": result.hypervolume(list(REFERENCE)),
        "pareto_size": len(result.pareto),
        "complete": len(done),
        "wall_s": wall,
    }


def compute(seeds: list[int], n_trials: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tradeoff-mnist-seeds-") as tmp:
        work = Path(tmp)
        old = work / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", OLD_COMMIT], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        trees = {"compress": ROOT, "optimize": old}
        runs = {v: {str(s): run(v, trees[v], s, n_trials, work) for s in seeds} for v in VERSIONS}
    summary = {}
    for v in VERSIONS:
        hv = [r["hypervolume"] for r in runs[v].values()]
        summary[v] = {"median": statistics.median(hv), "min": min(hv), "max": max(hv)}
    wins = sum(
        runs["compress"][s]["hypervolume"] >= runs["optimize"][s]["hypervolume"]
        for s in runs["compress"]
    )
    return {"runs": runs, "summary": summary, "compress_at_least_optimize": wins}


def print_table(report: dict[str, Any]) -> None:
    res = report["result"]
    seeds = list(res["runs"]["compress"])
    print(f"\nMNIST main job, {report['settings']['n_trials']} trials; hypervolume by seed")
    print(f"{'version':<10}" + "".join(f"{'seed ' + s:>12}" for s in seeds) + f"{'median':>12}")
    for v in VERSIONS:
        cells = "".join(f"{res['runs'][v][s]['hypervolume']:>12.4e}" for s in seeds)
        print(f"{v:<10}{cells}{res['summary'][v]['median']:>12.4e}")
    n = res["compress_at_least_optimize"]
    print(f"compress >= optimize at {n} of {len(seeds)} seeds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated search seeds")
    parser.add_argument("--n-trials", type=int, default=80)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    report = recorded(args, lambda: compute(seeds, args.n_trials), packages=("torch", "ray"))
    print_table(report)
    write_report(report, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
