"""``tradeoff.compress`` on SmolLM2-135M: GPTQ levels against RTN levels, same search, same seed.

Each method runs the same call: KL(dense || compressed) on held-out Hamlet windows (the
quality), block dropping and per-block bits (3, 4, 5, 6, 8; groups of 64), the size of uniform
5-bit as the budget, the knapsack's Configs and the uniform levels as starts, the default
multi-fidelity ladder, ``--n-trials`` Configs, seed 0. It prints, per method, the wall time,
the front, the hypervolume (reference: KL 1, the budget's size) and the baselines, then which
RTN Pareto points a GPTQ point matches or dominates.

    python benchmarks/compress.py                  # ~25 min on 2 cores
    python benchmarks/compress.py --quick          # a smoke run

Writes ``benchmarks/results/compress.json`` (command, commit, versions, machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from benchmarks.optimizers import recorded, write_report  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "compress.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small everything")
    parser.add_argument("--methods", type=lambda s: tuple(s.split(",")), default=("rtn", "gptq"))
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--eval-seqs", type=int, default=9)
    parser.add_argument("--calibration-seqs", type=int, default=96)
    parser.add_argument("--budget-bits", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_trials, args.seq_len, args.eval_seqs, args.calibration_seqs = 6, 32, 3, 8
        args.budget_bits = 4
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    import _smollm2_data as data

    import tradeoff
    from tradeoff.objectives import KLToDense

    model = data.load_model()
    windows = data.calibration(args.seq_len, args.eval_seqs + args.calibration_seqs)
    held_out, calibration = windows[: args.eval_seqs], windows[args.eval_seqs :]
    bits = (4, 8) if args.quick else (3, 4, 5, 6, 8)
    runs = {}
    budget_mb = None
    for method in args.methods:
        print(f"-- {method}", flush=True)
        with tempfile.TemporaryDirectory(prefix="compress-") as tmp:
            quantize = {"bits": bits, "method": method, "granularity": "group", "group_size": 64}
            if budget_mb is None:  # the size of uniform budget_bits: the same for every method
                budget_mb = _uniform_size(model, quantize, args.budget_bits)
            start = time.perf_counter()
            result = tradeoff.compress(
                model, quality=KLToDense(held_out), calibration=calibration,
                quantize={**quantize, "bank": Path(tmp) / "bank"}, drop_blocks=True,
                budget={"size_mb": budget_mb}, n_trials=args.n_trials, seed=0,
                storage=f"sqlite:///{Path(tmp) / 'study.db'}", study_name=method,
                show_progress=False,
            )  # fmt: skip
            wall = time.perf_counter() - start
            print(result.report(), flush=True)
            front = result.pareto[["trial", "kl", "size_mb"]]
            runs[method] = {
                "wall_s": wall,
                "trials": len(result.trials),
                "hypervolume": float(result.hypervolume(reference=[1.0, budget_mb])),
                "pareto": front.to_dict("records"),
                "baselines": [
                    {k: _plain(row[k]) for k in ("baseline", "kind", "kl", "size_mb", "feasible")}
                    for _, row in result.baselines.iterrows()
                ],
            }
    comparison = {}
    if {"rtn", "gptq"} <= set(runs):
        gptq = runs["gptq"]["pareto"]
        comparison = {
            "rtn_points": len(runs["rtn"]["pareto"]),
            "rtn_points_matched_or_dominated_by_gptq": sum(
                any(g["kl"] <= r["kl"] and g["size_mb"] <= r["size_mb"] for g in gptq)
                for r in runs["rtn"]["pareto"]
            ),
        }
    return {
        "model": "SmolLM2-135M",
        "budget_mb": budget_mb,
        "held_out_tokens": int(held_out.numel()),
        "calibration_tokens": int(calibration.numel()),
        "runs": runs,
        "comparison": comparison,
    }


def _uniform_size(model: Any, quantize: dict[str, Any], bits: int) -> float:
    from tradeoff.objectives import weight_storage_bytes
    from tradeoff.spaces import QuantizationSpace

    spec = {k: v for k, v in quantize.items() if k != "method"}
    space = QuantizationSpace.for_model(model, **spec)
    return float(weight_storage_bytes(space.apply(model, {k: bits for k in space})) / 1e6)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = recorded(args, lambda: run(args), packages=("transformers", "safetensors"))
    result = report["result"]
    for method, r in result["runs"].items():
        print(f"{method}: {r['wall_s']:.0f} s, HV {r['hypervolume']:.3f}, {r['trials']} trials")
    print(result["comparison"])
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
