"""GPTQ against round-to-nearest over the same Configs: SmolLM2-135M's ``compress`` search.

Issue #13's target: the GPTQ front dominates the RTN front *of the same search* at every size
in range. Two searches (one per method) take different paths, so their fronts differ by the
Configs they tried as much as by the method. Here every Config either search evaluated is
measured with both methods' levels at full fidelity, and the two fronts over that one Config
set are compared:

* the fronts (quality against size; within the budget when there is one) and their 2-D
  hypervolumes;
* every RTN Pareto point that no GPTQ point matches (as small and as good), and by how much the
  best GPTQ point as small falls short;
* per Config, how often GPTQ is worse than RTN, and on which Configs (8-bit ties, pruning...).

The searches are :mod:`benchmarks.compress`'s call (KL to the dense model on held-out Hamlet,
block dropping and per-block bits 3/4/5/6/8 in groups of 64, the size of uniform 5-bit as the
budget, the uniform levels and the knapsack as starts, the default ladder, ``--n-trials``
Configs, seed 0), re-run from the seed; GPTQ's bank is the default cache directory (reused when
warm: its key names the weights, calibration and level). Only the public API is used: the
runs' ``trials`` and ``configs()``, their ``space``, ``Workspace`` and ``Quality.measure``.
``same_configs`` and ``plot_fronts`` serve ``benchmarks/mnist_gptq.py`` too.

    python benchmarks/gptq_vs_rtn.py --threads 1        # ~30 min on 2 busy cores
    python benchmarks/gptq_vs_rtn.py --quick            # smoke: 2 blocks, 8 Configs, TPE

Writes ``benchmarks/results/gptq_vs_rtn.json`` and ``gptq_vs_rtn.png``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "examples")]

from optimizers import recorded, write_report  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gptq_vs_rtn.json"
METHODS = ("rtn", "gptq")


# The comparison (any model) ---------------------------------------------------------------------
def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True, default=str)


def evaluated_configs(results: Mapping[str, Any], quality: str, size: str) -> list[dict]:
    """The union of the Configs the runs measured (any fidelity), in first-seen order: each
    with the runs that tried it and, per run, its size and its value at the top budget when the
    run measured it there."""
    seen: dict[str, dict[str, Any]] = {}
    for method, result in results.items():
        frame = result.trials
        top = frame["budget"].max() if "budget" in frame else None
        for (_, row), config in zip(frame.iterrows(), result.configs(pareto=False)):
            if config is None or not _finite(row[quality]):
                continue
            entry = seen.setdefault(_key(config), {"config": dict(config), "runs": [], "run": {}})
            if method not in entry["runs"]:
                entry["runs"].append(method)
            if top is None or not _finite(row.get("budget")) or row["budget"] == top:
                entry["run"].setdefault(method, (float(row[quality]), float(row[size])))
    return list(seen.values())


def same_configs(
    results: Mapping[str, Any],
    model: Any,
    quality: Any,
    *,
    size: str,
    scale: float,
    budget: float | None = None,
    reference: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Every Config any of ``results`` (method -> ``CompressResult``) measured, measured again
    with each method's space: the quality at its full budget and the size (``size``: the runs'
    cost name; ``weight_storage_bytes * scale``: an unstructured-pruned weight's size depends
    on how many of its values the method leaves at zero), and the methods' fronts (quality
    against size, Configs within ``budget``) over that one set compared.

    ``reference``: (quality, size) for the 2-D hypervolume; default the worst value and the
    largest size seen."""
    from tradeoff.objectives import weight_storage_bytes
    from tradeoff.spaces import Workspace

    name = quality.name
    maximize = quality.direction == "maximize"
    entries = evaluated_configs(results, name, size)
    quality.prepare(model)
    start = time.perf_counter()
    for method, result in results.items():
        workspace = Workspace(result.space, model)
        for e in entries:
            compressed = workspace.assemble(e["config"])
            e.setdefault("values", {})[method] = quality.measure(compressed)
            e.setdefault("sizes", {})[method] = float(weight_storage_bytes(compressed) * scale)
        del workspace
    measure_s = time.perf_counter() - start
    fits = {m: [e for e in entries if budget is None or e["sizes"][m] <= budget] for m in results}
    if reference is None:
        worst = (min if maximize else max)(v for e in entries for v in e["values"].values())
        reference = (worst, max(s for e in entries for s in e["sizes"].values()))
    fronts = {m: front(fits[m], m, maximize) for m in results}
    return {
        "quality": name,
        "size": size,
        "maximize": maximize,
        "budget": budget,
        "reference": list(reference),
        "configs": len(entries),
        "within_budget": {m: len(f) for m, f in fits.items()},
        "configs_by_runs": {
            "+".join(runs): sum(e["runs"] == list(runs) for e in entries)
            for runs in sorted({tuple(e["runs"]) for e in entries})
        },
        "measure_s": measure_s,
        "rerun_vs_run": _rerun_check(entries),
        "hypervolume": {m: hv2(f, reference, maximize) for m, f in fronts.items()},
        "fronts": fronts,
        "unmatched": unmatched(fronts["rtn"], fronts["gptq"], maximize),
        "per_config": per_config(entries, maximize),
        "points": [
            {"runs": e["runs"], "sizes": e["sizes"], "values": e["values"], "config": e["config"]}
            for e in entries
        ],
    }


