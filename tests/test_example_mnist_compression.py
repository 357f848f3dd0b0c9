"""examples/mnist_compression.py (``make run``) end to end, on 200 test digits."""

import json
import runpy

import pytest

from tests.test_examples import EXAMPLES, _dominates

SIGNS = {"accuracy": -1.0, "size_kb": 1.0, "mbitops": 1.0}


@pytest.fixture(scope="module")
def main():
    (path,) = [p for p in EXAMPLES if p.name == "mnist_compression.py"]
    return runpy.run_path(str(path), run_name="__tradeoff__")["main"]


def _run(main, capsys, *args):
    main(["--backend", "local", "--n-workers", "2", "--n-trials", "24", *args])
    out = capsys.readouterr().out
    return out[out.index("optimizer auto -> ") : out.index("report: ")]


def test_main_job_is_reproducible_resumes_and_reports_in_cwd(main, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRADEOFF_SMOKE", "1")
    monkeypatch.chdir(tmp_path)
    first = _run(main, capsys, "--storage", "sqlite:///a.db")
    report = json.loads((tmp_path / "tradeoff-runs" / "mnist.json").read_text())
    # A fresh study with the same seed, two workers finishing in any order: the same table.
    assert _run(main, capsys, "--storage", "sqlite:///b.db") == first
    # The first study again: it is complete, so it runs nothing and prints the same table.
    assert _run(main, capsys, "--storage", "sqlite:///a.db") == first
    again = json.loads((tmp_path / "tradeoff-runs" / "mnist.json").read_text())
    assert again == report and report["trials"] == 24

    assert report["settings"]["optimizer"] == "tpe"  # what auto picked, as recorded
    front = {row["trial"]: row for row in report["pareto"]}
    for a in front.values():  # a Pareto set: nobody in it dominates another
        assert not any(_dominates(b, a, SIGNS) for b in front.values())
    kinds = [row["kind"] for row in report["baselines"]]
    assert kinds[0] == "dense" and kinds.count("uniform") == 16 and "proxy" in kinds
    for base in report["baselines"]:  # the domination lists are the brute-force ones
        assert base["dominated_by"] == [t for t, r in front.items() if _dominates(r, base, SIGNS)]
    dense = report["baselines"][0]
    assert dense["accuracy"] > 0.9 and dense["size_kb"] == pytest.approx(413.9, abs=0.1)
    # The knapsack's Configs started the search: each proxy row was measured by a trial.
    proxy = [row["trial"] for row in report["baselines"] if row["kind"] == "proxy"]
    assert proxy and all(isinstance(t, int) for t in proxy)
