"""The same search on each storage users run: PostgreSQL (a real server), SQLite, journal file."""

from __future__ import annotations

import optuna
import pytest

import tradeoff

from .conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1


def search(storage, n_trials, *, study="zdt", n_workers=2, calls=None):
    def evaluate(config):
        if calls is not None:
            calls.append(config)
        return zdt1(config)

    return tradeoff.optimize(
        evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="tpe", n_trials=n_trials,
        n_workers=n_workers, storage=storage, study_name=study, seed=0, show_progress=False,
    )  # fmt: skip


@pytest.fixture(params=["postgres", "sqlite", "journal"])
def storage_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return str(tmp_path / "study.log")


def test_search_and_resume_on_each_storage(storage_url, request):
    study = f"zdt-{request.node.callspec.id}"
    first = []
    search(storage_url, 12, study=study, calls=first)
    more = []
    result = search(storage_url, 20, study=study, calls=more)
    assert len(first) == 12 and len(more) == 8
    assert not any(c in first for c in more)  # nothing finished is re-run
    trials = result.trials
    assert len(trials) == 20 and (trials["status"] == "complete").all()
    assert trials["trial"].is_unique
    # A plain Optuna client reads the same study, names and constraints included.
    loaded = optuna.load_study(study_name=study, storage=tradeoff._study.make_storage(storage_url))
    assert loaded.metric_names == ["f1", "f2"]
    assert len(loaded.best_trials) == len(result.pareto)


def test_postgres_result_loads_through_the_cli(postgres_url, capsys):
    from tradeoff.cli import main

    search(postgres_url, 6, study="cli-pg")
    assert main(["pareto", "--storage", postgres_url, "--study", "cli-pg", "--format", "csv"]) == 0
    assert "f1" in capsys.readouterr().out
