"""What is measured: objectives, constraints and cost functions."""

from tradeoff.objectives._objective import Constraint, Objective, ObjectiveSet

__all__ = ["Constraint", "Objective", "ObjectiveSet"]
