"""Known costs without a model copy: size and compute of a cut-down, pruned, quantized model.

:func:`~tradeoff.objectives.model_cost` takes this path when its metric is one of :data:`KINDS`
and every model-aware part of the space is a plain ``PruningSpace`` (unstructured, n:m or
channel patterns), ``QuantizationSpace`` or elastic ``ArchitectureSpace`` (dropped blocks, FFN
width, attention heads; not with channel pruning, nor one made ``from_builder``). Its numbers
are those of ``metric(space.apply(model, config))``, since it runs the spaces' own functions, on
one tensor instead of a model copy:

* shapes follow from the Config (channel pruning's kept counts and elastic widths from the
  spaces' own rounding, tabulated once; a dropped block's parameters and layers are gone), so
  parameter counts, MACs, bit-ops, bit-widths and scale counts are integer arithmetic (output
  positions per layer from one trace of the unmodified model: an elastic transform changes a
  layer's width, never the positions it sees);
* what depends on weight values (which channels a channel prune or an elastic width keeps, how
  many weights stay non-zero after pruning and quantization) is computed on the one tensor
  concerned, once per distinct state of that tensor (channels kept, pattern, sparsity,
  quantization), and kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tradeoff.objectives import _costs
from tradeoff.objectives._tables import (
    Unsupported,
    _Arch,
    _check_plain,
    _decoder,
    _Group,
    _Key,
    _Quant,
    _Specs,
    _Tensor,
)
from tradeoff.spaces._channels import _expand, _strongest
from tradeoff.spaces._model import QuantInfo
from tradeoff.spaces._prune import _prune_n_m, _prune_unstructured
from tradeoff.spaces._quantizers import _fake_quantize
from tradeoff.spaces._space import SearchSpace

KINDS: dict[Callable[..., Any], str] = {
    _costs.parameters: "parameters",
    _costs.trainable_parameters: "trainable_parameters",
    _costs.nonzero_parameters: "nonzero_parameters",
    _costs.weight_storage_bytes: "weight_storage_bytes",
    _costs.macs: "macs",
    _costs.bitops: "bitops",
}
"""The metrics costed analytically, and the :class:`Table` method computing each."""

CostFn = Callable[[Mapping[str, Any]], float]
_Fast = Callable[[Mapping[str, Any]], "float | None"]
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)  # NumPy sorts these faster
__all__ = ["KINDS", "ModelCost", "Table", "Unsupported"]


@dataclass(slots=True)
class _State:
    """One decoded Config: per unit choices, per selector kept channels, per tensor shape, and
    the totals of the tensors only block dropping changes."""

    prune: list[tuple[str, float]]
    quant: list[_Quant]
    kept: list[int]
    rows: list[int]
    numels: list[int]
    blocks: tuple[float, ...]
    alive: tuple[bool, ...] | None
    keys: list[_Key | None] | None = None


class ModelCost:
    """A known cost made by :func:`~tradeoff.objectives.model_cost`: ``cost(config) -> float``.

    Attributes:
        analytic: Whether Configs are costed from per-layer tables, without a model copy
            (``False``: each call applies the Config to a copy of the model).
    """

    def __init__(self, fallback: CostFn, fast: _Fast | None = None) -> None:
        self._fallback, self._fast = fallback, fast
        self.analytic = fast is not None

    def __call__(self, config: Mapping[str, Any]) -> float:
        value = self._fast(config) if self._fast is not None else None
        # None: a Config the tables cannot cost (invalid, or n:m groups that do not fit), so
        # the apply path gives the number or raises its error.
        return self._fallback(config) if value is None else value

    def batch(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """The cost of each Config, as a float64 array of shape ``(n,)``."""
        return np.fromiter((self(c) for c in configs), dtype=np.float64)


class Table:
    """Per-layer tables of a (space, model) pair; :meth:`fast` costs Configs with them.

    ``model`` is read, never changed. ``trace`` gives :func:`_costs._trace` of the model, for
    MACs and bit-ops.

    Raises:
        Unsupported: the space has other model-aware parts, or the model cannot be tabulated.
    """

    def __init__(
        self, space: SearchSpace, model: nn.Module, trace: Callable[[], _costs._Trace] | None
    ) -> None:
        self._decode, prune, quant, arch = _decoder(space)
        self._params: list[torch.Tensor] = list(_check_plain(model).parameters())
        self._n, self._m = (prune.n, prune.m) if prune is not None else (2, 4)
        self._levels = prune.levels if prune is not None else ()
        self._n_prune = len(prune.plans) if prune is not None else 0
        self._n_units = self._n_prune + (len(quant.groups) if quant is not None else 0)
        # Values _fake_quantize does not reproduce, and storage that counts non-zeros.
        self._calibrated = quant is not None and (
            getattr(quant, "method", "rtn") != "rtn"
            or getattr(getattr(quant, "quantizer", None), "symmetric", True) is False
        )
        self._masks = prune is not None and any(
            "unstructured" in p.patterns for p in prune.plans.values()
        )
        channels = prune is not None and any("channel" in p.patterns for p in prune.plans.values())
        if arch is not None and channels:
            raise Unsupported("the space channel-prunes under an elastic architecture part")
        specs = _Specs(model, self._params)
        self._groups = specs.groups(prune) if prune is not None else []
        self._slices = specs.elastic(arch, len(self._groups)) if arch is not None else []
        self._keep_names = [k for k in arch or () if k.endswith(".keep")]
        self._arch = arch if self._keep_names else None
        specs.layers(prune, quant)
        self.dynamic, self._static, block_sums = specs.split()
        self._block_of = specs.block_of
        # Pruned weights whose inputs an elastic width narrows (n:m groups may stop fitting).
        self._narrowed = [j for j, t in enumerate(self.dynamic) if t.prune >= 0 and t.cols >= 0]
        self._counted, self._static_ops = specs.counted(
            trace() if trace else None, self.dynamic, block_sums
        )
        self._block_sums = block_sums  # per droppable block: params, trainable, bytes, MACs, ops
        self._alive: dict[tuple[Any, ...], tuple[tuple[bool, ...], tuple[float, ...]]] = {}
        self._static_nonzeros: tuple[int, list[int]] | None = None  # counted on first use
        self._memo: dict[_Key, Any] = {}  # nonzero counts, kept channels, pruning cuts

    def fast(self, kind: str) -> _Fast:
        """``fn(config)``: the metric ``kind`` (a value of :data:`KINDS`), or ``None`` for a
        Config the tables cannot cost.

        Raises:
            Unsupported: ``kind`` counts quantized values that only the space's quantizer
                computes (calibrated or asymmetric levels, not round-to-nearest on a grid
                symmetric about 0).
        """
        values = kind == "nonzero_parameters" or (kind == "weight_storage_bytes" and self._masks)
        if values and self._calibrated:
            raise Unsupported("its quantizer's levels are calibrated or asymmetric")
        metric: Callable[[_State], float | None] = getattr(self, f"_{kind}")

        def cost(config: Mapping[str, Any]) -> float | None:
            st = self._state(config)
            return None if st is None else metric(st)

        return cost

    # Metrics --------------------------------------------------------------------------------
    def _parameters(self, st: _State) -> float:
        return float(self._static[0] + st.blocks[0] + sum(st.numels))

    def _trainable_parameters(self, st: _State) -> float:
        trainable = sum(n for n, t in zip(st.numels, self.dynamic) if t.trainable)
        return float(self._static[1] + st.blocks[1] + trainable)

    def _macs(self, st: _State) -> float:
        dynamic = sum(p * st.numels[j] for j, p, _ in self._counted)
        return float(self._static_ops[0] + st.blocks[3] + dynamic)

    def _bitops(self, st: _State) -> float:
        total = self._static_ops[1] + st.blocks[4]
        for j, positions, act_bits in self._counted:
            t = self.dynamic[j]
            q = st.quant[t.quant][0] if t.quant >= 0 else None
            w_bits = q.bits if q is not None else t.bits
            a_bits = q.act_bits if q is not None and q.act_bits else act_bits
            total += positions * st.numels[j] * w_bits * a_bits
        return float(total)

    def _weight_storage_bytes(self, st: _State) -> float | None:
        total = self._static[2] + st.blocks[2]
        for j, t in enumerate(self.dynamic):
            numel, d0 = st.numels[j], st.rows[j]
            if numel == 0:  # in a dropped block
                continue
            pattern = self._pattern(st, t, numel, d0)
            if pattern == ():
                return None
            q = st.quant[t.quant] if t.quant >= 0 else None
            bits = q[0].bits if q is not None else t.bits
            scales = _n_scales(q[0], d0, numel) if q is not None else 0
            kind = pattern[0] if pattern else None
            nonzeros = self._nonzeros(st, j, pattern, q) if kind == "unstructured" else 0
            total += _costs.stored_bytes(numel, bits, scales, kind, nonzeros, self._n, self._m)
        return total

    def _nonzero_parameters(self, st: _State) -> float | None:
        static, blocks = self._static_nonzeros or self._count_static_nonzeros()
        total = static + sum(n for n, alive in zip(blocks, st.alive or ()) if alive)
        for j, t in enumerate(self.dynamic):
            if st.numels[j] == 0:  # in a dropped block
                continue
            pattern = self._pattern(st, t, st.numels[j], st.rows[j])
            if pattern == ():
                return None
            total += self._nonzeros(st, j, pattern, st.quant[t.quant] if t.quant >= 0 else None)
        return float(total)

    def _count_static_nonzeros(self) -> tuple[int, list[int]]:
        """Non-zeros of the parameters no Config changes: outside droppable blocks, and per
        block."""
        dynamic = {t.index for t in self.dynamic}
        blocks = [0] * len(self._block_sums)
        static = 0
        for i, p in enumerate(self._params):
            if i not in dynamic:
                count = int(torch.count_nonzero(p.detach()).item())
                b = self._block_of.get(i, -1)
                if b >= 0:
                    blocks[b] += count
                else:
                    static += count
        self._static_nonzeros = static, blocks
        return static, blocks

    # Config -> state ------------------------------------------------------------------------
    def _state(self, config: Mapping[str, Any]) -> _State | None:
        choices = self._decode(config)
        if choices is None:
            return None
        prune, quant = choices[: self._n_prune], choices[self._n_prune : self._n_units]
        arch: list[_Arch] = choices[self._n_units :]
        kept = [self._kept(g, prune) for g in self._groups]
        kept += [s.kept[arch[s.unit][s.kind]] for s in self._slices]
        alive, blocks = self._blocks(arch)
        rows, numels = [], []
        for t in self.dynamic:
            if alive is not None and t.block >= 0 and not alive[t.block]:
                rows.append(0)
                numels.append(0)
                continue
            d0 = kept[t.rows] if t.rows >= 0 else t.d0
            rows.append(d0)
            numels.append(d0 * (kept[t.cols] * t.fpc if t.cols >= 0 else t.d1) * t.rest)
        for j in self._narrowed:  # the apply path raises for n:m groups that do not fit
            pattern, s = prune[self.dynamic[j].prune]
            if pattern == "n:m" and s > 0 and numels[j] and numels[j] // rows[j] % self._m:
                return None
        return _State(prune, quant, kept, rows, numels, blocks, alive)

    def _blocks(self, arch: list[_Arch]) -> tuple[tuple[bool, ...] | None, tuple[float, ...]]:
        """Which blocks stay (``None``: no block can be dropped), and the totals of the
        parameters and layers of those only block dropping changes."""
        if self._arch is None:
            return None, (0.0,) * 5
        flags = tuple(a[0] for a in arch)
        known = self._alive.get(flags)
        if known is None:
            named = dict(zip(self._keep_names, flags))
            keep = self._arch._kept_blocks(named, len(self._block_sums))
            alive = tuple(i in keep for i in range(len(self._block_sums)))
            sums = [s for s, live in zip(self._block_sums, alive) if live]
            known = self._alive[flags] = alive, tuple(map(sum, zip((0.0,) * 5, *sums)))
        return known

    def _kept(self, g: _Group, prune: list[tuple[str, float]]) -> int:
        pattern, s = prune[g.unit]
        if pattern != "channel" or s <= 0:
            return g.channels
        consumer_pattern, consumer_s = prune[g.consumer_unit] if g.consumer_unit >= 0 else ("", 0)
        m = self._m if consumer_pattern == "n:m" and consumer_s > 0 else None
        return g.kept[s, m]

    def _pattern(self, st: _State, t: _Tensor, numel: int, d0: int) -> tuple[Any, ...] | None:
        """The weight pattern ``t`` gets, ``(pattern, sparsity)``; ``None`` for none, ``()``
        when the apply path raises (n:m groups that do not fit the final shape)."""
        if t.prune < 0:
            return None
        pattern, s = st.prune[t.prune]
        if s == 0 or pattern == "channel":
            return None
        if pattern == "n:m":
            return (pattern, s) if numel // d0 % self._m == 0 else ()
        return (pattern, s) if round(numel * s) else None  # no weight to remove: left as is

    # Values, computed once per tensor state -------------------------------------------------
    def _nonzeros(self, st: _State, j: int, pattern: Any, quant: _Quant | None) -> int:
        t, keys = self.dynamic[j], self._keys(st)
        rows = keys[t.rows] if t.rows >= 0 else None
        cols = keys[t.cols] if t.cols >= 0 else None
        key = ("nonzeros", j, rows, cols, pattern, quant[1] if quant is not None else None)
        count: int | None = self._memo.get(key)
        if count is None:
            w = self._select(t, rows, cols)
            w = self._pruned(w, pattern, key[1:4]) if pattern is not None else w
            w = _fake_quantize(w, quant[1]) if quant is not None else w
            count = self._memo[key] = int(torch.count_nonzero(w).item())
        return count

    def _keys(self, st: _State) -> list[_Key | None]:
        """Per selector, a key naming the channels it keeps (``None``: all)."""
        if st.keys is None:
            st.keys = []
            for g, (group, kept) in enumerate(zip(self._groups, st.kept)):
                up = st.keys[group.upstream] if group.upstream >= 0 else None
                st.keys.append(None if kept == group.channels else (g, kept, up))
            for g, (s, kept) in enumerate(zip(self._slices, st.kept[len(self._groups) :])):
                st.keys.append(None if kept == s.channels else ("slice", g, kept))
        return st.keys

    def _select(self, t: _Tensor, rows: _Key | None, cols: _Key | None) -> torch.Tensor:
        """``t``'s value after channel pruning."""
        w = self._params[t.index].detach()
        if cols is not None:
            w = w.index_select(1, _expand(self._keep(cols), t.fpc))
        return w if rows is None else w.index_select(0, self._keep(rows))

    def _keep(self, key: _Key) -> torch.Tensor:
        """The channels a group keeps, as ``prune_channels`` picks them."""
        keep: torch.Tensor | None = self._memo.get(("keep", *key))
        if keep is None and key[0] == "slice":
            keep = self._memo[("keep", *key)] = self._slices[key[1]].select(key[2])
        if keep is None:
            g, kept, up = key
            w = self._params[self._groups[g].producer].detach()
            if up is not None:  # the producer's inputs were pruned first
                w = w.index_select(1, _expand(self._keep(up), self._groups[up[0]].fpc))
            keep = self._memo[("keep", *key)] = _strongest(w, kept)
        return keep

    def _pruned(self, w: torch.Tensor, pattern: tuple[str, float], key: _Key) -> torch.Tensor:
        """``w`` (named by ``key``) pruned as ``PruningSpace`` prunes it."""
        if pattern[0] == "unstructured":
            cut = self._cuts(w, key).get(pattern[1])
            if cut is not None:  # no tie at the cut: the pruned set is exactly |w| <= cut
                return w * (w.abs() > cut)  # as torch's pruning: weight * mask
        holder = nn.Module()  # the pruning functions work on a module's weight
        holder.weight = nn.Parameter(w.clone(), requires_grad=False)
        if pattern[0] == "n:m":
            _prune_n_m(holder, "weight", self._n, self._m)
        else:
            _prune_unstructured(holder, "weight", pattern[1])
        return holder.weight.detach()

    def _cuts(self, w: torch.Tensor, key: _Key) -> dict[float, torch.Tensor]:
        """Per sparsity, the largest magnitude unstructured pruning removes from ``w``, if the
        next one is larger (so any tie-break removes the same weights); one sort."""
        cuts: dict[float, torch.Tensor] | None = self._memo.get(("cuts", *key))
        if cuts is None:
            flat = w.abs().flatten()
            cpu = flat.device.type == "cpu" and flat.dtype in _NUMPY_DTYPES
            ranked = torch.from_numpy(np.sort(flat.numpy())) if cpu else flat.sort().values
            ks = {s: round(ranked.numel() * s) for s in self._levels}
            cuts = {s: ranked[k - 1] for s, k in ks.items() if 0 < k < ranked.numel()}
            cuts = {s: c for s, c in cuts.items() if c < ranked[ks[s]]}
            self._memo[("cuts", *key)] = cuts
        return cuts


def _n_scales(q: QuantInfo, d0: int, numel: int) -> int:
    """Float16 values a weight of ``d0`` rows and ``numel`` values stores beside it, scales and
    any zero-points (as ``_quantize_module``)."""
    rows, size = (1, numel) if q.granularity == "tensor" else (d0, q.group_size or numel // d0)
    zero_points = 1 if getattr(q, "symmetric", True) else 2
    return rows * math.ceil(numel // rows / size) * zero_points
