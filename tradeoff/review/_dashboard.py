"""Plotly figures of a search, attached to its study for optuna-dashboard's study page.

Drawn from the same data as the matplotlib plots (:meth:`SearchResult.hypervolume_curve`,
:attr:`SearchResult.pareto`): the hypervolume over finished trials and over wall time, and the
Pareto front of the first two objectives with the baselines (``compress``'s uniform levels and
knapsack) as markers of their own. Each figure has a fixed id, so writing them again (a
resumed search) replaces them. Needs ``plotly`` (the ``dashboard`` extra).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeoff._result import SearchResult

if TYPE_CHECKING:
    from plotly import graph_objects as go

FIGURE_IDS = (
    "tradeoff-hypervolume-trials",
    "tradeoff-hypervolume-time",
    "tradeoff-front",
    "tradeoff-allocation",
)


def study_figures(
    result: SearchResult, baselines: pd.DataFrame | None = None
) -> dict[str, go.Figure]:
    """The figures by id (:data:`FIGURE_IDS`); those without data (no finished trial, one
    objective for the front) are left out."""
    from plotly import graph_objects as go

    figures: dict[str, go.Figure] = {}
    if result.reference_point() is not None and len(result.pareto):
        for x, figure_id, title in (
            ("trial", FIGURE_IDS[0], "finished trials"),
            ("time", FIGURE_IDS[1], "wall time (s)"),
        ):
            curve = result.hypervolume_curve(x=x)  # type: ignore[arg-type]
            figure = go.Figure(
                go.Scatter(
                    x=_plain(curve[x]),
                    y=_plain(curve["hypervolume"]),
                    mode="lines+markers",
                    line={"shape": "hv"},
                    text=[f"trial {n}" for n in curve["number"]],
                    name="hypervolume",
                )
            )
            figure.update_layout(
                title=f"Hypervolume over {title}", xaxis_title=title, yaxis_title="hypervolume"
            )
            figures[figure_id] = figure
    names = result.objectives.names
    if len(names) >= 2 and len(result.pareto):
        figures[FIGURE_IDS[2]] = _front(result, baselines, names[0], names[1])
    allocation = _allocation(result)
    if allocation is not None:
        figures[FIGURE_IDS[3]] = allocation
    return figures


def write_figures(result: SearchResult, baselines: pd.DataFrame | None = None) -> int:
    """Attach :func:`study_figures` to the study (replacing earlier versions); how many."""
    from optuna_dashboard import save_plotly_graph_object

    figures = study_figures(result, baselines)
    for figure_id, figure in figures.items():
        save_plotly_graph_object(result.study, figure, graph_object_id=figure_id)
    return len(figures)


def _front(
    result: SearchResult, baselines: pd.DataFrame | None, first: str, second: str
) -> go.Figure:
    from plotly import graph_objects as go

    done = result.trials[(result.trials["status"] == "complete") & result.trials["feasible"]]
    front = result.pareto.sort_values(second)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=_plain(done[second]),
            y=_plain(done[first]),
            mode="markers",
            name="trials",
            marker={"color": "lightgray"},
            text=[f"trial {n}" for n in done["trial"]],
        )
    )
    figure.add_trace(
        go.Scatter(
            x=_plain(front[second]),
            y=_plain(front[first]),
            mode="lines+markers",
            name="Pareto set",
            line={"shape": "hv"},
            text=[f"trial {n}" for n in front["trial"]],
        )
    )
    if baselines is not None:
        for kind, symbol in (("dense", "star"), ("uniform", "square"), ("proxy", "diamond")):
            rows = baselines[baselines["kind"] == kind]
            rows = rows[[_finite(a) and _finite(b) for a, b in zip(rows[first], rows[second])]]
            if len(rows):
                figure.add_trace(
                    go.Scatter(
                        x=_plain(rows[second]),
                        y=_plain(rows[first]),
                        mode="markers",
                        name=f"{kind} baseline",
                        marker={"symbol": symbol, "size": 11},
                        text=list(rows["baseline"]),
                    )
                )
    figure.update_layout(
        title=f"Pareto set: {first} against {second}", xaxis_title=second, yaxis_title=first
    )
    return figure


def _allocation(result: SearchResult) -> go.Figure | None:
    """The per-layer allocation of the Pareto set: a heatmap per numeric knob (rows: Pareto
    trials by the first objective, columns: layers in model order, each cell its level), from
    the data of :func:`~tradeoff.review.plot_allocation`; ``None`` without per-layer knobs."""
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    from tradeoff.review._allocation import _allocation_rows, _select_panels, per_layer_knobs

    if not len(result.pareto):
        return None
    rows = _allocation_rows(result, None)
    configs = rows["config"].tolist()
    try:
        panels = _select_panels(per_layer_knobs(configs), configs, None)
    except ValueError:  # no numeric per-layer knob: nothing to draw
        return None
    labels = [f"#{n}" for n in rows["trial"]]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels))
    for col, layers in enumerate(panels.values(), 1):
        values = [[config.get(key) for key in layers.values()] for config in configs]
        text = [["" if v is None else f"{v:g}" for v in row] for row in values]
        figure.add_trace(
            go.Heatmap(
                z=[[None if v is None else float(v) for v in row] for row in values],
                x=list(layers), y=labels, text=text, texttemplate="%{text}",
                colorscale="Viridis", showscale=False,
                hovertemplate="%{y} %{x}: %{text}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(
        title=f"Per-layer levels of the Pareto set (rows by {result.objectives.names[0]})"
    )
    return figure


def _plain(column: pd.Series) -> list[Any]:
    """Python numbers: plotly would write a NumPy array as a base64 typed array, which the
    plotly.js inside optuna-dashboard 0.21 may not read."""
    return [float(v) for v in column.tolist()]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
