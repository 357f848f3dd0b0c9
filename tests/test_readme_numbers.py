"""The README's figures against the JSON under ``benchmarks/results/`` they come from.

Each check reads a README passage (a table, found by its header row, or a pattern over the
prose, whitespace-normalised) and yields ``(what, text, value)``: the README's ``text`` must be
``value`` formatted to the digits the README shows (``0.629`` is 0.6290..., ``15,793`` is
15793.0..., ``96.9%`` is 0.9691...), or equal ``value`` when that is a string. So a figure fails
the test when the README or the JSON changes without the other. Every README table with
figures must be read by a check, and every JSON a check reads must record its command, commit,
versions and machine (but for the files in ``LEGACY``, made before that rule; each needs a
re-run of its command, and the test fails once one has the fields, so the list shrinks).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = (ROOT / "README.md").read_text()
PROSE = " ".join(README.replace("**", "").split())  # bold carries no figure

METHODS = ("channel", "unstructured")
Figure = tuple[str, str, Any]  # what, the README's text, the JSON's value (number or string)
CHECKS: dict[str, tuple[tuple[str, ...], Callable[[], Iterator[Figure]]]] = {}
TABLES_READ: set[str] = set()

# Missing provenance fields of result files written before every benchmark recorded them.
LEGACY = {
    "storage_load.json": {"command", "commit"},
    "smollm2_compress_v1.json": {"commit", "versions", "machine"},  # the hand-built example
    "minilm_peft_optimize.json": {"commit", "versions", "machine"},  # the optimize example
    "minilm_peft_seed1.json": {"commit", "versions", "machine"},
}


def check(*files: str) -> Callable[[Callable[[], Iterator[Figure]]], Any]:
    def register(fn: Callable[[], Iterator[Figure]]) -> Any:
        CHECKS[fn.__name__] = (files, fn)
        return fn

    return register


@cache
def load(name: str) -> Any:
    return json.loads((RESULTS / name).read_text())


def table(header: str) -> list[list[str]]:
    """The body rows (cells, ``**`` removed) of the README table whose header row starts
    with ``header``."""
    lines = README.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert len(starts) == 1, f"{len(starts)} README tables start with {header!r}"
    TABLES_READ.add(lines[starts[0]])
    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("**", "") for c in line.strip().strip("|").split("|")])
    return rows


def grab(pattern: str, *, count: int | None = 1) -> list[tuple[str, ...]]:
    """Every match of ``pattern`` in the prose, as group tuples (``count`` of them)."""
    found = [m.groups() for m in re.finditer(pattern, PROSE)]
    assert found, f"the README no longer says {pattern!r}"
    assert count is None or len(found) == count, f"{len(found)} matches of {pattern!r}"
    return found


def clean_clone(
    rep: dict[str, Any], commit: str, lo: str, hi: str, *, one_minute: bool = False
) -> Iterator[Figure]:
    """The commit the README names for a report (made from a clean checkout) and the load
    average range it gives (over the 1-, 5- and 15-minute averages at start and end, or the
    1-minute ones only)."""
    m = rep["machine"]
    loads = m["load_avg_1_5_15_at_start"] + m["load_avg_1_5_15_at_end"]
    if one_minute:
        loads = [loads[0], loads[3]]
    yield "commit", commit, m["tradeoff_commit"]
    yield "clean", str(m["tradeoff_dirty"]), "False"
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)


def shown(text: str, value: Any) -> bool:
    """Whether the README's ``text`` shows ``value`` (a number at the digits shown)."""
    if isinstance(value, str):
        return text == value
    t = text.replace(",", "").replace("**", "").strip()
    decimals = len(t.split(".")[1]) if "." in t else 0
    return format(float(value), f".{decimals}f") == t


# The main job ------------------------------------------------------------------------------------
def _tokens(line: str) -> list[str]:
    return line.replace(",", " ").split()


def _kb(config: dict[str, Any], kind: str) -> dict[str, Any]:
    """``{layer: value}`` of one knob kind (``bits``, ``sparsity``, ``pattern``)."""
    return {k.split(".")[1]: v for k, v in config.items() if k.endswith(f".{kind}")}


@check("mnist.json")
def main_job_table() -> Iterator[Figure]:
    rep = load("mnist.json")
    block = README.split("What `make run` prints:\n\n```text\n", 1)[1].split("\n```", 1)[0]
    TABLES_READ.add("What `make run` prints:")
    yield "printed table", block, "\n".join(rep["table"])
    lines = [_tokens(line) for line in rep["table"]]
    for p in rep["pareto"]:  # the printed table is the JSON's run
        row = [str(p["trial"]), *(f"{p[k]:.5g}" for k in ("accuracy", "size_kb", "mbitops"))]
        yield f"Pareto row #{p['trial']} printed", str(row in lines), "True"
    for b in rep["baselines"]:
        values = " ".join(f"{b[k]:.5g}" for k in ("accuracy", "size_kb", "mbitops"))
        who = [f"#{t}" for t in b["dominated_by"]]
        more = f" (+{len(who) - 4})" if len(who) > 4 else ""
        row = f"{b['baseline']} {values} {b['feasible']} {' '.join(who[:4]) or '-'}{more}"
        yield f"baseline {b['baseline']} printed", str(_tokens(row) in lines), "True"
    st = rep["settings"]
    yield "optimizer line", rep["table"][0].split(",")[0], f"optimizer auto -> {st['optimizer']}"


@check("mnist.json", "mnist_optimize.json")
def main_job_prose() -> Iterator[Figure]:
    rep, old = load("mnist.json"), load("mnist_optimize.json")
    st, walls = rep["settings"], rep["wall_s"]
    ((low, high),) = grab(r"`make run` \((\d+)-(\d+) s on 2 cores, plus a one-time install\)")
    yield "make run wall time (low)", low, min(walls)
    yield "make run wall time (high)", high, max(walls)
    ((low, high, load_lo, load_hi, old_lo, old_hi),) = grab(
        r"(\d+)-(\d+) s each on 2 cores \(load average ([\d.]+)-([\d.]+); the version on "
        r"`optimize` took (\d+)-(\d+) s"
    )
    yield "evidence wall time (low)", low, min(walls)
    yield "evidence wall time (high)", high, max(walls)
    yield "load average at the start", load_lo, rep["machine"]["load_avg_1_5_15_at_start"][0]
    yield "load average at the end", load_hi, rep["machine"]["load_avg_1_5_15_at_end"][0]
    yield "optimize version wall (low)", old_lo, min(load("mnist_optimize.json")["wall_s"])
    yield "optimize version wall (high)", old_hi, max(load("mnist_optimize.json")["wall_s"])
    ((runs,),) = grab(r"\(command, commit, versions, machine\): (\d+) runs, identical tables")
    yield "runs", runs, rep["runs"]
    yield "identical tables", str(rep["tables_identical"]), "True"
    yield "fresh model", str(rep["fresh_model_cache"]), "True"
    ((trials, workers, seed),) = grab(
        r"(\d+) trials, `optimizer=\"auto\"` \(TPE: .*?Ray with (\d+) workers, seed (\d+)\."
    )
    yield "trials", trials, st["n_trials"]
    yield "workers", workers, st["n_workers"]
    yield "seed", seed, st["seed"]
    yield "main job backend", st["backend"], "ray"
    yield "auto's pick", st["optimizer"], "tpe"
    by_trial = {p["trial"]: p for p in rep["pareto"]}
    base = {b["baseline"]: b for b in rep["baselines"]}
    dense, int4 = base["dense"], base["uniform sparsity=0.0, bits=4"]
    proxy = [b for b in rep["baselines"] if b["kind"] == "proxy"]
    uniform = [b for b in rep["baselines"] if b["kind"] == "uniform"]
    ((n_proxy, n_uniform),) = grab(r"its (\d+) distinct Configs and the (\d+) uniform levels")
    yield "proxy Configs", n_proxy, len({json.dumps(b["config"], sort_keys=True) for b in proxy})
    yield "uniform levels", n_uniform, len(uniform)
    small_proxy = proxy[:2]
    ((t, acc, kb, ratio),) = grab(
        r"Config #(\d+) keeps ([\d.]+) accuracy at ([\d.]+) KB, 1/(\d+) of the dense"
    )
    best = by_trial[int(t)]
    yield f"#{t} accuracy", acc, best["accuracy"]
    yield f"#{t} KB", kb, best["size_kb"]
    yield f"#{t} storage ratio", ratio, dense["size_kb"] / best["size_kb"]
    ((pacc, pkb1, pkb2, pmb1, pmb2),) = grab(
        r"Configs at its two smaller budgets \(([\d.]+)\s+at ([\d.]+) and ([\d.]+) KB, "
        r"(\d+)-(\d+) Mbit-ops\)"
    )
    for b in small_proxy:
        yield f"{b['baseline']} dominated by #{t}", str(int(t) in b["dominated_by"]), "True"
        yield f"{b['baseline']} accuracy", pacc, b["accuracy"]
    yield "proxy KB 1", pkb1, small_proxy[0]["size_kb"]
    yield "proxy KB 2", pkb2, small_proxy[1]["size_kb"]
    yield "proxy Mbit-ops low", pmb1, min(b["mbitops"] for b in small_proxy)
    yield "proxy Mbit-ops high", pmb2, max(b["mbitops"] for b in small_proxy)
    config = best["config"]
    bits = {"conv1": 8, "conv2": 4, "fc1": 2, "fc2": 4}
    yield f"#{t} bits", str(_kb(config, "bits")), str(bits)
    pruned = {k: (v, _kb(config, "pattern")[k]) for k, v in _kb(config, "sparsity").items() if v}
    quarter = (0.25, "unstructured")
    yield (
        f"#{t} pruning",
        str(pruned),
        str({"conv2": quarter, "fc1": (0.5, "channel"), "fc2": quarter}),
    )
    knapsack_bits = _kb(small_proxy[0]["config"], "bits")["conv2"]
    yield "the knapsack kept conv2 at 8 bits", str(knapsack_bits), "8"
    ((t4, acc4_t, kb4_t, mb4_t, acc4, kb4),) = grab(
        r"Config #(\d+) \(([\d.]+) at ([\d.]+) KB, ([\d.]+) Mbit-ops: .*?\) dominates uniform "
        r"int4 \(([\d.]+) at ([\d.]+) KB\)"
    )
    p4 = by_trial[int(t4)]
    yield f"#{t4} accuracy", acc4_t, p4["accuracy"]
    yield f"#{t4} KB", kb4_t, p4["size_kb"]
    yield f"#{t4} Mbit-ops", mb4_t, p4["mbitops"]
    yield f"#{t4} dominates int4", str(int(t4) in int4["dominated_by"]), "True"
    yield f"#{t4} bits", str(_kb(p4["config"], "bits")["conv2"]), "3"
    yield f"#{t4} fc1", str(_kb(p4["config"], "sparsity")["fc1"]), "0.75"
    yield "int4 accuracy", acc4, int4["accuracy"]
    yield "int4 KB", kb4, int4["size_kb"]
    old_int4 = next(b for b in old["baselines"] if b["baseline"] == "int4 (W4A8)")
    yield "the optimize version did not dominate int4", str(old_int4["dominated_by"]), "[]"
    ((t3, acc3, kb3, ratio3),) = grab(
        r"The knapsack's third Config \(#(\d+)\) matches the dense accuracy \(([\d.]+)\) at "
        r"([\d.]+) KB, 1/([\d.]+) of its storage"
    )
    third = proxy[2]
    yield "third proxy trial", t3, str(int(third["trial"]))
    yield "third proxy on the front", str(third["trial"] in by_trial), "True"
    yield "third proxy accuracy", acc3, third["accuracy"]
    yield "dense accuracy", acc3, dense["accuracy"]
    yield "third proxy KB", kb3, third["size_kb"]
    yield "third proxy ratio", ratio3, dense["size_kb"] / third["size_kb"]
    ((tc, accc, mbc),) = grab(r"its cheapest\s+point, #(\d+), keeps ([\d.]+) at ([\d.]+) Mbit-ops")
    cheapest = min(rep["pareto"], key=lambda p: p["mbitops"])
    yield "cheapest point's bit-ops", mbc, cheapest["mbitops"]
    yield "cheapest point's accuracy", accc, by_trial[int(tc)]["accuracy"]
    yield "cheapest point", str(by_trial[int(tc)]["mbitops"]), str(cheapest["mbitops"])
    ((hv, hv_old, lower),) = grab(
        r"its hypervolume is ([\d.e+]+) against ([\d.e+]+) \(([\d.]+)% lower\)"
    )
    yield "hypervolume", hv, f"{rep['hypervolume']:.4g}"
    yield "hypervolume before", hv_old, f"{old['hypervolume']:.4g}"
    yield "hypervolume lower by", lower, 100 * (1 - rep["hypervolume"] / old["hypervolume"])
    yield (
        "reference",
        str(old["settings"].get("reference", [0.0, 450.0, 1200.0])),
        "[0.0, 450.0, 1200.0]",
    )
    yield "the optimize version's trials", str(old["trials"]), str(rep["trials"])
    yield "the optimize version's seed", str(old["settings"]["seed"]), str(st["seed"])
    seeds = load("mnist_seeds.json")["result"]
    ((med, med_old, lo_pct, hi_pct),) = grab(
        r"the median is ([\d.e+]+) against ([\d.e+]+), lower\s+at each seed by "
        r"([\d.]+)-([\d.]+)%"
    )
    yield "seeds median", med, f"{seeds['summary']['compress']['median']:.4g}"
    yield "seeds median before", med_old, f"{seeds['summary']['optimize']['median']:.4g}"
    gaps = [
        100 * (1 - seeds["runs"]["compress"][k]["hypervolume"] / r["hypervolume"])
        for k, r in seeds["runs"]["optimize"].items()
    ]
    yield "lower at every seed", str(min(gaps) > 0), "True"
    yield "least lower", lo_pct, min(gaps)
    yield "most lower", hi_pct, max(gaps)
    yield (
        "seed 0 is the main job",
        f"{seeds['runs']['compress']['0']['hypervolume']:.6g}",
        (f"{rep['hypervolume']:.6g}"),
    )
    ((spent,),) = grab(r"this\s+one spends (\d+) of its 80 trials")
    yield "starting trials", spent, int(n_proxy) + int(n_uniform)
    ((okb1, oacc1, okb2, oacc2, nkb1, nacc1, nkb2, nacc2),) = grab(
        r"needed ([\d.]+) KB for ([\d.]+) and ([\d.]+) KB for ([\d.]+); here ([\d.]+) KB gives\s+"
        r"([\d.]+) and ([\d.]+) KB ([\d.]+)\."
    )
    old_front = {(f"{p['weight_kb']:.1f}", f"{p['accuracy']:.3f}") for p in old["pareto"]}
    yield "old point 1", str((okb1, oacc1) in old_front), "True"
    yield "old point 2", str((okb2, oacc2) in old_front), "True"
    new_front = {(f"{p['size_kb']:.1f}", f"{p['accuracy']:.3f}") for p in rep["pareto"]}
    yield "new point 1", str((nkb1, nacc1) in new_front), "True"
    yield "new point 2", str((nkb2, nacc2) in new_front), "True"
    ((model_key,),) = grab(r"model ([0-9a-f]{16})\b", count=None)[:1]
    yield "model key", model_key, st["model"]


@check("mnist_gptq.json")
def main_job_gptq() -> Iterator[Figure]:
    rep = load("mnist_gptq.json")
    res = rep["result"]
    runs = res["runs"]
    rtn, gptq = runs["0"]["rtn"], runs["0"]["gptq"]
    yield "command", rep["command"], "python benchmarks/mnist_gptq.py --seeds 0,1,2 --n-trials 80"
    ((seeds, commit, wall, lo, hi),) = grab(
        r"`benchmarks/results/mnist_gptq.json`, both methods at seeds ([\d-]+), clean clone of "
        r"([0-9a-f]+), (\d+) s in all at load ([\d.]+)-([\d.]+), the variant bank built cold"
    )
    yield "seeds", seeds, f"{res['seeds'][0]}-{res['seeds'][-1]}"
    yield "seeds listed", str(res["seeds"]), "[0, 1, 2]"
    yield from clean_clone(rep, commit, lo, hi)
    yield "wall", wall, rep["benchmark_wall_s"]
    ((hv_rtn, hv_gptq, b15r, b15g, b30r, b30g, dense),) = grab(
        r"raises seed 0's hypervolume from ([\d.e+]+) to ([\d.e+]+) and the best accuracy within "
        r"15 KB from ([\d.]+) to ([\d.]+) \(within 30 KB: ([\d.]+) to ([\d.]+), above the dense "
        r"model's ([\d.]+)\)"
    )
    yield "hypervolume rtn", hv_rtn, f"{rtn['hypervolume']:.4g}"
    yield "hypervolume gptq", hv_gptq, f"{gptq['hypervolume']:.4g}"
    yield "rtn = the main job", hv_rtn, f"{load('mnist.json')['hypervolume']:.4g}"
    yield "15 KB rtn", b15r, rtn["best_within_kb"]["15.0"]
    yield "15 KB gptq", b15g, gptq["best_within_kb"]["15.0"]
    yield "30 KB rtn", b30r, rtn["best_within_kb"]["30.0"]
    yield "30 KB gptq", b30g, gptq["best_within_kb"]["30.0"]
    main = {b["baseline"]: b for b in load("mnist.json")["baselines"]}
    yield "dense", dense, main["dense"]["accuracy"]
    yield "gptq above dense", str(gptq["best_within_kb"]["30.0"] > dense_value(main)), "True"
    ((u2g, u2r, u8),) = grab(
        r"Uniform 2 bits keep ([\d.]+) instead of ([\d.]+); at 8 bits the methods tie \(([\d.]+)\)"
    )
    two, eight = "uniform sparsity=0.0, bits=2", "uniform sparsity=0.0, bits=8"
    yield "2 bits gptq", u2g, gptq["uniform"][two]["accuracy"]
    yield "2 bits rtn", u2r, rtn["uniform"][two]["accuracy"]
    yield "8 bits rtn", u8, rtn["uniform"][eight]["accuracy"]
    yield "8 bits gptq", u8, gptq["uniform"][eight]["accuracy"]
    ((b10g, b10r),) = grab(r"Below 10 KB it helps most \(([\d.]+) against ([\d.]+)\)")
    yield "10 KB gptq", b10g, gptq["best_within_kb"]["10.0"]
    yield "10 KB rtn", b10r, rtn["best_within_kb"]["10.0"]
    ((n_seeds, med_g, med_r),) = grab(
        r"GPTQ's hypervolume is higher at each of the (\d) seeds \(median ([\d.e+]+) against "
        r"([\d.e+]+)\)\."
    )
    median = res["median"]
    yield "seeds higher", n_seeds, median["gptq_higher_hypervolume"]
    yield "seeds", n_seeds, len(runs)
    yield "median gptq", med_g, f"{median['hypervolume']['gptq']:.3e}"
    yield "median rtn", med_r, f"{median['hypervolume']['rtn']:.3e}"
    yield from _mnist_gptq_target(res)


def _mnist_gptq_target(res: dict[str, Any]) -> Iterator[Figure]:
    """Issue #13's target on MNIST: independent searches per seed, then the same Configs."""
    runs = res["runs"]
    doms = [r["domination"] for r in runs.values()]
    ((n_trials, counts, kb1, r1, g1, kb2, r2, g2, b_lo, b_hi),) = grab(
        r"Each seed's two searches \((\d+) trials each\) take different paths, and RTN's front "
        r"keeps points that no GPTQ point matches, as small and as accurate, at every seed "
        r"\(([\d, and]+) points; at seed 0, ([\d.]+) KB with ([\d.]+) against GPTQ's best "
        r"([\d.]+) as small, and ([\d.]+) KB with ([\d.]+) against ([\d.]+)\), besides "
        r"(\d)-(\d) points below GPTQ's smallest\."
    )
    yield "trials", n_trials, res["n_trials"]
    yield "at every seed", str(not any(d["dominates_in_range"] for d in doms)), "True"
    sizes = [str(len(d["unmatched"])) for d in doms]
    yield "per seed", counts, f"{', '.join(sizes[:-1])} and {sizes[-1]}"
    seed0 = doms[0]["unmatched"]
    yield "seed 0 two points", str(len(seed0)), "2"
    for p, kb, r, g in ((seed0[0], kb1, r1, g1), (seed0[1], kb2, r2, g2)):
        yield f"{kb} KB", kb, p["size"]
        yield f"{kb} KB rtn", r, p["rtn"]
        yield f"{kb} KB gptq", g, p["gptq_best"]
    below = [len(d["below_gptq_range"]) for d in doms]
    yield "below low", b_lo, min(below)
    yield "below high", b_hi, max(below)
    same = res["same_configs"]
    ((n, rtn_only, gptq_only, both, points, smallest, m_lo, m_hi),) = grab(
        r"Measuring every one of the (\d+) Configs the two seed-0 searches tried \((\d+) by RTN's "
        r"run alone, (\d+) by GPTQ's alone, (\d+) by both\) with both methods' levels takes the "
        r"path out: GPTQ's front then matches or dominates each of RTN's (\d+) Pareto points, from "
        r"RTN's smallest \(([\d.]+) KB\) up, by ([\d.]+)-([\d.]+) accuracy"
    )
    yield "same seed", str(same["seed"]), "0"
    yield "Configs", n, same["configs"]
    for text, key in ((rtn_only, "rtn"), (gptq_only, "gptq"), (both, "rtn+gptq")):
        yield f"Configs of {key}", text, same["configs_by_runs"][key]
    check = same["rerun_vs_run"]  # the runs' own values and sizes, measured again
    yield "re-measured = the runs'", str(check["max_abs_diff"] + check["max_size_diff"]), "0.0"
    unmatched = same["unmatched"]
    yield "met", str(unmatched["dominates_in_range"] and not unmatched["below_gptq_range"]), "True"
    yield "RTN points", points, unmatched["rtn_points"]
    rtn_front, gptq_front = same["fronts"]["rtn"], same["fronts"]["gptq"]
    yield "RTN's smallest", smallest, rtn_front[0]["size"]
    yield "GPTQ's smallest below", str(gptq_front[0]["size"] <= rtn_front[0]["size"]), "True"
    margins = _front_margins(rtn_front, gptq_front)
    yield "margin low", m_lo, min(margins)
    yield "margin high", m_hi, max(margins)
    ((better, tied, worse, by_lo, by_hi, unstructured, two_bit, smaller, larger),) = grab(
        r"Per Config, GPTQ is more accurate on (\d+), ties on (\d+) and is worse on (\d+), by "
        r"([\d.]+)-([\d.]+); all (\d+) prune unstructured, (\d+) have a 2-bit layer\. "
        r"Unstructured pruning makes the size depend on the method too \(weights rounded to zero "
        r"are not stored\): GPTQ's is smaller for (\d+) of the Configs, larger for (\d+)\."
    )
    per = same["per_config"]
    yield "better", better, per["better"]
    yield "tied", tied, per["tied"]
    yield "worse", worse, per["worse"]
    bad = per["worse_configs"]
    yield "by low", by_lo, min(w["by"] for w in bad)
    yield "by high", by_hi, max(w["by"] for w in bad)
    yield "all unstructured", unstructured, per["worse_by_kind"]["unstructured pruning"]
    yield "all of the worse", unstructured, per["worse"]
    yield "2-bit", two_bit, per["worse_by_kind"]["min bits 2"]
    yield "smaller", smaller, per["gptq_smaller"]
    yield "larger", larger, per["gptq_larger"]
    yield (
        "Configs in the plot's alt text",
        grab(r"over the same (\d+) Configs\]\(benchmarks/results/mnist")[0][0],
        same["configs"],
    )


def _front_margins(points: list[dict[str, Any]], front: list[dict[str, Any]]) -> list[float]:
    """Per RTN front point, GPTQ's best accuracy as small or smaller minus the point's."""
    return [max(q["value"] for q in front if q["size"] <= p["size"]) - p["value"] for p in points]


def _hypervolume_medians(
    res: dict[str, Any], higher: str, n_seeds: str, gptq: str, rtn: str
) -> Iterator[Figure]:
    """The seeds where GPTQ's hypervolume is higher and both methods' medians, as quoted."""
    median = res["median"]
    yield "seeds higher", higher, median["gptq_higher_hypervolume"]
    yield "seeds", n_seeds, len(res["runs"])
    yield "median gptq", gptq, f"{median['hypervolume']['gptq']:.3e}"
    yield "median rtn", rtn, f"{median['hypervolume']['rtn']:.3e}"


def _mnist_160_run(name: str, where: str) -> Iterator[Figure]:
    """A 160-trial ``mnist_gptq.py`` report's command, clean clone, wall time and load, the
    README's sentence starting at ``where`` (a regex)."""
    rep = load(name)
    yield (
        "command",
        rep["command"],
        "python benchmarks/mnist_gptq.py --seeds 0,1,2 --n-trials 160 "
        f"--out benchmarks/results/{name}",
    )
    ((commit, wall, lo, hi),) = grab(
        where + r"clean clone of ([0-9a-f]+), (\d+) s at\s+load ([\d.]+)-([\d.]+)\)"
    )
    yield from clean_clone(rep, commit, lo, hi)
    yield "wall", wall, rep["benchmark_wall_s"]


@check("mnist_gptq_160.json")
def main_job_gptq_160() -> Iterator[Figure]:
    """The MNIST GPTQ/RTN comparison at 160 trials per search."""
    res = load("mnist_gptq_160.json")["result"]
    yield from _mnist_160_run("mnist_gptq_160.json", r"the same command with `--n-trials 160`, ")
    ((n_80, kb, n_160),) = grab(
        r"met over the same Configs of the (\d+)-trial searches, missed below (\d+) KB over "
        r"those of the (\d+)-trial searches"
    )
    yield "80 trials", n_80, load("mnist_gptq.json")["result"]["n_trials"]
    yield "160 trials", n_160, res["n_trials"]
    same = res["same_configs"]
    unmatched = same["unmatched"]
    misses = unmatched["unmatched"]
    yield "below 8 KB", str(max(p["size"] for p in misses) < float(kb)), "True"
    ((n, points, s_lo, s_hi, a_lo, a_hi, by_lo, by_hi, from_kb, others, m_lo, m_hi),) = grab(
        r"over the (\d+) Configs of seed 0's two searches, RTN's front has (\d+) points at "
        r"([\d.]+)-([\d.]+) KB \(accuracy ([\d.]+)-([\d.]+)\) that GPTQ's front misses by "
        r"([\d.]+)-([\d.]+); from ([\d.]+) KB up GPTQ's matches or dominates RTN's other (\d+) "
        r"points, by ([\d.]+)-([\d.]+)\."
    )
    yield "same seed", str(same["seed"]), "0"
    yield "Configs", n, same["configs"]
    yield "unmatched", points, len(misses)
    yield "no RTN point below GPTQ's range", str(unmatched["below_gptq_range"]), "[]"
    yield "size low", s_lo, min(p["size"] for p in misses)
    yield "size high", s_hi, max(p["size"] for p in misses)
    yield "accuracy low", a_lo, min(p["rtn"] for p in misses)
    yield "accuracy high", a_hi, max(p["rtn"] for p in misses)
    yield "by low", by_lo, min(p["shortfall"] for p in misses)
    yield "by high", by_hi, max(p["shortfall"] for p in misses)
    rtn_front, gptq_front = same["fronts"]["rtn"], same["fronts"]["gptq"]
    missed = {p["size"] for p in misses}
    rest = [p for p in rtn_front if p["size"] not in missed]
    yield "from", from_kb, min(p["size"] for p in rest)
    yield "others", others, len(rest)
    margins = _front_margins(rest, gptq_front)
    yield "margin low", m_lo, min(margins)
    yield "margin high", m_hi, max(margins)
    worse = [p["config"] for p in rtn_front if p["size"] in missed]
    conv2 = all(
        c["prune.conv2.pattern"] == "channel"
        and c["prune.conv2.sparsity"] in (0.5, 0.75)
        and c["quant.conv2.bits"] == 2
        and c["prune.fc1.pattern"] == "channel"
        and c["prune.fc1.sparsity"] > 0
        for c in worse
    )
    yield (
        "all 5 conv2 a quarter or half of its channels at 2 bits, fc1 channels",
        str(conv2),
        "True",
    )
    ((higher, n_seeds, med_g, med_r, counts),) = grab(
        r"Between independent searches at 160 trials, GPTQ's hypervolume is higher at (\d) of the "
        r"(\d) seeds \(median ([\d.e+]+) against ([\d.e+]+)\) and RTN's front keeps "
        r"([\d, and]+) points no GPTQ point matches\."
    )
    yield from _hypervolume_medians(res, higher, n_seeds, med_g, med_r)
    sizes = [str(len(r["domination"]["unmatched"])) for r in res["runs"].values()]
    yield "per seed", counts, f"{', '.join(sizes[:-1])} and {sizes[-1]}"


@check("mnist_gptq_160_cal.json")
def main_job_gptq_160_calibrated() -> Iterator[Figure]:
    """The 160-trial comparison calibrated on all 4,000 training digits, and why RTN's points
    below 11 KB stay unmatched: each against its own pruning at 8 bits."""
    res = load("mnist_gptq_160_cal.json")["result"]
    yield from _mnist_160_run(
        "mnist_gptq_160_cal.json", r"`benchmarks/results/mnist_gptq_160_cal.json`, "
    )
    ((digits,),) = grab(r"The offline set has ([\d,]+) training digits")
    yield from _mnist_calibration_default(digits.replace(",", ""))
    same = res["same_configs"]
    per = same["per_config"]
    pattern = (
        r"over the (\d+) Configs of seed 0's two searches \((\d+) by RTN's run alone, (\d+) "
        r"by\s+GPTQ's alone, (\d+) by both\) GPTQ is more accurate on (\d+), ties on (\d+) and "
        r"is worse on (\d+) \(by\s+([\d.]+)-([\d.]+)\); RTN's front has (\d+) points, and "
        r"GPTQ's front matches or dominates (\d+) of them, by\s+([\d.]+)-([\d.]+), every one "
        r"from ([\d.]+) KB up, and misses (\d+), at ([\d.]+)-([\d.]+) KB, by ([\d.]+)-([\d.]+)\."
    )
    (found,) = grab(pattern)
    n, rtn_only, gptq_only, both, better, tied, worse, by_lo, by_hi, points = found[:10]
    matched, m_lo, m_hi, above, n_missed, s_lo, s_hi, f_lo, f_hi = found[10:]
    yield "Configs", n, same["configs"]
    for text, key in ((rtn_only, "rtn"), (gptq_only, "gptq"), (both, "rtn+gptq")):
        yield f"Configs of {key}", text, same["configs_by_runs"][key]
    yield "better", better, per["better"]
    yield "tied", tied, per["tied"]
    yield "worse", worse, per["worse"]
    yield "by low", by_lo, min(w["by"] for w in per["worse_configs"])
    yield "by high", by_hi, max(w["by"] for w in per["worse_configs"])
    unmatched = same["unmatched"]
    misses = unmatched["unmatched"]
    yield "RTN points", points, unmatched["rtn_points"]
    yield "none below GPTQ's range", str(unmatched["below_gptq_range"]), "[]"
    rtn_front, gptq_front = same["fronts"]["rtn"], same["fronts"]["gptq"]
    missed = {p["size"] for p in misses}
    rest = [p for p in rtn_front if p["size"] not in missed]
    margins = _front_margins(rest, gptq_front)
    yield "matched", matched, len(rest)
    yield "margin low", m_lo, min(margins)
    yield "margin high", m_hi, max(margins)
    yield (
        "every point from there up",
        above,
        min(p["size"] for p in rest if p["size"] > max(missed)),
    )
    yield "missed", n_missed, len(misses)
    yield "size low", s_lo, min(missed)
    yield "size high", s_hi, max(missed)
    yield "shortfall low", f_lo, min(p["shortfall"] for p in misses)
    yield "shortfall high", f_hi, max(p["shortfall"] for p in misses)
    yield from _mnist_gptq_explained(res, misses)
    ((higher, n_seeds, med_g, med_r),) = grab(
        r"Between the independent searches on these calibrations, GPTQ's\s+hypervolume is higher "
        r"at (\d) of the (\d) seeds \(median ([\d.e+]+) against ([\d.e+]+)\)\."
    )
    yield from _hypervolume_medians(res, higher, n_seeds, med_g, med_r)


