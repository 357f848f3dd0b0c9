"""``tradeoff.compress`` on SmolLM2-135M: GPTQ against RTN, the knapsack, time to a first
front, and multi- against full fidelity.

Each method runs the same call: KL(dense || compressed) on held-out Hamlet windows (the
quality), block dropping and per-block bits (3, 4, 5, 6, 8; groups of 64), the size of uniform
5-bit as the budget, the knapsack's Configs and the uniform levels as starts, the default
multi-fidelity ladder, ``--n-trials`` Configs, seed 0, a fresh (cold) bank directory. It
prints, per method, the wall time, the front, the hypervolume (reference: KL 1, the budget's
size) and the baselines, then which RTN Pareto points a GPTQ point matches or dominates. On
GPTQ's run (else the first method's) it also measures:

* the knapsack (the additive proxy, the one-shot tools' method: per-layer errors, then an exact
  knapsack at 10 budgets from uniform 3-bit's size to the budget): its Configs are the search's
  first trials, measured at full fidelity; their hypervolume against the front's, the front's
  best KL at each knapsack budget, and the front's points between the knapsack's sizes that
  no knapsack point dominates;
* the time to a first front from a cold bank: bank built, knapsack measured, first trial done,
  all starting Configs done;
* the same call with ``fidelity=False`` (same bank, now warm; same ``n_trials``, so ``"auto"``
  picks the same optimizer with the same population) stopped after as long as the
  multi-fidelity search ran (``timeout=``): hypervolume over the search's wall time for both,
  and how soon the multi-fidelity search reaches the full-fidelity search's final hypervolume.

    python benchmarks/compress.py                  # ~30 min on 2 cores
    python benchmarks/compress.py --quick          # a smoke run: SmolLM2 cut to 2 blocks, TPE

Writes ``benchmarks/results/compress.json`` (command, commit, versions, machine).

``--fidelity-only`` runs only the fair multi- against full-fidelity comparison, GPTQ: the bank
directory ``--bank`` (built first, and timed, when empty; then warm for every run), the
knapsack measured at the same ``--proxy-budget`` in both runs (default ``low``: the ladder's
lowest rung, compress's own default until f01c32c; the same in both, so are its Configs, and
its measurement time is counted the same), the same ``--n-trials``, optimizer and seed, both
run to the end; per seed (the order of the two runs alternates), hypervolume over wall time
from the call's start and from the first trial, the time each needs to reach the other's final
hypervolume, the time per evaluation at each rung and the promotions; then, on one
full-fidelity run's Configs, each measured again at every rung: how well the low rungs rank
them (Spearman, and which the promotion rule would keep). ``--eval-seqs`` sets the held-out
windows (the full budget); the calibration windows stay the same, so one bank serves every
``--eval-seqs``.
GPTQ's calibration Hessians are collected (minutes on 2 cores) only by a call whose bank lacks
an entry (the first, on a cold bank); the time and the number of collections are recorded
(``hessians_s``, ``hessian_collections``), so neither run's times include them.

    python benchmarks/compress.py --fidelity-only --bank /tmp/bank --seeds 0,1
    python benchmarks/compress.py --fidelity-only --bank /tmp/bank --seeds 0,1 --eval-seqs 36 \
        --out benchmarks/results/compress_fidelity_36.json

``--equal-time SECONDS`` gives both runs the same wall time instead of the same trials: each
stops proposing ``SECONDS`` after its search starts (compress's ``timeout``; the knapsack is
measured before, the same in both), with ``--n-trials`` a cap neither should reach, the same in
both, so ``"auto"`` picks the same optimizer with the same population:

    python benchmarks/compress.py --fidelity-only --bank /tmp/bank --seeds 0,1 \
        --equal-time 300 --n-trials 2000 --rank-configs 0 \
        --out benchmarks/results/compress_fidelity_equal_time_after.json

Writes ``benchmarks/results/compress_fidelity.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from benchmarks.optimizers import recorded, write_report  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "compress.json"
FIDELITY_OUT = ROOT / "benchmarks" / "results" / "compress_fidelity.json"
WARM_OUT = ROOT / "benchmarks" / "results" / "compress_warm_bank.json"
FIRST_EVAL_SEQS = 9  # held-out windows before the calibration windows (the default eval set)
KNAPSACK_BUDGETS = 10  # compress's proxy_starts default: budgets from the cheapest level up
CHECKPOINTS = 6  # points of the hypervolume-over-time table
CAPPED = "capped multi-fidelity"  # the third run of --capped both


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small everything")
    parser.add_argument("--methods", type=lambda s: tuple(s.split(",")), default=("rtn", "gptq"))
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--eval-seqs", type=int, default=9)
    parser.add_argument("--calibration-seqs", type=int, default=96)
    parser.add_argument("--budget-bits", type=int, default=5)
    parser.add_argument("--optimizer", default="auto", help="compress's optimizer")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON results path")
    parser.add_argument(
        "--fidelity-only", action="store_true",
        help="only multi- against full fidelity (GPTQ, warm bank, same knapsack), per seed",
    )  # fmt: skip
    parser.add_argument(
        "--warm-calls", type=int, default=0,
        help="only: after a first one-trial GPTQ call on --bank, this many more, alternately "
        "on the warm bank and with its kept Hessian digests removed (collecting, as before)",
    )  # fmt: skip
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--bank", type=Path, default=None, help="bank directory to reuse")
    parser.add_argument(
        "--proxy-budget", default="low",
        help="the knapsack's budget in both runs: low (lowest rung), full, or held-out windows",
    )  # fmt: skip
    parser.add_argument(
        "--equal-time", type=float, default=None, metavar="SECONDS",
        help="with --fidelity-only: both runs stop proposing after SECONDS of search "
        "(compress's timeout), with the same --n-trials as a cap they should not reach",
    )  # fmt: skip
    parser.add_argument(
        "--capped", choices=("no", "yes", "both"), default="no",
        help="with --fidelity-only: the multi-fidelity run's ladder capped "
        "(Fidelity(capped=True): each rung sends up at most 1/eta of its Configs); both: a "
        "third run per seed, the capped ladder beside the uncapped one",
    )  # fmt: skip
    parser.add_argument(
        "--rank-configs", type=int, default=30,
        help="full-fidelity Configs measured again at every rung (0: none)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = (
            WARM_OUT if args.warm_calls else FIDELITY_OUT if args.fidelity_only else DEFAULT_OUT
        )
    if args.quick:  # budget above the cheapest level, so the knapsack has a range to spread
        args.n_trials, args.seq_len, args.eval_seqs, args.calibration_seqs = 16, 32, 3, 8
        args.budget_bits = 8
        if args.optimizer == "auto":  # auto picks BoTorch on 2 blocks: its first fit ~40 s
            args.optimizer = "tpe"
        args.rank_configs = min(args.rank_configs, 6)
    return args


def _windows(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out and calibration windows: the first ``min(eval_seqs, 9)`` windows, then the
    calibration windows, then any further held-out ones, so the calibration (and the bank)
    does not change with ``--eval-seqs``."""
    import _smollm2_data as data

    first = min(args.eval_seqs, FIRST_EVAL_SEQS)
    windows = data.calibration(args.seq_len, args.eval_seqs + args.calibration_seqs)
    calibration = windows[first : first + args.calibration_seqs]
    held_out = torch.cat([windows[:first], windows[first + args.calibration_seqs :]])
    return held_out, calibration


