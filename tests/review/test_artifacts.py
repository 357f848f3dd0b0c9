"""Optuna artifacts of a search: each Pareto trial's Config and the study's report uploaded once
(a resumed search adds only what is new), exports named by their trial, served by ``tradeoff
dashboard --artifact-dir``; a store that cannot be written is refused before any trial."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import urllib.request

import optuna
import pytest

import tradeoff
from tradeoff.objectives import Objective
from tradeoff.spaces import Float, Ordinal, SearchSpace

pytest.importorskip("optuna_dashboard")


def search(url: str, store: object, n_trials: int = 12) -> tradeoff.SearchResult:
    space = SearchSpace({"bits": Ordinal([2, 4, 8]), "x": Float(0.0, 1.0)})
    return tradeoff.optimize(
        lambda c: {"error": (1 - c["x"]) / c["bits"]},
        space,
        objectives=[Objective("error"), Objective("size", fn=lambda c: c["bits"] * c["x"])],
        n_trials=n_trials, optimizer="random", storage=url, study_name="art", seed=0,
        show_progress=False, artifact_store=store,
    )  # fmt: skip


def read(store: optuna.artifacts.FileSystemArtifactStore, artifact_id: str) -> bytes:
    with store.open_reader(artifact_id) as f:
        data: bytes = f.read()
    return data


def test_pareto_configs_and_the_report_are_uploaded_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = search(url, tmp_path / "artifacts")
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path / "artifacts"))
    metas = {m.filename: m for m in optuna.artifacts.get_all_artifact_meta(result.study)}
    front = [int(n) for n in result.pareto["trial"]]
    assert set(metas) == {f"trial-{n}.config.json" for n in front} | {"report-12-trials.json"}
    for number, config in zip(front, result.configs()):
        body = json.loads(read(store, metas[f"trial-{number}.config.json"].artifact_id))
        assert body["config"] == config and body["trial"] == number
    report = json.loads(read(store, metas["report-12-trials.json"].artifact_id))
    assert [r["trial"] for r in report["pareto"]] == front
    # Resuming to the same budget uploads nothing again; a larger one adds its own report.
    search(url, tmp_path / "artifacts")
    assert len(optuna.artifacts.get_all_artifact_meta(result.study)) == len(metas)
    again = search(url, tmp_path / "artifacts", n_trials=14)
    names = {m.filename for m in optuna.artifacts.get_all_artifact_meta(result.study)}
    new_front = {f"trial-{int(n)}.config.json" for n in again.pareto["trial"]}
    assert names == set(metas) | new_front | {"report-14-trials.json"}


def test_an_unwritable_store_is_refused_before_any_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=r"artifact_store: .* is not a writable directory"):
        search(url, blocker / "artifacts")
    assert optuna.study.get_all_study_names(url) == []  # nothing written
    with pytest.raises(TypeError, match="artifact_store must be a directory"):
        search(url, 3)


def test_an_export_is_attached_to_its_trial_and_the_dashboard_serves_it(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from tradeoff.objectives import Accuracy

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    x = torch.randn(40, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    result = tradeoff.compress(
        model, quality=Accuracy((x, y)), quantize={"bits": (4, 8)}, fidelity=False,
        n_trials=4, storage=url, study_name="cnn", seed=0, show_progress=False,
        artifact_store=tmp_path / "artifacts",
    )  # fmt: skip
    best = result.best()
    written = result.export(best, tmp_path / "ckpt", format="compressed-tensors")
    metas = {m.filename: m for m in optuna.artifacts.get_all_artifact_meta(result.study)}
    assert {f"trial-{best}.config.json", f"trial-{best}.ckpt.tar", "report-4-trials.json"} <= set(
        metas
    )
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path / "artifacts"))
    tar_id = metas[f"trial-{best}.ckpt.tar"].artifact_id
    with store.open_reader(tar_id) as f, tarfile.open(fileobj=f) as tar:
        assert set(written.files) <= {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    # The dashboard serves the artifact from the same directory.
    from tests.test_dashboard import free_port, get_json

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tradeoff.cli", "dashboard", "--storage", url, "--port",
         str(port), "--artifact-dir", str(tmp_path / "artifacts")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        (study,) = get_json(f"{base}/api/studies")["study_summaries"]
        meta = metas[f"trial-{best}.config.json"]
        path = f"/artifacts/{study['study_id']}/{meta.artifact_id}"
        with urllib.request.urlopen(base + path, timeout=10) as response:
            assert json.loads(response.read())["trial"] == best
    finally:
        server.terminate()
        server.wait(timeout=10)
