"""Every example runs, with a tiny budget."""

import runpy
from pathlib import Path

import pytest

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
