"""A study stores Ordinal levels themselves (what optuna-dashboard and ``trial.params`` show),
and a study written when Ordinals were stored as level indices still resumes."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

import tradeoff
from tradeoff._study import ATTR_CONFIG
from tradeoff._validate import SPACE_ATTR, space_signature
from tradeoff.objectives import Constraint, Objective
from tradeoff.spaces import Float, Ordinal, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

BITS, SPARSITY, HEADS = [2, 3, 4, 8], [0.0, 0.25, 0.5], [4, 6, 8]


def make_space() -> SearchSpace:
    return SearchSpace(
        {
            "bits": Ordinal(BITS),
            "sparsity": Ordinal(SPARSITY),
            "heads": Ordinal(HEADS),
            "x": Float(0.0, 1.0),
        }
    )


def size(config: dict) -> float:
    return config["bits"] * (1.0 - config["sparsity"]) * config["heads"]


def evaluate(config: dict) -> dict:
    return {"error": (1.2 - config["x"]) / config["bits"] + config["sparsity"] / config["heads"]}


OBJECTIVES = [Objective("error"), Objective("size", fn=size)]
CONSTRAINTS = [Constraint("size", "<=", 40.0)]
OPTIMIZERS = ["random", "tpe", "nsga2", "evolution", "mobo"]


def search(space: SearchSpace, optimizer: str, n_trials: int, **kwargs) -> tradeoff.SearchResult:
    if optimizer == "mobo":
        pytest.importorskip("botorch")
    return tradeoff.optimize(
        evaluate, space, objectives=OBJECTIVES, constraints=CONSTRAINTS, optimizer=optimizer,
        n_trials=n_trials, seed=0, show_progress=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_study_stores_real_levels(optimizer):
    space = make_space()
    result = search(space, optimizer, n_trials=12)
    trials = result.study.trials
    assert (result.trials["status"] == "complete").sum() == 12  # over-budget ones not counted
    dists = trials[0].distributions
    assert dists["bits"] == CategoricalDistribution(BITS)
    assert dists["sparsity"] == CategoricalDistribution(SPARSITY)
    assert dists["heads"] == IntDistribution(4, 8, step=2)
    for t in trials:
        assert t.params["bits"] in BITS and t.params["sparsity"] in SPARSITY
        assert t.params["heads"] in HEADS
        assert type(t.params["sparsity"]) is float
        config = t.user_attrs[ATTR_CONFIG]
        assert {k: t.params[k] for k in ("bits", "sparsity", "heads")} == {
            k: config[k] for k in ("bits", "sparsity", "heads")
        }
    shown = {(t.params["bits"], t.params["sparsity"], t.params["heads"]) for t in trials}
    assert len(shown) > 3  # the search moved


# A study written before: level indices ---------------------------------------------------------
def old_study(url: str, name: str, n: int, *, signature: bool = True) -> list[dict]:
    """A study as tradeoff wrote it when an Ordinal was stored as its level index
    (``IntDistribution(0, n - 1)``): params are indices, each trial's Config the levels."""
    space = make_space()
    study = optuna.create_study(storage=url, study_name=name, directions=["minimize"] * 2)
    study.set_metric_names(["error", "size"])
    if signature:  # studies before the space was recorded have none
        study.set_user_attr(SPACE_ATTR, space_signature(space))
    dists = {
        "bits": IntDistribution(0, 3),
        "sparsity": IntDistribution(0, 2),
        "heads": IntDistribution(0, 2),
        "x": space["x"].distribution(),
    }
    rng = np.random.default_rng(1)
    configs = []
    for _ in range(n):
        config = space.sample(rng)
        params = {k: space[k].index(v) if k != "x" else v for k, v in config.items()}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                values=[evaluate(config)["error"], size(config)],
                user_attrs={ATTR_CONFIG: config},
                system_attrs={"constraints": [size(config) - 40.0]},
            )
        )
        configs.append(config)
    return configs