def run(args: argparse.Namespace) -> dict[str, Any]:
    import _smollm2_data as data

    from tradeoff.objectives import KLToDense

    model = data.load_model()
    if args.quick:
        _keep_blocks(model, 2)
    held_out, calibration = _windows(args)
    bits = (4, 8) if args.quick else (3, 4, 5, 6, 8)
    primary = "gptq" if "gptq" in args.methods else args.methods[0]
    runs: dict[str, Any] = {}
    out: dict[str, Any] = {}
    budget_mb = None
    for method in args.methods:
        print(f"-- {method}", flush=True)
        with tempfile.TemporaryDirectory(prefix="compress-") as tmp:
            quantize = {"bits": bits, "method": method, "granularity": "group", "group_size": 64}
            if budget_mb is None:  # the size of uniform budget_bits: the same for every method
                budget_mb = _uniform_size(model, quantize, args.budget_bits)
            reference = [1.0, budget_mb]

            call = functools.partial(
                _timed_compress, model, quality=KLToDense(held_out), calibration=calibration,
                quantize={**quantize, "bank": Path(tmp) / "bank"}, drop_blocks=True,
                budget={"size_mb": budget_mb}, optimizer=args.optimizer, seed=0,
                storage=f"sqlite:///{Path(tmp) / 'study.db'}", show_progress=False,
            )  # fmt: skip
            result, timing = call(study_name=method, n_trials=args.n_trials)
            print(result.report(), flush=True)
            runs[method] = _summary(result, timing, reference)
            if method == primary:
                out = _primary(method, result, timing, call, reference, args)
    return {
        "model": "SmolLM2-135M, first 2 blocks" if args.quick else "SmolLM2-135M",
        "budget_mb": budget_mb,
        "held_out_tokens": int(held_out.numel()),
        "calibration_tokens": int(calibration.numel()),
        "runs": runs,
        "comparison": _gptq_vs_rtn(runs),
        **out,
    }


