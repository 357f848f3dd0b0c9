"""MOBOSampler: BoTorch multi-objective BO with exact known costs, as an Optuna sampler."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

pytest.importorskip("botorch")

import tradeoff
from tradeoff import _pareto
from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search import _bo_acqf, _bo_hedge, _bo_optim
from tradeoff.search._bo_data import (
    Observations,
    reference_point,
    scale_constraints,
    winsorize,
)
from tradeoff.search._bo_encode import Encoding
from tradeoff.search._mobo import REFERENCE_ATTR, MOBOSampler
from tradeoff.spaces import Choice, Float, Int, Ordinal, SearchSpace

from ..conftest import ZDT_SPACE, zdt1

MIXED = SearchSpace(
    {
        "lr": Float(1e-4, 1e-1, log=True),
        "x": Float(0.0, 1.0),
        "drop": Float(0.0, 0.5, step=0.1),
        "depth": Int(1, 6),
        "bits": Ordinal([2, 3, 4, 8]),
        "method": Choice(["lora", "ia3", "none"]),
    }
)


def size(config: dict[str, Any]) -> float:
    return float(config["bits"] * config["depth"])


def error(config: dict[str, Any]) -> float:
    penalty = {"lora": 0.0, "ia3": 0.1, "none": 0.3}[config["method"]]
    err = (math.log10(config["lr"]) + 2.5) ** 2 + (config["x"] - 0.3) ** 2 + penalty
    return err / config["bits"] ** 0.5 + config["drop"] + 1.0 / config["depth"]


KNOWN = ObjectiveSet.build([Objective("error"), Objective("size", fn=size)])


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def ask_tell(
    sampler: optuna.samplers.BaseSampler,
    n: int,
    *,
    space: SearchSpace = MIXED,
    values: Any = None,
    study: optuna.Study | None = None,
) -> optuna.Study:
    """Sequential ask/tell; ``values(config)`` gives the objective values (default error, size)."""
    study = study or optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    for _ in range(n):
        trial = study.ask(space.distributions())
        config = space.decode(trial.params)
        study.tell(trial, values(config) if values else [error(config), size(config)])
    return study


def configs(study: optuna.Study, space: SearchSpace = MIXED) -> list[dict[str, Any]]:
    return [space.decode(t.params) for t in study.trials]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records, per proposal, the GPs fitted and the pending points passed to BoTorch."""
    calls: list[dict[str, Any]] = []
    fit, propose = _bo_acqf.fit_gps, _bo_acqf.propose

    def fit_gps(*args: Any, **kwargs: Any) -> Any:
        models = fit(*args, **kwargs)
        calls[-1]["n_gps"] = len(models.models)
        return models

    def spy_propose(
        train_x: Any, train_obj: Any, train_con: Any, pending_x: Any, problem: Any, fits: Any = None
    ) -> Any:
        pending = None if pending_x is None else tuple(pending_x.shape)
        calls.append({"pending": pending, "n_obs": len(train_x), "acqf": problem.acquisition})
        return propose(train_x, train_obj, train_con, pending_x, problem, fits)

    monkeypatch.setattr(_bo_acqf, "fit_gps", fit_gps)
    monkeypatch.setattr(_bo_acqf, "propose", spy_propose)
    return calls


def test_proposals_stay_inside_a_mixed_space(spy: list[dict[str, Any]]) -> None:
    study = ask_tell(MOBOSampler(hedge=False, seed=0, space=MIXED, n_startup_trials=5), 10)
    assert len(spy) == 5  # every trial after the startup came from the model
    assert all(MIXED.contains(c) for c in configs(study))


def _asks_in_a_row(sampler_for: Any, n_done: int, n_asks: int) -> list[dict[str, Any]]:
    """``n_done`` told trials, then ``n_asks`` asked in a row, none told (several workers
    freeing up at once); ``sampler_for(i)`` gives the sampler of the ``i``-th of those asks."""
    study = ask_tell(MOBOSampler(seed=7, space=MIXED, n_startup_trials=6), n_done)
    asked = []
    for i in range(n_asks):
        study.sampler = sampler_for(i)
        asked.append(MIXED.decode(study.ask(MIXED.distributions()).params))
    return asked


def test_asks_in_a_row_fit_once_and_propose_what_fitting_again_would(
    spy: list[dict[str, Any]],
) -> None:
    def sampler() -> MOBOSampler:
        return MOBOSampler(seed=0, hedge=False, space=MIXED, n_startup_trials=6)

    one = sampler()
    in_a_row = _asks_in_a_row(lambda i: one, 14, 3)
    fits_in_a_row = [c.get("n_gps") for c in spy[-3:]]
    fresh = _asks_in_a_row(lambda i: sampler(), 14, 3)  # a new sampler fits every time
    assert in_a_row == fresh
    assert [c["pending"] for c in spy[-3:]] == [None, (1, 6), (2, 6)]
    assert one._fits.hits == 2  # only the first of the three asks fitted the GPs
    assert fits_in_a_row == [2, None, None]
    assert len({tuple(sorted(c.items())) for c in in_a_row}) == 3  # pending points spread them


