"""What optuna-dashboard 0.21 shows for a tradeoff study, read through its own HTTP API."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import tradeoff
from tradeoff.objectives import Constraint, Objective
from tradeoff.spaces import Float, Ordinal, SearchSpace

pytest.importorskip("optuna_dashboard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def study_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    space = SearchSpace({"bits": Ordinal([2, 4, 8]), "x": Float(0.0, 1.0)})
    result = tradeoff.optimize(
        lambda c: {"error": (1 - c["x"]) / c["bits"]},
        space,
        objectives=[
            Objective("error"),
            Objective("size", fn=lambda c: c["bits"] * 10.0),
            Objective("x_cost", fn=lambda c: c["x"]),
        ],
        constraints=[Constraint("size", "<=", 40.0), Constraint("error", "<=", 0.2)],
        optimizer="random",
        n_trials=20,
        storage=url,
        study_name="dash",
        seed=1,
        show_progress=False,
    )
    return url, result


def test_dashboard_shows_names_configs_and_feasibility(study_url):
    url, result = study_url
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tradeoff.cli", "dashboard", "--storage", url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == "dash"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}")
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert detail["objective_names"] == ["error", "size", "x_cost"]
    frame = result.trials.set_index("trial")
    shown = {t["number"]: t for t in detail["trials"]}
    assert set(shown) == set(frame.index)
    for number, trial in shown.items():
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        config = json.loads(attrs["tradeoff.config"])
        assert config["bits"] == frame.loc[number, "bits"]
        if trial["state"] == "Complete":
            # The dashboard's feasibility rule (every constraint <= 0) agrees with tradeoff's.
            dashboard_feasible = all(c <= 0 for c in trial["constraints"])
            assert dashboard_feasible == bool(frame.loc[number, "feasible"])
            assert len(trial["constraints"]) == 2
    statuses = set(frame["status"])
    assert {"complete", "infeasible"} <= statuses  # both kinds were exercised
    assert any(not frame.loc[n, "feasible"] for n in frame.index[frame["status"] == "complete"])


def test_dashboard_binds_to_loopback_by_default():
    from tradeoff.cli import _parser

    args = _parser().parse_args(["dashboard", "--storage", "sqlite:///x.db"])
    assert args.host == "127.0.0.1"
