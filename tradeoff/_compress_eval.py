"""The evaluation :func:`~tradeoff.compress` hands the workers, and the known costs by name."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.objectives._costs import bitops, weight_storage_bytes
from tradeoff.objectives._quality import Quality
from tradeoff.spaces import SearchSpace
from tradeoff.spaces._workspace import Workspace

COSTS: dict[str, tuple[Callable[..., float], float]] = {
    "size_mb": (weight_storage_bytes, 1e-6),
    "size_kb": (weight_storage_bytes, 1 / 1024),
    "gbitops": (bitops, 1e-9),
    "mbitops": (bitops, 1e-6),
}
"""Known costs by name: (cost function on a model, scale): weight storage in MB (1e6 bytes)
or KB (1024 bytes), bit-ops of one forward pass of ``sample_input`` in billions or millions."""


class CompressEvaluate:
    """``evaluate(config, budget=None) -> {quality.name: value}`` for :func:`compress`.

    Picklable (Ray workers get a copy). On first use in a process it prepares the quality on
    the dense model (``quality.prepare``) and keeps it; each thread assembles Configs in its
    own :class:`~tradeoff.spaces.Workspace`. A non-finite value raises (a failed trial).
    """

    def __init__(
        self,
        space: SearchSpace,
        model: nn.Module,
        quality: Quality,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        self.space, self.model, self.quality, self.device = space, model, quality, device
        self.token = uuid.uuid4().hex  # what a process keeps its prepared state under

    def __call__(self, config: Mapping[str, Any], budget: float | None = None) -> dict[str, float]:
        state = self._state()
        model = state.workspace(self).assemble(config)
        value = state.quality.measure(model, budget, key=config_key(config))
        return {self.quality.name: value}

    def measure_dense(self, budget: float | None = None) -> float:
        """The quality of the dense model itself."""
        return self._state().quality.measure(self.model, budget)

    def release(self) -> None:
        """Forget this process's prepared state (workspaces, dense reference)."""
        with _LOCK:
            _PREPARED.pop(self.token, None)

    def _state(self) -> _Prepared:
        with _LOCK:
            state = _PREPARED.get(self.token)
            if state is None:
                self.quality.prepare(self.model)
                while len(_PREPARED) >= _KEEP_PREPARED:  # a Ray worker outlives many calls
                    _PREPARED.pop(next(iter(_PREPARED)))
                state = _PREPARED[self.token] = _Prepared(self.quality)
            return state


class _Prepared:
    """A process's prepared quality and per-thread workspaces of one CompressEvaluate."""

    def __init__(self, quality: Quality) -> None:
        self.quality = quality
        self._local = threading.local()

    def workspace(self, owner: CompressEvaluate) -> Workspace:
        ws: Workspace | None = getattr(self._local, "workspace", None)
        if ws is None:
            ws = self._local.workspace = Workspace(owner.space, owner.model, device=owner.device)
        return ws


_PREPARED: dict[str, _Prepared] = {}  # token -> state, in this process
_KEEP_PREPARED = 4  # the most recent states kept (an evicted one is prepared again if used)
_LOCK = threading.Lock()


def config_key(config: Mapping[str, Any]) -> Hashable:
    """A hashable of what determines the compressed model, for the quality's warm start."""
    return tuple(sorted(config.items()))
