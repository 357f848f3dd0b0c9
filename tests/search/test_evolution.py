"""EvolutionSampler and its operators: types respected, budget never broken, state in storage."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import tradeoff
from tradeoff import _pareto
from tradeoff._pareto import hypervolume
from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search._evolution import EvolutionSampler
from tradeoff.search._levels import LevelView
from tradeoff.search._operators import (
    KnownCostGuard,
    LayerCrossover,
    NeighbourMutation,
    group_layers,
    layer_of,
)
from tradeoff.search._survival import hv_contributions, select_survivors
from tradeoff.spaces import Choice, Float, Int, Ordinal, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Per-layer bit allocation: 8 layers of different sizes and sensitivities.
SIZES = [1, 2, 4, 8, 8, 4, 2, 1]
SENSITIVITY = [3.0, 1.0, 0.5, 0.2, 0.3, 0.6, 1.2, 4.0]
BITS = SearchSpace.merge(quant=SearchSpace({f"l{i}.bits": Ordinal([2, 3, 4, 8]) for i in range(8)}))
BUDGET = 4.0 * sum(SIZES)  # half of the all-8-bit size
# The study stores the levels (a categorical of 2, 3, 4, 8); the guard and the operators see
# their index (0-3), so a level switch moves one step.
BITS_VIEW = LevelView.of(BITS, BITS.distributions())


def size(config):
    return float(sum(config[f"quant.l{i}.bits"] * s for i, s in enumerate(SIZES)))


def error(config):
    """Non-additive: neighbouring layers' errors compound."""
    e = [SENSITIVITY[i] * 4.0 ** (2 - config[f"quant.l{i}.bits"]) for i in range(8)]
    return {"error": sum(e) + 0.5 * sum(e[i] * e[i + 1] for i in range(7))}


OBJECTIVES = [Objective("error"), Objective("size", fn=size)]
CONSTRAINTS = [Constraint("size", "<=", BUDGET)]
OBJSET = ObjectiveSet.build(OBJECTIVES, CONSTRAINTS)


def bits_sampler(**kwargs):
    return EvolutionSampler(space=BITS, objectives=OBJSET, **kwargs)


def ask_tell(sampler, n, *, space=BITS, study=None, evaluate=None):
    """Sequential ask/tell on the bit problem; returns the study and the Configs proposed."""
    evaluate = evaluate or (lambda c: [error(c)["error"], size(c)])
    study = study or optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    configs = []
    for _ in range(n):
        trial = study.ask(space.distributions())
        config = space.decode(trial.params)
        configs.append(config)
        study.tell(trial, evaluate(config))
    return study, configs


def random_feasible(guard, rng):
    params = {n: int(rng.integers(d.high + 1)) for n, d in BITS_VIEW.dists.items()}
    return guard.repair(params, rng)


def config_of(params):
    """The Config of level indices (the operators' view of BITS)."""
    return BITS.decode(BITS_VIEW.to_stored(params))


# Operators ------------------------------------------------------------------------------------
def test_layers_group_across_namespaces():
    assert layer_of("quant.fc1.bits") == layer_of("prune.fc1.sparsity") == "fc1"
    assert layer_of("fc1.bits") == "fc1" and layer_of("lr") == "lr"
    assert layer_of("arch.blocks.0.ffn", {"arch", "quant"}) == "blocks.0"
    assert layer_of("quant.blocks.0.bits", {"arch", "quant"}) == "blocks.0"
    assert layer_of("train.lr", {"train"}) == "train.lr"
    names = ["quant.fc1.bits", "quant.fc2.bits", "prune.fc1.sparsity", "lr"]
    assert group_layers(names) == {
        "fc1": ("quant.fc1.bits", "prune.fc1.sparsity"),
        "fc2": ("quant.fc2.bits",),
        "lr": ("lr",),
    }


def test_ordinal_mutates_to_an_adjacent_level():
    mutate = NeighbourMutation(jump_prob=0.0)
    dist = IntDistribution(0, 3)  # Ordinal([2, 3, 4, 8]) as the sampler sees it
    rng = np.random.default_rng(0)
    for level in range(4):
        moved = {mutate.mutate_value(dist, level, rng) for _ in range(50)}
        assert moved == {k for k in (level - 1, level + 1) if 0 <= k <= 3}


def test_larger_int_jumps_are_rare_and_stay_in_bounds():
    mutate = NeighbourMutation(jump_prob=0.1)
    dist = IntDistribution(0, 9)
    rng = np.random.default_rng(1)
    steps = np.array([mutate.mutate_value(dist, 5, rng) - 5 for _ in range(2000)])
    assert np.all((steps != 0) & (np.abs(steps) <= 5))
    assert 0.05 < np.mean(np.abs(steps) > 1) < 0.15