def _mnist_gptq_explained(res: dict[str, Any], misses: list[dict[str, Any]]) -> Iterator[Figure]:
    """RTN's unmatched points beside their own pruning at 8 bits: accuracy and KL per method."""
    rows = res["unmatched_explained"]
    yield (
        "every missed point explained",
        str(sorted(r["size_kb"] for r in rows)),
        str(sorted(p["size"] for p in misses)),
    )
    conv2 = all(
        r["config"]["prune.conv2.pattern"] == "channel"
        and r["config"]["prune.conv2.sparsity"] in (0.5, 0.75)
        for r in rows
    )
    yield "each prunes half or three quarters of conv2's channels", str(conv2), "True"
    ((n, up_lo, up_hi, within, g_lo, g_hi, kg_lo, kg_hi, kr_lo, kr_hi),) = grab(
        r"RTN's accuracy is above that model's\s+at all (\d+) \(by ([\d.]+)-([\d.]+)\), GPTQ's is "
        r"within ([\d.]+) of it \((-[\d.]+) to \+([\d.]+)\), and GPTQ's\s+predictions are the "
        r"closer to it at each \(KL ([\d.]+)-([\d.]+) nats per digit, RTN's ([\d.]+)-([\d.]+)\)"
    )
    yield "points", n, len(rows)
    rtn_up = [r["accuracy_rtn"] - r["accuracy_8bit"] for r in rows]
    gptq_off = [r["accuracy_gptq"] - r["accuracy_8bit"] for r in rows]
    yield "RTN above at all", str(min(rtn_up) > 0), "True"
    yield "RTN above low", up_lo, min(rtn_up)
    yield "RTN above high", up_hi, max(rtn_up)
    yield "GPTQ within", within, max(abs(g) for g in gptq_off)
    yield "GPTQ low", g_lo, min(gptq_off)
    yield "GPTQ high", g_hi, max(gptq_off)
    yield "GPTQ closer at each", str(all(r["kl_gptq"] < r["kl_rtn"] for r in rows)), "True"
    yield "KL GPTQ low", kg_lo, min(r["kl_gptq"] for r in rows)
    yield "KL GPTQ high", kg_hi, max(r["kl_gptq"] for r in rows)
    yield "KL RTN low", kr_lo, min(r["kl_rtn"] for r in rows)
    yield "KL RTN high", kr_hi, max(r["kl_rtn"] for r in rows)


def _mnist_calibration_default(digits: str) -> Iterator[Figure]:
    """The training digits the MNIST example loads (``examples/_mnist_data.py``'s N_TRAIN) are
    the README's count and ``benchmarks/mnist_gptq.py``'s default calibration."""
    example = (ROOT / "examples" / "_mnist_data.py").read_text()
    bench = (ROOT / "benchmarks" / "mnist_gptq.py").read_text()
    ((n,),) = [re.findall(r"^N_TRAIN = (\d+)$", example, flags=re.MULTILINE)]
    ((default,),) = [re.findall(r"^CALIBRATION = (\d+)\b", bench, flags=re.MULTILINE)]
    yield "all the training digits", digits, n
    yield "the benchmark's default calibration", digits, default


def dense_value(baselines: dict[str, Any]) -> float:
    return float(baselines["dense"]["accuracy"])


# SmolLM2 -----------------------------------------------------------------------------------------
def _hv2(front: list[dict[str, Any]], kl_ref: float, mb_ref: float) -> float:
    """The hypervolume of a (KL, MB) front against (``kl_ref``, ``mb_ref``), both minimized."""
    points = sorted((p["size_mb"], p["kl"]) for p in front if p["kl"] <= kl_ref)
    points = [(mb, kl) for mb, kl in points if mb <= mb_ref]
    area, best = 0.0, kl_ref
    for (mb, kl), right in zip(points, [mb for mb, _ in points[1:]] + [mb_ref]):
        best = min(best, kl)
        area += (right - mb) * (kl_ref - best)
    return area


def _alloc(config: dict[str, Any]) -> str:
    """Block bits 0-29 as one string, ``-`` for a dropped block."""
    n = sum(name.endswith(".keep") for name in config)
    keep, bits = "arch.model.layers.{}.keep", "quant.model.layers.{}.bits"
    return "".join(str(config[bits.format(i)]) if config[keep.format(i)] else "-" for i in range(n))


@check("smollm2_compress.json")
def smollm2_tables() -> Iterator[Figure]:
    rep = load("smollm2_compress.json")["result"]
    front = sorted(rep["pareto"], key=lambda p: p["size_mb"])
    rows = table("| trial | KL | MB | head bits | block bits 0-29 (- = dropped) |")
    yield "Pareto trials", str([r[0] for r in rows]), str([f"#{p['trial']}" for p in front])
    for (trial, kl, mb, head, blocks), p in zip(rows, front):
        yield f"{trial} KL", kl, p["kl"]
        yield f"{trial} MB", mb, p["size_mb"]
        yield f"{trial} head bits", head, p["config"]["quant.lm_head.bits"]
        yield f"{trial} blocks", blocks, _alloc(p["config"])
    base = {b["baseline"]: b for b in rep["baselines"]}
    rows = table("| baseline | KL | MB | within budget | dominated by |")
    yield "baselines", str(sorted(r[0] for r in rows)), str(sorted(base))
    for label, kl, mb, feasible, who in rows:
        b = base[label]
        yield f"{label} KL", kl, b["kl"]
        yield f"{label} MB", mb, b["size_mb"]
        yield f"{label} within budget", feasible, "yes" if b["feasible"] else "no"
        yield f"{label} dominated by", who, ", ".join(f"#{t}" for t in b["dominated_by"]) or "-"


@check("smollm2_compress.json")
def smollm2_prose() -> Iterator[Figure]:
    rep = load("smollm2_compress.json")
    res, m = rep["result"], rep["machine"]
    front, bases = res["pareto"], {b["baseline"]: b for b in res["baselines"]}
    yield "command", rep["command"], "python examples/smollm2_compress.py --seed 0"
    yield "README names the command", str(rep["command"] in PROSE), "True"
    ((judge, seq_len, calib, calib_tokens, mb, kl),) = grab(
        r"on (\d+) Hamlet windows of (\d+) tokens, .*?calibrates on (\d+) other windows "
        r"\(([\d,]+) tokens\)\. Budget: ([\d.]+) MB \(uniform int5\) and KL ≤ (\d+)\."
    )
    yield "judge windows", judge, res["judge_tokens"] / res["seq_len"]
    yield "window tokens", seq_len, res["seq_len"]
    yield "calibration windows", calib, res["calibration_tokens"] / res["seq_len"]
    yield "calibration tokens", calib_tokens, res["calibration_tokens"]
    yield "size budget", mb, res["budget"]["size_mb"]
    yield "KL budget", kl, res["budget"]["kl"]
    yield "uniform int5 within the size budget", str(bases["uniform bits=5"]["feasible"]), "True"
    ((commit, lo, hi, minutes, configs, trials, *evals, points, hv, ref_kl, ref_mb),) = grab(
        r"clean clone of commit ([0-9a-f]{7}) with the GPTQ variant bank already cached, on 2 "
        r"cores shared with another benchmark, load average ([\d.]+)-([\d.]+)\): ([\d.]+) min in "
        r"all, (\d+) Configs in (\d+) trials \((\d+)/(\d+)/(\d+) evaluations at 128/384/1152 "
        r"tokens\), (\d+) Pareto points, hypervolume ([\d.]+) \(reference KL (\d+), ([\d.]+) MB\)"
    )
    yield "commit", commit, m["tradeoff_commit"]
    yield "clean checkout", str(m["tradeoff_dirty"]), "False"
    loads = m["load_avg_1_5_15_at_start"] + m["load_avg_1_5_15_at_end"]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    yield "minutes", minutes, rep["benchmark_wall_s"] / 60
    yield "Configs", configs, rep["settings"]["n_trials"]
    yield "trials", trials, res["trials"]
    for cell, tokens in zip(evals, ("128", "384", "1152")):
        yield f"evaluations at {tokens} tokens", cell, res["evaluations_by_tokens"][tokens]
    yield "Pareto points", points, len(front)
    yield "hypervolume", hv, res["hypervolume"]
    yield "hypervolume recomputed", hv, _hv2(front, float(ref_kl), float(ref_mb))
    yield "reference", f"{ref_kl}, {ref_mb}", f"{res['budget']['kl']:g}, {res['budget']['size_mb']}"
    starts = int(max(b["trial"] for b in res["baselines"] if b["trial"] is not None))
    ((own, total, n_starts, last),) = grab(
        r"(\d+) of the (\d+) points are the search's own \(after the (\d+) starts, trials "
        r"#0-#(\d+)\)"
    )
    yield "the search's own points", own, sum(p["trial"] > starts for p in front)
    yield "points", total, len(front)
    yield "starts", n_starts, starts + 1
    yield "last start", last, starts
    by_trial = {p["trial"]: p for p in front}
    ((a, b),) = grab(r"#(\d+) and #(\d+) are the same model")
    same = [(_alloc(by_trial[int(t)]["config"]), by_trial[int(t)]["kl"]) for t in (a, b)]
    yield "the same model", str(same[0] == same[1]), "True"
    trials_of = [int(bases[f"uniform bits={b}"]["trial"]) for b in (3, 4, 5)]
    yield "uniform int3/4/5 are trials #0-#2", str(trials_of), "[0, 1, 2]"
    proxy = bases[f"additive proxy, size_mb <= {res['budget']['size_mb']:g}"]
    yield (
        "knapsack worse than uniform int5",
        str(proxy["kl"] > bases["uniform bits=5"]["kl"]),
        "True",
    )


@check("smollm2_compress.json", "smollm2_compress_v1.json")
def smollm2_against_the_old_example() -> Iterator[Figure]:
    res, old = load("smollm2_compress.json")["result"], load("smollm2_compress_v1.json")
    new_front, old_front = res["pareto"], old["runs"]["multi-fidelity"]["pareto"]
    kl_ref, mb_ref = res["budget"]["kl"], res["budget"]["size_mb"]
    ((hv_new, hv_old, kl_new, kl_old, mb_new, mb_old, n_old),) = grab(
        r"Hypervolume ([\d.]+) against ([\d.]+) \(same reference, KL 1 and 88.4 MB\); KL at the "
        r"budget ([\d.]+) against ([\d.]+); the smallest Config with KL ≤ 1 has ([\d.]+) MB "
        r"against ([\d.]+) MB; every one of the old front's (\d+) points is dominated by a new one"
    )
    yield "new hypervolume", hv_new, _hv2(new_front, kl_ref, mb_ref)
    yield "old hypervolume", hv_old, _hv2(old_front, kl_ref, mb_ref)
    yield "new KL at the budget", kl_new, min(p["kl"] for p in new_front)
    yield "old KL at the budget", kl_old, min(p["kl"] for p in old_front)
    yield "new smallest", mb_new, min(p["size_mb"] for p in new_front)
    yield "old smallest", mb_old, min(p["size_mb"] for p in old_front)
    yield "old points", n_old, len(old_front)
    beaten = [any(_dominates_2d(p, q) for p in new_front) for q in old_front]
    yield "every old point dominated", str(all(beaten)), "True"
    new = {b["baseline"]: b for b in res["baselines"]}
    old_base = {b["baseline"]: b for b in old["baselines"]}
    cells = grab(
        r"uniform int3 ([\d.]+) against ([\d.]+) \(now within the KL budget\), int4 ([\d.]+) "
        r"against ([\d.]+), int5 ([\d.]+) against ([\d.]+), the knapsack at the budget ([\d.]+) "
        r"against ([\d.]+)\."
    )[0]
    pairs = [(f"uniform bits={b}", f"uniform int{b}") for b in (3, 4, 5)]
    pairs.append(("additive proxy, size_mb <= 88.4", "proxy (bits only) <= 88.4 MB"))
    for (n, o), (cell_new, cell_old) in zip(pairs, zip(cells[::2], cells[1::2])):
        yield f"{n} KL", cell_new, new[n]["kl"]
        yield f"{o} KL (old)", cell_old, old_base[o]["kl"]
        same = round(new[n]["size_mb"], 1) == round(old_base[o]["size_mb"], 1)
        yield f"{n}: the same size", str(same), "True"
    yield "uniform int3 now feasible", str(new["uniform bits=3"]["feasible"]), "True"


def _dominates_2d(a: dict[str, Any], b: dict[str, Any]) -> bool:
    no_worse = a["kl"] <= b["kl"] and a["size_mb"] <= b["size_mb"]
    return no_worse and (a["kl"] < b["kl"] or a["size_mb"] < b["size_mb"])


# MiniLM ------------------------------------------------------------------------------------------
def _minilm_label(baseline: str) -> str:
    """``uniform IA3, ffn=0.5, sparsity=0.5, bits=3`` as the README writes it:
    ``IA3, FFN 0.5, 50% sparse, int3`` (full width and no sparsity left out)."""
    adapters, ffn, sparsity, bits = re.fullmatch(
        r"uniform (.+), ffn=([\d.]+), sparsity=([\d.]+), bits=(\d)", baseline
    ).groups()
    parts = [adapters]
    parts += [f"FFN {float(ffn):g}"] if float(ffn) < 1 else []
    parts += [f"{round(100 * float(sparsity))}% sparse"] if float(sparsity) > 0 else []
    return ", ".join([*parts, f"int{bits}"])


def _minilm_hypervolume(rows: list[dict[str, Any]], size: str, configs: list[Any], table: Any):
    """Hypervolume of ``rows`` (accuracy, trainable k, ``size``, latency) at the README's
    reference, latency as a fraction of the dense model's from one FFN-width ``table``."""
    import numpy as np

    from tradeoff import _pareto

    def latency(config: dict[str, Any]) -> float:
        widths = [config[f"arch.bert.encoder.layer.{i}.ffn"] for i in range(6)]
        return 1 - sum(1 - table[w] / table[1.0] for w in widths) / 6

    points = [
        [-r["accuracy"], r["trainable_k"], r[size], latency(c)] for r, c in zip(rows, configs)
    ]
    full = _pareto.hypervolume(np.array(points), np.array([-0.5, 548.3, 27.0, 1.1]))
    flat = _pareto.hypervolume(np.array(points)[:, :3], np.array([-0.5, 548.3, 27.0]))
    return float(full), float(flat)


@check("minilm_peft.json")
def minilm_compress() -> Iterator[Figure]:
    rep = load("minilm_peft.json")
    res, machine = rep["result"], rep["machine"]
    front = {p["trial"]: p for p in res["pareto"]}
    by_trial = {b["trial"]: b for b in res["baselines"] if b["trial"] is not None}
    header = "| trial | accuracy | trainable k | size MB | latency ms | Config |"
    for trial, acc, k, mb, ms, label in table(header):
        p = front[int(trial[1:])]
        yield f"{trial} accuracy", acc, p["accuracy"]
        yield f"{trial} trainable k", k, p["trainable_k"]
        yield f"{trial} MB", mb, p["size_mb"]
        yield f"{trial} latency", ms, p["latency_ms"]
        yield f"{trial} Config", label, _minilm_label(by_trial[p["trial"]]["baseline"])
    ((minutes,),) = grab(r"python examples/minilm_peft.py # (\d+) min on 2 cores")
    yield "command", rep["command"], "python examples/minilm_peft.py"
    yield "minutes", minutes, rep["benchmark_wall_s"] / 60
    yield "commit", machine["tradeoff_commit"][:7], "dbc2a8e"
    ((lo, hi, trials, complete, stopped, low, rows, dominated, uniform),) = grab(
        r"load ([\d.]+)-([\d.]+); .*? spent its 15 minutes on the 54 baselines: (\d+) trials, "
        r"(\d+) complete and (\d+) stopped at (\d+) steps, and TPE .*? The front is (\d+) of "
        r"the baselines \((\d+) of the (\d+) are dominated\)"
    )
    yield "load at start", lo, machine["load_avg_1_5_15_at_start"][0]
    yield "load at end", hi, machine["load_avg_1_5_15_at_end"][0]
    yield "minutes of search", "15", rep["settings"]["minutes"]
    yield "trials", trials, res["trials"]
    yield "complete", complete, res["status"]["complete"]
    yield "stopped", stopped, res["status"]["stopped"]
    yield "stopped at", low, min(int(b) for b in res["evaluations_by_steps"])
    yield "optimizer", res["optimizer"], "tpe"
    yield "front", rows, len(front)
    yield "front is baselines", str(set(front) <= set(by_trial)), "True"
    kinds = [b for b in res["baselines"] if b["kind"] == "uniform"]
    yield "dominated", dominated, sum(bool(b["dominated_by"]) for b in kinds)
    yield "uniform baselines", uniform, len(kinds)
    ((dense, half),) = grab(r"here FFN 0\.5 saves more, ([\d.]+) -> ([\d.]+) ms")
    latency = {b["config"]["arch.bert.encoder.layer.0.ffn"]: b["latency_ms"] for b in kinds}
    yield "dense latency", dense, latency[1.0]
    yield "FFN 0.5 latency", half, latency[0.5]


@check(
    "minilm_peft.json",
    "minilm_peft_optimize.json",
    "minilm_peft_optimize_rerun.json",
    "minilm_peft_30min.json",
)
def minilm_compress_vs_optimize() -> Iterator[Figure]:
    new, old = load("minilm_peft.json")["result"], load("minilm_peft_optimize.json")
    ((configs, rows, bases),) = grab(
        r"on that faster, quieter machine: (\d+) Configs tried, (\d+) Pareto points, (\d+) "
        r"baselines measured after the search"
    )
    yield "old Configs", configs, old["searches"]["multi_fidelity"]["evaluations_by_budget"]["20"]
    yield "old Pareto", rows, len(old["pareto"])
    yield "old baselines", bases, len(old["baselines"])
    before = {b["baseline"]: b for b in old["baselines"]}
    after = {b["baseline"].removeprefix("uniform "): b for b in new["baselines"]}
    ((ia3, lora4, lora4_new, lora3, lora3_new),) = grab(
        r"IA3 int4 ([\d.]+) in both, LoRA r8 int4 ([\d.]+) then ([\d.]+), LoRA r8 int3 ([\d.]+) "
        r"then ([\d.]+);"
    )
    for label, cell in (("IA3, ffn=1.0, sparsity=0.0, bits=4", ia3),
                        ("LoRA r8, ffn=1.0, sparsity=0.0, bits=4", lora4),
                        ("LoRA r8, ffn=1.0, sparsity=0.0, bits=3", lora3)):  # fmt: skip
        yield f"old {label}", cell, before[label]["accuracy"]
    yield "new IA3 int4", ia3, after["IA3, ffn=1.0, sparsity=0.0, bits=4"]["accuracy"]
    yield "new LoRA int4", lora4_new, after["LoRA r8, ffn=1.0, sparsity=0.0, bits=4"]["accuracy"]
    yield "new LoRA int3", lora3_new, after["LoRA r8, ffn=1.0, sparsity=0.0, bits=3"]["accuracy"]
    old_table = {float(r): ms for r, ms in old["settings"]["latency_table_ms"].items()}
    ((t10, t75, t50),) = grab(r"the old run's ([\d.]+)/([\d.]+)/([\d.]+) ms")
    yield "old 1.0 ms", t10, old_table[1.0]
    yield "old 0.75 ms", t75, old_table[0.75]
    yield "old 0.5 ms", t50, old_table[0.5]
    ((hv_new, hv_old, hv_bases, flat_new, flat_old),) = grab(
        r"548\.3 k, 27\.0 MB, 1\.1\), ([\d.]+) against ([\d.]+) \(the old baselines ([\d.]+)\), "
        r"and ([\d,.]+) against ([\d,.]+) without latency"
    )
    old_configs = [old["configs"][str(p["trial"])] for p in old["pareto"]]
    widths = [float(re.search(r"ffn=([\d.]+)", b["baseline"]).group(1)) for b in old["baselines"]]
    base_configs = [{f"arch.bert.encoder.layer.{i}.ffn": w for i in range(6)} for w in widths]
    new_configs = [p["config"] for p in new["pareto"]]
    full_new, flat_n = _minilm_hypervolume(new["pareto"], "size_mb", new_configs, old_table)
    full_old, flat_o = _minilm_hypervolume(old["pareto"], "weight_mb", old_configs, old_table)
    yield "new front hypervolume", hv_new, full_new
    yield "old front hypervolume", hv_old, full_old
    yield (
        "old baselines hypervolume",
        hv_bases,
        _minilm_hypervolume(old["baselines"], "weight_mb", base_configs, old_table)[0],
    )
    yield "new front, no latency", flat_new, flat_n
    yield "old front, no latency", flat_old, flat_o
    rerun = load("minilm_peft_optimize_rerun.json")
    mf = rerun["searches"]["multi_fidelity"]
    ((lo, hi, evals, top, rows, hv_rerun, hv_rerun_bases, seconds, hv_ours),) = grab(
        r"a clone of 53c1faf run right after, load ([\d.]+)-([\d.]+)\) made (\d+) evaluations in "
        r"its 15 minutes, (\d+) at the full 180 steps, and kept (\d+) Pareto points: ([\d.]+) on "
        r"the same scale \(its 29 baselines ([\d.]+), measured in (\d+) s after the search\), "
        r"against ([\d.]+) for"
    )
    yield "rerun commit", rerun["machine"]["tradeoff_commit"][:7], "53c1faf"
    yield "rerun load (end)", lo, rerun["load_average"]["end"][0]
    yield "rerun load (start)", hi, rerun["load_average"]["start"][0]
    yield "rerun evaluations", evals, mf["evaluations"]
    yield "rerun at 180 steps", top, mf["evaluations_by_budget"]["180"]
    yield "rerun Pareto", rows, len(rerun["pareto"])
    rerun_configs = [rerun["configs"][str(p["trial"])] for p in rerun["pareto"]]
    full_rerun = _minilm_hypervolume(rerun["pareto"], "weight_mb", rerun_configs, old_table)[0]
    yield "rerun hypervolume", hv_rerun, full_rerun
    widths = [float(re.search(r"ffn=([\d.]+)", b["baseline"]).group(1)) for b in rerun["baselines"]]
    rerun_bases = [{f"arch.bert.encoder.layer.{i}.ffn": w for i in range(6)} for w in widths]
    yield (
        "rerun baselines hypervolume",
        hv_rerun_bases,
        _minilm_hypervolume(rerun["baselines"], "weight_mb", rerun_bases, old_table)[0],
    )
    yield "rerun baselines seconds", seconds, rerun["baselines_wall_s"]
    yield "compress hypervolume again", hv_ours, full_new
    long = load("minilm_peft_30min.json")
    res30 = long["result"]
    (
        (lo30, hi30, tried, e0, e1, e2, rows30, found, dominated, hv30, hv_old2, flat30, flat_old2),
    ) = grab(
        r"same clone, load ([\d.]+)-([\d.]+)\), the `compress` search beat the old front: (\d+) "
        r"Configs tried \((\d+)/(\d+)/(\d+) evaluations at 20/60/180 steps\), (\d+) Pareto "
        r"points, (\d+) of them found by the search .*? (\d+) of the 54 baselines dominated; "
        r"hypervolume ([\d.]+) against the old ([\d.]+) on the same scale, and ([\d,.]+) against "
        r"([\d,.]+) without latency"
    )
    yield (
        "30 min command",
        long["command"],
        "python examples/minilm_peft.py --minutes 30 --report "
        "benchmarks/results/minilm_peft_30min.json",
    )
    yield "30 min commit", long["machine"]["tradeoff_commit"][:7], "dbc2a8e"
    yield "30 min load (start)", lo30, long["machine"]["load_avg_1_5_15_at_start"][0]
    yield "30 min load (end)", hi30, long["machine"]["load_avg_1_5_15_at_end"][0]
    by_steps = res30["evaluations_by_steps"]
    yield "30 min Configs", tried, by_steps["20"]
    for cell, steps in zip((e0, e1, e2), ("20", "60", "180")):
        yield f"30 min evaluations at {steps}", cell, by_steps[steps]
    yield "30 min Pareto", rows30, len(res30["pareto"])
    starts = {b["trial"] for b in res30["baselines"] if b["trial"] is not None}
    yield "30 min found by search", found, sum(p["trial"] not in starts for p in res30["pareto"])
    kinds30 = [b for b in res30["baselines"] if b["kind"] == "uniform"]
    yield "30 min dominated", dominated, sum(bool(b["dominated_by"]) for b in kinds30)
    configs30 = [p["config"] for p in res30["pareto"]]
    full30, flat_30 = _minilm_hypervolume(res30["pareto"], "size_mb", configs30, old_table)
    yield "30 min hypervolume", hv30, full30
    yield "old hypervolume again", hv_old2, full_old
    yield "30 min, no latency", flat30, flat_30
    yield "old, no latency again", flat_old2, flat_o


@check("minilm_peft_optimize.json", "minilm_peft_seed1.json")
def minilm_prose() -> Iterator[Figure]:
    rep, seed1 = load("minilm_peft_optimize.json"), load("minilm_peft_seed1.json")
    st = rep["settings"]
    ((minutes,),) = grab(r"`optimize` version's `--compare` \((\d+) min on 2 cores\)")
    yield "command", rep["command"], "python examples/minilm_peft.py --compare"
    yield "total minutes", minutes, rep["total_wall_s"] / 60
    mvf = rep["mf_vs_full"]
    ((common, mf_s, full_s, saved, end),) = grab(
        r"final hypervolume \(([\d,]+)\) in (\d+) s instead of (\d+) s: (\d+)% less wall time, "
        r"and ended higher \(([\d,]+)\)"
    )
    yield "full-budget final hypervolume", common, mvf["hypervolume"]["full_budget"]
    yield "seconds (mf)", mf_s, mvf["full_budget_final_hv_reached_s"]["multi_fidelity"]
    yield "seconds (full)", full_s, mvf["full_budget_final_hv_reached_s"]["full_budget"]
    yield "saved %", saved, 100 * mvf["wall_time_saved"]
    yield "multi-fidelity final hypervolume", end, mvf["hypervolume"]["multi_fidelity"]
    ((m5, m10, m15, f5, f10, f15, bases),) = grab(
        r"multi-fidelity ([\d,]+) / ([\d,]+) / ([\d,]+), full budget ([\d,]+) / ([\d,]+) / "
        r"([\d,]+) \(baselines ([\d,]+)\)"
    )
    after = mvf["hypervolume_after"]
    for cell, when in zip((m5, m10, m15), ("5 min", "10 min", "15 min")):
        yield f"multi-fidelity after {when}", cell, after[when]["multi_fidelity"]
    for cell, when in zip((f5, f10, f15), ("5 min", "10 min", "15 min")):
        yield f"full budget after {when}", cell, after[when]["full_budget"]
    yield "baselines hypervolume", bases, rep["baselines_hypervolume"]
    ((evals_full, adapters),) = grab(
        r"The full-budget search made (\d+) evaluations and trained (\d+) adapters"
    )
    full = rep["searches"]["full_budget"]
    yield "full-budget evaluations", evals_full, full["evaluations"]
    yield "adapters trained", adapters, full["steps_trained"] / st["budgets_steps"][-1]
    s1 = seed1["mf_vs_full"]
    ((mf1, full1, saved1, end1, full_end1),) = grab(
        r"reached the full-budget final hypervolume in (\d+) s instead of (\d+) s "
        r"\((\d+)% less wall "
        r"time\) and ended at ([\d,]+) vs ([\d,]+)"
    )
    yield "seed 1 seconds (mf)", mf1, s1["full_budget_final_hv_reached_s"]["multi_fidelity"]
    yield "seed 1 seconds (full)", full1, s1["full_budget_final_hv_reached_s"]["full_budget"]
    yield "seed 1 saved %", saved1, 100 * s1["wall_time_saved"]
    yield "seed 1 multi-fidelity", end1, s1["hypervolume"]["multi_fidelity"]
    yield "seed 1 full budget", full_end1, s1["hypervolume"]["full_budget"]
    yield "seed 1 seed", str(seed1["settings"]["seed"]), "1"
    ((snippets, steps, saved_mf),) = grab(
        r"the MiniLM example measures ([\d/]+) snippets at ([\d/]+) steps; .*? it saved (\d+)% of "
        r"the wall time"
    )
    by = st["eval_snippets_by_budget"]
    yield "snippets per rung", snippets, "/".join(str(by[str(b)]) for b in st["budgets_steps"])
    yield "steps per rung", steps, "/".join(map(str, st["budgets_steps"]))
    yield "saved % (multi-fidelity section)", saved_mf, 100 * mvf["wall_time_saved"]


@check("minilm_peft_optimize.json")
def minilm_adapters() -> Iterator[Figure]:
    rep = load("minilm_peft_optimize.json")
    ((ia3_lo, ia3_hi, dora_lo, dora_hi, lora),) = grab(
        r"IA3 \(([\d.]+)-([\d.]+)k trainable parameters\) or a DoRA adapter on the last block "
        r"only \(([\d.]+)-([\d.]+)k\) instead of LoRA r8 \((\d+)k\)"
    )
    ia3 = [p["trainable_k"] for p in rep["pareto"] if p["adapters"].startswith("ia3")]
    dora = [
        p["trainable_k"]
        for p in rep["pareto"]
        if p["adapters"].startswith("dora") and p["adapters"].endswith("last 1")
    ]
    yield "IA3 fewest trainable", ia3_lo, min(ia3)
    yield "IA3 most trainable", ia3_hi, max(ia3)
    yield "DoRA last block fewest", dora_lo, min(dora)
    yield "DoRA last block most", dora_hi, max(dora)
    lora_k = {b["trainable_k"] for b in rep["baselines"] if b["baseline"].startswith("LoRA r8")}
    yield "LoRA r8 trainable", lora, lora_k.pop() if len(lora_k) == 1 else -1.0


# Optimizers --------------------------------------------------------------------------------------
PROBLEM_ROWS = {
    "ZDT1 (d=10)": "zdt1",
    "ZDT2 (d=10)": "zdt2",
    "DTLZ2 (3 obj.)": "dtlz2",
    "bits8": "bits8",
    "bits8-budget": "bits8-budget",
    "digits model": "digits",
}
CONTENDERS = {
    "auto (= mobo)": "auto",
    "auto (mobo>evolution)": "auto",
    "evolution": "evolution",
    "tradeoff tpe": "tpe",
    "Optuna GPSampler": "optuna-gp",
    "Optuna TPE": "optuna-tpe",
    "Optuna NSGA-II": "optuna-nsga2",
    "Optuna random": "optuna-random",
    "TPE": "tpe",
    "random": "random",
    "mobo": "mobo",
}


def _grid(header: str, values: dict[str, dict[str, float]]) -> Iterator[Figure]:
    columns = [CONTENDERS[c] for c in header.strip("| ").split(" | ")[1:]]
    for label, *cells in table(header):
        for column, cell in zip(columns, cells):
            yield f"{label}, {column}", cell, values[PROBLEM_ROWS[label]][column]


