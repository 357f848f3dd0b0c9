"""Optuna artifacts of a search, for optuna-dashboard's artifact pane: each Pareto trial's
Config as JSON, the study's report, and exported checkpoints.

An artifact store is where the files go (``optuna.artifacts.FileSystemArtifactStore`` for a
directory, or any Optuna artifact store: S3, GCS); the study only records their metadata.
Optuna attaches artifacts to a trial only while it runs, and these are made after the search,
so they are the study's, named by trial: ``trial-<n>.config.json``, ``trial-<n>.<dir>.tar``
(an export), and ``report-<n>-trials.json``. Each name is uploaded once: writing again (a
resumed search) adds only what is new.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd

from tradeoff._result import plain_json

if TYPE_CHECKING:
    from optuna.artifacts._protocol import ArtifactStore

    from tradeoff._result import SearchResult


def artifact_store(where: Any) -> ArtifactStore:
    """``where`` as an artifact store: a directory (created, and checked writable) becomes a
    ``FileSystemArtifactStore``; an object with an artifact store's methods is kept.

    Raises:
        ValueError: the directory cannot be created or written to.
        TypeError: ``where`` is neither.
    """
    if hasattr(where, "write") and hasattr(where, "open_reader"):
        store: ArtifactStore = where
        return store
    if not isinstance(where, (str, os.PathLike)):
        raise TypeError(
            "artifact_store must be a directory or an optuna.artifacts store (e.g. "
            f"FileSystemArtifactStore, Boto3ArtifactStore), got {type(where).__name__}."
        )
    path = Path(where).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, suffix=".probe"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(
            f"artifact_store: {str(path)!r} is not a writable directory ({reason}); give a "
            "directory this process can write, or leave artifact_store unset."
        ) from None
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def write_artifacts(
    result: SearchResult, store: ArtifactStore, baselines: pd.DataFrame | None = None
) -> int:
    """Upload each Pareto trial's ``trial-<n>.config.json`` (its Config and values) and the
    study's report (``report-<n>-trials.json``: the objectives, the Pareto set with Configs, for
    ``compress``, the baselines) unless already there; how many files were uploaded."""
    study = result.study
    names = result.objectives.names
    done = 0
    for row, config in zip(result.pareto.to_dict("records"), result.configs()):
        number = int(row["trial"])
        body = {"trial": number, "values": {n: row[n] for n in names}, "config": config}
        done += _upload(study, store, f"trial-{number}.config.json", body)
    report: dict[str, Any]
    to_dict = getattr(result, "to_dict", None)
    if callable(to_dict):
        report = to_dict()
    else:
        front = result.pareto[["trial", *names]].to_dict("records")
        for row, config in zip(front, result.configs()):
            row["config"] = config
        report = {"objectives": dict(zip(names, result.objectives.directions)), "pareto": front}
    if baselines is not None and "baselines" not in report:
        report["baselines"] = baselines.to_dict("records")
    n = len(result.trials)
    return done + _upload(study, store, f"report-{n}-trials.json", report)


def upload_export(
    result: SearchResult, trial: int, path: str | os.PathLike[str], store: ArtifactStore
) -> int:
    """Upload the exported checkpoint directory ``path`` as ``trial-<n>.<dir name>.tar``
    (unless a file of that name is there already); 1 if uploaded."""
    root = Path(path)
    target = result.study
    name = f"trial-{trial}.{root.name}.tar"
    if _has(target, name):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / name
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=root.name)
        optuna.artifacts.upload_artifact(
            artifact_store=store, file_path=str(archive), study_or_trial=target,
            mimetype="application/x-tar",
        )  # fmt: skip
    return 1


def _upload(target: Any, store: ArtifactStore, name: str, body: Any) -> int:
    if _has(target, name):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(plain_json(body), indent=2, default=str))
        optuna.artifacts.upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=target,
            mimetype="application/json",
        )  # fmt: skip
    return 1


def _has(target: Any, name: str) -> bool:
    metas = optuna.artifacts.get_all_artifact_meta(target)
    return any(m.filename == name for m in metas)
