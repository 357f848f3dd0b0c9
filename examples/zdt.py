"""ZDT1 (two objectives, 6 variables), the analytic main job.

Run it with ``tradeoff run examples/zdt.py`` (or ``make run``); a search file defines
``space``, ``objectives`` and ``evaluate`` (optionally ``constraints`` and ``metrics``).
The true Pareto front is ``f2 = 1 - sqrt(f1)`` for ``f1`` in [0, 1], reached when
``x1..x5 = 0``.
"""

from __future__ import annotations

import math

from tradeoff.objectives import Constraint, Objective
from tradeoff.spaces import Float, SearchSpace

N_VARS = 6

space = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(N_VARS)})
objectives = [Objective("f1", reference=1.1), Objective("f2", reference=11.0)]
# A measured constraint: trials with f2 above 6 complete but count as infeasible.
constraints = [Constraint("f2", "<=", 6.0)]


def evaluate(config: dict[str, float]) -> dict[str, float]:
    x = [config[f"x{i}"] for i in range(N_VARS)]
    g = 1.0 + 9.0 * sum(x[1:]) / (N_VARS - 1)
    return {"f1": x[0], "f2": g * (1.0 - math.sqrt(x[0] / g))}


if __name__ == "__main__":
    import tradeoff

    result = tradeoff.optimize(
        evaluate, space, objectives=objectives, constraints=constraints, n_trials=60, seed=0
    )
    print(result.summary())
    print(result.pareto)