@check("optimizers.json", "optimizers_400.json")
def optimizer_benchmark() -> Iterator[Figure]:
    rep, rep400 = load("optimizers.json"), load("optimizers_400.json")
    header = (
        "| problem | auto (= mobo) | evolution | tradeoff tpe | Optuna GPSampler | Optuna TPE |"
    )
    yield from _grid(header + " Optuna NSGA-II | Optuna random |", rep["hv_fraction"])
    st = rep["settings"]
    ((n, seeds),) = grab(
        r"\(`benchmarks/results/optimizers.json`\): (\d+) evaluations, seeds 0-(\d)"
    )
    yield "evaluations", n, st["n_trials"]
    yield "last seed", seeds, st["seeds"] - 1
    yield (
        "auto is mobo everywhere",
        str({p: s["auto"] for p, s in rep["shared_runs"].items()}),
        str({p: "mobo" for p in rep["shared_runs"]}),
    )
    ((least,),) = grab(r"and ≥ ([\d.]+) of the true front on the three discrete ones")
    auto = {p: row["auto"] for p, row in rep["hv_fraction"].items()}
    discrete = ("bits8", "bits8-budget", "digits")
    yield (
        "auto's least on the discrete problems",
        str(min(auto[p] for p in discrete) >= float(least)),
        "True",
    )
    optuna = [c for c in rep["hv_fraction"]["zdt1"] if c.startswith("optuna-")]
    above = all(auto[p] > max(row[c] for c in optuna) for p, row in rep["hv_fraction"].items())
    yield "auto above the best Optuna sampler everywhere", str(above), "True"
    ((mobo_lo, mobo_hi, gp_lo, gp_hi, fast, wall),) = grab(
        r"mobo ([\d.]+)-([\d.]+) s, Optuna GPSampler ([\d.]+)-([\d.]+) s, evolution/TPE/NSGA-II < "
        r"(\d+) ms \(benchmark wall time (\d+) min\)"
    )
    s = rep["s_per_proposal"]
    yield "mobo fastest", mobo_lo, min(row["mobo"] for row in s.values())
    yield "mobo slowest", mobo_hi, max(row["mobo"] for row in s.values())
    yield "GP fastest", gp_lo, min(row["optuna-gp"] for row in s.values())
    yield "GP slowest", gp_hi, max(row["optuna-gp"] for row in s.values())
    cheap = ("evolution", "tpe", "nsga2", "optuna-tpe", "optuna-nsga2")
    yield (
        "cheap samplers under the bound",
        str(all(row[c] * 1000 < int(fast) for row in s.values() for c in cheap)),
        "True",
    )
    yield "wall minutes", wall, rep["benchmark_wall_s"] / 60
    yield "two jobs", str(st["jobs"]), "2"
    ((evo, tpe, otpe, nsga, rnd, mobo),) = grab(
        r"evolution ([\d.]+), tradeoff's TPE ([\d.]+), Optuna's TPE ([\d.]+), NSGA-II ([\d.]+), "
        r"random ([\d.]+) \(mobo, which scores candidates on the exact sizes, ([\d.]+)\)"
    )
    row = rep["hv_fraction"]["bits8-budget"]
    keys = ("evolution", "tpe", "optuna-tpe", "optuna-nsga2", "optuna-random", "mobo")
    for cell, key in zip((evo, tpe, otpe, nsga, rnd, mobo), keys):
        yield f"bits8-budget {key}", cell, row[key]
    header = "| problem | auto (mobo>evolution) | evolution | Optuna TPE | Optuna NSGA-II |"
    header += " Optuna random |"
    yield from _grid(header, rep400["hv_fraction"])
    yield "400 evaluations", str(rep400["settings"]["n_trials"]), "400"
    ((lo, hi),) = grab(r"\(([\d.]+)-([\d.]+) s per proposal on average over the 400")
    yield "auto at 400, fastest", lo, min(r["auto"] for r in rep400["s_per_proposal"].values())
    yield "auto at 400, slowest", hi, max(r["auto"] for r in rep400["s_per_proposal"].values())


@check("proposal_speed.json")
def proposal_speed() -> Iterator[Figure]:
    rep = load("proposal_speed.json")
    medians = rep["median_s"]
    columns = {"mobo": "mobo", "Optuna GPSampler": "optuna-gp"}
    for label, mobo, gp in table("| problem | mobo | Optuna GPSampler |"):
        problem = PROBLEM_ROWS[label]
        yield f"{label} mobo", mobo, medians[problem][columns["mobo"]]
        yield f"{label} GP", gp, medians[problem][columns["Optuna GPSampler"]]
    ((lo, hi, n_obs),) = grab(
        r"A proposal takes ([\d.]+)-([\d.]+) s with (\d+) observations on 2 cores"
    )
    yield "mobo fastest", lo, min(row["mobo"] for row in medians.values())
    yield "mobo slowest", hi, max(row["mobo"] for row in medians.values())
    yield "observations", n_obs, rep["settings"]["n_obs"]
    ((n_obs2, proposals),) = grab(
        r"one proposal with (\d+) completed trials and one running, (\d+) proposals each"
    )
    yield "observations (table)", n_obs2, rep["settings"]["n_obs"]
    yield "proposals", proposals, rep["settings"]["proposals"]


@check("multi_fidelity.json", "optimizers.json")
def multi_fidelity() -> Iterator[Figure]:
    rep = load("multi_fidelity.json")
    yield from _grid(
        "| problem | auto (= mobo) | evolution | TPE | random |", rep["median_hv_fraction"]
    )
    st = rep["settings"]
    ((noise, ladder, eta, configs, low, high, mean, seeds),) = grab(
        r"relative noise ([\d.]+)/budget on the measured objectives, ladder ([\d/]+), eta (\d), "
        r"(\d+) Configs \((\d+)-(\d+) of them reach the top rung, (\d+) on average\), seeds 0-(\d)"
    )
    yield "noise", noise, st["noise"]
    yield "ladder", ladder, "/".join(map(str, st["ladder"]))
    yield "eta", eta, st["eta"]
    yield "Configs", configs, st["n_trials"]
    top_rung = str(len(st["ladder"]) - 1)
    tops = [r["evaluations_by_rung"].get(top_rung, 0) for r in rep["runs"]]
    yield "fewest Configs at the top", low, min(tops)
    yield "most Configs at the top", high, max(tops)
    yield "Configs at the top (mean)", mean, sum(tops) / len(tops)
    ((share,),) = grab(r"With at most (\d+)% of the Configs completing, every sampler is below its")
    yield "most completing (%)", share, 100 * max(tops) / st["n_trials"]
    full = load("optimizers.json")["hv_fraction"]
    below = all(
        rep["median_hv_fraction"][p][o] < full[p][o]
        for p in st["problems"]
        for o in st["optimizers"]
    )
    yield "every sampler below its full-budget score", str(below), "True"
    yield "last seed", seeds, st["seeds"] - 1


@check("known_costs.json")
def known_costs() -> Iterator[Figure]:
    rep = load("known_costs.json")
    r = rep["results"]
    ((storage_us, bitops_us, storage_ms, bitops_ms, n),) = grab(
        r"known: (\d+) µs a call for the storage and (\d+) µs for the bit-ops, against "
        r"([\d.]+) and "
        r"([\d.]+) ms to apply the Config and measure, median of (\d+) random Configs"
    )
    yield "storage µs", storage_us, r["weight_storage_bytes"]["known_states"]["median_us"]
    yield "bit-ops µs", bitops_us, r["bitops"]["known_states"]["median_us"]
    yield (
        "storage apply ms",
        storage_ms,
        r["weight_storage_bytes"]["apply_and_measure"]["median_us"] / 1000,
    )
    yield "bit-ops apply ms", bitops_ms, r["bitops"]["apply_and_measure"]["median_us"] / 1000
    yield "Configs", n, rep["settings"]["configs"]
    for name, cost in r.items():
        yield (
            f"{name} analytic and exact",
            str((cost["analytic"], cost["equal_on_applied_configs"])),
            "(True, True)",
        )


@check("known_costs.json")
def known_costs_elastic() -> Iterator[Figure]:
    arch = load("known_costs.json")["arch_results"]
    ((minilm_us, smollm2_us, minilm_ms, smollm2_ms, *bitops),) = grab(
        r"on SmolLM2-135M: (\d+) and (\d+) µs a call for the\s+storage against (\d+) and "
        r"(\d+) ms to apply and measure, (\d+) and (\d+) µs for the bit-ops against (\d+)\s+"
        r"and (\d+) ms"
    )
    figures = {
        "weight_storage_bytes": (minilm_us, smollm2_us, minilm_ms, smollm2_ms),
        "bitops": tuple(bitops),
    }
    for metric, (m_us, s_us, m_ms, s_ms) in figures.items():
        for model, us, ms in (("minilm", m_us, m_ms), ("smollm2", s_us, s_ms)):
            cost = arch[model]["results"][metric]
            yield f"{model} {metric} µs", us, cost["known_states"]["median_us"]
            yield f"{model} {metric} apply ms", ms, cost["apply_and_measure"]["median_us"] / 1000
            yield (
                f"{model} {metric} analytic and exact",
                str((cost["analytic"], cost["equal_on_applied_configs"])),
                "(True, True)",
            )
    yield "MiniLM searches heads", str("head_counts" in arch["minilm"]["arch"]), "True"


@check("variant_bank.json")
def variant_bank() -> Iterator[Figure]:
    rep = load("variant_bank.json")
    rows = {r["method"]: r for r in rep["result"]["methods"]}
    for row in table("| method | KL, uniform 3 bits |"):
        r = rows[row[0].lower()]
        for bits, text in zip(("3", "4", "5"), row[1:4]):
            yield f"{row[0]} KL {bits} bits", text, r["kl_uniform"][bits]
        yield f"{row[0]} build s", row[4].removesuffix(" s"), r["space_s"] + r["build_s"]
        bank = row[5].removesuffix(" MB")
        if bank != "(none)":
            yield f"{row[0]} bank MB", bank, r["bank_mb"]
        yield f"{row[0]} assemble ms", row[6].removesuffix(" ms"), r["assemble_s_median"] * 1e3
        yield f"{row[0]} apply s", row[7].strip("`").removesuffix(" s"), r["apply_s_median"]
    ((ratio, assemble, apply_s, evaluate),) = grab(
        r"GPTQ's KL is ([\d.]+)x lower than RTN's at every width .*? pointer swaps in ([\d.]+) "
        r"ms, against ([\d.]+) s for `space.apply`'s deep copy .*? takes ([\d.]+) s"
    )
    ratios = [rows["rtn"]["kl_uniform"][b] / rows["gptq"]["kl_uniform"][b] for b in "345"]
    yield "GPTQ KL ratio", ratio, min(ratios)
    yield "GPTQ KL ratio holds at every width", str(max(ratios) < float(ratio) + 0.15), "True"
    yield "assemble ms", assemble, rows["gptq"]["assemble_s_median"] * 1e3
    yield "apply s", apply_s, rows["gptq"]["apply_s_median"]
    yield "evaluate s", evaluate, rows["gptq"]["evaluate_s_median"]
    ((tokens, held_out),) = grab(
        r"GPTQ calibrated on ([\d,]+) Hamlet tokens; .*? on ([\d,]+) other"
    )
    yield "calibration tokens", tokens, rep["result"]["calibration_tokens"]
    yield "held-out tokens", held_out, rep["result"]["held_out_tokens"]
    machine = rep["machine"]
    loads = [*machine["load_avg_1_5_15_at_start"], *machine["load_avg_1_5_15_at_end"]]
    ((low, high),) = grab(r"1 torch thread, on 2 cores shared with other work at load average "
                          r"(\d+)-(\d+)\)")  # fmt: skip
    yield "bank load (low)", low, min(loads)
    yield "bank load (high)", high, max(loads)
    yield from _bank_packing(rows)


def _bank_packing(rows: dict[str, Any]) -> Iterator[Figure]:
    gptq, hqq = rows["gptq"], rows["hqq"]
    ((g_mb, h_mb, float_mb, g_ratio, h_ratio),) = grab(
        r"The bank's files hold the int codes bit-packed at their width beside their grid: "
        r"([\d,]+) MB for GPTQ and ([\d,]+) MB for HQQ .*? against ([\d,]+) MB for the float32 "
        r"weights and grids they dequantize to, ([\d.]+)x and ([\d.]+)x smaller"
    )
    yield "GPTQ bank MB", g_mb, gptq["bank_mb"]
    yield "HQQ bank MB", h_mb, hqq["bank_mb"]
    yield "float MB", float_mb, gptq["float_mb"]
    yield "float MB the same for HQQ", str(gptq["float_mb"] == hqq["float_mb"]), "True"
    yield "GPTQ packing ratio", g_ratio, gptq["float_mb"] / gptq["bank_mb"]
    yield "HQQ packing ratio", h_ratio, hqq["float_mb"] / hqq["bank_mb"]
    yield "every entry packed", str(gptq["codecs"] == hqq["codecs"] == ["int"]), "True"
    ((entries, g_load, h_load, cold, held, packed, g_deq, h_deq, times, _),) = grab(
        r"reading and dequantizing all ([\d,]+) GPTQ entries takes ([\d.]+) s \(HQQ ([\d.]+) "
        r"s\), the first assembly in a fresh copy of the space ([\d.]+) s, and a process using "
        r"every level holds the ([\d,]+) MB\. Keeping only the codes in RAM \(([\d,]+) MB\) "
        r"would instead cost ([\d.]+) s per Config \(HQQ ([\d.]+) s\) to dequantize the model "
        r"at one level, (\d+)x the assembly and (half) the evaluation"
    )
    yield "GPTQ entries", entries, gptq["entries"]
    yield "GPTQ load all s", g_load, gptq["load_all_s"]
    yield "HQQ load all s", h_load, hqq["load_all_s"]
    yield "cold assembly s", cold, gptq["assemble_cold_s"]
    yield "float MB held", held, gptq["float_mb"]
    yield "packed MB in RAM", packed, gptq["packed_tensors_mb"]
    yield "GPTQ dequantize s", g_deq, gptq["dequantize_model_s_median"]
    yield "HQQ dequantize s", h_deq, hqq["dequantize_model_s_median"]
    yield (
        "dequantize / assemble",
        times,
        gptq["dequantize_model_s_median"] / gptq["assemble_s_median"],
    )
    half = 0.4 < gptq["dequantize_model_s_median"] / gptq["evaluate_s_median"] < 0.6
    yield "dequantize is half the evaluation", str(half), "True"


@check("export.json")
def export_table() -> Iterator[Figure]:
    rep = load("export.json")
    rows = table("| Config | known size MB | file MB | file / known |")
    got = rep["checkpoints"]
    yield "rows", str([r[0] for r in rows]), str([c["config"] for c in got])
    for row, c in zip(rows, got):
        label, known, file_mb, ratio, scales, header, diffs = row
        yield f"{label} known MB", known, c["known_bytes"] / 1e6
        yield f"{label} file MB", file_mb, c["file_bytes"] / 1e6
        yield f"{label} ratio", ratio, c["file_over_known"]
        yield f"{label} scales MB", scales, c["scales_float32_extra_bytes"] / 1e6
        yield f"{label} header", header, c["header_bytes"]
        hf, ct = (d.strip() for d in diffs.split("/"))
        yield f"{label} transformers diff", hf, c["max_logit_diff_transformers"]
        yield f"{label} compressed-tensors diff", ct, c["max_logit_diff_compressed_tensors"]
        yield f"{label} explained", "0", f"{c['unexplained_bytes']:g}"
    ((low, high),) = grab(r"that is ([\d.]+)-([\d.]+)% over the known cost")
    overs = [100 * (c["file_over_known"] - 1) for c in got]
    yield "lowest overhead", low, min(overs)
    yield "highest overhead", high, max(overs)
    ((low, high),) = grab(r"Each export took (\d+)-(\d+) s\.")
    yield "export seconds (low)", low, min(c["export_s"] for c in got)
    yield "export seconds (high)", high, max(c["export_s"] for c in got)
    names = {"dense float32": "dense float32", "dense bfloat16": "dense bfloat16",
             "searched (float32)": "float32", "torchao": "torchao",
             "torchao bfloat16": "torchao_bfloat16"}  # fmt: skip
    rows = table("| Config | model | prefill 1x128 ms | decode batch 1 ms |")
    timed = [(c, key) for c in got if c["torchao"] for key in c["torchao"]["timing_ms"]]
    yield "timed rows", str(len(rows)), str(len(timed))
    for (label, model, prefill, one, sixteen, kl), (c, key) in zip(rows, timed):
        t, ao = c["torchao"]["timing_ms"][key], c["torchao"]
        yield f"{label} {model} row", f"{label} {names[model]}", f"{c['config']} {key}"
        yield f"{label} {model} prefill", prefill, t["prefill_1x128"]
        yield f"{label} {model} decode 1", one, t["decode_b1"]
        yield f"{label} {model} decode 16", sixteen, t["decode_b16"]
        kls = {"dense float32": 0.0, "dense bfloat16": rep["dense"]["bfloat16_kl"],
               "float32": ao["search_kl"], "torchao": ao["torchao"]["kl"],
               "torchao_bfloat16": ao["torchao_bfloat16"]["kl"]}  # fmt: skip
        yield f"{label} {model} KL", kl, kls[key]
        yield f"{label} torchao exact", "0", f"{ao['torchao']['max_logit_diff']:g}"
    timing = {c["config"]: c["torchao"] for c in got if c["torchao"]}
    works = ("prefill_1x128", "decode_b1", "decode_b16")
    slow = [t["timing_ms"]["torchao"][w] / t["timing_ms"]["float32"][w]
            for t in timing.values() for w in works]  # fmt: skip
    ((slow_lo, slow_hi),) = grab(r"slower\s+than float32 \(([\d.]+)-([\d.]+)x the time below\)")
    yield "float32 torchao slowdown (low)", slow_lo, min(slow)
    yield "float32 torchao slowdown (high)", slow_hi, max(slow)
    int4 = timing["uniform int4"]
    ms, b16 = int4["timing_ms"], int4["torchao_bfloat16"]
    ((one, sixteen, prefill),) = grab(
        r"int4 export takes ([\d.]+)x the searched\s+float32\s+model's time for a decode step "
        r"at batch 1, ([\d.]+)x at\s+"
        r"batch 16 and ([\d.]+)x for a 128-token prefill"
    )
    for text, work in ((one, "decode_b1"), (sixteen, "decode_b16"), (prefill, "prefill_1x128")):
        yield f"int4 kernel ratio {work}", text, ms["torchao_bfloat16"][work] / ms["float32"][work]
    ((kl, search, dense16, diff, top, size, size32),) = grab(
        r"measures KL ([\d.]+) against the ([\d.]+) the search measured \(the dense model cast "
        r"to\s+bfloat16 alone: ([\d.]+)\); its largest logit difference to the searched model\s+"
        r"is ([\d.]+) \(logits up to ([\d.]+)\), and its file is ([\d.]+) MB\s+"
        r"\(float32 torchao: ([\d.]+) MB\)"
    )
    yield "bfloat16 int4 KL", kl, b16["kl"]
    yield "search KL", search, int4["search_kl"]
    yield "dense bfloat16 KL", dense16, rep["dense"]["bfloat16_kl"]
    yield "bfloat16 int4 logit diff", diff, b16["max_logit_diff"]
    yield "largest logit", top, b16["max_abs_logit"]
    yield "bfloat16 int4 file MB", size, b16["file_bytes"] / 1e6
    yield "float32 torchao file MB", size32, int4["torchao"]["file_bytes"] / 1e6
    yield "int4 layers on the kernel", "210", str(b16["tensors"].get("Int4OpaqueTensor"))
    int8 = timing["uniform int8"]
    assert int8["torchao_bfloat16"]["tensors"].get("Int4OpaqueTensor") is None
    ((lo8, hi8),) = grab(r"the bfloat16 export takes ([\d.]+)-([\d.]+)x float32's time")
    i8 = [int8["timing_ms"]["torchao_bfloat16"][w] / int8["timing_ms"]["float32"][w] for w in works]
    yield "int8 bfloat16 slowdown (low)", lo8, min(i8)
    yield "int8 bfloat16 slowdown (high)", hi8, max(i8)
    ((d1lo, d1hi),) = grab(
        r"the same dense float32 model took (\d+) and\s+(\d+) ms per decode step"
    )
    d1 = [t["timing_ms"]["dense float32"]["decode_b1"] for t in timing.values()]
    yield "dense decode spread (low)", d1lo, min(d1)
    yield "dense decode spread (high)", d1hi, max(d1)
    rows = table("| Linear (out x in) | rows | float32 ms | bfloat16 ms | int4 ms |")
    yield "kernel rows", str(len(rows)), str(len(rep["kernels"]))
    for (shape, n, fp32, bf16, int4_ms), k in zip(rows, rep["kernels"]):
        yield f"kernel {shape} {n} shape", f"{shape} {n}", f"{k['out']}x{k['in']} {k['rows']}"
        yield f"kernel {shape} {n} float32", fp32, k["float32_ms"]
        yield f"kernel {shape} {n} bfloat16", bf16, k["bfloat16_ms"]
        yield f"kernel {shape} {n} int4", int4_ms, k["int4_ms"]
    ((load_lo, load_hi),) = grab(r"Hamlet tokens; load average ([\d.]+)-([\d.]+) on 2 shared")
    yield "load at start", load_lo, rep["machine"]["load_avg_1_5_15_at_start"][0]
    yield "load at end", load_hi, rep["machine"]["load_avg_1_5_15_at_end"][0]


@check("compress.json")
def compress_gptq_vs_rtn() -> Iterator[Figure]:
    rep = load("compress.json")
    res = rep["result"]
    runs, budget = res["runs"], res["budget_mb"]
    ((minutes, lo, hi),) = grab(
        r"a fresh bank directory; (\d+) min in all with the runs below, on 2 cores shared with "
        r"other jobs, load average ([\d.]+)-([\d.]+)\)"
    )
    loads = [rep["machine"][f"load_avg_1_5_15_at_{t}"][0] for t in ("start", "end")]
    loads += [r["timing"]["load_avg_1_at_end"] for r in [*runs.values(), res["full_fidelity_run"]]]
    yield "minutes", minutes, rep["benchmark_wall_s"] / 60
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    ((n_configs,),) = grab(
        r"uniform and knapsack starts, the default ladder, (\d+) Configs, seed 0"
    )
    yield "Configs", n_configs, rep["settings"]["n_trials"]
    ((hv_gptq, hv_rtn, kl_gptq, kl_rtn, matched, points),) = grab(
        r"GPTQ's front has hypervolume ([\d.]+) against RTN's ([\d.]+) \(reference: KL 1, "
        r"[\d.]+ MB\) and KL ([\d.]+) at the budget against ([\d.]+); a GPTQ point matches or "
        r"dominates (\d+) of the (\d+) RTN Pareto points"
    )
    yield "GPTQ hypervolume", hv_gptq, runs["gptq"]["hypervolume"]
    yield "RTN hypervolume", hv_rtn, runs["rtn"]["hypervolume"]
    for name, text in (("gptq", kl_gptq), ("rtn", kl_rtn)):
        at_budget = min(p["kl"] for p in runs[name]["pareto"] if p["size_mb"] <= budget)
        yield f"{name} KL at the budget", text, at_budget
    comparison = res["comparison"]
    yield "RTN points matched", matched, comparison["rtn_points_matched_or_dominated_by_gptq"]
    yield "RTN points", points, comparison["rtn_points"]


@check("gptq_vs_rtn.json")
def gptq_vs_rtn_same_configs() -> Iterator[Figure]:
    """SmolLM2: both searches' Configs measured with both methods (issue #13's target)."""
    rep = load("gptq_vs_rtn.json")
    res = rep["result"]
    same, runs = res["same_configs"], res["runs"]
    ((commit, minutes, lo, hi),) = grab(
        r"`benchmarks/results/gptq_vs_rtn.json`, clean clone of ([0-9a-f]+), (\d+) min at one "
        r"torch thread, load ([\d.]+)-([\d.]+)\)"
    )
    yield from clean_clone(rep, commit, lo, hi)
    yield "minutes", minutes, rep["benchmark_wall_s"] / 60
    yield "one thread", str(rep["settings"]["threads"]), "1"
    yield "command", rep["command"], "python benchmarks/gptq_vs_rtn.py --threads 1"
    ((hv_r, hv_g, n, rtn_only, gptq_only, both),) = grab(
        r"seed 0 \(hypervolumes ([\d.]+) and ([\d.]+) again\), and each of the (\d+) Configs "
        r"either one measured \((\d+) by RTN's run alone, (\d+) by GPTQ's alone, (\d+) by both\)"
    )
    compress = load("compress.json")["result"]["runs"]
    for name, text in (("rtn", hv_r), ("gptq", hv_g)):
        yield f"{name} search re-run", text, runs[name]["hypervolume"]
        yield f"{name} as compress.json", text, compress[name]["hypervolume"]
    yield "Configs", n, same["configs"]
    for text, key in ((rtn_only, "rtn"), (gptq_only, "gptq"), (both, "rtn+gptq")):
        yield f"Configs of {key}", text, same["configs_by_runs"][key]
    yield "all within the budget", str(same["within_budget"]), str({"rtn": int(n), "gptq": int(n)})
    check = same["rerun_vs_run"]  # the runs' own full-budget values, measured again
    yield "re-measured = the runs'", str(check["max_abs_diff"] + check["max_size_diff"]), "0.0"
    ((points, low, high, hv_g2, hv_r2),) = grab(
        r"each of RTN's (\d+) Pareto points has a GPTQ point as small with ([\d.]+)-([\d.]+) of "
        r"its KL, and the hypervolume is ([\d.]+) against ([\d.]+)\."
    )
    unmatched = same["unmatched"]
    yield "met", str(unmatched["dominates_in_range"] and not unmatched["below_gptq_range"]), "True"
    yield "RTN front points", points, unmatched["rtn_points"]
    gptq_front = same["fronts"]["gptq"]
    ratios = [
        min(q["value"] for q in gptq_front if q["size"] <= p["size"]) / p["value"]
        for p in same["fronts"]["rtn"]
    ]
    yield "ratio low", low, min(ratios)
    yield "ratio high", high, max(ratios)
    yield "hypervolume gptq", hv_g2, same["hypervolume"]["gptq"]
    yield "hypervolume rtn", hv_r2, same["hypervolume"]["rtn"]
    ((worse, of, b_lo, b_hi, n_bits, d_lo, d_hi, by_lo, by_hi),) = grab(
        r"GPTQ is worse on (\d+) of the (\d+) Configs, each with (\d+)-(\d+) of its (\d+) bit "
        r"settings at 3 bits and (\d+)-(\d+) blocks dropped, where either method's KL is above 2 "
        r"\(GPTQ's higher by ([\d.]+)-([\d.]+)\)"
    )
    per = same["per_config"]
    yield "worse", worse, per["worse"]
    yield "of", of, same["configs"]
    bad = per["worse_configs"]
    threes = [sum(k.endswith(".bits") and v == 3 for k, v in w["config"].items()) for w in bad]
    yield "3-bit settings low", b_lo, min(threes)
    yield "3-bit settings high", b_hi, max(threes)
    settings = {sum(k.endswith(".bits") for k in w["config"]) for w in bad}
    yield "bit settings", n_bits, settings.pop() if len(settings) == 1 else str(settings)
    dropped = [sum(k.endswith(".keep") and v is False for k, v in w["config"].items()) for w in bad]
    yield "dropped low", d_lo, min(dropped)
    yield "dropped high", d_hi, max(dropped)
    yield "KL above 2", str(min(min(w["rtn"], w["gptq"]) for w in bad) > 2), "True"
    yield "by low", by_lo, min(w["by"] for w in bad)
    yield "by high", by_hi, max(w["by"] for w in bad)


@check("compress.json")
def compress_knapsack() -> Iterator[Figure]:
    res = load("compress.json")["result"]
    k = res["knapsack_vs_front"]
    yield "method", res["method"], "gptq"
    ((n, low, top, n_configs, first, last, u_first, u_last, hv_k, hv_s, hv_f),) = grab(
        r"knapsack over the summed errors .*? at (\d+) budgets from uniform 3-bit's ([\d.]+) MB "
        r"to ([\d.]+) MB\. Its (\d+) Configs are the GPTQ run's trials #(\d+)-#(\d+), right "
        r"after the uniform levels \(#(\d+)-#(\d+)\), all measured at full fidelity\. Alone "
        r"they have hypervolume ([\d.]+), with the uniform levels ([\d.]+); the front has "
        r"([\d.]+)\."
    )
    yield "budgets", n, len(k["budgets_mb"])
    yield "lowest budget", low, k["budgets_mb"][0]
    yield "top budget", top, k["budgets_mb"][-1]
    trials = sorted(p["trial"] for p in k["configs"])
    yield "knapsack Configs", n_configs, len(trials)
    yield "knapsack trials", f"{first}-{last}", f"{trials[0]}-{trials[-1]}"
    yield (
        "knapsack trials consecutive",
        str(trials == list(range(trials[0], trials[-1] + 1))),
        "True",
    )
    uniform = sorted(set(k["start_trials"]) - set(trials))
    yield "uniform trials", f"{u_first}-{u_last}", f"{uniform[0]}-{uniform[-1]}"
    yield "starts first", str(k["start_trials"] == list(range(len(k["start_trials"])))), "True"
    yield "full fidelity", str(k["all_full_fidelity"]), "True"
    yield "hypervolume knapsack", hv_k, k["hypervolume_knapsack"]
    yield "hypervolume starts", hv_s, k["hypervolume_starts"]
    yield "hypervolume front", hv_f, k["hypervolume_front"]
    header = "| knapsack budget, MB | knapsack KL | knapsack MB | front's best KL | its trial |"
    rows = table(header)
    yield "rows", str(len(rows)), str(len(k["at_budgets"]))
    for cells, r in zip(rows, k["at_budgets"]):
        b = cells[0]
        yield f"{b} budget", b, r["budget_mb"]
        yield f"{b} knapsack KL", cells[1], r["knapsack"]["kl"]
        yield f"{b} knapsack MB", cells[2], r["knapsack"]["size_mb"]
        yield f"{b} front KL", cells[3], r["front"]["kl"]
        yield f"{b} front trial", cells[4], f"#{r['front']['trial']}"
        yield f"{b} search KL", cells[5], r["search_only"]["kl"]
    ((better, of, own, own_trials, uniform_n, rest),) = grab(
        r"The front is better than the knapsack at (\d+) of the (\d+) budgets: at (\d+) with "
        r"Configs the search found \(([#\d, ]+)\), at (\d+) with a uniform level .*? at the "
        r"other (\d+) the knapsack's own Config is the best there is"
    )
    rows_better = [r for r in k["at_budgets"] if r["front_better"]]
    yield "budgets front better", better, k["budgets_front_better"]
    yield "of budgets", of, len(k["at_budgets"])
    yield "search better", own, k["budgets_search_only_better"]
    starts = set(k["start_trials"])
    found = [r["front"]["trial"] for r in rows_better if r["front"]["trial"] not in starts]
    yield "search's trials", own_trials, ", ".join(f"#{t}" for t in found)
    yield "uniform better", uniform_n, len(rows_better) - len(found)
    knap = {p["trial"] for p in k["configs"]}
    yield "rest", rest, sum(r["front"]["trial"] in knap for r in k["at_budgets"])
    ((gaps, of_gaps, search_pts, uniform_pt),) = grab(
        r"the front has points no knapsack Config dominates in (\d+) of the (\d+) gaps "
        r"\(([#\d, ]+) from the search, (#\d+) uniform 4-bit\)"
    )
    yield "gaps beaten", gaps, k["gaps_beaten"]
    yield "gaps", of_gaps, len(k["between"])
    search, uniform = _gap_points(k)
    yield "gap points (search)", search_pts, ", ".join(f"#{t}" for t in search)
    yield "gap points (uniform)", uniform_pt, ", ".join(f"#{t}" for t in uniform)


