import json
from pathlib import Path

import pytest

from tradeoff.cli import main

ROOT = Path(__file__).resolve().parent.parent
ZDT = ROOT / "examples" / "zdt.py"


def test_run_then_pareto_and_studies(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code = main(
        [
            "run",
            str(ZDT),
            "--n-trials",
            "12",
            "--optimizer",
            "random",
            "--seed",
            "0",
            "--storage",
            url,
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "12 trials: 12 complete" in out
    assert f"tradeoff dashboard --storage {url}" in out

    assert main(["pareto", "--storage", url, "--study", "zdt", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["pareto"] for r in rows)
    assert all(r["f2"] <= 6.0 for r in rows)  # the file's constraint

    assert main(["pareto", "--storage", url, "--study", "zdt", "--format", "csv", "--all"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 13

    assert main(["studies", "--storage", url]) == 0
    assert "zdt\t12 trials\tminimize,minimize" in capsys.readouterr().out

    # Re-running the same command resumes: nothing left to do.
    assert main(["run", str(ZDT), "--n-trials", "12", "--storage", url, "--no-progress"]) == 0
    assert "12 trials: 12 complete" in capsys.readouterr().out

    out_dir = tmp_path / "plots"
    args = ["plot", "--storage", url, "--study", "zdt", "--out", str(out_dir)]
    assert main([*args, "--format", "png", "--format", "html"]) == 0
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert written and all(p.parent == out_dir and p.stat().st_size > 0 for p in written)
    assert {p.suffix for p in written} == {".png", ".html"}


def test_run_file_missing_definitions(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("space = None\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "must define space, objectives, evaluate; missing: objectives, evaluate" in err


def test_run_missing_file(capsys):
    assert main(["run", "nope.py"]) == 2
    assert "no such search file: nope.py" in capsys.readouterr().err


def test_run_bad_flags_are_reported(capsys, tmp_path):
    code = main(["run", str(ZDT), "--n-trials", "0", "--storage", f"sqlite:///{tmp_path}/x.db"])
    assert code == 2
    assert "n_trials must be an integer >= 1" in capsys.readouterr().err


def test_pareto_of_unknown_study(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["pareto", "--storage", url, "--study", "ghost"]) == 2
    assert "No study named 'ghost'" in capsys.readouterr().err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "pareto", "studies", "plot", "dashboard"):
        assert command in out


def test_storage_url_from_the_environment(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("TRADEOFF_STORAGE", url)
    assert main(["run", str(ZDT), "--n-trials", "3", "--optimizer", "random", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["studies"]) == 0
    assert "zdt\t3 trials" in capsys.readouterr().out


def test_run_resources_flag_must_be_a_json_object(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(SystemExit):
        main(["run", str(ZDT), "--storage", url, "--resources", "worker_node=1"])
    assert "not JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(ZDT), "--storage", url, "--resources", '{"gpu": "a"}'])
    assert "expected" in capsys.readouterr().err
