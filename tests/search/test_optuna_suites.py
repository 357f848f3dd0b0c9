"""Every sampler ``tradeoff.search`` exports works in a plain Optuna study.

Optuna's own sampler suites (``optuna.testing.pytest_samplers``) run on each of them, with
settings small enough that the model (or the evolution) takes over within the suites' few
trials. The tests below add what the suites leave out: proposals made *after* the random start
on every distribution kind (the suites' relative tests see one completed trial, so only random
proposals), and a define-by-run multi-objective study with conditional parameters, a range that
changes between trials and constraints set through Optuna's public ``trial.set_constraint``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)
from optuna.trial import TrialState

pytest.importorskip("botorch")

import tradeoff.search
from tradeoff.search import EvolutionSampler, HandoverSampler, MOBOSampler

# MOBO models from the 3rd completed trial on; evolution breeds once 4 trials exist; the
# handover runs MOBO's model on its 3rd trial and evolution from the 4th.
SAMPLERS: dict[str, Callable[..., BaseSampler]] = {
    "MOBOSampler": lambda seed=0: MOBOSampler(seed=seed, n_startup_trials=2),
    "EvolutionSampler": lambda seed=0: EvolutionSampler(seed=seed, population_size=4),
    "HandoverSampler": lambda seed=0: HandoverSampler(
        MOBOSampler(seed=seed, n_startup_trials=2),
        EvolutionSampler(seed=seed, population_size=2),
        switch_at=3,
    ),
}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_exported_sampler_runs_the_suites() -> None:
    exported = {
        name
        for name in tradeoff.search.__all__
        if isinstance(obj := getattr(tradeoff.search, name), type) and issubclass(obj, BaseSampler)
    }
    assert exported == set(SAMPLERS)


class TestOptunaSuites(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    """Optuna's suites, each test once per sampler (single- and multi-objective studies)."""

    @pytest.fixture(params=sorted(SAMPLERS))
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return SAMPLERS[request.param]


@pytest.fixture(params=sorted(SAMPLERS))
def make_sampler(request: pytest.FixtureRequest) -> Callable[..., BaseSampler]:
    return SAMPLERS[request.param]


# Every kind of Optuna distribution, with the edge cases of each.
KINDS: dict[str, BaseDistribution] = {
    "float": FloatDistribution(-1.0, 1.0),
    "float_log": FloatDistribution(1e-7, 1.0, log=True),
    "float_step": FloatDistribution(-1.0, 1.0, step=0.25),
    "float_step_fine": FloatDistribution(-10.2, 10.2, step=0.1),  # 205 levels, relaxed
    "int": IntDistribution(-10, 10),
    "int_step": IntDistribution(0, 10, step=2),
    "int_step_odd": IntDistribution(3, 9, step=2),
    "int_log": IntDistribution(1, 100, log=True),
    "int_log_wide": IntDistribution(1, 5000, log=True),  # relaxed
    "cat_mixed": CategoricalDistribution([None, True, "a", 1.5, 2]),
    "cat_bool": CategoricalDistribution([True, False]),
}


def allowed(dist: BaseDistribution, value: Any) -> bool:
    """``value`` is one of ``dist``'s values, as the Python type Optuna's samplers return."""
    if isinstance(dist, CategoricalDistribution):
        return any(type(c) is type(value) and c == value for c in dist.choices)
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    kind = int if isinstance(dist, IntDistribution) else float
    if type(value) is not kind or not dist.low <= value <= dist.high:
        return False
    if dist.step is None:
        return True
    k = (value - dist.low) / dist.step
    return math.isclose(k, round(k), abs_tol=1e-8)


def numeric_sum(params: dict[str, Any]) -> float:
    return sum(float(v) for v in params.values() if isinstance(v, (int, float)) and v is not True)


def test_model_proposals_lie_on_every_distribution(
    make_sampler: Callable[[], BaseSampler], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trials 2-4 come from the model (MOBO) or from parents (evolution). Each relative sample
    # is checked itself: Optuna would silently replace an invalid value by a random one.
    sampler = make_sampler()
    proposals: list[dict[str, Any]] = []

    def record(study: optuna.Study, trial: Any, space: dict[str, BaseDistribution]) -> Any:
        proposals.append(propose(study, trial, space))
        return proposals[-1]

    propose = sampler.sample_relative
    monkeypatch.setattr(sampler, "sample_relative", record)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    for _ in range(5):
        trial = study.ask(KINDS)
        total = numeric_sum(trial.params)
        study.tell(trial, [total, math.sin(total)])
    assert len(proposals) == 5
    for number, proposed in enumerate(proposals[1:], start=1):  # trial 0 has no space yet
        assert proposed.keys() == KINDS.keys()
        bad = {k: v for k, v in proposed.items() if not allowed(KINDS[k], v)}
        assert not bad, f"trial {number}: values outside their distributions: {bad}"
        assert study.trials[number].params == proposed  # Optuna kept every relative value


def define_by_run(trial: optuna.Trial) -> tuple[float, float]:
    """Every distribution kind, a conditional parameter, a range that widens every 6 trials,
    and a constraint ``width <= 4`` on a parameter that only lowers the error."""
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    width = trial.suggest_int("width", 0, 10, step=2)
    layers = trial.suggest_int("layers", 1, 64, log=True)
    depth = trial.suggest_int("depth", 1, 4)
    drop = trial.suggest_float("drop", 0.0, 0.5, step=0.1)
    act = trial.suggest_categorical("act", [None, True, "relu", 0.5])
    scale = trial.suggest_float("scale", 0.0, 1.0 + trial.number // 6)
    momentum = trial.suggest_float("momentum", 0.0, 1.0) if act == "relu" else 0.5
    trial.set_constraint("width", width - 4.0)
    error = (
        (math.log10(lr) + 3) ** 2
        + 2.0 / (1 + width)
        + (momentum - 0.9) ** 2
        + drop
        + 0.1 * depth
        + (0.0 if act == "relu" else 0.3)
        + 0.01 * scale
    )
    return error, math.log2(layers) + depth


def test_define_by_run_multi_objective_study_with_constraints(
    make_sampler: Callable[..., BaseSampler],
) -> None:
    feasible = []
    for seed in range(3):
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(seed))
        # The conditional branch runs at least once whatever the sampler proposes: with two
        # startup trials, a model may keep to one of act's four values and never try "relu".
        study.enqueue_trial({"act": "relu"})
        study.optimize(define_by_run, n_trials=18)
        trials = study.trials
        assert all(t.state == TrialState.COMPLETE for t in trials)
        for t in trials:
            assert all(allowed(t.distributions[k], v) for k, v in t.params.items()), t.params
        assert {"momentum" in t.params for t in trials} == {True, False}  # both branches ran
        assert {t.distributions["scale"].high for t in trials} == {1.0, 2.0, 3.0}
        assert trials[0].constraints == {"width": trials[0].params["width"] - 4.0}
        feasible += [t.params["width"] <= 4 for t in trials[6:]]
    # The constraint, set through the public API, is read back and steers the search: after
    # the start, at least 3 in 4 proposals keep width <= 4 over three seeds (random: half, 18
    # of 36 give or take 3; ignoring the constraint lowers the error). One seed alone is too
    # noisy to judge: MOBO keeps 9 to 12 of its 12 from seed to seed.
    assert sum(feasible) >= 27, feasible
