"""Who proposes: optimizers, all of them Optuna samplers."""

from tradeoff.search._presets import OPTIMIZERS, auto_optimizer, check_optimizer, make_sampler

__all__ = ["OPTIMIZERS", "auto_optimizer", "check_optimizer", "make_sampler"]
