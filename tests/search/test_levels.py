"""Ordinal levels stay ordered for tradeoff's samplers when the study stores them as a
categorical of the levels (sparsities, uneven bit-widths), and for ``auto``'s rule."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tradeoff.objectives import Objective, ObjectiveSet
from tradeoff.search import auto_optimizer
from tradeoff.search._bo_encode import Encoding
from tradeoff.search._evolution import EvolutionSampler
from tradeoff.search._levels import LevelView, ordered_choices
from tradeoff.search._operators import NeighbourMutation
from tradeoff.spaces import Choice, Float, Ordinal, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPARSITY = [0.0, 0.25, 0.5, 0.75]
SPACE = SearchSpace(
    {
        "s": Ordinal(SPARSITY),
        "bits": Ordinal([2, 3, 4, 8]),
        "heads": Ordinal([4, 6, 8]),
        "method": Choice(["a", "b", "c"]),
        "x": Float(0.0, 1.0),
    }
)


def test_ordinals_stored_as_categoricals_are_the_ordered_ones():
    dists = SPACE.distributions()
    assert isinstance(dists["s"], CategoricalDistribution)
    assert isinstance(dists["heads"], IntDistribution)  # ordered for every sampler already
    assert ordered_choices(SPACE, dists) == {"s", "bits"}
    assert ordered_choices(None, dists) == frozenset()  # without the space: no order known
    # A categorical that is not the Ordinal's own levels (another space's) is not ordered.
    assert ordered_choices(SPACE, {"s": CategoricalDistribution([0.75, 0.5])}) == frozenset()


def test_mobo_encodes_ordinal_levels_as_a_monotone_discrete_column():
    dists = SPACE.distributions()
    enc = Encoding(dists, ordered=ordered_choices(SPACE, dists))
    j = enc.names.index("s")
    base = SPACE.encode({"s": 0.0, "bits": 2, "heads": 4, "method": "a", "x": 0.5})
    units = [enc.encode({**base, "s": level})[j] for level in SPARSITY]
    assert units == sorted(units) and len(set(units)) == 4  # monotone in the level
    assert np.allclose(units, [0, 1 / 3, 2 / 3, 1])  # evenly spaced, as level indices were
    assert j in enc.discrete_dims and j not in enc.cat_dims  # not one-hot
    assert enc.names.index("method") in enc.cat_dims  # a Choice stays unordered
    for u, level in zip(units, SPARSITY):  # decoding gives the stored level back
        point = enc.encode(base)
        point[j] = u + 0.05
        assert enc.decode(point)["s"] == level
    plain = Encoding(dists)  # without the order (a plain Optuna study): one-hot
    assert j in plain.cat_dims


def test_evolution_sees_ordinal_levels_as_indices():
    dists = SPACE.distributions()
    view = LevelView.of(SPACE, dists)
    assert view.dists["s"] == IntDistribution(0, 3) and view.dists["bits"] == IntDistribution(0, 3)
    assert view.dists["heads"] == dists["heads"] and view.dists["method"] == dists["method"]
    params = {"s": 0.5, "bits": 8, "heads": 6, "method": "b", "x": 0.25}
    seen = view.view(params)
    assert seen == {"s": 2, "bits": 3, "heads": 6, "method": "b", "x": 0.25}
    assert [view.view({"s": level})["s"] for level in SPARSITY] == [0, 1, 2, 3]
    assert view.to_stored(seen) == params
    # One mutation step of the view is one level.
    mutation = NeighbourMutation(prob=1.0, jump_prob=0.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        child = view.to_stored(mutation(seen, distributions=view.dists, rng=rng))
        assert child["s"] in (0.25, 0.75) and child["bits"] == 4 and child["heads"] in (4, 8)


def _population(study: optuna.Study, dists: dict) -> None:
    """Eight completed trials, every one at sparsity 0.25."""
    for i in range(8):
        study.add_trial(
            optuna.trial.create_trial(
                params={"s": 0.25, "x": i / 8},
                distributions=dists,
                values=[i / 8, 1 - i / 8],
            )
        )


@pytest.mark.parametrize(("space", "ordered"), [(True, True), (False, False)])
def test_evolution_mutates_a_sparsity_to_its_neighbouring_levels(space, ordered):
    levels = SearchSpace({"s": Ordinal(SPARSITY), "x": Float(0.0, 1.0)})
    dists = levels.distributions()
    sampler = EvolutionSampler(
        seed=0,
        space=levels if space else None,
        population_size=8,
        crossover_prob=0.0,
        mutation=NeighbourMutation(prob=1.0, jump_prob=0.0),
    )
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    _population(study, dists)
    proposed = set()
    for _ in range(30):
        trial = study.ask(dists)
        proposed.add(trial.params["s"])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # the population stays
    if ordered:
        assert proposed == {0.0, 0.5}  # one level from 0.25, never 0.75
    else:  # without the space the levels are unordered choices
        assert 0.75 in proposed


def test_auto_keys_its_categorical_rule_on_choice_not_on_distributions():
    pytest.importorskip("botorch")
    objectives = ObjectiveSet.build([Objective("a"), Objective("b")])
    ordinal = SearchSpace({"s": Ordinal(SPARSITY), "bits": Ordinal([2, 3, 4, 8])})
    assert all(isinstance(d, CategoricalDistribution) for d in ordinal.distributions().values())
    assert auto_optimizer(ordinal, n_trials=50, objectives=objectives) == "mobo"
    choice = SearchSpace({"s": Ordinal(SPARSITY), "op": Choice(["conv", "pool"])})
    assert auto_optimizer(choice, n_trials=50, objectives=objectives) == "tpe"
    single = ObjectiveSet.build([Objective("a")])
    uniform = SearchSpace({"s": Ordinal(SPARSITY), "x": Float(0.0, 1.0)})
    assert auto_optimizer(uniform, n_trials=50, objectives=single) == "gp"


def test_float_distribution_in_the_plain_encoding_is_untouched():
    enc = Encoding({"x": FloatDistribution(0.0, 1.0)}, ordered={"x"})  # not a categorical
    assert enc.columns[0].kind == "continuous"