def _gap_points(k: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The trials of the front's points between the knapsack's sizes that no knapsack Config
    dominates (``knapsack_vs_front``'s), gap by gap: the search's, then the starts'."""
    starts = set(k["start_trials"])
    points = [p["trial"] for g in k["between"] for p in g["undominated_front_points"]]
    return [t for t in points if t not in starts], [t for t in points if t in starts]


def _trial_list(text: str) -> list[int]:
    """``#99, #170 and #1`` -> ``[99, 170, 1]``."""
    return [int(t) for t in re.findall(r"#(\d+)", text)]


@check("compress_100.json")
def compress_knapsack_100() -> Iterator[Figure]:
    """The knapsack against the front at compress's default 100 trials, both runs (#14)."""
    rep = load("compress_100.json")
    res = rep["result"]
    ((command, commit, lo, hi),) = grab(
        r"At compress's default of 100 trials \(`(python benchmarks/compress\.py [^`]+)`, "
        r"`benchmarks/results/compress_100\.json`, a clean clone of (\w+), a fresh bank, load "
        r"([\d.]+)-([\d.]+)\)"
    )
    yield "command", command, rep["command"].split(" --out")[0]
    yield from clean_clone(rep, commit, lo, hi)
    ((configs, top, better, gaps, n_gaps, search, uniform, hv_front, hv_knap),) = grab(
        r"the ladder run measured (\d+) Configs, (\d+) of them on all 9 windows, and its front is "
        r"better than the knapsack at (\d+) of the 10 budgets, each time with a uniform level, "
        r"never with a Config of the search; between consecutive knapsack sizes it has points no "
        r"knapsack Config dominates in (\d+) of the (\d+) gaps \(([#\d, ]+) from the search, "
        r"([#\d and]+) uniform\)\. Its hypervolume is ([\d.]+), against ([\d.]+) for the "
        r"knapsack's Configs alone\."
    )
    run, k = res["runs"]["gptq"], res["knapsack_vs_front"]
    yield "configs", configs, run["statuses"]["complete"] + run["statuses"]["stopped"]
    yield "configs at the top rung", top, run["statuses"]["complete"]
    yield "budgets better", better, k["budgets_front_better"]
    yield "search's own better", "0", k["budgets_search_only_better"]
    starts = set(k["start_trials"])
    picks = {r["front"]["trial"] for r in k["at_budgets"] if r["front_better"]}
    yield (
        "better with uniform levels only",
        "True",
        str(picks <= starts - {p["trial"] for p in k["configs"]}),
    )
    yield "gaps beaten", gaps, k["gaps_beaten"]
    yield "gaps", n_gaps, len(k["between"])
    from_search, from_starts = _gap_points(k)
    yield "gap points from the search", str(_trial_list(search)), str(from_search)
    yield "gap points uniform", str(_trial_list(uniform)), str(from_starts)
    yield "front hypervolume", hv_front, k["hypervolume_front"]
    yield "knapsack hypervolume", hv_knap, k["hypervolume_knapsack"]
    full = res["full_fidelity_run"]
    fk = full["knapsack_vs_front"]
    ((search_s, full_knap_s, low_knap_s, full_hv_knap, full_hv, full_better, full_gaps),) = grab(
        r"stopped after the first one's (\d+) s of search, measured the knapsack on all 9 windows "
        r".*? which took (\d+) s against (\d+) s\. That knapsack alone has hypervolume ([\d.]+), "
        r"above the ladder run's final front; the run's front ends at ([\d.]+), better than its "
        r"knapsack at (\w+) of the 10 budgets and between its sizes in (\d+) of the 9 gaps\."
    )
    yield "search seconds", search_s, run["timing"]["search_s"]
    yield "full's knapsack seconds", full_knap_s, full["timing"]["knapsack_s"]
    yield "ladder's knapsack seconds", low_knap_s, run["timing"]["knapsack_s"]
    yield "full's knapsack hypervolume", full_hv_knap, fk["hypervolume_knapsack"]
    yield (
        "above the ladder's front",
        "True",
        str(fk["hypervolume_knapsack"] > k["hypervolume_front"]),
    )
    yield "full's front", full_hv, full["hypervolume"]
    yield "full's budgets better", full_better, NUMBER_WORDS[fk["budgets_front_better"]]
    yield "full's gaps", full_gaps, fk["gaps_beaten"]
    ((miss_ladder, miss_full),) = grab(r"in 6 and 7 of the 9 gaps: missed in (\d) and (\d)\.")
    yield "gaps missed, ladder", miss_ladder, len(k["between"]) - k["gaps_beaten"]
    yield "gaps missed, full", miss_full, len(fk["between"]) - fk["gaps_beaten"]


@check("knapsack_proxy.json")
def knapsack_proxy() -> Iterator[Figure]:
    """The knapsack's Configs from per-block measurements on 1, 3 or 9 windows (#14)."""
    rep = load("knapsack_proxy.json")
    ((command, commit, lo, hi),) = grab(
        r"How much data the knapsack's measurements need \(`(python benchmarks/knapsack_proxy\.py "
        r"[^`]+)`, `benchmarks/results/knapsack_proxy\.json`, a clean clone of (\w+), load "
        r"([\d.]+)-([\d.]+)\)"
    )
    yield "command", command, rep["command"].split(" --out")[0].replace("/tmp/bank18", "DIR")
    yield from clean_clone(rep, commit, lo, hi)
    runs = {r["proxy_budget_seqs"]: r for r in rep["result"]["runs"]}
    rows = table("| windows per block measurement | knapsack measured, s |")
    yield "rows", str(sorted(runs)), str([int(r[0]) for r in rows])
    for windows, seconds, kl, hv, with_uniform in rows:
        r = runs[int(windows)]
        yield f"{windows} all at full fidelity", "True", str(r["all_full_fidelity"])
        yield f"{windows} seconds", seconds, r["knapsack_measured_s"]
        yield f"{windows} KL at the budget", kl, r["kl_at_budget"]
        yield f"{windows} hypervolume", hv, r["hypervolume_knapsack"]
        yield f"{windows} with uniform", with_uniform, r["hypervolume_with_uniform"]
    ((less, more_hv, more_kl, share, fix),) = grab(
        r"gave the knapsack Configs worth ([\d.]+) less hypervolume than 3 windows did: .*? 3 "
        r"windows did as well as all 9 \(([\d.]+) more hypervolume, ([\d.]+) more KL at the "
        r"budget\) in (\d+)% of the time\. Since (\w+) compress measures the knapsack at the "
        r"ladder's second rung by default"
    )
    one, three, nine = runs[1], runs[3], runs[9]
    yield "1 window's loss", less, three["hypervolume_knapsack"] - one["hypervolume_knapsack"]
    yield "3 windows' gain", more_hv, three["hypervolume_knapsack"] - nine["hypervolume_knapsack"]
    yield "3 windows' KL", more_kl, three["kl_at_budget"] - nine["kl_at_budget"]
    yield "time share", share, 100 * three["knapsack_measured_s"] / nine["knapsack_measured_s"]
    default = _git("log", "--format=%h", "-S", "ladder.budgets[min(1, len(ladder.budgets) - 1)]")
    yield "default commit", fix, default.splitlines()[-1]


@check("compress_100_proxy3.json", "compress_100.json")
def compress_knapsack_100_proxy3() -> Iterator[Figure]:
    """The 100-trial call with the knapsack at the ladder's second rung (#14)."""
    rep = load("compress_100_proxy3.json")
    res = rep["result"]
    ((commit, lo, hi),) = grab(
        r"`benchmarks/results/compress_100_proxy3\.json`, the same command, a clean clone of "
        r"(\w+), load ([\d.]+)-([\d.]+);"
    )
    first = load("compress_100.json")["command"].split(" --out")[0]
    yield "the same command", first, rep["command"].split(" --out")[0]
    yield from clean_clone(rep, commit, lo, hi)
    after = subprocess.run(["git", "merge-base", "--is-ancestor", "f01c32c", commit], cwd=ROOT)
    yield "the new default in the clone", "0", str(after.returncode)
    k, old = res["knapsack_vs_front"], load("compress_100.json")["result"]["knapsack_vs_front"]
    ((hv_k, hv_f, hv_old, better, gaps, n_gaps, found, uniform, missed),) = grab(
        r"the knapsack, from 3 windows now, has hypervolume ([\d.]+) and the ladder run's front "
        r"([\d.]+), where it had ([\d.]+) with the knapsack from 1 window\. .*?the front is "
        r"better at (\w+) of the 10 budgets, .*? the front has points no knapsack Config dominates "
        r"in (\d+) of the (\d+) gaps, all found by the search \(([#\d, and]+), beside uniform "
        r"4-bit #(\d+)\): missed in (\d+)\."
    )
    yield "knapsack hypervolume", hv_k, k["hypervolume_knapsack"]
    yield "front hypervolume", hv_f, k["hypervolume_front"]
    yield "before", hv_old, old["hypervolume_front"]
    yield "budgets better", better, NUMBER_WORDS[k["budgets_front_better"]]
    yield "gaps", gaps, k["gaps_beaten"]
    yield "of", n_gaps, len(k["between"])
    yield "missed", missed, len(k["between"]) - k["gaps_beaten"]
    starts = set(k["start_trials"])
    from_search, from_starts = _gap_points(k)
    yield "search's points", str(_trial_list(found)), str(from_search)
    yield "uniform point", str(_trial_list(f"#{uniform}")), str(from_starts)
    beaten = [bool([p for p in g["undominated_front_points"] if p["trial"] not in starts])
              for g in k["between"]]  # fmt: skip
    yield "every beaten gap by the search", str(k["gaps_beaten"]), str(sum(beaten))
    full, fid = res["full_fidelity_run"], res["fidelity"]
    ((full_knap, search_s, full_hv, saving, mf_s, full_s),) = grab(
        r"The run at full fidelity \(its knapsack from all 9 windows, ([\d.]+)\), stopped after "
        r"the ladder run's (\d+) s of search, ended at ([\d.]+): the ladder run reached that "
        r"(\d+)% sooner from the first trial \((\d+) s against (\d+) s\), and full fidelity never "
        r"reached the ladder's final\."
    )
    yield "full's knapsack", full_knap, full["knapsack_vs_front"]["hypervolume_knapsack"]
    yield "search seconds", search_s, res["runs"]["gptq"]["timing"]["search_s"]
    yield "full's final", full_hv, fid["full_final_hypervolume"]
    yield "saving", saving, 100 * fid["saving"]
    yield "ladder reaches full's final", mf_s, fid["mf_reached_full_final_s"]
    yield "full reaches its final", full_s, fid["full_reached_its_final_s"]
    yield "full never reaches the ladder's", "None", str(fid["full_reached_mf_final_s"])
    ((twice,),) = grab(r"that is the saving of multi-fidelity here: (\d+)%, against the 67-75%")
    yield "saving again", twice, 100 * fid["saving"]


@check("compress.json")
def compress_time_and_fidelity() -> Iterator[Figure]:
    res = load("compress.json")["result"]
    first, rtn = res["first_front"], res["runs"]["rtn"]["timing"]
    mf = res["runs"]["gptq"]["timing"]
    ((bank, knap, t1, n_starts, lo, hi, t2, end, rtn_done),) = grab(
        r"the bank \(every block at every level\) are done after (\d+) s, the knapsack's "
        r"per-block measurements after another (\d+) s, the first trial finishes at (\d+) s and "
        r"all (\d+) starting Configs \(a front from ([\d.]+) to ([\d.]+) MB\) at (\d+) s; the "
        r"call returns at (\d+) s\. RTN, which needs no bank, has its \d+ starts done at "
        r"(\d+) s"
    )
    yield "bank s", bank, first["bank_s"]
    yield "knapsack s", knap, first["knapsack_s"]
    yield "first trial s", t1, first["first_trial_s"]
    yield "starts", n_starts, len(mf["start_trials"])
    sizes = [p["size_mb"] for p in res["knapsack_vs_front"]["configs"]]
    yield "front from", lo, min(sizes)
    yield "front to", hi, max(sizes)
    yield "starts done s", t2, first["starts_done_s"]
    yield "end s", end, first["wall_s"]
    yield "rtn starts done s", rtn_done, rtn["starts_done_s"]


def _fidelity_only_run(rep: dict[str, Any], commit: str, lo: str, hi: str) -> Iterator[Figure]:
    """A ``compress.py --fidelity-only`` run from a clean clone of ``commit`` under that load."""
    yield from clean_clone(rep, commit, lo, hi)
    yield (
        "command",
        rep["command"].split(" --bank")[0],
        "python benchmarks/compress.py --fidelity-only",
    )


@check("compress_fidelity_36.json")
def compress_fidelity_36() -> Iterator[Figure]:
    """Multi- against full fidelity with 36 held-out windows, one seed (issue #14)."""
    rep = load("compress_fidelity_36.json")
    res = rep["result"]
    ((ladder, proxy, commit, seed, first, lo, hi),) = grab(
        r"--eval-seqs 36 --rank-configs 0`: ladder ([\d, and]+) windows, the knapsack at (\d+); "
        r"`benchmarks/results/compress_fidelity_36\.json`, a clean clone of (\w+), seed (\d+), "
        r"([\w-]+) first, load ([\d.]+)-([\d.]+)\)"
    )
    yield from _fidelity_only_run(rep, commit, lo, hi)
    yield "eval seqs", "36", str(rep["command"].split("--eval-seqs ")[1].split()[0])
    seqs = res["ladder_seqs"]
    yield "ladder", ladder, ", ".join(map(str, seqs[:-1])) + f" and {seqs[-1]}"
    yield "knapsack budget", proxy, res["proxy_budget_seqs"]
    (pair,) = res["pairs"]
    yield "seed", seed, pair["seed"]
    yield "first run", first, pair["order"][0]
    ((mf_hv, ff_hv, mf_s, ff_s),) = grab(
        r"multi-fidelity ended at ([\d.]+) against full fidelity's ([\d.]+), and, from each "
        r"run's first trial, reached its own final after (\d+) s where full fidelity had "
        r"reached that value after (\d+) s"
    )
    f = pair["from_first_trial"]
    yield "mf final", mf_hv, f["mf_final_hypervolume"]
    yield "full final", ff_hv, f["full_final_hypervolume"]
    yield "mf reached its final", mf_s, f["mf_reached_its_final_s"]
    yield "full reached mf final", ff_s, f["full_reached_mf_final_s"]
    yield "never reaches", str(f["mf_reached_full_final_s"]), "None"
    ((mf_search, ff_search, rungs, full),) = grab(
        r"Its search was shorter \((\d+) s against (\d+) s; (.*?), against (\d+ x [\d.]+) s\)"
    )
    yield "mf search", mf_search, f["end_s"]["multi-fidelity"]
    yield "full search", ff_search, f["end_s"]["full fidelity"]
    runs = pair["runs"]
    parts = [
        f"{r['evaluations']} x {r['mean_s']:.2f} s at {r['seqs']}"
        for r in runs["multi-fidelity"]["rungs"]
    ]
    parts[0] += " windows"
    yield "rungs", rungs, ", ".join(parts[:-1]) + f" and {parts[-1]}"
    ff = runs["full fidelity"]
    yield "full evaluations", full, f"{ff['trials']} x {ff['mean_evaluation_s']:.2f}"
    ((last,),) = grab(r"full fidelity's last gain came from its (\d+)th trial")
    curve = f["curves"]["full fidelity"]
    gain = next(i for i, (_, hv) in enumerate(curve) if hv == curve[-1][1])
    yield "last gain trial", last, gain + 1


def _equal_time_runs(rep: dict[str, Any]) -> Iterator[tuple[int, str, int, dict[str, Any]]]:
    """Each run of a ``--equal-time`` report: seed, name, place in its pair's order, figures."""
    for p in rep["result"]["pairs"]:
        for place, name in enumerate(p["order"], 1):
            run = p["runs"][name]
            starts = len(run["timing"]["start_trials"])
            rungs = run["rungs"] or [
                {"evaluations": run["trials"], "mean_s": run["mean_evaluation_s"],
                 "total_s": run["evaluation_s_total"]}
            ]  # fmt: skip
            evaluations = sum(r["evaluations"] for r in rungs)
            spent = sum(r["total_s"] for r in rungs)
            yield p["seed"], name, place, {
                "configs": rungs[0]["evaluations"] + (starts if run["rungs"] else 0),
                "rungs": rungs,
                "outside": (run["timing"]["search_s"] - spent) / evaluations,
                "hypervolume": run["hypervolume"],
                "starts": starts,
                "curve": p["from_first_trial"],
            }  # fmt: skip


def _promoted_shares(run: dict[str, Any]) -> tuple[float, float]:
    """Percent of a ladder run's new Configs (its rung-0 evaluations) measured again at the
    second rung and at the top (the starts, which run only there, left out)."""
    new = run["rungs"][0]["evaluations"]
    return (100 * run["rungs"][1]["evaluations"] / new,
            100 * (run["rungs"][2]["evaluations"] - run["starts"]) / new)  # fmt: skip


@check("compress_fidelity_equal_time.json", "compress_fidelity_equal_time_after.json")
def compress_fidelity_equal_time() -> Iterator[Figure]:
    """Multi- against full fidelity at equal wall time, before and after a5e141f (#14)."""
    ((command, seconds, prose),) = grab(
        r"At equal wall time instead of equal trials: `(python benchmarks/compress\.py "
        r"--fidelity-only --bank DIR --seeds 0,1 --equal-time (\d+) --n-trials \d+ "
        r"--rank-configs 0)` stops each run\s+proposing (\d+) s after"
    )
    yield "seconds in the prose", prose, seconds
    reps = {}
    for when, name in (("before", ""), ("after", "_after")):
        ((commit, lo, hi),) = grab(
            rf"`benchmarks/results/compress_fidelity_equal_time{name}\.json`, a clean clone of "
            r"(\w+), load ([\d.]+)-([\d.]+)\)"
        )
        rep = reps[commit] = load(f"compress_fidelity_equal_time{name}.json")
        yield from clean_clone(rep, commit, lo, hi)
        bank = rep["command"].split("--bank ")[1].split()[0]
        ran = rep["command"].split(" --out")[0].replace(bank, "DIR")
        yield f"{when} command", ran, command
        yield f"{when} seconds", seconds, rep["result"]["equal_time_s"]
        starts = {r["starts"] for *_, r in _equal_time_runs(rep)}
        yield f"{when} starts", "{13}", str(starts)
        for *_, r in _equal_time_runs(rep):  # the cap was never reached
            yield f"{when} under the cap", "True", str(r["configs"] < rep["result"]["n_trials"])
    header = "| seed | code | run (order) | Configs | evaluations: count x seconds |"
    rows = table(header)
    yield "rows", str(len(rows)), "8"
    runs = {
        (str(seed), commit, f"{name} ({place}.)"): r
        for commit, rep in reps.items()
        for seed, name, place, r in _equal_time_runs(rep)
    }
    yield "runs", str(sorted(runs)), str(sorted((a, b, c) for a, b, c, *_ in rows))
    for seed, commit, run, configs, evaluations, outside, final in rows:
        r = runs[(seed, commit, run)]
        label = f"{seed} {commit} {run}"
        yield f"{label} Configs", configs, r["configs"]
        cells = ", ".join(f"{x['evaluations']} x {x['mean_s']:.2f}" for x in r["rungs"])
        yield f"{label} evaluations", evaluations, cells
        yield f"{label} outside", outside, r["outside"]
        yield f"{label} final", final, r["hypervolume"]
    by = {(commit, seed, name.startswith("multi")): r for (seed, commit, name), r in runs.items()}
    before, after = reps
    full_higher = all(by[(c, s, False)]["hypervolume"] > by[(c, s, True)]["hypervolume"]
                      for c in reps for s in ("0", "1"))  # fmt: skip
    yield "full fidelity higher in all four", "True", str(full_higher)

    def spread(commit: str, mf: bool) -> str:
        values = [by[(commit, s, mf)]["outside"] for s in ("0", "1")]
        return f"{min(values):.3f}-{max(values):.3f}"

    ((b_mf, b_full, b_c0, b_c1, b_f0, b_f1, a_mf, a_c0, a_c1, a_f0, a_f1),) = grab(
        r"each of the ladder's evaluations cost ([\d.-]+) s outside the evaluation \(full "
        r"fidelity's: ([\d.-]+) s\).*?bought only (\d+) and (\d+) Configs against (\d+) and "
        r"(\d+)\. After it, ([\d.-]+) s, the same as full fidelity's, and (\d+) and (\d+) "
        r"Configs against (\d+) and (\d+);"
    )
    yield "before mf outside", b_mf, spread(before, True)
    yield "before full outside", b_full, spread(before, False)
    yield "after mf outside", a_mf, spread(after, True)
    for commit, figures in ((before, (b_c0, b_c1, b_f0, b_f1)), (after, (a_c0, a_c1, a_f0, a_f1))):
        want = [by[(commit, s, mf)]["configs"] for mf in (True, False) for s in ("0", "1")]
        for got, value in zip(figures, want):
            yield f"{commit} Configs", got, value
    ((led, of, short0, short1),) = grab(
        r"with seed 0 multi-fidelity led at (\d+) of the (\d+) checkpoints and ended ([\d.]+) "
        r"short, with seed 1 ([\d.]+) short"
    )
    curve = by[(after, "0", True)]["curve"]["at_checkpoints"]
    mf, full = curve["multi-fidelity"], curve["full fidelity"]
    yield "checkpoints", of, len(mf)
    yield "led at", led, sum(a > b for a, b in zip(mf, full))
    for seed, short in (("0", short0), ("1", short1)):
        gap = by[(after, seed, False)]["hypervolume"] - by[(after, seed, True)]["hypervolume"]
        yield f"seed {seed} short", short, gap
    ((r_lo, r_hi, low_lo, low_hi, top_lo, top_hi, p1_lo, p1_hi, p2_lo, p2_hi),) = grab(
        r"its lowest\s+rung is only (\d+)-(\d+) times cheaper than the full budget "
        r"\(([\d.]+)-([\d.]+) s against ([\d.]+)-([\d.]+) s a\s+evaluation.*?promoted "
        r"(\d+)-(\d+)% of its new Configs to 3 windows and (\d+)-(\d+)% to 9"
    )
    mfs = [by[(after, s, True)] for s in ("0", "1")]
    fulls = [by[(after, s, False)] for s in ("0", "1")]
    lows = [r["rungs"][0]["mean_s"] for r in mfs]
    tops = [r["rungs"][0]["mean_s"] for r in fulls]
    ratios = [t / low for t, low in zip(tops, lows)]
    yield "ratio low", r_lo, math.floor(min(ratios))
    yield "ratio high", r_hi, math.ceil(max(ratios))
    yield "lowest rung low", low_lo, min(lows)
    yield "lowest rung high", low_hi, max(lows)
    yield "full low", top_lo, min(tops)
    yield "full high", top_hi, max(tops)
    to3, to9 = zip(*map(_promoted_shares, mfs))
    yield "to 3 low", p1_lo, min(to3)
    yield "to 3 high", p1_hi, max(to3)
    yield "to 9 low", p2_lo, min(to9)
    yield "to 9 high", p2_hi, max(to9)


def _capped_table(
    rep: dict[str, Any], commit: str, lo: str, hi: str, command: str, header: str
) -> Generator[Figure, None, dict[tuple[str, str], dict[str, Any]]]:
    """A ``--capped both`` report's clean clone, command and table (the README's header
    ``header``): Configs, evaluations, promoted shares and final hypervolume per run. Returns
    the runs by (seed, "name (place.)")."""
    yield from clean_clone(rep, commit, lo, hi)
    bank = rep["command"].split("--bank ")[1].split()[0]
    yield "command", rep["command"].split(" --out")[0].replace(bank, "DIR"), command
    runs = {(str(seed), f"{name} ({place}.)"): r for seed, name, place, r in _equal_time_runs(rep)}
    for r in runs.values():  # the cap on trials was never reached
        yield "under the trial cap", "True", str(r["configs"] < rep["result"]["n_trials"])
    rows = table(header)
    yield "runs", str(sorted(runs)), str(sorted((a, b) for a, b, *_ in rows))
    for seed, run, configs, evaluations, shares, final in rows:
        r, label = runs[(seed, run)], f"{seed} {run}"
        yield f"{label} Configs", configs, r["configs"]
        cells = ", ".join(f"{x['evaluations']} x {x['mean_s']:.2f}" for x in r["rungs"])
        yield f"{label} evaluations", evaluations, cells
        got = " / ".join(f"{x:.0f}%" for x in _promoted_shares(r)) if len(r["rungs"]) == 3 else "-"
        yield f"{label} promoted", shares, got
        yield f"{label} final", final, r["hypervolume"]
    return runs


@check("compress_fidelity_capped.json")
def compress_fidelity_capped() -> Iterator[Figure]:
    """The capped ladder beside the uncapped one and full fidelity at equal wall time (#14)."""
    ((command, commit, lo, hi),) = grab(
        r"`(python benchmarks/compress\.py --fidelity-only --bank DIR --seeds 0,1 --equal-time "
        r"300 --n-trials 2000 --rank-configs 0 --capped both)`\s+"
        r"\(`benchmarks/results/compress_fidelity_capped\.json`, a clean clone of (\w+), load "
        r"([\d.]+)-([\d.]+)\)"
    )
    rep = load("compress_fidelity_capped.json")
    runs = yield from _capped_table(
        rep, commit, lo, hi, command, "| seed | the three runs (order) | Configs |"
    )
    hv = {(seed, run.split(" (")[0]): r["hypervolume"] for (seed, run), r in runs.items()}
    seeds = sorted({seed for seed, _ in hv})
    ((u0, u1, f0, f1),) = grab(
        r"the capped run's final minus the uncapped\s+one's is ([+-][\d.]+) at seed 0 and "
        r"([+-][\d.]+) at seed 1, and minus full fidelity's ([+-][\d.]+) and ([+-][\d.]+)\."
    )
    for other, texts in (("multi-fidelity", (u0, u1)), ("full fidelity", (f0, f1))):
        for seed, text in zip(seeds, texts):
            diff = hv[(seed, "capped multi-fidelity")] - hv[(seed, other)]
            yield f"capped - {other}, seed {seed}", text.lstrip("+"), diff
    full_rank = [
        sorted(hv[(seed, n)] for n in ("multi-fidelity", "capped multi-fidelity", "full fidelity"))
        .index(hv[(seed, "full fidelity")])
        for seed in seeds
    ]  # fmt: skip
    yield "full fidelity lowest at seed 0, highest at seed 1", "[0, 2]", str(full_rank)
    capped = [r for (_, run), r in runs.items() if run.startswith("capped")]
    plain = [r for (_, run), r in runs.items() if run.startswith("multi-fidelity")]
    ((c3, c9, u3lo, u3hi, u9lo, u9hi),) = grab(
        r"capped ladder sent up (\d+)% of its new Configs to 3 windows and\s+(\d+)% to 9 at both "
        r"seeds \(uncapped: (\d+)-(\d+)% and (\d+)-(\d+)%\)"
    )
    for name, group, figures in (("capped", capped, (c3, c3, c9, c9)),
                                 ("uncapped", plain, (u3lo, u3hi, u9lo, u9hi))):  # fmt: skip
        to3, to9 = zip(*(_promoted_shares(r) for r in group))
        want = (min(to3), max(to3), min(to9), max(to9))
        for text, value, what in zip(figures, want, ("3 low", "3 high", "9 low", "9 high")):
            yield f"{name} to {what}", text, value
    ((clo, chi, ulo, uhi),) = grab(
        r"so it measured (\d+)-(\d+) Configs in the\s+300 s against (\d+)-(\d+)\."
    )
    for group, lo_, hi_ in ((capped, clo, chi), (plain, ulo, uhi)):
        yield "Configs low", lo_, min(r["configs"] for r in group)
        yield "Configs high", hi_, max(r["configs"] for r in group)


@check("compress_fidelity_capped_seed2.json", "compress_fidelity_capped.json")
def compress_fidelity_capped_seed2() -> Iterator[Figure]:
    """The capped ladder's comparison at a third seed, and the three seeds' medians (#14)."""
    ((two_seeds,),) = grab(r"`(python benchmarks/compress\.py --fidelity-only [^`]+--capped both)`")
    ((commit, lo, hi),) = grab(
        r"A third seed, the same command with `--seeds 2` "
        r"\(`benchmarks/results/compress_fidelity_capped_seed2\.json`, a clean clone of (\w+), "
        r"load ([\d.]+)-([\d.]+)\)"
    )
    rep = load("compress_fidelity_capped_seed2.json")
    command = two_seeds.replace("--seeds 0,1", "--seeds 2")
    header = "| seed | the three runs, third seed (order) | Configs |"
    runs = yield from _capped_table(rep, commit, lo, hi, command, header)
    final = {run.split(" (")[0]: r["hypervolume"] for (_, run), r in runs.items()}
    order = sorted(final, key=final.__getitem__)
    yield (
        "uncapped highest, capped lowest",
        "capped multi-fidelity, multi-fidelity",
        f"{order[0]}, {order[-1]}",
    )
    (pair,) = rep["result"]["pairs"]
    first, start = pair["from_first_trial"], pair["from_call_start"]
    ((mf_s, full_s, saving, saving_start),) = grab(
        r"the uncapped ladder reaches full fidelity's final hypervolume after (\d+) s, where full "
        r"fidelity needed (\d+) s: (\d+)% less time \((\d+)% from the call's start"
    )
    yield "ladder reaches full's final", mf_s, first["mf_reached_full_final_s"]
    yield "full reaches its final", full_s, first["full_reached_its_final_s"]
    yield "saving from the first trial", saving, 100 * first["saving"]
    yield "saving from the call's start", saving_start, 100 * start["saving"]
    yield "full never reaches the ladder's final", "None", str(first["full_reached_mf_final_s"])
    by_seed: dict[str, dict[str, float]] = {}
    for report in (load("compress_fidelity_capped.json"), rep):
        for seed, name, _, r in _equal_time_runs(report):
            by_seed.setdefault(str(seed), {})[name] = r["hypervolume"]
    ((m_mf, m_cap, m_full, above, n, cap_above),) = grab(
        r"median final hypervolume is ([\d.]+) for compress's default ladder, ([\d.]+) capped and "
        r"([\d.]+) at full fidelity; the default ladder ends above full fidelity at (\d) of the "
        r"(\d) seeds, the capped one at (\d)\."
    )
    for text, name in ((m_mf, "multi-fidelity"), (m_cap, "capped multi-fidelity"),
                       (m_full, "full fidelity")):  # fmt: skip
        yield f"median {name}", text, statistics.median(v[name] for v in by_seed.values())
    yield "seeds", n, len(by_seed)
    for text, name in ((above, "multi-fidelity"), (cap_above, "capped multi-fidelity")):
        wins = sum(v[name] > v["full fidelity"] for v in by_seed.values())
        yield f"{name} above full fidelity", text, wins


@check("result_memory.json", "result_memory_before.json")
def result_memory() -> Iterator[Figure]:
    """What a compress result keeps in memory, before and since the release (#14)."""
    ((command, trials, dense),) = grab(
        r"What a result keeps in memory \(`(python benchmarks/result_memory\.py [^`]+)`\): one "
        r"`compress` call on SmolLM2 as above \(GPTQ on the warm bank, the knapsack and uniform "
        r"starts, the default ladder, (\d+) trials, seed 0\), .*? beside the dense model's "
        r"([\d,]+) MB"
    )
    ((before_commit, after_commit),) = grab(
        r"`benchmarks/results/result_memory_before\.json`, (\w+)'s `tradeoff/` with this script "
        r"added; `benchmarks/results/result_memory\.json`, a clean clone of (\w+)\)"
    )
    ((fix,),) = grab(r"Since (\w+) `compress` releases them when the search ends")
    ((slower,),) = grab(r"which made `model\(best\)` ([\d.]+) s slower here")
    reps = {"before": load("result_memory_before.json"), "since": load("result_memory.json")}
    yield "fix commit", fix, after_commit
    yield "fix in tradeoff/", "True", str(bool(_git("diff", before_commit, fix, "--", "tradeoff")))
    for label, commit in (("before", before_commit), ("since", after_commit)):
        m = reps[label]["machine"]
        yield f"{label} commit", commit, m["tradeoff_commit"]
        yield (
            f"{label} command",
            command,
            reps[label]["command"].split(" --out")[0].replace("/tmp/bank18", "DIR"),
        )
        yield f"{label} trials", trials, str(reps[label]["settings"]["n_trials"])
    yield "since: clean", str(reps["since"]["machine"]["tradeoff_dirty"]), "False"
    yield "dense MB", dense, reps["since"]["result"]["dense_model_mb"]
    header = "| library | result holds beyond the dense model, MB |"
    rows = table(header)
    yield "rows", "before (9d1995d), since ad3ea00", ", ".join(r[0] for r in rows)
    for (label, *cells), rep in zip(rows, reps.values()):
        r = rep["result"]
        yield f"{label} row", label.split()[0], "before" if rep is reps["before"] else "since"
        held, rss0, rss1, peak, model_s, kl = cells
        yield f"{label} holds", held, r["result_holds_beyond_dense_mb"]
        yield f"{label} rss before", rss0, r["rss_before_call_mb"]
        yield f"{label} rss after", rss1, r["rss_after_call_mb"]
        yield f"{label} peak", peak, r["peak_rss_mb"]
        yield f"{label} model s", model_s, r["model_s"]
        yield f"{label} kl", kl, f"{r['model_kl']:.3f} ({r['best_kl']:.3f})"
    gap = reps["since"]["result"]["model_s"] - reps["before"]["result"]["model_s"]
    yield "model() slower", slower, gap


@check(
    "result_memory_limits.json",
    "result_memory_limits_before.json",
    "result_memory_limits_malloc.json",
)
def result_memory_limits() -> Iterator[Figure]:
    """The bank's memory limit, before and since the workspace keeps no level under it, and
    since a limited bank's process gives freed memory back."""
    reps = {
        "8d17250": load("result_memory_limits_before.json"),
        "8cbc7b3": load("result_memory_limits.json"),
        "f8824a7": load("result_memory_limits_malloc.json"),
    }
    ((command,),) = grab(
        r"each in a fresh process \(`(python benchmarks/result_memory\.py --bank DIR --n-trials "
        r"20 --max-memory-mb [\d,]+)`; every run found the same front\)"
    )
    for commit, rep in reps.items():
        yield (
            f"{commit} command",
            command,
            rep["command"].split(" --out")[0].replace("/tmp/bank18", "DIR"),
        )
        yield f"{commit} commit", commit, rep["machine"]["tradeoff_commit"]
        yield f"{commit} clean", str(rep["machine"]["tradeoff_dirty"]), "False"
        runs = rep["result"]["runs"]
        same = all(r["pareto"] == runs[0]["pareto"] for r in runs)
        yield f"{commit} the same front", "True", str(same)
    rows = table("| bank memory limit, MB | entries read from disk | call, s |")
    yield "rows", "9", str(len(rows))
    for i, (limit, read, call, peak, commit) in enumerate(rows):
        r = reps[commit]["result"]["runs"][i % 3]
        want = "none" if r["max_memory_mb"] is None else f"{r['max_memory_mb']:,.0f}"
        yield f"row {i} limit", limit, want
        yield f"row {i} read", read, r["entries_read"]
        yield f"row {i} call", call, r["call_s"]
        yield f"row {i} peak", peak, r["peak_rss_mb"]
    ((fix,),) = grab(r"Since (\w+) it keeps only the Config assembled last under a limited bank")
    first = _git("log", "--format=%h", "-S", "else the bank's limit decides", "--", "tradeoff")
    yield "workspace fix", fix, first.splitlines()[-1]
    ((most, saved, at, slower),) = grab(
        r"On SmolLM2 the limit then lowers the peak by (\d+)% at most \((\d+) MB at (\d+) MB\) for "
        r"([\d.]+)% more time"
    )
    runs = reps["8cbc7b3"]["result"]["runs"]
    best = min(runs[1:], key=lambda r: r["peak_rss_mb"])
    yield "most saved %", most, 100 * (1 - best["peak_rss_mb"] / runs[0]["peak_rss_mb"])
    yield "saved MB", saved, runs[0]["peak_rss_mb"] - best["peak_rss_mb"]
    yield "at limit", at, best["max_memory_mb"]
    yield "slower %", slower, 100 * (best["call_s"] / runs[0]["call_s"] - 1)
    ((fix, peak, none, cut, slower),) = grab(
        r"Since (\w+) a limited bank's process gives that memory back .*? the peak at a 650 MB "
        r"limit is ([\d,]+) MB against ([\d,]+) MB without a limit \((\d+)% lower\), for "
        r"([\d.]+)% more time"
    )
    first = _git("log", "--format=%h", "-S", "def return_freed_memory", "--", "tradeoff")
    yield "malloc fix", fix, first.splitlines()[-1]
    runs = reps["f8824a7"]["result"]["runs"]
    yield "650 peak", peak, runs[2]["peak_rss_mb"]
    yield "unlimited peak", none, runs[0]["peak_rss_mb"]
    yield "650 cut %", cut, 100 * (1 - runs[2]["peak_rss_mb"] / runs[0]["peak_rss_mb"])
    yield "650 slower %", slower, 100 * (runs[2]["call_s"] / runs[0]["call_s"] - 1)


@check("compress_warm_bank.json")
def compress_warm_bank() -> Iterator[Figure]:
    """GPTQ calls on a warm bank collect no Hessians; as before, every call did (#13, #14)."""
    rep = load("compress_warm_bank.json")
    calls = rep["result"]["calls"][1:]  # after the first call
    ((fix, commit, n_warm, n_before, hess),) = grab(
        r"Since (\w+) a call on a warm bank collects no Hessians .*? a clean clone of (\w+), "
        r"the same SmolLM2 bank .*? 0 collections in each of the (\d+) warm calls, 1 in each of "
        r"the (\d+) others, taking ([\d, and]+) s\."
    )
    first = _git("log", "--format=%h", "--grep=a warm bank collects no", "--", "tradeoff/spaces")
    yield "fix commit", fix, first.splitlines()[-1]
    yield "commit", commit, rep["machine"]["tradeoff_commit"]
    yield "clean", str(rep["machine"]["tradeoff_dirty"]), "False"
    command = "python benchmarks/compress.py --warm-calls 6"
    yield "command", rep["command"].split(" --bank")[0], command
    for kind, count, n in (("warm", n_warm, 0), ("as before", n_before, 1)):
        mine = [c for c in calls if c["kind"] == kind]
        yield f"{kind} calls", count, len(mine)
        yield f"{kind} collections", str({c["hessian_collections"] for c in mine}), str({n})
    before = [c["hessians_s"] for c in calls if c["kind"] == "as before"]
    yield (
        "collection seconds",
        hess,
        ", ".join(f"{s:.0f}" for s in before[:-1]) + (f" and {before[-1]:.0f}"),
    )
    ((warm_med, before_med, lo, hi, warm_all, before_all),) = grab(
        r"Whole calls took a median ([\d.]+) s warm against ([\d.]+) s as before, .*? load "
        r"([\d.]+)-([\d.]+) at the calls' ends\)\S* warm ([\d, and]+) s, as before "
        r"([\d, and]+) s, so"
    )
    med = rep["result"]["median_call_s"]
    yield "warm median", warm_med, med["warm"]
    yield "as before median", before_med, med["as before"]
    ((ratio,),) = grab(r"so a warm call is ([\d.]+) times faster")
    yield "ratio", ratio, med["as before"] / med["warm"]
    loads = [c["load_avg_1_at_end"] for c in calls]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    for kind, text in (("warm", warm_all), ("as before", before_all)):
        values = [f"{c['call_s']:.0f}" for c in calls if c["kind"] == kind]
        yield f"{kind} call seconds", text, ", ".join(values[:-1]) + f" and {values[-1]}"


@check("compress_fidelity.json")
def compress_fidelity_same_knapsack() -> Iterator[Figure]:
    """Multi- against full fidelity from the same knapsack, warm bank (issue #14)."""
    rep = load("compress_fidelity.json")
    res = rep["result"]
    ((commit, lo, hi, hess, knap, first, n_starts, starts),) = grab(
        r"`benchmarks/results/compress_fidelity\.json`, a clean clone of (\w+), load ([\d.]+)-"
        r"([\d.]+) on the 2 cores\), a call still spent ([\d,]+) s collecting GPTQ's "
        r"calibration Hessians, .*? the knapsack at one held-out window then takes ([\d,]+) s, "
        r"the first trial is done ([\d,]+) s and all (\d+) starts ([\d,]+) s after the call"
    )
    yield from _fidelity_only_run(rep, commit, lo, hi)
    mf0 = res["pairs"][0]["runs"]["multi-fidelity"]["timing"]
    yield "hessians s", hess, res["bank"]["hessians_s"]
    yield "knapsack s", knap, mf0["proxy_to_s"] - mf0["proxy_from_s"]
    yield "first trial s", first, mf0["first_trial_s"]
    yield "starts", n_starts, len(mf0["start_trials"])
    yield "starts done s", starts, mf0["starts_done_s"]
    yield "same knapsack", str(all(p["same_knapsack"] for p in res["pairs"])), "True"
    yield "knapsack at the lowest rung", str(res["proxy_budget_seqs"]), str(res["ladder_seqs"][0])
    pairs = {str(p["seed"]): p for p in res["pairs"]}
    rows = table("| seed | run (order) |")
    yield "rows", str(len(rows)), str(2 * len(pairs))
    for seed, name, knap_s, evals, final, other in rows:
        label, order = name.rstrip(".)").split(" (")
        p = pairs[seed]
        run, f = p["runs"][label], p["from_call_start"]
        yield f"{seed} {label} order", order, p["order"].index(label) + 1
        yield f"{seed} {label} knapsack done", knap_s, run["timing"]["proxy_to_s"]
        rungs = run["rungs"] or [{"evaluations": run["trials"], "mean_s": run["mean_evaluation_s"]}]
        got = [x.split(" x ") for x in evals.split(", ")]
        yield f"{seed} {label} rungs", str(len(got)), str(len(rungs))
        for (count, seconds), rung in zip(got, rungs):
            yield f"{seed} {label} evaluations", count, rung["evaluations"]
            yield f"{seed} {label} seconds each", seconds, rung["mean_s"]
        mf = label == "multi-fidelity"
        hv, at = final.split(" at ")
        yield (
            f"{seed} {label} final",
            hv,
            f["mf_final_hypervolume" if mf else "full_final_hypervolume"],
        )
        yield (
            f"{seed} {label} final at",
            at,
            f["mf_reached_its_final_s" if mf else "full_reached_its_final_s"],
        )
        t = f["mf_reached_full_final_s" if mf else "full_reached_mf_final_s"]
        yield f"{seed} {label} reaches the other's", other, "never" if t is None else t
    by_seed = [pairs[k] for k in ("0", "1")]
    ((short0, short1, more, s_mf0, s_full0, less, s_mf1, s_full1),) = grab(
        r"final hypervolume \(short by ([\d.]+) with seed 0, ([\d.]+) with seed 1\)\. At its "
        r"own final, counted from each run's first trial, it took (\d+)% more time than the "
        r"full-fidelity run needed to reach that value with seed 0 \((\d+) s against (\d+) s\) "
        r"and (\d+)% less with seed 1 \((\d+) s against (\d+) s\)"
    )
    for seed, short in zip(("0", "1"), (short0, short1)):
        f = pairs[seed]["from_call_start"]
        yield f"{seed} short by", short, f["full_final_hypervolume"] - f["mf_final_hypervolume"]
    for p, pct, t_mf, t_full, sign in (
        (by_seed[0], more, s_mf0, s_full0, -1),
        (by_seed[1], less, s_mf1, s_full1, 1),
    ):
        f = p["from_first_trial"]
        yield "saving at mf final", pct, sign * 100 * f["saving_at_mf_final"]
        yield "mf at its final", t_mf, f["mf_reached_its_final_s"]
        yield "full at mf final", t_full, f["full_reached_mf_final_s"]
    means = [
        r["rungs"][-1]["mean_s"] if r["rungs"] else r["mean_evaluation_s"]
        for p in res["pairs"]
        for r in (p["runs"][n] for n in p["order"])
    ]
    ((*evals,),) = grab(
        r"the same full-budget evaluation averaged ([\d.]+) s, ([\d.]+) s, ([\d.]+) s and "
        r"([\d.]+) s"
    )
    for text, value in zip(evals, means):
        yield "full-budget evaluation s", text, value
    rc = res["rank_check"]
    ((n, rho1, rho3, best, best3),) = grab(
        r"(\d+) of the full-fidelity run's Configs measured again at every rung rank the same at "
        r"1 window as at 9 \(Spearman ([\d.]+); 3 windows ([\d.]+)\), and the promotion "
        r"order's best (\d+) at 1 window are the best \d+ at 9 windows \((\d+) of \d+ at 3"
    )
    yield "rank Configs", n, len(rc["configs"])
    yield "spearman 1", rho1, rc["spearman_with_full"][0]
    yield "spearman 3", rho3, rc["spearman_with_full"][1]
    yield "best third", best, rc["best_third"]
    yield "best third at 1", best, rc["best_third_overlap_with_full"][0]
    yield "best third at 3", best3, rc["best_third_overlap_with_full"][1]


@check("quantizers.json")
def quantizers() -> Iterator[Figure]:
    by_model = {m["model"]: m for m in load("quantizers.json")["models"]}
    models = {"MiniLM-L6, 12 Linear": "minilm", "SmolLM2 block-3 MLP": "smollm2"}
    methods = {"RTN": "rtn", "GPTQ": "gptq", "GPTQ, act-order": "gptq-act"}
    for row in table("| layers | method | 2 bits |"):
        model, method = models[row[0]], methods[row[1]]
        for bits, text in zip(("2", "3", "4", "8"), row[2:]):
            yield f"{row[0]} {row[1]} {bits} bits", text, by_model[model]["median"][method][bits]
    ratio = {
        r["multiple"]: r["gptq"] / r["rtn"]
        for r in by_model["smollm2"]["sweep"]
        if r["layer"].endswith("down_proj")
    }
    ((one, eight),) = grab(
        r"its error is ([\d.]+)x RTN's with as many tokens as inputs and ([\d.]+)x with 8 times"
    )
    yield "down_proj 1x", one, ratio[1]
    yield "down_proj 8x", eight, ratio[8]


@check("structural_pruning.json")
def structural_pruning() -> Iterator[Figure]:
    rep = load("structural_pruning.json")
    by_model = {m["model"]: m for m in rep["models"]}
    resnet, minilm = by_model["resnet"], by_model["minilm"]
    rows = {str(r["sparsity"]): r for r in resnet["rows"]}
    keys = ("accuracy", "accuracy_finetuned")
    for row in table("| residual CNN, sparsity |"):
        r = rows.pop(row[0])
        yield f"CNN {row[0]} parameters", row[1], r["channel"]["parameters"]
        for text, (key, method) in zip(row[2:], itertools.product(keys, METHODS)):
            yield f"CNN {row[0]} {method} {key}", text, r[method][key]
    yield "CNN rows missing", str(sorted(rows)), "[]"
    rows = {str(r["sparsity"]): r for r in minilm["rows"]}
    for row in table("| MiniLM FFN, sparsity |"):
        r = rows.pop(row[0])
        yield f"MiniLM {row[0]} parameters", row[1], r["channel"]["parameters"]
        for text, (key, method) in zip(row[2:], itertools.product(("cosine", "accuracy"), METHODS)):
            yield f"MiniLM {row[0]} {method} {key}", text, r[method][key]
    yield "MiniLM rows missing", str(sorted(rows)), "[]"
    worst = max(
        abs(r["unstructured"]["parameters"] / r["channel"]["parameters"] - 1)
        for m in (resnet, minilm) for r in m["rows"]
    )  # fmt: skip
    ((within,),) = grab(r"the same number of non-zero parameters \(to within ([\d.]+)%\)")
    yield "equal parameter counts", str(worst * 100 <= float(within)), "True"
    ((wall,),) = grab(r"1 torch thread, (\d+) s on 2 shared cores\)")
    yield "wall time", wall, rep["benchmark_wall_s"]
    ((params, acc),) = grab(r"\(dense: ([\d,]+) parameters, test accuracy ([\d.]+)\)")
    yield "CNN dense parameters", params, resnet["dense"]["parameters"]
    yield "CNN dense accuracy", acc, resnet["dense"]["accuracy"]
    ((epochs,),) = grab(r"after (\d+) epochs of fine-tuning:")
    yield "fine-tuning epochs", epochs, rep["settings"]["finetune_epochs"]
    ((params, acc),) = grab(r"\(dense: ([\d,]+) parameters, probe accuracy ([\d.]+)\)")
    yield "MiniLM dense parameters", params, minilm["dense"]["parameters"]
    yield "MiniLM dense accuracy", acc, minilm["dense"]["accuracy"]
    ((held_out,),) = grab(r"one-shot, on ([\d,]+) held-out Rotten Tomatoes snippets")
    yield "held-out snippets", held_out, minilm["snippets"]["held_out"]
    low = {str(r["sparsity"]): r for r in minilm["rows"]}["0.1"]
    ((units, channel, unstructured),) = grab(
        r"with (\d+)% of its FFN units gone MiniLM's embeddings keep a cosine of ([\d.]+) to the "
        r"dense ones, against ([\d.]+) unstructured"
    )
    yield "FFN units gone", units, 100 * low["sparsity"]
    yield "cosine channel", channel, low["channel"]["cosine"]
    yield "cosine unstructured", unstructured, low["unstructured"]["cosine"]
    cnn = {r["channel"]["parameters"]: r for r in resnet["rows"]}
    ((acc, params, few, channel, unstructured),) = grab(
        r"the CNN recovers to ([\d.]+) at ([\d,]+) parameters, and at ([\d,]+) it keeps ([\d.]+) "
        r"where unstructured pruning keeps (\d\.\d+)"
    )
    yield (
        "CNN recovered accuracy",
        acc,
        cnn[int(params.replace(",", ""))]["channel"]["accuracy_finetuned"],
    )
    fewest = cnn[int(few.replace(",", ""))]
    yield "CNN fewest channel", channel, fewest["channel"]["accuracy_finetuned"]
    yield "CNN fewest unstructured", unstructured, fewest["unstructured"]["accuracy_finetuned"]
    yield "CNN fewest is the last row", few.replace(",", ""), str(min(cnn))


# Workers, storage, engine ------------------------------------------------------------------------
@check("faults.json")
def faults() -> Iterator[Figure]:
    rep = load("faults.json")
    st, r = rep["settings"], rep["results"]
    ((n, sleep, workers, every, kills, mid_trial, retries),) = grab(
        r"(\d+) trials of a ([\d.]+) s objective on (\d) workers, a worker process SIGKILLed every "
        r"(\d+) trials \((\d+) kills, (\d+) of them mid-trial, (\d+) Ray retries\)"
    )
    yield "trials", n, st["n_trials"]
    yield "sleep", sleep, st["sleep_s"]
    yield "workers", workers, st["n_workers"]
    yield "kill every", every, st["kill_every"]
    yield "kills", kills, r["worker_kills"]
    yield "mid-trial", mid_trial, r["worker_kills_mid_trial"]
    yield "retries", retries, r["task_retries"]
    ((done, of, lost, rerun, stale, wall, wait, ideal),) = grab(
        r"(\d+)/(\d+) completed, (\d+) lost, (\d+) finished trials re-run, (\d+) stale "
        r"trials re-run; ([\d.]+) s of wall time, of which (\d+) s waiting out the heartbeat grace "
        r"period \(ideal without faults: (\d+) s"
    )
    yield "completed", done, r["completed"]
    yield "requested", of, r["trials_requested"]
    yield "lost", lost, r["trials_lost"]
    yield "finished re-run", rerun, r["finished_trials_rerun"]
    yield "stale re-run", stale, r["stale_reenqueued"]
    yield "wall", wall, r["wall_s"]
    yield "grace wait", wait, r["restart_wait_s"]
    yield "ideal", ideal, r["ideal_s"]
    yield "driver killed once", str(r["driver_kills"]), "1"


@check("storage_load.json")
def storage_load() -> Iterator[Figure]:
    rep = load("storage_load.json")
    rows = {(r["storage"], r["optimizer"], r["drivers"], r["seeds"]): r for r in rep["rows"]}
    labels = {
        ("in memory", "1"): ("memory", "random", 1, "0"),
        ("journal file", "1"): ("journal", "random", 1, "0"),
        ("SQLite, rollback journal", "1"): ("sqlite", "random", 1, "0"),
        ("SQLite, WAL (now the default)", "1"): ("sqlite-wal", "random", 1, "0"),
        ("PostgreSQL (server on the same 2 cores)", "1"): ("postgres", "random", 1, "0"),
        ("SQLite, WAL", "2"): ("sqlite-wal", "random", 2, "1,2"),
        ("PostgreSQL", "2"): ("postgres", "random", 2, "1,2"),
    }
    header = "| storage | drivers | ms / trial | trials / s | complete / duplicates / lost |"
    for label, drivers, ms, per_s, counts in table(header):
        r = rows[labels[label, drivers]]
        yield f"{label} x{drivers} ms/trial", ms, r["ms_per_trial"]
        yield f"{label} x{drivers} trials/s", per_s, r["trials_per_s"]
        yield (
            f"{label} x{drivers} counts",
            counts,
            f"{r['complete']} / {r['duplicates']} / {r['lost']}",
        )
    memory = rows[labels["in memory", "1"]]
    ((fastest,),) = grab(r"fastest \(([\d.]+) ms/trial\)")
    table("| storage | use it for |")
    yield "in memory ms/trial (use table)", fastest, memory["ms_per_trial"]
    ((statements, commits),) = grab(r"Each trial is about (\d+) SQL statements and (\d+) commits")
    pg = next(p for p in rep["profiles"] if p["storage"] == "postgres")
    execute = next(f for f in pg["by_tottime"] if "'execute' of 'psycopg2" in f["function"])
    per_trial = int(execute["ncalls"]) / pg["trials"]
    yield "SQL statements per trial (to 10)", statements, round(per_trial / 10) * 10
    yield (
        "commits per trial",
        commits,
        rows[labels[("PostgreSQL (server on the same 2 cores)", "1")]]["commits_per_trial"],
    )
    ((first, last, trials),) = grab(
        r"in memory that grows from ([\d.]+) to ([\d.]+) ms/trial over ([\d,]+) trials"
    )
    yield "memory first window", first, memory["ms_first_window"]
    yield "memory last window", last, memory["ms_last_window"]
    yield "trials", trials, rep["settings"]["n_trials"]
    ((at_most,),) = grab(r"With two drivers, at most (one) `surplus` trial was recorded per run")
    most = max(r["surplus"] for r in rep["rows"] if r["drivers"] == 2)
    yield "surplus trials at most", at_most, {0: "none", 1: "one"}.get(most, str(most))
    loads = rep["machine"]["load_avg_1_5_15_at_start"] + rep["machine"]["load_avg_1_5_15_at_end"]
    ((lo, hi),) = grab(r"\(load average (\d+)-(\d+): upper bounds\)")
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)


@check("scale.json")
def scale() -> Iterator[Figure]:
    rep = load("scale.json")
    runs = {"before": rep["before"], "before_fidelity": rep["before_fidelity"], "now": rep}
    cases = {
        "in memory": "memory", "multi-fidelity in memory": "fidelity",
        "SQLite": "sqlite", "PostgreSQL": "postgres",
    }  # fmt: skip
    header = "| search | driver | trials run | ms / trial, first tenth |"
    for search, driver, trials, first, last, growth, cpu in table(header):
        label, n_trials = search.split(", ")
        when, commit = driver.split()
        case = cases[label]
        run = runs["before_fidelity" if (when, case) == ("before", "fidelity") else when]
        r = next(r for r in run["rows"] if r.get("case", r["storage"]) == case)
        yield f"{search} {when} commit", commit.strip("()"), run["machine"]["tradeoff_commit"]
        yield f"{search} {when} budget", n_trials.split()[0], r["n_trials"]
        yield f"{search} {when} trials run", trials, r["trials_run"]
        yield f"{search} {when} first tenth", first, r["ms_first_tenth"]
        yield f"{search} {when} last tenth", last, r["ms_last_tenth"]
        yield f"{search} {when} growth", growth.rstrip("x"), r["growth"]
        yield f"{search} {when} CPU growth", cpu.rstrip("x"), r["cpu_growth"]
    ((before, box, mf_commit, mf_box, box_now, lo, hi),) = grab(
        r"before \(commit (\w+), the script copied in, each search time-boxed to (\d+) s; the "
        r"multi-fidelity search: commit (\w+), the script copied in, time-boxed to (\d+) s\) and "
        r"now \(each search time-boxed to (\d+) s\), on this 2-core machine at a load average of "
        r"(\d+)-(\d+) "
    )
    yield "before commit", before, rep["before"]["machine"]["tradeoff_commit"]
    yield "before time box", box, rep["before"]["settings"]["time_box"]
    yield (
        "multi-fidelity before commit",
        mf_commit,
        rep["before_fidelity"]["machine"]["tradeoff_commit"],
    )
    yield "multi-fidelity before time box", mf_box, rep["before_fidelity"]["settings"]["time_box"]
    yield "now time box", box_now, rep["settings"]["time_box"]
    for when, run in runs.items():
        yield f"{when} cores", "2", str(run["machine"]["cpu_count"])
    loads = [
        x
        for run in runs.values()
        for key in ("load_avg_1_5_15_at_start", "load_avg_1_5_15_at_end")
        for x in run["machine"][key]
    ]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    ((configs, ladder, target),) = grab(
        r"The multi-fidelity search evaluates ([\d,]+) Configs on the budget ladder ([\d/]+)\. "
        r"Target: last tenth at most ([\d.]+)x the first"
    )
    mf = next(r for r in rep["rows"] if r["case"] == "fidelity")
    yield "multi-fidelity Configs", configs, mf["n_trials"]
    yield "multi-fidelity ladder", ladder, "/".join(f"{b:g}" for b in mf["fidelity"])
    yield "target", target, rep["targets"]["memory_growth"]["target"].split()[-1]
    ((load_now,),) = grab(r"just within the target \(the run started at a load average of (\d+)\)")
    yield "load at start", load_now, rep["machine"]["load_avg_1_5_15_at_start"][0]
    memory = next(r for r in rep["rows"] if r["case"] == "memory")
    yield "memory within target", "just within", "just within" if memory["growth"] <= 1.5 else "no"
    bf = rep["before_fidelity"]["rows"][0]
    ((ran, of, evaluations, seconds, end, all_evals, secs_now),) = grab(
        r"before, ran (\d+) of its ([\d,]+) Configs \(([\d,]+) evaluations\) in its (\d+) s, at "
        r"(\d+) ms/trial by the end; now it runs all of them \(([\d,]+) evaluations\) in (\d+) s, "
        r"but still misses"
    )
    yield "before Configs run", ran, bf["configs_run"]
    yield "before Configs", of, bf["n_trials"]
    yield "before evaluations", evaluations, bf["trials_run"]
    yield "before seconds", seconds, rep["before_fidelity"]["settings"]["time_box"]
    yield "before end", end, bf["ms_last_tenth"]
    yield "now evaluations", all_evals, mf["trials_run"]
    yield "now seconds", secs_now, mf["wall_s"]
    yield "now missed", "misses", "misses" if not rep["targets"]["fidelity_growth"]["met"] else "-"


@check("scale_efficiency.json")
def scale_efficiency() -> Iterator[Figure]:
    rep = load("scale_efficiency.json")
    rows = {(r["in_flight"], r["engine"]): r for r in rep["efficiency"]}
    ours_name, floor_name = "tradeoff ray", "bare ray tasks (floor)"
    header = "| trials in flight | tradeoff on Ray | bare Ray tasks (floor) |"
    extra = []
    for level, ours, floor, cpu, cpu_floor in table(header):
        engine, bare = rows[(int(level), ours_name)], rows[(int(level), floor_name)]
        yield f"{level} tradeoff", ours.rstrip("%"), 100 * engine["efficiency"]
        yield f"{level} bare", floor.rstrip("%"), 100 * bare["efficiency"]
        yield f"{level} tradeoff CPU", cpu, 1e3 * engine["driver_cpu_s_per_trial"]
        yield f"{level} bare CPU", cpu_floor, 1e3 * bare["driver_cpu_s_per_trial"]
        best = max(x["efficiency"] for x in rep["runs"] if x["in_flight"] == int(level)
                   and x["engine"] == ours_name)  # fmt: skip
        yield f"{level} best run", str(engine["efficiency"]), str(best)
        extra.append(1e3 * (engine["driver_cpu_s_per_trial"] - bare["driver_cpu_s_per_trial"]))
    ((levels, repeats, commit, lo, hi, cpus, rounds, sleep),) = grab(
        r"`python benchmarks/scale.py --efficiency ([\d,]+) --repeats (\d+)` \(`benchmarks/"
        r"results/scale_efficiency.json`, a clean clone of (\w+), load average (\d+)-(\d+) "
        r"during the run: .*?\) starts Ray with (\d+) logical CPUs and runs (\d+) rounds of "
        r"(\d+)-s trials"
    )
    yield "levels", levels, ",".join(str(x) for x in rep["settings"]["efficiency"])
    yield "repeats", repeats, rep["settings"]["repeats"]
    yield from clean_clone(rep, commit, lo, hi)
    yield "logical CPUs", cpus, max(rep["settings"]["efficiency"])
    yield "rounds", rounds, rep["settings"]["rounds"]
    yield "sleep", sleep, rep["settings"]["sleep"]
    ((near, near128),) = grab(
        r"tradeoff stays within (\d+) point of the floor up to 64 in flight and ([\d.]+) points "
        r"at 128"
    )
    gap = {k: 100 * (rows[(k, floor_name)]["efficiency"] - rows[(k, ours_name)]["efficiency"])
           for k in (8, 32, 64, 128)}  # fmt: skip
    yield "within a point up to 64", near, max(1.0, max(gap[k] for k in (8, 32, 64)))
    yield "gap at 128", near128, gap[128]
    ((bare64, bare128),) = grab(r"bare Ray itself reaches ([\d.]+)% at 64 and ([\d.]+)% at 128")
    yield "bare 64", bare64, 100 * rows[(64, floor_name)]["efficiency"]
    yield "bare 128", bare128, 100 * rows[(128, floor_name)]["efficiency"]
    before = rep["before"]
    old = {(r["in_flight"], r["engine"]): r for r in before["efficiency"]}
    ((old_commit, *figures),) = grab(
        r"`\"before\"` in the same JSON, commit (\w+), also from a quiet start, had ([\d.]+)% "
        r"against ([\d.]+)% at 64, ([\d.]+)% against ([\d.]+)% at 128, ([\d.]+)% against "
        r"([\d.]+)% at 256"
    )
    yield "before commit", old_commit, before["machine"]["tradeoff_commit"]
    yield "before quiet", str(before["machine"]["load_avg_1_5_15_at_start"][0] < 1), "True"
    for (level, engine), text in zip(
        [(k, e) for k in (64, 128, 256) for e in (ours_name, floor_name)], figures
    ):
        yield f"before {level} {engine}", text, 100 * old[(level, engine)]["efficiency"]
    ((lo_cpu, hi_cpu),) = grab(r"driver spends ([\d.]+)-([\d.]+) ms more CPU per trial")
    yield "extra CPU low", lo_cpu, min(extra)
    yield "extra CPU high", hi_cpu, max(extra)


ENGINES = {
    "Optuna `study.optimize` (baseline)": ("optuna study.optimize", 1),
    'tradeoff, `backend="local"`': ("tradeoff local", 1),
    'tradeoff, `backend="ray"`': ("tradeoff ray", 2),
    "bare Ray tasks, no engine (floor)": ("raw ray tasks (floor)", 2),
    'tradeoff, `backend="ray", ray_actors=True`': ("tradeoff ray, ray_actors", 2),
    "Ray Tune + `OptunaSearch`": ("ray tune + OptunaSearch", 2),
}
PARALLEL = {
    "tradeoff, Ray": "tradeoff ray",
    "tradeoff, local threads": "tradeoff local",
    "bare Ray tasks (floor)": "raw ray tasks (floor)",
    "tradeoff, Ray actors": "tradeoff ray, ray_actors",
    "Ray Tune + `OptunaSearch`": "ray tune + OptunaSearch",
}


@check("engine_overhead.json")
def engine_overhead() -> Iterator[Figure]:
    rep = load("engine_overhead.json")
    rows = {(r["engine"], r["n_workers"]): r for r in rep["overhead"]}
    for label, workers, trials, ms, per_s in table(
        "| engine | workers | trials | ms / trial | trials / s |"
    ):
        r = rows[ENGINES[label]]
        yield f"{label} workers", workers, r["n_workers"]
        yield f"{label} trials", trials, r["trials"]
        yield f"{label} ms/trial", ms.split(" (")[0], r["ms_per_trial"]
        yield f"{label} trials/s", per_s, r["trials_per_s"]
    parallel = {(r["engine"], r["n_workers"]): r for r in rep["parallel"]}
    for label, *cells in table("| engine | 1 worker | 2 workers | 4 workers |"):
        for workers, cell in zip((1, 2, 4), cells):
            cell = cell.split(" (")[0]
            if cell:
                yield (
                    f"{label} x{workers}",
                    cell.rstrip("%"),
                    100 * parallel[PARALLEL[label], workers]["efficiency"],
                )
    m = rep["machine"]
    ((python, optuna_v, ray_v, lo, hi),) = grab(
        r"2 cores, Python ([\d.]+), Optuna ([\d.]+), Ray ([\d.]+), taken while other jobs loaded "
        r"the machine to a load average of (\d+)-(\d+)\)"
    )
    yield "cores", str(m["cpu_count"]), "2"
    yield "python", python, ".".join(m["python"].split(".")[:2])
    yield "optuna", optuna_v, ".".join(m["optuna"].split(".")[:2])
    yield "ray", ray_v, ".".join(m["ray"].split(".")[:2])
    loads = m["load_avg_1_5_15_at_start"] + m["load_avg_1_5_15_at_end"]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    ((repeats,),) = grab(r"median of (\d) runs \(Ray Tune: one run\)")
    yield "repeats", repeats, rep["settings"]["repeats"]
    ray, bare = rows["tradeoff ray", 2], rows["raw ray tasks (floor)", 2]
    tune = rows["ray tune + OptunaSearch", 2]
    ((more,),) = grab(r"tradeoff on Ray spends ([\d.]+) ms per trial more than bare Ray tasks")
    yield "ms per trial more than bare Ray", more, ray["ms_per_trial"] - bare["ms_per_trial"]
    ((times,),) = grab(r"and is ~(\d+)x cheaper per trial than Ray Tune")
    yield (
        "times cheaper than Ray Tune (to 10)",
        times,
        round(tune["ms_per_trial"] / ray["ms_per_trial"], -1),
    )


SUITE_COLUMNS = {
    "auto": "auto",
    "auto at 6c9b0f0": "auto-6c9b0f0",
    "auto at df7dd28": "auto-df7dd28",
    "auto at d99774c": "auto-d99774c",
    "auto before": "auto-before",
    "Optuna GP": "optuna-gp",
    "Optuna TPE (multivariate)": "optuna-tpe",
    "Optuna TPE (default)": "optuna-tpe-default",
    "Optuna NSGA-II": "optuna-nsga2",
    "Optuna random": "optuna-random",
}
SUITE_ANCHORS = ("optuna-gp", "optuna-tpe", "optuna-tpe-default", "optuna-nsga2", "optuna-random")
SUITE_HEADER = "| suite problem | " + " | ".join(SUITE_COLUMNS) + " | auto - best Optuna |"


def _median_iqr_cell(
    label: str, cell: str, got: dict[str, Any] | None, n_seeds: int
) -> Iterator[Figure]:
    """A suites table's "median [q25, q75]" cell against the JSON's summary of the column on
    seeds 0..n_seeds-1; "-" where the column did not run that many seeds there."""
    if cell == "-":  # e.g. an earlier version of auto that did not run this problem
        seeds = (got or {}).get("seeds", [])
        yield f"{label} not at {n_seeds} seeds", "True", str(len(seeds) < n_seeds)
        return
    median, q25, q75 = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell).groups()
    assert got is not None, label
    yield f"{label} median", median, got["median"]
    yield f"{label} q25", q25, got["q25"]
    yield f"{label} q75", q75, got["q75"]
    yield f"{label} seeds", str(got["seeds"]), str(list(range(n_seeds)))


