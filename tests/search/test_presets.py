import optuna
import pytest

from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search import OPTIMIZERS, auto_choice, auto_optimizer, make_sampler
from tradeoff.search._presets import HANDOVER
from tradeoff.spaces import Choice, Float, Ordinal, SearchSpace

from ..conftest import ZDT_OBJECTIVES, ZDT_SPACE

OBJS = ObjectiveSet.build(ZDT_OBJECTIVES)


def test_unknown_optimizer_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'cmaes'.*'nsga2'"):
        make_sampler("cmaes", space=ZDT_SPACE, objectives=OBJS, n_trials=10)


def test_a_sampler_instance_is_used_as_is():
    sampler = optuna.samplers.QMCSampler(seed=0)
    assert make_sampler(sampler, space=ZDT_SPACE, objectives=OBJS, n_trials=10) is sampler


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("tpe", optuna.samplers.TPESampler),
        ("gp", optuna.samplers.GPSampler),
    ],
)
def test_presets_build_optuna_samplers(name, cls):
    assert isinstance(make_sampler(name, space=ZDT_SPACE, objectives=OBJS, n_trials=50), cls)


def test_auto_rule():
    assert auto_optimizer(ZDT_SPACE, n_trials=100) == "mobo"
    assert auto_optimizer(ZDT_SPACE, n_trials=300) == "mobo"
    ordered = SearchSpace({"x": Float(0.0, 1.0), "r": Ordinal([4, 8, 16])})
    assert auto_optimizer(ordered, n_trials=100) == "mobo"
    # Large budgets: mobo, then evolution (tests/search/test_handover.py).
    assert auto_optimizer(ordered, n_trials=301) == HANDOVER == "mobo>evolution"
    assert auto_optimizer(ZDT_SPACE, n_trials=5000) == HANDOVER
    wide = SearchSpace({f"l{i}.bits": Ordinal([2, 4, 8]) for i in range(40)})
    assert auto_optimizer(wide, n_trials=100) == "tpe"
    assert auto_optimizer(wide, n_trials=5000) == "nsga2"
    wide_float = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(40)})
    assert auto_optimizer(wide_float, n_trials=500) == "tpe"
    assert "auto" in OPTIMIZERS and HANDOVER not in OPTIMIZERS


def test_auto_keeps_unordered_choices_off_mobo():
    # Issue #17's stop-gap: on an architecture table of unordered operations mobo scored below
    # random search, multivariate TPE well above it.
    cell = SearchSpace(
        {f"op{i}": Choice(["conv3", "conv5", "pool", "skip", "none"]) for i in range(6)}
    )
    mixed = SearchSpace({"m": Choice(["lora", "ia3"]), "r": Ordinal([4, 8, 16])})
    for space in (cell, mixed):
        for n_trials in (20, 100, 301, 5000):
            assert auto_optimizer(space, n_trials=n_trials, objectives=OBJS) == "tpe"
    budget = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=lambda c: 1.0)], [Constraint("size", "<=", 1)]
    )
    assert auto_optimizer(cell, n_trials=100, objectives=budget) == "evolution"


def test_auto_says_which_rule_decided():
    cell = SearchSpace({f"op{i}": Choice(["conv3", "pool", "skip"]) for i in range(6)})
    wide = SearchSpace({f"l{i}.bits": Ordinal([2, 4, 8]) for i in range(40)})
    single = ObjectiveSet.build([Objective("loss")])
    budget = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=lambda c: 1.0)], [Constraint("size", "<=", 1)]
    )
    cases = [  # (space, n_trials, objectives) -> the rule's words
        (
            (ZDT_SPACE, 100, OBJS),
            f"rule 2a: several objectives, {len(ZDT_SPACE)} parameters (<= 30)",
        ),
        ((ZDT_SPACE, 301, OBJS), "rule 2b"),
        ((cell, 100, budget), "rule 3: a budget on a known cost (size)"),
        ((cell, 100, OBJS), "rule 4: the space has an unordered Choice"),
        ((ZDT_SPACE, 100, single), "rule 1, one objective, then rule 5: 100 trials"),
        ((wide, 5000, OBJS), "rule 6: 5000 trials (>= 1000)"),
        ((wide, 100, OBJS), "rule 6: 100 trials (< 1000)"),
    ]
    for (space, n, objs), words in cases:
        name, why = auto_choice(space, n_trials=n, objectives=objs)
        assert name == auto_optimizer(space, n_trials=n, objectives=objs)
        assert why.startswith(words), why


