"""Per-layer allocation plots: which bits, sparsity, widths or ranks each chosen Config gives
each layer, as one heatmap per knob (rows: trials, columns: layers in model order)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradeoff._result import SearchResult
from tradeoff.review._figures import _check_path, _Drawn, _finish, _name, _new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Merge namespaces of model-aware spaces (tradeoff.spaces.STAGES, which lives in a torch module).
_STAGES = ("arch", "prune", "quant", "peft")


def per_layer_knobs(configs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per-layer knobs of Configs: panel (``quant.bits``) -> {layer: Config key}, in order.

    A key ``<stage>.<layer>.<knob>`` (stage one of arch, prune, quant, peft) or
    ``<layer>.<knob>`` is a per-layer knob when at least two layers have that knob. PEFT's
    target switches ``peft.target.<module>`` form one panel, ``peft.target``, with a column
    per target module (which modules each Config adapts).
    """
    panels: dict[str, dict[str, str]] = {}
    for config in configs:
        for key in config:
            parts = key.split(".")
            if len(parts) < 2:
                continue
            staged = len(parts) >= 3 and parts[0] in _STAGES
            if staged and parts[1] == "target":
                layer, panel = ".".join(parts[2:]), f"{parts[0]}.target"
            else:
                layer = ".".join(parts[1 if staged else 0 : -1])
                panel = f"{parts[0]}.{parts[-1]}" if staged else parts[-1]
            panels.setdefault(panel, {}).setdefault(layer, key)
    return {panel: layers for panel, layers in panels.items() if len(layers) >= 2}


def plot_allocation(
    result: SearchResult,
    path: str | Path | None = None,
    *,
    trials: Sequence[int] | None = None,
    knobs: Sequence[str] | None = None,
) -> Figure:
    """Heatmaps of per-layer knobs: one panel per knob, layers in model order, values annotated.

    Rows are the Pareto trials (or ``trials``), sorted by the first objective.

    Args:
        result: The search result.
        path: Where to write the figure (``.png``, ``.svg`` or ``.html``, with the configs).
        trials: Trial numbers to show; default the Pareto set.
        knobs: Panels (``"quant.bits"``) or knob names (``"bits"``); default every numeric one.

    Raises:
        ValueError: no trial to show, an unknown trial number, no per-layer knob, or an
            unknown knob (the message lists the available ones).
    """
    target = _check_path(path)
    return _finish(_draw_allocation(result, trials, knobs), target)


def _draw_allocation(
    result: SearchResult, trials: Sequence[int] | None, knobs: Sequence[str] | None
) -> _Drawn:
    rows = _allocation_rows(result, trials)
    configs = rows["config"].tolist()
    panels = _select_panels(per_layer_knobs(configs), configs, knobs)
    widths = [max(1.8, 0.5 * len(layers) + 0.8) for layers in panels.values()]
    fig = _new_figure(min(sum(widths) + 0.8, 40.0), max(2.4, 0.32 * len(rows) + 1.6))
    axes = fig.subplots(1, len(panels), squeeze=False, width_ratios=widths)[0]
    for ax, (panel, layers) in zip(axes, panels.items()):
        matrix = [[config.get(key) for key in layers.values()] for config in configs]
        _heatmap(ax, matrix, list(layers))
        ax.set_title(panel)
    axes[0].set_yticks(range(len(rows)), [f"#{n}" for n in rows["trial"]])
    axes[0].set_ylabel(f"trial (by {result.objectives.names[0]})")
    keys = [key for layers in panels.values() for key in layers.values()]
    table = rows.drop(columns="config")[["trial", *result.objectives.names, *keys]]
    fig.suptitle(f"Per-layer configs of {_name(result)}")
    return _Drawn(fig, f"Per-layer configs of {_name(result)}", table)


def _allocation_rows(result: SearchResult, trials: Sequence[int] | None) -> pd.DataFrame:
    frame = result.trials
    frame["config"] = pd.Series(result.configs(pareto=False), index=frame.index, dtype=object)
    if trials is None:
        rows = frame[frame["pareto"]]
        if rows.empty:
            raise ValueError(f"{_name(result)} has no Pareto trial; pass trials=[...].")
    else:
        wanted = [int(n) for n in trials]
        unknown = sorted(set(wanted) - set(frame["trial"]))
        if unknown or not wanted:
            raise ValueError(
                f"trials must be trial numbers of {_name(result)}; unknown: {unknown or wanted}."
            )
        rows = frame[frame["trial"].isin(wanted)]
    first = result.objectives.names[0]
    return rows.sort_values([first, "trial"], kind="stable", na_position="last")


def _select_panels(
    found: dict[str, dict[str, str]], configs: list[dict[str, Any]], knobs: Sequence[str] | None
) -> dict[str, dict[str, str]]:
    if not found:
        raise ValueError(
            "The Configs have no per-layer knobs (parameters such as 'quant.<layer>.bits' or "
            "'prune.<layer>.sparsity' on two or more layers); nothing to plot."
        )
    if knobs is None:
        numeric = {p: k for p, k in found.items() if _numeric(configs, k.values())}
        if not numeric:
            raise ValueError(f"No numeric per-layer knob; pass knobs= from {list(found)}.")
        return numeric
    if isinstance(knobs, str):
        knobs = [knobs]
    chosen = {p: k for p, k in found.items() if p in knobs or p.rsplit(".", 1)[-1] in knobs}
    unknown = [k for k in knobs if not any(k in (p, p.rsplit(".", 1)[-1]) for p in found)]
    if unknown or not chosen:
        raise ValueError(f"Unknown knobs {unknown or list(knobs)}; choose from {list(found)}.")
    return chosen


def _numeric(configs: list[dict[str, Any]], keys: Any) -> bool:
    values = [c.get(k) for c in configs for k in keys]
    return all(v is None or isinstance(v, int | float) for v in values)


def _heatmap(ax: Axes, matrix: list[list[Any]], layers: list[str]) -> None:
    """Colour cells by level (rank among the values shown) and write each value in its cell."""
    flat = [v for row in matrix for v in row if v is not None]
    numeric = all(isinstance(v, int | float) for v in flat)
    levels: list[Any] = sorted(set(flat)) if numeric else list(dict.fromkeys(map(str, flat)))
    span = max(len(levels) - 1, 1)
    codes = np.array(
        [[np.nan if v is None else levels.index(v if numeric else str(v)) / span for v in row]
         for row in matrix]
    )  # fmt: skip
    ax.imshow(codes, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    for (i, j), level in np.ndenumerate(codes):
        value = matrix[i][j]
        text = f"{value:g}" if isinstance(value, float) else str(value)
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if level < 0.5 else "k")
    turn = max(map(len, layers)) > 4  # long names (features.0) stand upright
    ax.set_xticks(range(len(layers)), layers, rotation=90 if turn else 0, fontsize=8)
    ax.set_yticks([])