def test_float_and_categorical_mutations_respect_their_type():
    mutate = NeighbourMutation()
    rng = np.random.default_rng(2)
    log = FloatDistribution(1e-5, 1e-1, log=True)
    values = [mutate.mutate_value(log, 1e-3, rng) for _ in range(500)]
    assert all(1e-5 <= v <= 1e-1 and v != 1e-3 for v in values)
    assert min(values) < 1e-3 < max(values)  # symmetric on the log scale
    assert np.median(np.abs(np.log10(values) - (-3.0))) < 0.5  # mostly local
    stepped = FloatDistribution(0.0, 0.9, step=0.3)
    assert all(mutate.mutate_value(stepped, 0.3, rng) in (0.0, 0.6) for _ in range(50))
    cat = CategoricalDistribution(["lora", "ia3", "none"])
    assert {mutate.mutate_value(cat, "ia3", rng) for _ in range(50)} == {"lora", "none"}


def test_layer_crossover_swaps_whole_layers():
    names = [
        f"{ns}.l{i}.{knob}" for i in range(6) for ns, knob in [("quant", "bits"), ("prune", "s")]
    ]
    layers = group_layers(names)
    first, second = dict.fromkeys(names, "a"), dict.fromkeys(names, "b")
    rng = np.random.default_rng(3)
    mixed = 0
    for _ in range(50):
        child = LayerCrossover()(first, second, layers=layers, rng=rng)
        for i in range(6):
            assert child[f"quant.l{i}.bits"] == child[f"prune.l{i}.s"]
        mixed += len(set(child.values())) == 2
    assert mixed > 40


def test_level_switch_keeps_the_known_cost_within_budget():
    guard = KnownCostGuard(BITS, OBJSET, BITS_VIEW)
    layers = group_layers(BITS, {"quant"})
    rng = np.random.default_rng(4)
    switched = 0
    for _ in range(200):
        params = random_feasible(guard, rng)
        assert params is not None and size(config_of(params)) <= BUDGET
        child = guard.switch(params, layers, rng)
        if child is None:
            continue
        switched += 1
        assert size(config_of(child)) <= BUDGET
        moves = sorted(child[n] - params[n] for n in params if child[n] != params[n])
        assert moves == [-1, 1]  # one layer a level up, another a level down
    assert switched > 150


def test_repair_walks_toward_cheap_levels_and_an_impossible_budget_is_a_clear_error():
    guard = KnownCostGuard(BITS, OBJSET, BITS_VIEW)
    assert guard.cheapest == dict.fromkeys(BITS, 0)
    rng = np.random.default_rng(5)
    dearest = dict.fromkeys(BITS, 3)
    repaired = guard.repair(dearest, rng)
    assert repaired is not None and size(config_of(repaired)) <= BUDGET
    assert all(repaired[n] <= 3 for n in BITS)
    impossible = ObjectiveSet.build(OBJECTIVES, [Constraint("size", "<=", 10.0)])
    with pytest.raises(ValueError, match=r"No Config satisfies .*size<=10.*cheapest"):
        KnownCostGuard(BITS, impossible, BITS_VIEW)


def test_survival_ranks_feasible_first_and_hv_keeps_the_extremes():
    values = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.45, 0.55], [2.0, 2.0], [0.0, 0.0]])
    penalty = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # the ideal point is infeasible
    chosen, ranks, _ = select_survivors(values, penalty, 3, method="hv")
    assert ranks[5] > ranks[4] > ranks[0]
    assert set(chosen) == {0, 1, 2} or set(chosen) == {0, 1, 3}
    chosen, _, _ = select_survivors(values, penalty, 3, method="crowding")
    assert {0, 1} <= set(chosen) and 5 not in chosen
    front = np.random.default_rng(6).random((12, 3))
    front /= np.linalg.norm(front, axis=1, keepdims=True)
    ref = np.full(3, 1.1)
    naive = [hypervolume(front, ref) - hypervolume(np.delete(front, i, 0), ref) for i in range(12)]
    np.testing.assert_allclose(hv_contributions(front), naive, atol=1e-12)
    for m in (2, 3):  # a reference point per objective, as multi-fidelity promotion uses
        angles = np.sort(np.random.default_rng(m).random(9)) * np.pi / 2
        front = np.stack([np.cos(angles), np.sin(angles), np.ones(9)][:m], axis=1)
        if m == 3:
            front[:, 2] = np.random.default_rng(7).random(9)
            front = front[_pareto.non_dominated(front)]
        ref = np.array([1.3, 2.0, 1.5][:m])
        naive = [
            hypervolume(front, ref) - hypervolume(np.delete(front, i, 0), ref)
            for i in range(len(front))
        ]
        np.testing.assert_allclose(hv_contributions(front, reference=ref), naive, atol=1e-12)


