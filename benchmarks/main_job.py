"""The README's main-job table: ``make run``'s command in fresh directories, and its evidence.

Each run executes the command of the Makefile's ``run`` target (read from the Makefile, so the
two cannot drift) in a new temporary working directory: a fresh SQLite study, the report in
that directory's ``tradeoff-runs/``, and, unless ``--keep-cache``, a fresh model cache, so the
CNN is trained again. The table the example prints (optimizer, Pareto set, baselines) must be
the same in every run; the report of the first run is written to ``--out`` with the command,
the commit, the versions, the machine, each run's wall time and whether the tables agreed.
Exits 1 when they did not.

Usage:
    python benchmarks/main_job.py [--runs 2] [--keep-cache] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from optimizers import machine_info, source_info, write_report
from provenance import command_line

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "mnist.json"
TABLE_START, TABLE_END = "optimizer ", "report: "


def make_run_command(makefile: Path = ROOT / "Makefile") -> list[str]:
    """The ``run`` target's recipe, with ``$(BIN)/python`` as this interpreter."""
    lines = makefile.read_text().splitlines()
    start = lines.index("run: install") + 1
    recipe = []
    for line in lines[start:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().removesuffix("\\"))
    argv = shlex.split(" ".join(recipe))
    if argv[0] != "$(BIN)/python" or not (ROOT / argv[1]).is_file():
        raise SystemExit(f"the Makefile's run target is no longer '$(BIN)/python FILE ...': {argv}")
    return [sys.executable, *argv[1:]]


def printed_table(stdout: str) -> list[str]:
    """The example's table: from its ``optimizer ...`` line up to the ``report:`` line."""
    lines = stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(TABLE_START))
    last = next(i for i, line in enumerate(lines) if line.startswith(TABLE_END))
    table = [line.rstrip() for line in lines[first:last]]
    while table and not table[-1]:
        table.pop()
    return table


def run_once(argv: list[str], *, keep_cache: bool) -> dict[str, Any]:
    """``argv`` (its script relative to the repository) in a new working directory, with this
    checkout's ``tradeoff`` first on the path; its printed table, report and wall time."""
    with tempfile.TemporaryDirectory(prefix="tradeoff-main-job-") as cwd:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if not keep_cache:
            env["TRADEOFF_CACHE"] = str(Path(cwd) / "cache")
        start = time.perf_counter()
        command = [argv[0], str(ROOT / argv[1]), *argv[2:]]
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{shlex.join(command)} failed:\n{proc.stderr[-3000:]}")
        report = json.loads((Path(cwd) / "tradeoff-runs" / "mnist.json").read_text())
    return {"table": printed_table(proc.stdout), "report": report, "wall_s": wall}


def evidence(
    runs: list[dict[str, Any]], argv: list[str], load: tuple[float, ...], *, fresh_cache: bool
) -> dict[str, Any]:
    """The first run's report, with how it was made and whether every run printed its table."""
    tables = [r["table"] for r in runs]
    return {
        "command": shlex.join(["python", *argv[1:]]),  # make run's, in a fresh directory
        "benchmark_command": command_line(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(load), "ray": version("ray"), **source_info()},
        "runs": len(runs),
        "fresh_model_cache": fresh_cache,
        "wall_s": [round(r["wall_s"], 1) for r in runs],
        "tables_identical": all(t == tables[0] for t in tables),
        "table": tables[0],
        **runs[0]["report"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="fresh runs whose tables must agree")
    parser.add_argument("--keep-cache", action="store_true", help="reuse the trained model")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON evidence path")
    args = parser.parse_args(argv)
    command, load = make_run_command(), os.getloadavg()
    runs = []
    for i in range(args.runs):
        runs.append(run_once(command, keep_cache=args.keep_cache))
        print(f"run {i + 1}/{args.runs}: {runs[-1]['wall_s']:.0f} s", flush=True)
    report = evidence(runs, command, load, fresh_cache=not args.keep_cache)
    print("\n".join(report["table"]))
    for i, run in enumerate(runs[1:], 2):
        if run["table"] != report["table"]:
            print(f"\nrun {i} printed another table:\n" + "\n".join(run["table"]))
    write_report(report, args.out)
    print(f"\ntables identical: {report['tables_identical']}; wrote {args.out}")
    return 0 if report["tables_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