@check("suites.json")
def public_suites() -> Iterator[Figure]:
    rep = load("suites.json")
    score, versus = rep["score"], rep["auto_vs_best_anchor"]
    rows = table(SUITE_HEADER)
    names = {v: k for k, v in SUITE_COLUMNS.items()}
    for label, *cells in rows:
        problem = label.split()[0]
        for column, cell in zip(SUITE_COLUMNS.values(), cells):
            yield from _median_iqr_cell(f"{problem} {column}", cell, score[problem].get(column), 3)
        contenders = ("auto", *SUITE_ANCHORS)
        rows_of = [line for line in README.splitlines() if line.startswith(f"| {problem} |")]
        # The table with IQRs and every column (the 10-seed table has fewer).
        (raw,) = [line for line in rows_of if line.count("|") == len(SUITE_COLUMNS) + 3]
        marked = [c.strip() for c in raw.strip("|").split("|")[1:]]
        bold = [c for c, cell in zip(SUITE_COLUMNS.values(), marked) if cell.startswith("**")]
        top = max(contenders, key=lambda o: score[problem][o]["median"])
        yield f"{problem} bold", str(bold), str([top])
        yield from _versus_cell(problem, cells[-1], versus[problem], names)
        yield f"{problem} auto picked", str(rep["auto_picks"][problem]), "['mobo']"
    shown_ = [row[0].split()[0] for row in rows]
    yield "every problem with 3 seeds is in the table", str(sorted(shown_)), str(sorted(versus))
    st = rep["settings"]
    ((n, seeds, jobs),) = grab(
        r"\(`benchmarks/results/suites.json`\): (\d+) evaluations, seeds 0-(\d), (\d) jobs"
    )
    yield "evaluations", n, st["n_trials"]
    yield "last seed", seeds, st["seeds"] - 1
    yield "jobs", jobs, st["jobs"]
    yield from _suites_provenance(rep)
    yield from _suites_targets(rep)
    yield from _suites_history(rep)