def _primary(
    method: str,
    result: Any,
    timing: dict[str, Any],
    call: Callable[..., tuple[Any, dict[str, Any]]],
    reference: list[float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The knapsack, first-front and fidelity measurements on ``method``'s run."""
    knapsack = knapsack_vs_front(result, reference)
    print(_knapsack_table(knapsack), flush=True)
    print(f"-- {method}, fidelity=False, timeout {timing['search_s']:.0f} s", flush=True)
    full, full_timing = call(
        study_name=f"{method}-full", fidelity=False, n_trials=args.n_trials,
        timeout=timing["search_s"],
    )  # fmt: skip
    print(full.report(), flush=True)
    fidelity = fidelity_vs_full(result, full, reference)
    print(_fidelity_table(fidelity), flush=True)
    return {
        "method": method,
        "knapsack_vs_front": knapsack,
        "first_front": {k: timing[k] for k in FIRST_FRONT},
        "full_fidelity_run": {
            **_summary(full, full_timing, reference),
            "knapsack_vs_front": knapsack_vs_front(full, reference),
        },
        "fidelity": fidelity,
    }


def _gptq_setup(args: argparse.Namespace) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The fidelity runs' model (SmolLM2-135M; ``--quick``: its first 2 blocks), held-out and
    calibration windows, and GPTQ quantize spec."""
    import _smollm2_data as data

    model = data.load_model()
    if args.quick:
        _keep_blocks(model, 2)
    held_out, calibration = _windows(args)
    bits = (4, 8) if args.quick else (3, 4, 5, 6, 8)
    return model, held_out, calibration, {
        "bits": bits, "method": "gptq", "granularity": "group", "group_size": 64,
    }  # fmt: skip


# Multi- against full fidelity, alone -----------------------------------------------------------
def run_fidelity(args: argparse.Namespace) -> dict[str, Any]:
    """Per seed, the same GPTQ call with the default ladder and with ``fidelity=False``: warm
    bank, the same knapsack budget, the same trials, optimizer and seed (see the docstring)."""
    from tradeoff._compress import _ladder
    from tradeoff.objectives import KLToDense
    from tradeoff.search import Fidelity

    model, held_out, calibration, quantize = _gptq_setup(args)
    budget_mb = _uniform_size(model, quantize, args.budget_bits)
    reference = [1.0, budget_mb]

    ladder = _ladder(True, KLToDense(held_out)).budgets  # compress's own: (1, 3, 9) sequences
    proxy = {"low": ladder[0], "full": ladder[-1]}.get(args.proxy_budget)
    proxy = int(args.proxy_budget) if proxy is None else proxy
    out: dict[str, Any] = {
        "model": "SmolLM2-135M, first 2 blocks" if args.quick else "SmolLM2-135M",
        "budget_mb": budget_mb, "reference": reference,
        "held_out_tokens": int(held_out.numel()), "calibration_tokens": int(calibration.numel()),
        "ladder_seqs": list(ladder), "proxy_budget_seqs": proxy, "seq_len": args.seq_len,
        "n_trials": args.n_trials, "optimizer": args.optimizer, "seeds": args.seeds,
        "equal_time_s": args.equal_time, "capped": args.capped,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="compress-fidelity-") as tmp, _hessians_once() as once:
        bank = args.bank or Path(tmp) / "bank"
        call = functools.partial(
            _timed_compress, model, calibration=calibration, quantize={**quantize, "bank": bank},
            drop_blocks=True, budget={"size_mb": budget_mb}, optimizer=args.optimizer,
            show_progress=False,
        )  # fmt: skip
        warm = bank.is_dir() and any(bank.iterdir())
        t0 = time.perf_counter()  # builds the bank if it is cold; warm: only checks it
        call(
            quality=KLToDense(held_out), n_trials=1, fidelity=False, baselines=False, seed=0,
            storage=f"sqlite:///{Path(tmp) / 'bank.db'}", study_name="bank",
        )  # fmt: skip
        out["bank"] = {
            "was_warm": warm, "call_s": time.perf_counter() - t0, "hessians_s": once["s"],
        }  # fmt: skip
        n_before = once["n"]
        print(f"bank {'warm' if warm else 'built'}: {out['bank']['call_s']:.0f} s", flush=True)
        ladders: dict[str, Any] = {"multi-fidelity": Fidelity(ladder, capped=args.capped == "yes")}
        if args.capped == "both":
            ladders[CAPPED] = Fidelity(ladder, capped=True)
        ladders["full fidelity"] = False  # the runs' order: this one last (first for odd seeds)
        pairs, rank_check = [], None
        for i, seed in enumerate(args.seeds):
            order = tuple(ladders)[:: 1 if i % 2 == 0 else -1]
            runs: dict[str, Any] = {}
            for name in order:
                print(f"-- seed {seed}, {name}", flush=True)
                result, timing = call(
                    quality=KLToDense(held_out), fidelity=ladders[name], seed=seed,
                    proxy_budget=proxy, n_trials=args.n_trials, study_name=f"{name}-{seed}",
                    storage=f"sqlite:///{Path(tmp) / f'{seed}.db'}", timeout=args.equal_time,
                )  # fmt: skip
                runs[name] = (result, timing)
            mf, full = runs["multi-fidelity"], runs["full fidelity"]
            pair = {
                "seed": seed, "order": list(order),
                "runs": {n: _fidelity_run(r, t, reference) for n, (r, t) in runs.items()},
                "from_first_trial": fidelity_vs_full(mf[0], full[0], reference),
                "from_call_start": fidelity_vs_full(
                    mf[0], full[0], reference,
                    offsets=(mf[1]["first_start_s"], full[1]["first_start_s"]),
                ),
                "same_knapsack": _knapsack_keys(mf[0]) == _knapsack_keys(full[0]),
            }  # fmt: skip
            if CAPPED in runs:
                capped = runs[CAPPED]
                pair["capped"] = {
                    "from_first_trial": fidelity_vs_full(capped[0], full[0], reference),
                    "from_call_start": fidelity_vs_full(
                        capped[0], full[0], reference,
                        offsets=(capped[1]["first_start_s"], full[1]["first_start_s"]),
                    ),
                    "against_uncapped": fidelity_vs_full(
                        capped[0], mf[0], reference,
                        offsets=(capped[1]["first_start_s"], mf[1]["first_start_s"]),
                    ),
                }  # fmt: skip
                del capped
            print(_fidelity_table(pair["from_call_start"], "the call's start"), flush=True)
            print(_rung_line(pair["runs"]), flush=True)
            pairs.append(pair)
            if rank_check is None and args.rank_configs:
                rank_check = rank_agreement(full[0], model, held_out, ladder, args.rank_configs)
                print(_rank_line(rank_check), flush=True)
            # A result holds its search's models (gigabytes for SmolLM2): with --capped both,
            # two seeds' results kept at once ran the 24 GiB machine out of memory.
            del runs, mf, full
            gc.collect()
        out["bank"]["hessian_collections_after_it"] = once["n"] - n_before  # expected: 0
    out["pairs"] = pairs
    out["summary"] = _fidelity_summary(pairs)
    if args.capped == "both":
        out["summary_capped"] = _fidelity_summary([p["capped"] for p in pairs])
    out["rank_check"] = rank_check
    return out


def run_warm_calls(args: argparse.Namespace) -> dict[str, Any]:
    """One-trial calls of the fidelity runs' GPTQ compress on one bank: a first call builds
    what the bank lacks (collecting the Hessians if it does); then ``--warm-calls`` calls
    alternate between the warm bank as it is (no Hessians collected) and the same bank with
    its kept Hessian digests removed first, so the call collects them as every call did
    before they were kept ("as before"; which comes first alternates per pair). Each call's
    seconds, Hessian collections and their seconds, and the load."""
    import tradeoff
    from tradeoff.objectives import KLToDense

    model, held_out, calibration, quantize = _gptq_setup(args)
    calls = []
    with tempfile.TemporaryDirectory(prefix="compress-warm-") as tmp, _hessians_once() as once:
        bank = args.bank or Path(tmp) / "bank"
        entries = lambda: sum(1 for p in bank.glob("*.safetensors")) if bank.is_dir() else 0  # noqa: E731
        kinds = ["first"] + [
            ("warm", "as before")[(k + k // 2) % 2] for k in range(args.warm_calls)
        ]  # warm, as before; as before, warm; ...
        for k, kind in enumerate(kinds):
            if kind == "as before":
                for path in bank.glob("hessians-*.json"):
                    path.unlink()
            n, before, t0 = once["n"], entries(), time.perf_counter()
            tradeoff.compress(
                model, quality=KLToDense(held_out), calibration=calibration,
                quantize={**quantize, "bank": bank}, drop_blocks=True, n_trials=1,
                fidelity=False, baselines=False, seed=0, show_progress=False,
                storage=f"sqlite:///{Path(tmp) / 'warm.db'}", study_name=f"call-{k}",
            )  # fmt: skip
            calls.append({
                "call": k, "kind": kind, "call_s": time.perf_counter() - t0,
                "hessian_collections": once["n"] - n,
                "hessians_s": once["s"] if once["n"] > n else None,
                "entries_built": entries() - before, "load_avg_1_at_end": _load(),
            })  # fmt: skip
            print(calls[-1], flush=True)
    median = {
        kind: float(np.median([c["call_s"] for c in calls if c["kind"] == kind]))
        for kind in ("warm", "as before") if any(c["kind"] == kind for c in calls)
    }  # fmt: skip
    return {
        "model": "SmolLM2-135M, first 2 blocks" if args.quick else "SmolLM2-135M",
        "calibration_tokens": int(calibration.numel()), "bits": list(quantize["bits"]),
        "bank_was_given": args.bank is not None, "calls": calls, "median_call_s": median,
    }  # fmt: skip


@contextlib.contextmanager
def _hessians_once() -> Iterator[dict[str, Any]]:
    """Times GPTQ's Hessian collections (``s``: the last one's seconds; ``n``: how many)."""
    from tradeoff.spaces._quantizers import HessianSource

    real, info = HessianSource.collect, {"s": None, "n": 0}

    def timed(source: HessianSource, **kwargs: Any) -> Any:
        t = time.perf_counter()
        found = real(source, **kwargs)
        info["s"], info["n"] = time.perf_counter() - t, info["n"] + 1
        return found

    HessianSource.collect = timed  # type: ignore[method-assign]
    try:
        yield info
    finally:
        HessianSource.collect = real  # type: ignore[method-assign]


def _knapsack_keys(result: Any) -> list[Any]:
    from tradeoff._compress import BASELINES_ATTR, STARTS, config_key

    configs = result.study.user_attrs.get(BASELINES_ATTR, {}).get(STARTS, [])
    return [config_key(c) for c in configs]


def _fidelity_run(result: Any, timing: dict[str, Any], reference: list[float]) -> dict[str, Any]:
    """A run's times, hypervolume, and its evaluations per rung: how many, seconds each
    (``duration_s``: model built from the bank + KL), and how many were promotions."""
    frame = result.trials
    rungs: list[dict[str, Any]] = []
    if "rung" in frame:
        for rung, rows in frame.dropna(subset=["rung"]).groupby("rung"):
            rungs.append({
                "rung": int(rung), "seqs": _plain(rows["budget"].iloc[0]),
                "evaluations": len(rows), "mean_s": float(rows["duration_s"].mean()),
                "total_s": float(rows["duration_s"].sum()),
            })  # fmt: skip
    ok = frame[frame["status"].isin(["complete", "pruned"])]
    return {
        "timing": timing,
        "trials": len(frame),
        "statuses": {str(k): int(v) for k, v in frame["status"].value_counts().items()},
        "hypervolume": float(result.hypervolume(reference=reference)),
        "mean_evaluation_s": float(ok["duration_s"].mean()),
        "evaluation_s_total": float(ok["duration_s"].sum()),
        "rungs": rungs,
        "pareto": result.pareto[["trial", "kl", "size_mb"]].to_dict("records"),
    }


def rank_agreement(
    result: Any, model: Any, held_out: torch.Tensor, ladder: tuple[float, ...], n: int
) -> dict[str, Any]:
    """Up to ``n`` of ``result``'s complete Configs (a full-fidelity run: the search's own
    first, then the starts), each built from the bank and measured at every rung: seconds to
    build, seconds per rung, Spearman of each rung's KL with the full budget's, and the overlap
    of the best third (``rank``, the promotion order, on KL and size) at each rung with it."""
    from scipy.stats import spearmanr

    from tradeoff.objectives import KLToDense
    from tradeoff.search._asha import rank

    quality = KLToDense(held_out)
    quality.prepare(model)
    frame = result.trials
    ok = frame[(frame["status"] == "complete")]
    starts = set(_start_trials(result))
    picked = [n for n in ok["trial"] if n not in starts] + [n for n in ok["trial"] if n in starts]
    picked = picked[:n]
    kl = np.zeros((len(picked), len(ladder)))
    build_s, measure_s = [], np.zeros(len(ladder))
    for i, number in enumerate(picked):
        t = time.perf_counter()
        compressed = result.model(int(number))
        build_s.append(time.perf_counter() - t)
        for j, tokens in enumerate(ladder):
            t = time.perf_counter()
            kl[i, j] = quality.measure(compressed, tokens)
            measure_s[j] += time.perf_counter() - t
    size = ok.set_index("trial").loc[picked, "size_mb"].to_numpy(float)
    top = len(ladder) - 1
    keep = max(1, len(picked) // 3)
    best = {
        j: set(rank(np.c_[kl[:, j], size], np.zeros(len(picked)))[:keep]) for j in range(top + 1)
    }
    return {
        "configs": [int(x) for x in picked], "seqs": list(ladder),
        "kl": kl.tolist(), "size_mb": size.tolist(),
        "recorded_full_kl": ok.set_index("trial").loc[picked, "kl"].astype(float).tolist(),
        "build_s_mean": float(np.mean(build_s)),
        "measure_s_mean": (measure_s / max(1, len(picked))).tolist(),
        "spearman_with_full": [float(spearmanr(kl[:, j], kl[:, top])[0]) for j in range(top)],
        "best_third": keep,
        "best_third_overlap_with_full": [len(best[j] & best[top]) for j in range(top)],
    }  # fmt: skip


def _fidelity_summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    def column(key: str, view: str = "from_call_start") -> list[Any]:
        return [p[view][key] for p in pairs]

    return {
        view: {
            k: column(k, view)
            for k in (
                "full_final_hypervolume", "mf_final_hypervolume", "full_reached_its_final_s",
                "mf_reached_full_final_s", "saving", "mf_reached_its_final_s",
                "full_reached_mf_final_s", "saving_at_mf_final", "end_s",
            )
        }
        for view in ("from_call_start", "from_first_trial")
    }  # fmt: skip


def _rung_line(runs: dict[str, Any]) -> str:
    parts = []
    for name, r in runs.items():
        per = (
            ", ".join(
                f"rung {g['rung']} ({g['seqs']} seqs): {g['evaluations']} x {g['mean_s']:.2f} s"
                for g in r["rungs"]
            )
            or f"{r['trials']} x {r['mean_evaluation_s']:.2f} s"
        )
        parts.append(f"{name}: HV {r['hypervolume']:.3f}, {per}")
    return "\n".join(parts)


def _rank_line(r: dict[str, Any]) -> str:
    rho = ", ".join(
        f"{t} seqs {s:.2f} ({o}/{r['best_third']} of the best third)"
        for t, s, o in zip(r["seqs"], r["spearman_with_full"], r["best_third_overlap_with_full"])
    )
    times = ", ".join(f"{s:.2f}" for s in r["measure_s_mean"])
    return (
        f"{len(r['configs'])} Configs measured again: build {r['build_s_mean']:.2f} s, KL at "
        f"each rung {times} s; Spearman with the full budget: {rho}"
    )


def _keep_blocks(model: Any, n: int) -> None:
    """Cut the model to its first ``n`` blocks (the quick run's tiny model)."""
    model.model.layers = torch.nn.ModuleList(list(model.model.layers)[:n])
    model.config.num_hidden_layers = n
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:n]


