"""A known latency cost: a Config's latency from a table of per-block savings, measured once.

Simulated quantization and unstructured sparsity run dense float kernels, so on a CPU only the
architecture changes the time of a forward pass: dropped blocks, FFN width, attention heads
(an elastic :class:`~tradeoff.spaces.ArchitectureSpace`). For each kind of block knob and each
of its levels, the model with every block at that level (the other knobs full) is measured
once; a Config's latency is the full model's less each block's saving, a ``1 / n_blocks``
share of its level's whole-model saving (latency adds up over blocks of equal shapes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from tradeoff.objectives._costs import latency_ms
from tradeoff.spaces import SearchSpace


class BlockLatency:
    """``cost(config) -> float``: latency in ms of one forward pass of ``sample_input``.

    Measured at construction: the full model and each (knob kind, level) of the arch part,
    interleaved over ``rounds`` rounds (load changes hit all alike), each the median of
    ``repeats`` runs after ``warmup``; the fastest round counts, as other processes only ever
    slow a run down.

    Args:
        space: A merged space; its ``arch`` part (an elastic ``ArchitectureSpace``), if any,
            is what changes the time (without one every Config costs :attr:`dense`).
        model: The float model (not modified), measured on its own device.
        sample_input: The input timed (a tensor, or a dict of tensors for ``model(**x)``).
        threads: torch threads during the measurements.

    Attributes:
        dense: The latency of the model at every knob's full level (kept, the largest FFN
            ratio and head count: the model itself when those are 1.0 and all heads), ms.
        table: ``(parameter kind, level) -> ms`` for the whole model at that level.
    """

    analytic = True  # a table lookup, computed on the driver

    def __init__(
        self,
        space: SearchSpace,
        model: nn.Module,
        sample_input: Any,
        *,
        rounds: int = 12,
        repeats: int = 5,
        warmup: int = 2,
        threads: int | None = 1,
    ) -> None:
        arch = next((c for c in space.children.values() if getattr(c, "stage", "") == "arch"), None)
        prefix = next((k for k, c in space.children.items() if c is arch), "")
        self._params: dict[str, tuple[str, Any]] = {}  # Config key -> (kind, full level)
        models: dict[tuple[str, Any], nn.Module] = {("", None): model}
        changed: dict[tuple[str, Any], int] = {}
        if arch is not None:
            full = {name: _full(arch[name]) for name in arch}
            models["", None] = arch.apply(model, full)
            for name in arch:
                self._params[f"{prefix}.{name}"] = (name.rsplit(".", 1)[-1], full[name])
            for kind in dict.fromkeys(k for k, _ in self._params.values()):
                names = [n for n in arch if n.rsplit(".", 1)[-1] == kind]
                for level in arch[names[0]].values:  # type: ignore[attr-defined]
                    if level == full[names[0]]:
                        continue
                    config = {**full, **dict.fromkeys(names, level)}
                    models[kind, level] = arch.apply(model, config)
                    changed[kind, level] = _changed(models[kind, level], len(names))
        runs: dict[tuple[str, Any], list[float]] = {k: [] for k in models}
        for _ in range(rounds):
            for key, m in models.items():
                runs[key].append(
                    latency_ms(m, sample_input, warmup=warmup, repeats=repeats, threads=threads)
                )
        best = {k: min(v) for k, v in runs.items()}
        self.dense = best.pop(("", None))
        self.table = best
        self._saving = {k: (self.dense - v) / changed[k] for k, v in best.items()}

    def __call__(self, config: Mapping[str, Any]) -> float:
        saved = 0.0
        for name, (kind, full) in self._params.items():
            level = config[name]
            if level != full:
                saved += self._saving[kind, level]
        return self.dense - saved


def _full(param: Any) -> Any:
    """The level of a block knob that changes nothing: kept, the widest FFN, the most heads."""
    return max(param.values)


def _changed(applied: nn.Module, n_blocks: int) -> int:
    """Blocks a uniform level changed: all ``n_blocks``, but for dropping, only the blocks
    dropped (a Config keeps ``min_depth`` of them)."""
    from tradeoff.spaces._elastic import SkipBlock

    skipped = sum(isinstance(m, SkipBlock) for m in applied.modules())
    return skipped or n_blocks
