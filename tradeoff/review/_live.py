"""The study's note and figures kept current while a search runs.

A thread on the driver rewrites them at most every :data:`EVERY_S` seconds, and only when trials
finished since the last write; the trials' own notes (up to 200 of them) are written once, when
the search ends. Nothing here runs on the driver's path per trial, and a failed write is logged,
never raised: the search goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import optuna
from optuna.trial import TrialState

from tradeoff.objectives import ObjectiveSet

logger = logging.getLogger("tradeoff.review")

EVERY_S = 10.0
"""Seconds between two writes during a search, at least."""


class LiveNotes:
    """Rewrites the study note and figures of ``study`` every ``every`` seconds while trials
    finish (see the module docstring).

    Attributes:
        history: The number of finished trials at each write, for logs and tests.
    """

    def __init__(
        self, study: optuna.Study, objectives: ObjectiveSet, every: float | None = None
    ) -> None:
        self.study, self.objectives = study, objectives
        self.every = EVERY_S if every is None else every
        self.history: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tradeoff-notes", daemon=True)

    def start(self) -> LiveNotes:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.write()
            except Exception as error:  # never the search's problem
                logger.warning("live notes: %s: %s", type(error).__name__, error)

    def write(self) -> bool:
        """Write the note and figures if trials finished since the last write."""
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        done = len(self.study.get_trials(deepcopy=False, states=states))
        if done == 0 or (self.history and done == self.history[-1]):
            return False
        from optuna_dashboard import save_note

        from tradeoff._result import SearchResult
        from tradeoff.review._dashboard import write_figures
        from tradeoff.review._notes import study_note

        result = SearchResult(self.study, self.objectives)
        save_note(self.study, study_note(result))
        write_figures(result)
        self.history.append(done)
        return True


@contextlib.contextmanager
def live_notes(study: optuna.Study, objectives: ObjectiveSet) -> Iterator[LiveNotes | None]:
    """Keep the study's note and figures current for the duration (when optuna-dashboard and
    plotly are installed; else nothing)."""
    try:
        import optuna_dashboard  # noqa: F401
        import plotly  # noqa: F401
    except ImportError:
        yield None
        return
    notes = LiveNotes(study, objectives).start()
    try:
        yield notes
    finally:
        notes.stop()
