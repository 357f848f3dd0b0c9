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

import functools
import itertools
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from tradeoff.objectives import _costs
from tradeoff.spaces import _elastic
from tradeoff.spaces._arch import ArchitectureSpace
from tradeoff.spaces._channels import _expand, _kept_count, _size_problem, _strongest
from tradeoff.spaces._channels import _weight as _channel_weight
from tradeoff.spaces._model import PRUNE_ATTR, QUANT_ATTR, STAGES, QuantInfo, layer_param_name
from tradeoff.spaces._params import Choice, Ordinal
from tradeoff.spaces._prune import PruningSpace, _prune_n_m, _prune_unstructured
from tradeoff.spaces._quant import QuantizationSpace, _fake_quantize, _float_weight
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
_Quant = tuple[QuantInfo, QuantInfo]  # a group's setting, and the same without act_bits
_Key = tuple[Any, ...]
_Units = list[tuple[list[str], dict[Any, Any]]]  # parameter names, (their values) -> choice
_Arch = tuple[bool, float | None, int | None]  # a block's keep flag, FFN ratio, heads
_SUPPORTED = (PruningSpace, QuantizationSpace, ArchitectureSpace)
_FFN, _HEADS = 1, 2  # where an _Arch choice holds the choice of each elastic width
_BOOLS = {bool, np.bool_}  # True == 1 == 1.0 for a dict, not for a Config
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)  # NumPy sorts these faster


class Unsupported(Exception):
    """The space or model needs the apply path; the message says why."""


@dataclass(frozen=True, slots=True)
class _Tensor:
    """A parameter a Config can change: its index in ``model.parameters()``, shape as
    ``(d0, d1, prod(shape[2:]))`` (``d1 = 1`` for a vector), dtype bits, ``requires_grad``,
    the selectors (channel groups or elastic widths) of its dims 0 and 1 (``fpc`` entries per
    channel of ``cols``), the prune and quant units of the layer whose weight it is, and the
    droppable block holding it (-1: none)."""

    index: int
    d0: int
    d1: int
    rest: int
    bits: int
    trainable: bool
    rows: int = -1
    cols: int = -1
    fpc: int = 1
    prune: int = -1
    quant: int = -1
    block: int = -1


@dataclass(frozen=True, slots=True)
class _Slice:
    """An elastic width of block ``unit``: features in full, ``(choice) -> features kept``
    where the choice is item ``kind`` of the block's :data:`_Arch`, and ``select(kept)``, the
    indices of the features kept (as ``ArchitectureSpace`` picks them)."""

    unit: int
    kind: int
    channels: int
    kept: Mapping[Any, int]
    select: Callable[[int], torch.Tensor]


