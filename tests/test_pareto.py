import itertools

import numpy as np
import pytest

from tradeoff._pareto import derive_reference, hypervolume, non_dominated, to_minimization


def brute_force_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact union volume on the grid spanned by every point coordinate (small inputs only)."""
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    axes = [np.unique(np.append(pts[:, j], ref[j])) for j in range(len(ref))]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lower = np.array([axes[j][i] for j, i in enumerate(cell)])
        upper = np.array([axes[j][i + 1] for j, i in enumerate(cell)])
        if np.any(np.all(pts <= lower, axis=1)):
            total += float(np.prod(upper - lower))
    return total


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_matches_brute_force(d, seed):
    rng = np.random.default_rng(seed)
    n = {1: 5, 2: 12, 3: 9, 4: 6}[d]
    points = rng.random((n, d))
    if seed % 2:  # ties and duplicates
        points = np.round(points * 4) / 4
        points = np.vstack([points, points[:2]])
    ref = np.full(d, 1.1)
    assert hypervolume(points, ref) == pytest.approx(brute_force_hypervolume(points, ref))


def test_hypervolume_matches_botorch():
    torch = pytest.importorskip("torch")
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    rng = np.random.default_rng(7)
    points = rng.random((40, 3))
    ref = np.array([1.2, 1.1, 1.3])
    # BoTorch maximizes: negate points and reference.
    expected = Hypervolume(torch.tensor(-ref)).compute(torch.tensor(-points))
    assert hypervolume(points, ref) == pytest.approx(expected)


def test_hypervolume_known_values():
    assert hypervolume(np.array([[0.0, 0.0]]), np.array([1.0, 2.0])) == 2.0
    assert hypervolume(np.array([[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]]), np.ones(2)) == 0.25
    assert hypervolume(np.array([[2.0, 0.0]]), np.ones(2)) == 0.0  # beyond the reference


def test_non_dominated_mask():
    y = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2]], dtype=float)
    assert non_dominated(y).tolist() == [True, True, False, True, True]


def test_to_minimization_negates_maximized_columns():
    y = to_minimization(np.array([[0.9, 3.0]]), ["maximize", "minimize"])
    assert y.tolist() == [[-0.9, 3.0]]


def test_derive_reference_is_worse_than_every_point():
    y = np.array([[0.0, 5.0], [1.0, 5.0]])
    ref = derive_reference(y)
    assert np.all(ref > y.max(axis=0))
    assert hypervolume(y, ref) > 0
