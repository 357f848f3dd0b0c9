"""Known costs without a model copy: size and compute of a pruned and quantized model.

:func:`~tradeoff.objectives.model_cost` takes this path when its metric is one of :data:`KINDS`
and every model-aware part of the space is a plain ``PruningSpace`` (unstructured, n:m or
channel patterns) or ``QuantizationSpace``. Its numbers are those of
``metric(space.apply(model, config))``, since it runs the spaces' own functions, on one tensor
instead of a model copy:

* shapes follow from the Config (channel pruning's kept counts from the spaces' own rounding,
  tabulated once), so parameter counts, MACs, bit-ops, bit-widths and scale counts are integer
  arithmetic (output positions per layer from one trace of the unmodified model);
* what depends on weight values (which channels a channel prune keeps, how many weights stay
  non-zero after pruning and quantization) is computed on the one tensor concerned, once per
  distinct state of that tensor (channels kept, pattern, sparsity, quantization), and kept.
"""

from __future__ import annotations

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
_SUPPORTED = (PruningSpace, QuantizationSpace)
_BOOLS = {bool, np.bool_}  # True == 1 == 1.0 for a dict, not for a Config
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)  # NumPy sorts these faster


class Unsupported(Exception):
    """The space or model needs the apply path; the message says why."""


@dataclass(frozen=True, slots=True)
class _Tensor:
    """A parameter a Config can change: its index in ``model.parameters()``, shape as
    ``(d0, d1, prod(shape[2:]))`` (``d1 = 1`` for a vector), dtype bits, ``requires_grad``,
    the channel groups selecting its dims 0 and 1 (``fpc`` entries per channel of ``cols``),
    and the prune and quant units of the layer whose weight it is (-1: none)."""

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
    """One decoded Config: per unit choices, per group kept channels, per tensor shape."""

    prune: list[tuple[str, float]]
    quant: list[_Quant]
    kept: list[int]
    rows: list[int]
    numels: list[int]
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
        self._decode, prune, quant = _decoder(space)
        self._params: list[torch.Tensor] = list(_check_plain(model).parameters())
        self._n, self._m = (prune.n, prune.m) if prune is not None else (2, 4)
        self._levels = prune.levels if prune is not None else ()
        self._n_prune = len(prune.plans) if prune is not None else 0
        specs = _Specs(model, self._params)
        self._groups = specs.groups(prune) if prune is not None else []
        specs.layers(prune, quant)
        self.dynamic, self._static = specs.split()
        self._counted, self._static_ops = specs.counted(trace() if trace else None, self.dynamic)
        self._static_nonzeros: int | None = None  # counted on first use
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
        return float(self._static[0] + sum(st.numels))

    def _trainable_parameters(self, st: _State) -> float:
        return float(
            self._static[1] + sum(n for n, t in zip(st.numels, self.dynamic) if t.trainable)
        )

    def _macs(self, st: _State) -> float:
        return float(self._static_ops[0] + sum(p * st.numels[j] for j, p, _ in self._counted))

    def _bitops(self, st: _State) -> float:
        total = self._static_ops[1]
        for j, positions, act_bits in self._counted:
            t = self.dynamic[j]
            q = st.quant[t.quant][0] if t.quant >= 0 else None
            w_bits = q.bits if q is not None else t.bits
            a_bits = q.act_bits if q is not None and q.act_bits else act_bits
            total += positions * st.numels[j] * w_bits * a_bits
        return float(total)

    def _weight_storage_bytes(self, st: _State) -> float | None:
        total = self._static[2]
        for j, t in enumerate(self.dynamic):
            numel, d0 = st.numels[j], st.rows[j]
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
        if self._static_nonzeros is None:
            static = set(range(len(self._params))) - {t.index for t in self.dynamic}
            counts = [torch.count_nonzero(self._params[i].detach()).item() for i in static]
            self._static_nonzeros = int(sum(counts))
        total = self._static_nonzeros
        for j, t in enumerate(self.dynamic):
            pattern = self._pattern(st, t, st.numels[j], st.rows[j])
            if pattern == ():
                return None
            total += self._nonzeros(st, j, pattern, st.quant[t.quant] if t.quant >= 0 else None)
        return float(total)

    # Config -> state ------------------------------------------------------------------------
    def _state(self, config: Mapping[str, Any]) -> _State | None:
        choices = self._decode(config)
        if choices is None:
            return None
        prune, quant = choices[: self._n_prune], choices[self._n_prune :]
        kept = [self._kept(g, prune) for g in self._groups]
        rows, numels = [], []
        for t in self.dynamic:
            d0 = kept[t.rows] if t.rows >= 0 else t.d0
            rows.append(d0)
            numels.append(d0 * (kept[t.cols] * t.fpc if t.cols >= 0 else t.d1) * t.rest)
        return _State(prune, quant, kept, rows, numels)

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
        """Per group, a key naming the channels it keeps (``None``: all)."""
        if st.keys is None:
            st.keys = []
            for g, (group, kept) in enumerate(zip(self._groups, st.kept)):
                up = st.keys[group.upstream] if group.upstream >= 0 else None
                st.keys.append(None if kept == group.channels else (g, kept, up))
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
    Callable[[Mapping[str, Any]], list[Any] | None], PruningSpace | None, QuantizationSpace | None
]:
    """``decode(config)`` -> the choices of each prune layer, then of each quant group (``None``
    for a Config the space does not contain), and the space's prune and quant parts."""
    if type(space) not in (*_SUPPORTED, SearchSpace):
        raise Unsupported(f"the space is a {type(space).__name__}")
    parts = {"": space} if type(space) in _SUPPORTED else space.children
    model = {k: c for k, c in parts.items() if getattr(c, "stage", None) in STAGES}
    plain = {f"{k}.{n}": p for k, c in parts.items() if k not in model for n, p in c.items()}
    prune = [(k, c) for k, c in model.items() if type(c) is PruningSpace]
    quant = [(k, c) for k, c in model.items() if type(c) is QuantizationSpace]
    others = [type(c).__name__ for c in model.values() if type(c) not in _SUPPORTED]
    if others or len(prune) > 1 or len(quant) > 1 or not model:
        why = f"{', '.join(others)} parts" if others else "not one PruningSpace/QuantizationSpace"
        raise Unsupported(f"the space has {why}")
    units = [u for k, c in prune for u in _prune_units(c, f"{k}." if k else "")]
    units += [u for k, c in quant for u in _quant_units(c, f"{k}." if k else "")]
    names = [name for unit_names, _ in units for name in unit_names]
    get = operator.itemgetter(*names, names[0])  # always a tuple
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
        return None if _BOOLS.intersection(map(type, values)) else choices

    return decode, prune[0][1] if prune else None, quant[0][1] if quant else None


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


