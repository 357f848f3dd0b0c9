"""Every example runs with a tiny budget, through the path users run (``optimizer="auto"``)."""

import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tradeoff
from tradeoff.objectives import ObjectiveSet
from tradeoff.search import auto_optimizer

TESTS = Path(__file__).resolve().parent
EXAMPLES = sorted((TESTS.parent / "examples").glob("[!_]*.py"))
N_TRIALS = 6
# The examples that are search files (space, objectives, evaluate), and what "auto" must pick
# for each at N_TRIALS (tradeoff/search/_presets.py):
AUTO_PICKS = {
    "zdt.py": "mobo",  # 6 floats, two measured objectives, no known cost
}
RUN_HERE = {"minilm_peft.py"}  # command-line examples run by a test below


def test_every_example_is_tested():
    """An example is a search file run below, runs below, or has a test file of its own."""
    own = {p.name for p in EXAMPLES if (TESTS / f"test_example_{p.stem}.py").exists()}
    assert sorted(set(AUTO_PICKS) | RUN_HERE | own) == [p.name for p in EXAMPLES]


def _search(namespace, **kwargs):
    return tradeoff.optimize(
        namespace["evaluate"],
        namespace["space"],
        objectives=namespace["objectives"],
        constraints=namespace.get("constraints", ()),
        metrics=namespace.get("metrics", ()),
        fidelity=namespace.get("fidelity"),
        initial_configs=namespace.get("initial_configs"),
        optimizer="auto",
        n_trials=N_TRIALS,
        seed=0,
        show_progress=False,
        **kwargs,
    )


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if p.name in AUTO_PICKS], ids=lambda p: p.name
)
def test_example_search_file_runs_as_users_run_it(path, monkeypatch):
    monkeypatch.setenv("TRADEOFF_SMOKE", "1")  # real models and data, tiny subsets and budgets
    ns = runpy.run_path(str(path), run_name="__tradeoff__")
    space, objectives, constraints = ns["space"], ns["objectives"], ns.get("constraints", ())
    objset = ObjectiveSet.build(objectives, constraints, ns.get("metrics", ()))
    pick = auto_optimizer(space, n_trials=N_TRIALS, objectives=objset)
    assert pick == AUTO_PICKS[path.name]

    result = _search(ns)
    study = result.study
    assert study.user_attrs["tradeoff.optimizer"] == pick  # recorded, so a resume keeps it
    assert study.metric_names == [o.name for o in objectives]
    assert [d.name.lower() for d in study.directions] == [o.direction for o in objectives]
    trials = result.trials
    counted = trials["status"].isin(["complete", "failed"]) if ns.get("fidelity") is None else (
        trials["status"].isin(["complete", "failed", "stopped", "promoted"])
        & trials["promoted_from"].isna()
    )  # fmt: skip
    assert counted.sum() == N_TRIALS  # the budget counts Configs, each once
    for trial in study.trials:  # every proposal is a Config of the space
        assert space.contains(trial.user_attrs["tradeoff.config"]), trial.number

    signs = {o.name: -1.0 if o.direction == "maximize" else 1.0 for o in objectives}
    front = result.pareto.to_dict("records")
    done = trials[(trials["status"] == "complete") & trials["feasible"]].to_dict("records")
    assert front, result.summary()
    for a in front:  # nothing feasible dominates a Pareto point...
        assert not any(_dominates(b, a, signs) for b in done), a["trial"]
    for b in done:  # ...and something on the front dominates or equals every other point
        assert b["pareto"] or any(_dominates(a, b, signs) for a in front), b["trial"]
    for row, config in zip(front, result.configs()):
        for o in objectives:  # known costs recorded as the driver computes them
            if o.fn is not None:
                assert row[o.name] == pytest.approx(o.fn(config), rel=1e-9), o.name
        for c in constraints:
            assert (row[c.name] <= c.bound) if c.op == "<=" else (row[c.name] >= c.bound)
    assert math.isfinite(result.hypervolume()) and result.hypervolume() > 0


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
    assert "torch sees no CUDA device" in run.stderr  # and how to fix it: the device to use


def test_minilm_peft_compress_front_and_baselines(tmp_path):
    """examples/minilm_peft.py in smoke mode (real model and data, tiny): the front, the
    baselines (LoRA r8 / IA3 at each uniform compression, the first trials) and "auto"."""
    (path,) = [p for p in EXAMPLES if p.name == "minilm_peft.py"]
    report, db = tmp_path / "report.json", tmp_path / "studies.db"
    argv = [sys.executable, str(path), "--n-trials", "20", "--minutes", "2", "--report",
            str(report), "--storage", f"sqlite:///{db}"]  # fmt: skip
    env = {**os.environ, "TRADEOFF_SMOKE": "1", "TRADEOFF_DEVICE": "cpu"}
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    rep = json.loads(report.read_text())
    assert rep["machine"]["tradeoff_commit"] and rep["machine"]["peft"]
    res = rep["result"]
    assert res["optimizer"] == "tpe"  # what "auto" picks: a Choice of adapter method
    signs = {"accuracy": -1.0, "trainable_k": 1.0, "size_mb": 1.0, "latency_ms": 1.0}
    front = {row["trial"]: row for row in res["pareto"]}
    assert front and res["hypervolume"] > 0
    for a in front.values():  # a Pareto set: nobody in it dominates another
        assert not any(_dominates(b, a, signs) for b in front.values())
        assert any(k.startswith("peft.") for k in a["config"])
        assert any(k.endswith(".ffn") for k in a["config"])
    uniform = [b for b in res["baselines"] if b["kind"] == "uniform"]
    assert {b["baseline"].split(",")[0] for b in uniform} == {"uniform LoRA r8", "uniform IA3"}
    assert len(uniform) == 2 * 8  # 2 FFN widths x 2 sparsities x 2 bits in smoke mode
    for base in res["baselines"]:
        assert base["dominated_by"] == [t for t, r in front.items() if _dominates(r, base, signs)]
        if base["kind"] == "uniform":  # a first trial: on the front or dominated
            assert base["trial"] is not None
            assert base["trial"] in front or base["dominated_by"], base["baseline"]
    assert set(res["evaluations_by_steps"]) == {"1", "2"}  # both rungs of the ladder


def _dominates(a, b, signs):
    diff = [s * (a[n] - b[n]) for n, s in signs.items()]
    return all(d <= 0 for d in diff) and any(d < 0 for d in diff)
