"""Small seeded models and data the tests (and the dashboard screenshots) share."""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn() -> nn.Module:
    """A conv, two Linear layers; weights seeded (0), eval mode; 8x8 one-channel images."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(),
        nn.Linear(16, 10),
    ).eval()  # fmt: skip


def cnn_data(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded images and the dense :func:`tiny_cnn`'s own predictions as labels (its
    accuracy is 1.0)."""
    x = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = tiny_cnn()(x).argmax(1)
    return x, y
