"""examples/smollm2_compress.py end to end, tiny (``TRADEOFF_SMOKE=1``: 4 blocks, 4/8 bits)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "smollm2_compress.py"


def _run(tmp_path, report, *args):
    env = {**os.environ, "TRADEOFF_SMOKE": "1", "TRADEOFF_DEVICE": "cpu"}
    argv = [sys.executable, str(EXAMPLE), "--report", str(tmp_path / report), *args]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((tmp_path / report).read_text())


def _dominates(a, b):
    no_worse = a["kl"] <= b["kl"] and a["size_mb"] <= b["size_mb"]
    return no_worse and (a["kl"] < b["kl"] or a["size_mb"] < b["size_mb"])


def test_smollm2_report_has_the_front_the_baselines_and_resumes(tmp_path):
    study = ("--n-trials", "6", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "t")
    rep = _run(tmp_path, "first.json", *study)
    assert rep["command"].startswith("python ") and rep["machine"]["tradeoff_commit"]
    assert rep["machine"]["torch"] and rep["machine"]["transformers"]
    res = rep["result"]
    budget, front = res["budget"], res["pareto"]
    assert front and res["hypervolume"] > 0 and res["wall_s"] > 0
    for p in front:  # within the budget, and a Pareto set
        assert p["kl"] <= budget["kl"] and p["size_mb"] <= budget["size_mb"] + 1e-9, p
        assert not any(_dominates(q, p) for q in front), p
        assert {k for k, v in p["config"].items() if k.endswith(".keep")}  # drop switches
    assert {b["kind"] for b in res["baselines"]} == {"dense", "uniform", "proxy"}
    for base in res["baselines"]:
        measured = base["kl"] is not None and math.isfinite(base["kl"])
        expected = [p["trial"] for p in front if measured and _dominates(p, base)]
        assert sorted(base["dominated_by"]) == sorted(expected), base["baseline"]
        if base["feasible"]:  # the search starts from it: the front holds it or better
            same = any(p["kl"] == base["kl"] and p["size_mb"] == base["size_mb"] for p in front)
            assert expected or same, base["baseline"]

    again = _run(tmp_path, "again.json", *study)["result"]  # resumes: no trial runs again
    assert again["trials"] == res["trials"]
    assert again["pareto"] == front and again["baselines"] == res["baselines"]
    # What "auto" picked, recorded: 4 blocks make 9 parameters, so mobo (rule 2); the whole
    # model's 61 are over rule 2's 30, and its size budget makes it evolution (rule 3).
    import optuna

    stored = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert stored.user_attrs["tradeoff.optimizer"] == "mobo"
    assert len([k for k in front[0]["config"]]) == 9
