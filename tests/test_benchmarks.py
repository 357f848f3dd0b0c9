"""The benchmark scripts run (tiny settings) and write the JSON the README quotes from."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.ray
def test_engine_overhead_quick(tmp_path):
    out = tmp_path / "engine.json"
    # Its own process: the script starts and stops its own Ray instance.
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "engine_overhead.py"),
            "--quick",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    engines = {row["engine"] for row in report["overhead"]}
    assert {"optuna study.optimize", "tradeoff local", "tradeoff ray"} <= engines
    assert any("tune" in e for e in engines)
    assert all(row["ms_per_trial"] > 0 for row in report["overhead"])
    assert all(0 < row["efficiency"] <= 1.05 for row in report["parallel"])
    assert "tradeoff ray" in proc.stdout
