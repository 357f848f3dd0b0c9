"""Pins on upstream behaviour tradeoff relies on beyond the libraries' documented API.

Each test fails when an upgrade of Optuna or optuna-dashboard changes what it pins, so the
break shows here instead of as wrong results in a search.
"""

import optuna
from optuna_dashboard._serializer import CONSTRAINTS_KEY as DASHBOARD_CONSTRAINTS_KEY

from tradeoff._study import LEGACY_CONSTRAINTS_KEY, write_constraints


def test_enqueued_trials_carry_fixed_params_in_their_system_attrs():
    # The driver tells an enqueued trial (a retry, an initial Config) from a proposed one by
    # the "fixed_params" system attribute Optuna's enqueue_trial writes.
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.5})
    enqueued = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    proposed = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    attrs = {t.number: t.system_attrs for t in study.get_trials(deepcopy=False)}
    assert attrs[enqueued.number]["fixed_params"] == {"x": 0.5}
    assert "fixed_params" not in attrs[proposed.number]


def test_constraints_written_once_are_read_by_optuna_and_the_dashboard():
    # write_constraints stores one list under the legacy key: Optuna 5 reads it as
    # trial.constraints (and its samplers as constraints), optuna-dashboard 0.21 shows it.
    assert DASHBOARD_CONSTRAINTS_KEY == LEGACY_CONSTRAINTS_KEY
    study = optuna.create_study(directions=["minimize", "minimize"])
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    write_constraints(study._storage, study, trial.number, [0.5, -1.0])
    study.tell(trial, [0.1, 0.2])
    frozen = study.get_trials()[trial.number]
    assert frozen.constraints == {"0": 0.5, "1": -1.0}
    assert frozen.system_attrs[DASHBOARD_CONSTRAINTS_KEY] == [0.5, -1.0]


def test_heartbeat_storages_answer_which_running_trials_are_stale(tmp_path):
    # tradeoff._study.stale_trials asks the storage the question Optuna's fail_stale_trials
    # asks (its _get_stale_trial_ids), so it can record why a trial was lost before failing it.
    import time
    import warnings

    from tradeoff._study import stale_trials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=1
        )
    study = optuna.create_study(storage=storage)
    lost = study.ask()
    storage.record_heartbeat(lost._trial_id)
    done = study.ask()
    study.tell(done, 1.0)
    time.sleep(2.5)  # past the grace period, at the storage clock's resolution
    live = study.ask()
    storage.record_heartbeat(live._trial_id)
    study_id = storage.get_study_id_from_name(study.study_name)
    assert [t.number for t in stale_trials(storage, study_id)] == [lost.number]
    # Asking changed nothing: the trial is still RUNNING, for the driver to record and fail.
    assert study.get_trials()[lost.number].state == optuna.trial.TrialState.RUNNING
