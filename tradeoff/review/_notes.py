"""optuna-dashboard notes: what a person reviewing a search reads beside the dashboard's plots.

* The study's note: the summary (trials by status, the Pareto-set size, the hypervolume and its
  reference point), the optimizer (and what ``"auto"`` picked), the multi-fidelity rungs (each
  budget's evaluations and how they ended) and, for ``compress``, the baselines with the
  Pareto trials that dominate each.
* Each Pareto trial's note: its objectives (measured or known cost), the per-layer table of its
  Config in real levels (4 bits, 0.5 sparsity, ``channel``; a tied group is one row) and the
  baselines it dominates.

Notes are written when ``compress`` ends (it has the baselines), when ``optimize(...,
notes=True)`` ends, and by ``tradeoff dashboard`` for any search whose notes are missing or
older than its trials (never per trial while a search runs; optuna-dashboard keeps versions).
Writing them imports optuna-dashboard, which loads torch: a plain ``optimize`` does not, by
default. Every name that comes from the user (layers, objectives, baselines) is
escaped, so it shows as text and never as Markdown or HTML.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import pandas as pd
from optuna.storages import BaseStorage

from tradeoff._result import SearchResult
from tradeoff._study import SPEC_ATTR
from tradeoff._validate import SPACE_ATTR
from tradeoff.review._allocation import per_layer_knobs

logger = logging.getLogger("tradeoff")

NOTES_ATTR = "tradeoff.notes"
"""Study user attribute: the number of trials the study had when its notes were written."""

MAX_TRIAL_NOTES = 200
"""Pareto trials given a note at most (the first by trial number); a study note says if more."""

_MARKDOWN = re.compile(r"([\\`*_{}\[\]#!|<>~])")  # what could start emphasis, code, a link,
# a table cell, a heading or HTML (numbers and dotted layer names stay as they are)


def escape(text: Any) -> str:
    """``text`` as Markdown that shows it literally (no emphasis, links, tables or HTML)."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def layer_table(config: Mapping[str, Any]) -> pd.DataFrame:
    """The per-layer knobs of ``config``: one row per layer (or tied group), in model order,
    one column per knob (``quant.bits``, ``prune.sparsity``...), real levels as values.
    Knobs that are not per-layer (a learning rate) are left out (see :func:`other_parameters`)."""
    panels = per_layer_knobs([config])
    layers: dict[str, dict[str, Any]] = {}
    for panel, keys in panels.items():
        for layer, key in keys.items():
            layers.setdefault(layer, {})[panel] = config[key]
    return pd.DataFrame.from_dict(layers, orient="index", columns=list(panels))


def other_parameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``config`` that :func:`layer_table` does not show."""
    shown = {key for keys in per_layer_knobs([config]).values() for key in keys.values()}
    return {k: v for k, v in config.items() if k not in shown}


def markdown_table(frame: pd.DataFrame, *, index: str | None = None) -> str:
    """``frame`` as a Markdown table, every cell escaped (the index as a first column named
    ``index`` when given)."""
    columns = ([index] if index else []) + [str(c) for c in frame.columns]
    lines = [
        "| " + " | ".join(escape(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for key, row in frame.iterrows():
        cells = ([key] if index else []) + list(row)
        lines.append("| " + " | ".join(escape(_fmt(v)) for v in cells) + " |")
    return "\n".join(lines)


def summary_markdown(summary: str) -> list[str]:
    """The lines of :meth:`SearchResult.summary` as Markdown lines, each of its lines shown
    apart: a paragraph per line, its indented lines (why trials failed) as a list. Each
    block starts with an empty line (Markdown joins adjacent lines into one paragraph)."""
    lines: list[str] = []
    listed = False
    for line in summary.splitlines():
        item = line.startswith(" ")
        if not (item and listed):
            lines.append("")
        lines.append(f"- {escape(line.strip())}" if item else escape(line))
        listed = item
    return lines


def rung_table(trials: pd.DataFrame) -> pd.DataFrame | None:
    """Per fidelity rung: its budget, the evaluations at it and how they ended; None for a
    search without a fidelity ladder."""
    if "rung" not in trials.columns or trials["rung"].isna().all():
        return None
    laddered = trials[trials["rung"].notna()]
    ends = ("promoted", "stopped", "complete", "failed")
    rows = []
    for rung, group in laddered.groupby(laddered["rung"].astype(int)):
        counts = group["status"].value_counts()
        rows.append(
            {
                "rung": rung,
                "budget": _fmt(group["budget"].iloc[0]),
                "evaluations": len(group),
                **{end: int(counts.get(end, 0)) for end in ends},
                "other": int(len(group) - sum(counts.get(end, 0) for end in ends)),
            }
        )
    table = pd.DataFrame(rows).set_index("rung")
    return table if table["other"].any() else table.drop(columns="other")


def study_note(result: SearchResult, baselines: pd.DataFrame | None = None) -> str:
    """The study's note (Markdown)."""
    study = result.study
    reference = result.reference_point()
    chosen = study.user_attrs.get("tradeoff.optimizer")  # what "auto" picked
    why = study.user_attrs.get("tradeoff.optimizer_reason")  # which rule decided
    lines = [
        f"## {escape(study.study_name)}",
        *summary_markdown(result.summary()),
    ]
    if reference is not None:
        ref = ", ".join(f"{escape(k)} {_fmt(v)}" for k, v in reference.items())
        lines += ["", f"Hypervolume reference point: {ref}."]
    if chosen is not None:
        because = "" if why is None else f": {escape(why)}"
        lines += ["", f"Optimizer: {escape(chosen)} (what `auto` picked{because})."]
    objectives = pd.DataFrame(
        {"direction": result.objectives.directions, "kind": _kinds(result)},
        index=result.objectives.names,
    )
    lines += ["", "### Objectives", "", markdown_table(objectives, index="objective")]
    rungs = rung_table(result.trials)
    if rungs is not None:
        lines += [
            "",
            "### Multi-fidelity rungs",
            "",
            "Evaluations at each budget, and how they ended: promoted to the next rung, "
            "stopped there, complete (the full budget), or failed.",
            "",
            markdown_table(rungs, index="rung"),
        ]
    if baselines is not None and len(baselines):
        shown = baselines[["baseline", *result.objectives.names]].copy()
        shown["dominated by"] = [
            ", ".join(f"#{t}" for t in d) or "-" for d in baselines["dominated_by"]
        ]
        lines += [
            "",
            "### Baselines",
            "",
            "Measured with the search's own evaluation; the Pareto trials that dominate each.",
            "",
            markdown_table(shown.set_index("baseline"), index="baseline"),
        ]
    n_front = len(result.pareto)
    if n_front > MAX_TRIAL_NOTES:
        lines += ["", f"Notes on the first {MAX_TRIAL_NOTES} of {n_front} Pareto trials."]
    return "\n".join(lines) + "\n"


