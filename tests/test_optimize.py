"""End-to-end behaviour of tradeoff.optimize through the in-process pool."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import optuna
import pytest

import tradeoff
from tradeoff.objectives import Constraint, Objective
from tradeoff.spaces import Choice, Float, Ordinal, SearchSpace

from .conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1


class Counting:
    """Wraps an evaluate function and records every Config it receives (thread-safe)."""

    def __init__(self, fn=zdt1):
        self.fn, self.calls, self.lock = fn, [], threading.Lock()

    def __call__(self, config):
        with self.lock:
            self.calls.append(dict(config))
            n = len(self.calls)
        return self.fn(config) if self.fn.__code__.co_argcount == 1 else self.fn(config, n)


def run(evaluate, **kwargs):
    kwargs.setdefault("objectives", ZDT_OBJECTIVES)
    kwargs.setdefault("optimizer", "random")
    kwargs.setdefault("n_trials", 12)
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("show_progress", False)
    space = kwargs.pop("space", ZDT_SPACE)
    return tradeoff.optimize(evaluate, space, **kwargs)


def test_end_to_end_local_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = run(zdt1, n_trials=25, n_workers=2, storage=url, study_name="zdt")
    trials = result.trials
    assert len(trials) == 25 and (trials["status"] == "complete").all()
    front = result.pareto
    assert len(front) >= 1 and front["pareto"].all()
    # No Pareto row is dominated by any completed trial.
    y = trials[["f1", "f2"]].to_numpy()
    for f1, f2 in front[["f1", "f2"]].to_numpy():
        assert not np.any((y[:, 0] <= f1) & (y[:, 1] <= f2) & ((y[:, 0] < f1) | (y[:, 1] < f2)))
    assert result.hypervolume() > 0
    # The study is a plain Optuna study, readable without tradeoff.
    study = optuna.load_study(study_name="zdt", storage=url)
    assert study.metric_names == ["f1", "f2"]
    assert {t.number for t in study.best_trials} == set(front["trial"])


def test_config_values_are_decoded_and_recorded():
    space = SearchSpace({"bits": Ordinal([2, 4, 8]), "x": Float(0.0, 1.0)})
    result = run(lambda c: {"f1": c["bits"] * c["x"], "f2": 1.0 / c["bits"]}, space=space)
    assert set(result.trials["bits"]) <= {2, 4, 8}
    trial = result.study.trials[0]
    assert trial.user_attrs["tradeoff.config"]["bits"] in (2, 4, 8)
    assert trial.params["bits"] == trial.user_attrs["tradeoff.config"]["bits"]  # the level
    assert all(space.contains(c) for c in result.configs())


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (lambda c: 1 / 0, "ZeroDivisionError: division by zero"),
        (lambda c: {"f1": math.nan, "f2": 1.0}, "f1=nan"),
        (lambda c: {"f1": math.inf, "f2": 1.0}, "f1=inf"),
        (lambda c: None, "returned NoneType"),
        (lambda c: {"f1": 1.0}, r"missing \['f2'\]"),
        (lambda c: {"f1": 1.0, "f2": 1.0, "f3": 0.0}, r"unexpected \['f3'\]"),
        (lambda c: {"f1": "fast", "f2": 1.0}, "f1='fast'"),
    ],
)
def test_bad_evaluations_fail_their_trial_and_the_search_goes_on(bad, reason):
    def evaluate(config, n):
        return bad(config) if n % 3 == 0 else zdt1(config)

    result = run(Counting(evaluate), n_trials=9)
    trials = result.trials
    assert len(trials) == 9
    failed = trials[trials["status"] == "failed"]
    assert len(failed) == 3 and result.n_failed == 3
    assert failed["failure"].str.contains(reason).all()
    assert "3x " in result.summary() and "3 failed" in result.summary()
    assert len(result.pareto) >= 1


def test_failed_trial_keeps_full_traceback():
    def evaluate(config):
        raise RuntimeError("CUDA out of memory")

    result = run(evaluate, n_trials=2)
    trial = result.study.trials[0]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert "Traceback" in trial.user_attrs["tradeoff.error"]
    assert "RuntimeError: CUDA out of memory" in trial.user_attrs["tradeoff.reason"]


def test_known_cost_constraint_rejects_configs_without_running_them():
    space = SearchSpace({"bits": Ordinal([2, 4, 8, 16]), "x": Float(0.0, 1.0)})
    counting = Counting(lambda c: {"error": (1 - c["x"]) / c["bits"]})
    result = run(
        counting,
        space=space,
        objectives=[Objective("error"), Objective("size", fn=lambda c: c["bits"] * 1.0)],
        constraints=[Constraint("size", "<=", 4.0)],
        n_trials=10,
    )
    assert len(counting.calls) == 10
    assert all(c["bits"] <= 4 for c in counting.calls)
    trials = result.trials
    infeasible = trials[trials["status"] == "infeasible"]
    assert len(infeasible) >= 1  # the seed proposes 8s and 16s
    assert infeasible["failure"].str.contains(r"size=(?:8|16) violates size<=4").all()
    assert (infeasible["size"] > 4).all()  # the known cost is still recorded
    assert (trials.loc[trials["status"] == "complete", "feasible"]).all()


def test_measured_constraint_marks_trials_infeasible_and_keeps_them_off_the_front():
    result = run(zdt1, constraints=[Constraint("f2", "<=", 3.0)], n_trials=20)
    trials = result.trials
    over = trials[trials["f2"] > 3.0]
    assert len(over) >= 1 and not over["feasible"].any() and not over["pareto"].any()
    assert (result.pareto["f2"] <= 3.0).all()
    trial = result.study.trials[int(over["trial"].iloc[0])]
    assert trial.constraints == {"0": pytest.approx(trial.values[1] - 3.0)}


def test_extra_declared_metrics_are_recorded():
    result = run(lambda c: {**zdt1(c), "mem_mb": 12.5}, metrics=["mem_mb"], n_trials=3)
    assert (result.trials["mem_mb"] == 12.5).all()


def test_maximized_objective_front_and_hypervolume():
    space = SearchSpace({"x": Float(0.0, 1.0)})
    result = run(
        lambda c: {"acc": c["x"], "cost": c["x"] ** 2},
        space=space,
        objectives=[Objective("acc", "maximize"), Objective("cost")],
        n_trials=15,
    )
    # acc = x, cost = x^2 never dominate each other: every trial is Pareto-optimal.
    assert len(result.pareto) == 15
    xs = np.sort(result.trials["acc"].to_numpy())
    hv = result.hypervolume(reference=[0.0, 1.0])
    expected = sum((x1 - x0) * (1 - x1**2) for x0, x1 in zip([0.0, *xs[:-1]], xs))
    assert hv == pytest.approx(expected)
    assert result.hypervolume({"acc": 0.0, "cost": 1.0}) == pytest.approx(expected)


def test_seed_makes_the_search_reproducible():
    a = run(zdt1, optimizer="tpe", n_trials=15, seed=5).trials
    b = run(zdt1, optimizer="tpe", n_trials=15, seed=5).trials
    cols = [f"x{i}" for i in range(4)]
    assert a[cols].equals(b[cols])


def test_slow_trial_does_not_block_the_others():
    others_done = threading.Event()
    finished_while_blocked = []

    def evaluate(config, n):
        if n == 1:
            # Wait until the other worker has finished 5 trials; a blocking driver deadlocks.
            finished_while_blocked.append(others_done.wait(timeout=30))
        elif n == 6:
            others_done.set()
        return zdt1(config)

    result = run(Counting(evaluate), n_trials=8, n_workers=2)
    assert finished_while_blocked == [True]
    assert (result.trials["status"] == "complete").all()


def test_trial_timeout_fails_the_slow_trial_and_goes_on():
    release = threading.Event()

    def evaluate(config, n):
        if n == 1:
            release.wait(timeout=30)
        return zdt1(config)

    try:
        result = run(Counting(evaluate), n_trials=4, n_workers=2, trial_timeout=0.5)
    finally:
        release.set()
    trials = result.trials
    assert (trials["status"] == "complete").sum() == 3
    assert trials.loc[trials["status"] == "failed", "failure"].str.contains("timed out").all()


def test_resume_runs_only_the_missing_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = Counting()
    run(first, n_trials=6, storage=url, study_name="s")
    second = Counting()
    result = run(second, n_trials=10, storage=url, study_name="s")
    assert len(first.calls) == 6 and len(second.calls) == 4
    assert len(result.trials) == 10
    done_configs = [c for c in first.calls]
    assert not any(c in done_configs for c in second.calls)
    third = Counting()
    run(third, n_trials=10, storage=url, study_name="s")
    assert third.calls == []


def test_initial_configs_run_first_once_and_count_toward_the_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'i.db'}"
    corners = [{name: value for name in ZDT_SPACE} for value in (0.0, 1.0)]
    first = Counting()
    result = run(first, n_trials=5, storage=url, study_name="s", initial_configs=corners)
    assert first.calls[:2] == corners and len(first.calls) == 5
    assert result.trials["status"].eq("complete").all()
    # Resuming with the same initial Configs does not evaluate them again.
    second = Counting()
    run(second, n_trials=8, storage=url, study_name="s", initial_configs=corners)
    assert len(second.calls) == 3 and not any(c in corners for c in second.calls)


def test_interrupted_search_reenqueues_its_running_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'i.db'}"

    def evaluate(config, n):
        if n == 4:
            raise KeyboardInterrupt
        return zdt1(config)

    first = Counting(evaluate)
    with pytest.raises(KeyboardInterrupt):
        run(first, n_trials=8, storage=url, study_name="s")
    interrupted_config = first.calls[3]
    second = Counting()
    result = run(second, n_trials=8, storage=url, study_name="s")
    assert second.calls[0] == interrupted_config  # the lost Config runs first
    assert len(second.calls) == 5  # 3 completed before the interrupt are not re-run
    statuses = result.trials["status"].value_counts().to_dict()
    assert statuses == {"complete": 8, "interrupted": 1}


def test_stale_trials_of_a_dead_driver_are_failed_and_reenqueued(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    run(zdt1, n_trials=3, storage=url, study_name="s")
    # A driver that died mid-trial: the trial stays RUNNING with an old heartbeat.
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.load_study(study_name="s", storage=storage)
    lost = study.ask(ZDT_SPACE.distributions())
    lost.set_user_attr("tradeoff.config", ZDT_SPACE.decode(lost.params))  # as a driver does
    storage.record_heartbeat(lost._trial_id)
    time.sleep(2.5)
    counting = Counting()
    result = run(counting, n_trials=5, storage=storage, study_name="s")
    assert counting.calls[0] == ZDT_SPACE.decode(lost.params)
    assert len(counting.calls) == 2
    stale = result.trials[result.trials["status"] == "stale"]
    assert stale["trial"].tolist() == [lost.number]


def test_a_trial_its_driver_never_beat_for_is_recovered(tmp_path):
    """Killed between ask() and its first heartbeat: Optuna alone never fails such a trial."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    run(zdt1, n_trials=3, storage=url, study_name="s")
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.load_study(study_name="s", storage=storage)
    orphan = study.ask(ZDT_SPACE.distributions())  # no heartbeat, no Config recorded
    time.sleep(1.5)
    counting = Counting()
    result = run(counting, n_trials=6, storage=storage, study_name="s")
    assert (result.trials["status"] == "complete").sum() == 6
    assert ZDT_SPACE.decode(orphan.params) in counting.calls  # re-run, not dropped
    assert result.trials.set_index("trial").loc[orphan.number, "status"] == "stale"


