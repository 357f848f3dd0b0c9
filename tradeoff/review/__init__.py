"""HOW a person sees a search: notes (and, to come, figures and artifacts) for optuna-dashboard.

Nothing imports this room but the façades (``optimize``, ``compress``) and the CLI.
"""

from tradeoff.review._notes import (
    layer_table,
    refresh_notes,
    study_note,
    trial_note,
    write_notes,
)

__all__ = ["layer_table", "refresh_notes", "study_note", "trial_note", "write_notes"]
