"""What optuna-dashboard 0.21 shows of a ``compress`` search in a real headless browser.

One small seeded study (a tiny CNN, per-layer sparsity 0 or 0.5 and 4 or 8 bits), served by
optuna-dashboard's own WSGI app on 127.0.0.1, read by Debian's ``chromium --headless=new
--dump-dom`` after the single-page app has fetched the study and plotly has drawn: the study
page (the figures), a Pareto trial's page (its note's per-layer table, and the dashboard's own
Parameter field in real levels) and the note page (the summary and the baselines). ``make test``
installs chromium (``make chromium``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import socketserver
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

torch = pytest.importorskip("torch")
optuna_dashboard = pytest.importorskip("optuna_dashboard")
pytest.importorskip("plotly")


import tradeoff  # noqa: E402
from tests.models import cnn_data, tiny_cnn  # noqa: E402
from tradeoff._compress_result import CompressResult  # noqa: E402
from tradeoff.objectives import Accuracy  # noqa: E402
from tradeoff.review import layer_table  # noqa: E402

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed: `make chromium` (part of `make test`) installs "
        "Debian's package with apt-get",
    ),
]


# The study ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('browser') / 'review.db'}"


@pytest.fixture(scope="module")
def result(storage: str) -> CompressResult:
    """A compress search; compress wrote its notes and figures when it ended."""
    return tradeoff.compress(
        tiny_cnn(), quality=Accuracy(cnn_data()), fidelity=False, quantize={"bits": (4, 8)},
        prune={"sparsity": (0.0, 0.5)}, n_trials=10, seed=0, storage=storage,
        study_name="browser", show_progress=False,
    )  # fmt: skip


# The server and the browser -------------------------------------------------------------------
class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # the browser opens several connections at once


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def dashboard(storage: str, result: CompressResult) -> Iterator[str]:
    """The study's page (``http://127.0.0.1:<port>/dashboard/studies/<id>``), served from the
    study's storage on a free port in a thread for the module."""
    app = optuna_dashboard.wsgi(storage)  # a reader of its own, as a server is
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(f"{root}/api/studies", timeout=30) as response:
            studies = json.loads(response.read())["study_summaries"]
        (study_id,) = [s["study_id"] for s in studies if s["study_name"] == "browser"]
        yield f"{root}/dashboard/studies/{study_id}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile of the module's own: no lock shared with another chromium on the machine."""
    return tmp_path_factory.mktemp("chromium-profile")


def dump_dom(url: str, profile: Path, until: str, budget_ms: int = 8000) -> str:
    """The DOM of ``url`` once ``until`` is in it: the page is loaded again with twice the
    virtual-time budget (three tries) when a busy machine kept the app from drawing it."""
    for _ in range(3):
        run = subprocess.run(
            [CHROMIUM or "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        if until in run.stdout:
            return run.stdout
        budget_ms *= 2
    raise AssertionError(f"{until!r} never appeared on {url}:\n{text_of(run.stdout)[-3000:]}")


def text_of(dom: str) -> str:
    """The page's text, tags dropped and whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


class _Tables(HTMLParser):
    """Each ``<table>`` of a page as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables_of(dom: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(dom)
    return parser.tables


def level(value: object) -> str:
    """A level as a note writes it (``4``, ``0.5``, ``0`` for 0.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def parameter_field(dom: str) -> dict[str, str]:
    """The dashboard's own Parameter field of a trial page: name -> the value it shows."""
    start = dom.index(">Parameter<")
    section = dom[start : dom.index("</div></div></div>", start)]
    lines = [html.unescape(line) for line in re.findall(r"<p[^>]*>([^<]*)</p>", section)]
    return dict(line.rsplit(" ", 1) for line in lines)


# The pages ------------------------------------------------------------------------------------
def test_study_page_draws_the_hypervolume_and_the_front_with_baselines(dashboard, profile):
    dom = dump_dom(dashboard, profile, until="Hypervolume over finished trials")
    titles = set(re.findall(r'class="gtitle"[^>]*>([^<]*)<', dom))  # plotly's figure titles
    assert {
        "Hypervolume over finished trials",
        "Hypervolume over wall time (s)",
        "Pareto set: accuracy against size_mb",
    } <= titles, titles
    legend = set(re.findall(r'class="legendtext"[^>]*>([^<]*)<', dom))
    assert {
        "trials", "Pareto set", "dense baseline", "uniform baseline", "proxy baseline",
    } <= legend, legend  # fmt: skip


def test_trial_page_shows_the_per_layer_table_in_real_levels(result, dashboard, profile):
    # A Pareto trial that prunes to 0.5 and quantizes to 4 bits somewhere (seeded: there is
    # one), with the most distinct levels: rows that differ.
    configs = sorted(zip(result.pareto["trial"], result.configs()))
    some = [(int(n), c) for n, c in configs if 0.5 in c.values() and 4 in c.values()]
    assert some, configs
    number, config = max(some, key=lambda nc: (len(set(nc[1].values())), -nc[0]))
    url = f"{dashboard}/trials?numbers={number}"
    dom = dump_dom(url, profile, until=f"Trial {number}: on the Pareto set")
    table = layer_table(config)
    expected = [["layer", *map(str, table.columns)]]
    expected += [[str(name), *map(level, row)] for name, row in table.iterrows()]
    assert expected in tables_of(dom), tables_of(dom)
    cells = {cell for row in expected[1:] for cell in row[1:]}
    assert {"0.5", "4"} <= cells  # real levels in the note
    # The dashboard's own Parameter field shows the levels the study stores, as Python prints
    # them (0.5 sparsity, 4 bits), never an Ordinal's index (0 or 1 of two levels).
    shown = parameter_field(dom)
    assert shown == {name: str(value) for name, value in config.items()}, shown
    assert {"0.5", "4"} <= set(shown.values()) and not {"0", "1"} & set(shown.values())


def test_note_page_shows_the_summary_and_the_baselines(result, dashboard, profile):
    dom = dump_dom(f"{dashboard}/note", profile, until="Hypervolume reference point")
    text = text_of(dom)
    for line in result.summary().splitlines():
        assert " ".join(line.split()) in text, line
    chosen = result.study.user_attrs["tradeoff.optimizer"]  # what "auto" picked
    assert f"Optimizer: {chosen} (what auto picked" in text
    rows = {row[0]: row for table in tables_of(dom) for row in table if row}
    for name in result.baselines["baseline"]:
        assert name in rows, sorted(rows)
    assert rows["baseline"][:3] == ["baseline", "accuracy", "size_mb"]
    assert rows["dense"][1] == "1"  # the dense model's accuracy on its own predictions
