"""Plots of search results: the Pareto front, hypervolume over trials or time, per-layer configs
(``tradeoff.review._allocation``), and ``write_plots``, which writes them all.

matplotlib (the ``plot`` extra) is imported inside the functions, so ``import tradeoff`` stays
free of it. Figures are drawn on the Agg canvas (no display needed) and returned; given a
``path``, they are also written as PNG (``.png``), SVG (``.svg``) or a self-contained HTML page
(``.html``: the PNG embedded as base64 above the figure's table).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from tradeoff import _pareto
from tradeoff._result import SearchResult
from tradeoff.review._allocation import _draw_allocation, per_layer_knobs, plot_allocation
from tradeoff.review._figures import (
    FORMATS,
    _check_formats,
    _check_path,
    _Drawn,
    _finish,
    _name,
    _new_figure,
    _save,
)
from tradeoff.workers._budget import NOT_COUNTED

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger("tradeoff")

XAxis = Literal["trial", "time"]
Reference = Sequence[float] | Mapping[str, float]

# Not on the curve: unfinished, or finished without using budget (as counted for n_trials).
_OFF_BUDGET = ("running", "waiting", *NOT_COUNTED)


# Pareto front -------------------------------------------------------------------------------
def plot_pareto(
    result: SearchResult,
    path: str | Path | None = None,
    *,
    objectives: Sequence[str] | None = None,
    annotate: bool = True,
) -> Figure:
    """Scatter of the trials with the Pareto set highlighted.

    Two objectives give one panel, the Pareto set joined as a step line; three or more give a
    grid of the ``C(m, 2)`` pairwise panels. Feasible trials are grey dots, completed infeasible
    ones grey crosses; failed trials have no values and are left out.

    Args:
        result: The search result.
        path: Where to write the figure (``.png``, ``.svg`` or ``.html``, with the Pareto table).
        objectives: Objective names to plot, at least two; default all.
        annotate: Label the Pareto points with their trial numbers.

    Raises:
        ValueError: an unknown objective, fewer than two, or no feasible completed trial.
    """
    target = _check_path(path)
    drawn = _draw_pareto(result, _objective_names(result, objectives), annotate)
    return _finish(drawn, target)


def _draw_pareto(result: SearchResult, names: list[str], annotate: bool) -> _Drawn:
    frame = result.trials
    done = frame[(frame["status"] == "complete") & frame[names].notna().all(axis=1)]
    if not done["feasible"].any():
        raise ValueError(f"{_name(result)} has no feasible completed trial; nothing to plot.")
    pairs = list(itertools.combinations(names, 2))
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    fig = _new_figure(4.8 * ncols + 0.6, 4.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    staircase = len(names) == 2 and set(names) == set(result.objectives.names)
    for ax, (x, y) in zip(axes, pairs):
        _pareto_panel(ax, result, done, x, y, staircase, annotate)
    for ax in axes[len(pairs) :]:
        ax.remove()
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"Pareto set of {_name(result)}: {int(done['pareto'].sum())} trials")
    return _Drawn(fig, f"Pareto set of {_name(result)}", result.pareto)


def _pareto_panel(
    ax: Axes,
    result: SearchResult,
    done: pd.DataFrame,
    x: str,
    y: str,
    staircase: bool,
    annotate: bool,
) -> None:
    rest = done[done["feasible"] & ~done["pareto"]]
    bad = done[~done["feasible"]]
    front = done[done["pareto"]]
    ax.scatter(rest[x], rest[y], s=14, c="0.6", label="feasible")
    if len(bad):
        ax.scatter(bad[x], bad[y], s=18, c="0.75", marker="x", label="infeasible")
    if staircase:
        signs = _signs(result, [x, y])
        line = _staircase(front[[x, y]].to_numpy(dtype=float), signs)
        ax.plot(line[:, 0], line[:, 1], c="C0", lw=1.2, alpha=0.8)
    ax.scatter(front[x], front[y], s=30, c="C0", edgecolors="k", lw=0.5, label="Pareto", zorder=3)
    if annotate:
        for _, row in front.iterrows():
            pos = (float(row[x]), float(row[y]))
            ax.annotate(f"#{row['trial']}", pos, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(_axis_label(result, x))
    ax.set_ylabel(_axis_label(result, y))
    ax.grid(alpha=0.3)


def _staircase(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Vertices ``(2k - 1, 2)`` of the attainment staircase through ``points`` ``(k, 2)``."""
    y = points * signs  # minimization form, where the dominated region is up and right
    y = y[np.lexsort((y[:, 1], y[:, 0]))]
    vertices = [y[0]]
    for prev, cur in itertools.pairwise(y):
        vertices += [np.array([cur[0], prev[1]]), cur]
    return np.asarray(np.asarray(vertices) * signs, dtype=float)


