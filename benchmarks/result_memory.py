"""What a ``tradeoff.compress`` result keeps in memory: SmolLM2-135M, GPTQ, a warm bank.

One call as ``examples/smollm2_compress.py`` makes it (KL to dense on Hamlet, block dropping,
per-block GPTQ bits 3-8, the uniform-int5 budget, the knapsack and the uniform levels as
starts, the default ladder), on a bank directory that already holds every entry (``--bank``;
built first, and timed, when empty). Then, in this process:

* the tensors the result reaches (unique storages, found by walking its references), beside
  the dense model's own, and the process's resident memory, after garbage collection;
* ``result.model(best)``: its wall time, its KL measured again (it must be the trial's), and
  the same two figures after it.

Run it once per version of the library to compare (the script uses only the public API).
``--max-memory-mb 0,1300,650`` makes one call per limit of the bank's memory (``VariantBank(DIR,
max_memory_mb=...)``; 0: none), each in a fresh child process (its own peak), the same seed,
so the same Configs: the entries read from disk, the call's time and the peak.

    python benchmarks/result_memory.py --bank /tmp/bank --n-trials 20
    python benchmarks/result_memory.py --bank /tmp/bank --n-trials 20 --max-memory-mb 0,1300,650
    python benchmarks/result_memory.py --quick          # a smoke run: SmolLM2 cut to 4 blocks

Writes ``benchmarks/results/result_memory.json`` (command, commit, versions, machine).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from benchmarks.optimizers import recorded, write_report  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "result_memory.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: SmolLM2 cut short")
    parser.add_argument("--bank", type=Path, default=None, help="bank directory (warm)")
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--max-memory-mb", type=lambda t: [float(x) for x in t.split(",")], default=[0.0],
        help="the bank's memory limits, one call each in its own process (0: none)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results path")
    return parser.parse_args(argv)


def reachable_bytes(root: Any) -> int:
    """Bytes of the distinct tensor storages ``root`` reaches through its references (a
    function's through its closure and defaults, not its module's globals)."""
    seen, storages, stack = set(), {}, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(obj, types.FunctionType):
            cells = [c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not c]
            stack.extend([*cells, obj.__defaults__, obj.__kwdefaults__])
        else:
            stack.extend(gc.get_referents(obj))
    return sum(storages.values())


def rss_mb() -> float:
    """This process's resident memory now, after garbage collection and glibc returning its
    free pages (Linux's /proc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    status = Path("/proc/self/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


def run_limits(args: argparse.Namespace) -> dict[str, Any]:
    """One call per memory limit, each in a child process (a fresh peak)."""
    if len(args.max_memory_mb) == 1:
        return run(args)
    # One bank for every call (without --bank, the first call builds it).
    bank = args.bank or Path(tempfile.mkdtemp(prefix="result-memory-bank-"))
    argv = sys.argv[1:]
    for flag in ("--max-memory-mb", "--out", "--bank"):
        argv = _without(argv, flag)
    runs = []
    for limit in args.max_memory_mb:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run.json"
            child = [sys.executable, __file__, *argv, "--bank", str(bank)]
            child += ["--max-memory-mb", str(limit), "--out", str(out)]
            subprocess.run(child, check=True)
            runs.append(json.loads(out.read_text())["result"])
    return {"runs": runs}


def _without(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value."""
    if flag not in argv:
        return argv
    i = argv.index(flag)
    return argv[:i] + argv[i + 2 :]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        os.environ["TRADEOFF_SMOKE"] = "1"
    import _smollm2_data as data

    import tradeoff
    from tradeoff.objectives import KLToDense
    from tradeoff.spaces import VariantBank

    judge, calibration = data.judge_and_calibration()
    model = data.model()
    (limit,) = args.max_memory_mb
    directory = args.bank or Path(tempfile.mkdtemp(prefix="result-memory-bank-"))
    bank = VariantBank(directory, max_memory_mb=limit or None)
    quantize = {"bits": data.BITS, "method": "gptq", "granularity": "group", "group_size": 64}
    dense_mb = reachable_bytes(model) / 1e6
    start_rss = rss_mb()
    quality = KLToDense(judge)
    start = time.perf_counter()
    result = tradeoff.compress(
        model, quality=quality, calibration=calibration, quantize={**quantize, "bank": bank},
        drop_blocks=True, budget=data.BUDGET, n_trials=args.n_trials, seed=args.seed,
        show_progress=False,
    )  # fmt: skip
    call_s, loaded = time.perf_counter() - start, bank.loaded
    held_mb, rss_after = reachable_bytes(result) / 1e6, rss_mb()
    best = result.best()
    row = result.trials.set_index("trial").loc[best]
    start = time.perf_counter()
    compressed = result.model(best)
    model_s = time.perf_counter() - start
    quality.prepare(model)
    kl = quality.measure(compressed)
    del compressed
    out = {
        "max_memory_mb": limit or None,
        "dense_model_mb": dense_mb,
        "call_s": call_s,
        "entries_read": loaded,
        "pareto": result.pareto[["trial", "kl", "size_mb"]].to_dict("records"),
        "trials": len(result.trials),
        "rss_before_call_mb": start_rss,
        "result_holds_mb": held_mb,
        "result_holds_beyond_dense_mb": held_mb - dense_mb,
        "rss_after_call_mb": rss_after,
        "best_trial": best,
        "best_kl": float(row["kl"]),
        "model_s": model_s,
        "model_kl": kl,
        "result_holds_after_model_mb": reachable_bytes(result) / 1e6,
        "rss_after_model_mb": rss_mb(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for key, value in out.items():
        print(f"{key:>32}: {value:.3f}" if isinstance(value, float) else f"{key:>32}: {value}")
    return out


if __name__ == "__main__":
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = recorded(args, lambda: run_limits(args), packages=("torch", "transformers"))
    write_report(report, args.out)
    print(f"wrote {args.out}")
