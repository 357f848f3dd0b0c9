"""benchmarks/gptq_vs_rtn.py's comparison of two methods' fronts over the same Configs (the
SmolLM2 run itself takes minutes: ``test_benchmarks.py::test_mnist_gptq_quick`` runs the same
comparison end to end on the MNIST job)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gvr():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gptq_vs_rtn
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return gptq_vs_rtn


def _points(rows):
    """Entries as same_configs builds them: (size, rtn value, gptq value) per Config, the same
    size for both methods unless a fourth item gives GPTQ's."""
    return [
        {
            "sizes": {"rtn": row[0], "gptq": row[3] if len(row) > 3 else row[0]},
            "values": {"rtn": row[1], "gptq": row[2]},
            "runs": ["rtn"],
            "config": {"i": i},
        }
        for i, row in enumerate(rows)
    ]


def test_fronts_unmatched_and_hypervolume(gvr):
    # KL (minimized) against MB: GPTQ is better at 10 and 30 MB, worse at 20 MB.
    points = _points([(10, 0.5, 0.3), (20, 0.2, 0.4), (30, 0.1, 0.05), (40, 0.2, 0.2)])
    rtn, gptq = (gvr.front(points, m, maximize=False) for m in ("rtn", "gptq"))
    assert [(p["size"], p["value"]) for p in rtn] == [(10, 0.5), (20, 0.2), (30, 0.1)]
    assert [(p["size"], p["value"]) for p in gptq] == [(10, 0.3), (30, 0.05)]
    out = gvr.unmatched(rtn, gptq, maximize=False)
    assert [(p["size"], p["rtn"], p["gptq_best"]) for p in out["unmatched"]] == [(20, 0.2, 0.3)]
    assert out["unmatched"][0]["shortfall"] == pytest.approx(0.1)
    assert not out["dominates_in_range"] and out["below_gptq_range"] == []
    # Areas up to (KL 1, 50 MB): rectangles of the staircase.
    assert gvr.hv2(rtn, (1.0, 50), False) == pytest.approx(0.5 * 40 + 0.3 * 30 + 0.1 * 20)
    assert gvr.hv2(gptq, (1.0, 50), False) == pytest.approx(0.7 * 40 + 0.25 * 20)


def test_maximized_quality_and_points_below_range(gvr):
    points = _points([(5, 0.4, 0.1), (7, 0.6, 0.7), (9, 0.9, 0.95)])
    rtn, gptq = (gvr.front(points, m, maximize=True) for m in ("rtn", "gptq"))
    gptq = [p for p in gptq if p["size"] > 5]  # as if GPTQ's search never went below 7 KB
    out = gvr.unmatched(rtn, gptq, maximize=True)
    assert out["dominates_in_range"] and out["gptq_smallest"] == 7
    assert out["below_gptq_range"] == [{"size": 5, "rtn": 0.4}]
    stats = gvr.per_config(points, maximize=True)
    assert (stats["better"], stats["tied"], stats["worse"]) == (2, 0, 1)
    assert stats["worse_configs"][0]["by"] == pytest.approx(0.3)
    assert stats["same_size"] == 3


def test_sizes_by_method(gvr):
    # GPTQ leaves more pruned weights at zero here: the same Config is smaller with GPTQ, so
    # its front point at 9 KB matches RTN's at 10 KB though both Configs hold 0.9.
    points = _points([(10, 0.9, 0.9, 9.0), (12, 0.95, 0.94)])
    rtn, gptq = (gvr.front(points, m, maximize=True) for m in ("rtn", "gptq"))
    assert [p["size"] for p in gptq] == [9.0, 12]
    out = gvr.unmatched(rtn, gptq, maximize=True)
    assert [(p["size"], p["gptq_best"]) for p in out["unmatched"]] == [(12, 0.94)]
    stats = gvr.per_config(points, maximize=True)
    assert (stats["gptq_smaller"], stats["same_size"], stats["gptq_larger"]) == (1, 1, 0)
    assert stats["tied"] == 1 and stats["worse"] == 1


def test_describe(gvr):
    config = {
        "arch.model.layers.0.keep": False, "quant.model.layers.0.bits": 8,
        "prune.fc1.sparsity": 0.5, "prune.fc1.pattern": "channel",
    }  # fmt: skip
    assert gvr.describe(config) == ["all 8-bit", "channel pruning", "blocks dropped"]
    assert gvr.describe({"quant.a.bits": 3, "quant.b.bits": 8}) == ["min bits 3"]
