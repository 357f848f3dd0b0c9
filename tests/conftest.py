"""Shared problems and a single Ray instance for the whole session (Ray takes ~3 s to start)."""

from __future__ import annotations

import math
import os

import pytest

from tradeoff.objectives import Objective
from tradeoff.spaces import Float, SearchSpace

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ZDT_SPACE = SearchSpace({f"x{i}": Float(0.0, 1.0) for i in range(4)})
ZDT_OBJECTIVES = [Objective("f1"), Objective("f2")]


def zdt1(config: dict[str, float]) -> dict[str, float]:
    """ZDT1 on four variables; the true front is f2 = 1 - sqrt(f1)."""
    x = [config[f"x{i}"] for i in range(4)]
    g = 1.0 + 9.0 * sum(x[1:]) / 3
    return {"f1": x[0], "f2": g * (1.0 - math.sqrt(x[0] / g))}


@pytest.fixture(scope="session")
def ray_session():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(
            num_cpus=4, include_dashboard=False, configure_logging=False, logging_level="WARNING"
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on 127.0.0.1 for the whole session (see tests/servers)."""
    from tests.servers.postgres import pg_bin, postgres_server

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql)")
    with postgres_server() as url:
        yield url


def tiny_bert(num_hidden_layers: int = 2, *, seed: int = 0):
    """A 32-wide BERT classifier built from a config (random weights, nothing downloaded)."""
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=num_hidden_layers,
        num_attention_heads=4, intermediate_size=64,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config).eval()
