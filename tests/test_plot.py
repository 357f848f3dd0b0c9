"""Plots of real search results: files written, front and hypervolume data, allocation panels."""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest

import tradeoff
from tradeoff.objectives import Constraint, Objective
from tradeoff.review import _plot
from tradeoff.spaces import Float, SearchSpace

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _search(evaluate, space, objectives, *, name, n_trials=15, **kwargs):
    return tradeoff.optimize(
        evaluate, space, objectives=objectives, optimizer="random", n_trials=n_trials,
        seed=0, study_name=name, show_progress=False, **kwargs,
    )  # fmt: skip


def _zdt(config):
    """ZDT1 on three variables; x2 > 0.9 fails the trial (to show failures are left out)."""
    if config["x2"] > 0.9:
        raise RuntimeError("diverged")
    g = 1.0 + 4.5 * (config["x1"] + config["x2"])
    return {"f1": config["x0"], "f2": g * (1.0 - math.sqrt(config["x0"] / g))}


def _dtlz2(config):
    a, b = config["x0"] * math.pi / 2, config["x1"] * math.pi / 2
    g = 1.0 + (config["x2"] - 0.5) ** 2
    return {"f1": g * math.cos(a) * math.cos(b), "f2": g * math.cos(a) * math.sin(b),
            "quality": -g * math.sin(a)}  # fmt: skip


FLOATS = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(3)})


@pytest.fixture(scope="module")
def two():
    """2 objectives, a measured constraint (some trials infeasible) and some failed trials."""
    objectives = [Objective("f1"), Objective("f2")]
    result = _search(_zdt, FLOATS, objectives, name="zdt", constraints=[Constraint("f2", "<=", 5)])
    statuses = set(result.trials["status"])
    assert "failed" in statuses and not result.trials["feasible"].all()
    return result


@pytest.fixture(scope="module")
def three():
    objectives = [Objective("f1"), Objective("f2"), Objective("quality", direction="maximize")]
    return _search(_dtlz2, FLOATS, objectives, name="dtlz2", n_trials=12)


@pytest.fixture(scope="module")
def quant():
    """Per-layer bits of a real QuantizationSpace merged with per-layer sparsity; a known-cost
    size budget rejects some Configs without running them."""
    torch = pytest.importorskip("torch")
    from tradeoff.spaces import PruningSpace, QuantizationSpace

    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    space = SearchSpace.merge(
        quant=QuantizationSpace.for_model(model, bits=(2, 4, 8)),
        prune=PruningSpace.for_model(model, sparsity=(0.0, 0.5)),
    )

    def layers(config):
        bits = [v for k, v in config.items() if k.endswith(".bits")]
        dense = [1 - v for k, v in config.items() if k.endswith(".sparsity")]
        return list(zip(bits, dense))

    def size(config):
        return sum(b * d for b, d in layers(config))

    def evaluate(config):
        return {"error": sum(2.0**-b + 0.1 * (1 - d) for b, d in layers(config))}

    objectives = [Objective("error"), Objective("size", fn=size)]
    result = _search(
        evaluate, space, objectives, name="quant", constraints=[Constraint("size", "<=", 12)]
    )
    assert (result.trials["status"] == "infeasible").any()
    return result


class _Tables(HTMLParser):
    """Counts body rows of the HTML tables and finds the embedded PNG."""

    def __init__(self):
        super().__init__()
        self.rows, self.in_body, self.images = 0, False, []

    def handle_starttag(self, tag, attrs):
        self.in_body = self.in_body or tag == "tbody"
        self.rows += tag == "tr" and self.in_body
        if tag == "img":
            self.images.append(dict(attrs)["src"])


# Pareto ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_pareto_writes_a_valid_image(two, tmp_path, suffix):
    path = tmp_path / f"front.{suffix}"
    fig = _plot.plot_pareto(two, path)
    data = path.read_bytes()
    if suffix == "png":
        assert data.startswith(PNG_MAGIC)
    else:
        assert ET.fromstring(data).tag.endswith("svg")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "f1 (min)" and ax.get_ylabel() == "f2 (min)"


