"""Searches on a real two-node Ray cluster: placement, killed workers and nodes, a killed
driver, and Ray Jobs.

One cluster (tests/servers/ray_cluster.py) serves the whole module. Each search's driver runs
in a subprocess: this pytest process may hold its own Ray already, and a process joins only
one. Every evaluation appends a line (event, Config, worker pid, node id, driver pid) to a log
file, which tells what ran where and how many times.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest

from tradeoff import SearchResult

pytestmark = [pytest.mark.cluster, pytest.mark.ray]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 150

DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import optuna
    import tradeoff
    from tradeoff.objectives import Objective
    from tradeoff.spaces import Float, SearchSpace

    S = json.loads(sys.argv[1])
    DRIVER_PID = os.getpid()

    def log(event, config):
        import ray
        node = ray.get_runtime_context().get_node_id()
        record = {"event": event, "config": config, "pid": os.getpid(), "node": node,
                  "driver": DRIVER_PID}
        with open(S["log"], "a") as f:
            f.write(json.dumps(record) + "\\n")

    def evaluate(config):
        log("start", config)
        if config["x0"] < S["kill_below"]:  # the worker dies on the first attempt
            marker = os.path.join(S["markers"], repr(config["x0"]))
            if not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(S["sleep_s"])
        log("done", config)
        return {"f1": config["x0"], "f2": 1.0 - config["x0"] ** 0.5 + config["x1"]}

    storage = S["storage"]
    if S["grace_s"]:  # a short heartbeat grace, so a resumed run sees the dead one's trials
        storage = optuna.storages.RDBStorage(storage, heartbeat_interval=1,
                                             grace_period=S["grace_s"])
    tradeoff.optimize(
        evaluate, SearchSpace({"x0": Float(0.0, 1.0), "x1": Float(0.0, 1.0)}),
        objectives=[Objective("f1"), Objective("f2")], optimizer="random",
        n_trials=S["n_trials"], n_workers=S["n_workers"], backend="ray",
        ray_address=S["address"], num_cpus=S["num_cpus"], resources=S["resources"],
        max_retries=S["max_retries"], storage=storage, study_name=S["study"], seed=0,
        show_progress=False,
    )
    """
)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    from tests.servers.ray_cluster import RayCluster

    with RayCluster(head_cpus=1, worker_cpus=2) as running:
        yield running


