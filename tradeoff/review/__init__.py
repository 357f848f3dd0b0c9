"""HOW a person sees a search: notes and figures (to come: artifacts) for optuna-dashboard.

Nothing imports this room but the façades (``optimize``, ``compress``) and the CLI.
"""

from tradeoff.review._dashboard import study_figures, write_figures
from tradeoff.review._notes import (
    layer_table,
    refresh_notes,
    study_note,
    trial_note,
    write_notes,
)

__all__ = [
    "layer_table",
    "refresh_notes",
    "study_figures",
    "study_note",
    "trial_note",
    "write_figures",
    "write_notes",
]
