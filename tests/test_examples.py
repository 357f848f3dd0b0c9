"""Every example runs, with a tiny budget."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tradeoff

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("[!_]*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_search_file_runs(path, monkeypatch):
    monkeypatch.setenv("TRADEOFF_SMOKE", "1")  # real models and data, tiny subsets and budgets
    namespace = runpy.run_path(str(path), run_name="__tradeoff__")
    result = tradeoff.optimize(
        namespace["evaluate"],
        namespace["space"],
        objectives=namespace["objectives"],
        constraints=namespace.get("constraints", ()),
        metrics=namespace.get("metrics", ()),
        fidelity=namespace.get("fidelity"),
        initial_configs=namespace.get("initial_configs"),
        optimizer="random",
        n_trials=6,
        seed=0,
        show_progress=False,
    )
    assert (result.trials["status"] == "complete").sum() >= 1
    assert len(result.pareto) >= 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a CUDA device")
@pytest.mark.parametrize("name", ["minilm_peft.py", "mnist_compression.py", "smollm2_compress.py"])
def test_example_asked_for_a_missing_gpu_stops_with_how_to_fix(name):
    (path,) = [p for p in EXAMPLES if p.name == name]
    env = {"TRADEOFF_SMOKE": "1", "TRADEOFF_DEVICE": "cuda"}
    run = subprocess.run(
        [sys.executable, str(path), "--help"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    assert "torch sees no CUDA device; use TRADEOFF_DEVICE=cpu" in run.stderr


def run_main(name, tmp_path, *args):
    """Run example ``name``'s command line in smoke mode; its JSON report."""
    (path,) = [p for p in EXAMPLES if p.name == name]
    report = tmp_path / "report.json"
    argv = [sys.executable, str(path), *args, "--report", str(report), "--plots", str(tmp_path)]
    env = {**os.environ, "TRADEOFF_SMOKE": "1", "TRADEOFF_DEVICE": "cpu"}
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(report.read_text())


def test_minilm_report_compares_search_baselines_and_fidelities(tmp_path):
    rep = run_main("minilm_peft.py", tmp_path, "--compare", "--minutes", "0.3", "--n-trials",
                   "6", "--storage", f"sqlite:///{tmp_path / 'studies.db'}")  # fmt: skip
    signs = {"accuracy": -1.0, "trainable_k": 1.0, "weight_mb": 1.0, "latency_ms": 1.0}
    front = {row["trial"]: row for row in rep["pareto"]}
    assert front and all(row["latency_check_ms"] > 0 for row in front.values())
    for a in front.values():  # a Pareto set: nobody in it dominates another
        assert not any(_dominates(b, a, signs) for b in front.values())
    for base in rep["baselines"]:
        assert base["dominated_by"] == [t for t, r in front.items() if _dominates(r, base, signs)]
    fidelity = rep["mf_vs_full"]["hypervolume"]
    assert fidelity["multi_fidelity"] >= 0 and fidelity["full_budget"] >= 0
    for plot in ("pareto", "allocation", "hypervolume_mf_vs_full"):
        assert (tmp_path / f"{plot}.png").read_bytes().startswith(b"\x89PNG")


def test_smollm2_report_starts_from_the_proxy_and_names_what_beats_each_baseline(tmp_path):
    rep = run_main("smollm2_compress.py", tmp_path, "--proxy-starts", "--n-trials", "6")
    assert rep["settings"]["proxy_starts"] >= 1
    assert set(rep["runs"]) == {"multi-fidelity", "full budget"}
    fronts = {name: {p["trial"]: p for p in run["pareto"]} for name, run in rep["runs"].items()}
    for base in rep["baselines"]:
        for who in base["beaten_by"]:
            run, trial = who.split("#")
            found = fronts[run][int(trial)]
            assert found["kl"] <= base["kl"] and found["size_mb"] <= base["size_mb"]
    assert rep["fidelity"]["hypervolume_mf"] >= 0
    assert {Path(p).name for p in rep["plots"]} >= {"pareto.png", "hypervolume_time.png"}


def _dominates(a, b, signs):
    diff = [s * (a[n] - b[n]) for n, s in signs.items()]
    return all(d <= 0 for d in diff) and any(d < 0 for d in diff)
