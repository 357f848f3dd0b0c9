"""The progress bar's running front: what it shows equals a computation from scratch."""

import numpy as np
import pytest

from tradeoff import _pareto
from tradeoff.workers._front import Front


@pytest.mark.parametrize("reference", [None, (2.0, -1.0, 3.0)])
def test_running_front_and_hypervolume_equal_a_computation_from_scratch(reference):
    directions = ("minimize", "maximize", "minimize")
    rng = np.random.default_rng(0)
    front, seen = Front(directions, reference), []
    for step in range(300):
        if seen and rng.random() < 0.2:
            values = list(seen[int(rng.integers(len(seen)))])  # a duplicate
        else:
            values = [float(v) for v in rng.integers(0, 6, size=3) / 5]  # many ties
        if step % 50 == 49:
            values = [10.0, -10.0, 10.0]  # worse than all: moves a derived reference only
        front.add(values)
        seen.append(values)
        y = _pareto.to_minimization(np.array(seen), directions)
        best = y[_pareto.non_dominated(y)]
        if reference is None:
            ref = _pareto.derive_reference(np.stack([y.max(axis=0), y.min(axis=0)]))
        else:
            ref = _pareto.to_minimization(np.array(reference), directions)
        size, hv = front.stats()
        assert size == len(best)  # duplicates count, as in non_dominated
        assert hv == pytest.approx(_pareto.hypervolume(best, ref), rel=1e-12, abs=1e-12)
