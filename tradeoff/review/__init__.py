"""HOW a person sees a search: matplotlib plots (Pareto front, hypervolume over trials or
time, per-layer allocation), and notes and plotly figures for optuna-dashboard (to come:
artifacts). Plots need matplotlib (the ``plot`` extra), loaded on first use.

Nothing imports this room but the façades (``optimize``, ``compress``, ``SearchResult``'s plot
methods) and the CLI.
"""

from tradeoff.review._dashboard import study_figures, write_figures
from tradeoff.review._notes import (
    layer_table,
    refresh_notes,
    study_note,
    trial_note,
    write_notes,
)
from tradeoff.review._plot import (
    hypervolume_curve,
    per_layer_knobs,
    plot_allocation,
    plot_hypervolume,
    plot_pareto,
    write_plots,
)

__all__ = [
    "hypervolume_curve",
    "layer_table",
    "per_layer_knobs",
    "plot_allocation",
    "plot_hypervolume",
    "plot_pareto",
    "refresh_notes",
    "study_figures",
    "study_note",
    "trial_note",
    "write_figures",
    "write_notes",
    "write_plots",
]