def _versus_cell(
    problem: str, cell: str, versus: dict[str, Any], names: dict[str, str]
) -> Iterator[Figure]:
    """A suites table's "auto - best Optuna" cell, "+0.009 (Optuna GP)", against the JSON."""
    diff, best = re.fullmatch(r"([+-]\S+) \((.+)\)", cell).groups()
    yield f"{problem} auto - best", diff.lstrip("+"), versus["diff"]
    yield f"{problem} sign", diff[0], "+" if versus["diff"] >= 0 else "-"
    yield f"{problem} best anchor", best, names[versus["best_anchor"]]


def _suites_provenance(rep: dict[str, Any]) -> Iterator[Figure]:
    """Which commit each auto column ran, from a clean clone, and under what load."""
    ((commit,),) = grab(r"`auto` is mobo at commit ([0-9a-f]{7}) \(the code's `auto`")
    ((first, other),) = grab(
        r"\*auto before\* \(the table's first run, commit ([0-9a-f]{7}); one cell at ([0-9a-f]{7}),"
    )
    yield (
        "auto: the tradeoff/search modules auto's mobo runs are the commit's",
        "",
        _mobo_default_diff(commit),
    )
    ((f028,),) = grab(
        r"mixint-f028-d05's from a clean clone of ([0-9a-f]{7}), whose mobo modules are 6c9b0f0's"
    )
    yield f"{f028}'s mobo is 6c9b0f0's", "", _git("diff", "6c9b0f0", f028, "--", *_mobo_modules())
    columns = (
        ("auto", {commit}),
        ("auto-6c9b0f0", {"6c9b0f0", f028}),
        ("auto-df7dd28", {"df7dd28"}),
        ("auto-d99774c", {"d99774c"}),
        ("auto-before", {first, other}),
    )
    for column, want in columns:
        runs = [r for r in rep["runs"] if r["optimizer"] == column]
        yield f"{column} commit", str(sorted(want)), str(sorted({r["commit"][:7] for r in runs}))
        dirty = [s for s in rep["sessions"] if s.get("tradeoff_commit") in want]
        yield f"{column} clean", "[]", str([s["command"] for s in dirty if s["tradeoff_dirty"]])
    yield from _suites_reruns(rep)
    between = _git("log", "--oneline", f"{other}..{first}", "--", "tradeoff/search")
    yield "auto before: the same mobo in both commits", "", between
    loads = [r["load_1min"] for r in rep["runs"] if r["optimizer"] == "auto"]
    ((lo, hi),) = grab(r"1-minute load average ([\d.]+)-([\d.]+) at the cells' ends")
    yield "auto least load", lo, min(loads)
    yield "auto most load", hi, max(loads)
    speed = rep["s_per_proposal"]
    ((auto_lo, auto_hi, gp_lo, gp_hi, others),) = grab(
        r"auto\s+([\d.]+)-([\d.]+) s, Optuna GP ([\d.]+)-([\d.]+) s, the others < ([\d.]+) s"
    )
    cols = [speed[p] for p in rep["auto_vs_best_anchor"]]
    yield "auto fastest", auto_lo, min(c["auto"] for c in cols)
    yield "auto slowest", auto_hi, max(c["auto"] for c in cols)
    yield "GP fastest", gp_lo, min(c["optuna-gp"] for c in cols)
    yield "GP slowest", gp_hi, max(c["optuna-gp"] for c in cols)
    anchors = ("optuna-tpe", "optuna-tpe-default", "optuna-nsga2", "optuna-random")
    cheap = [v for c in cols for o, v in c.items() if o in anchors]
    yield "the others under the bound", str(max(cheap) < float(others)), "True"


# A short search on a continuous 2-objective problem: auto picks mobo (rule 2a); 8 trials are
# 5 startup points, then TPE's (the hedge) and the model's proposals. It prints the files of every
# tradeoff.search module whose functions the search called: a module that is only imported
# (ASHA's, evolution's, the baselines') runs no code of a mobo search.
_MOBO_RUN = """
import sys, threading
import tradeoff
from tradeoff.objectives import Objective
from tradeoff.spaces import Float, SearchSpace

space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
called = set()

def profile(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_flags & 0x1 and "tradeoff" in code.co_filename:  # a function
        called.add(code.co_filename)

sys.setprofile(profile)
threading.setprofile(profile)
result = tradeoff.optimize(
    lambda c: {"a": c["x"], "b": 1.0 - c["x"] * c["y"]}, space,
    objectives=[Objective("a"), Objective("b")], n_trials=8, seed=0, show_progress=False,
)
sys.setprofile(None)
threading.setprofile(None)
assert result.study.user_attrs["tradeoff.optimizer"] == "mobo"
for name, module in sorted(sys.modules.items()):
    if name.startswith("tradeoff.search") and module.__file__ in called:
        print(module.__file__)
"""