# Timing -----------------------------------------------------------------------------------------
FIRST_FRONT = ("bank_s", "knapsack_s", "first_trial_s", "starts_done_s", "wall_s")


class _BankLog(logging.Handler):
    """Keeps the time of the variant bank's last "job done" record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("variant bank: job"):
            self.last = record.created


def _timed_compress(model: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """``compress(model, **kwargs)`` and, in seconds from the call: when the bank was built
    (its last job; None with a warm bank), when the first trial started (the knapsack was
    measured by then), when the first feasible trial finished (a front), when every starting
    Config had finished, and the search's span (first trial start to last finish)."""
    import tradeoff
    from tradeoff._compress_baselines import Baselines

    logger, handler = logging.getLogger("tradeoff.spaces"), _BankLog()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    start, t0 = datetime.now(), time.perf_counter()  # naive local time, as Optuna's
    proxy, marks = Baselines.proxy_starts, []

    def timed_proxy(*args: Any, **kw: Any) -> Any:  # when the knapsack is measured
        marks.append(time.perf_counter() - t0)
        try:
            return proxy(*args, **kw)
        finally:
            marks.append(time.perf_counter() - t0)

    Baselines.proxy_starts = timed_proxy  # type: ignore[method-assign]
    try:
        result = tradeoff.compress(model, **kwargs)
    finally:
        Baselines.proxy_starts = proxy  # type: ignore[method-assign]
        logger.removeHandler(handler)
        logger.setLevel(level)
    wall = time.perf_counter() - t0
    trials = {t.number: t for t in result.study.get_trials(deepcopy=False)}
    frame = result.trials

    def since(stamp: datetime) -> float:
        return (stamp - start).total_seconds()

    done = frame[(frame["status"] == "complete") & frame["feasible"]]["trial"]
    starts = _start_trials(result)
    first = min(since(t.datetime_start) for t in trials.values() if t.datetime_start)
    bank = None if handler.last is None else handler.last - start.timestamp()
    return result, {
        "wall_s": wall,
        "bank_s": bank,
        "knapsack_s": first - (bank or 0.0),
        "first_trial_s": min((since(trials[n].datetime_complete) for n in done), default=None),
        "starts_done_s": max((since(trials[n].datetime_complete) for n in starts), default=None),
        "first_start_s": first,
        "proxy_from_s": marks[0] if marks else None,  # the knapsack's measurement, from..to
        "proxy_to_s": marks[-1] if marks else None,
        "search_s": max(since(t.datetime_complete) for t in trials.values() if t.datetime_complete)
        - first,
        "start_trials": sorted(starts),
        "starts_are_the_first_trials": sorted(starts) == list(range(len(starts))),
        "load_avg_1_at_end": _load(),
    }


