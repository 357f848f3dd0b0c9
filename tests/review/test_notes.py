"""The study note of a multi-fidelity search: each rung's budget, evaluations and how they
ended, as the trials table has them."""

from __future__ import annotations

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.review._notes import rung_table, study_note
from tradeoff.search import Fidelity
from tradeoff.spaces import Float, SearchSpace


def laddered() -> tradeoff.SearchResult:
    def evaluate(c: dict, budget: float) -> dict:
        return {"f": c["x"] + 1.0 / budget}

    return tradeoff.optimize(
        evaluate, SearchSpace({"x": Float(0.0, 1.0)}),
        objectives=[Objective("f"), Objective("g", fn=lambda c: 1 - c["x"])],
        fidelity=Fidelity((1, 3, 9), eta=2, name="steps"),
        n_trials=12, optimizer="random", seed=0, show_progress=False,
    )  # fmt: skip


def test_the_study_note_counts_each_rungs_evaluations_and_how_they_ended():
    result = laddered()
    trials = result.trials
    table = rung_table(trials)
    assert table is not None and list(table.index) == [0, 1, 2]
    assert list(table["budget"]) == ["1", "3", "9"]
    for rung, row in table.iterrows():
        at = trials[trials["rung"] == rung]
        assert row["evaluations"] == len(at)
        assert row["promoted"] + row["stopped"] + row["complete"] + row["failed"] == len(at)
        # Every promotion out of a rung is an evaluation at the next one.
        if rung + 1 in table.index:
            promoted_into = trials[(trials["rung"] == rung + 1) & trials["promoted_from"].notna()]
            assert row["promoted"] == len(promoted_into)
    assert table.loc[0, "evaluations"] == 12  # the budget counts Configs: each starts at rung 0
    assert table.loc[2, "complete"] >= 1 and table.loc[2, "promoted"] == 0
    note = study_note(result)
    assert "### Multi-fidelity rungs" in note
    assert "| rung | budget | evaluations | promoted | stopped | complete | failed |" in note


def test_a_search_without_a_ladder_has_no_rungs_section():
    result = tradeoff.optimize(
        lambda c: {"f": c["x"]}, SearchSpace({"x": Float(0.0, 1.0)}),
        objectives=[Objective("f"), Objective("g", fn=lambda c: 1 - c["x"])],
        n_trials=4, optimizer="random", seed=0, show_progress=False,
    )  # fmt: skip
    assert rung_table(result.trials) is None
    assert "rungs" not in study_note(result)


def test_the_study_note_says_what_auto_picked_and_which_rule_decided():
    from tradeoff.spaces import Choice

    space = SearchSpace({"op": Choice(["conv", "pool", "skip"]), "x": Float(0.0, 1.0)})
    result = tradeoff.optimize(
        lambda c: {"f": c["x"] + (c["op"] == "skip")}, space,
        objectives=[Objective("f"), Objective("g", fn=lambda c: 1 - c["x"])],
        n_trials=4, seed=0, show_progress=False,
    )  # fmt: skip
    attrs = result.study.user_attrs
    assert attrs["tradeoff.optimizer"] == "tpe"
    assert attrs["tradeoff.optimizer_reason"] == "rule 4: the space has an unordered Choice"
    assert (
        "Optimizer: tpe (what `auto` picked: rule 4: the space has an unordered Choice)."
        in study_note(result)
    )
