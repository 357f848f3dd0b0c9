import math

import pytest

from tradeoff.objectives import Constraint, Objective, ObjectiveSet


def test_unknown_direction():
    with pytest.raises(ValueError, match="unknown direction 'lower'"):
        Objective("error", "lower")


def test_duplicate_objective_names():
    with pytest.raises(ValueError, match=r"Duplicate objective/metric names: \['error'\]"):
        ObjectiveSet.build([Objective("error"), Objective("error", "maximize")])


def test_constraint_unknown_operator():
    with pytest.raises(ValueError, match="unknown operator '<'"):
        Constraint("size", "<", 4.0)


def test_constraint_on_unknown_name_says_how_to_fix():
    with pytest.raises(ValueError, match=r"unknown name 'size_mb'.*metrics=\['size_mb'\]"):
        ObjectiveSet.build([Objective("error")], [Constraint("size_mb", "<=", 4.0)])


def test_constraint_on_declared_metric_is_accepted():
    objs = ObjectiveSet.build([Objective("error")], [Constraint("mem", "<=", 1.0)], ["mem"])
    assert objs.measured == ["error", "mem"]


def test_no_objectives():
    with pytest.raises(ValueError, match="at least one objective"):
        ObjectiveSet.build([])


def test_violation_sign_convention():
    assert Constraint("s", "<=", 4.0).violation(3.0) == -1.0
    assert Constraint("s", "<=", 4.0).violation(5.0) == 1.0
    assert Constraint("acc", ">=", 0.9).violation(0.95) == pytest.approx(-0.05)
    assert Constraint("acc", ">=", 0.9).violation(0.8) == pytest.approx(0.1)


def test_known_values_and_measured_split():
    objs = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=lambda c: c["w"] * 2.0)],
        [Constraint("size", "<=", 4.0)],
    )
    assert objs.measured == ["error"]
    assert objs.known_values({"w": 3}) == {"size": 6.0}
    assert [c.label for c in objs.known_constraints()] == ["size<=4"]


def test_known_fn_returning_nan_is_an_error():
    objs = ObjectiveSet.build([Objective("size", fn=lambda c: math.nan)])
    with pytest.raises(ValueError, match="not a number"):
        objs.known_values({})


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (None, "returned NoneType"),
        (0.5, "returned float"),
        ({"error": float("nan")}, "error=nan"),
        ({"error": float("inf")}, "error=inf"),
        ({"error": "low"}, "error='low'"),
        ({}, r"missing \['error'\]"),
        ({"error": 0.1, "latency": 3.0}, r"unexpected \['latency'\].*metrics=\[...\]"),
        ({"error": 0.1, "size": 3.0}, r"computed by Objective\(fn=...\)"),
    ],
)
def test_check_metrics_reasons(returned, match):
    objs = ObjectiveSet.build([Objective("error"), Objective("size", fn=lambda c: 1.0)])
    with pytest.raises(ValueError, match=match):
        objs.check_metrics(returned)


def test_spec_roundtrip_keeps_order_and_references():
    objs = ObjectiveSet.build(
        [Objective("acc", "maximize", reference=0.5), Objective("size", fn=len)],
        [Constraint("size", "<=", 3.0)],
        ["mem"],
    )
    back = ObjectiveSet.from_dict(objs.to_dict())
    assert back.names == ["acc", "size"]
    assert back.directions == ["maximize", "minimize"]
    assert back.objectives[0].reference == 0.5
    assert back.constraints == objs.constraints
    assert back.metrics == ("mem",)
