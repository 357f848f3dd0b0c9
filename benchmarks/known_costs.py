"""Known costs on the MNIST CNN: the analytic path of ``model_cost`` against apply-and-measure.

``model_cost(space, model, metric)`` computes ``metric(space.apply(model, config))`` from
per-layer tables; a layer state it has not seen yet (a new sparsity after channel pruning
upstream, say) costs one pass over that layer's weights, then is remembered. On the main job's
space and model (``examples/mnist_compression.py``) this times, per Config: the first call on
random Configs (new layer states included), repeated calls on the same Configs (states known),
and applying each Config to a copy and measuring it; and checks that both paths agree. On one
torch thread: on a busy machine a second thread waiting for a core makes every small parallel
op slow, and the timings would measure the other jobs.

Usage:
    python benchmarks/known_costs.py [--configs 200] [--applied 20] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optimizers import machine_info, source_info, write_report
from provenance import command_line

from tradeoff.objectives import bitops, model_cost, weight_storage_bytes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "known_costs.json"


def per_call_us(fn: Callable[[Any], float], configs: list[Any]) -> list[float]:
    """Microseconds of each call ``fn(config)``, in order."""
    out = []
    for config in configs:
        start = time.perf_counter()
        fn(config)
        out.append((time.perf_counter() - start) * 1e6)
    return out


def summary(us: list[float]) -> dict[str, float]:
    """Median, 90th percentile and maximum of per-call microseconds."""
    return {
        "median_us": statistics.median(us),
        "p90_us": float(np.percentile(us, 90)),
        "max_us": max(us),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("TRADEOFF_DEVICE", "cpu")
    torch.set_num_threads(1)
    ns = runpy.run_path(str(ROOT / "examples" / "mnist_compression.py"), run_name="__bench__")
    space, model, sample = ns["space"], ns["MODEL"], ns["SAMPLE"]
    costs = {
        "weight_storage_bytes": (
            model_cost(space, model, weight_storage_bytes),
            weight_storage_bytes,
        ),
        "bitops": (
            model_cost(space, model, bitops, sample_input=sample),
            lambda m: bitops(m, sample),
        ),
    }
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(args.configs)]
    results: dict[str, Any] = {}
    for name, (fast, measure) in costs.items():
        first = per_call_us(fast, configs)
        again = per_call_us(fast, configs)
        applied = per_call_us(
            lambda c, m=measure: m(space.apply(model, c)), configs[: args.applied]
        )
        same = all(fast(c) == measure(space.apply(model, c)) for c in configs[: args.applied])
        results[name] = {
            "analytic": bool(getattr(fast, "analytic", False)),
            "first_call": summary(first),
            "known_states": summary(again),
            "apply_and_measure": summary(applied),
            "equal_on_applied_configs": same,
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--configs", type=int, default=200, help="random Configs timed")
    parser.add_argument("--applied", type=int, default=20, help="of which applied and measured")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    load, start = os.getloadavg(), time.perf_counter()
    results = run(args)
    report = {
        "command": command_line(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **source_info()},
        "settings": {"configs": args.configs, "applied": args.applied, "seed": 0, "threads": 1},
        "results": results,
        "benchmark_wall_s": time.perf_counter() - start,
    }
    for name, r in results.items():
        print(f"{name}: analytic {r['analytic']}, equal {r['equal_on_applied_configs']}")
        for case in ("first_call", "known_states", "apply_and_measure"):
            print(
                f"  {case:18s} median {r[case]['median_us']:9.1f} us, p90 {r[case]['p90_us']:9.1f}"
            )
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