def _load() -> float:
    import os

    return round(os.getloadavg()[0], 2)


# What a run found -------------------------------------------------------------------------------
def _summary(result: Any, timing: dict[str, Any], reference: list[float]) -> dict[str, Any]:
    front = result.pareto[["trial", "kl", "size_mb"]]
    statuses = result.trials["status"].value_counts()
    return {
        "wall_s": timing["wall_s"],
        "timing": timing,
        "trials": len(result.trials),
        "configs_complete": int(statuses.get("complete", 0)),
        "statuses": {str(k): int(v) for k, v in statuses.items()},
        "hypervolume": float(result.hypervolume(reference=reference)),
        "pareto": front.to_dict("records"),
        "baselines": [
            {k: _plain(row[k]) for k in ("baseline", "kind", "trial", "kl", "size_mb", "feasible")}
            for _, row in result.baselines.iterrows()
        ],
    }


def _gptq_vs_rtn(runs: dict[str, Any]) -> dict[str, Any]:
    if not {"rtn", "gptq"} <= set(runs):
        return {}
    gptq = runs["gptq"]["pareto"]
    return {
        "rtn_points": len(runs["rtn"]["pareto"]),
        "rtn_points_matched_or_dominated_by_gptq": sum(
            any(g["kl"] <= r["kl"] and g["size_mb"] <= r["size_mb"] for g in gptq)
            for r in runs["rtn"]["pareto"]
        ),
    }