def test_a_completed_trial_between_asks_fits_again() -> None:
    sampler = MOBOSampler(seed=0, hedge=False, space=MIXED, n_startup_trials=6)
    ask_tell(sampler, 10)
    assert sampler._fits.hits == 0  # each proposal saw one observation more


def test_threads_asking_at_once_do_not_share_models() -> None:
    import pickle
    import threading

    sampler = MOBOSampler(seed=0, hedge=False, space=MIXED, n_startup_trials=6)
    study = ask_tell(sampler, 10)
    study.ask(MIXED.distributions())  # this thread's fit is now the last one
    other = threading.Thread(target=lambda: study.ask(MIXED.distributions()))
    other.start()
    other.join()
    assert sampler._fits.hits == 0  # the same observations, another thread: fitted again
    study.ask(MIXED.distributions())
    assert sampler._fits.hits == 0  # the other thread's fit is the last one now
    assert pickle.loads(pickle.dumps(sampler._fits))._last is None  # no models pickled


def test_reproducible_with_a_seed() -> None:
    first = configs(ask_tell(MOBOSampler(seed=3, space=MIXED, n_startup_trials=4), 7))
    again = configs(ask_tell(MOBOSampler(seed=3, space=MIXED, n_startup_trials=4), 7))
    other = configs(ask_tell(MOBOSampler(seed=4, space=MIXED, n_startup_trials=4), 4))
    assert first == again
    assert first[:4] != other


def test_startup_points_cover_every_level_of_every_column() -> None:
    # Eight startup points over three 8-level columns: a Sobol sequence puts one point in each
    # eighth of every axis, so each column tries each level once (independent random draws
    # would repeat a level in a column with probability 0.998).
    space = SearchSpace({f"bits{i}": Ordinal([1, 2, 3, 4, 5, 6, 7, 8]) for i in range(3)})
    for seed in range(3):
        sampler = MOBOSampler(seed=seed, space=space, n_startup_trials=8)
        study = ask_tell(sampler, 8, space=space, values=lambda c: [sum(c.values()), -c["bits0"]])
        for name in space.distributions():
            assert sorted(c[name] for c in configs(study, space)) == list(range(1, 9)), name


def test_startup_points_follow_the_trial_number_not_the_order_of_asks() -> None:
    # Four workers asking at once (every trial still running) get the points one worker gets
    # asking and telling in turn: the startup is one sequence indexed by trial number.
    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "z": Float(0.0, 1.0)})

    def values(c: dict[str, Any]) -> list[float]:
        return [c["x"], c["y"] + c["z"]]

    one = configs(ask_tell(MOBOSampler(seed=5, space=space), 4, space=space, values=values), space)
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=MOBOSampler(seed=5, space=space)
    )
    asked = [study.ask(space.distributions()) for _ in range(4)]
    assert [space.decode(t.params) for t in asked] == one
    assert len({c["x"] for c in one}) == 4


def test_wide_integer_ranges_are_relaxed_but_proposals_stay_integer() -> None:
    space = SearchSpace({"n": Int(1, 5000, log=True), "x": Float(0.0, 1.0)})
    sampler = MOBOSampler(seed=0, space=space, n_startup_trials=4)
    study = ask_tell(sampler, 7, space=space, values=lambda c: [c["x"], math.log(c["n"]) - c["x"]])
    assert all(isinstance(c["n"], int) and space.contains(c) for c in configs(study, space))


@pytest.mark.parametrize("n_objectives", [2, 3])
def test_two_and_three_objectives(n_objectives: int, spy: list[dict[str, Any]]) -> None:
    directions = ["minimize", "minimize", "maximize"][:n_objectives]
    study = optuna.create_study(
        directions=directions,
        sampler=MOBOSampler(hedge=False, seed=0, space=MIXED, n_startup_trials=5),
    )

    def values(c: dict[str, Any]) -> list[float]:
        return [error(c), size(c), c["x"]][:n_objectives]

    ask_tell(study.sampler, 8, values=values, study=study)
    assert [c["n_gps"] for c in spy] == [n_objectives] * 3
    reference = study.user_attrs[REFERENCE_ATTR]
    assert len(reference) == n_objectives
    # The reference derived for the last proposal is worse, in every objective, than the
    # Pareto set of the trials it was derived from (all but that last one).
    observed = np.array([t.values for t in study.trials[:-1]])
    front = observed[_pareto.non_dominated(_pareto.to_minimization(observed, directions))]
    worse = _pareto.to_minimization(np.array(reference), directions)
    assert np.all(worse >= _pareto.to_minimization(front, directions).max(axis=0))


