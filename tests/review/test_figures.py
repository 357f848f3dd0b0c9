"""The dashboard's plotly figures: the per-layer allocation of the Pareto set in real levels,
from the same data as the matplotlib allocation plot."""

from __future__ import annotations

import pytest

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.review import study_figures
from tradeoff.review._allocation import _allocation_rows

pytest.importorskip("plotly")


def layered(n_trials: int = 16) -> tradeoff.SearchResult:
    from tradeoff.spaces import Float, Ordinal, SearchSpace

    space = SearchSpace(
        {
            "quant.a.bits": Ordinal([2, 4, 8]),
            "quant.b.bits": Ordinal([2, 4, 8]),
            "prune.a.sparsity": Ordinal([0.0, 0.5]),
            "prune.b.sparsity": Ordinal([0.0, 0.5]),
            "lr": Float(0.0, 1.0),
        }
    )

    def error(c: dict) -> dict:
        loss = sum(1 / c[f"quant.{k}.bits"] + c[f"prune.{k}.sparsity"] ** 2 for k in "ab")
        return {"error": loss + 0.01 * c["lr"]}

    def size(c: dict) -> float:
        return sum(c[f"quant.{k}.bits"] * (1 - c[f"prune.{k}.sparsity"]) for k in "ab")

    return tradeoff.optimize(
        error, space, objectives=[Objective("error"), Objective("size", fn=size)],
        n_trials=n_trials, optimizer="random", seed=0, show_progress=False,
    )  # fmt: skip


def test_allocation_figure_shows_each_pareto_trials_levels_by_layer():
    result = layered()
    figure = study_figures(result)["tradeoff-allocation"]
    titles = [a.text for a in figure.layout.annotations]
    assert titles == ["quant.bits", "prune.sparsity"]  # numeric per-layer knobs; lr is not one
    rows = _allocation_rows(result, None)  # the matplotlib plot's rows: Pareto, by error
    bits, sparsity = figure.data
    assert list(bits.y) == [f"#{n}" for n in rows["trial"]]
    assert list(bits.x) == ["a", "b"]
    for config, z, text in zip(rows["config"], sparsity.z, sparsity.text):
        assert list(z) == [config["prune.a.sparsity"], config["prune.b.sparsity"]]
        assert list(text) == [f"{config['prune.a.sparsity']:g}", f"{config['prune.b.sparsity']:g}"]
    assert any("0.5" in row for row in sparsity.text)  # a level, not an index


def test_no_allocation_figure_without_per_layer_knobs():
    from tradeoff.spaces import Float, SearchSpace

    result = tradeoff.optimize(
        lambda c: {"f": c["x"]}, SearchSpace({"x": Float(0.0, 1.0)}),
        objectives=[Objective("f"), Objective("g", fn=lambda c: 1 - c["x"])],
        n_trials=4, optimizer="random", seed=0, show_progress=False,
    )  # fmt: skip
    assert "tradeoff-allocation" not in study_figures(result)


def test_the_study_note_and_figures_are_kept_current_during_the_search(monkeypatch):
    import time

    pytest.importorskip("optuna_dashboard")
    from tradeoff.review import _live

    made: list[_live.LiveNotes] = []
    real = _live.LiveNotes

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, every=0.2)
            made.append(self)

    monkeypatch.setattr(_live, "LiveNotes", Recorded)
    from tradeoff.spaces import Float, SearchSpace

    def slow(c: dict) -> dict:
        time.sleep(0.05)
        return {"f": c["x"]}

    tradeoff.optimize(
        slow, SearchSpace({"x": Float(0.0, 1.0)}),
        objectives=[Objective("f"), Objective("g", fn=lambda c: 1 - c["x"])],
        n_trials=40, optimizer="random", seed=0, show_progress=False, notes=True,
    )  # fmt: skip
    (notes,) = made
    assert len(notes.history) >= 2  # written more than once while trials finished
    assert notes.history[0] < 40  # the first write came before the search ended
    assert notes.history == sorted(set(notes.history))  # only when trials had finished
