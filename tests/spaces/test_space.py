import numpy as np
import optuna
import pytest

from tradeoff.spaces import Choice, Float, Int, Ordinal, SearchSpace


@pytest.fixture
def space():
    return SearchSpace(
        {
            "x": Float(0.0, 1.0),
            "depth": Int(2, 8),
            "bits": Ordinal([2, 3, 4, 8]),
            "method": Choice(["lora", "ia3"]),
        }
    )


def test_empty_space_is_rejected():
    with pytest.raises(ValueError, match="search space is empty"):
        SearchSpace({})


def test_bad_entries_are_rejected():
    with pytest.raises(TypeError, match="expected Float, Int, Ordinal or Choice"):
        SearchSpace({"x": (0, 1)})
    with pytest.raises(ValueError, match="Invalid parameter name"):
        SearchSpace({"a b": Float(0, 1)})


def test_decode_encode_roundtrip(space):
    config = {"x": 0.25, "depth": 5, "bits": 8, "method": "ia3"}
    params = space.encode(config)
    assert params["bits"] == 8  # the level itself, as the study stores it
    assert space.decode(params) == config


def test_decode_rejects_mismatched_params(space):
    with pytest.raises(ValueError, match=r"missing \['method'\]"):
        space.decode({"x": 0.1, "depth": 3, "bits": 0})


def test_sample_contains_and_seed(space):
    a = space.sample(np.random.default_rng(3))
    assert space.contains(a)
    assert a == space.sample(3)
    assert not space.contains({**a, "bits": 5})
    assert not space.contains({k: v for k, v in a.items() if k != "x"})


def test_optuna_trials_decode_into_configs(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask(space.distributions())
        config = space.decode(trial.params)
        assert space.contains(config)
        assert config["bits"] in (2, 3, 4, 8)
        assert trial.params["bits"] == config["bits"]  # what optuna-dashboard shows
        study.tell(trial, 0.0)


def test_encode_like_keeps_a_stored_index_encoding_per_parameter():
    from optuna.distributions import CategoricalDistribution, IntDistribution

    space = SearchSpace(
        {
            "bits": Ordinal([2, 3, 4, 8]),
            "sparsity": Ordinal([0.0, 0.25, 0.5]),
            "heads": Ordinal([4, 6, 8]),
            "x": Float(0.0, 1.0),
        }
    )
    own = space.distributions()
    assert own["bits"] == CategoricalDistribution([2, 3, 4, 8])
    assert own["heads"] == IntDistribution(4, 8, step=2)
    # A study written before levels were stored: bits and heads by index, sparsity by level.
    space.encode_like(
        {
            "bits": IntDistribution(0, 3),
            "sparsity": own["sparsity"],
            "heads": IntDistribution(0, 2),
            "x": own["x"],
        }
    )
    dists = space.distributions()
    assert dists["bits"] == IntDistribution(0, 3) and dists["heads"] == IntDistribution(0, 2)
    assert dists["sparsity"] == own["sparsity"] and dists["x"] == own["x"]
    config = {"bits": 8, "sparsity": 0.25, "heads": 6, "x": 0.5}
    assert space.encode(config) == {"bits": 3, "sparsity": 0.25, "heads": 1, "x": 0.5}
    assert space.decode({"bits": 3, "sparsity": 0.25, "heads": 1, "x": 0.5}) == config
    assert space["bits"] == Ordinal([2, 3, 4, 8])  # the parameters are unchanged
    space.encode_like({})  # every parameter's own encoding again
    assert space.distributions() == own and space.encode(config) == config
    # A distribution that is neither (another space's) changes nothing.
    space.encode_like({"bits": IntDistribution(0, 7), "heads": CategoricalDistribution([1])})
    assert space.distributions() == own


def test_merge_namespaces_and_keeps_children():
    quant = SearchSpace({"fc1.bits": Ordinal([4, 8]), "fc2.bits": Ordinal([4, 8])})
    prune = SearchSpace({"fc1.sparsity": Ordinal([0.0, 0.5])})
    merged = SearchSpace.merge(quant=quant, prune=prune)
    assert list(merged) == ["quant.fc1.bits", "quant.fc2.bits", "prune.fc1.sparsity"]
    assert list(merged.children) == ["quant", "prune"]
    assert merged.children["quant"] is quant


def test_merge_rejects_nothing_and_non_spaces():
    with pytest.raises(ValueError, match="at least one space"):
        SearchSpace.merge()
    with pytest.raises(TypeError, match="must be a SearchSpace"):
        SearchSpace.merge(quant={"bits": Ordinal([4, 8])})
