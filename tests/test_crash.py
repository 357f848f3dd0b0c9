"""A driver killed with SIGKILL at any moment resumes to exactly its budget: finished trials are
never re-run; each trial it left RUNNING ends ``stale`` with its reason, uncounted, and re-run."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import tradeoff

from .conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {tests!r})
    import tradeoff
    from conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1

    calls = []
    def evaluate(config):
        calls.append(config)
        with open({log!r}, "a") as f:
            f.write(json.dumps(config) + "\\n")
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGKILL)  # the driver dies mid-trial
        return zdt1(config)

    tradeoff.optimize(evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="tpe",
                      n_trials=10, storage={url!r}, study_name="crash", seed=0,
                      show_progress=False)
    """
)


def test_sigkilled_driver_resumes_from_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    log = tmp_path / "calls.jsonl"
    code = SCRIPT.format(tests=str(Path(__file__).parent), log=str(log), url=url)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    first = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(first) == 5

    # Resume with a short heartbeat grace so the dead driver's trial counts as stale now.
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    time.sleep(2.0)
    resumed = []
    result = tradeoff.optimize(
        lambda c: resumed.append(c) or zdt1(c),
        ZDT_SPACE,
        objectives=ZDT_OBJECTIVES,
        optimizer="tpe",
        n_trials=10,
        storage=storage,
        study_name="crash",
        seed=0,
        show_progress=False,
    )
    assert resumed[0] == first[4]  # the trial that was running when the driver died
    assert len(resumed) == 6  # 4 finished before the crash; 10 in all
    assert not any(c in first[:4] for c in resumed)
    counts = result.trials["status"].value_counts().to_dict()
    assert counts == {"complete": 10, "stale": 1}


# A driver SIGKILLed at a chosen moment of its k-th trial, in a 2-worker search on SQLite (the
# issue's scenario, scaled down). The storage beats every second with a 1 s grace, so the
# resumed run sees the dead driver's trials go stale within seconds.
KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time
    sys.path.insert(0, {tests!r})
    import optuna
    import tradeoff
    from conftest import ZDT_OBJECTIVES, ZDT_SPACE, zdt1

    MOMENT, K = {moment!r}, {k!r}
    storage = optuna.storages.RDBStorage({url!r}, heartbeat_interval=1, grace_period=1)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    lock, calls = threading.Lock(), []

    def evaluate(config):
        with lock:
            calls.append(config)
            n = len(calls)
            with open({log!r}, "a") as f:
                f.write(json.dumps(config) + "\\n")
        if MOMENT == "evaluate" and n == K:
            die()  # mid-evaluation; the other worker's trial is in flight too
        time.sleep(0.02)
        return zdt1(config)

    def patch(name, hit):
        original, seen = getattr(storage, name), []
        def wrapper(trial_id, *args, **kwargs):
            if hit(trial_id, kwargs.get("key", args[0] if args else None), seen):
                die()
            return original(trial_id, *args, **kwargs)
        setattr(storage, name, wrapper)

    def nth_trial(trial_id, seen):
        if trial_id not in seen:
            seen.append(trial_id)
            return len(seen) == K
        return False

    if MOMENT == "ask":  # while its parameters and first heartbeat are written (one
        patch("check_trial_is_updatable", lambda i, k, s: nth_trial(i, s))  # transaction)
    elif MOMENT == "heartbeat":  # created, before its parameters and first heartbeat
        create, made = storage._create_new_trial, []  # what Optuna's cache calls
        def created(study_id, template_trial=None):
            frozen = create(study_id, template_trial)
            if nth_trial(frozen._trial_id, made):
                die()
            return frozen
        storage._create_new_trial = created
    elif MOMENT in ("config", "tell"):  # while its Config is written (with its parameters
        # and heartbeat), or its result (with its final state): one transaction each
        key = "tradeoff.config" if MOMENT == "config" else "tradeoff.result"
        write, hit = storage._set_trial_attr_without_commit, []
        def attr(session, model, trial_id, name, value):
            if name == key and nth_trial(trial_id, hit):
                die()
            return write(session, model, trial_id, name, value)
        storage._set_trial_attr_without_commit = attr

    tradeoff.optimize(evaluate, ZDT_SPACE, objectives=ZDT_OBJECTIVES, optimizer="tpe",
                      n_trials={n!r}, n_workers=2, backend="local", storage=storage,
                      study_name="crash", seed=0, show_progress=False)
    """
)


@pytest.mark.parametrize(
    ("moment", "wait_s"),
    [
        ("ask", 0.0),
        ("heartbeat", 0.0),
        ("config", 2.5),  # the case: its heartbeat already stale when the rerun starts
        ("evaluate", 0.0),
        ("tell", 0.0),
    ],
)
def test_a_driver_killed_at_any_moment_resumes_to_exactly_its_budget(tmp_path, moment, wait_s):
    n, url, log = 12, f"sqlite:///{tmp_path / 'crash.db'}", tmp_path / "calls.jsonl"
    code = KILL_SCRIPT.format(
        tests=str(Path(__file__).parent), moment=moment, k=6, url=url, log=str(log), n=n
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    before = optuna.load_study(study_name="crash", storage=url).trials
    finished = [t.params for t in before if t.state == TrialState.COMPLETE]
    killed = [t for t in before if t.state == TrialState.RUNNING]
    assert killed and len(finished) + len(killed) == len(before)

    time.sleep(wait_s)  # 0: re-run at once, as a user would; it waits out the grace period
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    resumed: list[dict] = []
    result = tradeoff.optimize(
        lambda c: resumed.append(dict(c)) or zdt1(c),
        ZDT_SPACE,
        objectives=ZDT_OBJECTIVES,
        optimizer="tpe",
        n_trials=n,
        n_workers=2,
        storage=storage,
        study_name="crash",
        seed=1,
        show_progress=False,
    )
    trials = result.study.trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n
    for lost in killed:  # each marked, in the storage itself, with why
        attrs = trials[lost.number].user_attrs
        assert trials[lost.number].state == TrialState.FAIL
        assert attrs.get("tradeoff.status") == "stale", (lost.number, attrs)
        assert attrs.get("tradeoff.reason")
    fails = [t for t in trials if t.state == TrialState.FAIL]
    assert len(fails) == len(killed)  # no other trial failed: none counts as a failed evaluation
    assert result.trials["status"].value_counts().to_dict() == {"complete": n, "stale": len(killed)}
    assert not [c for c in resumed if ZDT_SPACE.encode(c) in finished]  # none re-run
    assert len(resumed) == n - len(finished)  # each Config once
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for lost in killed:
        drawn = set(lost.params) == set(ZDT_SPACE)
        retries = [t for t in complete if t.user_attrs.get("tradeoff.retry_of") == lost.number]
        assert len(retries) == drawn  # a Config it never finished drawing has nothing to re-run
        if drawn:
            assert ZDT_SPACE.decode(lost.params) in resumed
            assert retries[0].params == lost.params


# compress killed mid-search: the knapsack measured before the search is on the study, so the
# resumed call measures neither it nor a finished trial again.
COMPRESS_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import optuna, torch
    from torch import nn
    import tradeoff
    from tradeoff.objectives import QualityFn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4)).eval()
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    calls = []

    def error(m, budget):
        calls.append(1)
        with torch.no_grad():
            value = float((m(x).argmax(1) != y).float().mean())
        with open({log!r}, "a") as f:
            f.write(json.dumps([value, [round(float(w.sum()), 6) for w in m.parameters()]]) + "\\n")
        if len(calls) == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)
        return value

    storage = optuna.storages.RDBStorage({url!r}, heartbeat_interval=1, grace_period=1)
    tradeoff.compress(model, quality=QualityFn(error, "error"), quantize={{"bits": (2, 4, 8)}},
                      n_trials=10, storage=storage, study_name="c", seed=0, show_progress=False)
    """
)