def _combos(part: SearchSpace, names: list[str]) -> Iterable[tuple[Any, ...]]:
    params = [part[name] for name in names]
    if not all(isinstance(p, (Ordinal, Choice)) for p in params):
        raise Unsupported("a pruning or quantization parameter is not an Ordinal or Choice")
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

    def mark(self, module: nn.Module, name: str, layer: str, **fields: int) -> int:
        """Record ``fields`` for ``module.<name>`` (if it has one); its index (or -1)."""
        p = getattr(module, name, None)
        if p is None:
            return -1
        if id(p) not in self.index or id(p) in self.shared:
            raise Unsupported(f"{layer}.{name} is shared with another layer or not a parameter")
        self.fields.setdefault(self.index[id(p)], {}).update(fields)
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
                    self.mark(module, "weight", layer, quant=k)

    def split(self) -> tuple[list[_Tensor], tuple[int, int, float]]:
        """The parameters a Config changes, and the other ones' parameter count, trainable
        parameter count and storage bytes."""
        dynamic = []
        for i, fields in sorted(self.fields.items()):
            p = self.params[i]
            shape = (*p.shape, 1) if p.dim() == 1 else tuple(p.shape)
            rest = math.prod(shape[2:])
            bits = _costs._dtype_bits(p)
            dynamic.append(_Tensor(i, shape[0], shape[1], rest, bits, p.requires_grad, **fields))
        static = [p for i, p in enumerate(self.params) if i not in self.fields]
        return dynamic, (
            sum(p.numel() for p in static),
            sum(p.numel() for p in static if p.requires_grad),
            sum(p.numel() * _costs._dtype_bits(p) / 8 for p in static),
        )

    def counted(
        self, trace: _costs._Trace | None, dynamic: list[_Tensor]
    ) -> tuple[list[tuple[int, int, int]], tuple[int, int]]:
        """``(tensor, output positions, input bits)`` of each counted layer whose weight a
        Config changes, and the other layers' MACs and bit-ops."""
        where = {t.index: j for j, t in enumerate(dynamic)}
        counted, macs, ops = [], 0, 0
        for name, layer in _costs._counted_layers(self.model).items() if trace else ():
            positions, act_bits = trace.get(name, (0, 0)) if trace else (0, 0)
            i = self.index.get(id(layer.weight), -1)
            if i < 0:
                raise Unsupported(f"{name}.weight is not a parameter")
            if i in where:
                counted.append((where[i], positions, act_bits))
            else:
                n = positions * layer.weight.numel()
                macs, ops = macs + n, ops + n * _costs._dtype_bits(layer.weight) * act_bits
        return counted, (macs, ops)