def test_rerun_right_after_a_crash_waits_for_the_dead_drivers_trials(tmp_path):
    """Its trials still have fresh heartbeats: they go stale later and must still be run."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    run(zdt1, n_trials=3, storage=url, study_name="s")
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name="s", storage=storage)
    lost = study.ask(ZDT_SPACE.distributions())
    lost.set_user_attr("tradeoff.config", ZDT_SPACE.decode(lost.params))
    storage.record_heartbeat(lost._trial_id)  # fresh: the driver "just" died
    counting = Counting()
    result = run(counting, n_trials=6, storage=storage, study_name="s")
    assert (result.trials["status"] == "complete").sum() == 6
    assert ZDT_SPACE.decode(lost.params) in counting.calls


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_trials": 0}, ValueError, "n_trials must be an integer >= 1"),
        ({"n_workers": 0}, ValueError, "n_workers must be an integer >= 1"),
        ({"optimizer": "bayes"}, ValueError, "Unknown optimizer 'bayes'"),
        ({"backend": "dask"}, ValueError, "Unknown backend 'dask'"),
        ({"objectives": [Objective("f1"), Objective("f1")]}, ValueError, "Duplicate"),
        (
            {
                "objectives": [Objective("f1"), Objective("f2")],
                "constraints": [Constraint("size", "<=", 1.0)],
            },
            ValueError,
            "unknown name 'size'",
        ),
        ({"storage": "sqlite:///x.db"}, ValueError, "needs a study_name"),
        ({"storage": "not-a-url", "study_name": "s"}, ValueError, "not a URL"),
        ({"space": {"x": Float(0, 1)}}, TypeError, "must be a tradeoff.spaces.SearchSpace"),
        ({"space": SearchSpace({"f1": Float(0, 1)})}, ValueError, "clash"),
        ({"trial_timeout": -1}, ValueError, "trial_timeout must be a positive"),
        ({"initial_configs": {"x0": 0.5}}, TypeError, "must be a list of Configs"),
        ({"initial_configs": [{"x0": 0.5}]}, ValueError, r"initial_configs\[0\].*missing"),
        (
            {"initial_configs": [{f"x{i}": 2.0 for i in range(4)}]},
            ValueError,
            r"initial_configs\[0\] has values outside the search space: x0=2.0",
        ),
        ({"initial_configs": [{}] * 13}, ValueError, "has 13 Configs but n_trials=12"),
    ],
)
def test_bad_input_fails_before_any_trial(kwargs, error, match):
    counting = Counting()
    with pytest.raises(error, match=match):
        run(counting, **kwargs)
    assert counting.calls == []


def test_unreachable_storage_is_a_clear_error_without_the_password():
    counting = Counting()
    with pytest.raises(ValueError, match="Cannot open storage") as info:
        run(counting, storage="postgresql://alice:s3cret@127.0.0.1:1/db", study_name="s")
    assert "s3cret" not in str(info.value)
    assert counting.calls == []


def test_existing_study_with_other_objectives_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    run(zdt1, n_trials=2, storage=url, study_name="s")
    with pytest.raises(ValueError, match="already exists with objectives"):
        run(
            zdt1,
            n_trials=2,
            storage=url,
            study_name="s",
            objectives=[Objective("f1"), Objective("f2", "maximize")],
        )


def test_non_callable_evaluate():
    with pytest.raises(TypeError, match="evaluate must be callable"):
        tradeoff.optimize("zdt1", ZDT_SPACE, objectives=ZDT_OBJECTIVES)


def test_timeout_stops_proposing_and_lets_running_trials_finish():
    def evaluate(config):
        time.sleep(0.2)
        return zdt1(config)

    result = run(evaluate, n_trials=500, n_workers=2, timeout=0.5)
    trials = result.trials
    assert 2 <= len(trials) < 500
    assert (trials["status"] == "complete").all()  # nothing cut off mid-evaluation


def test_progress_bar_shows_pareto_size_and_hypervolume(capsys):
    objectives = [Objective("f1", reference=1.0), Objective("f2", reference=10.0)]
    result = run(zdt1, objectives=objectives, n_trials=5, show_progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err
    assert f"pareto={len(result.pareto)}" in err
    assert f"hv={result.hypervolume():.4g}" in err  # same reference as the result


def test_known_cost_function_that_raises_fails_the_trial_without_running_it():
    def size(config):
        if config["x0"] > 0.5:
            raise KeyError("fc3")
        return 1.0

    counting = Counting()
    result = run(counting, objectives=[*ZDT_OBJECTIVES, Objective("size", fn=size)], n_trials=8)
    failed = result.trials[result.trials["status"] == "failed"]
    assert len(result.trials) == 8 and len(failed) >= 1
    assert failed["failure"].str.contains("known-cost objective raised: KeyError").all()
    assert all(c["x0"] <= 0.5 for c in counting.calls)


def test_single_objective_search():
    space = SearchSpace({"x": Float(-2.0, 2.0)})
    result = run(
        lambda c: {"loss": (c["x"] - 1) ** 2},
        space=space,
        objectives=[Objective("loss")],
        optimizer="tpe",
        n_trials=30,
    )
    best = result.pareto
    assert len(best) == 1
    assert best["loss"].iloc[0] == result.trials["loss"].min()
    assert best["trial"].iloc[0] == result.study.best_trial.number


def test_configs_line_up_with_the_pareto_rows():
    space = SearchSpace({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    result = run(lambda c: {"f1": c["x"], "f2": 1 - c["x"] + c["y"]}, space=space, n_trials=20)
    front = result.pareto
    assert not front["trial"].is_monotonic_increasing  # sorted by f1, not by trial number
    for (_, row), config in zip(front.iterrows(), result.configs(), strict=True):
        assert config == {"x": row["x"], "y": row["y"]}
    assert len(result.configs(pareto=False)) == 20


@pytest.mark.parametrize(
    "space",
    [
        SearchSpace({"x": Float(-2.0, 2.0), "y": Float(-2.0, 2.0)}),
        SearchSpace({"x": Float(-2.0, 2.0), "k": Ordinal([1, 2, 4]), "m": Choice(["a", "b"])}),
    ],
    ids=["continuous", "mixed"],
)
def test_one_objective_with_the_default_optimizer(space):
    # Issue #12, defect 1: "auto" picked mobo for one objective and crashed.
    def loss(config):
        return {"loss": (config["x"] - 1) ** 2 + config.get("y", 0.0) ** 2}

    result = tradeoff.optimize(
        loss, space, objectives=[Objective("loss")], n_trials=15, seed=0, show_progress=False
    )
    assert (result.trials["status"] == "complete").all() and len(result.trials) == 15
    assert len(result.pareto) == 1
    assert result.pareto["loss"].iloc[0] == result.trials["loss"].min() < 1.0


def test_auto_is_recorded_on_the_study_and_kept_on_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'auto.db'}"
    space = SearchSpace({"x": Float(0.0, 1.0), "bits": Ordinal([2, 4, 8])})

    def search(n_trials):
        return run(
            lambda c: {"loss": c["x"] / c["bits"]},
            space=space,
            objectives=[Objective("loss"), Objective("size", fn=lambda c: float(c["bits"]))],
            optimizer="auto",
            n_trials=n_trials,
            storage=url,
            study_name="a",
        )

    assert search(6).study.user_attrs["tradeoff.optimizer"] == "mobo"
    # A resumed search reads its pick from the study, whatever the rule says now (a newer
    # rule, other extras installed): here the record is changed to show it is what counts.
    optuna.load_study(study_name="a", storage=url).set_user_attr("tradeoff.optimizer", "tpe")
    resumed = search(8)
    assert isinstance(resumed.study.sampler, optuna.samplers.TPESampler)
    assert len(resumed.trials) == 8