# Sampler --------------------------------------------------------------------------------------
MIXED = SearchSpace(
    {
        "lr": Float(1e-5, 1e-1, log=True),
        "rank": Int(1, 64, log=True),
        "layers": Int(1, 9, step=2),
        "bits": Ordinal([2, 4, 8]),
        "method": Choice(["lora", "ia3"]),
        "dropout": Float(0.0, 0.3, step=0.1),
    }
)


def mixed_objectives(config):
    bits, r = config["bits"], config["rank"]
    err = abs(math.log10(config["lr"]) + 3) + 1 / r + 1 / bits + (config["method"] == "ia3") * 0.1
    return [err, r * bits, config["layers"] + config["dropout"]]


def test_proposals_stay_inside_the_space_with_three_objectives():
    for survival in ("crowding", "hv"):
        sampler = EvolutionSampler(space=MIXED, seed=0, survival=survival, population_size=8)
        study = optuna.create_study(
            directions=["minimize", "minimize", "maximize"], sampler=sampler
        )
        _, configs = ask_tell(None, 40, space=MIXED, study=study, evaluate=mixed_objectives)
        assert all(MIXED.contains(c) for c in configs)
        assert len({tuple(c.values()) for c in configs}) == 40


def test_same_seed_same_proposals():
    first = ask_tell(bits_sampler(seed=7), 40)[1]
    assert ask_tell(bits_sampler(seed=7), 40)[1] == first
    assert ask_tell(bits_sampler(seed=8), 40)[1] != first


def test_never_proposes_a_known_infeasible_config():
    result = tradeoff.optimize(
        error,
        BITS,
        objectives=OBJECTIVES,
        constraints=CONSTRAINTS,
        optimizer=bits_sampler(seed=1, n_trials=60),
        n_trials=60,
        show_progress=False,
    )
    trials = result.trials
    assert len(trials) == 60 and (trials["status"] == "complete").all()
    assert (trials["size"] <= BUDGET).all()
    assert not trials.duplicated(subset=list(BITS)).any()


def test_budget_with_quantization_and_pruning_floats_and_several_workers():
    names = [f"l{i}" for i in range(6)]
    space = SearchSpace.merge(
        quant=SearchSpace({f"{n}.bits": Ordinal([2, 4, 8]) for n in names}),
        prune=SearchSpace({f"{n}.sparsity": Float(0.0, 0.9) for n in names}),
    )

    def cost(c):
        return sum(c[f"quant.{n}.bits"] * (1 - c[f"prune.{n}.sparsity"]) for n in names)

    def evaluate(c):
        return {
            "error": sum(1 / c[f"quant.{n}.bits"] + c[f"prune.{n}.sparsity"] ** 2 for n in names)
        }

    objectives = [Objective("error"), Objective("cost", fn=cost)]
    constraints = [Constraint("cost", "<=", 12.0)]
    sampler = EvolutionSampler(
        space=space, objectives=ObjectiveSet.build(objectives, constraints), seed=2, n_trials=50
    )
    result = tradeoff.optimize(
        evaluate,
        space,
        objectives=objectives,
        constraints=constraints,
        optimizer=sampler,
        n_trials=50,
        n_workers=3,
        show_progress=False,
    )
    trials = result.trials
    assert (trials["status"] == "complete").all() and (trials["cost"] <= 12.0).all()
    assert not trials.duplicated(subset=list(space)).any()


def test_concurrent_proposals_differ_from_each_other_and_the_running_ones():
    study, configs = ask_tell(bits_sampler(seed=3, population_size=8), 12)
    running = [study.ask(BITS.distributions()) for _ in range(6)]
    pending = [tuple(t.params.values()) for t in running]
    seen = {tuple(BITS.encode(c).values()) for c in configs}
    assert len(set(pending)) == 6 and not set(pending) & seen
    assert all(size(BITS.decode(t.params)) <= BUDGET for t in running)


