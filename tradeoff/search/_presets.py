"""Optimizer presets: Optuna samplers configured for multi-objective, constrained searches.

Every optimizer is an ``optuna.samplers.BaseSampler``. Constraints reach the samplers through
``trial.constraints`` (written by the driver before ``tell``), so no ``constraints_func`` is
needed. The ``"auto"`` rule (:func:`auto_optimizer`) is a deterministic function of the space,
the objectives, the budget and the installed extras (no timing: the same call picks the same
optimizer on every machine; ``optimize`` records the pick on the study, so a resumed search
keeps it). For a space of ``d`` parameters:

1. One objective: rules 3-6 (``"mobo"`` is benchmarked on multi-objective problems only).
2. ``d <= 30``, BoTorch installed, no unordered :class:`~tradeoff.spaces.Choice` and no
   known-cost function that applies each Config to a model copy (a
   :func:`~tradeoff.objectives.model_cost` whose ``fn.analytic`` is False: MOBO calls known
   costs for every candidate it scores):

   a. a budget of at most 300 trials -> ``"mobo"``. In ``benchmarks/optimizers.py`` (100
      trials, 3 seeds) it leads every Optuna sampler on ZDT1, ZDT2, DTLZ2, per-layer bit
      allocation with and without a size budget, and the digits model;
   b. a larger budget -> ``"mobo>evolution"``: ``"mobo"`` until 200 trials are complete,
      then ``"evolution"``, whose population starts from everything BO found
      (:class:`~tradeoff.search.HandoverSampler`). BO's proposals cost about a second
      each at 200 observations and grow with more; evolution's cost milliseconds.

   Spaces with a ``Choice`` are kept away from ``"mobo"``: on an architecture-search table of
   unordered operations it reached 0.758 of the front where random search reached 0.879 and
   multivariate TPE 0.955 (issue #17), so until it is shown to beat TPE there, they go on.
3. A known-cost constraint (a budget over an ``Objective(fn=...)``) -> ``"evolution"``: its
   level-switch mutation and repair never propose a Config over the budget.
4. A space with an unordered ``Choice`` -> ``"tpe"`` (multivariate).
5. At most 300 trials over at most 30 dimensions with torch and scipy -> ``"gp"``.
6. A budget of at least 1,000 trials -> ``"nsga2"``; otherwise -> ``"tpe"``.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from typing import Any

import optuna

from tradeoff.objectives import ObjectiveSet
from tradeoff.spaces import Choice, SearchSpace

OPTIMIZERS = ("auto", "random", "nsga2", "tpe", "gp", "mobo", "evolution")
"""Names accepted by ``optimize(..., optimizer=...)``, besides any ``BaseSampler``."""

HANDOVER = "mobo>evolution"
"""What ``"auto"`` picks for large budgets: mobo, then evolution (see the module docstring)."""

_GP_MAX_TRIALS = 300
_HANDOVER_AT = 200
_GP_MAX_DIM = 30
_NSGA2_MIN_TRIALS = 1000


def check_optimizer(optimizer: Any) -> None:
    """Raise a clear error for anything that is neither a known name nor a sampler."""
    if isinstance(optimizer, optuna.samplers.BaseSampler):
        return
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {optimizer!r}; use one of {list(OPTIMIZERS)} "
            "or an optuna.samplers.BaseSampler instance."
        )


def auto_optimizer(
    space: SearchSpace, *, n_trials: int, objectives: ObjectiveSet | None = None
) -> str:
    """The optimizer ``"auto"`` picks for this space and budget: a name of :data:`OPTIMIZERS`
    or :data:`HANDOVER` (see the module docstring). Deterministic: it calls nothing the user
    wrote and times nothing."""
    return auto_choice(space, n_trials=n_trials, objectives=objectives)[0]


def auto_choice(
    space: SearchSpace, *, n_trials: int, objectives: ObjectiveSet | None = None
) -> tuple[str, str]:
    """What ``"auto"`` picks (as :func:`auto_optimizer`) and why: the rule of the module
    docstring that decided, in words."""
    name, why = _auto_rules(space, n_trials=n_trials, objectives=objectives)
    if objectives is not None and len(objectives.names) == 1:
        why = f"rule 1, one objective, then {why}"
    return name, why


def _auto_rules(
    space: SearchSpace, *, n_trials: int, objectives: ObjectiveSet | None
) -> tuple[str, str]:
    d = len(space)
    small = n_trials <= _GP_MAX_TRIALS and d <= _GP_MAX_DIM
    categorical = any(isinstance(p, Choice) for p in space.values())
    multi = objectives is None or len(objectives.names) > 1
    bo = d <= _GP_MAX_DIM and not categorical and _known_costs_cheap(objectives)
    if multi and bo and _has_bo_deps():
        if n_trials <= _GP_MAX_TRIALS:
            return "mobo", (
                f"rule 2a: several objectives, {d} parameters (<= {_GP_MAX_DIM}), no unordered "
                f"Choice, {n_trials} trials (<= {_GP_MAX_TRIALS})"
            )
        return HANDOVER, (
            f"rule 2b: several objectives, {d} parameters (<= {_GP_MAX_DIM}), no unordered "
            f"Choice, {n_trials} trials (> {_GP_MAX_TRIALS}): mobo, then evolution after "
            f"{_HANDOVER_AT} complete"
        )
    if objectives is not None and objectives.known_constraints():
        names = ", ".join(c.name for c in objectives.known_constraints())
        return "evolution", f"rule 3: a budget on a known cost ({names})"
    if categorical:
        return "tpe", "rule 4: the space has an unordered Choice"
    if small and _has_gp_deps():
        return "gp", (
            f"rule 5: {n_trials} trials (<= {_GP_MAX_TRIALS}) over {d} parameters "
            f"(<= {_GP_MAX_DIM})"
        )
    if n_trials >= _NSGA2_MIN_TRIALS:
        return "nsga2", f"rule 6: {n_trials} trials (>= {_NSGA2_MIN_TRIALS})"
    return "tpe", f"rule 6: {n_trials} trials (< {_NSGA2_MIN_TRIALS})"


def _known_costs_cheap(objectives: ObjectiveSet | None) -> bool:
    """Whether no known-cost function applies each Config to a model copy: a
    :func:`~tradeoff.objectives.model_cost` says so with ``fn.analytic``; a plain function
    (no such attribute) is taken as cheap."""
    if objectives is None:
        return True
    return all(getattr(o.fn, "analytic", True) for o in objectives.objectives if o.fn is not None)


def make_sampler(
    optimizer: str | optuna.samplers.BaseSampler,
    *,
    space: SearchSpace,
    objectives: ObjectiveSet,
    n_trials: int,
    n_workers: int = 1,
    seed: int | None = None,
) -> optuna.samplers.BaseSampler:
    """Build the sampler for ``optimizer``; a ``BaseSampler`` is returned unchanged.

    Args:
        optimizer: A name from :data:`OPTIMIZERS`, what ``"auto"`` resolved to (a name or
            :data:`HANDOVER`), or a sampler.
        space: The search space (used by ``"auto"``).
        objectives: The validated objectives (their number shapes some presets).
        n_trials: The evaluation budget.
        n_workers: Trials evaluated at once; TPE then uses the constant liar for diversity.
        seed: Seed for the sampler's random choices.
    """
    if optimizer != HANDOVER:  # what "auto" resolved to, replayed from a study (optimize)
        check_optimizer(optimizer)
    if isinstance(optimizer, optuna.samplers.BaseSampler):
        return optimizer
    name = optimizer
    if optimizer == "auto":
        name = auto_optimizer(space, n_trials=n_trials, objectives=objectives)
    build = functools.partial(
        _build,
        space=space,
        objectives=objectives,
        n_trials=n_trials,
        n_workers=n_workers,
        seed=seed,
    )
    if name == HANDOVER:
        from tradeoff.search._handover import HandoverSampler

        return HandoverSampler(build("mobo"), build("evolution"), switch_at=_HANDOVER_AT)
    return build(name)


def _build(
    name: str,
    *,
    space: SearchSpace,
    objectives: ObjectiveSet,
    n_trials: int,
    n_workers: int,
    seed: int | None,
) -> optuna.samplers.BaseSampler:
    """The preset sampler of one name of :data:`OPTIMIZERS` (not ``"auto"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "nsga2":
            population = max(8, min(50, n_trials // 4))
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        if name == "mobo":
            if not _has_bo_deps():
                raise ImportError("optimizer='mobo' needs BoTorch: pip install 'tradeoff[bayes]'.")
            from tradeoff.search._mobo import MOBOSampler

            startup = max(5, min(10, n_trials // 10))
            return MOBOSampler(
                seed=seed, space=space, objectives=objectives, n_startup_trials=startup
            )
        if name == "evolution":
            from tradeoff.search._evolution import EvolutionSampler

            return EvolutionSampler(
                seed=seed, space=space, objectives=objectives, n_trials=n_trials
            )
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                constant_liar=n_workers > 1,
                n_startup_trials=max(5, min(11, n_trials // 10)),
            )
        if not _has_gp_deps():
            raise ImportError(
                "optimizer='gp' needs torch and scipy: pip install 'tradeoff[torch]' scipy."
            )
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=max(5, min(10, n_trials // 10))
        )


def _has_bo_deps() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "botorch"))


def _has_gp_deps() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "scipy"))
