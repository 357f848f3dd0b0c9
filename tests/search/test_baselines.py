"""Baselines: uniform settings and the additive-proxy optimum (per-layer errors + knapsack)."""

import itertools
import logging

import numpy as np
import pytest

from tradeoff.search._baselines import (
    additive_proxy,
    additive_proxy_front,
    dominated_by,
    uniform_configs,
)
from tradeoff.spaces import Choice, Float, Ordinal, SearchSpace

BITS = (2, 3, 4, 8)


class Counter:
    """Wraps a metric and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, config):
        self.calls += 1
        return self.fn(config)


def bits_space(n_layers: int, levels=BITS) -> SearchSpace:
    return SearchSpace({f"layer{i}.bits": Ordinal(list(levels)) for i in range(n_layers)})


def vector(config, n_layers: int) -> np.ndarray:
    return np.array([config[f"layer{i}.bits"] for i in range(n_layers)], dtype=float)


def enumerate_front(space, error, cost, budgets):
    """Brute force: the least true error within each budget (None if none fits)."""
    configs = [dict(zip(space, c)) for c in itertools.product(*(p.values for p in space.values()))]
    errors = np.array([error(c) for c in configs])
    costs = np.array([cost(c) for c in configs])
    return [float(errors[costs <= b].min()) if (costs <= b).any() else None for b in budgets]


# Uniform baselines ----------------------------------------------------------------------------
def test_uniform_configs_of_quant_x_prune_space_are_uniform_and_apply():
    torch = pytest.importorskip("torch")
    from tradeoff.spaces import PruningSpace, QuantizationSpace

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
    ).eval()
    space = SearchSpace.merge(
        quant=QuantizationSpace.for_model(model, bits=(2, 4, 8)),
        prune=PruningSpace.for_model(model, sparsity=(0.0, 0.5)),
    )
    baselines = uniform_configs(space)

    assert len(baselines) == 3 * 2
    assert [label for label, _ in baselines][:2] == ["bits=2, sparsity=0.0", "bits=2, sparsity=0.5"]
    for label, config in baselines:
        bits = {v for k, v in config.items() if k.endswith(".bits")}
        sparsity = {v for k, v in config.items() if k.endswith(".sparsity")}
        assert len(bits) == len(sparsity) == 1
        assert label == f"bits={bits.pop()}, sparsity={sparsity.pop()}"
        assert space.contains(config)
        out = space.apply(model, config)(torch.zeros(1, 8))
        assert out.shape == (1, 4)


def test_uniform_configs_take_other_parameters_from_base_and_skip_partial_levels():
    space = SearchSpace(
        {
            "a.bits": Ordinal([4, 8]),
            "b.bits": Ordinal([2, 4, 8]),  # 2 is not on every layer: no uniform 2-bit config
            "lr": Float(1e-3, 1e-1),
            "opt": Choice(["sgd", "adam"]),
        }
    )
    base = {"a.bits": 8, "b.bits": 8, "lr": 0.01, "opt": "adam"}

    assert [label for label, _ in uniform_configs(space, base=base)] == ["bits=4", "bits=8"]
    assert all(c["lr"] == 0.01 and c["opt"] == "adam" for _, c in uniform_configs(space, base=base))
    default = dict(uniform_configs(space))["bits=4"]
    assert default == {"a.bits": 4, "b.bits": 4, "lr": 1e-3, "opt": "sgd"}


# Additive proxy -------------------------------------------------------------------------------
def test_proxy_is_the_true_optimum_when_error_is_additive():
    rng = np.random.default_rng(0)
    n_layers = 5
    space = bits_space(n_layers)
    table = {b: rng.uniform(0, 1, n_layers) * 4.0 ** -(b - 2) for b in BITS}
    sizes = rng.integers(1, 6, n_layers).astype(float)

    def error(c):
        return float(sum(table[c[f"layer{i}.bits"]][i] for i in range(n_layers)))

    def cost(c):
        return float(sizes @ vector(c, n_layers))

    budgets = list(np.linspace(2 * sizes.sum(), 8 * sizes.sum(), 15))
    result = additive_proxy(space, error, cost, budgets=budgets)
    truth = enumerate_front(space, error, cost, budgets)

    assert [b for b, _ in result.configs] == budgets and not result.infeasible
    for (budget, config), best, predicted in zip(result.configs, truth, result.predicted_error):
        assert cost(config) <= budget
        assert error(config) == pytest.approx(best, abs=1e-12)
        assert predicted == pytest.approx(error(config), abs=1e-12)


def test_a_layer_is_all_its_knobs_and_interactions_inside_a_layer_stay_exact():
    rng = np.random.default_rng(1)
    n_layers = 3
    space = SearchSpace.merge(
        quant=SearchSpace({f"layer{i}.bits": Ordinal([2, 4, 8]) for i in range(n_layers)}),
        prune=SearchSpace({f"layer{i}.sparsity": Ordinal([0.0, 0.5]) for i in range(n_layers)}),
    )
    scale = rng.uniform(0.5, 2.0, n_layers)

    def error(c):  # bits and sparsity of one layer interact; layers add up
        total = 0.0
        for i in range(n_layers):
            b, s = c[f"quant.layer{i}.bits"], c[f"prune.layer{i}.sparsity"]
            total += scale[i] * (4.0 ** -(b - 2) + s) * (1 + 2 * s * (b == 2))
        return float(total)

    def cost(c):
        return float(
            sum(
                (i + 1) * c[f"quant.layer{i}.bits"] * (1 - c[f"prune.layer{i}.sparsity"])
                for i in range(n_layers)
            )
        )

    budgets = [7.0, 12.0, 20.0, 30.0, 48.0]
    result = additive_proxy(space, error, cost, budgets=budgets)
    truth = enumerate_front(space, error, cost, budgets)

    assert set(result.table["layer"]) == {f"layer{i}" for i in range(n_layers)}
    assert len(result.table) == n_layers * 3 * 2  # one row per (layer, bits x sparsity)
    assert result.base == {
        **{f"quant.layer{i}.bits": 8 for i in range(n_layers)},  # the dearest option
        **{f"prune.layer{i}.sparsity": 0.0 for i in range(n_layers)},
    }
    for (budget, config), best in zip(result.configs, truth):
        assert cost(config) <= budget
        assert error(config) == pytest.approx(best, abs=1e-12)


class Interacting:
    """Like benchmarks/problems.py's BitModel: errors compound multiplicatively, and adjacent
    low-precision layers interact (``g_i`` of either sign), so the error is not additive."""

    def __init__(self, n_layers: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_layers = n_layers
        self.n = rng.choice([1.0, 2.0, 4.0], size=n_layers)
        self.s = rng.lognormal(0.0, 0.7, n_layers)
        self.g = rng.uniform(-1.0, 1.0, n_layers - 1)

    def error(self, config) -> float:
        e = np.minimum(0.9, 0.1 * self.s * 4.0 ** (2.0 - vector(config, self.n_layers)))
        pairs = float((self.g * np.sqrt(e[:-1] * e[1:])).sum())
        return float(np.clip(1.0 - np.prod(1.0 - e) + pairs, 0.0, 1.0))

    def cost(self, config) -> float:
        return float(self.n @ vector(config, self.n_layers))


def test_proxy_respects_budgets_but_misses_the_optimum_when_layers_interact():
    problem = Interacting(6, seed=7)
    space = bits_space(6)
    budgets = list(np.arange(2 * problem.n.sum(), 8 * problem.n.sum() + 1, 2.0))
    result = additive_proxy(space, problem.error, problem.cost, budgets=budgets)
    truth = enumerate_front(space, problem.error, problem.cost, budgets)

    gaps = []
    for (budget, config), best in zip(result.configs, truth):
        assert problem.cost(config) <= budget
        assert problem.error(config) >= best - 1e-12
        gaps.append(problem.error(config) - best)
    assert max(gaps) > 1e-3  # strictly worse than the enumerated optimum for some budget


def test_infeasible_budgets_are_reported_and_feasible_ones_respected():
    sizes = np.array([1.0, 2.0, 3.0])
    space = bits_space(3)

    def cost(c):
        return float(sizes @ vector(c, 3))

    def error(c):
        return float((2.0 ** -vector(c, 3)).sum())

    result = additive_proxy(space, error, cost, budgets=[5.0, 11.9, 12.0, 30.0, 100.0])

    assert result.infeasible == [5.0, 11.9]  # the cheapest Config costs 2 * 6 = 12
    assert [b for b, _ in result.configs] == [12.0, 30.0, 100.0]
    for budget, config in result.configs:
        assert cost(config) <= budget
    assert result.configs[0][1] == {f"layer{i}.bits": 2 for i in range(3)}
    assert result.configs[-1][1] == {f"layer{i}.bits": 8 for i in range(3)}


def test_error_fn_is_called_once_for_the_base_and_once_per_other_option():
    space = SearchSpace.merge(
        quant=SearchSpace({"a.bits": Ordinal([2, 4, 8]), "b.bits": Ordinal([4, 8])}),
        prune=SearchSpace(
            {"a.sparsity": Ordinal([0.0, 0.25, 0.5]), "c.sparsity": Ordinal([0.0, 0.5])}
        ),
    )
    error = Counter(lambda c: sum(float(v) for v in c.values()))
    result = additive_proxy(space, error, lambda c: 1.0 + error.fn(c), budgets=[50.0])

    options = {"a": 3 * 3, "b": 2, "c": 2}
    changes = sum(n - 1 for n in options.values())
    assert error.calls == result.calls == 1 + changes
    assert result.table.groupby("layer").size().to_dict() == options
    # cost_fn: the dearest option of each layer, then base and changes, then 5 random checks
    assert result.cost_calls == sum(options.values()) + 1 + changes + 5

    given = additive_proxy(space, error.fn, lambda c: 1.0, budgets=[50.0], base=result.base)
    assert given.calls == result.calls and given.cost_calls == 1 + changes + 5


def test_front_is_distinct_configs_from_cheapest_to_dearest():
    problem = Interacting(5, seed=3)
    space = bits_space(5)
    front = additive_proxy_front(space, problem.error, problem.cost, n_points=12)

    configs = [c for _, c in front.configs]
    assert 2 <= len(configs) <= 12
    assert len({tuple(c.values()) for c in configs}) == len(configs)
    assert configs[0] == {f"layer{i}.bits": 2 for i in range(5)}
    assert configs[-1] == {f"layer{i}.bits": 8 for i in range(5)}
    assert np.all(np.diff(front.predicted_cost) > 0)
    assert np.all(np.diff(front.predicted_error) < 0)
    assert front.cost_additive and not front.infeasible


def test_non_additive_cost_is_flagged(caplog):
    space = bits_space(3)

    def cost(c):  # a product over layers is not a sum
        return float(np.prod(vector(c, 3)))

    with caplog.at_level(logging.WARNING, logger="tradeoff"):
        result = additive_proxy(space, lambda c: 1.0 / cost(c), cost, budgets=[100.0])
    assert not result.cost_additive
    assert "not additive" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"budgets": []}, ValueError, "budgets is empty"),
        ({"budgets": [10.0, -1.0]}, ValueError, "positive finite"),
        ({"budgets": [float("nan")]}, ValueError, "positive finite"),
        ({"budgets": 10.0}, TypeError, "list of numbers"),
        ({"budgets": [10.0], "base": {"layer0.bits": 5, "layer1.bits": 2}}, ValueError, "base"),
        ({"budgets": [10.0], "base": {"layer0.bits": 2}}, ValueError, "missing"),
    ],
)
def test_bad_input_is_rejected_before_any_evaluation(kwargs, error, match):
    calls = Counter(lambda c: 0.0)
    with pytest.raises(error, match=match):
        additive_proxy(bits_space(2), calls, lambda c: 1.0, **kwargs)
    assert calls.calls == 0


def test_space_without_per_layer_ordinals_is_rejected():
    space = SearchSpace({"bits": Ordinal([2, 4]), "lr": Float(0.1, 1.0)})
    with pytest.raises(ValueError, match="no per-layer Ordinal knob"):
        uniform_configs(space)
    with pytest.raises(ValueError, match="no per-layer Ordinal knob"):
        additive_proxy_front(space, lambda c: 0.0, lambda c: 1.0)
    with pytest.raises(TypeError, match="SearchSpace"):
        uniform_configs({"a.bits": Ordinal([2, 4])})


def test_error_fn_returning_a_non_number_is_a_clear_error():
    with pytest.raises(ValueError, match="error_fn must return a finite number"):
        additive_proxy(bits_space(2), lambda c: float("nan"), lambda c: 1.0, budgets=[1.0])


def test_dominated_by_matches_brute_force():
    rng = np.random.default_rng(0)
    front, points = rng.integers(0, 4, (12, 2)).astype(float), rng.integers(0, 4, (9, 2))
    points = points.astype(float)
    points[0, 0] = np.nan
    dirs = ["maximize", "minimize"]
    want = [
        [i for i, f in enumerate(front)
         if f[0] >= p[0] and f[1] <= p[1] and (f[0] > p[0] or f[1] < p[1])]
        for p in points
    ]  # fmt: skip
    assert dominated_by(front, points, dirs) == want
    assert want[0] == []


def test_dominated_by_checks_shapes():
    assert dominated_by([], [[1.0, 2.0]], ["minimize", "minimize"]) == [[]]
    with pytest.raises(ValueError, match="one per direction"):
        dominated_by([[1.0, 2.0, 3.0]], [[1.0, 2.0]], ["minimize", "minimize"])
    with pytest.raises(ValueError, match="directions"):
        dominated_by([[1.0]], [[1.0]], ["up"])


def test_proxy_varies_a_layers_choice_knobs_and_can_measure_in_one_batch():
    space = SearchSpace.merge(
        prune=SearchSpace(
            {
                "a.sparsity": Ordinal([0.0, 0.5]),
                "a.pattern": Choice(["unstructured", "channel"]),
                "b.sparsity": Ordinal([0.0, 0.5]),
            }
        ),
        quant=SearchSpace({"a.bits": Ordinal([4, 8]), "b.bits": Ordinal([4, 8])}),
    )

    def cost(c):  # channel pruning of a halves its size; unstructured does not
        a = c["quant.a.bits"] * (1 - c["prune.a.sparsity"] * (c["prune.a.pattern"] == "channel"))
        return a + c["quant.b.bits"]

    def error(c):  # and costs less error than 4 bits
        return (
            (c["quant.a.bits"] == 4) * 1.0
            + (c["prune.a.sparsity"] > 0) * 0.5
            + (c["quant.b.bits"] == 4) * 0.1
            + c["prune.b.sparsity"]
        )

    batches = []

    def batch(configs):
        batches.append(len(configs))
        return [error(c) for c in configs]

    result = additive_proxy(space, error, cost, budgets=[10.0], batch=batch)
    options = {"a": 2 * 2 * 2, "b": 2 * 2}
    assert result.table.groupby("layer").size().to_dict() == options
    assert batches == [1 + sum(n - 1 for n in options.values())]  # one batch: base + changes
    ((_, best),) = result.configs  # 10 fits a at 8 bits with half its channels, b at 4 bits
    assert best["prune.a.pattern"] == "channel" and best["quant.a.bits"] == 8
    assert cost(best) <= 10.0 and error(best) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="batch returned 1 errors"):
        additive_proxy(space, error, cost, budgets=[10.0], batch=lambda cs: [0.0])