def test_user_reference_is_used_and_recorded() -> None:
    objectives = ObjectiveSet.build(
        [Objective("error", reference=5.0), Objective("size", fn=size, reference=40.0)]
    )
    sampler = MOBOSampler(seed=0, space=MIXED, objectives=objectives, n_startup_trials=4)
    study = ask_tell(sampler, 5)
    assert study.user_attrs[REFERENCE_ATTR] == [5.0, 40.0]


def _observed(y: list[list[float]], feasible: list[bool] | None = None) -> Observations:
    n = len(y)
    mask = np.ones(n, dtype=bool) if feasible is None else np.array(feasible)
    empty = np.zeros((0, 1))
    return Observations(np.zeros((n, 1)), np.array(y), None, mask, empty, np.zeros((n, 1)))


def test_derived_reference_is_the_pareto_nadir_unless_the_front_is_narrow() -> None:
    # Maximized values: a dominated point three ranges away does not pull the reference out.
    data = _observed([[0.0, -1.0], [-1.0, 0.0], [-3.0, -3.0]])
    assert np.allclose(reference_point(data, [None, None]), [-1.1, -1.1])
    assert np.allclose(reference_point(data, [None, 5.0]), [-1.1, 5.0])  # the user's wins
    # A front narrower than a quarter of the values' range, or one point: the worst value.
    data = _observed([[0.0, -1.0], [-1.0, 0.0], [-10.0, -10.0]])
    assert np.allclose(reference_point(data, [None, None]), [-11.0, -11.0])
    assert np.allclose(
        reference_point(_observed([[0.0, 0.0], [-2.0, -1.0]]), [None] * 2), [-2.2, -1.1]
    )
    # Per objective: wide in the first, narrow in the second.
    data = _observed([[0.0, -1.05], [-1.0, -1.0], [-1.5, -5.0]])
    assert np.allclose(reference_point(data, [None, None]), [-1.1, -5.4])
    # Infeasible points are left out while a feasible one exists.
    data = _observed([[0.0, -1.0], [-1.0, 0.0], [5.0, 5.0]], feasible=[True, True, False])
    assert np.allclose(reference_point(data, [None, None]), [-1.1, -1.1])


def test_winsorize_clips_each_bad_tail_at_tukeys_fence() -> None:
    # Maximized; first column 0..7 and a point a hundred ranges out: quartiles (numpy's
    # "lower" and "higher", Ax's) 1 and 5, fence 1 - 1.5 * 4 = -5.
    first = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, -700.0]
    data = _observed([[v, -v] for v in first])
    clipped = winsorize(data, [None, None])
    assert clipped.y[:, 0].tolist() == [*first[:-1], -5.0]
    # The second column's tail is the good end of the first: nothing below its fence.
    assert clipped.y[:, 1].tolist() == [-v for v in first[:-1]] + [700.0]
    # A user reference worse than the lower quartile widens the fence: min(q1, ref) = -10,
    # fence -10 - 1.5 * (5 + 10) = -32.5.
    assert winsorize(data, [-10.0, None]).y[-1, 0] == -32.5
    # Columns marked not measured (known costs) and too few observations stay as they are.
    assert np.array_equal(winsorize(data, [None, None], [False, True]).y, data.y)
    few = _observed([[0.0, 0.0], [1.0, 1.0], [-700.0, -700.0]])
    assert winsorize(few, [None, None]) is few
    # Quartiles over the feasible rows while four exist: infeasible points do not move them.
    bad = _observed(
        [[v, -v] for v in first] + [[-9.0, -9.0]] * 3, feasible=[True] * 9 + [False] * 3
    )
    assert winsorize(bad, [None, None]).y[:9, 0].tolist() == [*first[:-1], -5.0]
    # The Pareto set is the same set of points (none of it shares the clipped tail).
    for d in (data, bad):
        before = _pareto.non_dominated(-d.y)
        assert np.array_equal(_pareto.non_dominated(-winsorize(d, [None, None]).y), before)


def test_winsorize_keeps_a_far_outlier_from_setting_the_reference() -> None:
    # Two minimized objectives; startup points near a front, then one a thousand times
    # farther than the front is wide (a diverged run): the derived reference is the worst
    # value where the front is narrow, so without winsorizing it sits beyond the outlier.
    def values(config: dict[str, Any]) -> list[float]:
        if config["depth"] == 6:
            return [1000.0, 1000.0]
        return [error(config), size(config)]

    def reference(flag: bool) -> list[float]:
        sampler = MOBOSampler(hedge=False, seed=0, space=MIXED, n_startup_trials=8, winsorize=flag)
        study = ask_tell(sampler, 9, values=values)
        assert any(t.values == [1000.0, 1000.0] for t in study.trials[:8])
        reference: list[float] = study.user_attrs[REFERENCE_ATTR]
        return reference

    plain, clipped = reference(False), reference(True)
    assert min(plain) > 1000.0
    assert max(clipped) < 100.0


