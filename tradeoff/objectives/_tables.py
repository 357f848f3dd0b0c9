"""The tables behind :mod:`tradeoff.objectives._analytic`: what each parameter of a model can
undergo (pruning, quantization, an elastic width, a dropped block), and the Config decoder.

Every check that a (space, model) pair fits the tables happens here, raising
:class:`Unsupported` with the reason; the apply path then serves the known cost.
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
from tradeoff.spaces._channels import _kept_count, _size_problem
from tradeoff.spaces._channels import _weight as _channel_weight
from tradeoff.spaces._model import PRUNE_ATTR, QUANT_ATTR, STAGES, QuantInfo, layer_param_name
from tradeoff.spaces._params import Choice, Ordinal
from tradeoff.spaces._prune import PruningSpace
from tradeoff.spaces._quant import QuantizationSpace
from tradeoff.spaces._quantizers import _float_weight
from tradeoff.spaces._space import SearchSpace

_Quant = tuple[QuantInfo, QuantInfo]  # a group's setting, and the same without act_bits
_Key = tuple[Any, ...]
_Units = list[tuple[list[str], dict[Any, Any]]]  # parameter names, (their values) -> choice
_Arch = tuple[bool, float | None, int | None]  # a block's keep flag, FFN ratio, heads
_SUPPORTED = (PruningSpace, QuantizationSpace, ArchitectureSpace)
_FFN, _HEADS = 1, 2  # where an _Arch choice holds the choice of each elastic width
_BOOLS = {bool, np.bool_}  # True == 1 == 1.0 for a dict, not for a Config


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
                group = _elastic.kv_group(block, layout)
                counts = arch[f"{prefix}.heads"].values  # type: ignore[attr-defined]
                n_heads = layout.n_heads or 0
                # Query rows and output columns; key/value rows (fewer under grouped-query
                # attention), selected by the same head count.
                self._slice(block, prefix, (layout.q,), (layout.o,), offset + len(slices))
                heads = functools.partial(_heads, block, layout, 0)
                slices.append(
                    _Slice(i, _HEADS, size * n_heads, {h: h * size for h in counts}, heads)
                )
                self._slice(block, prefix, (layout.k, layout.v), (), offset + len(slices))
                kv = functools.partial(_heads, block, layout, 1)
                kept_kv = {h: h // group * size for h in counts}
                slices.append(_Slice(i, _HEADS, size * n_heads // group, kept_kv, kv))
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


def _heads(block: nn.Module, layout: _elastic.BlockLayout, which: int, kept: int) -> torch.Tensor:
    """The rows an elastic head count keeps, for ``kept`` rows: the query rows (``which`` 0) or
    the key/value rows (1; each key/value head serves a group of query heads)."""
    size = _elastic.head_dim(block, layout)
    group = _elastic.kv_group(block, layout) if which else 1
    return _elastic.head_rows(block, layout, kept // size * group)[which]
