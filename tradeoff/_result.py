"""SearchResult: the trials and the Pareto set of a search, read from its Optuna study."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from tradeoff import _pareto
from tradeoff._study import (
    ATTR_CONFIG,
    ATTR_FIDELITY,
    ATTR_REASON,
    ATTR_RESULT,
    STALE_REASON,
    fixed_reference,
    load_spec,
    make_storage,
    redact,
    trial_status,
)
from tradeoff.objectives import ObjectiveSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

META_COLUMNS = ("trial", "status", "feasible", "pareto", "duration_s", "worker", "node", "failure")

Which = Literal["pareto", "trials"]


class SearchResult:
    """The outcome of a search: every trial, and the feasible non-dominated ones.

    Built from the study alone, so a result can be re-read at any time (``SearchResult.load``),
    also while another process is still searching.

    Args:
        study: The Optuna study of the search.
        objectives: Objective definitions; read from the study when omitted.
    """

    def __init__(self, study: optuna.Study, objectives: ObjectiveSet | None = None) -> None:
        self.study = study
        self.objectives = objectives if objectives is not None else load_spec(study)
        self._trials = study.get_trials(deepcopy=False)
        self._frame = self._build_frame()

    @classmethod
    def load(cls, storage: str, study_name: str) -> SearchResult:
        """Read the result of the study ``study_name`` in ``storage``.

        Raises:
            ValueError: there is no such study (the message lists the existing ones).
        """
        store = make_storage(storage)
        try:
            study = optuna.load_study(study_name=study_name, storage=store)
        except KeyError:
            names = [s.study_name for s in store.get_all_studies()]
            raise ValueError(
                f"No study named {study_name!r} in {redact(storage)}; it has {names or 'none'}."
            ) from None
        return cls(study)

    # DataFrames -----------------------------------------------------------------------------
    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: ``trial``, ``status``, the Config, objectives, metrics,
        ``feasible``, ``pareto``, ``duration_s``, ``worker``, ``node`` and ``failure``."""
        return self._frame.copy()

    @property
    def pareto(self) -> pd.DataFrame:
        """The feasible, completed, non-dominated trials, sorted by the first objective."""
        front = self._frame[self._frame["pareto"]]
        return front.sort_values(self.objectives.names[0]).reset_index(drop=True)

    @property
    def failures(self) -> pd.DataFrame:
        """Failed and infeasible trials with the reason each did not complete."""
        mask = self._frame["status"].isin(["failed", "infeasible"])
        return self._frame.loc[mask, ["trial", "status", "failure"]].reset_index(drop=True)

    def configs(self, *, pareto: bool = True) -> list[dict[str, Any]]:
        """The Configs of the Pareto set, row for row in the order of :attr:`pareto` (or of
        every trial, in the order of :attr:`trials`)."""
        by_number = {t.number: t for t in self._trials}
        numbers = (self.pareto if pareto else self._frame)["trial"]
        return [_config_of(by_number[int(n)]) for n in numbers]

    # Hypervolume ----------------------------------------------------------------------------
    def reference_point(self) -> dict[str, float] | None:
        """The reference point in use: per-objective ``reference`` if all are given, else the
        one recorded on the study, else derived from the completed feasible trials."""
        fixed = fixed_reference(self.study, self.objectives)
        if fixed is not None:
            return fixed
        values = self._feasible_values()
        if len(values) == 0:
            return None
        ref = _pareto.derive_reference(_pareto.to_minimization(values, self.objectives.directions))
        # Back to the objectives' own directions, and keep user-given coordinates.
        ref = _pareto.to_minimization(ref[None, :], self.objectives.directions)[0]
        out = dict(zip(self.objectives.names, map(float, ref)))
        out.update({o.name: o.reference for o in self.objectives.objectives if o.reference})
        return out

    def hypervolume(self, reference: Sequence[float] | Mapping[str, float] | None = None) -> float:
        """Hypervolume of the feasible completed trials against ``reference``.

        Args:
            reference: One value per objective (in objective order, or by name), in the
                objectives' own units and directions. Defaults to :meth:`reference_point`.
        """
        ref = self._reference_array(reference)
        values = self._feasible_values()
        if ref is None or len(values) == 0:
            return 0.0
        directions = self.objectives.directions
        return _pareto.hypervolume(
            _pareto.to_minimization(values, directions),
            _pareto.to_minimization(ref[None, :], directions)[0],
        )

    # Plots (matplotlib: pip install 'tradeoff[plot]') -------------------------------------
    def plot_pareto(
        self,
        path: str | Path | None = None,
        *,
        objectives: Sequence[str] | None = None,
        annotate: bool = True,
    ) -> Figure:
        """The trials with the Pareto set highlighted; see :func:`tradeoff.review.plot_pareto`."""
        from tradeoff.review import _plot

        return _plot.plot_pareto(self, path, objectives=objectives, annotate=annotate)

    def hypervolume_curve(
        self,
        *,
        x: Literal["trial", "time"] = "trial",
        reference: Sequence[float] | Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """Hypervolume after each finished trial (columns ``x``, ``number``, ``hypervolume``)."""
        from tradeoff.review import _plot

        return _plot.hypervolume_curve(self, x=x, reference=reference)

    def plot_hypervolume(
        self,
        path: str | Path | None = None,
        *,
        x: Literal["trial", "time"] = "trial",
        reference: Sequence[float] | Mapping[str, float] | None = None,
    ) -> Figure:
        """Hypervolume over trials or seconds; ``tradeoff.review.plot_hypervolume`` compares
        several results."""
        from tradeoff.review import _plot

        return _plot.plot_hypervolume(self, path, x=x, reference=reference)

    def plot_allocation(
        self,
        path: str | Path | None = None,
        *,
        trials: Sequence[int] | None = None,
        knobs: Sequence[str] | None = None,
    ) -> Figure:
        """Per-layer knobs (bits, sparsity...) of the Pareto trials, one heatmap per knob."""
        from tradeoff.review import _plot

        return _plot.plot_allocation(self, path, trials=trials, knobs=knobs)

    def write_plots(self, out_dir: str | Path, *, formats: Sequence[str] = ("png",)) -> list[Path]:
        """Write the Pareto, hypervolume and allocation plots into ``out_dir``."""
        from tradeoff.review import _plot

        return _plot.write_plots(self, out_dir, formats=formats)

    # Export ---------------------------------------------------------------------------------
    def to_csv(self, path: str | Path, *, which: Which = "pareto") -> None:
        self._select(which).to_csv(path, index=False)

    def to_json(self, path: str | Path, *, which: Which = "pareto") -> None:
        self._select(which).to_json(path, orient="records", indent=2)

    def summary(self) -> str:
        """A few lines: counts by status, Pareto-set size, hypervolume, and why trials failed."""
        counts = Counter(self._frame["status"])
        parts = [f"{counts.get(s, 0)} {s}" for s in ("complete", "failed", "infeasible")]
        parts += [
            f"{n} {s}" for s, n in counts.items() if s not in ("complete", "failed", "infeasible")
        ]
        lines = [
            f"{len(self._frame)} trials: " + ", ".join(parts),
            f"Pareto set: {int(self._frame['pareto'].sum())} configs; "
            f"hypervolume {self.hypervolume():.6g}",
        ]
        failed = self._frame[self._frame["status"].isin(["failed", "infeasible"])]
        for reason, n in Counter(failed["failure"].fillna("?")).most_common(5):
            lines.append(f"  {n}x {reason}")
        return "\n".join(lines)

    @property
    def n_failed(self) -> int:
        return int((self._frame["status"] == "failed").sum())

    def __repr__(self) -> str:
        return f"SearchResult(study={self.study.study_name!r})\n{self.summary()}"

    # Internals ------------------------------------------------------------------------------
    def _select(self, which: Which) -> pd.DataFrame:
        if which not in ("pareto", "trials"):
            raise ValueError(f"which must be 'pareto' or 'trials', got {which!r}.")
        return self.pareto if which == "pareto" else self.trials

    def _feasible_values(self) -> np.ndarray:
        rows = self._frame[(self._frame["status"] == "complete") & self._frame["feasible"]]
        return rows[self.objectives.names].to_numpy(dtype=float)

    def _reference_array(
        self, reference: Sequence[float] | Mapping[str, float] | None
    ) -> np.ndarray | None:
        names = self.objectives.names
        if reference is None:
            ref = self.reference_point()
            return None if ref is None else np.array([ref[n] for n in names], dtype=float)
        if isinstance(reference, Mapping):
            missing = [n for n in names if n not in reference]
            if missing:
                raise ValueError(f"reference lacks objectives {missing}; give all of {names}.")
            return np.array([reference[n] for n in names], dtype=float)
        arr = np.asarray(reference, dtype=float)
        if arr.shape != (len(names),):
            raise ValueError(f"reference needs {len(names)} values ({names}), got {reference!r}.")
        return arr

    def _build_frame(self) -> pd.DataFrame:
        promoted = {
            t.user_attrs[ATTR_FIDELITY].get("promoted_from")
            for t in self._trials
            if ATTR_FIDELITY in t.user_attrs
        }
        rows = [self._row(t, promoted) for t in self._trials]
        columns = _column_order(rows, self.objectives)
        frame = pd.DataFrame(rows, columns=columns)
        frame["feasible"] = frame["feasible"].astype(bool)
        frame["pareto"] = False
        done = (frame["status"] == "complete") & frame["feasible"]
        if done.any():
            y = _pareto.to_minimization(
                frame.loc[done, self.objectives.names].to_numpy(dtype=float),
                self.objectives.directions,
            )
            frame.loc[done, "pareto"] = _pareto.non_dominated(y)
        return frame

    def _row(self, trial: FrozenTrial, promoted: set[Any]) -> dict[str, Any]:
        attrs = trial.user_attrs
        row: dict[str, Any] = {"trial": trial.number, "status": _status(trial)}
        if row["status"] == "pruned" and ATTR_FIDELITY in attrs:  # a lower-budget evaluation
            row["status"] = "promoted" if trial.number in promoted else "stopped"
        row.update(_config_of(trial))
        run = attrs.get(ATTR_RESULT, {})
        row.update(run.get("values", {}))
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            row.update(zip(self.objectives.names, trial.values))
        row["feasible"] = row["status"] == "complete" and all(
            v <= 0 for v in trial.constraints.values()
        )
        row["duration_s"] = run.get("duration_s")
        row["worker"] = run.get("worker")
        row["node"] = run.get("node")
        row["failure"] = attrs.get(ATTR_REASON, STALE_REASON if row["status"] == "stale" else None)
        if ATTR_FIDELITY in attrs:
            tag = attrs[ATTR_FIDELITY]
            row.update(budget=tag["budget"], rung=tag["rung"])
            row["promoted_from"] = tag.get("promoted_from")
        return row


def _status(trial: FrozenTrial) -> str:
    status = trial_status(trial)
    if status is not None:
        return status
    return {
        TrialState.COMPLETE: "complete",
        TrialState.FAIL: "failed",
        TrialState.PRUNED: "pruned",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }[trial.state]


def _config_of(trial: FrozenTrial) -> dict[str, Any]:
    config = trial.user_attrs.get(ATTR_CONFIG)
    return dict(config) if config is not None else dict(trial.params)


def _column_order(rows: list[dict[str, Any]], objectives: ObjectiveSet) -> list[str]:
    metric_cols = [*objectives.names, *objectives.metrics]
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in META_COLUMNS and key not in metric_cols:
                seen.setdefault(key, None)
    return ["trial", "status", *seen, *metric_cols, *META_COLUMNS[2:]]


def plain_json(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, NaN as ``None`` (JSON has no NaN);
    mappings and sequences converted item by item."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
