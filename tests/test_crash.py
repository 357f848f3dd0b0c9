"""A driver killed with SIGKILL mid-search resumes without re-running finished trials."""

import json
import subprocess
import sys
import textwrap
import time

import optuna

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
    code = SCRIPT.format(
        tests=str(__import__("pathlib").Path(__file__).parent), log=str(log), url=url
    )
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
