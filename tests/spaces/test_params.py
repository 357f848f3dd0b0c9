import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tradeoff.spaces import Choice, Float, Int, Ordinal


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Float(1.0, 1.0), "low < high"),
        (lambda: Float(2.0, 1.0), "low < high"),
        (lambda: Float(0.0, 1.0, log=True), "low > 0"),
        (lambda: Float(-1.0, 1.0, log=True), "low > 0"),
        (lambda: Float(0.0, float("inf")), "finite"),
        (lambda: Float(0.1, 1.0, log=True, step=0.1), "drop one"),
        (lambda: Int(3, 3), "low < high"),
        (lambda: Int(0, 8, log=True), "low > 0"),
        (lambda: Int(1, 8, step=0), "step"),
        (lambda: Ordinal([]), "at least 2"),
        (lambda: Ordinal([4]), "at least 2"),
        (lambda: Ordinal([2, 4, 4]), "distinct.*4"),
        (lambda: Choice([]), "at least 1"),
        (lambda: Choice(["lora", "ia3", "lora"]), "distinct.*lora"),
    ],
)
def test_bad_parameters_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_non_json_values_rejected():
    with pytest.raises(TypeError, match="storable as JSON"):
        Choice([object(), 1])
    with pytest.raises(TypeError, match="list of values"):
        Ordinal("248")
    with pytest.raises(TypeError, match="integer"):
        Int(0.5, 3)


def test_ordinal_stores_its_levels_themselves():
    bits = Ordinal([2, 3, 4, 8])  # uneven: a categorical of the levels
    assert bits.distribution() == CategoricalDistribution((2, 3, 4, 8))
    assert [bits.encode(v) for v in (2, 3, 4, 8)] == [2, 3, 4, 8]
    assert [bits.decode(v) for v in (2, 3, 4, 8)] == [2, 3, 4, 8]
    assert bits.index(8) == 3
    assert bits.contains(4) and not bits.contains(5)
    with pytest.raises(ValueError, match="not one of the Ordinal levels"):
        bits.encode(5)
    with pytest.raises(ValueError, match="not one of the Ordinal levels"):
        bits.decode(1)  # an index is no level
    sparsity = Ordinal([0.0, 0.25, 0.5, 0.75])
    assert sparsity.distribution() == CategoricalDistribution((0.0, 0.25, 0.5, 0.75))
    assert sparsity.decode(0.5) == 0.5 and type(sparsity.encode(0)) is float  # the level's type


@pytest.mark.parametrize(
    ("values", "dist"),
    [
        ([2, 3, 4], IntDistribution(2, 4)),
        ([4, 6, 8], IntDistribution(4, 8, step=2)),
        ([8, 6, 4], IntDistribution(4, 8, step=2)),  # descending: still ordered
        ([4, 8], IntDistribution(4, 8, step=4)),
        ([0, 1, 2], IntDistribution(0, 2)),  # the same as the index encoding
    ],
)
def test_evenly_stepped_integer_levels_are_an_int_distribution(values, dist):
    levels = Ordinal(values)
    assert levels.distribution() == dist
    assert [levels.decode(levels.encode(v)) for v in values] == values
    assert [levels.encode(v) for v in values] == values


@pytest.mark.parametrize(
    "values",
    [[2, 3, 4, 8], [0.0, 0.5], [1.0, 2.0, 3.0], [False, True], ["s", "m", "l"], [None, "a"]],
)
def test_other_levels_are_a_categorical_of_the_levels(values):
    levels = Ordinal(values)
    assert levels.distribution() == CategoricalDistribution(values)
    for v in values:
        stored = levels.encode(v)
        assert type(stored) is type(v) and levels.decode(stored) == v


def test_levels_optuna_cannot_tell_apart_keep_their_index():
    # A categorical holding True and 1 finds 1 at True's index (Optuna's to_internal_repr).
    levels = Ordinal([1, True, 0.5])
    assert levels.distribution() == IntDistribution(0, 2)
    assert [levels.encode(v) for v in (1, True, 0.5)] == [0, 1, 2]
    assert levels.decode(1) is True


def test_indexed_ordinal_reads_and_writes_level_indices():
    bits = Ordinal([2, 3, 4, 8]).indexed()
    assert bits.distribution() == IntDistribution(0, 3)
    assert [bits.decode(i) for i in range(4)] == [2, 3, 4, 8]
    assert bits.encode(8) == 3 and bits.contains(4) and not bits.contains(3.5)
    assert bits == Ordinal([2, 3, 4, 8]).indexed() != Ordinal([2, 3, 4]).indexed()


def test_bool_is_not_confused_with_int_levels():
    levels = Ordinal([0, 1])
    assert not levels.contains(True)
    assert Choice([True, False]).contains(True)
    assert not Choice([True, False]).contains(1)


def test_distributions():
    assert Float(1e-4, 1e-1, log=True).distribution() == FloatDistribution(1e-4, 1e-1, log=True)
    assert Int(2, 8, step=2).distribution() == IntDistribution(2, 8, step=2)
    assert Choice(["a", "b"]).distribution() == CategoricalDistribution(("a", "b"))


@pytest.mark.parametrize(
    "param",
    [
        Float(0.0, 1.0),
        Float(1e-3, 10.0, log=True),
        Float(0.0, 1.0, step=0.25),
        Int(2, 9),
        Int(1, 64, log=True),
        Int(0, 10, step=5),
        Ordinal([2, 3, 4, 8]),
        Ordinal([4, 6, 8]),
        Ordinal([0.0, 0.25, 0.5]),
        Ordinal([2, 3, 4, 8]).indexed(),
        Choice(["a", "b", None]),
    ],
)
def test_sample_is_contained_and_seeded(param):
    draws = [param.sample(np.random.default_rng(s)) for s in range(50)]
    assert all(param.contains(v) for v in draws)
    assert draws == [param.sample(np.random.default_rng(s)) for s in range(50)]
    assert len({repr(v) for v in draws}) > 1


def test_contains_rejects_out_of_range_and_wrong_types():
    assert not Float(0.0, 1.0).contains(1.5)
    assert not Float(0.0, 1.0).contains(float("nan"))
    assert not Float(0.0, 1.0).contains("0.5")
    assert not Int(0, 10, step=5).contains(3)
    assert not Int(0, 10).contains(2.0)
