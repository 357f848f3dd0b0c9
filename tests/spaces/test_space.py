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
    assert params["bits"] == 3
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
        study.tell(trial, 0.0)


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
