"""Every example runs, with a tiny budget."""

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