def test_pareto_html_embeds_the_png_and_the_pareto_table(two, tmp_path):
    path = tmp_path / "front.html"
    _plot.plot_pareto(two, path)
    parser = _Tables()
    parser.feed(path.read_text())
    assert parser.rows == len(two.pareto) > 0
    (src,) = parser.images
    import base64

    assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_pareto_highlights_the_front_and_labels_trial_numbers(two):
    fig = _plot.plot_pareto(two)
    (ax,) = fig.axes
    labels = {t.get_text() for t in ax.texts}
    assert labels == {f"#{n}" for n in two.pareto["trial"]}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["feasible", "infeasible", "Pareto"]
    # The plotted points are the completed trials only (failed ones have no values).
    n_points = sum(len(c.get_offsets()) for c in ax.collections)
    assert n_points == (two.trials["status"] == "complete").sum()
    assert not _plot.plot_pareto(two, annotate=False).axes[0].texts


def test_staircase_joins_the_front_for_any_direction():
    points = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0]])
    line = _plot._staircase(points, np.array([1.0, 1.0]))
    assert line.tolist() == [[1, 3], [2, 3], [2, 2], [3, 2], [3, 1]]
    maxed = _plot._staircase(points * [1, -1], np.array([1.0, -1.0]))
    assert maxed.tolist() == (line * [1, -1]).tolist()


def test_three_objectives_give_one_panel_per_pair(three):
    fig = _plot.plot_pareto(three)
    assert len(fig.axes) == math.comb(3, 2)
    assert {ax.get_xlabel() for ax in fig.axes} == {"f1 (min)", "f2 (min)"}
    assert fig.axes[-1].get_ylabel() == "quality (max)"
    assert len(_plot.plot_pareto(three, objectives=["quality", "f1"]).axes) == 1


# Hypervolume -------------------------------------------------------------------------------
@pytest.mark.parametrize(("fixture", "n_trials"), [("two", 15), ("three", 12), ("quant", 15)])
def test_hypervolume_curve_rises_to_the_results_hypervolume(fixture, n_trials, request):
    result = request.getfixturevalue(fixture)
    curve = _plot.hypervolume_curve(result)
    # One point per trial of the budget: Configs rejected by the known-cost budget are off it.
    assert curve["trial"].tolist() == list(range(1, n_trials + 1))
    assert np.all(np.diff(curve["hypervolume"]) >= 0)
    assert curve["hypervolume"].iloc[-1] == pytest.approx(result.hypervolume(), rel=1e-12)
    assert curve["hypervolume"].iloc[-1] > 0
    by_time = _plot.hypervolume_curve(result, x="time")
    assert by_time["time"].iloc[0] >= 0 and np.all(np.diff(by_time["time"]) >= 0)
    assert by_time["hypervolume"].tolist() == curve["hypervolume"].tolist()


def test_hypervolume_plot_compares_results_on_one_reference(two, tmp_path):
    other = _search(
        _zdt, FLOATS, [Objective("f1"), Objective("f2")], name="zdt-b", n_trials=8,
        constraints=[Constraint("f2", "<=", 5)],
    )  # fmt: skip
    path = tmp_path / "hv.html"
    fig = _plot.plot_hypervolume([two, other], path, x="time", labels=["a", "b"])
    (ax,) = fig.axes
    assert [line.get_label().split(":")[0] for line in ax.get_lines()] == ["a", "b"]
    ref = two.reference_point()
    final = _plot.hypervolume_curve(other, reference=ref)["hypervolume"].iloc[-1]
    assert final == pytest.approx(other.hypervolume(ref))
    parser = _Tables()
    parser.feed(path.read_text())
    assert parser.rows == 2 and len(parser.images) == 1


# Allocation --------------------------------------------------------------------------------
def test_per_layer_knobs_follow_the_model_order(quant):
    knobs = _plot.per_layer_knobs(quant.configs())
    assert list(knobs) == ["quant.bits", "prune.sparsity"]
    assert list(knobs["quant.bits"]) == ["0", "2", "4"]
    assert knobs["prune.sparsity"]["2"] == "prune.2.sparsity"
    assert _plot.per_layer_knobs([{"x0": 1.0, "x1": 2.0}]) == {}


def test_peft_targets_form_one_panel_with_a_column_per_module():
    config = {"peft.method": "lora", "peft.layer.0.rank": 4, "peft.layer.1.rank": 8,
              "peft.target.query": True, "peft.target.attention.output.dense": False}  # fmt: skip
    knobs = _plot.per_layer_knobs([config])
    assert knobs == {
        "peft.rank": {"layer.0": "peft.layer.0.rank", "layer.1": "peft.layer.1.rank"},
        "peft.target": {
            "query": "peft.target.query",
            "attention.output.dense": "peft.target.attention.output.dense",
        },
    }