def test_known_cost_is_exact_and_not_modelled(spy: list[dict[str, Any]]) -> None:
    calls: list[dict[str, Any]] = []

    def counted_size(config: dict[str, Any]) -> float:
        calls.append(config)
        return size(config)

    objectives = ObjectiveSet.build([Objective("error"), Objective("size", fn=counted_size)])
    sampler = MOBOSampler(
        hedge=False, seed=0, space=MIXED, objectives=objectives, n_startup_trials=5
    )
    ask_tell(sampler, 8)
    assert [c["n_gps"] for c in spy] == [1, 1, 1]  # only "error" is modelled
    assert len(calls) > 50  # the acquisition scored candidates with the exact known cost
    assert all(MIXED.contains(c) for c in calls)  # on complete Configs


def test_exact_known_cost_drives_proposals() -> None:
    # "size" is a known cost; the measured objective is flat, so only the exact size can
    # steer the search: after startup it should stay at the cheap corner (bits 2, depth 1).
    objectives = ObjectiveSet.build([Objective("error"), Objective("size", fn=size)])
    sampler = MOBOSampler(seed=1, space=MIXED, objectives=objectives, n_startup_trials=5)
    study = ask_tell(sampler, 9, values=lambda c: [1.0, size(c)])
    proposed = configs(study)[5:]
    assert min(size(c) for c in proposed) == 2.0


def test_known_constraint_is_never_violated() -> None:
    objectives = [Objective("error"), Objective("size", fn=size)]
    constraints = [Constraint("size", "<=", 8.0)]
    sampler = MOBOSampler(
        seed=0,
        space=MIXED,
        objectives=ObjectiveSet.build(objectives, constraints),
        n_startup_trials=4,
    )
    result = tradeoff.optimize(
        lambda c: {"error": error(c)},
        MIXED,
        objectives=objectives,
        constraints=constraints,
        optimizer=sampler,
        n_trials=10,
        show_progress=False,
    )
    trials = result.study.trials
    assert len(trials) == 10  # no Config was rejected as infeasible, startup included
    assert all(size(MIXED.decode(t.params)) <= 8.0 for t in trials)


def test_measured_constraints_get_their_own_gps(spy: list[dict[str, Any]]) -> None:
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=MOBOSampler(hedge=False, seed=0, space=MIXED, n_startup_trials=5),
    )
    for _ in range(7):
        trial = study.ask(MIXED.distributions())
        config = MIXED.decode(trial.params)
        trial.set_constraint("x_max", config["x"] - 0.5)
        study.tell(trial, [error(config), size(config)])
    assert [c["n_gps"] for c in spy] == [3, 3]


def test_failed_trials_are_ignored() -> None:
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=MOBOSampler(seed=0, space=MIXED, n_startup_trials=4),
    )
    for i in range(10):
        trial = study.ask(MIXED.distributions())
        config = MIXED.decode(trial.params)
        if i % 3 == 1:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, [error(config), size(config)])
    assert all(MIXED.contains(c) for c in configs(study))
    assert REFERENCE_ATTR in study.user_attrs  # the model took over despite the failures


