"""A log warp of heavy-tailed objectives for :class:`~tradeoff.search._mobo.MOBOSampler`'s GPs.

An objective whose observed values span orders of magnitude (COCO's Rastrigin pair over its
full box: 37 to 2.5e7 among 60 random points, median 3,800) standardizes into a few outliers
and a flat rest, and a GP fitted to that cannot see the basin the front lies in. A column
whose worst value lies more than :data:`TAIL_RATIO` times farther from the best than the
median does is modelled as ``w = -log(best - y + s)`` instead (``s``: the lower quartile of
the gaps ``best - y``), which keeps the order of the values. The acquisition maps each
posterior sample back, ``y = best + s - exp(-w)``, so hypervolume, reference point and
improvement stay in the objective's own units. Other columns pass through unchanged.

Tensors are double precision, in BoTorch's maximization convention. Shapes: ``n``
observations, ``m`` measured objectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

TAIL_RATIO = 100.0
"""Warp a column whose largest gap to its best value exceeds this many median gaps."""


@dataclass(frozen=True)
class LogWarp:
    """Which measured objectives are modelled in log space, and the map each way.

    Attributes:
        columns: Indices of the warped columns (empty: the identity).
        best: ``(m,)`` each column's best (largest) observed value.
        scale: ``(m,)`` the offset ``s`` of each warped column (1 elsewhere).
    """

    columns: tuple[int, ...]
    best: Tensor
    scale: Tensor

    @classmethod
    def fit(cls, y: Tensor) -> LogWarp:
        """The warp of ``(n, m)`` observed values: heavy-tailed columns only."""
        gaps = y.max(dim=0).values - y
        median = gaps.median(dim=0).values
        heavy = (median > 0) & (gaps.max(dim=0).values > TAIL_RATIO * median)
        quartile = torch.quantile(gaps, 0.25, dim=0)
        scale = torch.where(quartile > 0, quartile, median)
        columns = tuple(int(j) for j in torch.nonzero(heavy).reshape(-1))
        return cls(columns, y.max(dim=0).values, torch.where(heavy, scale, torch.ones_like(scale)))

    def forward(self, y: Tensor) -> Tensor:
        """``(..., m)`` values -> what the GPs model."""
        if not self.columns:
            return y
        out = y.clone()
        for j in self.columns:
            out[..., j] = -torch.log((self.best[j] - y[..., j]).clamp_min(0) + self.scale[j])
        return out

    def inverse(self, w: Tensor) -> Tensor:
        """``(..., m)`` modelled values (posterior samples) -> values."""
        if not self.columns:
            return w
        parts = list(w.unbind(dim=-1))
        for j in self.columns:
            parts[j] = self.best[j] + self.scale[j] - torch.exp(-w[..., j])
        return torch.stack(parts, dim=-1)
