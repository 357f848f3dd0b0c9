"""HandoverSampler: one sampler for the first trials of a study, another one after them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


class HandoverSampler(BaseSampler):
    """Proposes with ``first`` until the study has ``switch_at`` completed trials, then with
    ``then``.

    The choice is made from the study's trials when a trial starts (completed trials, failed
    ones not counted), never from memory, so a study resumed from storage with a new
    sampler carries on with the right one. Each trial keeps the sampler it started with, even
    if trials complete while it is being sampled. ``then`` should rebuild its state from the
    study's trials, as :class:`~tradeoff.search.EvolutionSampler` does: it then starts from
    everything ``first`` found (e.g. Bayesian optimization for a few hundred trials, then
    evolution for a large budget).

    Args:
        first: The sampler of the first ``switch_at`` completed trials.
        then: The sampler afterwards.
        switch_at: Completed trials after which ``then`` takes over.

    Raises:
        TypeError, ValueError: an argument is invalid (the message says which).
    """

    def __init__(self, first: BaseSampler, then: BaseSampler, *, switch_at: int) -> None:
        for name, sampler in (("first", first), ("then", then)):
            if not isinstance(sampler, BaseSampler):
                raise TypeError(
                    f"{name} must be an optuna.samplers.BaseSampler, got {type(sampler).__name__}."
                )
        if isinstance(switch_at, bool) or not isinstance(switch_at, int) or switch_at < 0:
            raise ValueError(f"switch_at must be an integer >= 0, got {switch_at!r}.")
        self.first, self.then, self.switch_at = first, then, switch_at
        # Trial -> its sampler, for the calls after the first one on the same trial.
        self._chosen: dict[tuple[str, int], BaseSampler] = {}

    def __str__(self) -> str:
        return f"{type(self.first).__name__} -> {type(self.then).__name__} at {self.switch_at}"

    def sampler_for(self, study: Study, trial: FrozenTrial) -> BaseSampler:
        """The sampler of ``trial``: ``first`` while the study has fewer than ``switch_at``
        completed trials when the trial starts, else ``then``."""
        key = (study.study_name, trial.number)
        if key not in self._chosen:
            self._chosen[key] = self._choose(study)
        return self._chosen[key]

    def _choose(self, study: Study) -> BaseSampler:
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        return self.first if done < self.switch_at else self.then

    # BaseSampler ---------------------------------------------------------------------------
    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.sampler_for(study, trial).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.sampler_for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler_for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        sampler = self.sampler_for(study, trial)
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        sampler = self._chosen.pop((study.study_name, trial.number), None) or self._choose(study)
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.first.reseed_rng()
        self.then.reseed_rng()