def test_failed_and_infeasible_trials_are_tolerated():
    def flaky(config):
        if config["quant.l3.bits"] == 3:
            raise RuntimeError("CUDA out of memory")
        return error(config)

    sampler = EvolutionSampler(space=BITS, seed=4, population_size=8)  # no guard: sees rejections
    result = tradeoff.optimize(
        flaky,
        BITS,
        objectives=OBJECTIVES,
        constraints=CONSTRAINTS,
        optimizer=sampler,
        n_trials=40,
        show_progress=False,
    )
    status = result.trials["status"]
    assert (status == "failed").any() and (status == "infeasible").any()
    assert (status == "complete").sum() >= 20


def test_resuming_from_storage_continues_as_if_uninterrupted(tmp_path):
    url = f"sqlite:///{tmp_path / 'evo.db'}"
    _, straight = ask_tell(bits_sampler(seed=5, population_size=6), 14)
    sampler = bits_sampler(seed=5, population_size=6)
    study = optuna.create_study(
        directions=["minimize", "minimize"], storage=url, study_name="s", sampler=sampler
    )
    _, first = ask_tell(None, 8, study=study)
    del study, sampler  # "crash": a new process loads the study with a fresh sampler
    fresh = bits_sampler(seed=5, population_size=6)
    resumed = optuna.load_study(study_name="s", storage=url, sampler=fresh)
    _, second = ask_tell(None, 6, study=resumed)
    assert first + second == straight


def test_measured_constraints_steer_toward_feasible_configs():
    constraints = [*CONSTRAINTS, Constraint("error", "<=", 2.0)]  # measured by evaluate

    def feasible_share(optimizer):
        result = tradeoff.optimize(
            error,
            BITS,
            objectives=OBJECTIVES,
            constraints=constraints,
            optimizer=optimizer,
            n_trials=40,
            seed=0,
            show_progress=False,
        )
        complete = result.trials[result.trials["status"] == "complete"]
        return complete["feasible"].mean()

    objset = ObjectiveSet.build(OBJECTIVES, constraints)
    sampler = EvolutionSampler(space=BITS, objectives=objset, seed=0, n_trials=40)
    assert feasible_share(sampler) > feasible_share("random")


def test_single_objective_study():
    sampler = EvolutionSampler(space=BITS, objectives=OBJSET, seed=0, population_size=6)
    study = optuna.create_study(sampler=sampler)
    _, configs = ask_tell(
        None, 25, study=study, evaluate=lambda c: error(c)["error"] + size(c) / 100
    )
    assert all(size(c) <= BUDGET for c in configs)
    assert study.best_value < min(error(c)["error"] + size(c) / 100 for c in configs[:6])


def test_plain_define_by_run_study_without_a_space():
    def objective(trial):
        x = trial.suggest_float("x", -2.0, 2.0)
        k = trial.suggest_int("k", 0, 5)
        if k > 3:
            trial.suggest_categorical("extra", ["a", "b"])  # outside the joint space
        return x**2 + k, (x - 1) ** 2 + (5 - k)

    sampler = EvolutionSampler(seed=6, population_size=8)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=30)
    assert len(study.trials) == 30 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({(t.params["x"], t.params["k"]) for t in study.trials}) == 30


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"survival": "sms"}, ValueError, "Unknown survival 'sms'"),
        ({"population_size": 1}, ValueError, "population_size must be an integer >= 2"),
        ({"crossover_prob": 1.5}, ValueError, "crossover_prob must be a probability"),
        ({"objectives": OBJECTIVES}, TypeError, "must be an ObjectiveSet"),
        ({"objectives": OBJSET}, ValueError, "need the space"),
        ({"mutation_prob": 0.1, "mutation": NeighbourMutation()}, ValueError, "not both"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        EvolutionSampler(**kwargs)


def test_beats_random_search_on_a_small_bit_allocation_budget():
    reference = [16.0, BUDGET]

    def search(optimizer):
        return tradeoff.optimize(
            error,
            BITS,
            objectives=OBJECTIVES,
            constraints=CONSTRAINTS,
            optimizer=optimizer,
            n_trials=60,
            seed=0,
            show_progress=False,
        ).hypervolume(reference)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evolution = search(bits_sampler(seed=0, n_trials=60))
        random = search("random")
    assert evolution > random * 1.05


def _rung_result(study, params, dists, values, rung, state=TrialState.PRUNED):
    from tradeoff._study import ATTR_FIDELITY, ATTR_RESULT

    names = study.metric_names
    attrs = {ATTR_FIDELITY: {"rung": rung, "budget": 10 * (rung + 1), "name": "steps"}}
    attrs[ATTR_RESULT] = {"values": dict(zip(names, values)), "constraints": {}}
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            params=params,
            distributions=dists,
            user_attrs=attrs,
            values=values if state == TrialState.COMPLETE else None,
        )
    )


