"""examples/smollm2_compress.py end to end, tiny (``TRADEOFF_SMOKE=1``)."""

from pathlib import Path

from tests.test_examples import run_main


def test_smollm2_report_starts_from_the_proxy_and_names_what_beats_each_baseline(tmp_path):
    rep = run_main("smollm2_compress.py", tmp_path, "--proxy-starts", "--n-trials", "6")
    assert rep["settings"]["proxy_starts"] >= 1
    assert set(rep["runs"]) == {"multi-fidelity", "full budget"}
    fronts = {name: {p["trial"]: p for p in run["pareto"]} for name, run in rep["runs"].items()}
    for base in rep["baselines"]:
        for who in base["beaten_by"]:
            run, trial = who.split("#")
            found = fronts[run][int(trial)]
            assert found["kl"] <= base["kl"] and found["size_mb"] <= base["size_mb"]
    assert rep["fidelity"]["hypervolume_mf"] >= 0
    assert {Path(p).name for p in rep["plots"]} >= {"pareto.png", "hypervolume_time.png"}
