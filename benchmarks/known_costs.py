"""Known costs: the analytic path of ``model_cost`` against apply-and-measure.

``model_cost(space, model, metric)`` computes ``metric(space.apply(model, config))`` from per-
layer tables; a layer state it has not seen yet (a new sparsity after channel pruning upstream,
say) costs one pass over that layer's weights, then is remembered. On the main job's space and
model (what ``examples/mnist_compression.py`` hands ``compress``) this times, per Config: the
first call on random Configs (new layer states included), repeated calls on the same Configs
(states known), and applying each Config to a copy and measuring it; and checks that both paths
agree. The same on transformers with an elastic architecture part (``--arch-models``): MiniLM-L6
(block drop, FFN width, attention heads, per-block weight bits) and SmolLM2-135M (block drop,
FFN width, per-block bits, tied embedding/head bits), loaded offline as the examples load them.
On one torch thread: on a busy machine a second thread waiting for a core makes every small
parallel op slow, and the timings would measure the other jobs.

Usage:
    python benchmarks/known_costs.py [--configs 200] [--applied 20]
        [--arch-models minilm,smollm2] [--arch-applied 10] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
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
from tradeoff.spaces import PruningSpace, QuantizationSpace, SearchSpace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "known_costs.json"
ARCH_MODELS = ("minilm", "smollm2")


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
    space, model, sample = main_job_space()
    return compare(space, model, sample, args.configs, args.applied)


def main_job_space() -> tuple[SearchSpace, Any, Any]:
    """The space ``compress`` builds for the MNIST main job (no block stack: no ties), the
    trained CNN and one test image."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import _mnist_data as data
    finally:
        sys.path.remove(str(ROOT / "examples"))
    model, _ = data.trained_cnn("cpu")
    sample = data.test_set()[0][:1]
    prune = PruningSpace.for_model(
        model, (0.0, 0.25, 0.5, 0.75), pattern=("unstructured", "channel"), sample_input=sample
    )
    quant = QuantizationSpace.for_model(model, bits=(2, 3, 4, 8), act_bits=8)
    return SearchSpace.merge(prune=prune, quant=quant), model, sample


def compare(space: Any, model: Any, sample: Any, n_configs: int, n_applied: int) -> dict[str, Any]:
    """Per metric (storage, bit-ops): per-call microseconds of the analytic path on
    ``n_configs`` random Configs (first and repeated calls) and of apply-and-measure on the
    first ``n_applied``, and whether both paths agree on those."""
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
    configs = [space.sample(rng) for _ in range(n_configs)]
    results: dict[str, Any] = {}
    for name, (fast, measure) in costs.items():
        first = per_call_us(fast, configs)
        again = per_call_us(fast, configs)
        applied = per_call_us(lambda c, m=measure: m(space.apply(model, c)), configs[:n_applied])
        same = all(fast(c) == measure(space.apply(model, c)) for c in configs[:n_applied])
        results[name] = {
            "analytic": bool(getattr(fast, "analytic", False)),
            "first_call": summary(first),
            "known_states": summary(again),
            "apply_and_measure": summary(applied),
            "equal_on_applied_configs": same,
        }
    return results


def arch_case(name: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(space, model, sample input, description) of an elastic-architecture case."""
    sys.path.insert(0, str(ROOT / "examples"))
    from tradeoff.spaces import ArchitectureSpace, QuantizationSpace, SearchSpace

    if name == "minilm":
        import _minilm_data as data

        model, blocks = data.load_model(), "bert.encoder.layer"
        arch_kw: dict[str, Any] = {"drop_blocks": True, "ffn_ratios": (0.5, 0.75, 1.0)}
        arch_kw["head_counts"] = (6, 9, 12)
        quant_kw: dict[str, Any] = {"exclude": "classifier"}
    else:
        import _smollm2_data as data

        model, blocks = data.load_model(), data.BLOCKS
        arch_kw = {"drop_blocks": True, "ffn_ratios": (0.5, 0.75, 1.0)}
        quant_kw = {"types": (torch.nn.Linear, torch.nn.Embedding)}  # the tied head and embedding
    depth = len(model.get_submodule(blocks))
    tie = {f"{blocks}.{i}": f"{blocks}.{i}.*" for i in range(depth)}
    quant = QuantizationSpace.for_model(
        model, bits=(3, 4, 8), granularity="group", group_size=64, tie=tie, **quant_kw
    )
    space = SearchSpace.merge(
        arch=ArchitectureSpace.elastic(model, blocks=blocks, **arch_kw), quant=quant
    )
    sample = torch.randint(
        0, model.config.vocab_size, (1, 32), generator=torch.Generator().manual_seed(0)
    )
    about = {
        "model": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "blocks": depth,
        "arch": dict(arch_kw),
        "quant": {"bits": [3, 4, 8], "granularity": "group", "group_size": 64, "tie": "per block"},
        "space_dims": len(space),
        "sample_tokens": list(sample.shape),
    }
    return space, model, sample, about


def run_arch(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for name in args.arch_models:
        space, model, sample, about = arch_case(name)
        results = compare(space, model, sample, args.configs, args.arch_applied)
        out[name] = {**about, "results": results}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--configs", type=int, default=200, help="random Configs timed")
    parser.add_argument("--applied", type=int, default=20, help="of which applied and measured")
    parser.add_argument(
        "--arch-models",
        type=lambda s: [m for m in s.split(",") if m],
        default=list(ARCH_MODELS),
        help=f"elastic-architecture cases, comma-separated, from {ARCH_MODELS} ('' for none)",
    )
    parser.add_argument(
        "--arch-applied", type=int, default=10, help="of which applied and measured (arch cases)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    load, start = os.getloadavg(), time.perf_counter()
    results = run(args)
    arch = run_arch(args)
    report = {
        "command": command_line(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(load), **source_info()},
        "settings": {
            "configs": args.configs,
            "applied": args.applied,
            "arch_models": args.arch_models,
            "arch_applied": args.arch_applied,
            "seed": 0,
            "threads": 1,
        },
        "results": results,
        "arch_results": arch,
        "benchmark_wall_s": time.perf_counter() - start,
    }
    cases = [("mnist_cnn", results)] + [(k, v["results"]) for k, v in arch.items()]
    for model_name, model_results in cases:
        for name, r in model_results.items():
            print(f"{model_name} {name}: analytic {r['analytic']}, ", end="")
            print(f"equal {r['equal_on_applied_configs']}")
            for case in ("first_call", "known_states", "apply_and_measure"):
                median, p90 = r[case]["median_us"], r[case]["p90_us"]
                print(f"  {case:18s} median {median:11.1f} us, p90 {p90:11.1f} us")
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