def test_multi_fidelity_parents_come_from_lower_rungs_before_any_trial_completes():
    # Under multi-fidelity only a few Configs reach the top rung; evolution must already
    # breed from the PRUNED lower-rung results (their metrics are in tradeoff.result).
    layers = [f"l{i}.bits" for i in range(8)]
    space = SearchSpace({name: Ordinal([2, 4, 8]) for name in layers})
    dists = space.distributions()
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_metric_names(["error", "size"])
    for i, name in enumerate(layers):  # parents: every layer at 2 bits but one at 4
        params = {n: 4 if n == name else 2 for n in layers}
        _rung_result(study, params, dists, [1.0 - 0.1 * i, 1.0 + 0.1 * i], rung=0)
    sampler = EvolutionSampler(seed=0, space=space, population_size=8)
    study.sampler = sampler
    low = []
    for _ in range(20):
        trial = study.ask(dists)
        low.append(np.mean([trial.params[n] == 2 for n in layers]))
        study.tell(trial, state=TrialState.FAIL)
    assert np.mean(low) > 0.6  # random proposals: 1/3 of the layers at the lowest level


def test_multi_fidelity_top_rung_results_outrank_lower_rungs():
    layers = [f"l{i}.bits" for i in range(4)]
    space = SearchSpace({name: Ordinal([2, 4, 8]) for name in layers})
    dists = space.distributions()
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_metric_names(["error", "size"])
    top = {n: 8 for n in layers}
    _rung_result(study, top, dists, [0.9, 0.9], rung=1, state=TrialState.COMPLETE)
    # Better-looking numbers at the lower rung (another budget: not comparable).
    for i in range(3):
        params = {n: 2 if j == i else 4 for j, n in enumerate(layers)}
        _rung_result(study, params, dists, [0.1, 0.1], rung=0)
    _rung_result(study, top, dists, [0.95, 0.95], rung=0)  # the top Config's lower rung
    sampler = EvolutionSampler(seed=0, space=space, population_size=3)
    trial = study.ask(dists)
    population = sampler._history(study, trial, LevelView.of(space, dists)).population
    # Members are seen as level indices: 8 bits is level 2 of (2, 4, 8).
    assert population.members[0] == {n: 2 for n in layers} and population.ranks[0] == 0
    assert len(population.members) == 3 and min(population.ranks[1:]) > 0


def test_multi_fidelity_proposals_read_the_storage_once_and_keep_what_they_read(
    tmp_path, monkeypatch
):
    # A multi-fidelity study in SQLite, compress's default: each proposal reads every trial;
    # it must not query the database once per lower-rung result (51,070 queries, half the
    # wall time of a 577-trial search), and what it keeps of finished trials must not change
    # a proposal: a sampler that has read the study before proposes what a fresh one does.
    from optuna.storages import RDBStorage

    layers = [f"l{i}.bits" for i in range(6)]
    space = SearchSpace({name: Ordinal([2, 4, 8]) for name in layers})
    dists = space.distributions()
    study = optuna.create_study(
        directions=["minimize", "minimize"], storage=f"sqlite:///{tmp_path / 'mf.db'}"
    )
    study.set_metric_names(["error", "size"])
    rng = np.random.default_rng(0)
    for i in range(30):
        params = {n: int(rng.choice([2, 4, 8])) for n in layers}
        state = TrialState.COMPLETE if i % 5 == 0 else TrialState.PRUNED
        _rung_result(study, params, dists, rng.random(2).tolist(), rung=i % 2, state=state)
    reads = []
    real = RDBStorage.get_study_system_attrs
    monkeypatch.setattr(
        RDBStorage,
        "get_study_system_attrs",
        lambda self, study_id: reads.append(study_id) or real(self, study_id),
    )
    study.sampler = EvolutionSampler(seed=3, space=space, population_size=6)
    for i in range(8):
        reads.clear()
        trial = study.ask(dists)
        assert len(reads) <= 2  # not one per PRUNED trial (24 of them at the start)
        frozen = study._storage.get_trial(trial._trial_id)
        fresh = EvolutionSampler(seed=3, space=space, population_size=6)
        proposal = fresh.sample_relative(study, frozen, dists)
        assert proposal == trial.params
        if i % 2:
            study.tell(trial, rng.random(2).tolist())
        else:
            study.tell(trial, state=TrialState.FAIL)