def _rerun_check(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """How far the re-measured values and sizes lie from the runs' own (full budget)."""
    pairs = [(e, m, v, s) for e in entries for m, (v, s) in e["run"].items()]
    return {
        "compared": len(pairs),
        "max_abs_diff": max((abs(e["values"][m] - v) for e, m, v, _ in pairs), default=0.0),
        "max_size_diff": max((abs(e["sizes"][m] - s) for e, m, _, s in pairs), default=0.0),
    }


def front(entries: list[dict[str, Any]], method: str, maximize: bool) -> list[dict[str, Any]]:
    """The Pareto front of ``entries`` by ``method``'s (value, size), smallest size first."""
    sign = -1.0 if maximize else 1.0
    ranked = sorted(entries, key=lambda e: (e["sizes"][method], sign * e["values"][method]))
    out: list[dict[str, Any]] = []
    for e in ranked:
        if not out or sign * e["values"][method] < sign * out[-1]["value"]:
            out.append({"size": e["sizes"][method], "value": e["values"][method],
                        "runs": e["runs"], "config": e["config"]})  # fmt: skip
    return out


def hv2(points: list[dict[str, Any]], reference: Sequence[float], maximize: bool) -> float:
    """Area dominated by a front of (value, size) points up to ``reference`` (value, size)."""
    sign = -1.0 if maximize else 1.0
    ref_q, ref_s = sign * reference[0], reference[1]
    area, best = 0.0, ref_q
    for p in sorted(points, key=lambda p: p["size"]):
        q = sign * p["value"]
        if p["size"] >= ref_s or q >= best:
            continue
        area += (best - q) * (ref_s - p["size"])
        best = q
    return area


def unmatched(
    rtn: list[dict[str, Any]], gptq: list[dict[str, Any]], maximize: bool
) -> dict[str, Any]:
    """RTN front points in GPTQ's size range with no GPTQ point as small and as good, each with
    the best GPTQ value as small and the shortfall; and the RTN points below GPTQ's range."""
    sign = -1.0 if maximize else 1.0
    smallest = min(p["size"] for p in gptq)
    out, below = [], [p for p in rtn if p["size"] < smallest]
    for p in rtn:
        if p["size"] < smallest:
            continue
        best = min(sign * q["value"] for q in gptq if q["size"] <= p["size"]) * sign
        if sign * best > sign * p["value"]:
            out.append({"size": p["size"], "rtn": p["value"], "gptq_best": best,
                        "shortfall": abs(best - p["value"])})  # fmt: skip
    return {
        "rtn_points": len(rtn),
        "gptq_points": len(gptq),
        "gptq_smallest": smallest,
        "below_gptq_range": [{"size": p["size"], "rtn": p["value"]} for p in below],
        "unmatched": out,
        "dominates_in_range": not out,
    }


def per_config(entries: list[dict[str, Any]], maximize: bool) -> dict[str, Any]:
    """GPTQ against RTN on each Config: value better, tied or worse (the ties and the worse ones
    by what they hold), size smaller, equal or larger."""
    sign = 1.0 if maximize else -1.0
    diffs = [(sign * (e["values"]["gptq"] - e["values"]["rtn"]), e) for e in entries]
    worse = [(d, e) for d, e in diffs if d < 0]
    smaller = [e["sizes"]["gptq"] - e["sizes"]["rtn"] for e in entries]
    return {
        "better": sum(d > 0 for d, _ in diffs),
        "tied": sum(d == 0 for d, _ in diffs),
        "worse": len(worse),
        "median_gain": sorted(d for d, _ in diffs)[len(diffs) // 2] if diffs else None,
        "tied_by_kind": _tally(e for d, e in diffs if d == 0),
        "worse_by_kind": _tally(e for _, e in worse),
        "gptq_smaller": sum(d < 0 for d in smaller),
        "same_size": sum(d == 0 for d in smaller),
        "gptq_larger": sum(d > 0 for d in smaller),
        "worse_configs": [
            {
                "by": -d,
                "rtn": e["values"]["rtn"],
                "gptq": e["values"]["gptq"],
                "sizes": e["sizes"],
                "kinds": describe(e["config"]),
                "config": e["config"],
            }
            for d, e in sorted(worse, key=lambda x: x[0])
        ],
    }


def _tally(entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    tags: dict[str, int] = {}
    for e in entries:
        for tag in describe(e["config"]):
            tags[tag] = tags.get(tag, 0) + 1
    return tags


def describe(config: Mapping[str, Any]) -> list[str]:
    """Tags of what a Config holds: ``all 8-bit``, ``min bits N``, ``channel pruning``,
    ``unstructured pruning``, ``blocks dropped``."""
    bits = [v for k, v in config.items() if k.endswith(".bits") and v is not None]
    dropped = [k for k, v in config.items() if k.endswith(".keep") and v is False]
    tags = []
    if bits:
        tags.append("all 8-bit" if min(bits) == 8 else f"min bits {min(bits)}")
    for k, v in config.items():
        if k.endswith(".pattern"):
            sparsity = config.get(k.replace(".pattern", ".sparsity"), 0)
            if sparsity and f"{v} pruning" not in tags:
                tags.append(f"{v} pruning")
    if dropped:
        tags.append("blocks dropped")
    return tags


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# The plot ---------------------------------------------------------------------------------------
def plot_fronts(comparison: Mapping[str, Any], path: Path, *, title: str, xlabel: str) -> None:
    """Both methods' values of every feasible Config (dots) and their fronts (staircases)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    budget, maximize = comparison["budget"], comparison["maximize"]
    for method, color in (("rtn", "C1"), ("gptq", "C0")):
        pts = [p for p in comparison["points"] if budget is None or p["sizes"][method] <= budget]
        xs, ys = [p["sizes"][method] for p in pts], [p["values"][method] for p in pts]
        ax.scatter(xs, ys, s=10, c=color, alpha=0.35)
        f = comparison["fronts"][method]
        sx, sy = [f[0]["size"]], [f[0]["value"]]
        for prev, cur in itertools.pairwise(f):
            sx += [cur["size"], cur["size"]]
            sy += [prev["value"], cur["value"]]
        ax.plot(sx, sy, c=color, lw=1.4, label=f"{method.upper()} front ({len(f)} points)")
        ax.scatter([p["size"] for p in f], [p["value"] for p in f], s=26, c=color,
                   edgecolors="k", lw=0.5, zorder=3)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel(comparison["quality"] + (" (higher is better)" if maximize else ""))
    if not maximize:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# SmolLM2 ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke: 2 blocks, 8 Configs, TPE")
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--eval-seqs", type=int, default=9)
    parser.add_argument("--calibration-seqs", type=int, default=96)
    parser.add_argument("--budget-bits", type=int, default=5)
    parser.add_argument("--optimizer", default="auto")
    parser.add_argument("--bank", default=None, help="GPTQ bank directory (default: the cache)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_trials, args.seq_len, args.eval_seqs, args.calibration_seqs = 8, 32, 3, 8
        args.budget_bits, args.optimizer = 8, "tpe"
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    import _smollm2_data as data
    import torch

    import tradeoff
    from tradeoff.objectives import KLToDense, weight_storage_bytes
    from tradeoff.spaces import QuantizationSpace

    model = data.load_model()
    if args.quick:
        model.model.layers = torch.nn.ModuleList(list(model.model.layers)[:2])
        model.config.num_hidden_layers = 2
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = model.config.layer_types[:2]
    windows = data.calibration(args.seq_len, args.eval_seqs + args.calibration_seqs)
    held_out, calibration = windows[: args.eval_seqs], windows[args.eval_seqs :]
    bits = (4, 8) if args.quick else (3, 4, 5, 6, 8)
    spec = {"bits": bits, "granularity": "group", "group_size": 64}
    space = QuantizationSpace.for_model(model, **spec)
    uniform = space.apply(model, {k: args.budget_bits for k in space})
    budget = float(weight_storage_bytes(uniform) / 1e6)
    del uniform
    results, runs = {}, {}
    for method in METHODS:
        quantize: dict[str, Any] = {**spec, "method": method}
        if method == "gptq" and args.bank:
            quantize["bank"] = args.bank
        start = time.perf_counter()
        result = tradeoff.compress(
            model, quality=KLToDense(held_out), calibration=calibration, quantize=quantize,
            drop_blocks=True, budget={"size_mb": budget}, optimizer=args.optimizer, seed=0,
            n_trials=args.n_trials, show_progress=False, notes=False,
        )  # fmt: skip
        results[method] = result
        runs[method] = {
            "wall_s": time.perf_counter() - start,
            "hypervolume": float(result.hypervolume(reference=[1.0, budget])),
            "trials": len(result.trials),
            "pareto": result.pareto[["trial", "kl", "size_mb"]].to_dict("records"),
        }
        print(f"{method}: {runs[method]}", flush=True)
    comparison = same_configs(
        results, model, KLToDense(held_out), size="size_mb", scale=1e-6, budget=budget,
        reference=(1.0, budget),
    )  # fmt: skip
    return {
        "model": "SmolLM2-135M, first 2 blocks" if args.quick else "SmolLM2-135M",
        "budget_mb": budget,
        "held_out_tokens": int(held_out.numel()),
        "calibration_tokens": int(calibration.numel()),
        "runs": runs,
        "same_configs": comparison,
    }


def print_comparison(c: Mapping[str, Any], unit: str) -> None:
    hv = c["hypervolume"]
    print(
        f"same {c['configs']} Configs ({c['within_budget']} within the budget; by runs "
        f"{c['configs_by_runs']}), measured twice in {c['measure_s']:.0f} s; 2-D hypervolume "
        f"RTN {hv['rtn']:.4g}, GPTQ {hv['gptq']:.4g}; re-measure vs run: {c['rerun_vs_run']}"
    )
    for m in METHODS:
        pts = ", ".join(f"{p['value']:.4g}@{p['size']:.1f}" for p in c["fronts"][m])
        print(f"  {m} front: {pts}")
    u = c["unmatched"]
    print(
        f"RTN front points {u['rtn_points']}, unmatched by GPTQ {len(u['unmatched'])}, "
        f"below GPTQ's smallest ({u['gptq_smallest']:.1f} {unit}): {len(u['below_gptq_range'])}"
    )
    for p in u["unmatched"]:
        print(f"  {p['size']:.1f} {unit}: RTN {p['rtn']:.4g}, GPTQ best {p['gptq_best']:.4g}")
    pc = c["per_config"]
    print(
        f"per Config: GPTQ better {pc['better']}, tied {pc['tied']} {pc['tied_by_kind']}, worse "
        f"{pc['worse']} {pc['worse_by_kind']}; GPTQ smaller {pc['gptq_smaller']}, same size "
        f"{pc['same_size']}, larger {pc['gptq_larger']}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = recorded(args, lambda: run(args), packages=("torch", "transformers"))
    comparison = report["result"]["same_configs"]
    print_comparison(comparison, "MB")
    write_report(report, args.out)
    png = args.out.with_suffix(".png")
    plot_fronts(
        comparison, png, xlabel="weights, MB",
        title=f"{report['result']['model']}: GPTQ vs RTN levels, the same "
        f"{comparison['configs']} Configs",
    )  # fmt: skip
    print(f"wrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
