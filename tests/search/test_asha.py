"""Multi-fidelity search: the budget ladder, MO-ASHA's ranking, and whole searches."""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import tradeoff
from tradeoff.objectives import Constraint, Objective
from tradeoff.search import Fidelity
from tradeoff.search._asha import Promoter, rank
from tradeoff.spaces import Float, SearchSpace

SPACE = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(3)})
LADDER = Fidelity((1, 3, 9), eta=3, name="steps")


class Noisy:
    """ZDT1-like objectives seen through noise that shrinks as the budget grows."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[float, ...], float]] = []
        self.lock = threading.Lock()

    def __call__(self, config, budget):
        x = np.array([config[f"x{i}"] for i in range(3)])
        g = 1 + 9 * x[1:].mean()
        f1, f2 = x[0], g * (1 - math.sqrt(x[0] / g))
        rng = np.random.default_rng(int(1e6 * x.sum()) + int(budget))
        noise = 0.2 / budget
        with self.lock:
            self.calls.append((tuple(x), budget))
        return {"f1": f1 + noise * rng.normal(), "f2": f2 + noise * rng.normal()}


def run(evaluate, n_trials, **kwargs):
    kwargs.setdefault("optimizer", "random")
    return tradeoff.optimize(
        evaluate, SPACE, objectives=[Objective("f1"), Objective("f2")], n_trials=n_trials,
        fidelity=LADDER, seed=0, show_progress=False, **kwargs,
    )  # fmt: skip


def test_fidelity_rejects_bad_ladders():
    with pytest.raises(ValueError, match="at least two budgets"):
        Fidelity((10,))
    with pytest.raises(ValueError, match="must increase"):
        Fidelity((10, 5))
    with pytest.raises(ValueError, match="positive"):
        Fidelity((0, 5))
    with pytest.raises(ValueError, match="eta must be"):
        Fidelity((1, 2), eta=1)
    with pytest.raises(TypeError, match="capped must be True or False"):
        Fidelity((1, 2), capped="yes")


def test_geometric_ladder_ends_at_the_full_budget():
    assert Fidelity.geometric(10, 270, eta=3).budgets == (10, 30, 90, 270)
    assert Fidelity.geometric(10, 300, eta=3).budgets == (11, 33, 100, 300)
    assert Fidelity.geometric(0.1, 1.0, eta=3).budgets == pytest.approx((1 / 9, 1 / 3, 1.0))


def test_rank_puts_feasible_fronts_first_then_violations():
    values = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.9], [0.0, 0.0], [0.2, 0.2]])
    violation = np.array([0.0, 0.0, 0.0, 0.0, 2.0, 1.0])
    order = rank(values, violation)
    assert set(order[:3]) == {0, 1, 2}  # the first front
    assert order[3] == 3  # dominated, feasible
    assert order[4:] == [5, 4]  # infeasible, least violation first


def test_rank_orders_a_front_by_hypervolume_contribution():
    # The middle point of this front adds the most area; the crowded one adds little.
    values = np.array([[0.0, 1.0], [0.5, 0.5], [0.95, 0.06], [1.0, 0.0]])
    order = rank(values, np.zeros(4))
    assert order[0] == 1
    assert order[-1] in (2, 3)


def test_search_runs_every_config_at_the_lowest_budget_and_promotes_the_best():
    evaluate = Noisy()
    result = run(evaluate, 27)
    trials = result.trials
    first = trials[trials["rung"] == 0]
    assert len(first) == 27 and (first["budget"] == 1).all()
    # Promotions happen, fewer at each rung, and only of configs already seen below.
    by_rung = trials.groupby("rung").size().to_dict()
    assert by_rung[0] > by_rung[1] > by_rung[2] >= 1
    configs = {
        n: tuple(r[f"x{i}"] for i in range(3)) for n, r in trials.set_index("trial").iterrows()
    }
    for _, row in trials[trials["rung"] > 0].iterrows():
        source = trials.set_index("trial").loc[int(row["promoted_from"])]
        assert source["rung"] == row["rung"] - 1
        assert configs[int(row["trial"])] == configs[int(row["promoted_from"])]
    # Only full-budget evaluations complete; the Pareto set comes from them.
    assert (trials.loc[trials["status"] == "complete", "budget"] == 9).all()
    assert set(trials["status"]) <= {"complete", "promoted", "stopped"}
    assert len(result.pareto) >= 1 and (result.pareto["budget"] == 9).all()
    # Evaluations cost far less than running every Config at full budget.
    cost = sum(b for _, b in evaluate.calls)
    assert cost < 0.7 * 27 * 9


def test_lower_budget_metrics_are_stored_where_a_reader_sees_them():
    result = run(Noisy(), 9)
    study = result.study
    stopped = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert stopped
    for t in stopped:
        assert set(t.user_attrs["tradeoff.result"]["values"]) == {"f1", "f2"}
        assert t.user_attrs["tradeoff.fidelity"]["name"] == "steps"
        assert (
            "steps=1" in t.user_attrs["tradeoff.reason"]
            or "steps=3" in t.user_attrs["tradeoff.reason"]
        )


def test_promotions_follow_the_non_dominated_rank_of_their_rung():
    result = run(Noisy(), 18)
    trials = result.trials.set_index("trial")
    rung0 = trials[trials["rung"] == 0]
    promoted = rung0[rung0["status"] == "promoted"]
    # Every promoted config is non-dominated among the rung-0 results seen when it moved up;
    # at least, no promoted config is dominated by two-thirds of its rung.
    y = rung0[["f1", "f2"]].to_numpy()
    for number in promoted.index:
        p = trials.loc[number, ["f1", "f2"]].to_numpy(dtype=float)
        dominated_by = np.sum(np.all(y <= p, axis=1) & np.any(y < p, axis=1))
        assert dominated_by < len(y) * (1 - 1 / 3)


def test_measured_constraints_count_at_every_rung():
    def evaluate(config, budget):
        return {"f1": config["x0"], "f2": 1 - config["x0"], "mem": config["x1"]}

    result = tradeoff.optimize(
        evaluate, SPACE, objectives=[Objective("f1"), Objective("f2")], metrics=["mem"],
        constraints=[Constraint("mem", "<=", 0.5)], n_trials=18, fidelity=LADDER,
        optimizer="random", seed=1, show_progress=False,
    )  # fmt: skip
    promoted = result.trials[result.trials["rung"] > 0]
    assert len(promoted) and (promoted["mem"] <= 0.5).all()


def test_resume_never_reevaluates_a_finished_rung(tmp_path):
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    first, more = Noisy(), Noisy()
    run(first, 9, storage=url, study_name="mf")
    result = run(more, 18, storage=url, study_name="mf")
    assert not set(first.calls) & set(more.calls)
    assert (result.trials["rung"] == 0).sum() == 18


def test_a_config_promoted_twice_by_racing_drivers_runs_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    first, more = Noisy(), Noisy()
    run(first, 9, storage=url, study_name="mf")
    study = optuna.load_study(study_name="mf", storage=url)
    promoted = next(
        t
        for t in study.trials
        if t.user_attrs["tradeoff.fidelity"].get("promoted_from") is not None
    )
    tag = promoted.user_attrs["tradeoff.fidelity"]
    # A second driver chose the same promotion at the same moment and enqueued it too.
    study.enqueue_trial(promoted.params, user_attrs={"tradeoff.fidelity": tag})
    result = run(more, 10, storage=url, study_name="mf")
    x = tuple(promoted.params[f"x{i}"] for i in range(3))
    assert (x, tag["budget"]) not in more.calls
    twin = result.trials[result.trials["promoted_from"] == tag["promoted_from"]]
    original = result.trials.set_index("trial").loc[promoted.number, "status"]
    assert sorted(twin["status"]) == sorted([original, "surplus"])
    assert (result.trials["rung"] == 0).sum() == 10  # the surplus twin took no Config's place


def test_a_lost_promotion_is_retried_not_taken_for_a_duplicate(tmp_path):
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    first, more = Noisy(), Noisy()
    run(first, 9, storage=url, study_name="mf")
    study = optuna.load_study(study_name="mf", storage=url)
    promoted = {t.user_attrs["tradeoff.fidelity"].get("promoted_from") for t in study.trials}
    source = next(t for t in study.trials if t.number not in promoted and t.state.name == "PRUNED")
    tag = LADDER.tag(1, source.number)
    attrs = {"tradeoff.fidelity": tag, "tradeoff.config": source.params}
    # The promotion's driver died mid-evaluation: the heartbeat check failed it (no status:
    # "stale") and enqueued a retry with the same fidelity tag.
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, params=source.params,
            distributions=source.distributions, user_attrs=attrs,
        )
    )  # fmt: skip
    study.enqueue_trial(source.params, user_attrs={"tradeoff.fidelity": tag})
    result = run(more, 10, storage=url, study_name="mf")
    x = tuple(source.params[f"x{i}"] for i in range(3))
    assert (x, tag["budget"]) in more.calls
    retry = result.trials[result.trials["promoted_from"] == source.number]
    assert retry["status"].iloc[0] == "stale"
    assert retry["status"].iloc[1] in ("promoted", "stopped")  # evaluated at rung 1


def test_an_evaluate_without_a_budget_argument_is_rejected_before_any_trial():
    with pytest.raises(TypeError, match=r"evaluate\(config, budget\)"):
        run(lambda config: {"f1": 0.0, "f2": 0.0}, 5)
    with pytest.raises(TypeError, match=r"tradeoff\.search\.Fidelity"):
        tradeoff.optimize(
            lambda c, b: {}, SPACE, objectives=[Objective("f1"), Objective("f2")],
            fidelity=(1, 3), show_progress=False,
        )  # fmt: skip


def test_a_failing_lower_budget_evaluation_is_not_promoted():
    def evaluate(config, budget):
        if config["x0"] > 0.7:
            raise RuntimeError("out of memory")
        return {"f1": config["x0"], "f2": 1 - config["x0"] + config["x1"]}

    result = run(evaluate, 18)
    failed = result.trials[result.trials["status"] == "failed"]
    assert len(failed) and (failed["rung"] == 0).all()
    promoted_sources = set(result.trials["promoted_from"].dropna().astype(int))
    assert not promoted_sources & set(failed["trial"])


def test_initial_configs_run_at_the_full_budget_and_complete(tmp_path):
    corners = [{name: value for name in SPACE} for value in (0.0, 1.0)]
    url = f"sqlite:///{tmp_path / 'f.db'}"
    noisy = Noisy()
    result = run(noisy, 9, initial_configs=corners, storage=url, study_name="s")
    # The two initial Configs are evaluated first, once each, at the top budget only.
    assert [budget for _, budget in noisy.calls[:2]] == [9, 9]
    for corner in corners:
        key = tuple(corner.values())
        assert [b for x, b in noisy.calls if x == key] == [9]
    done = result.trials[result.trials["status"] == "complete"]
    assert len(done) >= 2
    # They count toward n_trials like any Config (once each), so 9 Configs in all.
    trials = result.trials
    configs = trials["status"].isin(["complete", "failed", "stopped", "promoted"])
    assert (configs & trials["promoted_from"].isna()).sum() == 9
    # Resuming does not add them again.
    again = Noisy()
    run(again, 12, initial_configs=corners, storage=url, study_name="s")
    assert not any(x in {tuple(c.values()) for c in corners} for x, _ in again.calls)


def _trial(number, state, tag, values=None, constraints=None, names=("f1", "f2")):
    attrs = {"tradeoff.fidelity": tag}
    if values is not None:
        result = {"values": dict(zip(names, values))}
        if constraints is not None:
            result["constraints"] = constraints
        attrs["tradeoff.result"] = result
    return optuna.trial.FrozenTrial(
        number=number, state=state, value=None, values=None, datetime_start=None,
        datetime_complete=None, params={"x0": number / 1000}, distributions={}, user_attrs=attrs,
        system_attrs={}, intermediate_values={}, trial_id=number,
    )  # fmt: skip


def _random_history(seed, ladder, directions, hinted=False):
    """The trial lists a driver would pass, call after call: Configs start at the lowest rung,
    finish out of order (PRUNED with a result, often tied or duplicated, some infeasible, some
    NaN; or FAIL), the answer of the call is enqueued as a promotion; now and then the study is
    read again (every trial a new object). ``hinted``: as tradeoff's driver passes them, one
    list updated in place with the numbers that changed since the last call (None after a
    re-read); else a fresh list each call, compared by the promoter with the last one."""
    rng = np.random.default_rng(seed)
    names = tuple(f"f{i}" for i in range(len(directions)))
    trials, running = [], []
    changed = None
    promoter = Promoter(ladder, names, directions)

    def value():
        if rng.random() < 0.02:
            return math.nan
        return float(rng.integers(0, 5) / 4) if rng.random() < 0.4 else float(rng.random())

    for _ in range(400):
        roll = rng.random()
        if roll < 0.4 or not running:
            running.append(len(trials))
            trials.append(_trial(len(trials), TrialState.RUNNING, ladder.tag(0)))
        elif roll < 0.95:
            number = running.pop(int(rng.integers(len(running))))
            old = trials[number]
            tag = old.user_attrs["tradeoff.fidelity"]
            if changed is not None:
                changed.add(number)
            if rng.random() < 0.05:
                trials[number] = _trial(number, TrialState.FAIL, tag)
            else:
                state = TrialState.PRUNED if tag["rung"] < ladder.top else TrialState.COMPLETE
                constraints = {"mem <= 1": float(rng.normal())} if rng.random() < 0.3 else None
                values = [value() for _ in names]
                trials[number] = _trial(number, state, tag, values, constraints, names)
        else:
            trials = [copy.deepcopy(t) for t in trials]
            changed = None
        if hinted:
            got = promoter.next(trials, changed=changed)
            changed = set()
        else:
            got = promoter.next(list(trials))
        want = promoter.rerank(trials)
        assert (got is None) == (want is None)
        if got is not None:
            assert (got.number, got.rung, got.params) == (want.number, want.rung, want.params)
            running.append(len(trials))
            tag = ladder.tag(got.rung, got.number)
            trials.append(_trial(len(trials), TrialState.RUNNING, tag))
        yield got


@pytest.mark.parametrize(
    ("seed", "ladder", "directions"),
    [
        (0, LADDER, ("minimize", "minimize")),
        (1, Fidelity((1, 2, 4, 8), eta=2), ("maximize", "minimize")),
        (2, LADDER, ("minimize", "maximize", "minimize")),
        (3, Fidelity((1, 3), eta=3), ("minimize",)),
        (4, Fidelity((1, 3, 9), eta=2.5), ("minimize", "minimize")),
        (5, Fidelity((1, 3, 9), eta=3, capped=True), ("minimize", "minimize")),
        (6, Fidelity((1, 2, 4, 8), eta=2, capped=True), ("maximize", "minimize")),
    ],
)
@pytest.mark.parametrize("hinted", [False, True], ids=["compared", "told-what-changed"])
def test_incremental_promotions_match_reranking_every_rung(seed, ladder, directions, hinted):
    history = _random_history(seed, ladder, directions, hinted)
    promotions = [p for p in history if p is not None]
    assert len(promotions) > 20  # the history did promote, from several rungs
    assert len({p.rung for p in promotions}) == ladder.top


@pytest.mark.parametrize("capped", [False, True])
def test_a_capped_ladder_sends_up_only_its_share_when_every_config_is_better(capped):
    # A sampler that keeps improving: each new Config dominates every earlier one, so it is
    # in its rung's best third when it arrives. ASHA's rule then promotes nearly all of them;
    # the capped ladder at most floor(n / 3) of n, as synchronous successive halving would.
    ladder = Fidelity((1, 3, 9), eta=3, capped=capped)
    promoter = Promoter(ladder, ("f1", "f2"), ("minimize", "minimize"))
    trials, up = [], []
    for n in range(30):
        trials.append(_trial(len(trials), TrialState.PRUNED, ladder.tag(0), (1 / (n + 1),) * 2))
        got = promoter.next(list(trials))
        assert got == promoter.rerank(trials)
        if got is not None:  # the promotion runs (and never finishes, so it ranks nothing)
            up.append(got.number)
            trials.append(_trial(len(trials), TrialState.RUNNING, ladder.tag(1, got.number)))
    if capped:
        assert len(up) == 30 // 3
        # The share goes to the best Configs there were when each slot opened: the later ones.
        assert up == sorted(set(up))
    else:
        assert len(up) == 28  # every Config from the third on


def test_promoter_ranks_from_scratch_when_trials_vanish_or_come_out_of_order():
    promoter = Promoter(LADDER, ("f1", "f2"), ("minimize", "minimize"))
    tag = LADDER.tag(0)
    trials = [_trial(n, TrialState.PRUNED, tag, (n % 3, 3 - n % 3)) for n in range(9)]
    assert promoter.next(trials) == promoter.rerank(trials) is not None
    fewer = trials[:1] + trials[3:]  # two vanished
    assert promoter.next(fewer) == promoter.rerank(fewer)
    shuffled = trials[::-1]
    assert promoter.next(shuffled) == promoter.rerank(shuffled)
