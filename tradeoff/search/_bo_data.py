"""Study trials -> arrays for MOBOSampler, and the exact known costs of candidate points.

Arrays follow BoTorch's maximization convention: a minimized objective is negated. Shapes:
``n`` completed trials, ``p`` running ones, ``d`` columns, ``m`` objectives, ``c`` measured
constraints, ``k`` known-cost objectives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tradeoff import _pareto
from tradeoff.objectives import ObjectiveSet
from tradeoff.search._bo_encode import Encoding, FloatArray
from tradeoff.spaces import SearchSpace

REFERENCE_MARGIN = 0.1
NARROW_FRONT = 0.25  # of the observed range: a Pareto set narrower says little (reference_point)
WINSOR_IQRS = 1.5  # Tukey's fence: the lower quartile minus 1.5 interquartile ranges (winsorize)
_WINSOR_MIN = 4  # observations below which winsorize leaves the values as they are
_INFINITE_SPREADS = 3.0  # how far beyond the finite values an infinite constraint value sits
ToTensor = Callable[[Any], Any]  # NumPy array -> torch tensor (torch is imported lazily)
TensorFn = Callable[[Any], Any]  # torch tensor -> torch tensor


@dataclass(frozen=True)
class Observations:
    """Completed trials in the unit cube and the maximization convention.

    Attributes:
        x: ``(n, d)`` points.
        y: ``(n, m)`` objective values, maximized.
        con: ``(n, c)`` measured constraint values (``<= 0`` feasible), or ``None``.
        feasible: ``(n,)`` whether every constraint of the trial holds.
        pending: ``(p, d)`` points of running trials.
        tried: ``(t, d)`` points of every other trial, whatever its state.
    """

    x: FloatArray
    y: FloatArray
    con: FloatArray | None
    feasible: NDArray[np.bool_]
    pending: FloatArray
    tried: FloatArray


def gather(
    study: Study, enc: Encoding, current: int, objectives: ObjectiveSet | None
) -> Observations:
    """Completed trials with finite values -> observations; running trials other than
    ``current`` -> pending points; every trial other than ``current`` -> tried points. Trials
    without a valid value for every column are skipped.
    """
    trials = [
        t for t in study.get_trials(deepcopy=False) if t.number != current and enc.covers(t.params)
    ]
    done = [t for t in trials if t.state == TrialState.COMPLETE and _usable(t, enc)]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    keys = _measured_constraint_keys(done, objectives)
    sign = signs(study)
    con = np.array([[t.constraints[k] for k in keys] for t in done], dtype=float)
    return Observations(
        x=_points(done, enc),
        y=np.array([t.values for t in done], dtype=float).reshape(-1, len(sign)) * sign,
        con=con if keys else None,
        feasible=np.array([all(v <= 0 for v in t.constraints.values()) for t in done], bool),
        pending=_points(running, enc),
        tried=_points(trials, enc),
    )


def _usable(trial: FrozenTrial, enc: Encoding) -> bool:
    return trial.values is not None and all(map(math.isfinite, trial.values))


def untried_mask(enc: Encoding, tried: FloatArray, x: FloatArray) -> NDArray[np.bool_]:
    """``(N,)`` bool: each row of ``x`` (a discrete space's points) is none of ``tried``."""
    keys = {row.tobytes() for row in enc.indices(tried)}
    return np.array([row.tobytes() not in keys for row in enc.indices(x)], dtype=bool)


def untried_fn(enc: Encoding, tried: FloatArray, to_tensor: ToTensor) -> TensorFn:
    """Tensor ``(N, d) -> (N,)`` bool: :func:`untried_mask` for tensors."""
    return lambda x: to_tensor(untried_mask(enc, tried, _np(x))).bool()


def _points(trials: list[FrozenTrial], enc: Encoding) -> FloatArray:
    return np.array([enc.encode(t.params) for t in trials], dtype=float).reshape(-1, enc.dim)


def _measured_constraint_keys(
    trials: list[FrozenTrial], objectives: ObjectiveSet | None
) -> list[str]:
    """Constraint keys every trial has, minus those over known costs (checked exactly)."""
    if not trials:
        return []
    common = set.intersection(*(set(t.constraints) for t in trials))
    keys = [k for k in trials[0].constraints if k in common]
    if objectives is None:
        return keys
    known = {o.name for o in objectives.known}
    names = [c.name for c in objectives.constraints]
    return [k for k in keys if not (k.isdigit() and int(k) < len(names) and names[int(k)] in known)]


class KnownCosts:
    """Exact known-cost values and known-constraint feasibility of unit points.

    Each distinct Config is evaluated once per proposal. A ``fn`` that raises or returns a
    non-finite value makes the point infeasible.
    """

    def __init__(self, enc: Encoding, space: SearchSpace | None, objectives: ObjectiveSet) -> None:
        self._enc, self._space = enc, space
        self._objectives = objectives.known
        self._constraints = objectives.known_constraints()
        self._signs = [1.0 if o.direction == "maximize" else -1.0 for o in self._objectives]
        self._fixed = _single_values(space, enc)
        self._cache: dict[bytes, tuple[FloatArray, bool]] = {}

    @property
    def has_constraints(self) -> bool:
        """Whether some known-cost constraint can rule a point out."""
        return bool(self._constraints)

    def evaluate(self, x: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
        """``(N, d)`` points -> ``(N, k)`` maximized values (NaN on failure), ``(N,)`` ok."""
        xs = self._enc.snap(x)
        uniq, inverse = np.unique(xs, axis=0, return_inverse=True)
        rows = [self._row(u) for u in uniq]
        values = np.array([r[0] for r in rows], dtype=float).reshape(len(uniq), -1)
        ok = np.array([r[1] for r in rows], dtype=bool)
        inverse = inverse.reshape(-1)
        return values[inverse], ok[inverse]

    def values_fn(self, to_tensor: ToTensor, reference: FloatArray) -> TensorFn:
        """Tensor ``(N, d) -> (N, k)``; a failed point sits below ``reference`` (no volume)."""

        def values(x: Any) -> Any:
            v = self.evaluate(_np(x))[0]
            return to_tensor(np.where(np.isnan(v), reference - 1.0, v))

        return values

    def feasible_fn(self, to_tensor: ToTensor) -> TensorFn:
        """Tensor ``(N, d) -> (N,)`` bool: every known-cost constraint holds."""
        return lambda x: to_tensor(self.evaluate(_np(x))[1]).bool()

    def _row(self, u: FloatArray) -> tuple[FloatArray, bool]:
        key = u.tobytes()
        if key not in self._cache:
            self._cache[key] = self._compute(u)
        return self._cache[key]

    def _compute(self, u: FloatArray) -> tuple[FloatArray, bool]:
        params = {**self._fixed, **self._enc.decode(u)}
        config = self._space.decode(params) if self._space is not None else params
        failed = np.full(len(self._objectives), np.nan)
        try:
            raw = {o.name: float(o.fn(config)) for o in self._objectives if o.fn is not None}
        except Exception:  # a broken fn rules the point out; the driver reports the error
            return failed, False
        if not all(math.isfinite(v) for v in raw.values()):
            return failed, False
        ok = all(c.violation(raw[c.name]) <= 0 for c in self._constraints)
        values = np.array([s * raw[o.name] for o, s in zip(self._objectives, self._signs)])
        return values, ok


def _np(x: Any) -> FloatArray:
    return np.asarray(x.detach().cpu().numpy(), dtype=float)


def _single_values(space: SearchSpace | None, enc: Encoding) -> dict[str, Any]:
    """Values of single-valued parameters, left out of the encoding but part of a Config."""
    if space is None:
        return {}
    out: dict[str, Any] = {}
    for name, dist in space.distributions().items():
        if name in enc.names:
            continue
        if isinstance(dist, CategoricalDistribution):
            out[name] = dist.choices[0]
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            out[name] = dist.low
    return out


def reference_point(data: Observations, user: list[float | None]) -> FloatArray:
    """``(m,)`` reference point (maximized): the user's coordinates, else, per objective, the
    nadir of the feasible observed Pareto set minus 10% of its range (BoTorch's
    ``infer_reference_point`` rule, Ax's default) where that set spans at least
    :data:`NARROW_FRONT` of the feasible values' range, and the worst feasible value minus 10%
    of their range (``SearchResult.hypervolume``'s rule) where it spans less: one point, or
    one piece of a front.

    Not the worst value everywhere: early random points lie far from the front (paretobench's
    DTLZ2 at three objectives: worst values near 2.5, the front's nadir 1), and a reference
    that far makes hypervolume improvement reward points beyond the front's ends over the
    front itself (0.26 of the front after 100 evaluations, 0.57 with the nadir). Not the
    nadir everywhere: a narrow found front says little about where the front ends, and a 10%
    margin gives no volume to what lies beyond it. On DTLZ7's disconnected front one point
    of the first piece, ``(0, 4)``, dominated every other observation, the reference sat at
    ``f1 = 0.065``, and no point of the other pieces (``f1`` up to 0.86) could add volume
    (0.29 of the front after 60 evaluations against 0.69 with the worst value).
    """
    y = data.y[data.feasible] if data.feasible.any() else data.y
    front = y[_pareto.non_dominated(-y)]
    nadir, span = front.min(axis=0), np.ptp(front, axis=0)
    worst = -_pareto.derive_reference(-y, margin=REFERENCE_MARGIN)
    wide = (span > 0) & (span >= NARROW_FRONT * np.ptp(y, axis=0))
    derived = np.where(wide, nadir - REFERENCE_MARGIN * span, worst)
    return np.array([d if u is None else u for d, u in zip(derived, user)], dtype=float)


def winsorize(
    data: Observations, user: list[float | None], measured: list[bool] | None = None
) -> Observations:
    """Each measured objective's bad tail clipped at Tukey's lower fence (maximized: values
    below the lower quartile minus :data:`WINSOR_IQRS` interquartile ranges are set to it),
    Ax's ``Winsorize`` transform and its automatic cutoffs, ``min(q1, threshold)`` for
    ``q1`` where the user gave a reference coordinate. Quartiles over the feasible values
    while :data:`_WINSOR_MIN` of them exist, else over all; fewer observations, or the
    objectives ``measured`` marks ``False`` (known costs: exact, from a bounded space), stay
    as they are. Clipping is monotone: a dominated point stays dominated, or ties; of the
    Pareto points only those in a clipped tail can change, when two tie at the fence.

    COCO's Rosenbrock pair (issue #17): its first random points lie about a hundred times
    farther from the front than the found front is wide; the reference derived from them
    (:func:`reference_point`: the worst value where the front is narrow) then lay so far
    out that hypervolume improvement rewarded points beyond the front's ends over points
    inside COCO's region of interest.
    """
    y = data.y
    if len(y) < _WINSOR_MIN:
        return data
    rows = y[data.feasible] if data.feasible.sum() >= _WINSOR_MIN else y
    q1 = np.percentile(rows, 25, axis=0, method="lower")
    q3 = np.percentile(rows, 75, axis=0, method="higher")
    bound = np.array([np.inf if u is None else u for u in user], dtype=float)
    low = np.minimum(q1, bound)
    fence = low - WINSOR_IQRS * (q3 - low)
    if measured is not None:
        fence = np.where(measured, fence, -np.inf)
    return replace(data, y=np.maximum(y, fence))


def subsample(data: Observations, max_observations: int | None) -> Observations:
    """Keep the feasible Pareto set, then the most recent trials, up to ``max_observations``."""
    n, cap = len(data.x), max_observations
    if cap is None or n <= cap:
        return data
    front = np.flatnonzero(_pareto.non_dominated(-data.y) & data.feasible)[-cap:]
    rest = np.setdiff1d(np.arange(n), front)[::-1][: cap - len(front)]
    keep = np.sort(np.concatenate([front, rest]))
    con = None if data.con is None else data.con[keep]
    return replace(data, x=data.x[keep], y=data.y[keep], con=con, feasible=data.feasible[keep])


def scale_constraints(con: FloatArray) -> FloatArray:
    """Divide each constraint by its spread (sign kept) so the sigmoid's width fits it.

    Optuna accepts infinite constraint values: they become finite, ``_INFINITE_SPREADS``
    spreads beyond the column's finite values (and on the same side of 0), which a GP can fit.
    """
    out = np.zeros_like(con, dtype=float)
    for j, column in enumerate(np.asarray(con, dtype=float).T):
        finite = column[np.isfinite(column)]
        spread = finite.std() if len(finite) else 0.0
        if not spread > 0:
            spread = max(float(np.abs(finite).max(initial=0.0)), 1.0)
        scaled = finite / spread
        high = max(float(scaled.max(initial=0.0)), 0.0) + _INFINITE_SPREADS
        low = min(float(scaled.min(initial=0.0)), 0.0) - _INFINITE_SPREADS
        out[:, j] = np.nan_to_num(column / spread, nan=high, posinf=high, neginf=low)
    return out


def signs(study: Study) -> FloatArray:
    """``(m,)``: +1 for maximized objectives, -1 for minimized ones."""
    return np.array([1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions])