@dataclass(frozen=True, slots=True)
class _Group:
    """A channel group, in pruning order: the producer's and consumer's prune units, the
    producer's channels and weight index, consumer inputs per channel, ``(sparsity, consumer's
    m or None) -> channels kept``, and the group pruned earlier whose consumer is this producer
    (-1: none; this producer's channels are then ranked on the inputs it left)."""

    unit: int
    consumer_unit: int
    channels: int
    producer: int
    fpc: int
    kept: Mapping[tuple[float, int | None], int]
    upstream: int


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
        Config the tables cannot cost."""
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
    """Scales a weight of ``d0`` rows and ``numel`` values gets (as ``_quantize_module``)."""
    rows, size = (1, numel) if q.granularity == "tensor" else (d0, q.group_size or numel // d0)
    return rows * math.ceil(numel // rows / size)


# Building the tables --------------------------------------------------------------------------
def _decoder(
    space: SearchSpace,
) -> tuple[
    Callable[[Mapping[str, Any]], list[Any] | None],
    PruningSpace | None,
    QuantizationSpace | None,
    ArchitectureSpace | None,
]:
    """``decode(config)`` -> the choices of each prune layer, then of each quant group, then
    of each block (``None`` for a Config the space does not contain), and the space's prune,
    quant and arch parts."""
    if type(space) not in (*_SUPPORTED, SearchSpace):
        raise Unsupported(f"the space is a {type(space).__name__}")
    parts = {"": space} if type(space) in _SUPPORTED else space.children
    model = {k: c for k, c in parts.items() if getattr(c, "stage", None) in STAGES}
    plain = {f"{k}.{n}": p for k, c in parts.items() if k not in model for n, p in c.items()}
    prune = [(k, c) for k, c in model.items() if type(c) is PruningSpace]
    quant = [(k, c) for k, c in model.items() if type(c) is QuantizationSpace]
    arch = [(k, c) for k, c in model.items() if type(c) is ArchitectureSpace]
    others = [type(c).__name__ for c in model.values() if type(c) not in _SUPPORTED]
    if others or max(len(prune), len(quant), len(arch)) > 1 or not model:
        why = f"{', '.join(others)} parts" if others else "two parts of one kind"
        raise Unsupported(f"the space has {why}")
    if arch and arch[0][1].blocks is None:
        raise Unsupported("its ArchitectureSpace builds models with your function")
    units = [u for k, c in prune for u in _prune_units(c, f"{k}." if k else "")]
    units += [u for k, c in quant for u in _quant_units(c, f"{k}." if k else "")]
    units += [u for k, c in arch for u in _arch_units(c, f"{k}." if k else "")]
    names = [name for unit_names, _ in units for name in unit_names]
    get = operator.itemgetter(*names, names[0])  # always a tuple
    flag_at = [i for i, name in enumerate(names) if arch and name.endswith(".keep")]
    flags = _getter([i for i in flag_at])  # block keep flags: bools, and only they
    others_ = _getter([i for i in range(len(names)) if i not in set(flag_at)])
    bounds = list(itertools.accumulate([0] + [len(n) for n, _ in units]))
    tables = [(table, a, b) for (_, table), a, b in zip(units, bounds, bounds[1:])]
    size = len(space)

    def decode(config: Mapping[str, Any]) -> list[Any] | None:
        try:
            if len(config) != size or not all(p.contains(config[n]) for n, p in plain.items()):
                return None
            values = get(config)
            choices = [table[values[a:b]] for table, a, b in tables]
        except (KeyError, TypeError):  # a missing key, a value no table has, an unhashable
            return None
        if flag_at and not all(type(v) is bool for v in flags(values)):
            return None
        return None if _BOOLS.intersection(map(type, others_(values))) else choices

    first = [p[0][1] if p else None for p in (prune, quant, arch)]
    return decode, first[0], first[1], first[2]  # type: ignore[return-value]


def _getter(at: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """``values -> values at the positions at`` (``()`` for none)."""
    return operator.itemgetter(*at, at[0]) if at else (lambda values: ())


def _prune_units(part: PruningSpace, prefix: str) -> _Units:
    """Per layer: its parameter names, and (their values) -> ``(pattern, sparsity)``."""
    units = []
    for layer in part.plans:
        names = (layer_param_name(part.prefix(layer), k) for k in ("sparsity", "pattern"))
        local = [n for n in names if n in part]
        table = {v: part._choice(dict(zip(local, v)), layer) for v in _combos(part, local)}
        units.append(([prefix + n for n in local], table))
    return units


def _quant_units(part: QuantizationSpace, prefix: str) -> _Units:
    """Per group: its parameter names, and (their values) -> (setting, setting for values)."""
    units = []
    for group in part.groups:
        local = [n for n in part if n.rpartition(".")[0] == group]
        table = {}
        for values in _combos(part, local):
            setting = part._setting(group, dict(zip(local, values)))
            table[values] = (setting, replace(setting, act_bits=None))
        units.append(([prefix + n for n in local], table))
    return units


def _arch_units(part: ArchitectureSpace, prefix: str) -> _Units:
    """Per block: its parameter names, and (their values) -> ``(keep, ffn ratio, heads)``."""
    units, i = [], 0
    knobs = ("keep", "ffn", "heads")
    while local := [n for n in (f"{part.blocks}.{i}.{k}" for k in knobs) if n in part]:
        table = {}
        for values in _combos(part, local):
            named = {n.rpartition(".")[2]: v for n, v in zip(local, values)}
            table[values] = (named.get("keep", True), named.get("ffn"), named.get("heads"))
        units.append(([prefix + n for n in local], table))
        i += 1
    return units


def _combos(part: SearchSpace, names: list[str]) -> Iterable[tuple[Any, ...]]:
    params = [part[name] for name in names]
    if not all(isinstance(p, (Ordinal, Choice)) for p in params):
        raise Unsupported("a model-aware parameter is not an Ordinal or Choice")
    return itertools.product(*(p.values for p in params))  # type: ignore[attr-defined]


def _check_plain(model: nn.Module) -> nn.Module:
    """``model``, if nothing compressed or re-parametrized it already."""
    for module in model.modules():
        if hasattr(module, QUANT_ATTR) or hasattr(module, PRUNE_ATTR):
            raise Unsupported("the model is already compressed")
        if parametrize.is_parametrized(module):
            raise Unsupported("the model has parametrizations")
    if torch_prune.is_pruned(model):
        raise Unsupported("the model carries torch pruning masks")
    return model


class _Specs:
    """What each parameter of the model can undergo: the builder of :class:`Table`."""

    def __init__(self, model: nn.Module, params: list[torch.Tensor]) -> None:
        self.model, self.params = model, params
        self.index = {id(p): i for i, p in enumerate(params)}
        every = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
        self.shared = {k for k, v in every.items() if v > 1}
        self.fields: dict[int, dict[str, int]] = {}
        self.quantized: dict[int, set[str]] = {}  # a shared weight's quantized layers
        self.block_of: dict[int, int] = {}  # parameter index -> droppable block
        self.depth = 0  # droppable blocks

    def mark(
        self, module: nn.Module, name: str, layer: str, *, shared: bool = False, **fields: int
    ) -> int:
        """Record ``fields`` for ``module.<name>`` (if it has one; if ``shared``, also when
        tied to another module's parameter); its index (or -1)."""
        p = getattr(module, name, None)
        if p is None:
            return -1
        if id(p) not in self.index or (id(p) in self.shared and not shared):
            raise Unsupported(f"{layer}.{name} is shared with another layer or not a parameter")
        known = self.fields.setdefault(self.index[id(p)], {})
        if any(known.get(k, v) != v for k, v in fields.items()):
            raise Unsupported(f"{layer}.{name} is changed in two ways")
        known.update(fields)
        return self.index[id(p)]

    def module(self, name: str) -> nn.Module:
        try:
            return self.model.get_submodule(name)
        except AttributeError:
            raise Unsupported(f"the space names a layer {name!r} the model lacks") from None

    def groups(self, prune: PruningSpace) -> list[_Group]:
        """The channel groups, in the order ``PruningSpace`` prunes them."""
        units = {layer: i for i, layer in enumerate(prune.plans)}
        plans = [p.group for p in prune.plans.values() if "channel" in p.patterns]
        consumers = {g.consumer: i for i, g in enumerate(plans) if g is not None}
        groups = []
        for i, g in enumerate(plans):
            if g is None:
                raise Unsupported("a layer offers channel pruning without a channel group")
            producer, consumer = self.module(g.producer), self.module(g.consumer)
            norms = [self.module(n) for n in g.norms]
            c = int(_channel_weight(producer).shape[0])
            if _size_problem(g, c, consumer, norms):
                raise Unsupported(f"the channel group of {g.producer!r} does not fit the model")
            for module, name in [(producer, g.producer), *zip(norms, g.norms)]:
                self.mark(module, "bias", name, rows=i)
                self.mark(module, "weight", name, rows=i)
            self.mark(consumer, "weight", g.consumer, cols=i, fpc=g.features_per_channel)
            levels = itertools.product(prune.levels, (None, prune.m))
            kept = {(s, m): _kept_count(c, s, consumer, m) for s, m in levels}
            up = consumers.get(g.producer, -1)
            weight = self.index[id(_channel_weight(producer))]
            unit, fpc = units[g.producer], g.features_per_channel
            groups.append(
                _Group(unit, units.get(g.consumer, -1), c, weight, fpc, kept, up if up < i else -1)
            )
        return groups

    def layers(self, prune: PruningSpace | None, quant: QuantizationSpace | None) -> None:
        """Mark the weights of the pruned and the quantized layers with their units."""
        for i, layer in enumerate(prune.plans if prune is not None else ()):
            module = self.module(layer)
            weight = getattr(module, "weight", None)
            if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
                raise Unsupported(f"{layer!r} has no weight of 2 or more dimensions to prune")
            self.mark(module, "weight", layer, prune=i)
        for k, layers in enumerate(quant.groups.values() if quant is not None else ()):
            for module, layer in ((self.module(n), n) for n in layers):
                if _float_weight(module) is not None:  # the apply path skips the others
                    # Tied weights (an embedding and the output layer) are quantized once, in
                    # place, by one group: the same weight and setting for all the holders.
                    i = self.mark(module, "weight", layer, shared=True, quant=k)
                    self.quantized.setdefault(i, set()).add(layer)

    def elastic(self, arch: ArchitectureSpace, offset: int) -> list[_Slice]:
        """Mark what an elastic ``arch`` changes: every parameter of a droppable block, and
        the weights (and biases) an FFN width or a head count slices; the slices, whose
        selector indices start at ``offset``."""
        assert arch.blocks is not None
        blocks = self.module(arch.blocks)
        if not isinstance(blocks, nn.ModuleList):
            raise Unsupported(f"{arch.blocks!r} is not an nn.ModuleList")
        slices: list[_Slice] = []
        for i, block in enumerate(blocks):
            prefix = f"{arch.blocks}.{i}"
            if f"{prefix}.keep" in arch:
                self.depth = len(blocks)
                for name, _ in block.named_parameters():
                    self.block_of[self._mark_block(block, name, prefix, i)] = i
            layout = _elastic.block_layout(block, arch.n_heads)
            if f"{prefix}.ffn" in arch:
                kept = {r: _elastic.ffn_width(layout, r) for r in arch[f"{prefix}.ffn"].values}  # type: ignore[attr-defined]
                select = functools.partial(_elastic.ffn_keep, block, layout)
                self._slice(block, prefix, layout.ups, layout.downs, offset + len(slices))
                slices.append(_Slice(i, _FFN, layout.ffn_width, kept, select))
            if f"{prefix}.heads" in arch:
                assert layout.q and layout.k and layout.v and layout.o
                size = _elastic.head_dim(block, layout)
                kept = {h: h * size for h in arch[f"{prefix}.heads"].values}  # type: ignore[attr-defined]
                qkv, o = (layout.q, layout.k, layout.v), (layout.o,)
                self._slice(block, prefix, qkv, o, offset + len(slices))
                heads = functools.partial(_heads, block, layout, size)
                slices.append(_Slice(i, _HEADS, size * (layout.n_heads or 0), kept, heads))
        return slices

    def _mark_block(self, block: nn.Module, name: str, prefix: str, i: int) -> int:
        module_name, _, attr = name.rpartition(".")
        module = block.get_submodule(module_name) if module_name else block
        return self.mark(
            module, attr, f"{prefix}.{module_name}" if module_name else prefix, block=i
        )

    def _slice(
        self, block: nn.Module, prefix: str, rows: Iterable[str], cols: Iterable[str], sel: int
    ) -> None:
        """Mark the weight rows and biases of ``rows`` and the weight columns of ``cols`` (layer
        names in ``block``) as selected by ``sel``."""
        for name in rows:
            module = block.get_submodule(name)
            self.mark(module, "weight", f"{prefix}.{name}", rows=sel)
            self.mark(module, "bias", f"{prefix}.{name}", rows=sel)
        for name in cols:
            self.mark(block.get_submodule(name), "weight", f"{prefix}.{name}", cols=sel)

    def split(self) -> tuple[list[_Tensor], tuple[int, int, float], list[list[float]]]:
        """The parameters a Config changes; the other ones' parameter count, trainable
        parameter count and storage bytes; and, per droppable block, those of the parameters
        only dropping it changes (and room for their layers' MACs and bit-ops)."""
        dynamic = []
        blocks = [[0.0] * 5 for _ in range(self.depth)]
        for i, fields in sorted(self.fields.items()):
            p = self.params[i]
            if set(fields) == {"block"}:
                sums = blocks[fields["block"]]
                sums[0] += p.numel()
                sums[1] += p.numel() if p.requires_grad else 0
                sums[2] += p.numel() * _costs._dtype_bits(p) / 8
                continue
            shape = (*p.shape, 1) if p.dim() == 1 else tuple(p.shape)
            rest = math.prod(shape[2:])
            bits = _costs._dtype_bits(p)
            dynamic.append(_Tensor(i, shape[0], shape[1], rest, bits, p.requires_grad, **fields))
        static = [p for i, p in enumerate(self.params) if i not in self.fields]
        return (
            dynamic,
            (
                sum(p.numel() for p in static),
                sum(p.numel() for p in static if p.requires_grad),
                sum(p.numel() * _costs._dtype_bits(p) / 8 for p in static),
            ),
            blocks,
        )

    def counted(
        self, trace: _costs._Trace | None, dynamic: list[_Tensor], blocks: list[list[float]]
    ) -> tuple[list[tuple[int, int, int]], tuple[int, int]]:
        """``(tensor, output positions, input bits)`` of each counted layer whose weight a
        Config changes, and the other layers' MACs and bit-ops (adding those of a droppable
        block's layers to ``blocks``)."""
        where = {t.index: j for j, t in enumerate(dynamic)}
        counted, macs, ops = [], 0, 0
        for name, layer in _costs._counted_layers(self.model).items() if trace else ():
            positions, act_bits = trace.get(name, (0, 0)) if trace else (0, 0)
            i = self.index.get(id(layer.weight), -1)
            if i < 0:
                raise Unsupported(f"{name}.weight is not a parameter")
            if i in self.quantized and name not in self.quantized[i]:
                raise Unsupported(f"{name} computes with a weight another layer quantizes")
            if i in where:
                counted.append((where[i], positions, act_bits))
                continue
            n = positions * layer.weight.numel()
            n_ops = n * _costs._dtype_bits(layer.weight) * act_bits
            if i in self.block_of:
                blocks[self.block_of[i]][3] += n
                blocks[self.block_of[i]][4] += n_ops
            else:
                macs, ops = macs + n, ops + n_ops
        return counted, (macs, ops)


def _heads(block: nn.Module, layout: _elastic.BlockLayout, size: int, kept: int) -> torch.Tensor:
    """The q/k/v rows an elastic head count keeps, for ``kept`` rows (``size`` per head)."""
    return _elastic.head_keep(block, layout, kept // size)