def test_sigkilled_compress_resumes_without_measuring_the_knapsack_or_a_trial_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    log = tmp_path / "calls.jsonl"
    # 1 dense check, 1 + 3 layers x 2 other levels knapsack measurements, then 5 trials: the
    # 5th (the knapsack's Configs and uniform levels come first) dies mid-evaluation.
    proxy, kill_at = 1 + 3 * 2, 1 + 7 + 5
    code = COMPRESS_SCRIPT.format(log=str(log), url=url, kill_at=kill_at)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    before = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(before) == kill_at

    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    time.sleep(2.0)
    torch = pytest.importorskip("torch")
    from torch import nn

    from tradeoff.objectives import QualityFn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4)).eval()  # fmt: skip
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    resumed = []

    def error(m, budget):
        with torch.no_grad():
            resumed.append([round(float(w.sum()), 6) for w in m.parameters()])
            return float((m(x).argmax(1) != y).float().mean())

    result = tradeoff.compress(
        model, quality=QualityFn(error, "error"), quantize={"bits": (2, 4, 8)}, n_trials=10,
        storage=storage, study_name="c", seed=0, show_progress=False,
    )  # fmt: skip
    # The dense check, then the 6 trials left (4 finished; the killed one runs again).
    assert len(resumed) == 1 + 6
    finished = [weights for _, weights in before[1 + proxy : kill_at - 1]]
    assert not any(w in finished for w in resumed[1:])  # no finished trial runs twice
    assert resumed[1] == before[-1][1]  # the trial the kill interrupted, first
    counts = result.trials["status"].value_counts().to_dict()
    assert counts == {"complete": 10, "stale": 1}
    assert (result.baselines["kind"] == "proxy").any()  # read from the study, not re-measured