class Search:
    """One search's driver command, its evaluation log, and its study."""

    def __init__(self, cluster: Any, tmp_path: Path, storage: str | None = None, **settings: Any):
        from tests.servers.ray_cluster import driver_env

        self.env = driver_env()
        self.log = tmp_path / "evaluations.jsonl"
        (tmp_path / "markers").mkdir()
        self.settings = {
            "address": cluster.address,
            "storage": storage or f"sqlite:///{tmp_path / 'study.db'}",
            "study": "cluster",
            "log": str(self.log),
            "markers": str(tmp_path / "markers"),
            "n_trials": 6,
            "n_workers": 2,
            "num_cpus": 1.0,
            "resources": None,
            "max_retries": 3,
            "kill_below": -1.0,
            "sleep_s": 0.2,
            "grace_s": None,
            **settings,
        }
        script = tmp_path / "driver.py"
        script.write_text(DRIVER)
        self.command = [sys.executable, str(script), json.dumps(self.settings)]

    def run(self) -> subprocess.CompletedProcess[str]:
        """Run the driver to the end; fail the test with its output if it fails."""
        proc = subprocess.run(
            self.command, env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        records = [json.loads(line) for line in lines]
        return [r for r in records if event is None or r["event"] == event]

    def wait_for(self, event: str, n: int, proc: subprocess.Popen[str], **match: Any) -> None:
        """Wait until the log has ``n`` ``event`` lines matching ``match``."""
        deadline = time.monotonic() + TIMEOUT_S
        while len([e for e in self.events(event) if match.items() <= e.items()]) < n:
            assert proc.poll() is None, f"the driver exited early: {proc.communicate()[0][-3000:]}"
            assert time.monotonic() < deadline, f"no {n} {event} events in the log"
            time.sleep(0.01)

    def result(self) -> SearchResult:
        return SearchResult.load(self.settings["storage"], self.settings["study"])


def key(config: dict[str, float]) -> tuple[float, ...]:
    return tuple(sorted(config.items()))  # type: ignore[arg-type]


def statuses(result: SearchResult) -> dict[str, int]:
    return result.trials["status"].value_counts().to_dict()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def test_search_joins_the_cluster_and_runs_where_its_resources_are(cluster, tmp_path):
    worker_node = cluster.node_ids()["worker"]
    search = Search(cluster, tmp_path, n_trials=6, num_cpus=0.5, resources={"worker_node": 0.5})
    search.run()
    trials = search.result().trials
    assert len(trials) == 6 and (trials["status"] == "complete").all()
    assert (trials["node"] == worker_node).all()  # as the pool recorded it
    done = search.events("done")
    assert len(done) == 6 and {e["node"] for e in done} == {worker_node}  # as evaluate saw it
    assert len({e["driver"] for e in done}) == 1  # one driver process, joined from outside


@pytest.mark.parametrize("max_retries", [3, 0])
def test_a_worker_killed_mid_trial_is_retried_or_fails_with_the_reason(
    cluster, tmp_path, max_retries
):
    search = Search(cluster, tmp_path, n_trials=8, kill_below=0.5, max_retries=max_retries)
    search.run()
    trials = search.result().trials
    starts = [key(e["config"]) for e in search.events("start")]
    killed = {k for k in starts if dict(k)["x0"] < 0.5}
    assert killed, "seed 0 proposes some x0 < 0.5: the test would kill nothing"
    assert len(trials) == 8  # the budget, with no extra trial for the kills
    if max_retries:
        assert (trials["status"] == "complete").all()
        assert sorted(starts) == sorted([*{*starts}, *killed])  # each killed Config ran twice
    else:
        failed = trials[trials["status"] == "failed"]
        assert {key({"x0": r.x0, "x1": r.x1}) for r in failed.itertuples()} == killed
        assert failed["failure"].str.contains("worker died|WorkerCrashedError").all()
        assert len(starts) == 8  # nothing re-ran
        assert (trials["status"] == "complete").sum() == 8 - len(killed)


def test_a_killed_driver_resumes_on_the_cluster_from_postgresql(cluster, tmp_path, postgres_url):
    pytest.importorskip("psycopg2")
    study = f"resume-{uuid.uuid4().hex[:8]}"
    search = Search(
        cluster, tmp_path, postgres_url, study=study, n_trials=10, sleep_s=0.5, grace_s=2
    )
    proc = search.start()
    try:
        search.wait_for("start", 6, proc)  # 4 trials done, 2 running
    finally:
        stop(proc)  # SIGKILL mid-search, while the driver waits on its workers
    killed_at = time.monotonic()
    first = optuna.load_study(study_name=study, storage=postgres_url).get_trials(deepcopy=False)
    finished = {key(t.params) for t in first if t.state == optuna.trial.TrialState.COMPLETE}
    running = {key(t.params) for t in first if t.state == optuna.trial.TrialState.RUNNING}
    assert len(finished) >= 4 and running

    time.sleep(max(0.0, 3.0 - (time.monotonic() - killed_at)))  # the grace period passes
    search.run()  # the same command again
    result = search.result()
    assert statuses(result) == {"complete": 10, "stale": len(running)}
    second = [key(e["config"]) for e in search.events("start") if e["driver"] != proc.pid]
    assert not finished & set(second)  # finished trials never ran again
    assert running <= set(second)  # the lost ones did
    assert len(second) == 10 - len(finished)  # and nothing else ran twice


def test_ray_jobs_runs_a_search_file_on_the_cluster(cluster, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    from tests.servers.ray_cluster import driver_env

    storage = f"sqlite:///{tmp_path / 'jobs.db'}"
    job_id = f"tradeoff-{uuid.uuid4().hex[:8]}"
    # examples/ is uploaded as the job's working dir; inside the job, "auto" finds the cluster.
    submit = [str(Path(sys.executable).with_name("ray")), "job", "submit", "--address"]
    submit += [cluster.dashboard_url, "--submission-id", job_id, "--working-dir"]
    submit += [str(REPO / "examples"), "--", sys.executable, "-m", "tradeoff.cli", "run"]
    submit += ["zdt.py", "--backend", "ray", "--ray-address", "auto", "--n-workers", "2"]
    submit += ["--n-trials", "8", "--optimizer", "random", "--seed", "0", "--no-progress"]
    submit += ["--storage", storage, "--study", "zdt-job"]
    proc = subprocess.run(
        submit, env=driver_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    client = JobSubmissionClient(cluster.dashboard_url)
    assert client.get_job_status(job_id) == JobStatus.SUCCEEDED, proc.stdout[-3000:]
    assert "Pareto set" in client.get_job_logs(job_id)
    trials = SearchResult.load(storage, "zdt-job").trials
    assert len(trials) == 8 and (trials["status"] == "complete").all()


def test_a_killed_worker_node_fails_over_to_the_head(cluster, tmp_path):
    nodes = cluster.node_ids()
    search = Search(cluster, tmp_path, n_trials=6, n_workers=3, sleep_s=1.0)
    proc = search.start()
    try:
        search.wait_for("start", 1, proc, node=nodes["worker"])
        cluster.kill_worker_node()  # raylet and workers SIGKILLed mid-trial
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    finally:
        stop(proc)
        cluster.start_worker_node()  # a fresh worker node for any test after this one
    assert proc.returncode == 0, out[-3000:]
    trials = search.result().trials
    assert len(trials) == 6
    interrupted = {key(e["config"]) for e in search.events("start") if e["node"] == nodes["worker"]}
    interrupted -= {key(e["config"]) for e in search.events("done") if e["node"] == nodes["worker"]}
    assert interrupted  # some trials were running on the node when it died
    rows = [r for r in trials.itertuples() if key({"x0": r.x0, "x1": r.x1}) in interrupted]
    for row in rows:  # re-run on the head, or failed saying why
        on_head = row.status == "complete" and row.node == nodes["head"]
        assert on_head or (row.status == "failed" and "dead" in row.failure), row
