"""Every optimizer behaves the same way at the edges users rely on, through ``optimize``.

Each name in ``tradeoff.search.OPTIMIZERS`` (new optimizers join automatically) must: propose
Configs inside a mixed space, reproduce with a seed, handle one objective or several and
constraints, survive failing evaluations, and continue a study that already has trials.
The sampler classes themselves are held to Optuna's own sampler suites in a plain Optuna
study in ``test_optuna_suites.py``.
"""

from __future__ import annotations

import math

import pytest

import tradeoff
from tradeoff.objectives import Constraint, Objective
from tradeoff.search import OPTIMIZERS
from tradeoff.spaces import Choice, Float, Int, Ordinal, SearchSpace

SPACE = SearchSpace(
    {
        "lr": Float(1e-4, 1e-1, log=True),
        "x": Float(0.0, 1.0),
        "depth": Int(1, 6),
        "bits": Ordinal([2, 3, 4, 8]),
        "method": Choice(["lora", "ia3"]),
    }
)
OBJECTIVES = [Objective("error"), Objective("size", fn=lambda c: c["bits"] * c["depth"] * 1.0)]


def evaluate(config):
    penalty = 0.1 if config["method"] == "ia3" else 0.0
    error = (math.log10(config["lr"]) + 2.5) ** 2 + (config["x"] - 0.3) ** 2 + penalty
    return {"error": error / config["bits"] ** 0.5}


def run(name, **kwargs):
    kwargs.setdefault("objectives", OBJECTIVES)
    kwargs.setdefault("n_trials", 10)
    kwargs.setdefault("seed", 0)
    return tradeoff.optimize(
        evaluate if "fn" not in kwargs else kwargs.pop("fn"),
        SPACE,
        optimizer=name,
        show_progress=False,
        **kwargs,
    )


@pytest.fixture(params=OPTIMIZERS)
def name(request):
    return request.param


def test_proposals_are_inside_the_space(name):
    result = run(name)
    assert len(result.trials) == 10
    assert all(SPACE.contains(c) for c in result.configs(pareto=False))


def test_reproducible_with_a_seed(name):
    first = run(name, seed=3).configs(pareto=False)
    assert first == run(name, seed=3).configs(pareto=False)


def test_one_objective(name):
    result = run(name, objectives=[Objective("error")], n_trials=8)
    assert (result.trials["status"] == "complete").all()
    assert len(result.pareto) >= 1  # the best trial(s)
    assert result.pareto["error"].min() == result.trials["error"].min()


def test_three_objectives(name):
    objectives = [*OBJECTIVES, Objective("lr_cost", "maximize", fn=lambda c: c["lr"])]
    result = run(name, objectives=objectives)
    assert (result.trials["status"] == "complete").all()
    assert len(result.pareto) >= 1 and result.hypervolume() > 0


def test_constraints_known_and_measured(name):
    result = run(
        name,
        constraints=[Constraint("size", "<=", 16.0), Constraint("error", "<=", 0.5)],
        n_trials=12,
    )
    trials = result.trials
    assert (trials.loc[trials["status"] == "complete", "size"] <= 16.0).all()
    assert ((result.pareto["size"] <= 16.0) & (result.pareto["error"] <= 0.5)).all()
    assert (trials["status"] == "complete").sum() == 12


def test_failed_trials_are_tolerated(name):
    def flaky(config):
        if config["x"] > 0.6:
            raise RuntimeError("diverged")
        return evaluate(config)

    result = run(name, fn=flaky, n_trials=12)
    assert len(result.trials) == 12
    failed = result.trials[result.trials["status"] == "failed"]
    assert (failed["x"] > 0.6).all()


def test_continues_a_study_with_existing_trials(name, tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    run("random", n_trials=6, storage=url, study_name="s")
    result = run(name, n_trials=12, storage=url, study_name="s")
    assert len(result.trials) == 12
    assert (result.trials["status"] == "complete").all()