def by_index(params: dict) -> dict:
    levels = {"bits": BITS, "sparsity": SPARSITY, "heads": HEADS}
    return {k: levels[k][v] if k in levels else v for k, v in params.items()}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_study_of_level_indices_resumes_to_its_budget(tmp_path, optimizer):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = old_study(url, "old", 8)
    space = make_space()
    result = search(space, optimizer, n_trials=14, storage=url, study_name="old")
    trials = result.study.trials
    assert (result.trials["status"] == "complete").sum() == 14  # its budget
    for t in trials:  # every trial, old and new, keeps the index encoding
        assert t.distributions["bits"] == IntDistribution(0, 3)
        assert t.distributions["sparsity"] == IntDistribution(0, 2)
        assert t.distributions["heads"] == IntDistribution(0, 2)
        assert t.user_attrs[ATTR_CONFIG] == by_index(t.params)
    for number, config in zip(result.pareto["trial"], result.configs()):
        assert config == by_index(trials[number].params)
    assert [t.user_attrs[ATTR_CONFIG] for t in trials[:8]] == old
    frame = result.trials.set_index("trial")
    assert set(frame["bits"]) <= set(BITS) and set(frame["sparsity"]) <= set(SPARSITY)
    # The same space object searches a new study with the levels again.
    fresh = search(space, "random", n_trials=3, storage=url, study_name="new")
    assert fresh.study.trials[0].distributions["bits"] == CategoricalDistribution(BITS)


def test_a_study_of_level_indices_without_a_recorded_space_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'older.db'}"
    old_study(url, "older", 6, signature=False)
    result = search(make_space(), "evolution", n_trials=9, storage=url, study_name="older")
    trials = result.study.trials
    assert (result.trials["status"] == "complete").sum() == 9
    assert all(t.distributions["sparsity"] == IntDistribution(0, 2) for t in trials)
    assert all(t.user_attrs[ATTR_CONFIG] == by_index(t.params) for t in trials)


def test_another_space_under_the_study_name_is_still_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old_study(url, "old", 3, signature=False)
    other = SearchSpace(
        {
            "bits": Ordinal([2, 4, 8]),  # one level fewer
            "sparsity": Ordinal(SPARSITY),
            "heads": Ordinal(HEADS),
            "x": Float(0.0, 1.0),
        }
    )
    with pytest.raises(ValueError, match=r"another space: parameters \['bits'\]"):
        search(other, "random", n_trials=5, storage=url, study_name="old")


def test_compress_resumes_a_study_of_level_indices_with_its_initial_configs(tmp_path):
    # compress validates (which adopts the study's encoding) before it calls optimize with its
    # starting Configs: they are encoded as the study stores them, and the ones it already
    # has are not enqueued again.
    from tradeoff._optimize import validate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = old_study(url, "old", 4)
    space = make_space()
    new = {"bits": 8, "sparsity": 0.5, "heads": 6, "x": 0.5}
    starts = [old[0], old[1], new]
    validate(evaluate, space, objectives=OBJECTIVES, constraints=CONSTRAINTS, n_trials=6,
             storage=url, study_name="old", initial_configs=starts)  # fmt: skip
    result = search(space, "random", n_trials=6, storage=url, study_name="old",
                    initial_configs=starts)  # fmt: skip
    trials = result.study.trials
    assert (result.trials["status"] == "complete").sum() == 6
    assert trials[4].user_attrs[ATTR_CONFIG] == new and trials[4].params["bits"] == 3
    assert all(t.user_attrs[ATTR_CONFIG] == by_index(t.params) for t in trials)


def test_initial_configs_on_a_study_of_level_indices(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old_study(url, "old", 4)
    new = {"bits": 8, "sparsity": 0.5, "heads": 6, "x": 0.5}
    result = search(make_space(), "random", n_trials=6, storage=url, study_name="old",
                    initial_configs=[new])  # fmt: skip
    trials = result.study.trials
    assert trials[4].user_attrs[ATTR_CONFIG] == new
    assert all(t.user_attrs[ATTR_CONFIG] == by_index(t.params) for t in trials)
