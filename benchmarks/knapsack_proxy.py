"""The knapsack's per-block measurements: how much data they need, SmolLM2-135M, GPTQ.

Before its search, ``tradeoff.compress`` measures each block's levels and its drop alone, then
solves the exact knapsack over the summed errors (the additive proxy of one-shot tools) at 10
budgets; those Configs start the search. ``proxy_budget=`` sets how many held-out windows
those measurements use. This runs the SmolLM2 GPTQ call of ``benchmarks/compress.py`` (warm
bank ``--bank``, block dropping, bits 3-8, the uniform-5-bit size as the budget, seed 0) once
per ``--proxy-budgets`` value with only the starting Configs as trials (``n_trials`` = the
uniform levels within the budget + the knapsack's), each measured on all the held-out windows,
and reports per proxy budget: the knapsack's measurement time, its Configs' KL and size, their
hypervolume alone and with the uniform levels (reference: KL 1, the budget's size).

    python benchmarks/knapsack_proxy.py --bank /tmp/bank --proxy-budgets 1,3,9
    python benchmarks/knapsack_proxy.py --quick

Writes ``benchmarks/results/knapsack_proxy.json`` (command, commit, versions, machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples"), str(ROOT / "benchmarks")]

from benchmarks.compress import (  # noqa: E402
    KNAPSACK_BUDGETS,
    _gptq_setup,
    _knapsack_trials,
    _timed_compress,
    _uniform_size,
    points_hypervolume,
)
from benchmarks.optimizers import recorded, write_report  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "knapsack_proxy.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: SmolLM2 cut short")
    parser.add_argument("--bank", type=Path, default=None, help="bank directory (warm)")
    parser.add_argument(
        "--proxy-budgets", type=lambda t: [int(x) for x in t.split(",")], default=[1, 3, 9]
    )
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--eval-seqs", type=int, default=9)
    parser.add_argument("--calibration-seqs", type=int, default=96)
    parser.add_argument("--budget-bits", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results path")
    args = parser.parse_args(argv)
    if args.quick:  # as compress.py --quick: 2 blocks, short windows
        args.seq_len, args.eval_seqs, args.calibration_seqs, args.budget_bits = 32, 3, 8, 8
        args.proxy_budgets = [b for b in args.proxy_budgets if b <= args.eval_seqs] or [1]
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tradeoff.objectives import KLToDense

    model, held_out, calibration, quantize = _gptq_setup(args)
    budget_mb = _uniform_size(model, quantize, args.budget_bits)
    reference = [1.0, budget_mb]
    n_uniform = sum(_uniform_size(model, quantize, b) <= budget_mb for b in quantize["bits"])

    runs = []
    with tempfile.TemporaryDirectory(prefix="knapsack-proxy-") as tmp:
        bank = args.bank or Path(tmp) / "bank"
        for proxy in args.proxy_budgets:
            result, timing = _timed_compress(
                model, quality=KLToDense(held_out), calibration=calibration,
                quantize={**quantize, "bank": bank}, drop_blocks=True,
                budget={"size_mb": budget_mb}, proxy_budget=proxy,
                n_trials=n_uniform + KNAPSACK_BUDGETS, seed=0, show_progress=False,
                storage=f"sqlite:///{Path(tmp) / f'proxy{proxy}.db'}", study_name="knapsack",
            )  # fmt: skip
            knap = _knapsack_trials(result)
            uniform = result.baselines.query("kind == 'uniform' and feasible")
            starts = knap + [{"kl": r.kl, "size_mb": r.size_mb} for r in uniform.itertuples()]
            run = {
                "proxy_budget_seqs": proxy,
                "knapsack_measured_s": timing["proxy_to_s"] - timing["proxy_from_s"],
                "call_s": timing["wall_s"],
                "configs": knap,
                "all_full_fidelity": all(p["full_fidelity"] for p in knap),
                "hypervolume_knapsack": points_hypervolume(knap, reference),
                "hypervolume_with_uniform": points_hypervolume(starts, reference),
                "kl_at_budget": min(p["kl"] for p in knap if p["size_mb"] <= budget_mb + 1e-9),
            }
            runs.append(run)
            print(
                f"proxy {proxy} windows: knapsack measured in {run['knapsack_measured_s']:.0f} s, "
                f"HV {run['hypervolume_knapsack']:.3f} (with uniform "
                f"{run['hypervolume_with_uniform']:.3f}), KL at the budget "
                f"{run['kl_at_budget']:.4f}",
                flush=True,
            )
            del result
    return {
        "model": "SmolLM2-135M, first 2 blocks" if args.quick else "SmolLM2-135M",
        "budget_mb": budget_mb, "reference": reference, "held_out_seqs": args.eval_seqs,
        "seq_len": args.seq_len, "runs": runs,
    }  # fmt: skip


if __name__ == "__main__":
    args = parse_args()
    report = recorded(args, lambda: run(args), packages=("torch", "transformers"))
    write_report(report, args.out)
    print(f"wrote {args.out}")
