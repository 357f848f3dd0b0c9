"""GPTQ against round-to-nearest on the MNIST main job: the same ``compress`` call, two methods.

The main job's search (``examples/mnist_compression.py``: per layer weight bits 2/3/4/8 with
8-bit activations, sparsity 0-75%, unstructured or channel pruning; accuracy on the 1,000
held-out digits, weight KB and Mbit-ops; 80 trials, seed 0, two workers in trial order) run once
with ``method="rtn"`` (what ``make run`` does) and once with ``method="gptq"``, calibrated on
512 training digits (none of the held-out ones). Per method: the front's hypervolume against
the main job's reference point, the uniform levels' accuracy, and the best accuracy the front
reaches within a few size budgets. GPTQ's Hessians and variant bank are built in the run
(a fresh bank directory), and its time is reported.

Usage:
    python benchmarks/mnist_gptq.py [--n-trials 80] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from optimizers import recorded, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "mnist_gptq.json"
REFERENCE = {"accuracy": 0.0, "size_kb": 450.0, "mbitops": 1200.0}  # the main job's
SIZES_KB = (10.0, 15.0, 20.0, 30.0, 55.0)


def run_method(method: str, n_trials: int, seed: int, quick: bool) -> dict[str, Any]:
    import torch

    import tradeoff
    from tradeoff.objectives import Accuracy
    from tradeoff.workers import InTrialOrder, LocalPool

    sys.path.insert(0, str(ROOT / "examples"))
    import _mnist_data as data

    torch.set_num_threads(1)
    model, _ = data.trained_cnn("cpu")
    x_train, _, x_test, y_test = data.load_mnist()
    if quick:
        x_test, y_test = x_test[:200], y_test[:200]
    quantize: dict[str, Any] = {"bits": (2, 3, 4, 8), "act_bits": 8, "method": method}
    with tempfile.TemporaryDirectory(prefix="tradeoff-bank-") as bank:
        if method == "gptq":
            quantize["bank"] = bank  # a cold bank: its build is part of the time
        start = time.perf_counter()
        result = tradeoff.compress(
            model, quality=Accuracy((x_test, y_test)), fidelity=False,
            cost=("size_kb", "mbitops"), reference=REFERENCE, quantize=quantize,
            prune={"sparsity": (0.0, 0.25, 0.5, 0.75), "pattern": ("unstructured", "channel")},
            calibration=x_train[:512] if method == "gptq" else None,
            n_trials=n_trials, backend=InTrialOrder(LocalPool(2)), seed=seed,
            show_progress=False, notes=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
    front = result.pareto
    uniform = result.baselines[result.baselines["kind"] == "uniform"]
    return {
        "wall_s": wall,
        "hypervolume": result.hypervolume(),
        "pareto": result.to_dict()["pareto"],
        "uniform": {
            row["baseline"]: {"accuracy": row["accuracy"], "size_kb": row["size_kb"]}
            for _, row in uniform.iterrows()
        },
        "best_within_kb": {
            str(kb): float(front[front["size_kb"] <= kb]["accuracy"].max())
            if (front["size_kb"] <= kb).any()
            else None
            for kb in SIZES_KB
        },
    }


def compute(args: argparse.Namespace) -> dict[str, Any]:
    return {m: run_method(m, args.n_trials, args.seed, args.quick) for m in ("rtn", "gptq")}


def print_table(result: dict[str, Any]) -> None:
    print(f"{'method':<6} {'hypervolume':>12} {'wall s':>7}  best accuracy within KB")
    print(" " * 28 + "  ".join(f"{kb:>5.0f}" for kb in SIZES_KB))
    for method, run in result.items():
        best = run["best_within_kb"]
        cells = "  ".join(
            f"{best[str(kb)]:>5.3f}" if best[str(kb)] is not None else "    -" for kb in SIZES_KB
        )
        print(f"{method:<6} {run['hypervolume']:>12.4g} {run['wall_s']:>7.0f}  {cells}")
    print("\nuniform levels (no pruning): accuracy rtn / gptq")
    for name, row in result["rtn"]["uniform"].items():
        if "sparsity=0.0" in name:
            gptq = result["gptq"]["uniform"][name]["accuracy"]
            print(f"  {name:<30} {row['accuracy']:.3f} / {gptq:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="200 test digits (smoke)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = recorded(args, lambda: compute(args), packages=("torch",))
    print_table(report["result"])
    write_report(report, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
