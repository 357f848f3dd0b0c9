"""The hedge of :class:`~tradeoff.search._mobo.MOBOSampler`: every third proposal after the
startup comes from multivariate TPE over the same trials instead of the GP model.

Why: a GP is a smooth, stationary model. On a deceptive, multimodal problem it can lock onto a
local front and keep refining it: on paretobench's WFG9 (d = 8, 2 objectives, 100 evaluations)
mobo's Pareto set sat on a front 0.4 from the true one, its last parameter pinned at the
upper bound, and its hypervolume was 0.30 of the front's at two of three seeds, below random
search (0.44), where multivariate TPE reached 0.77. TPE's density model keeps sampling around
every good point, wherever it lies, and its proposals show the GP the regions it wrote off.
With one proposal in three from TPE, mobo reached 0.72 / 0.28 / 0.84 there (seeds 0-2). What
did not help: one random proposal in five (0.32 / 0.25 / 0.59); TPE's odds set by its recent
hypervolume gains, at least 10% (0.31 / 0.29 / 0.52: TPE's single proposals rarely extend the
front at once, while the GP's refinements of the local front do, by a little, so TPE stayed
at the floor); Kumaraswamy input warping of the GP (0.44 / 0.30 / 0.67). One proposal in two
from TPE: 0.67 / 0.26 / 0.67. ``benchmarks/suites.py`` measures what it costs elsewhere.

The share is fixed by trial number (deterministic, the same after a resume and with parallel
workers). A trial's proposer is stored on it (system attribute :data:`ARM_ATTR`): a TPE
proposal that violates a known-cost constraint, or repeats a tried Config of a discrete space,
is replaced by the model's.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from tradeoff.search._bo_data import KnownCosts, Observations, untried_mask
from tradeoff.search._bo_encode import Encoding

Arm = Literal["model", "tpe"]
ARM_ATTR = "tradeoff.mobo_arm"
TPE_EVERY = 3


def arm(trial: FrozenTrial) -> Arm:
    """The proposer drawn for ``trial``: TPE for every :data:`TPE_EVERY`-th trial number."""
    return "tpe" if trial.number % TPE_EVERY == TPE_EVERY - 1 else "model"


def record(study: Study, trial: FrozenTrial, proposer: Arm) -> None:
    """Store which proposer made ``trial``'s proposal."""
    study._storage.set_trial_system_attr(trial._trial_id, ARM_ATTR, proposer)


def tpe_proposal(
    study: Study,
    trial: FrozenTrial,
    search_space: dict[str, BaseDistribution],
    enc: Encoding,
    known: KnownCosts | None,
    data: Observations,
    seed: int,
) -> dict[str, Any] | None:
    """Multivariate TPE's proposal over the study's trials (running ones as constant liars),
    or ``None`` where it would waste a trial: it violates a known-cost constraint, or repeats
    a tried point of a discrete space."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        tpe = TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=0)
        params = tpe.sample_relative(study, trial, search_space)
    if set(params) != set(search_space):
        return None
    x = enc.encode(params)[None, :]
    if known is not None and known.has_constraints and not known.evaluate(x)[1][0]:
        return None
    if enc.discrete and not untried_mask(enc, data.tried, x)[0]:
        return None
    return params
