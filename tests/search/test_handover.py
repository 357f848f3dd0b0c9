"""HandoverSampler, and "auto" handing a large budget over from mobo to evolution."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

pytest.importorskip("botorch")

from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search import _presets, make_sampler
from tradeoff.search._evolution import EvolutionSampler
from tradeoff.search._handover import HandoverSampler
from tradeoff.search._mobo import REFERENCE_ATTR, MOBOSampler
from tradeoff.search._presets import HANDOVER, auto_optimizer
from tradeoff.spaces import Float, Int, Ordinal, SearchSpace

from . import test_conformance as conformance

SPACE = SearchSpace({"x": Float(0.0, 1.0), "bits": Ordinal([2, 3, 4, 8]), "depth": Int(1, 6)})
OBJECTIVES = ObjectiveSet.build([Objective("error"), Objective("size")])


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def values(config: dict[str, Any]) -> list[float]:
    error = (config["x"] - 0.3) ** 2 + 1.0 / (config["bits"] * config["depth"])
    return [error, float(config["bits"] * config["depth"])]


def ask_tell(study: optuna.Study, n: int, *, fail: tuple[int, ...] = ()) -> list[str]:
    """``n`` sequential trials (those numbered in ``fail`` fail); the class name of the
    sampler that proposed each."""
    handover = study.sampler
    assert isinstance(handover, HandoverSampler)
    used = []
    for _ in range(n):
        trial = study.ask(SPACE.distributions())
        used.append(type(handover.sampler_for(study, study.trials[trial.number])).__name__)
        if trial.number in fail:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, values(SPACE.decode(trial.params)))
    return used


def mobo_then_evolution(switch_at: int, seed: int = 0) -> HandoverSampler:
    return HandoverSampler(
        MOBOSampler(seed=seed, space=SPACE, objectives=OBJECTIVES, n_startup_trials=2),
        EvolutionSampler(seed=seed, space=SPACE, objectives=OBJECTIVES, population_size=4),
        switch_at=switch_at,
    )


def test_switches_after_switch_at_completed_trials() -> None:
    sampler = HandoverSampler(
        optuna.samplers.RandomSampler(seed=0), EvolutionSampler(seed=0, space=SPACE), switch_at=5
    )
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    used = ask_tell(study, 9, fail=(2,))
    # Trial 2 failed, so the fifth completed trial is trial 5: trial 6 is the first after it.
    assert used == ["RandomSampler"] * 6 + ["EvolutionSampler"] * 3
    assert all(SPACE.contains(SPACE.decode(t.params)) for t in study.trials)


def test_resume_from_storage_decides_by_the_stored_trials(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'handover.db'}"
    first = optuna.create_study(
        storage=url,
        study_name="s",
        directions=["minimize", "minimize"],
        sampler=mobo_then_evolution(switch_at=5),
    )
    assert ask_tell(first, 3) == ["MOBOSampler"] * 3
    # A new process: a new sampler with no memory of the first session.
    resumed = optuna.load_study(study_name="s", storage=url, sampler=mobo_then_evolution(5))
    assert ask_tell(resumed, 4) == ["MOBOSampler"] * 2 + ["EvolutionSampler"] * 2
    assert REFERENCE_ATTR in resumed.user_attrs  # mobo modelled the stored trials
    configs = [SPACE.decode(t.params) for t in resumed.trials]
    assert len(configs) == 7 and all(SPACE.contains(c) for c in configs)


def test_reproducible_with_a_seed() -> None:
    def configs(seed: int) -> list[dict[str, Any]]:
        study = optuna.create_study(
            directions=["minimize", "minimize"], sampler=mobo_then_evolution(4, seed=seed)
        )
        ask_tell(study, 7)
        return [SPACE.decode(t.params) for t in study.trials]

    assert configs(1) == configs(1)
    assert configs(1) != configs(2)


def test_auto_hands_over_from_mobo_to_evolution_for_large_budgets() -> None:
    objectives = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=lambda c: float(c["bits"]))],
        [Constraint("size", "<=", 4.0)],
    )
    assert auto_optimizer(SPACE, n_trials=300, objectives=objectives) == "mobo"
    assert auto_optimizer(SPACE, n_trials=301, objectives=objectives) == HANDOVER
    sampler = make_sampler("auto", space=SPACE, objectives=objectives, n_trials=1000, seed=0)
    assert isinstance(sampler, HandoverSampler)
    assert isinstance(sampler.first, MOBOSampler) and isinstance(sampler.then, EvolutionSampler)
    assert sampler.switch_at == 200
    assert isinstance(
        make_sampler("auto", space=SPACE, objectives=objectives, n_trials=300, seed=0),
        MOBOSampler,
    )


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((None, optuna.samplers.RandomSampler()), TypeError, "first must be"),
        ((optuna.samplers.RandomSampler(), "tpe"), TypeError, "then must be"),
    ],
)
def test_bad_samplers_are_rejected(args: tuple[Any, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        HandoverSampler(*args, switch_at=3)


def test_bad_switch_at_is_rejected() -> None:
    random = optuna.samplers.RandomSampler()
    with pytest.raises(ValueError, match="switch_at must be"):
        HandoverSampler(random, random, switch_at=-1)


# The shared conformance suite, through "auto" with thresholds scaled down so that its
# 10-12 trial runs hand over from mobo to evolution after 6 completed trials. "auto" gives
# spaces with an unordered Choice to TPE, so the suite's "method" is an Ordinal here.
@pytest.fixture
def name(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_presets, "_GP_MAX_TRIALS", 4)
    monkeypatch.setattr(_presets, "_HANDOVER_AT", 6)
    params = {**conformance.SPACE, "method": Ordinal(["lora", "ia3"])}
    monkeypatch.setattr(conformance, "SPACE", SearchSpace(params))
    assert auto_optimizer(conformance.SPACE, n_trials=10) == HANDOVER
    return "auto"


test_proposals_are_inside_the_space = conformance.test_proposals_are_inside_the_space
test_reproducible_with_a_seed_auto = conformance.test_reproducible_with_a_seed
test_three_objectives = conformance.test_three_objectives
test_constraints_known_and_measured = conformance.test_constraints_known_and_measured
test_failed_trials_are_tolerated = conformance.test_failed_trials_are_tolerated
test_continues_a_study_with_existing_trials = (
    conformance.test_continues_a_study_with_existing_trials
)
