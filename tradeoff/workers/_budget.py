"""What a study's trials count for: ``n_trials`` counts Configs (a Config's first evaluation,
however it ended: at the first rung, or at the top for an initial Config), not promotions and
not trials given up; claims order drivers sharing a study."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from tradeoff._study import ATTR_FIDELITY, trial_status

# Statuses of FAIL trials that do not use up the evaluation budget.
NOT_COUNTED = ("infeasible", "stale", "interrupted", "surplus")


def count_done(study: optuna.Study) -> int:
    """Trials that used up budget: completed, pruned, or failed in evaluation."""
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def counts(t: FrozenTrial) -> bool:
    """Whether ``t`` used up budget (a Config's first evaluation, however it ended)."""
    if promoted(t):
        return False  # the budget counts Configs, not evaluations
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and not given_up(t)


def given_up(t: FrozenTrial) -> bool:
    """Whether ``t`` ended without using budget: lost, interrupted, surplus, or rejected as
    infeasible before it ran."""
    return t.state == TrialState.FAIL and trial_status(t) in NOT_COUNTED


def claims(trials: Sequence[FrozenTrial], *, up_to: int | None = None) -> int:
    """Trials holding budget (done, or running anywhere), optionally up to a trial number."""
    return sum(
        (counts(t) or (t.state == TrialState.RUNNING and not promoted(t)))
        and (up_to is None or t.number <= up_to)
        for t in trials
    )


def promoted(t: FrozenTrial) -> bool:
    """Whether ``t`` re-evaluates a Config at a higher rung (a promotion)."""
    return "promoted_from" in (t.user_attrs.get(ATTR_FIDELITY) or {})
