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
from tradeoff.review._notes import escape
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


def served_study(url: str, name: str) -> dict:
    """The study ``name`` as ``tradeoff dashboard`` serves it (its HTTP API's detail)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tradeoff.cli", "dashboard", "--storage", url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == name]
        return get_json(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}")
    finally:
        server.terminate()
        server.wait(timeout=10)


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
    detail = served_study(url, "dash")

    assert detail["objective_names"] == ["error", "size", "x_cost"]
    frame = result.trials.set_index("trial")
    shown = {t["number"]: t for t in detail["trials"]}
    assert set(shown) == set(frame.index)
    for number, trial in shown.items():
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        config = json.loads(attrs["tradeoff.config"])
        assert config["bits"] == frame.loc[number, "bits"]
        # The dashboard's own parameter display (its trial table, slice and contour plots)
        # shows the level itself: 2, 4 or 8 bits, never the level's index.
        params = {p["name"]: p for p in trial["params"]}
        assert params["bits"]["param_external_value"] == str(config["bits"])
        assert params["bits"]["distribution"]["type"] == "CategoricalDistribution"
        assert [c["value"] for c in params["bits"]["distribution"]["choices"]] == ["2", "4", "8"]
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


def test_dashboard_shows_notes_with_real_levels_and_escaped_names(study_url):
    url, result = study_url
    detail = served_study(url, "dash")

    # optimize wrote no note (notes=False by default); `tradeoff dashboard` wrote them on start.
    note = detail["note"]["body"]
    assert "Pareto set:" in note and "Hypervolume reference point" in note
    # Each summary line is a Markdown block of its own (a paragraph; why trials failed, a list
    # item): lines with no empty line between would render as one run-together paragraph.
    blocks = [block.splitlines() for block in note.split("\n\n")]
    summary = result.summary().splitlines()
    assert any(line.startswith("  ") for line in summary)  # the infeasible trials' reason
    for line in summary:
        if line.startswith(" "):
            (items,) = [b for b in blocks if f"- {escape(line.strip())}" in b]
            assert all(item.startswith("- ") for item in items), items
        else:
            assert [escape(line)] in blocks, note
    assert "| size | minimize | known cost |" in note and "| error | minimize | measured |" in note
    front = set(result.pareto["trial"])
    notes = {t["number"]: t["note"]["body"] for t in detail["trials"] if t["note"]["body"]}
    assert set(notes) == front  # every Pareto trial, and only those
    configs = dict(zip(result.pareto["trial"], result.configs()))
    for number, body in notes.items():
        # The level itself (2, 4 or 8 bits), never the index the study stores for an Ordinal.
        bits = configs[number]["bits"]
        assert f"| bits | {bits} |" in body, body
        assert f"## Trial {number}: on the Pareto set" in body
    # The study's plotly figures: hypervolume over trials and over time, and the front.
    graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    assert set(graphs) == {
        "tradeoff-hypervolume-trials",
        "tradeoff-hypervolume-time",
        "tradeoff-front",
    }
    curve = graphs["tradeoff-hypervolume-trials"]["data"][0]
    assert curve["y"][-1] == pytest.approx(result.hypervolume(), rel=1e-9)
    front = graphs["tradeoff-front"]["data"][1]
    assert front["name"] == "Pareto set" and len(front["x"]) == len(result.pareto)


def test_notes_escape_names_and_show_a_per_layer_table():
    from tradeoff.review import layer_table
    from tradeoff.review._notes import escape, markdown_table

    config = {"quant.fc1.bits": 4, "quant.fc2.bits": 8, "prune.fc1.sparsity": 0.5,
              "prune.fc2.sparsity": 0.0, "lr": 1e-3}  # fmt: skip
    table = layer_table(config)
    assert list(table.index) == ["fc1", "fc2"]
    assert table.loc["fc1"].to_dict() == {"quant.bits": 4, "prune.sparsity": 0.5}
    text = markdown_table(table, index="layer")
    assert "| fc1 | 4 | 0.5 |" in text
    assert escape("<b>x|y</b>*") == "\\<b\\>x\\|y\\</b\\>\\*"