def trial_note(
    result: SearchResult,
    row: Mapping[str, Any],
    config: Mapping[str, Any],
    dominates: Sequence[str] = (),
) -> str:
    """A Pareto trial's note (Markdown): objectives, the per-layer table, what it dominates."""
    values = pd.DataFrame(
        {
            "value": [row[name] for name in result.objectives.names],
            "direction": result.objectives.directions,
            "kind": _kinds(result),
        },
        index=result.objectives.names,
    )
    lines = [
        f"## Trial {int(row['trial'])}: on the Pareto set",
        "",
        markdown_table(values, index="objective"),
    ]
    if dominates:
        lines += ["", "Dominates: " + "; ".join(escape(d) for d in dominates) + "."]
    table = layer_table(config)
    if len(table):
        lines += ["", "### Per layer", "", markdown_table(table, index="layer")]
    rest = other_parameters(config)
    if rest:
        other = pd.DataFrame({"value": list(rest.values())}, index=list(rest))
        lines += ["", "### Other parameters", "", markdown_table(other, index="parameter")]
    return "\n".join(lines) + "\n"


def write_notes(result: SearchResult, baselines: pd.DataFrame | None = None) -> int:
    """Write the study's note and each Pareto trial's note (at most :data:`MAX_TRIAL_NOTES`)
    to the study's storage, for optuna-dashboard, and the study's figures
    (:func:`~tradeoff.review.study_figures`); the number of notes written (0 without
    optuna-dashboard, which is the ``dashboard`` extra with plotly)."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        logger.debug("optuna-dashboard is not installed: no notes written")
        return 0
    study = result.study
    save_note(study, study_note(result, baselines))
    beaten: dict[int, list[str]] = {}
    if baselines is not None:
        for _, base in baselines.iterrows():
            for trial in base["dominated_by"]:
                beaten.setdefault(int(trial), []).append(str(base["baseline"]))
    ids = {t.number: t._trial_id for t in study.get_trials(deepcopy=False)}
    front = result.pareto.sort_values("trial").head(MAX_TRIAL_NOTES)
    configs = dict(zip(result.pareto["trial"], result.configs()))
    for _, row in front.iterrows():
        number = int(row["trial"])
        trial = optuna.Trial(study, ids[number])
        values = {str(k): v for k, v in row.items()}
        note = trial_note(result, values, configs[number], beaten.get(number, ()))
        save_note(trial, note)
    try:
        from tradeoff.review._dashboard import write_figures

        write_figures(result, baselines)
    except ImportError:
        logger.debug("plotly is not installed: no dashboard figures written")
    study.set_user_attr(NOTES_ATTR, len(result.trials))
    return 1 + len(front)


def refresh_notes(storage: BaseStorage) -> list[str]:
    """Write the notes of every search in ``storage`` whose notes are missing or older than
    its trials (what ``tradeoff dashboard`` does before it serves); the studies written."""
    written = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = summary.user_attrs
        if SPACE_ATTR not in attrs or attrs.get(NOTES_ATTR) == summary.n_trials:
            continue  # not a tradeoff search, or its notes are up to date
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        write_notes(SearchResult(study))
        written.append(summary.study_name)
    return written


def _kinds(result: SearchResult) -> list[str]:
    """Per objective: ``known cost`` or ``measured`` (as the study recorded it: a loaded
    result has no cost functions)."""
    stored = json.loads(result.study.user_attrs.get(SPEC_ATTR, "{}")).get("objectives", [])
    known = {o["name"]: bool(o.get("known")) for o in stored}
    return [
        "known cost" if known.get(o.name, o.known) else "measured"
        for o in result.objectives.objectives
    ]


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)