def _start_trials(result: Any) -> set[int]:
    """The trials of the starting Configs: the uniform levels within the budget (the first
    trial of each, should the search propose one again) and the knapsack's."""
    from tradeoff._compress import config_key

    first = _first_trials(result)
    uniform = result.baselines.query("kind == 'uniform'").dropna(subset=["trial"])
    hits = (first.get(config_key(c)) for c in uniform["config"])
    return {int(row["trial"]) for row in hits if row is not None} | {
        p["trial"] for p in _knapsack_trials(result)
    }


def _first_trials(result: Any) -> dict[Any, Any]:
    """The first complete trial (a row of ``result.trials``) of each Config, by its key."""
    from tradeoff._compress import config_key

    frame = result.trials
    first: dict[Any, Any] = {}
    for (_, row), config in zip(frame.iterrows(), result.configs(pareto=False)):
        if row["status"] == "complete":
            first.setdefault(config_key(config), row)
    return first


def _knapsack_trials(result: Any) -> list[dict[str, Any]]:
    """The knapsack's Configs (recorded on the study) with the trials that measured them."""
    from tradeoff._compress import BASELINES_ATTR, STARTS, config_key

    configs = result.study.user_attrs.get(BASELINES_ATTR, {}).get(STARTS, [])
    frame = result.trials
    first = _first_trials(result)
    top = frame.loc[frame["status"] == "complete", "budget"].max() if "budget" in frame else None
    out = []
    for config in configs:
        row = first.get(config_key(config))
        if row is None:  # not run (n_trials smaller than the starts): no value to compare
            continue
        budget = row.get("budget") if top is not None else None
        out.append({
            "trial": int(row["trial"]), "kl": float(row["kl"]), "size_mb": float(row["size_mb"]),
            "full_fidelity": bool(budget is None or np.isnan(budget) or budget == top),
        })  # fmt: skip
    return sorted(out, key=lambda p: p["size_mb"])


def points_hypervolume(points: list[dict[str, Any]], reference: list[float]) -> float:
    """The hypervolume of ``points`` (``kl``, ``size_mb``) against ``reference``; 0 for none."""
    from tradeoff._pareto import hypervolume

    values = np.array([[p["kl"], p["size_mb"]] for p in points]).reshape(-1, 2)
    return float(hypervolume(values, np.array(reference))) if len(points) else 0.0