def test_resumes_from_sqlite(tmp_path: Any, spy: list[dict[str, Any]]) -> None:
    url = f"sqlite:///{tmp_path / 'mobo.db'}"
    first = optuna.create_study(
        storage=url, study_name="s", directions=["minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )  # fmt: skip
    ask_tell(first.sampler, 6, study=first)
    resumed = optuna.load_study(
        study_name="s", storage=url, sampler=MOBOSampler(seed=0, space=MIXED, n_startup_trials=4)
    )
    ask_tell(resumed.sampler, 2, study=resumed)
    assert len(resumed.trials) == 8
    assert len(spy) == 2 and spy[0]["n_gps"] == 2  # modelled from the stored trials
    assert REFERENCE_ATTR in optuna.load_study(study_name="s", storage=url).user_attrs


def test_pending_trials_lead_to_distinct_proposals(spy: list[dict[str, Any]]) -> None:
    sampler = MOBOSampler(seed=0, space=ZDT_SPACE, n_startup_trials=6)
    study = ask_tell(sampler, 6, space=ZDT_SPACE, values=lambda c: list(zdt1(c).values()))
    first = study.ask(ZDT_SPACE.distributions())
    second = study.ask(ZDT_SPACE.distributions())
    assert spy[0]["pending"] is None and spy[1]["pending"] == (1, 4)
    a, b = (np.array(list(t.params.values())) for t in (first, second))
    assert np.abs(a - b).max() > 1e-3


def test_parego_and_max_observations(spy: list[dict[str, Any]]) -> None:
    sampler = MOBOSampler(
        hedge=False,
        seed=0,
        space=MIXED,
        objectives=KNOWN,
        n_startup_trials=4,
        acquisition="qnparego",
        max_observations=5,
    )
    study = ask_tell(sampler, 7)
    assert all(MIXED.contains(c) for c in configs(study))
    # 4 then 5 completed trials, then capped at max_observations=5.
    assert [(c["acqf"], c["n_obs"]) for c in spy] == [("qnparego", n) for n in (4, 5, 5)]
    assert (
        MOBOSampler(
            hedge=False,
        ).acquisition_for(4)
        == "qlognehvi"
    )
    assert (
        MOBOSampler(
            hedge=False,
        ).acquisition_for(5)
        == "qnparego"
    )


def test_plain_optuna_define_by_run() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        k = trial.suggest_int("k", 1, 4)
        return x * k, (1 - x) ** 2 + 1 / k

    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=MOBOSampler(seed=0, n_startup_trials=4)
    )
    study.optimize(objective, n_trials=7)
    assert len(study.trials) == 7 and REFERENCE_ATTR in study.user_attrs


def test_zdt1_beats_random_search_on_a_small_budget() -> None:
    reference = np.array([1.1, 11.0])

    def hypervolume(sampler: optuna.samplers.BaseSampler) -> float:
        study = ask_tell(sampler, 20, space=ZDT_SPACE, values=lambda c: list(zdt1(c).values()))
        return _pareto.hypervolume(np.array([t.values for t in study.trials]), reference)

    mobo = hypervolume(MOBOSampler(seed=0, space=ZDT_SPACE, n_startup_trials=6))
    random = hypervolume(optuna.samplers.RandomSampler(seed=0))
    assert mobo > random + 0.5


@pytest.mark.parametrize(
    ("kwargs", "error_type", "match"),
    [
        ({"acquisition": "ehvi"}, ValueError, "Unknown acquisition 'ehvi'"),
        ({"n_startup_trials": -1}, ValueError, "n_startup_trials must be"),
        ({"max_observations": 1}, ValueError, "max_observations must be"),
        ({"max_enumerated": None}, ValueError, "max_enumerated must be an integer >= 0, got"),
        ({"space": {"x": Float(0, 1)}}, TypeError, "space must be a SearchSpace"),
        ({"objectives": [Objective("a")]}, TypeError, "ObjectiveSet"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"winsorize": "yes"}, TypeError, "winsorize must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any], error_type: type, match: str) -> None:
    with pytest.raises(error_type, match=match):
        MOBOSampler(**kwargs)


def test_study_must_match() -> None:
    flipped = optuna.create_study(
        directions=["maximize", "minimize"], sampler=MOBOSampler(objectives=KNOWN)
    )
    with pytest.raises(ValueError, match="study's order"):
        flipped.ask(MIXED.distributions())


GRID = SearchSpace({f"l{i}.bits": Ordinal([2, 4, 8]) for i in range(3)} | {"m": Choice(["a", "b"])})


def grid_values(config: dict[str, Any]) -> list[float]:
    bits = [config[f"l{i}.bits"] for i in range(3)]
    error = sum(1.0 / b for b in bits) + (0.2 if config["m"] == "b" else 0.0) + bits[0] * 0.01
    return [error, float(sum(bits))]


KNOWN_GRID = ObjectiveSet.build(
    [Objective("error"), Objective("size", fn=lambda c: grid_values(c)[1])]
)


def test_small_discrete_space_is_scored_exactly_and_never_repeats(
    spy: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[int] = []
    best_of = _bo_optim._best_of

    def spy_best_of(acqf: Any, pool: Any, batch: int) -> Any:
        scored.append(len(pool))
        return best_of(acqf, pool, batch)

    monkeypatch.setattr(_bo_optim, "_best_of", spy_best_of)
    sampler = MOBOSampler(
        hedge=False, seed=0, space=GRID, objectives=KNOWN_GRID, n_startup_trials=4
    )
    study = ask_tell(sampler, 30, space=GRID, values=grid_values)
    keys = [tuple(sorted(c.items())) for c in configs(study, GRID)]
    assert len(set(keys)) == 30  # 54 Configs: none proposed twice
    # Every model-based proposal scored each of the Configs not tried yet, and only those.
    assert scored == [54 - n for n in range(4, 30)]
    assert len(spy) == 26


def test_known_constraint_filters_the_enumerated_configs() -> None:
    objectives = ObjectiveSet.build(KNOWN_GRID.objectives, [Constraint("size", "<=", 12.0)])
    sampler = MOBOSampler(seed=0, space=GRID, objectives=objectives, n_startup_trials=4)
    study = ask_tell(sampler, 14, space=GRID, values=grid_values)
    proposed = configs(study, GRID)
    assert all(grid_values(c)[1] <= 12.0 for c in proposed)
    assert len({tuple(sorted(c.items())) for c in proposed}) == 14


def test_searched_discrete_space_avoids_tried_configs() -> None:
    space = SearchSpace({f"b{i}": Ordinal([0, 1]) for i in range(4)})  # 16 Configs

    def values(c: dict[str, Any]) -> list[float]:
        ones = sum(c.values())
        return [abs(ones - 2) + 0.1 * c["b0"], float(ones)]

    sampler = MOBOSampler(seed=0, space=space, n_startup_trials=4, max_enumerated=0)
    study = ask_tell(sampler, 14, space=space, values=values)
    assert len({tuple(sorted(c.items())) for c in configs(study, space)}) == 14


def best_value(sampler: optuna.samplers.BaseSampler, n: int) -> float:
    """Best ``error`` of ``n`` sequential trials of a single-objective study over ``MIXED``."""
    study = optuna.create_study(sampler=sampler)
    return ask_tell(sampler, n, values=lambda c: [error(c)], study=study).best_value


def test_single_objective_study_is_bayesian_optimization(spy: list[dict[str, Any]]) -> None:
    mobo = best_value(MOBOSampler(hedge=False, seed=0, space=MIXED, n_startup_trials=6), 14)
    assert [(c["acqf"], c["n_gps"]) for c in spy] == [("qlognei", 1)] * 8
    random = [best_value(optuna.samplers.RandomSampler(seed=s), 14) for s in range(3)]
    assert mobo < min(random)


def test_single_objective_constraint_gets_a_gp_and_is_respected(
    spy: list[dict[str, Any]],
) -> None:
    # The unconstrained optimum (x = 0.3) breaks the constraint x >= 0.6 set through Optuna's
    # public API; the constrained qLogNEI proposes feasible points.
    study = optuna.create_study(
        sampler=MOBOSampler(hedge=False, seed=0, space=MIXED, n_startup_trials=5)
    )
    for _ in range(10):
        trial = study.ask(MIXED.distributions())
        config = MIXED.decode(trial.params)
        trial.set_constraint("x_min", 0.6 - config["x"])
        study.tell(trial, error(config))
    assert [(c["acqf"], c["n_gps"]) for c in spy] == [("qlognei", 2)] * 5
    assert sum(t.params["x"] >= 0.6 for t in study.trials[5:]) >= 4


def test_infinite_constraint_values_are_modelled() -> None:
    # Optuna accepts an infinite constraint value (NaN only is refused); the GP needs finite
    # ones on the same side of zero.
    scaled = scale_constraints(np.array([[1.0, np.inf], [-1.0, -2.0], [0.0, -np.inf]]))
    assert np.isfinite(scaled).all()
    assert np.array_equal(np.sign(scaled), [[1, 1], [-1, -1], [0, -1]])
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=MOBOSampler(seed=0, space=MIXED, n_startup_trials=4),
    )
    for _ in range(6):
        trial = study.ask(MIXED.distributions())
        config = MIXED.decode(trial.params)
        trial.set_constraint("x_max", math.inf if config["x"] > 0.5 else config["x"] - 0.5)
        study.tell(trial, [error(config), size(config)])
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def allowed_values(dist: BaseDistribution) -> list[Any]:
    """Every value of a discrete distribution, in order (computed without the encoding)."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    assert dist.step is not None
    n = round((dist.high - dist.low) / dist.step) + 1
    return [dist.low + i * dist.step for i in range(n)]


@pytest.mark.parametrize(
    "dist",
    [
        IntDistribution(0, 10, step=2),
        IntDistribution(-10, 0, step=2),
        IntDistribution(3, 9, step=2),
        IntDistribution(-3, 3),
        IntDistribution(1, 100, log=True),
        FloatDistribution(0.0, 1.0, step=0.25),
        FloatDistribution(-10.2, 10.2, step=0.1),  # 205 levels: relaxed while searched
        FloatDistribution(0.0, 6.9, step=0.3),  # 23 * 0.3 < 6.9: the last level is high itself
        CategoricalDistribution([None, True, 1, 1.0, "a", math.nan]),
    ],
    ids=repr,
)
def test_every_level_of_a_discrete_distribution_is_encoded_exactly(
    dist: BaseDistribution,
) -> None:
    enc = Encoding({"p": dist})
    grid = enc.grid(1000)
    assert grid is not None and grid[0, 0] == 0.0 and grid[-1, 0] == 1.0  # BoTorch needs both
    decoded = [enc.decode(u)["p"] for u in grid]
    expected = allowed_values(dist)
    assert len(decoded) == len(expected)
    for got, want in zip(decoded, expected):
        assert type(got) is type(want)
        assert got == pytest.approx(want, abs=1e-9, nan_ok=True)
    assert all(enc.covers({"p": v}) for v in decoded)
    assert np.array_equal(np.array([enc.encode({"p": v}) for v in decoded]), grid)


def test_log_warp_only_on_heavy_tailed_objectives_and_inverts() -> None:
    import torch

    from tradeoff.search._bo_warp import LogWarp

    # Maximized values: column 0 spans orders of magnitude, column 1 does not.
    y = -torch.tensor(
        [[37.0, 1.0], [500.0, 2.0], [3800.0, 3.0], [40.0, 4.0], [2e7, 5.0]], dtype=torch.double
    )
    warp = LogWarp.fit(y)
    assert warp.columns == (0,)
    w = warp.forward(y)
    assert torch.equal(w[:, 1], y[:, 1])
    assert torch.equal(torch.argsort(w[:, 0]), torch.argsort(y[:, 0]))  # order kept
    assert torch.allclose(warp.inverse(w), y)
    assert LogWarp.fit(torch.rand(30, 2, dtype=torch.double)).columns == ()


@pytest.mark.parametrize("n_objectives", [1, 2])
def test_heavy_tailed_objective_is_modelled_in_log_space(
    n_objectives: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeoff.search import _bo_warp

    fits: list[tuple[int, ...]] = []
    fit = _bo_warp.LogWarp.fit

    def spy(y: Any) -> Any:
        warp = fit(y)
        fits.append(warp.columns)
        return warp

    monkeypatch.setattr(_bo_warp.LogWarp, "fit", staticmethod(spy))

    def values(config: dict[str, Any]) -> list[float]:
        x = config["x"]
        return [10 ** (8 * abs(x - 0.3)), (x - 0.7) ** 2][:n_objectives]

    space = SearchSpace({"x": Float(0.0, 1.0)})
    directions = ["minimize"] * n_objectives
    study = optuna.create_study(
        directions=directions, sampler=MOBOSampler(seed=0, space=space, n_startup_trials=6)
    )
    ask_tell(study.sampler, 10, space=space, values=values, study=study)
    assert fits and fits[-1] == (0,)
    best = min(t.values[0] for t in study.trials)
    assert best < 10 ** (8 * 0.1)  # within 0.1 of the minimum at 0.3


def test_spread_keeps_each_objectives_best_and_covers_a_dense_front() -> None:
    import torch

    f1 = torch.rand(200, generator=torch.Generator().manual_seed(0), dtype=torch.double)
    front = torch.stack([f1, 1.0 - f1.sqrt()], dim=-1)  # a dense ZDT1-like front, maximized
    taken = _bo_acqf.spread(front, 24)
    assert len(set(taken.tolist())) == 24
    assert {int(front[:, 0].argmax()), int(front[:, 1].argmax())} <= set(taken.tolist())
    # every point lies close to one kept: gaps of about 1/k of the front, not bunches
    z = front / (front.max(dim=0).values - front.min(dim=0).values)
    gap = torch.cdist(z, z[taken]).min(dim=-1).values.max()
    assert gap < 2.0 / 24
    assert torch.equal(taken[:8], _bo_acqf.spread(front, 8))  # the first j: a spread of j
    assert sorted(_bo_acqf.spread(front[:10], 24).tolist()) == list(range(10))
    assert len(_bo_acqf.spread(front[:0], 24)) == 0


def test_no_observation_inside_the_reference_point() -> None:
    """qLogNEHVI's pruned baseline is empty: the proposal still works."""
    import torch

    x, y = _dense_front_data(12)
    problem = _bo_acqf.Problem(
        is_known=(False, False), ref_point=torch.tensor([1.0, 1.0], dtype=torch.double),
        discrete_dims={}, cat_dims={}, snap=lambda t: t,
    )  # fmt: skip
    candidate = _bo_acqf.propose(x, y, None, None, problem)
    assert candidate.shape == (1, 4) and ((candidate >= 0) & (candidate <= 1)).all()


def test_samples_shrink_with_a_large_baseline_down_to_the_floor() -> None:
    e = _bo_acqf.Effort(mc_samples=64, mc_budget=64 * 24, min_mc_samples=32)
    assert e.samples_for(10) == e.samples_for(24) == 64
    assert e.samples_for(32) == 48
    assert e.samples_for(48) == e.samples_for(500) == 32
    assert _bo_acqf.Effort(mc_budget=None).samples_for(500) == 64
    three = e.for_objectives(3)
    assert three.mc_samples == 16 and three.max_baseline == 48 and three.min_mc_samples == 8
    assert three.spray_from is None and three.prune_samples == e.prune_samples // 2
    assert not three.spread_baseline and e.spread_baseline


def _dense_front_data(n: int, d: int = 4) -> tuple[Any, Any]:
    """``n`` points of a ZDT1 in ``d`` variables, most next to its front (maximized)."""
    import torch

    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, d, generator=g, dtype=torch.double)
    x[: 3 * n // 4, 1:] *= 0.002
    values = [zdt1({f"x{i}": float(v) for i, v in enumerate(row)}) for row in x]
    return x, -torch.tensor([[v["f1"], v["f2"]] for v in values], dtype=torch.double)


def test_baseline_is_capped_to_a_spread_of_the_pareto_points() -> None:
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    x, y = _dense_front_data(120)
    assert is_non_dominated(y).sum() > 40  # more Pareto points than the cap
    effort = _bo_acqf.Effort(max_baseline=16, spray_from=4)
    problem = _bo_acqf.Problem(
        is_known=(False, False), ref_point=torch.tensor([-1.1, -10.0], dtype=torch.double),
        discrete_dims={}, cat_dims={}, snap=lambda t: t, effort=effort,
    )  # fmt: skip
    gps = _bo_acqf.fit_gps(x, y, None, problem)
    acqf = _bo_acqf.build_acquisition(gps, x, 2, None, problem)
    baseline = acqf.acqf.X_baseline
    assert len(baseline) == 16
    rows = [int((x == b).all(dim=-1).nonzero()) for b in baseline]
    pareto = set(is_non_dominated(y).nonzero().reshape(-1).tolist())
    assert set(rows) <= pareto  # only Pareto points of this noise-free front
    assert {int(y[:, 0].argmax()), int(y[:, 1].argmax())} <= set(rows)  # both ends
    # sprays start around spray_from of them, both ends first; the acquisition sees all 16
    assert len(acqf.X_baseline) == 4
    assert all((baseline == s).all(dim=-1).any() for s in acqf.X_baseline)
    sprayed = [int((x == s).all(dim=-1).nonzero()) for s in acqf.X_baseline]
    assert {int(y[:, 0].argmax()), int(y[:, 1].argmax())} <= set(sprayed)
    uncapped = replace_effort(problem, max_baseline=None)
    full = _bo_acqf.build_acquisition(gps, x, 2, None, uncapped).acqf.X_baseline
    assert len(full) >= len(pareto) - 2  # without the cap: the likely Pareto points, all


def replace_effort(problem: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(problem, effort=replace(problem.effort, **changes))


# The hedge: every third proposal from TPE ---------------------------------------------------
def test_every_third_proposal_after_the_startup_is_tpe_s(spy: list[dict[str, Any]]) -> None:
    study = ask_tell(MOBOSampler(seed=0, space=MIXED, n_startup_trials=5), 14)
    arms = [t.system_attrs.get(_bo_hedge.ARM_ATTR) for t in study.trials]
    assert arms[:5] == [None] * 5  # the startup is random
    assert arms[5:] == ["tpe" if n % 3 == 2 else "model" for n in range(5, 14)]
    assert len(spy) == arms.count("model")  # the model was not asked for TPE's trials
    assert all(MIXED.contains(c) for c in configs(study))


def test_without_hedge_every_proposal_is_the_model_s(spy: list[dict[str, Any]]) -> None:
    study = ask_tell(MOBOSampler(seed=0, space=MIXED, n_startup_trials=5, hedge=False), 12)
    assert len(spy) == 7
    assert not any(_bo_hedge.ARM_ATTR in t.system_attrs for t in study.trials)


def test_hedged_study_resumes_as_if_uninterrupted(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'hedge.db'}"
    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})

    def values(c: dict[str, Any]) -> list[float]:
        return [c["x"], 1.0 - c["x"] + (c["y"] - 0.3) ** 2]

    def run(n: int) -> optuna.Study:
        sampler = MOBOSampler(seed=5, space=space, n_startup_trials=4)
        study = optuna.create_study(
            directions=["minimize"] * 2, sampler=sampler, storage=url, study_name="h",
            load_if_exists=True,
        )  # fmt: skip
        return ask_tell(sampler, n, space=space, values=values, study=study)

    sampler = MOBOSampler(seed=5, space=space, n_startup_trials=4)
    whole = configs(ask_tell(sampler, 12, space=space, values=values), space)
    run(7)
    resumed = run(5)
    assert configs(resumed, space) == whole
    assert "tpe" in [t.system_attrs.get(_bo_hedge.ARM_ATTR) for t in resumed.trials[7:]]


def test_tpe_proposals_that_waste_a_trial_go_to_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every proposal drawn for TPE: where it repeats a tried Config of a discrete space, or
    # breaks a known-cost constraint, the model's proposal is taken instead.
    monkeypatch.setattr(_bo_hedge, "arm", lambda trial: "tpe")
    space = SearchSpace({"a": Ordinal([0, 1, 2, 3]), "b": Ordinal([0, 1, 2])})
    study = ask_tell(
        MOBOSampler(seed=0, space=space, n_startup_trials=4, max_enumerated=0), 12,
        space=space, values=lambda c: [c["a"] + c["b"], 5 - c["a"] - c["b"]],
    )  # fmt: skip
    assert len({tuple(sorted(c.items())) for c in configs(study, space)}) == 12
    arms = [t.system_attrs.get(_bo_hedge.ARM_ATTR) for t in study.trials[4:]]
    assert "model" in arms and "tpe" in arms

    objectives = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=size)], [Constraint("size", "<=", 8.0)]
    )
    sampler = MOBOSampler(seed=0, space=MIXED, objectives=objectives, n_startup_trials=4)
    study = ask_tell(sampler, 16)
    assert all(size(c) <= 8.0 for c in configs(study))
    arms = [t.system_attrs.get(_bo_hedge.ARM_ATTR) for t in study.trials[4:]]
    assert "model" in arms and "tpe" in arms
