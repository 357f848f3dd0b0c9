"""What every benchmark JSON records about how it was made: the command and the commit.

Versions and the machine come from each script's ``machine_info`` (they differ in which
packages matter); ``tests/test_readme_numbers.py`` checks that the JSON the README quotes has
all four.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line, as run from the repository root (``python benchmarks/...``)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    if script.is_relative_to(ROOT):
        argv[0] = str(script.relative_to(ROOT))
    return shlex.join(["python", *argv])


def commit_info() -> dict[str, Any]:
    """The checkout's commit and whether the code in ``tradeoff/``, ``benchmarks/`` or
    ``examples/`` differs from it (the commit alone would not say what ran); results do not
    count. A ``tradeoff`` imported from elsewhere (an editable install of another checkout,
    say: run a clone's scripts with ``PYTHONPATH=<clone>``) is not this commit's code either:
    the run is then dirty, and ``tradeoff_imported_from`` says where it came from."""

    def git(*args: str) -> str:
        try:
            run = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        except OSError:
            return ""
        return run.stdout.strip() if run.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    code = ("tradeoff", "benchmarks", "examples", ":(exclude)benchmarks/results")
    dirty = bool(git("status", "--porcelain", "--", *code))
    info: dict[str, Any] = {"tradeoff_commit": head or None}
    module = sys.modules.get("tradeoff")
    source = getattr(module, "__file__", None)
    package = None if source is None else Path(source).resolve().parent
    if package is not None and package.parent != ROOT:
        dirty = True
        info["tradeoff_imported_from"] = str(package)
    info["tradeoff_dirty"] = dirty if head else None
    return info