def knapsack_vs_front(result: Any, reference: list[float]) -> dict[str, Any]:
    """The knapsack's Configs against the search's front: hypervolumes, the best KL at each
    knapsack budget, and the front's points between the knapsack's sizes it does not dominate."""
    knap = _knapsack_trials(result)
    starts = _start_trials(result)
    frame = result.trials
    ok = frame[(frame["status"] == "complete") & frame["feasible"]]
    front = result.pareto[["trial", "kl", "size_mb"]].to_dict("records")
    search = ok[~ok["trial"].isin(starts)][["trial", "kl", "size_mb"]].to_dict("records")
    uniform = result.baselines.query("kind == 'uniform'")["size_mb"]
    budgets = np.linspace(float(uniform.min()), reference[1], KNAPSACK_BUDGETS)

    rows = []
    for budget in budgets:
        pick = _best(knap, budget, key=lambda p: (-p["size_mb"], p["kl"]))
        best, own = _best(front, budget), _best(search, budget)
        rows.append({
            "budget_mb": float(budget), "knapsack": pick, "front": best, "search_only": own,
            "front_better": bool(pick and best and best["kl"] < pick["kl"]),
            "search_only_better": bool(pick and own and own["kl"] < pick["kl"]),
        })  # fmt: skip
    sizes = sorted({p["size_mb"] for p in knap})
    gaps = []
    for low, high in itertools.pairwise(sizes):
        between = [p for p in front if low < p["size_mb"] < high and not _dominated(p, knap)]
        gaps.append({"from_mb": low, "to_mb": high, "undominated_front_points": between})
    return {
        "budgets_mb": [float(b) for b in budgets],
        "configs": knap,
        "all_full_fidelity": all(p["full_fidelity"] for p in knap),
        "start_trials": sorted(starts),
        "hypervolume_knapsack": points_hypervolume(knap, reference),
        "hypervolume_starts": points_hypervolume(
            [p for p in ok.to_dict("records") if p["trial"] in starts], reference
        ),
        "hypervolume_front": float(result.hypervolume(reference=reference)),
        "at_budgets": rows,
        "budgets_front_better": sum(r["front_better"] for r in rows),
        "budgets_search_only_better": sum(r["search_only_better"] for r in rows),
        "between": gaps,
        "gaps_beaten": sum(bool(g["undominated_front_points"]) for g in gaps),
    }


def _best(
    points: list[dict[str, Any]], budget: float, key: Callable[[dict[str, Any]], Any] | None = None
) -> dict[str, Any] | None:
    """The point of least KL (or least ``key``) with size at most ``budget``."""
    fits = [p for p in points if p["size_mb"] <= budget + 1e-9]
    if not fits:
        return None
    p = min(fits, key=key or (lambda p: p["kl"]))
    return {"trial": int(p["trial"]), "kl": float(p["kl"]), "size_mb": float(p["size_mb"])}


def _dominated(p: dict[str, Any], others: list[dict[str, Any]]) -> bool:
    return any(o["kl"] <= p["kl"] and o["size_mb"] <= p["size_mb"] for o in others)


def fidelity_vs_full(
    mf: Any, full: Any, reference: list[float], offsets: tuple[float, float] = (0.0, 0.0)
) -> dict[str, Any]:
    """Hypervolume over wall time of both runs, from each search's first trial's start (or,
    with ``offsets``, each one's seconds from its call's start to its first trial, from the
    call's start), when each reaches the other's final hypervolume, and the savings:
    ``1 - t_mf / t_full`` at the full-fidelity run's final hypervolume (``saving``) and at the
    multi-fidelity run's (``saving_at_mf_final``)."""
    curves = {}
    for (name, r), offset in zip((("multi-fidelity", mf), ("full fidelity", full)), offsets):
        curve = r.hypervolume_curve(x="time", reference=reference)
        curve["time"] = curve["time"] + offset
        curves[name] = curve
    final = float(curves["full fidelity"]["hypervolume"].iloc[-1])
    mf_final = float(curves["multi-fidelity"]["hypervolume"].iloc[-1])

    def reached(curve: Any, value: float) -> float | None:
        hit = curve[curve["hypervolume"] >= value - 1e-12]
        return float(hit["time"].iloc[0]) if len(hit) else None

    def saving(t_mf: float | None, t_full: float | None) -> float | None:
        return None if t_mf is None or not t_full else 1.0 - t_mf / t_full

    t_full, t_mf = reached(curves["full fidelity"], final), reached(curves["multi-fidelity"], final)
    t_mf_own = reached(curves["multi-fidelity"], mf_final)
    t_full_mf = reached(curves["full fidelity"], mf_final)
    end = max(float(c["time"].iloc[-1]) for c in curves.values())
    marks = [float(t) for t in np.linspace(end / CHECKPOINTS, end, CHECKPOINTS)]
    return {
        "offsets_s": list(offsets),
        "full_final_hypervolume": final,
        "mf_final_hypervolume": mf_final,
        "full_reached_its_final_s": t_full,
        "mf_reached_full_final_s": t_mf,
        "saving": saving(t_mf, t_full),
        "mf_reached_its_final_s": t_mf_own,
        "full_reached_mf_final_s": t_full_mf,
        "saving_at_mf_final": saving(t_mf_own, t_full_mf),
        "end_s": {name: float(c["time"].iloc[-1]) for name, c in curves.items()},
        "checkpoints_s": marks,
        "at_checkpoints": {name: [_at(c, t) for t in marks] for name, c in curves.items()},
        "curves": {
            name: [[float(t), float(h)] for t, h in zip(c["time"], c["hypervolume"])]
            for name, c in curves.items()
        },
    }