# Hypervolume --------------------------------------------------------------------------------
def hypervolume_curve(
    result: SearchResult, *, x: XAxis = "trial", reference: Reference | None = None
) -> pd.DataFrame:
    """Hypervolume of the feasible completed trials so far, after each finished trial.

    Trials are taken in the order they finished; those that used budget count, as for
    ``n_trials`` (completed or failed in evaluation; not Configs a known-cost constraint
    rejected, nor stale, interrupted or surplus trials, which have no values anyway).

    Args:
        result: The search result.
        x: ``"trial"``: column ``trial``, the number of finished trials (1, 2, ...);
            ``"time"``: column ``time``, seconds from the first trial's start to each finish.
        reference: As in :meth:`SearchResult.hypervolume`; default its reference point.

    Returns:
        One row per finished trial: ``x``, ``number`` (the trial that finished) and
        ``hypervolume`` (non-decreasing; the last equals ``result.hypervolume(reference)``).

    Raises:
        ValueError: a bad ``x`` or ``reference``, no finished trial, or no reference point.
    """
    if x not in ("trial", "time"):
        raise ValueError(f"x must be 'trial' or 'time', got {x!r}.")
    ref = result._reference_array(reference)
    if ref is None:
        raise ValueError(
            f"{_name(result)} has no feasible completed trial to derive a reference point "
            "from; pass reference=[...] (one value per objective)."
        )
    done = _finished(result)
    signs = _signs(result, result.objectives.names)
    y = done[result.objectives.names].to_numpy(dtype=float) * signs
    ok = ((done["status"] == "complete") & done["feasible"]).to_numpy()
    hv = _running_hypervolume(y, ok, ref * signs)
    xs = np.arange(1, len(done) + 1) if x == "trial" else done["elapsed_s"].to_numpy()
    return pd.DataFrame({x: xs, "number": done["trial"].to_numpy(), "hypervolume": hv})


def _finished(result: SearchResult) -> pd.DataFrame:
    """Finished budgeted trials in the order they finished, with ``elapsed_s`` from the first
    trial's start to each finish."""
    frame = result.trials
    if not {"datetime_start", "datetime_complete"} <= set(frame.columns):
        stamps = {
            t.number: (t.datetime_start, t.datetime_complete)
            for t in result.study.get_trials(deepcopy=False)
        }
        frame["datetime_start"] = [stamps[n][0] for n in frame["trial"]]
        frame["datetime_complete"] = [stamps[n][1] for n in frame["trial"]]
    for col in ("datetime_start", "datetime_complete"):
        frame[col] = pd.to_datetime(frame[col])
    done = frame[~frame["status"].isin(_OFF_BUDGET) & frame["datetime_complete"].notna()]
    if done.empty:
        raise ValueError(f"{_name(result)} has no finished trial; nothing to plot.")
    elapsed = done["datetime_complete"] - frame["datetime_start"].min()
    done = done.assign(elapsed_s=elapsed.dt.total_seconds())
    return done.sort_values(["datetime_complete", "trial"], kind="stable")