def test_allocation_has_a_panel_per_knob_and_a_row_per_pareto_trial(quant, tmp_path):
    fig = _plot.plot_allocation(quant, tmp_path / "alloc.svg")
    assert [ax.get_title() for ax in fig.axes] == ["quant.bits", "prune.sparsity"]
    n_pareto = len(quant.pareto)
    for ax, n_layers in zip(
        fig.axes, (3, len(_plot.per_layer_knobs(quant.configs())["prune.sparsity"]))
    ):
        assert ax.images[0].get_array().shape == (n_pareto, n_layers)
        assert len(ax.texts) == n_pareto * n_layers
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows == [f"#{n}" for n in quant.pareto["trial"]]  # sorted by the first objective
    bits = quant.pareto["quant.0.bits"].tolist()
    assert [t.get_text() for t in fig.axes[0].texts[::3]] == [str(b) for b in bits]
    assert ET.parse(tmp_path / "alloc.svg").getroot().tag.endswith("svg")


def test_allocation_of_chosen_trials_and_knobs(quant):
    fig = _plot.plot_allocation(quant, trials=[3, 0, 7], knobs=["bits"])
    (ax,) = fig.axes
    assert ax.get_title() == "quant.bits"
    assert ax.images[0].get_array().shape == (3, 3)


def test_write_plots_writes_every_plot_in_every_format(quant, tmp_path):
    paths = _plot.write_plots(quant, tmp_path / "out", formats=("png", "html"))
    stems = ["pareto", "hypervolume_trial", "hypervolume_time", "allocation"]
    assert paths == [tmp_path / "out" / f"{s}.{f}" for s in stems for f in ("png", "html")]
    for path in paths:
        head = path.read_bytes()[:16]
        assert head.startswith(PNG_MAGIC if path.suffix == ".png" else b"<!DOCTYPE html>")


def test_write_plots_skips_allocation_without_per_layer_knobs(two, tmp_path):
    paths = _plot.write_plots(two, tmp_path, formats="svg")
    assert [p.name for p in paths] == [
        "pareto.svg",
        "hypervolume_trial.svg",
        "hypervolume_time.svg",
    ]


# Bad input ---------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(two, three, quant, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown objectives \['acc'\]"):
        _plot.plot_pareto(two, objectives=["f1", "acc"])
    with pytest.raises(ValueError, match="two or more"):
        _plot.plot_pareto(two, objectives=["f1"])
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.html"):
        _plot.plot_pareto(two, tmp_path / "front.pdf")
    with pytest.raises(ValueError, match="share objectives"):
        _plot.plot_hypervolume([two, three])
    with pytest.raises(ValueError, match="one label per result"):
        _plot.plot_hypervolume([two, two], labels=["a"])
    with pytest.raises(ValueError, match="x must be 'trial' or 'time'"):
        _plot.hypervolume_curve(two, x="seconds")
    with pytest.raises(ValueError, match="no per-layer knobs"):
        _plot.plot_allocation(two)
    with pytest.raises(ValueError, match=r"Unknown knobs \['rank'\].*quant\.bits"):
        _plot.plot_allocation(quant, knobs=["rank"])
    with pytest.raises(ValueError, match=r"unknown: \[999\]"):
        _plot.plot_allocation(quant, trials=[0, 999])
    with pytest.raises(ValueError, match="formats must be"):
        _plot.write_plots(two, tmp_path, formats=("pdf",))
    with pytest.raises(TypeError, match="SearchResult"):
        _plot.plot_hypervolume(["zdt"])


def test_an_empty_result_raises(tmp_path):
    import optuna

    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_metric_names(["f1", "f2"])
    empty = tradeoff.SearchResult(
        study, tradeoff.objectives.ObjectiveSet.build([Objective("f1"), Objective("f2")])
    )
    with pytest.raises(ValueError, match="no feasible completed trial"):
        _plot.plot_pareto(empty)
    with pytest.raises(ValueError, match="no feasible completed trial"):
        _plot.plot_hypervolume(empty)
    with pytest.raises(ValueError, match="no finished trial"):
        _plot.hypervolume_curve(empty, reference=[1.0, 1.0])
    with pytest.raises(ValueError, match="no Pareto trial"):
        _plot.plot_allocation(empty)


def test_missing_matplotlib_names_the_extra(two, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'tradeoff\[plot\]'"):
        _plot.plot_pareto(two)


def test_import_tradeoff_does_not_import_matplotlib():
    code = "import sys, tradeoff, tradeoff.review._plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