@cache
def _mobo_modules() -> list[str]:
    """The tradeoff/search files whose code a mobo search through ``auto`` runs, relative to
    the repo."""
    out = subprocess.run(
        [sys.executable, "-c", _MOBO_RUN], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    files = [str(Path(line).resolve().relative_to(ROOT)) for line in out.split()]
    assert "tradeoff/search/_mobo.py" in files and "tradeoff/search/_bo_hedge.py" in files, files
    return files


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


# Commits whose change to the mobo modules leaves a search with one worker as it was: an option
# off by default (af82606, winsorize: `suites_winsor`) or a cache such a search never hits
# (90ff48e, the fit shared by asks in a row: `suites_fitcache`; 4c5fb06, the same cache per
# thread: `suites_fitcache_thread`); "auto"'s cells rerun after each one reproduced the earlier
# cells exactly. In commit order.
OPT_IN_COMMITS = ("af82606", "90ff48e", "4c5fb06")


def _mobo_default_diff(commit: str) -> str:
    """The mobo modules' diff from ``commit`` to the working tree, leaving out the changes of
    :data:`OPT_IN_COMMITS` made after it: empty when ``auto``'s mobo runs the same code."""
    parts, start = [], commit
    for opt_in in OPT_IN_COMMITS:
        after = subprocess.run(["git", "merge-base", "--is-ancestor", commit, opt_in], cwd=ROOT)
        if after.returncode == 0 and _git("rev-parse", commit) != _git("rev-parse", opt_in):
            parts.append(_git("diff", start, f"{opt_in}^", "--", *_mobo_modules()))
            start = opt_in
    parts.append(_git("diff", start, "--", *_mobo_modules()))
    return "".join(parts)


def _suites_reruns(rep: dict[str, Any]) -> Iterator[Figure]:
    """mobo's versions since the table's: which code each rerun ran, and its scores per seed."""
    ((today,),) = grab(r"mobo at ([0-9a-f]{7}) \(the hedge's model today\), takes that path only")
    ((clone, first),) = grab(
        r"a clean clone of ([0-9a-f]{7}), whose `tradeoff/search` is ([0-9a-f]{7})'s"
    )
    yield "1f94bdc's search in the clone", "", _git("diff", first, clone, "--", "tradeoff/search")
    labels = {
        "auto (df7dd28)": "auto-df7dd28",
        f"mobo at {first}": f"auto-{first}",
        f"mobo at {today}": f"auto-{today}",
    }
    for label, want in ((f"auto-{first}", clone), (f"auto-{today}", today)):
        runs = [r for r in rep["runs"] if r["optimizer"] == label]
        yield f"{label} commit", str({want}), str({r["commit"][:7] for r in runs})
    scores: dict[tuple[str, str], dict[int, float]] = {}
    for r in rep["runs"]:
        scores.setdefault((r["problem"], r["optimizer"]), {})[r["seed"]] = r["score"]
    header = "| suite problem | auto (df7dd28) | mobo at "
    (raw,) = [line for line in README.splitlines() if line.startswith(header)]
    columns = [c.strip() for c in raw.strip().strip("|").split("|")][1:-1]
    for problem, *cells in table(header):
        for column, cell in zip(columns, cells):
            got = scores.get((problem, labels[column]), {})
            texts = [] if cell == "-" else cell.split(", ")
            yield f"{problem} {column} seeds", str(len(texts)), str(len(got))
            for seed, text in enumerate(texts):
                yield f"{problem} {column} seed {seed}", text, got[seed]
        yield f"{problem} random", cells[-1], rep["score"][problem]["optuna-random"]["median"]
    mine = [r for r in rep["runs"] if r["optimizer"] == f"auto-{today}"]
    same = sum(r["score"] == scores[r["problem"], "auto-df7dd28"][r["seed"]] for r in mine)
    ((n_same, n_runs),) = grab(r"(\w+) of its (\w+) runs reproduce df7dd28's scores exactly")
    words = {"three": 3, "four": 4, "two": 2, "one": 1, "all": len(mine)}
    yield "runs reproduced exactly", str(words[n_same]), str(same)
    yield "runs", str(words[n_runs]), str(len(mine))
    ((lo, hi),) = grab(r"1-minute load average ([\d.]+)-([\d.]+) at the reruns' cells' ends")
    loads = [
        r["load_1min"]
        for r in rep["runs"]
        if r["optimizer"] in set(labels.values()) - {"auto-df7dd28"}
    ]
    yield "reruns least load", lo, min(loads)
    yield "reruns most load", hi, max(loads)


def _suites_targets(rep: dict[str, Any]) -> Iterator[Figure]:
    """Issue #17's targets, each problem that misses one named with its figures."""
    score, versus = rep["score"], rep["auto_vs_best_anchor"]
    ((wins, losses, total),) = grab(r"`auto` is best on (\d+) of them and loses on (\d+) of (\d+)")
    yield "auto wins", wins, sum(v["diff"] >= 0 for v in versus.values())
    yield "auto losses", losses, sum(v["diff"] < 0 for v in versus.values())
    yield "problems", total, len(versus)
    ((n, of, pct),) = grab(r"best\s+anchor's median on (\d+) of (\d+) problems \((\d+)%")
    yield "problems at least the best anchor", n, sum(v["diff"] >= 0 for v in versus.values())
    yield "of", of, len(versus)
    yield "percent", pct, round(100 * int(n) / int(of))
    losers = sorted(p for p, v in versus.items() if v["diff"] < 0)
    ((named,),) = grab(r"target 80%: \w+: ([\w-]+(?:(?:, | and )[\w-]+)*)\)")
    yield "problems below the best anchor", str(sorted(re.split(", | and ", named))), str(losers)
    margin = {
        p: v["auto"]
        - (v["best"] - (score[p][v["best_anchor"]]["q75"] - score[p][v["best_anchor"]]["q25"]))
        for p, v in versus.items()
    }
    ((verdict, p1, auto, minus_iqr),) = grab(
        r"minus one\s+IQR on every problem: \**(\w+)\** \(the closest, (\S+): ([\d.]+) "
        r"against ([\d.]+)"
    )
    yield "best - IQR verdict", verdict, "met" if min(margin.values()) >= 0 else "missed"
    yield "closest to best - IQR", p1, min(margin, key=margin.__getitem__)
    yield "auto there", auto, score[p1]["auto"]["median"]
    yield "best minus IQR", minus_iqr, score[p1]["auto"]["median"] - margin[p1]
    tpe_miss = {p for p in versus if score[p]["auto"]["median"] < score[p]["optuna-tpe"]["median"]}
    ((listed,),) = grab(
        r"multivariate TPE's on every problem: missed on ((?:[\w-]+ \([-\d.]+\s+against\s+"
        r"[-\d.]+\)(?:,\s+|\s+and\s+)?)+)"
    )
    items = re.findall(r"([\w-]+) \(([-\d.]+)\s+against\s+([-\d.]+)\)", listed)
    yield "below multivariate TPE", str(sorted(tpe_miss)), str(sorted(p for p, _, _ in items))
    for p2, auto2, tpe in items:
        yield f"{p2} auto there (TPE)", auto2, score[p2]["auto"]["median"]
        yield f"{p2} TPE there", tpe, score[p2]["optuna-tpe"]["median"]
    random_miss = {
        p for p in versus if score[p]["auto"]["median"] < score[p]["optuna-random"]["median"]
    }
    ((verdict, p3, auto3, rand),) = grab(
        r"never below random search: (\w+) \((\S+): ([\d.]+) against ([\d.]+)\)"
    )
    yield "random verdict", verdict, "missed" if random_miss else "met"
    yield "auto there (random)", auto3, score[p3]["auto"]["median"]
    yield "random there", rand, score[p3]["optuna-random"]["median"]
    for p, diff in grab(r"(\S+) \(\+([\d.]+)\) over (?:Optuna GP|default TPE)", count=None):
        yield f"{p} narrow lead", diff, versus[p]["diff"]


def _suites_history(rep: dict[str, Any]) -> Iterator[Figure]:
    """The medians the reference-change history quotes, column to column."""
    med = {p: {o: v["median"] for o, v in row.items()} for p, row in rep["score"].items()}
    ((a2, b2, a3, b3),) = grab(
        r"from ([\d.]+) to\s+([\d.]+) at 2 objectives and from ([\d.]+) to ([\d.]+) at 3"
    )
    yield "dtlz2-m2 before", a2, med["dtlz2-m2"]["auto-before"]
    yield "dtlz2-m2 d99774c", b2, med["dtlz2-m2"]["auto-d99774c"]
    yield "dtlz2-m3 before", a3, med["dtlz2-m3"]["auto-before"]
    yield "dtlz2-m3 d99774c", b3, med["dtlz2-m3"]["auto-d99774c"]
    pairs = {
        "dtlz7-m2": ("auto-before", "auto-d99774c"),
        "mixint-f046-d05": ("auto-before", "auto-d99774c"),
        "mixint-f001-d05": ("auto-d99774c", "auto-df7dd28"),
        "cf2": ("auto-d99774c", "auto-df7dd28"),
    }
    found = set()
    for p, x, y in grab(
        r"(\S+?)(?:'s disconnected front| pair mixint-f046-d05)?\s+\(([-\d.]+) to ([-\d.]+)\)",
        count=None,
    ):
        p = "mixint-f046-d05" if p == "Rastrigin" else p.strip("(`")
        if p in pairs:
            found.add(p)
            yield f"{p} from", x, med[p][pairs[p][0]]
            yield f"{p} to", y, med[p][pairs[p][1]]
    yield "every history pair quoted", str(sorted(found)), str(sorted(pairs))
    ((f046,),) = grab(r"region of interest \(([-\d.]+)\)")
    yield "mixint-f046-d05 at df7dd28", f046, med["mixint-f046-d05"]["auto-df7dd28"]
    ((d7,),) = grab(r"dtlz7-m2\s+only recovered to ([\d.]+)")
    yield "dtlz7-m2 at df7dd28", d7, med["dtlz7-m2"]["auto-df7dd28"]
    ((first,),) = grab(r"first\s+version's ([\d.]+) owed")
    yield "dtlz7-m2 first version", first, med["dtlz7-m2"]["auto-before"]


@check("propose_ahead.json")
def propose_ahead() -> Iterator[Figure]:
    rep = load("propose_ahead.json")
    summary, st = rep["summary"], rep["settings"]
    ((commit, lo, hi),) = grab(
        r"`benchmarks/results/propose_ahead.json`, a clean clone of ([0-9a-f]{7}), 1-minute load "
        r"average ([\d.]+)-([\d.]+)"
    )
    yield from clean_clone(rep, commit, lo, hi, one_minute=True)
    ((workers, sleep, n, last),) = grab(
        r"(\d) worker threads, trials that sleep (\d+) s .*? ZDT1, (\d+) trials, in trial "
        r"order, seeds 0-(\d)"
    )
    yield "workers", workers, st["workers"]
    yield "sleep", sleep, st["sleep"]
    yield "trials", n, st["n_trials"]
    yield "last seed", last, st["seeds"] - 1
    names = {"mobo": "mobo", "Optuna GP": "gp"}
    header = "| sampler | worker utilization, plain | propose ahead |"
    rows = table(header)
    yield "samplers", str([r[0] for r in rows]), str([k for k, v in names.items() if v in summary])
    for name, *cells in rows:
        cell = summary[names[name]]
        plain, ahead = cell["plain"], cell["ahead"]
        want = [
            plain["utilization"], ahead["utilization"], cell["span_ratio"],
            plain["median_worker_wait_s"], ahead["median_worker_wait_s"],
            plain["hypervolume"], ahead["hypervolume"],
        ]  # fmt: skip
        for i, (text, value) in enumerate(zip(cells, want)):
            yield f"{name} column {i}", text.removesuffix(" s"), value
    mobo, gp = summary["mobo"], summary["gp"]
    ((busy, less, lost),) = grab(
        r"busy ([\d.]+)% of it, the search took (\d+)% less time, and the front lost ([\d.]+)%"
    )
    yield "mobo busy", busy, 100 * mobo["ahead"]["utilization"]
    yield "mobo time saved", less, 100 * (1 - mobo["span_ratio"])
    drop = 100 * (1 - mobo["ahead"]["hypervolume"] / mobo["plain"]["hypervolume"])
    yield "mobo hypervolume lost", lost, drop
    ((gain,),) = grab(r"asking ahead gains (\d+)%")
    yield "gp time saved", gain, 100 * (1 - gp["span_ratio"])
    ((per,),) = grab(r"as the (\d+) s a trial gives it")
    yield "a trial's time per worker", per, st["sleep"] / st["workers"]


@check("storage_params_4.json", "storage_params_60.json")
def storage_params() -> Iterator[Figure]:
    """Commits per trial at 4 and at 60 parameters (a trial's parameters in one transaction)."""
    reps = {n: load(f"storage_params_{n}.json") for n in (4, 60)}
    ((commit, lo, hi),) = grab(
        r"`storage_params_60.json`, a clean clone of ([0-9a-f]{7}), 1-minute load average "
        r"([\d.]+)-([\d.]+)"
    )
    loads = []
    for n, rep in reps.items():
        m = rep["machine"]
        yield f"{n} commit", commit, m["tradeoff_commit"]
        yield f"{n} clean", str(m["tradeoff_dirty"]), "False"
        yield f"{n} params", str(n), str(rep["settings"]["n_params"])
        yield f"{n} trials", "300", str(rep["settings"]["n_trials"])
        loads += [m["load_avg_1_5_15_at_start"][0], m["load_avg_1_5_15_at_end"][0]]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    rows = {
        (n, r["storage"], r["drivers"]): r for n, rep in reps.items() for r in rep["rows"]
    }  # fmt: skip
    names = {"SQLite": "sqlite", "PostgreSQL": "postgres"}
    shown_rows = table("| storage, drivers | commits / trial, 4 parameters |")
    yield "rows", str(len(shown_rows)), str(len(rows) // 2)
    for label, *cells in shown_rows:
        name, drivers = label.split(", ")
        a, b = rows[4, names[name], int(drivers)], rows[60, names[name], int(drivers)]
        want = [
            a["commits_per_trial"], b["commits_per_trial"], a["writes_per_trial"],
            b["writes_per_trial"], a["ms_per_trial"], b["ms_per_trial"],
        ]  # fmt: skip
        for i, (text, value) in enumerate(zip(cells, want)):
            yield f"{label} column {i}", text, value
    ((one, two),) = grab(r"\(([\d.]+) with one driver, ([\d.]+) with two, at 4 and at 60")
    for (n, _, drivers), r in rows.items():
        yield f"{n} {drivers} commits", one if drivers == 1 else two, r["commits_per_trial"]
    ((slow, fast),) = grab(r"One driver still records only (\d+)-(\d+) trials per second")
    single = [r["trials_per_s"] for (_, _, d), r in rows.items() if d == 1]
    yield "slowest single driver", slow, int(min(single))
    yield "fastest single driver", fast, int(max(single))


def _missing_provenance(d: dict[str, Any]) -> set[str]:
    machine = d.get("machine", {})
    have = {
        "command": bool(d.get("command") or d.get("settings", {}).get("command")),
        "commit": bool(machine.get("tradeoff_commit")),
        "versions": bool(machine.get("python") and machine.get("optuna")),
        "machine": bool(machine.get("cpu_count") and machine.get("platform")),
    }
    return {k for k, ok in have.items() if not ok}


@check("storage_batched_4.json", "storage_params_4.json")
def storage_batched() -> Iterator[Figure]:
    """Commits per trial before and after the heartbeat and the attributes join transactions."""
    now, before = load("storage_batched_4.json"), load("storage_params_4.json")
    ((commit, lo, hi),) = grab(
        r"`benchmarks/results/storage_batched_4\.json`, a clean clone of ([0-9a-f]{7}), "
        r"1-minute load average ([\d.]+)-([\d.]+)\)"
    )
    m = now["machine"]
    yield "commit", commit, m["tradeoff_commit"]
    yield "clean", str(m["tradeoff_dirty"]), "False"
    yield "load low", lo, min(m["load_avg_1_5_15_at_start"][0], m["load_avg_1_5_15_at_end"][0])
    yield "load high", hi, max(m["load_avg_1_5_15_at_start"][0], m["load_avg_1_5_15_at_end"][0])
    for key in ("n_params", "n_trials", "optimizers", "storages"):
        yield key, str(now["settings"][key]), str(before["settings"][key])
    names = {"SQLite": "sqlite", "PostgreSQL": "postgres"}
    rows = table("| storage, drivers | commits / trial, before | now |")
    yield "rows", str(len(rows)), str(len(now["rows"]))
    fewer = set()
    for label, *cells in rows:
        name, drivers = label.split(", ")
        key = (names[name], int(drivers))
        a, b = (
            next(r for r in p["rows"] if (r["storage"], r["drivers"]) == key) for p in (before, now)
        )
        want = [r[k] for k in ("commits_per_trial", "ms_per_trial") for r in (a, b)]
        for i, (text, value) in enumerate(zip(cells, want)):
            yield f"{label} column {i}", text, value
        fewer.add(round(a["commits_per_trial"] - b["commits_per_trial"]))
    yield "four fewer in every row", str(fewer), "{4}"
    ((left,),) = grab(r"Of the (\d+) commits left with one driver")
    yield "left", left, min(r["commits_per_trial"] for r in now["rows"] if r["drivers"] == 1)


@check("drivers.json")
def drivers() -> Iterator[Figure]:
    rep = load("drivers.json")
    rows = {r["drivers"]: r for r in rep["rows"]}
    header = "| drivers | trials / s | speed-up | driver CPU ms / trial |"
    for n, rate, speedup, cpu, complete, surplus, evaluations in table(header):
        r = rows[int(n)]
        yield f"{n} rate", rate, r["trials_per_s"]
        yield f"{n} speed-up", speedup, r["speedup"]
        yield f"{n} CPU", cpu, 1e3 * r["driver_cpu_s_per_trial"]
        yield f"{n} complete", complete, r["complete"]
        yield f"{n} surplus", surplus, r["surplus"]
        yield f"{n} evaluations", evaluations, r["evaluations"]
        yield f"{n} exact", str(r["exact"]), "True"
    yield "all exact", str(rep["all_exact"]), "True"
    ((commit, lo, hi, n_trials),) = grab(
        r"`benchmarks/results/drivers.json`, a clean clone of (\w+), load average (\d+)-(\d+) "
        r"from other jobs\) .*? `tradeoff.optimize\(..., n_trials=(\d+)\)`"
    )
    yield from clean_clone(rep, commit, lo, hi)
    yield "trials", n_trials, rep["settings"]["n_trials"]
    ((cpu, ms),) = grab(r"a driver spends (\d+) ms of CPU per trial of its (\d+) ms")
    yield "one driver's CPU", cpu, 1e3 * rows[1]["driver_cpu_s_per_trial"]
    yield "one driver's ms/trial", ms, 1e3 / rows[1]["trials_per_s"]


@check("scale_samplers.json", "proposal_speed.json")
def scale_samplers() -> Iterator[Figure]:
    rep = load("scale_samplers.json")
    rows = {r["case"]: r for r in rep["rows"]}
    names = {"TPE": "tpe", "mobo": "mobo"}
    parts = {
        "sampler": "sampler_ms_per_trial_by_tenth",
        "rest of the loop": "driver_ms_per_trial_by_tenth",
    }
    header = "| sampler | trials | part | first tenth | 5th | last tenth |"
    for name, trials, part, first, fifth, last in table(header):
        r = rows[names[name]]
        tenths = r[parts[part]]
        yield f"{name} trials", trials.split()[0], r["trials_run"]
        yield f"{name} {part} first", first, tenths[0]
        yield f"{name} {part} 5th", fifth, tenths[4]
        yield f"{name} {part} last", last, tenths[-1]
    yield "mobo time-boxed", str(rows["mobo"]["time_boxed"]), "True"
    ((commit, lo, hi),) = grab(
        r"`benchmarks/results/scale_samplers.json`, a clean clone of (\w+), load average "
        r"(\d+)-(\d+)\)"
    )
    yield from clean_clone(rep, commit, lo, hi)
    ((box, n, box2, slow, cpu, obs),) = grab(
        r"\| mobo \| \d+ \((\d+) s box\).*?`mobo` reached only (\d+) trials in (\d+) s: its "
        r"proposal grows to ([\d.]+) s \(([\d.]+) s of CPU\) at about (\d+) observations"
    )
    yield "box", box, rep["settings"]["time_box"]
    yield "box (prose)", box2, rep["settings"]["time_box"]
    yield "mobo trials", n, rows["mobo"]["trials_run"]
    yield "mobo last tenth s", slow, rows["mobo"]["sampler_ms_per_trial_by_tenth"][-1] / 1e3
    yield "mobo last tenth CPU s", cpu, rows["mobo"]["cpu_ms_per_trial_by_tenth"][-1] / 1e3
    yield "observations", obs, round(rows["mobo"]["trials_run"] * 0.95, -1)
    ((lo_s, hi_s, at),) = grab(
        r"the proposal-speed benchmark's ([\d.]+)-([\d.]+) s at (\d+) observations"
    )
    speed = load("proposal_speed.json")
    mobo = [v["mobo"] for v in speed["median_s"].values()]
    yield "speed low", lo_s, min(mobo)
    yield "speed high", hi_s, max(mobo)
    yield "speed observations", at, speed["settings"]["n_obs"]


@check("scale_evolution_before.json", "scale_evolution.json")
def scale_evolution() -> Iterator[Figure]:
    """Evolution on the ladder in SQLite, before and after its proposals stopped querying the
    storage once per lower-rung result (issue #18)."""
    ((n_configs, n_evals, fix),) = grab(
        r"the budget ladder with a SQLite study, as `compress` does by default \(([\d,]+) "
        r"Configs, ([\d,]+) evaluations\)\. Before (\w+) each proposal"
    )
    first = _git("log", "--format=%h", "--grep=reads the study's metric names once")
    yield "fix commit", fix, first.splitlines()[-1]
    patterns = {
        "before": r"`benchmarks/results/scale_evolution_before.json`, a clean clone of (\w+), "
        r"load average ([\d.]+)-([\d.]+)\): ([\d.]+) ms in the last tenth, and the loop's "
        r"ms/trial went from ([\d.]+) to ([\d.]+) \(([\d.]+)x\); the search took (\d+) s",
        "now": r"`benchmarks/results/scale_evolution.json`, a clean clone of (\w+), run beside "
        r"it, load average ([\d.]+)-([\d.]+)\): ([\d.]+) ms in the last tenth, ms/trial from "
        r"([\d.]+) to ([\d.]+) \(([\d.]+)x, within the 1.5x target\), and the search took "
        r"(\d+) s",
    }
    files = {"before": "scale_evolution_before.json", "now": "scale_evolution.json"}
    for when, pattern in patterns.items():
        rep = load(files[when])
        (r,) = rep["rows"]
        ((commit, lo, hi, sampler, ms0, ms9, growth, wall),) = grab(pattern)
        yield from clean_clone(rep, commit, lo, hi)
        command = "python benchmarks/scale.py --cases evolution --sampler-trials 1000"
        yield f"{when} command", rep["command"].split(" --out")[0], f"{command} --time-box 600"
        yield f"{when} Configs", n_configs, r["configs_run"]
        yield f"{when} evaluations", n_evals, r["trials_run"]
        yield f"{when} not time-boxed", str(r["time_boxed"]), "False"
        yield f"{when} sampler last tenth", sampler, r["sampler_ms_per_trial_by_tenth"][-1]
        yield f"{when} first tenth", ms0, r["ms_first_tenth"]
        yield f"{when} last tenth", ms9, r["ms_last_tenth"]
        yield f"{when} growth", growth, r["growth"]
        yield f"{when} wall", wall, r["wall_s"]
    yield "fix after before's commit", "", _git("log", "--oneline", f"{fix}..cae43c7")


# Tests ----------------------------------------------------------------------------------------
@check("scale_fidelity.json")
def scale_fidelity_after() -> Iterator[Figure]:
    rep = load("scale_fidelity.json")
    rows = {r["case"]: r for r in rep["rows"]}
    ((commit, lo, hi),) = grab(
        r"in-memory searches \(`benchmarks/results/scale_fidelity.json`, a clean clone of "
        r"(\w+), on a quiet machine, load average ([\d.]+)-([\d.]+)\)"
    )
    yield from clean_clone(rep, commit, lo, hi, one_minute=True)
    header = "| search | trials run | ms / trial, first tenth | last tenth | last / first | CPU"
    names = {"in memory, 20,000 trials": "memory",
             "multi-fidelity in memory, 5,000 Configs": "fidelity"}  # fmt: skip
    for name, trials, first, last, growth, cpu, wall in table(header):
        r = rows[names[name]]
        yield f"{name} trials", trials, r["trials_run"]
        yield f"{name} all ran", str(r["configs_run"]), str(r["n_trials"])
        yield f"{name} first", first, r["ms_first_tenth"]
        yield f"{name} last", last, r["ms_last_tenth"]
        yield f"{name} growth", growth.rstrip("x"), r["growth"]
        yield f"{name} cpu growth", cpu.rstrip("x"), r["cpu_growth"]
        yield f"{name} wall", wall, r["wall_s"]
        yield f"{name} met", str(r["growth"] <= 1.5), "True"
    ((lo_ms, hi_ms),) = grab(r"does not grow over these studies \(([\d.]+)-([\d.]+) ms,")
    tenths = [x for r in rows.values() for x in r["ms_per_trial_by_tenth"]]
    yield "ms low", lo_ms, min(tenths)
    yield "ms high", hi_ms, max(tenths)


@check("proposal_speed_dense.json")
def proposal_speed_dense() -> Iterator[Figure]:
    """mobo on a dense observed front, before and after 9268b27, back to back."""
    rep = load("proposal_speed_dense.json")
    runs = {"before": rep["before"], "after": rep}
    header = "| problem (dense front) | observations | before: s per proposal | CPU s | after:"
    names = {"ZDT1 (d=10)": "zdt1", "DTLZ2 (3 obj.)": "dtlz2"}
    for label, n, before, before_cpu, after, after_cpu in table(header):
        key = f"{names[label]}@{n}"
        for when, wall, cpu in (("before", before, before_cpu), ("after", after, after_cpu)):
            yield f"{key} {when}", wall, runs[when]["median_s"][key]["mobo"]
            yield f"{key} {when} CPU", cpu, runs[when]["median_cpu_s"][key]["mobo"]
    ((old, new, lo, hi, proposals),) = grab(
        r"before = a clean clone of ([0-9a-f]{7}), after = a clean clone of ([0-9a-f]{7}), "
        r"back to back, 1-minute load average ([\d.]+)-([\d.]+); (\d+) proposals each"
    )
    loads = [
        r["machine"][f"load_avg_1_5_15_at_{end}"][0]
        for r in runs.values()
        for end in ("start", "end")
    ]
    for when, commit in (("before", old), ("after", new)):
        yield f"{when} commit", commit, runs[when]["machine"]["tradeoff_commit"]
        yield f"{when} clean", str(runs[when]["machine"]["tradeoff_dirty"]), "False"
        yield f"{when} fill", "front", runs[when]["settings"]["fill"]
        yield f"{when} proposals", proposals, runs[when]["settings"]["proposals"]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)


@check("proposal_speed_quiet.json")
def proposal_speed_quiet() -> Iterator[Figure]:
    """Today's mobo beside Optuna's GPSampler, one run, dense fronts (#17)."""
    rep = load("proposal_speed_quiet.json")
    ((command, commit, lo, hi, n, hedged, fast_lo, fast_hi),) = grab(
        r"Today's mobo beside Optuna 5\.1's `GPSampler` in the same run \(`(python "
        r"benchmarks/proposal_speed\.py [^`]+)`, `benchmarks/results/proposal_speed_quiet\.json`, "
        r"a clean clone of (\w+), 1-minute load average ([\d.]+)-([\d.]+); median of (\d) "
        r"proposals, (\w+) of mobo's \d from its TPE hedge, which takes ([\d.]+)-([\d.]+) s\)"
    )
    yield "command", command, rep["command"].split(" --out")[0]
    yield from clean_clone(rep, commit, lo, hi, one_minute=True)
    yield "proposals", n, rep["settings"]["proposals"]
    mobo = [t for t in rep["timings"] if t["sampler"] == "mobo"]
    fast = [s for t in mobo for s in t["seconds"] if s < 0.1]
    yield (
        "hedged proposals per cell",
        {"one": "[1]"}[hedged],
        str(sorted({sum(s < 0.1 for s in t["seconds"]) for t in mobo})),
    )
    yield "hedge fastest", fast_lo, min(fast)
    yield "hedge slowest", fast_hi, max(fast)
    names = {"ZDT1 (d=10)": "zdt1", "DTLZ2 (3 obj.)": "dtlz2"}
    header = "| problem (dense front), today | observations | mobo: s per proposal |"
    for label, obs, wall, cpu, gp_wall, gp_cpu in table(header):
        key = f"{names[label]}@{obs}"
        yield f"{key} mobo", wall, rep["median_s"][key]["mobo"]
        yield f"{key} mobo CPU", cpu, rep["median_cpu_s"][key]["mobo"]
        yield f"{key} gp", gp_wall, rep["median_s"][key]["optuna-gp"]
        yield f"{key} gp CPU", gp_cpu, rep["median_cpu_s"][key]["optuna-gp"]
    ((zdt_x, dtlz_x, zdt_miss, dtlz_miss),) = grab(
        r"At 200 observations mobo proposes ([\d.]+) and ([\d.]+) times as fast as Optuna's GP; "
        r"the 1 s target stays missed, by ([\d.]+) s on ZDT1 and ([\d.]+) s on DTLZ2\."
    )
    at = {p: rep["median_s"][f"{p}@200"] for p in ("zdt1", "dtlz2")}
    yield "ZDT1 ratio", zdt_x, at["zdt1"]["optuna-gp"] / at["zdt1"]["mobo"]
    yield "DTLZ2 ratio", dtlz_x, at["dtlz2"]["optuna-gp"] / at["dtlz2"]["mobo"]
    yield "ZDT1 miss", zdt_miss, at["zdt1"]["mobo"] - rep["settings"]["target_s"]
    yield "DTLZ2 miss", dtlz_miss, at["dtlz2"]["mobo"] - rep["settings"]["target_s"]


@check("proposal_speed_in_a_row.json")
def proposal_speed_in_a_row() -> Iterator[Figure]:
    """mobo's runs of asks (several workers free at once), before and after the fit cache, in
    one call (#18)."""
    rep = load("proposal_speed_in_a_row.json")
    before = rep["before"]
    ((command, commit, old, lo, hi, groups, size, hedged, model),) = grab(
        r"`(python benchmarks/proposal_speed\.py [^`]+) --before CLONE` "
        r"\(`benchmarks/results/proposal_speed_in_a_row\.json`, a clean clone of (\w+) run after "
        r"a clean clone of (\w+), the commit before, in one call, 1-minute load average "
        r"([\d.]+)-([\d.]+)\): (\d) groups of (\d) asks in a row, .* (\d+) of each cell's \d+ "
        r"asks are the hedge's TPE proposals \(milliseconds\), the other (\d+) the model's"
    )
    yield "command", command, rep["command"].split(" --before")[0]
    yield "commit", commit, rep["machine"]["tradeoff_commit"]
    yield "before commit", old, before["machine"]["tradeoff_commit"]
    yield (
        "both clean",
        "[False, False]",
        str([rep["machine"]["tradeoff_dirty"], before["machine"]["tradeoff_dirty"]]),
    )
    loads = [
        r["machine"][k][0]
        for r in (rep, before)
        for k in ("load_avg_1_5_15_at_start", "load_avg_1_5_15_at_end")
    ]
    yield "load low", lo, min(loads)
    yield "load high", hi, max(loads)
    yield "groups", groups, rep["settings"]["proposals"]
    yield "in a row", size, rep["settings"]["in_a_row"]
    for r in (rep, before):
        for t in r["timings"]:
            fast = sum(x < 0.1 for x in t["seconds"])
            yield f"{t['problem']}@{t['n_obs']} hedged", hedged, fast
            yield f"{t['problem']}@{t['n_obs']} model", model, len(t["seconds"]) - fast
    names = {"ZDT1 (d=10)": "zdt1", "DTLZ2 (3 obj.)": "dtlz2"}
    ratios = []
    header = "| problem (dense front) | observations | seconds, 16 asks"
    for label, obs, old_s, new_s, ratio in table(header):
        key = f"{names[label]}@{obs}"
        was, now = sum(before["group_s"][key]["mobo"]), sum(rep["group_s"][key]["mobo"])
        yield f"{key} before", old_s, was
        yield f"{key} now", new_s, now
        yield f"{key} ratio", ratio, now / was
        ratios.append(1 - now / was)
    ((least, most, fits, reuses),) = grab(
        r"A run of four asks costs (\d+)-(\d+)% less: of the 10 model proposals (\d) fit and "
        r"(\d) reuse a fit"
    )
    yield "least saving", least, f"{100 * min(ratios):.0f}"
    yield "most saving", most, f"{100 * max(ratios):.0f}"
    yield "fits", fits, rep["settings"]["proposals"]
    yield "reuses", reuses, str(int(model) - int(fits))


@check(
    "suites_fitcache.json",
    "suites_fitcache_before.json",
    "suites_fitcache_thread.json",
    "suites_machine_99999c2.json",
    "suites.json",
    "suites_winsor.json",
)
def suites_fitcache() -> Iterator[Figure]:
    """A one-worker search runs as before the fit cache (the same cells before and after it,
    on one machine); and what another CPU does to an unchanged version's scores."""
    now, before = load("suites_fitcache.json"), load("suites_fitcache_before.json")
    ((problems, seeds, commit, old, same, total),) = grab(
        r"`python benchmarks/suites\.py --problems ([\w,-]+) --optimizers auto --seeds (\d) "
        r"--jobs 2 --threads 1` in a clean clone of (\w+) \(`benchmarks/results/"
        r"suites_fitcache\.json`\) and of (\w+) \(`suites_fitcache_before\.json`\), one after "
        r"the other: (\w+) of (\d+) cells have the same score"
    )
    for rep, want in ((now, commit), (before, old)):
        yield (
            "command",
            f"python benchmarks/suites.py --problems {problems}",
            " ".join(rep["command"].split()[:4]),
        )
        yield "commit", want, str({r["commit"][:7] for r in rep["runs"]}.pop())
        yield "one commit", "1", len({r["commit"] for r in rep["runs"]})
        yield "clean", "[]", str([x["command"] for x in rep["sessions"] if x["tradeoff_dirty"]])
        yield "100 evaluations", "True", str(all(r["proposals"] == 100 for r in rep["runs"]))
    yield "commit is the fit cache's", commit, OPT_IN_COMMITS[1]
    yield "before is its parent", _git("rev-parse", "--short=7", f"{commit}^"), old
    cells, was = (
        {(r["problem"], r["seed"]): r["score"] for r in rep["runs"] if r["optimizer"] == "auto"}
        for rep in (now, before)
    )
    want_cells = {(p, k) for p in problems.split(",") for k in range(int(seeds))}
    yield "cells", str(sorted(want_cells)), str(sorted(cells))
    yield "cells before", str(sorted(want_cells)), str(sorted(was))
    yield "cells in all", total, len(cells)
    yield (
        "same scores",
        {"all": str(len(cells))}.get(same, same),
        sum(cells[k] == was[k] for k in cells),
    )
    thread = load("suites_fitcache_thread.json")
    ((per_thread, n_same),) = grab(
        r"After (\w+) \(a thread reuses only its own fit\), the same command with `--seeds 1 "
        r"--jobs 1` \(`suites_fitcache_thread\.json`\) gives the (\w+) seed-0 scores again"
    )
    yield "per-thread commit", OPT_IN_COMMITS[2], per_thread
    yield "per-thread run commit", per_thread, str({r["commit"][:7] for r in thread["runs"]}.pop())
    yield "per-thread clean", "False", str(thread["machine"]["tradeoff_dirty"])
    again = {(r["problem"], r["seed"]): r["score"] for r in thread["runs"]}
    seed0 = {k: v for k, v in cells.items() if k[1] == 0}
    yield "per-thread cells", str(sorted(seed0)), str(sorted(again))
    yield "per-thread same", n_same, NUMBER_WORDS[sum(again[k] == v for k, v in seed0.items())]
    machine = load("suites_machine_99999c2.json")
    main, winsor = load("suites.json"), load("suites_winsor.json")
    ((version, problem, seed, here, there),) = grab(
        r"(\w+), whose rerun reproduced 12 of 12 cells of `suites\.json` in its own session, "
        r"gives ([\w-]+) seed (\d) ([\d.]+) here instead of ([\d.]+)"
    )
    (run,) = machine["runs"]
    yield "machine run commit", version, run["commit"][:7]
    yield "machine run clean", "False", str(machine["machine"]["tradeoff_dirty"])
    yield "machine run cell", f"{problem} {seed}", f"{run['problem']} {run['seed']}"
    yield "machine run score", here, run["score"]
    old_cell = [
        r["score"]
        for r in main["runs"]
        if (r["optimizer"], r["problem"], r["seed"]) == ("auto", problem, int(seed))
    ]
    yield "suites.json score", there, old_cell[0]
    reran = [
        r["score"]
        for r in winsor["runs"]
        if (r["optimizer"], r["problem"], r["seed"], r["commit"][:7])
        == ("auto", problem, int(seed), version)
    ]
    yield "99999c2 reproduced it then", str(old_cell), str(reran)
    yield "the same score as today's", here, cells[problem, int(seed)]


@check(
    "optimizers.json",
    "optimizers_fast.json",
    "optimizers_m3.json",
    "suites.json",
    "suites_fast.json",
)
def proposal_speed_dense_quality() -> Iterator[Figure]:
    """Hypervolume at 100 evaluations, seeds 0-1, of mobo before and after the dense-front
    changes (before: the mean of the same seeds' runs in the earlier files)."""
    old, suites, suites_fast = (
        load("optimizers.json"),
        load("suites.json"),
        load("suites_fast.json"),
    )
    fast = {name: load(name) for name in ("optimizers_fast.json", "optimizers_m3.json")}

    def mean(runs: list[dict[str, Any]], key: str) -> float:
        values = [r[key] for r in runs if r["seed"] in (0, 1)]
        assert len(values) == 2
        return statistics.mean(values)

    header = "| problem (100 evaluations, mean of seeds 0-1) | mobo before | after | after in |"
    for label, before, after, where in table(header):
        where = where.strip("`").removeprefix("benchmarks/results/")
        if label in PROBLEM_ROWS:
            p = PROBLEM_ROWS[label]
            runs = [r for r in old["runs"] if (r["problem"], r["optimizer"]) == (p, "mobo")]
            yield f"{label} before", before, mean(runs, "hv_fraction")
            new = [r for r in fast[where]["runs"] if (r["problem"], r["optimizer"]) == (p, "mobo")]
            yield f"{label} after", after, mean(new, "hv_fraction")
            yield f"{label} trials", "100", str(fast[where]["settings"]["n_trials"])
        else:
            label = label.removeprefix("suite ")
            runs = [r for r in suites["runs"] if r["problem"] == label]
            yield (
                f"{label} before",
                before,
                mean([r for r in runs if r["optimizer"] == "auto-df7dd28"], "score"),
            )
            new = [r for r in suites_fast["runs"] if r["problem"] == label]
            yield f"{label} after", after, mean(new, "score")
            yield f"{label} file", "suites_fast.json", where
    for name, commit in grab(r"(optimizers_\w+\.json)`, a clean clone of ([0-9a-f]{7})", count=2):
        yield f"{name} commit", commit, fast[name]["machine"]["tradeoff_commit"]
        yield f"{name} clean", str(fast[name]["machine"]["tradeoff_dirty"]), "False"
    ((two, three),) = grab(
        r"suites_fast.json` \(contender `auto-fast`\), clean clones of ([0-9a-f]{7}) \(two "
        r"objectives\) and ([0-9a-f]{7}) \(dtlz2-m3\)"
    )
    for label, commit in (("dtlz2-m3", three), ("two objectives", two)):
        runs = [r for r in suites_fast["runs"] if r["optimizer"] == "auto-fast"]
        mine = [r for r in runs if (r["problem"] == "dtlz2-m3") == (label == "dtlz2-m3")]
        yield (
            f"auto-fast {label} commit",
            commit,
            ", ".join(sorted({r["commit"][:7] for r in mine})),
        )


def _best_own_anchor(
    label: str, cell: str, fractions: dict[str, float]
) -> Generator[Figure, None, str]:
    """A "0.990 (Optuna GPSampler)" cell: the best Optuna sampler of ``optimizers.json`` on one
    of its problems and its median; returns that sampler's name."""
    names = {"Optuna GPSampler": "optuna-gp", "Optuna TPE": "optuna-tpe"}
    anchors = ("optuna-gp", "optuna-tpe", "optuna-nsga2", "optuna-random")
    value, anchor = re.fullmatch(r"([\d.]+) \((.+)\)", cell).groups()
    top = max(anchors, key=fractions.__getitem__)
    yield f"{label} best anchor", names[anchor], top
    yield f"{label} best anchor value", value, fractions[top]
    return top


@check("optimizers_hedge.json", "optimizers.json")
def mobo_hedge_own_problems() -> Iterator[Figure]:
    """mobo with the hedge against mobo without it on optimizers.py's six problems."""
    new, old = load("optimizers_hedge.json"), load("optimizers.json")
    gaps = []
    header = "| problem | mobo (hedge, "
    for label, hedged, before, best in table(header):
        p = PROBLEM_ROWS[label]
        yield f"{label} hedge", hedged, new["hv_fraction"][p]["mobo"]
        yield f"{label} before", before, old["hv_fraction"][p]["mobo"]
        top = yield from _best_own_anchor(label, best, old["hv_fraction"][p])
        yield (
            f"{label} at least it",
            "True",
            str(new["hv_fraction"][p]["mobo"] >= old["hv_fraction"][p][top]),
        )
        gaps.append(old["hv_fraction"][p]["mobo"] - new["hv_fraction"][p]["mobo"])
    yield "every problem", str(sorted(PROBLEM_ROWS.values())), str(sorted(new["hv_fraction"]))
    ((within,),) = grab(r"mobo with the hedge is within ([\d.]+) of mobo without it")
    yield "largest loss", within, max(gaps)
    ((commit,),) = grab(
        r"a clean clone of ([0-9a-f]{7}), 1-minute load average [\d.]+ at its start"
    )
    yield "commit", commit, new["machine"]["tradeoff_commit"]
    yield "clean", "False", str(new["machine"]["tradeoff_dirty"])
    ((column,),) = grab(r"\| problem \| mobo \(hedge, ([0-9a-f]{7})\)")
    yield "the table's commit", column, new["machine"]["tradeoff_commit"]
    ((start, end),) = grab(r"1-minute load average ([\d.]+) at its start and ([\d.]+)\s+at its end")
    yield "load at start", start, new["machine"]["load_avg_1_5_15_at_start"][0]
    yield "load at end", end, new["machine"]["load_avg_1_5_15_at_end"][0]
    ((before,),) = grab(r"\(`optimizers.json`, ([0-9a-f]{7}); median")
    yield "before commit", before, old["machine"]["tradeoff_commit"]
    yield "seeds", "3", str(new["settings"]["seeds"])


@check("optimizers_sobol.json", "optimizers_hedge.json", "optimizers.json")
def mobo_sobol_own_problems() -> Iterator[Figure]:
    """mobo with the Sobol startup against the hedge's random startup on optimizers.py's six
    problems, and the best Optuna sampler there."""
    new, hedge, old = (
        load("optimizers_sobol.json"),
        load("optimizers_hedge.json"),
        load("optimizers.json"),
    )
    changes = []
    for label, sobol, hedged, best in table("| problem | mobo (Sobol startup, "):
        p = PROBLEM_ROWS[label]
        yield f"{label} Sobol", sobol, new["hv_fraction"][p]["mobo"]
        yield f"{label} hedge", hedged, hedge["hv_fraction"][p]["mobo"]
        yield from _best_own_anchor(label, best, old["hv_fraction"][p])
        changes.append(new["hv_fraction"][p]["mobo"] - hedge["hv_fraction"][p]["mobo"])
    yield "every problem", str(sorted(PROBLEM_ROWS.values())), str(sorted(new["hv_fraction"]))
    ((lo, hi),) = grab(r"the Sobol startup moves mobo's median by ([-\d.]+) to \+([\d.]+)")
    yield "largest loss", lo, min(changes)
    yield "largest gain", hi, max(changes)
    ((commit, start, end),) = grab(
        r"`optimizers_sobol.json`, from a clean clone of ([0-9a-f]{7}); 1-minute load average "
        r"([\d.]+) when it started, ([\d.]+) when it ended"
    )
    yield "commit", commit, new["machine"]["tradeoff_commit"]
    yield "clean", "False", str(new["machine"]["tradeoff_dirty"])
    yield "its mobo is today's", "", _mobo_default_diff(commit)
    yield "load at start", start, new["machine"]["load_avg_1_5_15_at_start"][0]
    yield "load at end", end, new["machine"]["load_avg_1_5_15_at_end"][0]
    yield "seeds", "3", str(new["settings"]["seeds"])
    ((after, before),) = grab(
        r"DTLZ2 with three objectives is the one loss \(seeds ((?:[\d.]+, ){2}[\d.]+) "
        r"against\s+((?:[\d.]+,\s+){2}[\d.]+)\)"
    )
    for label, text, rep in (("Sobol", after, new), ("hedge", before, hedge)):
        runs = [r for r in rep["runs"] if (r["problem"], r["optimizer"]) == ("dtlz2", "mobo")]
        got = [r for r in sorted(runs, key=lambda r: r["seed"])]
        yield f"DTLZ2 {label} seeds", str(len(re.split(r",\s+", text))), str(len(got))
        for i, (t, r) in enumerate(zip(re.split(r",\s+", text), got)):
            yield f"DTLZ2 {label} seed {i}", t, r["hv_fraction"]


@check("suites_10seeds.json", "suites.json")
def suites_ten_seeds() -> Iterator[Figure]:
    """The close problems of the public suites at seeds 0-9: medians and IQRs, who is below
    random search, and which code ran."""
    rep = load("suites_10seeds.json")
    columns = {
        "auto": "auto",
        "auto at 6c9b0f0": "auto-6c9b0f0",
        "Optuna TPE (multivariate)": "optuna-tpe",
        "Optuna TPE (default)": "optuna-tpe-default",
        "Optuna GP": "optuna-gp",
        "Optuna random": "optuna-random",
    }
    header = "| suite problem (seeds 0-9) | " + " | ".join(columns) + " |"
    rows = table(header)
    for problem, *cells in rows:
        for column, cell in zip(columns.values(), cells):
            got = rep["score"][problem].get(column)
            yield from _median_iqr_cell(f"{problem} {column}", cell, got, 10)
    yield "every problem", str(sorted(rep["score"])), str(sorted(p for p, *_ in rows))
    below = sorted(
        p
        for p, _, *_ in rows
        if rep["score"][p]["auto"]["median"] < rep["score"][p]["optuna-random"]["median"]
    )
    ((named,),) = grab(r"At 10 seeds `auto` is below random search on (none|[\w-]+(?:, [\w-]+)*)")
    yield (
        "below random at 10 seeds",
        _named(named),
        str(below),
    )
    ((auto_clone, *others),) = grab(
        r"seeds 3-9 of `auto` ran in a clean clone of ([0-9a-f]{7}), the other columns' in "
        r"clean clones of ([0-9a-f]{7}) \([^)]*\), ([0-9a-f]{7}) \([^)]*\) and ([0-9a-f]{7}) \("
    )
    new = [r for r in rep["runs"] if r["seed"] >= 3]
    mine = {r["commit"][:7] for r in new if r["optimizer"] == "auto"}
    yield "auto's new cells' commit", str({auto_clone}), str(mine)
    rest = {r["commit"][:7] for r in new if r["optimizer"] != "auto"}
    yield "the other new cells' commits", str(sorted(others)), str(sorted(rest))
    yield "auto's code today", "", _mobo_default_diff(auto_clone)
    for commit in sorted({r["commit"][:7] for r in new if r["optimizer"] == "auto-6c9b0f0"}):
        yield (
            f"{commit}'s mobo is 6c9b0f0's",
            "",
            _git("diff", "6c9b0f0", commit, "--", *_mobo_modules()),
        )
    main = {
        (x["problem"], x["optimizer"], x["seed"]): x["score"] for x in load("suites.json")["runs"]
    }
    early = [r for r in rep["runs"] if r["seed"] < 3]
    yield (
        "seeds 0-2 from suites.json",
        "True",
        str(all(r["score"] == main[r["problem"], r["optimizer"], r["seed"]] for r in early)),
    )
    reruns = rep["reruns_of_seeds_0_2"]
    same = sum(a == b for a, b in reruns.values())
    ((n_same, n_runs),) = grab(r"reproduced (\d+) of the (\d+) `suites.json` cells exactly")
    yield "reruns reproduced", n_same, same
    yield "reruns", n_runs, len(reruns)
    loads = [r["load_1min"] for r in new]
    ((lo, hi),) = grab(r"1-minute load average ([\d.]+)-([\d.]+) at the new cells' ends")
    yield "least load", lo, min(loads)
    yield "most load", hi, max(loads)
    clean = [s["tradeoff_dirty"] for s in rep["sessions"] if s.get("cells_run")]
    yield "clean", str([False] * len(clean)), str(clean)
    yield from _sobol_startup(rep)


def _named(text: str) -> str:
    """A README list of problems ("a, b" or "none"), sorted, as the checks compare it."""
    return str(sorted(text.split(", ")) if text != "none" else [])


NUMBER_WORDS = dict(enumerate(("none", "one", "two", "three", "four", "five", "six", "seven")))
TEN_SEED_COLUMNS = {
    "auto": "auto",
    "Optuna GP": "optuna-gp",
    "Optuna TPE (multivariate)": "optuna-tpe",
    "Optuna TPE (default)": "optuna-tpe-default",
    "Optuna NSGA-II": "optuna-nsga2",
    "Optuna random": "optuna-random",
}
TEN_SEED_HEADER = (
    "| suite problem (seeds 0-9, every problem) | "
    + " | ".join(TEN_SEED_COLUMNS)
    + " | auto - best Optuna |"
)


@check("suites_10seeds_all.json", "suites.json", "suites_10seeds.json")
def suites_ten_seeds_every_problem() -> Iterator[Figure]:
    """The fifteen problems at seeds 0-9, `auto` and the five anchors: the table, issue
    #17's targets at ten seeds, and where each cell came from."""
    rep = load("suites_10seeds_all.json")
    score, versus = rep["score"], rep["auto_vs_best_anchor"]
    yield from _anchor_table(TEN_SEED_HEADER, score, versus, 10)
    yield "the fifteen", str(len(versus)), "15"
    yield from _ten_seed_targets(score, versus)
    yield from _ten_seed_provenance(rep)
    yield from _ten_seed_changes(rep)


def _anchor_table(
    header: str, score: dict[str, Any], versus: dict[str, Any], n_seeds: int
) -> Iterator[Figure]:
    """A table of `auto` and the five Optuna anchors (TEN_SEED_COLUMNS): every cell, the best
    median in bold, the "auto - best Optuna" column, and every problem of the JSON shown."""
    names = {v: k for k, v in TEN_SEED_COLUMNS.items()}
    lines = README.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(header)))
    rows = table(header)
    for (problem, *cells), raw in zip(rows, lines[start + 2 :]):
        for column, cell in zip(TEN_SEED_COLUMNS.values(), cells):
            yield from _median_iqr_cell(
                f"{problem} {column}", cell, score[problem][column], n_seeds
            )
        marked = [c.strip() for c in raw.strip().strip("|").split("|")[1:]]
        bold = [c for c, cell in zip(TEN_SEED_COLUMNS.values(), marked) if cell.startswith("**")]
        top = max(TEN_SEED_COLUMNS.values(), key=lambda o: score[problem][o]["median"])
        yield f"{problem} bold", str(bold), str([top])
        yield from _versus_cell(problem, cells[-1], versus[problem], names)
    shown_ = sorted(row[0] for row in rows)
    yield f"every problem at {n_seeds} seeds", str(shown_), str(sorted(versus))


REST_HEADER = (
    "| suite problem (seeds 0-2, the rest of the suite) | "
    + " | ".join(TEN_SEED_COLUMNS)
    + " | auto - best Optuna |"
)