def _at(curve: Any, t: float) -> float:
    seen = curve[curve["time"] <= t + 1e-9]["hypervolume"]
    return float(seen.iloc[-1]) if len(seen) else 0.0


# Printing ---------------------------------------------------------------------------------------
def _knapsack_table(k: dict[str, Any]) -> str:
    def cell(p: dict[str, Any] | None) -> str:
        return "-" if p is None else f"{p['kl']:.4f} ({p['size_mb']:.1f} MB, #{p['trial']})"

    lines = [
        f"knapsack vs front: hypervolume {k['hypervolume_knapsack']:.3f} (knapsack alone), "
        f"{k['hypervolume_starts']:.3f} (all starts), {k['hypervolume_front']:.3f} (front)",
        f"{'budget MB':>10}  {'knapsack':<28}  {'front':<28}  search trials only",
    ]
    for r in k["at_budgets"]:
        knap, front, own = (cell(r[x]) for x in ("knapsack", "front", "search_only"))
        lines.append(f"{r['budget_mb']:>10.1f}  {knap:<28}  {front:<28}  {own}")
    for g in k["between"]:
        points = ", ".join(
            f"#{p['trial']} {p['kl']:.4f} at {p['size_mb']:.1f}"
            for p in g["undominated_front_points"]
        )
        lines.append(f"between {g['from_mb']:.1f} and {g['to_mb']:.1f} MB: {points or '-'}")
    return "\n".join(lines)


def _fidelity_table(f: dict[str, Any], since: str = "the search's first trial") -> str:
    head = "seconds        " + " ".join(f"{t:>7.0f}" for t in f["checkpoints_s"])
    rows = [
        f"{name:<15}" + " ".join(f"{h:>7.3f}" for h in values)
        for name, values in f["at_checkpoints"].items()
    ]
    t_mf, t_full, saving = f["mf_reached_full_final_s"], f["full_reached_its_final_s"], f["saving"]
    tail = (
        f"multi-fidelity reaches the full-fidelity final {f['full_final_hypervolume']:.3f} "
        + ("never" if t_mf is None else f"after {t_mf:.0f} s")
        + f" (full fidelity: {t_full:.0f} s)"
        + ("" if saving is None else f": {abs(100 * saving):.0f}% ")
        + ("" if saving is None else "less wall time" if saving >= 0 else "more wall time")
    )
    t_own, t_full_mf, back = (
        f["mf_reached_its_final_s"],
        f["full_reached_mf_final_s"],
        f["saving_at_mf_final"],
    )
    if t_own is not None:
        tail += (
            f"\nmulti-fidelity has its final {f['mf_final_hypervolume']:.3f} after {t_own:.0f} s, "
            + (
                "full fidelity never"
                if t_full_mf is None
                else f"full fidelity after {t_full_mf:.0f} s"
            )
            + ("" if back is None else f" (saving {100 * back:.0f}%)")
        )
    return "\n".join([f"hypervolume over wall time from {since}:", head, *rows, tail])


def _uniform_size(model: Any, quantize: dict[str, Any], bits: int) -> float:
    from tradeoff.objectives import weight_storage_bytes
    from tradeoff.spaces import QuantizationSpace

    spec = {k: v for k, v in quantize.items() if k != "method"}
    space = QuantizationSpace.for_model(model, **spec)
    return float(weight_storage_bytes(space.apply(model, {k: bits for k in space})) / 1e6)


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and np.isnan(value) else value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.warm_calls:
        report = recorded(args, lambda: run_warm_calls(args), packages=("transformers",))
        for call in report["result"]["calls"]:
            print(
                f"call {call['call']} ({call['kind']}): {call['call_s']:.1f} s, Hessian "
                f"collections {call['hessian_collections']} ({call['hessians_s'] or 0:.1f} s), "
                f"bank entries built {call['entries_built']}"
            )
        write_report(report, args.out)
        print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
        return 0
    if args.fidelity_only:
        report = recorded(args, lambda: run_fidelity(args), packages=("transformers",))
        report["machine"]["load_avg_1_at_end"] = _load()
        summary = report["result"]["summary"]["from_call_start"]
        print(f"saving (reach full fidelity's final): {summary['saving']}")
        print(f"saving (reach multi-fidelity's final): {summary['saving_at_mf_final']}")
        if "summary_capped" in report["result"]:
            capped = report["result"]["summary_capped"]["from_call_start"]
            print(f"capped: saving (reach full fidelity's final): {capped['saving']}")
            print(f"capped: final hypervolume {capped['mf_final_hypervolume']}")
        write_report(report, args.out)
        print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
        return 0
    report = recorded(args, lambda: run(args), packages=("transformers", "safetensors"))
    result = report["result"]
    for method, r in result["runs"].items():
        print(f"{method}: {r['wall_s']:.0f} s, HV {r['hypervolume']:.3f}, {r['trials']} trials")
    print(result["comparison"])
    if "first_front" in result:
        ff = result["first_front"]
        print(
            f"first front ({result['method']}, cold bank): bank {ff['bank_s'] or 0:.0f} s, "
            f"knapsack by {ff['bank_s'] or 0:.0f}+{ff['knapsack_s']:.0f} s, first trial done "
            f"at {ff['first_trial_s']:.0f} s, all starts at {ff['starts_done_s']:.0f} s"
        )
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
