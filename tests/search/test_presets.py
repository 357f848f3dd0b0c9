import time

import optuna
import pytest

from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search import OPTIMIZERS, auto_optimizer, make_sampler
from tradeoff.search._presets import HANDOVER
from tradeoff.spaces import Choice, Float, Ordinal, SearchSpace

from ..conftest import ZDT_OBJECTIVES, ZDT_SPACE

OBJS = ObjectiveSet.build(ZDT_OBJECTIVES)


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'cmaes'.*'nsga2'"):
        make_sampler("cmaes", space=ZDT_SPACE, objectives=OBJS, n_trials=10)


def test_a_sampler_instance_is_used_as_is():
    sampler = optuna.samplers.QMCSampler(seed=0)
    assert make_sampler(sampler, space=ZDT_SPACE, objectives=OBJS, n_trials=10) is sampler


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("tpe", optuna.samplers.TPESampler),
        ("gp", optuna.samplers.GPSampler),
    ],
)
def test_presets_build_optuna_samplers(name, cls):
    assert isinstance(make_sampler(name, space=ZDT_SPACE, objectives=OBJS, n_trials=50), cls)


def test_auto_rule():
    assert auto_optimizer(ZDT_SPACE, n_trials=100) == "mobo"
    assert auto_optimizer(ZDT_SPACE, n_trials=300) == "mobo"
    mixed = SearchSpace({"m": Choice(["lora", "ia3"]), "r": Ordinal([4, 8, 16])})
    assert auto_optimizer(mixed, n_trials=100) == "mobo"
    # Large budgets: mobo, then evolution (tests/search/test_handover.py).
    assert auto_optimizer(mixed, n_trials=301) == HANDOVER == "mobo>evolution"
    assert auto_optimizer(ZDT_SPACE, n_trials=5000) == HANDOVER
    wide = SearchSpace({f"l{i}.bits": Ordinal([2, 4, 8]) for i in range(40)})
    assert auto_optimizer(wide, n_trials=100) == "tpe"
    assert auto_optimizer(wide, n_trials=5000) == "nsga2"
    wide_float = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(40)})
    assert auto_optimizer(wide_float, n_trials=500) == "tpe"
    assert "auto" in OPTIMIZERS and HANDOVER not in OPTIMIZERS


def test_auto_avoids_mobo_when_known_costs_are_expensive():
    def slow_size(config):
        time.sleep(0.01)  # like model_cost: applies the Config to a model copy
        return 1.0

    cheap = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=lambda c: 1.0)], [Constraint("size", "<=", 1)]
    )
    costly = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=slow_size)], [Constraint("size", "<=", 1)]
    )
    mixed = SearchSpace({"m": Choice(["lora", "ia3"]), "r": Ordinal([4, 8, 16])})
    assert auto_optimizer(mixed, n_trials=100, objectives=cheap) == "mobo"
    assert auto_optimizer(mixed, n_trials=100, objectives=costly) == "evolution"
    assert auto_optimizer(mixed, n_trials=1000, objectives=costly) == "evolution"
    unconstrained = ObjectiveSet.build([Objective("error"), Objective("size", fn=slow_size)])
    assert auto_optimizer(mixed, n_trials=100, objectives=unconstrained) == "tpe"
    assert auto_optimizer(ZDT_SPACE, n_trials=100, objectives=unconstrained) == "gp"


def test_auto_times_known_costs_after_their_first_call():
    # Like the analytic model_cost: the first call builds layer shapes (slow), later ones
    # are microseconds. auto must judge by the later calls.
    calls = []

    def size_with_warmup(config):
        calls.append(config)
        if len(calls) == 1:
            time.sleep(0.05)
        return 1.0

    objectives = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=size_with_warmup)],
        [Constraint("size", "<=", 1)],
    )
    mixed = SearchSpace({"m": Choice(["lora", "ia3"]), "r": Ordinal([4, 8, 16])})
    assert auto_optimizer(mixed, n_trials=100, objectives=objectives) == "mobo"
    assert len(calls) > 2


@pytest.mark.parametrize("name", ["random", "nsga2", "tpe", "gp"])
def test_presets_are_reproducible_and_inside_the_space(name):
    space = SearchSpace({"x": Float(0.0, 1.0), "bits": Ordinal([2, 4, 8])})

    def run() -> list[dict]:
        sampler = make_sampler(name, space=space, objectives=OBJS, n_trials=12, seed=3)
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        configs = []
        for _ in range(12):
            trial = study.ask(space.distributions())
            config = space.decode(trial.params)
            configs.append(config)
            study.tell(trial, [config["x"], config["bits"] / (1 + config["x"])])
        return configs

    first = run()
    assert all(space.contains(c) for c in first)
    assert first == run()