@check("suites_rest.json", "suites.json", "suites_fitcache.json")
def suites_rest() -> Iterator[Figure]:
    """The problems of `--all` beyond `CORE` that the run finished: the table, the targets on
    them, the run's provenance, and DTLZ5 at two objectives scoring as DTLZ2."""
    rep = load("suites_rest.json")
    score, versus = rep["score"], rep["auto_vs_best_anchor"]
    yield from _anchor_table(REST_HEADER, score, versus, 3)
    ((command, commit, lo, hi),) = grab(
        r"The rest of the suite \(`([^`]+)`, `benchmarks/results/suites_rest\.json`, a "
        r"clean clone of (\w+), .*? 1-minute load average ([\d.]+)-([\d.]+) as its cells ended"
    )
    yield "command", command + " --out benchmarks/results/suites_rest.json", rep["command"]
    yield "commit", str({commit}), str({r["commit"][:7] for r in rep["runs"]})
    yield "clean", "[]", str([x["command"] for x in rep["sessions"] if x["tradeoff_dirty"]])
    loads = [r["load_1min"] for r in rep["runs"]]
    yield "least load", lo, min(loads)
    yield "most load", hi, max(loads)
    yield "the mobo modules as today's at one worker", "", _mobo_default_diff(commit)
    ((not_core, whole, cells, left),) = grab(
        r"the (\d+) problems of `--all` that are not in `CORE`.* ran (\d+) of them whole at seeds "
        r"0-2, with `auto` and the five anchors \((\d+) cells; the (\d+) left"
    )
    yield "problems beyond CORE", not_core, len(rep["settings"]["problems"])
    yield "whole problems", whole, len(versus)
    yield "cells", cells, len(rep["runs"])
    yield "cells left", left, rep["sessions"][-1]["stopped"].split(": ")[1].split()[0]
    ((n, pct, below, iqr, tpe, rand),) = grab(
        r"On these fifteen `auto`'s median is at least the best anchor's on (\d+) \((\d+)%; the "
        r"target 80%\), below it on ([^;]+); beyond one IQR below the best anchor's median on "
        r"([^;]+); under multivariate TPE's on ([\w-]+) only; under random search's on (\w+)\."
    )
    yield "percent", pct, round(100 * int(n) / len(versus))
    yield from _anchor_targets(score, versus, n, below, iqr, tpe, rand)
    ((gp_n, tpe_n),) = grab(r"(\w+) of the seven losses are to Optuna's GP, (\w+) to default TPE")
    winners = [v["best_anchor"] for v in versus.values() if v["diff"] < 0]
    yield "losses to the GP", gp_n, NUMBER_WORDS[winners.count("optuna-gp")].capitalize()
    yield "losses to default TPE", tpe_n, NUMBER_WORDS[winners.count("optuna-tpe-default")]

    # DTLZ5 at two objectives is DTLZ2: the same draws where a score does not depend on the CPU.
    seeds = _seed_scores
    main, here = load("suites.json"), load("suites_fitcache.json")
    for anchor in ("optuna-tpe", "optuna-tpe-default", "optuna-nsga2", "optuna-random"):
        yield (
            f"dtlz5-m2 {anchor}",
            str(seeds(main, "dtlz2-m2", anchor)),
            str(seeds(rep, "dtlz5-m2", anchor)),
        )
    yield "dtlz5-m2 auto", str(seeds(here, "dtlz2-m2", "auto")), str(seeds(rep, "dtlz5-m2", "auto"))
    ((gp_here, gp_there),) = grab(
        r"Optuna's GP does not\s+\(([\d.]+) here against ([\d.]+) there\)"
    )
    yield "dtlz5-m2 GP here", gp_here, score["dtlz5-m2"]["optuna-gp"]["median"]
    yield "dtlz2-m2 GP there", gp_there, main["score"]["dtlz2-m2"]["optuna-gp"]["median"]
    yield (
        "the GP's differ",
        "True",
        str(seeds(main, "dtlz2-m2", "optuna-gp") != seeds(rep, "dtlz5-m2", "optuna-gp")),
    )


def _ten_seed_targets(score: dict[str, Any], versus: dict[str, dict[str, Any]]) -> Iterator[Figure]:
    """Issue #17's targets at ten seeds, as the paragraph under the table states them."""
    ((n, of, pct, below),) = grab(
        r"At ten seeds `auto`'s median is at least the best anchor's on (\d+) of the (\d+) "
        r"problems \((\d+)%, the target 80%\), below it on ([^;]+);"
    )
    yield "of", of, len(versus)
    yield "percent", pct, round(100 * int(n) / int(of))
    ((iqr,),) = grab(
        r"more than one IQR below the best anchor's median on (none|[\w-]+(?:, [\w-]+)*)"
    )
    ((tpe,),) = grab(r"below multivariate TPE's median on (none|[\w-]+(?:, [\w-]+)*)")
    ((rand,),) = grab(r"below random search's on (none|[\w-]+(?:, [\w-]+)*)")
    yield from _anchor_targets(score, versus, n, below, iqr, tpe, rand)


def _anchor_targets(
    score: dict[str, Any],
    versus: dict[str, dict[str, Any]],
    n: str,
    below: str,
    iqr: str,
    tpe: str,
    rand: str,
) -> Iterator[Figure]:
    """Issue #17's targets on a table of `auto` and the anchors, against the README's texts:
    how many problems at least the best anchor's median (``n``), those below it with their
    margins (``below``: "p (-0.1), ..."), and the problems (``_named`` lists) more than one
    IQR below it, below multivariate TPE's median and below random search's."""
    yield "at least the best anchor", n, sum(v["diff"] >= 0 for v in versus.values())
    losers = {p: v["diff"] for p, v in versus.items() if v["diff"] < 0}
    items = re.findall(r"([\w-]+) \((-[\d.]+)\)", below)
    yield "below the best anchor", str(sorted(p for p, _ in items)), str(sorted(losers))
    for p, d in items:
        yield f"{p} below by", d, losers[p]

    def iqr_margin(p: str) -> float:
        best = score[p][versus[p]["best_anchor"]]
        return versus[p]["auto"] - (best["median"] - (best["q75"] - best["q25"]))

    yield "beyond one IQR", _named(iqr), str(sorted(p for p in versus if iqr_margin(p) < 0))
    for label, anchor, text in (
        ("multivariate TPE", "optuna-tpe", tpe),
        ("random", "optuna-random", rand),
    ):
        under = sorted(p for p in versus if score[p]["auto"]["median"] < score[p][anchor]["median"])
        yield f"below {label}", _named(text), str(under)


def _seed_scores(report: dict[str, Any], problem: str, optimizer: str) -> list[float]:
    """A suites report's scores of one problem and optimizer, in seed order."""
    runs = [r for r in report["runs"] if (r["problem"], r["optimizer"]) == (problem, optimizer)]
    return [r["score"] for r in sorted(runs, key=lambda r: r["seed"])]


def _ten_seed_changes(rep: dict[str, Any]) -> Iterator[Figure]:
    """The command, the problems whose verdict moved from three seeds to ten, and wfg6-m2's
    split runs."""
    ((command,),) = grab(r"Ten seeds on every problem \(`([^`]+)`")
    out = " --out benchmarks/results/suites_10seeds_all.json"
    yield "command", command + out, rep["command"]
    ((cells,),) = grab(r"auto` and the five anchors, (\d+) cells\.")
    yield "cells", cells, len(rep["runs"])
    three = load("suites.json")["auto_vs_best_anchor"]
    ten = rep["auto_vs_best_anchor"]
    ((changed, fell, rose),) = grab(
        r"the three-seed verdicts change on (\w+), ahead at three seeds and behind at ten on "
        r"([\w-]+(?:, [\w-]+)*), behind at three and ahead at ten on ([\w-]+(?:, [\w-]+)*)\."
    )
    down = sorted(p for p in ten if three[p]["diff"] >= 0 > ten[p]["diff"])
    up = sorted(p for p in ten if three[p]["diff"] < 0 <= ten[p]["diff"])
    yield "ahead at 3, behind at 10", str(sorted(fell.split(", "))), str(down)
    yield "behind at 3, ahead at 10", str(sorted(rose.split(", "))), str(up)
    yield "verdicts changed", changed, NUMBER_WORDS[len(down) + len(up)]
    runs = [r for r in rep["runs"] if r["problem"] == "wfg6-m2"]
    auto = [r["score"] for r in runs if r["optimizer"] == "auto"]
    tpe = [r["score"] for r in runs if r["optimizer"] == "optuna-tpe-default"]
    ((n_low, lo1, hi1, n_high, lo2, hi2, t_lo, t_hi),) = grab(
        r"(\w+) of the ten end at ([\d.]+)-([\d.]+) and (\w+) at ([\d.]+)-([\d.]+) \(default "
        r"TPE's: ([\d.]+)-([\d.]+)\)"
    )
    low = [v for v in auto if v < (float(hi1) + float(lo2)) / 2]
    high = [v for v in auto if v >= (float(hi1) + float(lo2)) / 2]
    yield "low runs", n_low, NUMBER_WORDS[len(low)]
    yield "high runs", n_high, NUMBER_WORDS[len(high)]
    yield "low from", lo1, min(low)
    yield "low to", hi1, max(low)
    yield "high from", lo2, min(high)
    yield "high to", hi2, max(high)
    yield "default TPE from", t_lo, min(tpe)
    yield "default TPE to", t_hi, max(tpe)


def _ten_seed_provenance(rep: dict[str, Any]) -> Iterator[Figure]:
    """Seeds 0-2 are `suites.json`'s cells, seeds 3-9 already run are `suites_10seeds.json`'s,
    the rest ran in the clean clone the README names, whose `auto` is today's."""
    key = ("problem", "optimizer", "seed")
    earlier = {tuple(r[k] for k in key): r for r in load("suites.json")["runs"]}
    ten = {tuple(r[k] for k in key): r for r in load("suites_10seeds.json")["runs"]}
    copied = [r for r in rep["runs"] if r["seed"] < 3]
    yield (
        "seeds 0-2 are suites.json's",
        "True",
        str(all(r == earlier[tuple(r[k] for k in key)] for r in copied)),
    )
    old = [r for r in rep["runs"] if r["seed"] >= 3 and tuple(r[k] for k in key) in ten]
    yield (
        "seeds 3-9 run before are suites_10seeds.json's",
        "True",
        str(all(r == ten[tuple(r[k] for k in key)] for r in old)),
    )
    new = [r for r in rep["runs"] if r["seed"] >= 3 and tuple(r[k] for k in key) not in ten]
    ((n_old, n_new, clone, lo, hi),) = grab(
        r"(\d+) cells at seeds 3-9 come from `suites_10seeds.json`; the other (\d+) ran in a "
        r"clean clone of ([0-9a-f]{7}) \(2 jobs, 1-minute load average ([\d.]+)-([\d.]+) at "
        r"their ends\)"
    )
    yield "cells from the 10-seed run", n_old, len(old)
    yield "new cells", n_new, len(new)
    yield "new cells' commit", str({clone}), str({r["commit"][:7] for r in new})
    yield "auto's code today", "", _mobo_default_diff(clone)
    clean = [s["tradeoff_dirty"] for s in rep["sessions"] if s.get("cells_run")]
    yield "clean", str([False] * len(clean)), str(clean)
    loads = [r["load_1min"] for r in new]
    yield "least load", lo, min(loads)
    yield "most load", hi, max(loads)


def _sobol_startup(rep: dict[str, Any]) -> Iterator[Figure]:
    """The Sobol startup's paragraph: wfg9-m2 seed by seed, the median moves, the margins."""
    med = {p: {o: v["median"] for o, v in row.items()} for p, row in rep["score"].items()}

    def seeds(problem: str, optimizer: str) -> list[float]:
        return _seed_scores(rep, problem, optimizer)

    ((old, new),) = grab(r"wfg9-m2 ((?:[\d.]+, ){9}[\d.]+) -> ((?:[\d.]+,\s+){9}[\d.]+)")
    for label, text, column in (("6c9b0f0", old, "auto-6c9b0f0"), ("Sobol", new, "auto")):
        got = seeds("wfg9-m2", column)
        for i, (t, v) in enumerate(zip(re.split(r",\s+", text), got, strict=True)):
            yield f"wfg9-m2 {label} seed {i}", t, v
    low = {c: sum(v < 0.3 for v in seeds("wfg9-m2", c)) for c in ("auto-6c9b0f0", "auto")}
    ((before, after),) = grab(r"\(below 0.3: (\w+) -> (\w+)\)")
    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
    yield "seeds below 0.3 before", str(words[before]), str(low["auto-6c9b0f0"])
    yield "seeds below 0.3 after", str(words[after]), str(low["auto"])
    order = ("wfg9-m2", "wfg2-m2", "cf2", "dtlz2-m3", "wfg4-m2")
    (moves,) = grab(
        r"the median moved ([+-][\d.]+) on wfg9-m2,\s+([+-][\d.]+) on wfg2-m2, ([+-][\d.]+) "
        r"on cf2, ([+-][\d.]+) on dtlz2-m3 and ([+-][\d.]+) on wfg4-m2"
    )
    ((total,),) = grab(r"Summed over the five problems the medians moved ([+-][\d.]+)")
    yield "summed move", total, sum(med[p]["auto"] - med[p]["auto-6c9b0f0"] for p in order)
    yield "every problem's move", str(sorted(med)), str(sorted(order))
    for p, d in zip(order, moves):
        yield f"{p} median move", d.lstrip("+"), med[p]["auto"] - med[p]["auto-6c9b0f0"]
    ((margin, auto, rand),) = grab(r"only by ([\d.]+) on wfg9-m2 \(([\d.]+) against ([\d.]+)\)")
    yield "wfg9-m2 over random", margin, med["wfg9-m2"]["auto"] - med["wfg9-m2"]["optuna-random"]
    yield "wfg9-m2 auto", auto, med["wfg9-m2"]["auto"]
    yield "wfg9-m2 random", rand, med["wfg9-m2"]["optuna-random"]
    ((gp_lead,),) = grab(r"wfg2-m2 \(Optuna's\s+GP by (\d+\.\d+)\)")
    yield "wfg2-m2 over GP", gp_lead, med["wfg2-m2"]["auto"] - med["wfg2-m2"]["optuna-gp"]
    ((auto4, gp4),) = grab(r"trails Optuna's GP on wfg4-m2 \(([\d.]+) against ([\d.]+)\)")
    yield "wfg4-m2 auto", auto4, med["wfg4-m2"]["auto"]
    yield "wfg4-m2 GP", gp4, med["wfg4-m2"]["optuna-gp"]
    ((old4,),) = grab(r"and ahead of it on\s+wfg4-m2 \(([\d.]+)\)")
    yield "wfg4-m2 auto at 6c9b0f0", old4, med["wfg4-m2"]["auto-6c9b0f0"]
    later = [round(v, 3) for v in seeds("dtlz2-m3", "auto")[3:]]
    ((text,),) = grab(r"its seeds 3-9 \(((?:[\d.]+, ){6}[\d.]+)\)")
    yield "dtlz2-m3 seeds 3-9", text, ", ".join(f"{v:.3f}" for v in later)


@check("suites_winsor.json", "suites.json")
def suites_winsor() -> Iterator[Figure]:
    """mobo with winsorize=True beside auto (paired seeds), its unpaired first run, and the
    best Optuna anchor; auto's rerun after the option reproduces auto's cells."""
    rep, main = load("suites_winsor.json"), load("suites.json")
    names = {v: k for k, v in SUITE_COLUMNS.items()}
    rows = table("| suite problem (seeds 0-2) | mobo, winsorize=True |")
    med = {p: {o: v["median"] for o, v in row.items()} for p, row in main["score"].items()}
    ahead = behind = at_least_best = 0
    for problem, winsor, auto, diff, unpaired, best in rows:
        score = rep["score"][problem]
        yield from _median_iqr_cell(f"{problem} winsor", winsor, score["mobo-winsor"], 3)
        yield from _median_iqr_cell(f"{problem} auto", auto, main["score"][problem]["auto"], 3)
        yield from _median_iqr_cell(f"{problem} unpaired", unpaired, score["mobo-winsor-seed"], 3)
        gain = score["mobo-winsor"]["median"] - med[problem]["auto"]
        yield f"{problem} winsor - auto", diff.lstrip("+"), gain
        ahead, behind = ahead + (gain > 0), behind + (gain < 0)
        value, anchor = re.fullmatch(r"(\S+) \((.+)\)", best).groups()
        top = main["auto_vs_best_anchor"][problem]["best_anchor"]
        yield f"{problem} best anchor", anchor, names[top]
        yield f"{problem} best anchor median", value, med[problem][top]
        at_least_best += score["mobo-winsor"]["median"] >= med[problem][top]
    yield (
        "every problem of suites.json's table",
        str(sorted(p for p, *_ in rows)),
        str(sorted(main["auto_vs_best_anchor"])),
    )
    ((n_ahead, n_behind, n_best),) = grab(
        r"ahead of `auto`'s median on (\d+) of 15 problems and behind on (\d+); at least the "
        r"best anchor's median on (\d+) of 15"
    )
    yield "winsor ahead", n_ahead, str(ahead)
    yield "winsor behind", n_behind, str(behind)
    yield "winsor at least the best anchor", n_best, str(at_least_best)
    # auto rerun after the option: the same scores, cell by cell.
    ((auto_commit, same, total),) = grab(
        r"`auto` rerun in a clean clone of ([0-9a-f]{7}) reproduced (\d+) of (\d+) of its cells"
    )
    mine = [r for r in rep["runs"] if r["optimizer"] == "auto"]
    before = {
        (r["problem"], r["seed"]): r["score"] for r in main["runs"] if r["optimizer"] == "auto"
    }
    yield "auto reruns", total, str(len(mine))
    yield (
        "auto reproduced",
        same,
        str(sum(r["score"] == before[r["problem"], r["seed"]] for r in mine)),
    )
    ((winsor_commit, unpaired_commit),) = grab(
        r"winsorize=True ran in a clean clone of ([0-9a-f]{7}) \(its unpaired first run: "
        r"([0-9a-f]{7})"
    )
    for label, want in (
        ("mobo-winsor", {winsor_commit}),
        ("auto", {auto_commit}),
        ("mobo-winsor-seed", {unpaired_commit}),
    ):
        runs = [r for r in rep["runs"] if r["optimizer"] == label]
        yield f"{label} commit", str(sorted(want)), str(sorted({r["commit"][:7] for r in runs}))
        yield f"{label} 100 evaluations", "True", str(all(r["proposals"] == 100 for r in runs))
    yield "clean", "[]", str([s["command"] for s in rep["sessions"] if s["tradeoff_dirty"]])
    yield "opt-in commit", unpaired_commit, OPT_IN_COMMITS[0]
    between = _git("diff", unpaired_commit, winsor_commit, "--", *_mobo_modules())
    yield "the same mobo in both runs", "", between
    yield from _suites_winsor_prose(rep, main)
    loads = [r["load_1min"] for r in rep["runs"]]
    ((lo, hi),) = grab(r"1-minute load average ([\d.]+)-([\d.]+) at the winsorization cells' ends")
    yield "winsor least load", lo, min(loads)
    yield "winsor most load", hi, max(loads)


def _suites_winsor_prose(rep: dict[str, Any], main: dict[str, Any]) -> Iterator[Figure]:
    """The gains and losses the winsorization paragraph names, and the unpaired run's spread."""
    winsor = {p: v["mobo-winsor"]["median"] for p, v in rep["score"].items()}
    auto = {p: v["auto"]["median"] for p, v in main["score"].items()}
    ((f028, f028_auto, gp),) = grab(
        r"mixint-f028-d05 \(([\d.]+) against ([\d.]+), still below Optuna's GP's ([\d.]+)\)"
    )
    yield "f028 winsor", f028, winsor["mixint-f028-d05"]
    yield "f028 auto", f028_auto, auto["mixint-f028-d05"]
    yield "f028 GP", gp, main["score"]["mixint-f028-d05"]["optuna-gp"]["median"]
    ((m3,),) = grab(r"gains on dtlz2-m3 \(\+([\d.]+)\)")
    yield "dtlz2-m3 gain", m3, winsor["dtlz2-m3"] - auto["dtlz2-m3"]
    ((f046, f046_auto, wfg2, wfg6),) = grab(
        r"mixint-f046-d05 \(([-\d.]+) against ([-\d.]+)\), wfg2-m2 \((-[\d.]+)\) and wfg6-m2 "
        r"\((-[\d.]+)\)"
    )
    yield "f046 winsor", f046, winsor["mixint-f046-d05"]
    yield "f046 auto", f046_auto, auto["mixint-f046-d05"]
    yield "wfg2-m2 loss", wfg2, winsor["wfg2-m2"] - auto["wfg2-m2"]
    yield "wfg6-m2 loss", wfg6, winsor["wfg6-m2"] - auto["wfg6-m2"]
    spread = {
        p: abs(v["mobo-winsor"]["median"] - v["mobo-winsor-seed"]["median"])
        for p, v in rep["score"].items()
    }
    ((most, where, bound, n_more, listed),) = grab(
        r"differ\s+from the paired ones by up to ([\d.]+) \((\S+)\), and by more than "
        r"([\d.]+) on (\d+) more problems\s+\(([^)]+)\)"
    )
    yield "largest spread", most, max(spread.values())
    yield "largest spread's problem", where, max(spread, key=spread.__getitem__)
    more = [p for p, d in spread.items() if d > float(bound) and p != where]
    yield "spread above the bound", n_more, str(len(more))
    yield "spread's problems", str(sorted(re.split(", | and ", listed))), str(sorted(more))


@check("suites_ax.json", "suites.json")
def suites_ax() -> Iterator[Figure]:
    """Ax 1.3.1 beside auto and the best Optuna anchor: full 100-evaluation cells only."""
    rep, main = load("suites_ax.json"), load("suites.json")
    names = {v: k for k, v in SUITE_COLUMNS.items()}
    rows = table("| suite problem (seeds 0-2) | Ax 1.3.1 |")
    for problem, ax, auto, best, diff, ax_s, ax_50, auto_s in rows:
        runs = [
            r
            for r in rep["runs"]
            if (r["problem"], r["optimizer"]) == (problem, "ax") and r["seed"] < 3
        ]
        yield f"{problem} every cell ran 100", "True", str(all(r["proposals"] == 100 for r in runs))
        yield from _median_iqr_cell(f"{problem} ax", ax, rep["score"][problem]["ax"], 3)
        yield from _median_iqr_cell(f"{problem} auto", auto, main["score"][problem]["auto"], 3)
        value, anchor = re.fullmatch(r"(\S+) \((.+)\)", best).groups()
        top = main["auto_vs_best_anchor"][problem]["best_anchor"]
        yield f"{problem} best anchor", anchor, names[top]
        yield f"{problem} best anchor median", value, main["score"][problem][top]["median"]
        ax_median = rep["score"][problem]["ax"]["median"]
        yield (
            f"{problem} ax - auto",
            diff.lstrip("+"),
            ax_median - main["score"][problem]["auto"]["median"],
        )
        yield f"{problem} ax s", ax_s, rep["s_per_proposal"][problem]["ax"]
        near_50 = statistics.median(x for r in runs for x in r["proposal_s"][45:55])
        yield f"{problem} ax s at 50", ax_50, near_50
        yield f"{problem} auto s", auto_s, main["s_per_proposal"][problem]["auto"]
    shown_ = {p for p, *_ in rows}
    full = {p for p, v in rep["score"].items() if "ax" in v and v["ax"]["seeds"] == [0, 1, 2]}
    yield "every problem with 3 full Ax cells", str(sorted(full)), str(sorted(shown_))
    ((commits,),) = grab(
        r"Ax's cells ran in clean clones of ([0-9a-f]{7}(?:(?:, | and )[0-9a-f]{7})*)"
    )
    used = {r["commit"][:7] for r in rep["runs"] if r["problem"] in shown_}
    yield "ax commits", str(sorted(re.split(", | and ", commits))), str(sorted(used))
    sessions = [s for s in rep["sessions"] if s.get("tradeoff_commit") in used]
    yield "ax clean", "[]", str([s["command"] for s in sessions if s["tradeoff_dirty"]])
    first, *later = sorted(used)
    for commit in later:  # one pair at a time: `git diff A B C` is a merge's combined diff
        diff_ = _git("diff", first, commit, "--", "benchmarks/suite_problems.py")
        yield f"the problems in {first} and {commit}", "", diff_
    loads = [r["load_1min"] for r in rep["runs"] if r["problem"] in shown_]
    ((lo, hi),) = grab(r"1-minute load average ([\d.]+)-([\d.]+) at Ax's cells' ends")
    yield "ax least load", lo, min(loads)
    yield "ax most load", hi, max(loads)
    yield from _suites_ax_prose(rep, main, sorted(shown_))


def _suites_ax_prose(
    rep: dict[str, Any], main: dict[str, Any], shown_: list[str]
) -> Iterator[Figure]:
    """The figures the Ax paragraphs quote beside the table: cell times, the margins, the
    speed ratio, mobo before the hedge, and cf2's cells."""
    ax = [r for r in rep["runs"] if r["optimizer"] == "ax" and r["problem"] in shown_]
    ((lo, hi, cf2_min),) = grab(
        r"Ax cell takes (\d+)-(\d+) minutes here \(on the constrained cf2 more than (\d+)\)"
    )
    yield "fastest cell, min", lo, math.floor(min(r["wall_s"] for r in ax) / 60)
    yield "slowest cell, min", hi, math.floor(max(r["wall_s"] for r in ax) / 60)
    cf2 = sorted(
        (r for r in rep["runs"] if (r["problem"], r["optimizer"]) == ("cf2", "ax")),
        key=lambda r: r["seed"],
    )
    yield "cf2 cells over the bound", "True", str(all(r["wall_s"] > 60 * int(cf2_min) for r in cf2))
    score = {p: {o: v["median"] for o, v in row.items()} for p, row in main["score"].items()}
    ((m1, m2, m3, m4),) = grab(
        r"by ([\d.]+) on wfg4-m2 and ([\d.]+) on dtlz2-m2, where it is also\s+ahead of every "
        r"Optuna anchor, by ([\d.]+) on wfg9-m2, [\s\S]*?and by ([\d.]+) on the constrained cf2, "
        r"again ahead of every Optuna anchor"
    )
    leads = ("wfg4-m2", "dtlz2-m2", "wfg9-m2", "cf2")
    for p, text in zip(leads, (m1, m2, m3, m4)):
        yield f"{p} ax lead", text, rep["score"][p]["ax"]["median"] - score[p]["auto"]
    for p in ("wfg4-m2", "dtlz2-m2", "cf2"):
        best = max(score[p][a] for a in SUITE_ANCHORS)
        yield f"{p} ax ahead of every anchor", "True", str(rep["score"][p]["ax"]["median"] > best)
    ((tpe9,),) = grab(r"behind\s+multivariate TPE's (\d+\.\d+)")
    yield "wfg9-m2 TPE", tpe9, score["wfg9-m2"]["optuna-tpe"]
    ((auto4, bound4, auto2, bound2),) = grab(
        r"best anchor minus one IQR\s+\(([\d.]+) against ([\d.]+) and ([\d.]+) against ([\d.]+)\)"
    )
    for p, auto_, bound in (("wfg4-m2", auto4, bound4), ("cf2", auto2, bound2)):
        q = rep["score"][p]["ax"]
        yield f"{p} auto (IQR)", auto_, score[p]["auto"]
        yield f"{p} Ax minus IQR", bound, q["median"] - (q["q75"] - q["q25"])
    ((slow, fast),) = grab(r"`auto`'s proposals are (\d+) to (\d+) times faster")
    ratios = [rep["s_per_proposal"][p]["ax"] / main["s_per_proposal"][p]["auto"] for p in shown_]
    yield "least speed ratio", slow, round(min(ratios))
    yield "largest speed ratio", fast, round(max(ratios))
    ((d4, d2, d9, ax9),) = grab(
        r"\*auto at df7dd28\* above \(every proposal from mobo's GP\) scored ([\d.]+) and "
        r"([\d.]+)\s+on the first two, nearer Ax, but ([\d.]+) on wfg9-m2, where Ax holds ([\d.]+)"
    )
    for p, text in (("wfg4-m2", d4), ("dtlz2-m2", d2), ("wfg9-m2", d9)):
        yield f"{p} at df7dd28", text, score[p]["auto-df7dd28"]
    yield "wfg9-m2 Ax", ax9, rep["score"]["wfg9-m2"]["ax"]["median"]
    ((old2,),) = grab(
        r"On cf2 too the GP alone came nearer Ax: \*auto at df7dd28\* scored ([\d.]+)"
    )
    yield "cf2 at df7dd28", old2, score["cf2"]["auto-df7dd28"]
    yield (
        "cf2 at df7dd28 nearer Ax",
        "True",
        str(
            abs(score["cf2"]["auto-df7dd28"] - rep["score"]["cf2"]["ax"]["median"])
            < abs(score["cf2"]["auto"] - rep["score"]["cf2"]["ax"]["median"])
        ),
    )
    ((timeout, longer, short),) = grab(
        r"--run-timeout (\d+)`\s+into [\s\S]*?cf2's seeds 0 and 2 ran with `--run-timeout (\d+)`, "
        r"after seed 0's first cell\s+stopped at the 1,500 s timeout after (\d+) evaluations"
    )

    def timeouts(seeds: set[int]) -> str:  # the --run-timeout of the sessions that ran them
        commits = {r["commit"] for r in cf2 if r["seed"] in seeds}
        return str(sorted({
            re.search(r"--run-timeout (\d+)", x["command"]).group(1)  # type: ignore[union-attr]
            for x in rep["sessions"]
            if x["tradeoff_commit"] in commits and "cf2" in x["command"]
        }))  # fmt: skip

    yield "cf2 seed 1 timeout", f"['{timeout}']", timeouts({1})
    yield "cf2 seeds 0, 2 timeout", f"['{longer}']", timeouts({0, 2})
    ((old,),) = [[r["run"] for r in rep["superseded"]]]
    yield (
        "superseded cell",
        f"cf2 seed 0 at {short} evaluations",
        (f"{old['problem']} seed {old['seed']} at {old['evaluations']} evaluations"),
    )


COLLECTED = sorted(CHECKS)  # the checks defined above this line; the test below runs these


@pytest.mark.parametrize("name", COLLECTED or [None])
def test_readme_figure_matches_its_json(name):
    files, fn = CHECKS[name]
    figures = list(fn())
    assert figures, name
    wrong = [f"{w}: README {t!r}, JSON {v!r}" for w, t, v in figures if not shown(t, v)]
    assert not wrong, f"{name} ({', '.join(files)}):\n" + "\n".join(wrong)


def test_every_table_with_figures_is_checked():
    for _, fn in CHECKS.values():
        list(fn())
    tables = [line for line in README.splitlines() if line.startswith("| ")]
    headers = [
        line
        for i, line in enumerate(tables)
        if i + 1 < len(tables) and tables[i + 1].startswith("| ---")
    ]
    unchecked = []
    for header in headers:
        if header in TABLES_READ:
            continue
        lines = README.splitlines()
        at = lines.index(header)
        body = [line for line in lines[at + 2 :] if line.startswith("|")]
        if any(re.search(r"\d", line) for line in body):
            unchecked.append(header)
    assert not unchecked, f"README tables with figures no check reads: {unchecked}"


def test_quoted_results_record_command_commit_versions_and_machine():
    cited = sorted({f for files, _ in CHECKS.values() for f in files})
    assert set(LEGACY) <= set(cited), "LEGACY names files the README does not quote"
    for name in cited:
        assert name in README, f"{name} is quoted but never named in the README"
        missing = _missing_provenance(load(name))
        assert missing == LEGACY.get(name, set()), f"{name}: missing {sorted(missing)}"


def test_every_check_is_defined_above_the_tests():
    """A check registered below the parametrized test is never run by it."""
    assert sorted(CHECKS) == COLLECTED