def _running_hypervolume(y: np.ndarray, ok: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume ``(n,)`` of the ``ok`` rows among ``y[: i + 1]`` (minimization form)."""
    out = np.zeros(len(y))
    front = np.empty((0, y.shape[1]))
    hv = 0.0
    for i, point in enumerate(y):
        covered = np.any(np.all(front <= point, axis=1))
        if ok[i] and np.all(point < ref) and not covered:
            front = np.vstack([front, point])
            front = front[_pareto.non_dominated(front)]
            hv = _pareto.hypervolume(front, ref)
        out[i] = hv
    return out


def plot_hypervolume(
    results: SearchResult | Sequence[SearchResult],
    path: str | Path | None = None,
    *,
    x: XAxis = "trial",
    labels: Sequence[str] | None = None,
    reference: Reference | None = None,
) -> Figure:
    """Step curves of the hypervolume over finished trials or seconds, one per result.

    Args:
        results: One result, or several to compare on one axis (same objectives).
        path: Where to write the figure (``.png``, ``.svg`` or ``.html``, with final values).
        x: ``"trial"`` or ``"time"``, as in :func:`hypervolume_curve`.
        labels: One legend label per result; default the study names.
        reference: Reference point for all curves; default the first result's.

    Raises:
        TypeError: ``results`` is not a SearchResult or a list of them.
        ValueError: results with different objectives, a bad label count, or as in
            :func:`hypervolume_curve`.
    """
    target = _check_path(path)
    return _finish(_draw_hypervolume(_as_results(results), x, labels, reference), target)


def _draw_hypervolume(
    runs: list[SearchResult], x: XAxis, labels: Sequence[str] | None, reference: Reference | None
) -> _Drawn:
    names = _run_labels(runs, labels)
    ref = reference if reference is not None else runs[0].reference_point()
    if ref is None:
        raise ValueError(
            f"{_name(runs[0])} has no feasible completed trial to derive a reference point "
            "from; pass reference=[...] (one value per objective)."
        )
    curves = [hypervolume_curve(r, x=x, reference=ref) for r in runs]
    fig = _new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for curve, label in zip(curves, names):
        xs, hv = [0.0, *curve[x]], [0.0, *curve["hypervolume"]]  # nothing found before the start
        ax.step(xs, hv, where="post", label=f"{label}: {hv[-1]:.4g}")
    ax.set_xlabel("finished trials" if x == "trial" else "seconds since the first trial started")
    ax.set_ylabel("hypervolume")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"Hypervolume of {', '.join(_axis_label(runs[0], n) for n in runs[0].objectives.names)}"
    )
    table = pd.DataFrame(
        {
            "run": names,
            "finished trials": [len(c) for c in curves],
            "hypervolume": [float(c["hypervolume"].iloc[-1]) for c in curves],
        }
    )
    return _Drawn(fig, "Hypervolume", table)


# Per-layer allocation -----------------------------------------------------------------------
# Writing ------------------------------------------------------------------------------------
def write_plots(
    result: SearchResult, out_dir: str | Path, *, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """Write every plot of ``result`` into ``out_dir`` (created if needed).

    Files: ``pareto`` (two or more objectives), ``hypervolume_trial``, ``hypervolume_time`` and
    ``allocation`` (when the Configs have per-layer knobs), each once per format.

    Args:
        result: The search result.
        out_dir: Output directory.
        formats: Any of ``"png"``, ``"svg"``, ``"html"``.

    Returns:
        The paths written, in that order.

    Raises:
        ValueError: an unknown format, or a result with no feasible completed trial.
    """
    suffixes = _check_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, _Drawn] = {}
    if len(result.objectives.names) >= 2:
        drawn["pareto"] = _draw_pareto(result, result.objectives.names, True)
    x_axes: tuple[XAxis, ...] = ("trial", "time")
    for x in x_axes:
        drawn[f"hypervolume_{x}"] = _draw_hypervolume([result], x, None, None)
    try:
        drawn["allocation"] = _draw_allocation(result, None, None)
    except ValueError as exc:  # no per-layer knobs: a plain space
        logger.info("No allocation plot for %s: %s", _name(result), exc)
    paths = []
    for stem, item in drawn.items():
        for suffix in suffixes:
            paths.append(out / f"{stem}{suffix}")
            _save(item, paths[-1])
    return paths


def _objective_names(result: SearchResult, objectives: Sequence[str] | None) -> list[str]:
    known = result.objectives.names
    if objectives is None:
        names = known
    else:
        names = [objectives] if isinstance(objectives, str) else list(objectives)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"Unknown objectives {unknown}; this result has {known}.")
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"A Pareto plot needs two or more distinct objectives, got {names}.")
    return names


def _as_results(results: SearchResult | Sequence[SearchResult]) -> list[SearchResult]:
    runs = [results] if isinstance(results, SearchResult) else list(results)
    for r in runs:
        if not isinstance(r, SearchResult):
            raise TypeError(f"Expected a SearchResult or a list of them, got {r!r}.")
    if not runs:
        raise ValueError("Give at least one SearchResult.")
    spec = [(o.name, o.direction) for o in runs[0].objectives.objectives]
    for r in runs[1:]:
        other = [(o.name, o.direction) for o in r.objectives.objectives]
        if other != spec:
            raise ValueError(
                f"Results must share objectives to compare: {_name(runs[0])} has {spec}, "
                f"{_name(r)} has {other}."
            )
    return runs


def _run_labels(runs: list[SearchResult], labels: Sequence[str] | None) -> list[str]:
    if labels is None:
        return [r.study.study_name for r in runs]
    if isinstance(labels, str) or len(labels) != len(runs):
        raise ValueError(f"Give one label per result ({len(runs)}), got {labels!r}.")
    return [str(label) for label in labels]


def _signs(result: SearchResult, names: Sequence[str]) -> np.ndarray:
    """+1 for minimized, -1 for maximized objectives, in the order of ``names``."""
    direction = dict(zip(result.objectives.names, result.objectives.directions))
    ones = np.ones((1, len(names)))
    return np.asarray(_pareto.to_minimization(ones, [direction[n] for n in names])[0], dtype=float)


def _axis_label(result: SearchResult, name: str) -> str:
    direction = dict(zip(result.objectives.names, result.objectives.directions))[name]
    return f"{name} ({'max' if direction == 'maximize' else 'min'})"


__all__ = [
    "FORMATS",
    "hypervolume_curve",
    "per_layer_knobs",
    "plot_allocation",
    "plot_hypervolume",
    "plot_pareto",
    "write_plots",
]