def test_auto_gives_one_objective_an_optimizer_for_one_objective():
    single = ObjectiveSet.build([Objective("loss")])
    assert auto_optimizer(ZDT_SPACE, n_trials=100, objectives=single) == "gp"
    mixed = SearchSpace({"m": Choice(["lora", "ia3"]), "r": Ordinal([4, 8, 16])})
    assert auto_optimizer(mixed, n_trials=100, objectives=single) == "tpe"
    assert auto_optimizer(ZDT_SPACE, n_trials=2000, objectives=single) == "nsga2"
    sampler = make_sampler("auto", space=ZDT_SPACE, objectives=single, n_trials=20, seed=0)
    study = optuna.create_study(sampler=sampler)
    for _ in range(12):
        trial = study.ask(ZDT_SPACE.distributions())
        study.tell(trial, (ZDT_SPACE.decode(trial.params)["x0"] - 0.3) ** 2)
    assert len(study.trials) == 12 and study.best_value < 0.05


def test_auto_is_deterministic_and_calls_no_known_cost():
    calls = []

    def size(config):
        calls.append(config)
        return 1.0

    class Applied:  # like model_cost on a space the tables cannot cost: one model copy a call
        analytic = False

        def __call__(self, config):
            calls.append(config)
            return 1.0

    cheap = ObjectiveSet.build([Objective("error"), Objective("size", fn=size)])
    costly = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=Applied())], [Constraint("size", "<=", 1)]
    )
    ordered = SearchSpace({"x": Float(0.0, 1.0), "r": Ordinal([4, 8, 16])})
    assert auto_optimizer(ordered, n_trials=100, objectives=cheap) == "mobo"
    assert auto_optimizer(ordered, n_trials=100, objectives=costly) == "evolution"
    unconstrained = ObjectiveSet.build([Objective("error"), Objective("size", fn=Applied())])
    assert auto_optimizer(ordered, n_trials=100, objectives=unconstrained) == "gp"
    assert calls == []


@pytest.mark.parametrize("name", ["random", "nsga2", "tpe", "gp"])
def test_presets_are_reproducible_and_inside_the_space(name):
    space = SearchSpace({"x": Float(0.0, 1.0), "bits": Ordinal([2, 4, 8])})

    def run() -> list[dict]:
        sampler = make_sampler(name, space=space, objectives=OBJS, n_trials=12, seed=3)
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        configs = []
        for _ in range(12):
            trial = study.ask(space.distributions())
            config = space.decode(trial.params)
            configs.append(config)
            study.tell(trial, [config["x"], config["bits"] / (1 + config["x"])])
        return configs

    first = run()
    assert all(space.contains(c) for c in first)
    assert first == run()


def test_auto_uses_mobo_on_elastic_architecture_spaces():
    # Known costs of an elastic architecture part are analytic (no model copy per call), so
    # auto may score many candidates with them, as for pruning and quantization spaces.
    from tradeoff.objectives import model_cost, weight_storage_bytes
    from tradeoff.spaces import ArchitectureSpace, QuantizationSpace

    from ..conftest import tiny_bert

    model = tiny_bert(2)
    blocks = {f"block{i}": f"bert.encoder.layer.{i}.*" for i in range(2)}
    space = SearchSpace.merge(
        arch=ArchitectureSpace.elastic(model, drop_blocks=True, ffn_ratios=(0.5, 1.0)),
        quant=QuantizationSpace.for_model(model, bits=(4, 8), exclude="classifier", tie=blocks),
    )
    size = model_cost(space, model, weight_storage_bytes)
    assert size.analytic
    objectives = ObjectiveSet.build(
        [Objective("error"), Objective("size", fn=size)], [Constraint("size", "<=", 1e5)]
    )
    assert auto_optimizer(space, n_trials=100, objectives=objectives) == "mobo"
