"""Screenshots of optuna-dashboard reviewing a ``compress`` search, taken by a headless chromium.

Makes a small seeded search (the tiny CNN of ``tests/review/test_browser.py``: per-layer
sparsity 0, 0.25 or 0.5 and 4 or 8 bits, accuracy against size in KiB), serves its SQLite study
with optuna-dashboard's own WSGI app on a free port of 127.0.0.1, and has Debian's ``chromium
--headless=new --screenshot`` draw three pages once the single-page app has fetched the study:
the study page (the hypervolume figures, the front with the baselines as markers), a Pareto
trial's page (its note: objectives, the per-layer table in real levels, the baselines it
dominates) and the study's note page (summary, objectives, baselines), 1400 pixels wide (the
study page 2800 high: its figures come below the dashboard's own plots). Writes
``study.png``, ``trial.png``, ``note.png`` and ``screenshots.json`` (command, commit, versions,
the URLs) under ``--out``. Needs the ``dashboard`` extra and chromium (``make chromium``).

Usage:
    python benchmarks/dashboard_screenshots.py [--n-trials 24] [--seed 0]
        [--budget-ms 15000] [--out benchmarks/results/dashboard]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from provenance import command_line, commit_info

import tradeoff
from tradeoff._compress_result import CompressResult
from tradeoff.objectives import Accuracy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/models.py: the seeded CNN the browser tests use too

from tests.models import cnn_data, tiny_cnn  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "dashboard"
STUDY = "cnn-review"
WIDTH = 1400
HEIGHTS = {"study": 2800, "trial": 1000, "note": 1000}
"""Window height by page: the study page's own figures come below the dashboard's plots."""


def make_study(storage: str, n_trials: int, seed: int) -> CompressResult:
    """The search; ``compress`` writes its notes and figures when it ends."""
    return tradeoff.compress(
        tiny_cnn(), quality=Accuracy(cnn_data()), fidelity=False, quantize={"bits": (4, 8)},
        prune={"sparsity": (0.0, 0.25, 0.5)}, cost="size_kb", n_trials=n_trials, seed=seed,
        storage=storage, study_name=STUDY, show_progress=False,
    )  # fmt: skip


def pareto_trial(result: CompressResult) -> int:
    """The Pareto trial with the most distinct levels (the first such) among those that prune
    to 0.5 and quantize to 4 bits somewhere (or among all)."""
    configs = sorted(zip(result.pareto["trial"], result.configs()))
    some = [(n, c) for n, c in configs if 0.5 in c.values() and 4 in c.values()] or configs
    number, _ = max(some, key=lambda nc: (len(set(nc[1].values())), -nc[0]))
    return int(number)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # the browser opens several connections at once


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def served(storage: str) -> Iterator[str]:
    """optuna-dashboard for ``storage`` in a thread; its root URL (``http://127.0.0.1:<port>``)."""
    import optuna_dashboard

    app = optuna_dashboard.wsgi(storage)
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def study_id(root: str, name: str) -> int:
    """The study's id, from the dashboard's own API (what its app reads)."""
    with urllib.request.urlopen(f"{root}/api/studies", timeout=30) as response:
        studies = json.loads(response.read())["study_summaries"]
    (found,) = [s["study_id"] for s in studies if s["study_name"] == name]
    return int(found)


def screenshot(
    chromium: str, url: str, out: Path, *, height: int, profile: Path, budget_ms: int
) -> None:
    """A PNG of ``url`` (:data:`WIDTH` by ``height`` pixels) after ``budget_ms`` of the page's
    virtual time."""
    run = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
         f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if run.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium failed on {url}:\n{run.stderr[-3000:]}")


def machine_info(chromium: str) -> dict[str, Any]:
    browser = subprocess.run([chromium, "--version"], capture_output=True, text=True)
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tradeoff": tradeoff.__version__,
        **{name: version(name) for name in ("optuna", "optuna-dashboard", "plotly", "torch")},
        "chromium": browser.stdout.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-ms", type=int, default=15000, help="virtual time per page")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="a folder")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: `make chromium` installs Debian's package")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'review.db'}"
        result = make_study(storage, args.n_trials, args.seed)
        number, summary = pareto_trial(result), result.summary()
        pages = {}
        with served(storage) as root:
            base = f"{root}/dashboard/studies/{study_id(root, STUDY)}"
            routes = {"study": "", "trial": f"/trials?numbers={number}", "note": "/note"}
            for name, route in routes.items():
                out = args.out / f"{name}.png"
                screenshot(
                    chromium, base + route, out, height=HEIGHTS[name],
                    profile=Path(tmp) / "profile", budget_ms=args.budget_ms,
                )  # fmt: skip
                pages[name] = {
                    "route": f"/dashboard/studies/<id>{route}", "file": out.name,
                    "window": [WIDTH, HEIGHTS[name]],
                }  # fmt: skip
                print(f"{out}: {out.stat().st_size / 1024:.0f} KiB")
    report = {
        "command": command_line(sys.argv if argv is None else [__file__, *argv]),
        **commit_info(),
        "machine": machine_info(chromium),
        "settings": {"n_trials": args.n_trials, "seed": args.seed, "budget_ms": args.budget_ms},
        "pareto_trial": number,
        "summary": summary,
        "pages": pages,
    }
    (args.out / "screenshots.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
