"""What every plot shares: a drawn figure with its HTML table, checking output paths, saving
as PNG, SVG or self-contained HTML, and a Figure on the Agg canvas (no pyplot, no display)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from tradeoff._result import SearchResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "svg", "html")


class _Drawn(NamedTuple):
    """A figure with what its HTML page shows: a title and a table."""

    fig: Figure
    title: str
    table: pd.DataFrame


def _check_formats(formats: Sequence[str]) -> list[str]:
    items = [formats] if isinstance(formats, str) else list(formats)
    suffixes = ["." + str(f).lower().lstrip(".") for f in items]
    bad = [f for f, s in zip(items, suffixes) if s[1:] not in FORMATS]
    if bad or not suffixes:
        raise ValueError(f"formats must be some of {list(FORMATS)}, got {formats!r}.")
    return suffixes


def _check_path(path: str | Path | None) -> Path | None:
    if path is None:
        return None
    target = Path(path)
    if target.suffix.lower().lstrip(".") not in FORMATS:
        raise ValueError(f"path must end in .png, .svg or .html, got {str(path)!r}.")
    return target


def _finish(drawn: _Drawn, target: Path | None) -> Figure:
    if target is not None:
        _save(drawn, target)
    return drawn.fig


def _save(drawn: _Drawn, path: Path) -> None:
    if path.suffix.lower() != ".html":
        drawn.fig.savefig(path, format=path.suffix.lower()[1:], dpi=120)
        return
    png = io.BytesIO()
    drawn.fig.savefig(png, format="png", dpi=120)
    image = base64.b64encode(png.getvalue()).decode("ascii")
    title = html.escape(drawn.title)
    table = drawn.table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}")
    path.write_text(
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n<h1>{title}</h1>\n"
        f'<img alt="{title}" src="data:image/png;base64,{image}">\n{table}\n</body></html>\n',
        encoding="utf-8",
    )


def _new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas, outside pyplot (no global state, no display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("Plots need matplotlib: pip install 'tradeoff[plot]'.") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _name(result: SearchResult) -> str:
    return f"study {result.study.study_name!r}"
