"""Quantization search space: per-layer bit-width, number format and scale granularity.

Parameters of each layer (or tied group) ``<name>``; a knob given one option is fixed, no parameter:

* ``<name>.bits``: ``Ordinal`` of integer weight widths, ascending. Only the ``"int"`` format
  reads it; a float format fixes its own width (fp8: 8, fp4: 4, recorded in ``QuantInfo.bits``),
  and without ``"int"`` among ``formats`` there is no ``bits`` parameter.
* ``<name>.act_bits``: ``Ordinal`` of input-activation widths, ascending, ``None`` (float, the
  most precise level) last: ``(4, 8, None)``.
* ``<name>.format`` / ``<name>.granularity``: ``Choice`` of :data:`FORMATS` / :data:`GRANULARITIES`;
  ``<name>.group_size``: ``Ordinal``, only if ``"group"`` is an option.

A tied group (``tie=``) gets one set of parameters named after its first layer in model order,
or the name it is given (``tie={"blocks.0": "blocks.0.*"}``; :attr:`QuantizationSpace.groups`).
Layers sharing one weight tensor are tied automatically.

How int levels are computed (``method=``): ``"rtn"`` rounds each weight to nearest (data-free,
microseconds); ``"gptq"`` (:func:`~tradeoff.spaces._gptq.gptq_quantize`) rounds column by column
with error feedback weighted by each layer's calibration Hessian, collected from
``calibration=`` in one pass of the model when the space is built, unless the bank already
holds every entry for that model and calibration (then never); ``"hqq"`` (the ``hqq``
package, data-free) fits each group's scale and zero-point by half-quadratic optimization.
Float formats (fp8, fp4) always round to nearest. Calibrated levels are computed once per
(layer weight, level) into a :class:`~tradeoff.spaces._bank.VariantBank` and read back on every
apply, so trials only assemble.

Quantization is simulated (quantize-dequantize in place, keeping dtype and device), the standard
way to evaluate mixed precision anywhere; :func:`to_int8_runtime` gives real int8 CPU kernels.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import copy
import logging
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import nn

from tradeoff.spaces._bank import VariantBank, default_directory, tensor_digest
from tradeoff.spaces._model import (
    DEFAULT_LAYER_TYPES,
    QUANT_ATTR,
    ModelSpace,
    QuantInfo,
    check_group_names,
    find_module,
    layer_param_name,
    select_layers,
    tie_members,
    tie_patterns,
)
from tradeoff.spaces._params import Choice, Ordinal, Parameter
from tradeoff.spaces._quantizers import (
    _FLOAT_BITS,
    METHODS,
    HessianSource,
    Quantizer,
    _blocks,
    _build_layer,
    _check_layers,
    _check_method,
    _fake_quantize,
    _float_weight,
    _int_rows,
    describe,
    quantize_weight,
)
from tradeoff.spaces._space import SearchSpace

__all__ = [
    "FORMATS",
    "GRANULARITIES",
    "METHODS",
    "ActivationQuantizer",
    "QuantizationSpace",
    "Quantizer",
    "_fake_quantize",
    "mark_quantized",
    "quantize_weight",
    "to_int8_runtime",
]

FORMATS = ("int", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1")
"""Weight formats: symmetric integer, OCP fp8 (E4M3 without infinities, E5M2) and fp4 E2M1."""

GRANULARITIES = ("tensor", "channel", "group")
"""One scale per weight, per output channel, or per ``group_size`` inputs of a channel."""

MAX_BITS = 16

_LOG = logging.getLogger("tradeoff.spaces")


class QuantizationSpace(ModelSpace):
    """Mixed-precision quantization of a model's layers; build it with :meth:`for_model`.

    Args:
        groups: Parameter prefix -> the layers it quantizes (a tied group has several).
        options: Knob -> options, as normalized by :meth:`for_model`.
    """

    stage: ClassVar[str] = "quant"

    def __init__(
        self,
        *,
        groups: Mapping[str, Sequence[str]],
        options: Mapping[str, tuple[Any, ...]],
        quantizer: Quantizer | None = None,
    ) -> None:
        self._groups = {prefix: tuple(layers) for prefix, layers in groups.items()}
        self._options = dict(options)
        self.quantizer = quantizer or Quantizer()
        params: dict[str, Parameter] = {}
        for prefix in self._groups:
            for knob, values in self._options.items():
                if len(values) > 1:
                    kind = Choice if knob in ("format", "granularity") else Ordinal
                    params[layer_param_name(prefix, knob)] = kind(values)
        super().__init__(params)

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        bits: int | Sequence[int] = (2, 3, 4, 8),
        *,
        act_bits: int | Sequence[int | None] | None = None,
        formats: str | Sequence[str] = ("int",),
        granularity: str | Sequence[str] = "channel",
        group_size: int | Sequence[int] = 128,
        include: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        types: Sequence[type[nn.Module]] = DEFAULT_LAYER_TYPES,
        tie: Sequence[str | Sequence[str]] | Mapping[str, str | Sequence[str]] = (),
        method: str = "rtn",
        calibration: Any = None,
        symmetric: bool | None = None,
        bank: str | os.PathLike[str] | VariantBank | None = "auto",
        device: torch.device | str | None = None,
        damp: float = 0.01,
        act_order: bool = False,
    ) -> QuantizationSpace:
        """The space of ``model``'s layers; each knob takes one option or a sequence of them.

        Args:
            model: The float model.
            bits: Integer weight bit-widths in ``[2, 16]``.
            act_bits: Input-activation bit-widths in ``[2, 16]``; ``None`` is float.
            formats: Weight formats, from :data:`FORMATS`.
            granularity: Scale granularities, from :data:`GRANULARITIES`.
            group_size: Inputs per scale for ``"group"`` (a last partial group is allowed).
            include: Layer-name patterns to quantize, as in ``select_layers``; default all.
            exclude: Layer-name patterns to leave in float.
            types: Module types to quantize.
            tie: Groups of layers sharing one setting, each a pattern or a list of patterns:
                ``tie=[("lm_head", "embed_out"), "blocks.0.attn.*_proj"]``, named after
                their first layer; or a dict that names them, ``tie={"blocks.0":
                "blocks.0.*"}`` (parameters ``blocks.0.bits``...), so that a block's
                parameters of several spaces group as one layer for crossover and
                baselines.
            method: How int levels are computed, from :data:`METHODS`: ``"rtn"``,
                ``"gptq"`` (needs ``calibration``) or ``"hqq"`` (needs the ``hqq`` package).
                Granularity ``"channel"`` or ``"group"`` for GPTQ and HQQ; HQQ's groups must
                divide each layer's inputs.
            calibration: For GPTQ: what the model is called on, as a tensor (split into
                batches of 8 along its first dimension: token ids ``[n_seqs, seq_len]`` for a
                language model, images ``[n, c, h, w]`` for a CNN) or an iterable of batches
                (``model(batch)``, ``model(*batch)`` or ``model(**batch)``). Give each layer
                many times more rows (tokens) than it has inputs: below 8x, GPTQ can lose to
                RTN on new data (a warning names the number needed). An iterable is read
                once, here, and its batches kept for the Hessians; when the bank already has
                every entry of this model and calibration (by a digest of both), no pass of
                the model is made at all.
            symmetric: Zero-point 0 (the int grid of RTN here) or an asymmetric grid with a
                zero-point per scale (stored, counted in ``n_scales``). Default: symmetric,
                asymmetric for HQQ (its only grid).
            bank: Directory of the variant bank for calibrated levels (``"gptq"``, ``"hqq"``,
                asymmetric RTN); ``"auto"``: ``$TRADEOFF_CACHE/bank``, else
                ``~/.cache/tradeoff/bank``; ``None``: memory only; or a
                :class:`~tradeoff.spaces.VariantBank` (``VariantBank(DIR,
                max_memory_mb=4000)`` bounds what a process keeps in memory).
            device: Where calibration and GPTQ run (default: the model's device).
            damp: GPTQ's dampening, a fraction of the Hessian's mean diagonal.
            act_order: GPTQ quantizes columns by decreasing Hessian diagonal.

        Raises:
            TypeError: an argument has the wrong type, or a layer has no float weight.
            ValueError: a bad option, no layer matches, a tie pattern matches no selected
                layer, every knob is fixed, a method unavailable for an option or layer,
                GPTQ without calibration, or a bank directory that is not writable.
            ImportError: ``method="hqq"`` without the ``hqq`` package.
        """
        options = _normalize_options(bits, act_bits, formats, granularity, group_size)
        symmetric = _check_method(method, calibration, symmetric, options, damp, act_order)
        tie_groups = tie_patterns(tie)
        if all(len(values) == 1 for values in options.values()):
            fixed = {k: v[0] for k, v in options.items()}
            raise ValueError(
                f"Nothing to search: every knob has one option ({fixed}); give two or more "
                "options for bits, act_bits, formats, granularity or group_size."
            )
        layers = select_layers(
            model, types=types, include=include, exclude=exclude, what="layers to quantize"
        )
        for name in (n for n, m in layers.items() if _float_weight(m) is None):
            raise TypeError(f"Layer {name!r} has no float 'weight' to quantize; exclude it.")
        groups = _tie_layers(layers, tie_groups)
        quantizer = Quantizer(
            method, symmetric=symmetric, damp=damp, act_order=act_order, device=device
        )
        if quantizer.banked:
            _check_layers(method, layers, options)
            if not isinstance(bank, VariantBank):  # checks the directory is writable
                bank = VariantBank(default_directory() if bank == "auto" else bank)
            quantizer.bank = bank
        space = cls(groups=groups, options=options, quantizer=quantizer)
        if method == "gptq":
            source = HessianSource(model, layers, calibration, device)
            # A warm bank needs no Hessians; otherwise collect them now, where a calibration
            # the model cannot run fails before anything else is done.
            quantizer.calibrate(source, now=not space._in_bank(model, source))
        return space

    def _in_bank(self, model: nn.Module, source: HessianSource) -> bool:
        """Whether the bank knows ``source``'s Hessians (by their digests) and holds every
        (layer, level) entry a :meth:`build` lists (by name; :meth:`build` verifies them)."""
        q = self.quantizer
        if not q.known_digests(source):
            return False
        for name in (n for layers in self._groups.values() for n in layers):
            module = find_module(model, name)
            weight = _float_weight(module) if module is not None else None
            assert weight is not None  # for_model checked every layer
            digest = tensor_digest(weight)
            for info in (i for i in self.levels() if q.uses_bank(i)):
                if q.key(name, digest, info, False) not in q.bank:
                    return False
        return True

    @property
    def groups(self) -> Mapping[str, tuple[str, ...]]:
        """Parameter prefix -> the layers it quantizes, in model order."""
        return dict(self._groups)

    def _apply(self, model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
        done: set[int] = set()  # ids of weights already quantized (shared by tied layers)
        for prefix, layers in self._groups.items():
            setting = self._setting(prefix, config)
            for name in layers:
                module = find_module(model, name)
                if module is not None and (weight := _float_weight(module)) is not None:
                    _quantize_module(name, module, weight, setting, done, self.quantizer)
        return model

    def merged_with(self, others: Sequence[SearchSpace]) -> None:
        """A space applied before this one that reshapes layers (pruning; FFN or head
        narrowing) asks for calibrated entries no :meth:`build` can list up front (masked or
        narrowed weights): the quantizer then keeps its Hessians when pickled to workers."""
        earlier = [s for s in others if getattr(s, "reshapes_layers", False)]
        if earlier and self.quantizer.method == "gptq":
            self.quantizer.keep_hessians = True

    @property
    def method(self) -> str:
        """How int levels are computed (``"rtn"``, ``"gptq"`` or ``"hqq"``)."""
        return self.quantizer.method

    def levels(self) -> list[QuantInfo]:
        """Every weight level a layer can take (act_bits aside; ``n_scales`` not counted)."""
        found: dict[QuantInfo, None] = {}
        for fmt in self._options["format"]:
            for bits in self._options["bits"] if fmt == "int" else (_FLOAT_BITS[fmt],):
                for granularity in self._options["granularity"]:
                    sizes = self._options["group_size"] if granularity == "group" else (None,)
                    for size in sizes:
                        found[self.quantizer.info(fmt, bits, granularity, size)] = None
        return list(found)

    def build(
        self,
        model: nn.Module,
        *,
        map: Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]] | None = None,
    ) -> int:
        """Compute every calibrated (layer, level) entry not yet in the bank, up front; entries
        on disk are verified (key and checksum) first, and corrupt ones computed again.

        Without this, entries are computed on first use (lazily), by whichever process applies
        a Config first. Building up front moves that cost before the search, and ``map``
        spreads it: ``ray.util.multiprocessing.Pool().map`` (a Ray cluster),
        ``concurrent.futures.ProcessPoolExecutor().map``, or any ``map(fn, items)``; each
        item is one layer, shipped with its weight and Hessian, and the results come back to
        this process, which stores them.

        Args:
            model: The float model this space was built from.
            map: How to run the layers' work; default: one after another, here.

        Returns:
            The number of entries computed.
        """
        q = self.quantizer
        # Layers with the same inputs (one Hessian: q, k, v; gate, up) and the same missing
        # levels are one job, swept by GPTQ as one stack.
        jobs: dict[Any, list[tuple[str, torch.Tensor, list[tuple[QuantInfo, str]]]]] = {}
        # (_hessian_digest collects the Hessians, only once some entry is missing.)
        for name in (n for layers in self._groups.values() for n in layers):
            module = find_module(model, name)
            weight = _float_weight(module) if module is not None else None
            if weight is None:
                raise ValueError(f"build: the model has no layer {name!r} with a float weight.")
            digest = tensor_digest(weight)
            todo = [
                (info, key)
                for info in self.levels()
                if q.uses_bank(info) and not q.bank.verify(key := q.key(name, digest, info, False))
            ]
            if todo:
                shared = q._hessian_digest(name) if q.method == "gptq" else name
                group = (shared, tuple(info for info, _ in todo), tuple(weight.shape[1:]))
                jobs.setdefault(group, []).append((name, weight.detach(), todo))
        items = [
            ([w for _, w, _ in layers], q.hessian(layers[0][0]), list(group[1]), q.options())
            for group, layers in jobs.items()
        ]
        count, start = 0, time.perf_counter()
        results = (map or builtins.map)(_build_layer, items)
        for k, (layers, tensors) in enumerate(zip(jobs.values(), results), 1):
            for (name, _, todo), per_info in zip(layers, tensors):
                for (info, key), entry in zip(todo, per_info):
                    q.bank.put(
                        key, entry, describe=describe(name, info), group_size=info.group_size
                    )
                    count += 1
            names = ", ".join(n for n, _, _ in layers)
            seconds = time.perf_counter() - start
            _LOG.info("variant bank: job %d/%d (%s), %.1f s", k, len(items), names, seconds)
        q.complete = True
        return count

    def release(self) -> int:
        """Free the memory a search needed and a finished one does not: the bank's entries
        this process holds that are also on disk (read again, and dequantized, when a Config
        next uses them), and the calibration Hessians once :meth:`build` has put every entry
        in the bank. Configs applied afterwards have the same weights, bit for bit.

        Returns:
            The bytes freed (a memory-only bank keeps its entries: 0 for them).
        """
        return self.quantizer.release()

    def _setting(self, prefix: str, config: Mapping[str, Any]) -> QuantInfo:
        """The group's setting, with ``n_scales`` still to count per layer."""
        pick = {k: config.get(layer_param_name(prefix, k), v[0]) for k, v in self._options.items()}
        fmt, granularity = pick["format"], pick["granularity"]
        info = self.quantizer.info(
            fmt,
            _FLOAT_BITS.get(fmt, pick["bits"]),
            granularity,
            pick["group_size"] if granularity == "group" else None,
        )
        return replace(info, act_bits=pick["act_bits"])


ACT_QUANT_ATTR = "tradeoff_act_quant"  # the layer's ActivationQuantizer, if any


class ActivationQuantizer:
    """Forward pre-hook fake-quantizing a layer's first input to ``bits``, per tensor.

    Dynamic scale from each input's ``max|x|``, on the weights' ``"int"`` grid; gradients pass
    straight through. A plain object, so quantized models stay picklable. The layer holds it
    as ``module.tradeoff_act_quant`` too; ``enabled = False`` turns it off (e.g. where a real
    int8 kernel quantizes activations itself) without touching torch's hook registry.
    """

    def __init__(self, bits: int) -> None:
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= MAX_BITS:
            raise ValueError(f"ActivationQuantizer bits must be an int in [2, 16], got {bits!r}.")
        self.bits = bits
        self.enabled = True

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not self.enabled or not args or not isinstance(args[0], torch.Tensor):
            return None
        if not args[0].is_floating_point():
            return None
        x = args[0]
        flat = x.detach().reshape(1, -1).to(torch.promote_types(x.dtype, torch.float32))
        q = _int_rows(flat, self.bits).reshape(x.shape).to(x.dtype)
        return (q + (x - x.detach()), *args[1:])  # value q exactly, gradient of x

    def __repr__(self) -> str:
        return f"ActivationQuantizer(bits={self.bits})"


def to_int8_runtime(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose 8-bit int ``nn.Linear`` layers run real int8 kernels (torchao).

    For CPU latency: weights are re-quantized per channel from their fake-quantized values and
    activations per token to int8, whatever ``act_bits``. Other layers are copied unchanged.

    Raises:
        ValueError: no ``nn.Linear`` of ``model`` was quantized to 8-bit int.
    """
    names = {name for name, module in model.named_modules() if _is_int8_linear(module)}
    if not names:
        raise ValueError(
            "to_int8_runtime: no nn.Linear layer of the model is quantized to 8-bit int. Apply a "
            "QuantizationSpace config with '<layer>.bits' = 8 and format 'int' first."
        )
    import torchao.quantization as ao  # type: ignore[import-untyped]

    runtime = copy.deepcopy(model)
    # set_inductor_config=False: do not change torch._inductor's global settings as a side effect.
    config = ao.Int8DynamicActivationInt8WeightConfig(set_inductor_config=False)
    ao.quantize_(runtime, config, filter_fn=lambda _, fqn: fqn in names)
    for name in names:
        hook = getattr(runtime.get_submodule(name), ACT_QUANT_ATTR, None)
        if isinstance(hook, ActivationQuantizer):
            hook.enabled = False  # the kernel quantizes activations itself
    return runtime


def _is_int8_linear(module: nn.Module) -> bool:
    info = getattr(module, QUANT_ATTR, None)
    fmt_bits = (info.fmt, info.bits) if isinstance(info, QuantInfo) else None
    return isinstance(module, nn.Linear) and fmt_bits == ("int", 8)


# Quantization core --------------------------------------------------------------------------
_GRIDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tradeoff_grids", default=None
)


@contextlib.contextmanager
def recording_grids() -> Iterator[dict[str, Any]]:
    """Within it, applying a Config records each quantized layer's int grid: layer name ->
    :meth:`Quantizer.grid` (``(scale, zero)``, or ``None`` for a level without one), and
    ``"tied"`` for a layer whose weight another layer already quantized. Export reads it; the
    search never pays for it."""
    grids: dict[str, Any] = {}
    token = _GRIDS.set(grids)
    try:
        yield grids
    finally:
        _GRIDS.reset(token)


def _quantize_module(
    name: str,
    module: nn.Module,
    weight: torch.Tensor,
    setting: QuantInfo,
    done: set[int],
    quantizer: Quantizer,
) -> None:
    if getattr(module, QUANT_ATTR, None) is not None:
        raise ValueError(f"Layer {name!r} is already quantized; apply configs to the float model.")
    grids = _GRIDS.get()
    if id(weight) not in done:  # a weight shared by tied layers is quantized once
        done.add(id(weight))
        if grids is not None:
            grids[name] = quantizer.grid(name, module, weight, setting)
        with torch.no_grad():
            weight.copy_(quantizer.quantize(name, module, weight, setting))
    elif grids is not None:
        grids[name] = "tied"
    mark_quantized(module, weight, setting)


def mark_quantized(module: nn.Module, weight: torch.Tensor, setting: QuantInfo) -> None:
    """Record ``setting`` on ``module`` (with its ``n_scales``) and hook its activations."""
    rows, size = _blocks(weight, setting)
    hook = getattr(module, ACT_QUANT_ATTR, None)
    if isinstance(hook, ActivationQuantizer):  # a workspace re-marks its layers per Config
        hook.enabled = setting.act_bits is not None
        hook.bits = setting.act_bits or hook.bits
    elif setting.act_bits is not None:
        hook = ActivationQuantizer(setting.act_bits)
        module.register_forward_pre_hook(hook)
        # deepcopy keeps this attribute and the registered hook one object.
        setattr(module, ACT_QUANT_ATTR, hook)
    n_scales = rows * math.ceil(weight.numel() // rows / size) * (1 if setting.symmetric else 2)
    setattr(module, QUANT_ATTR, replace(setting, n_scales=n_scales))


# Validation ---------------------------------------------------------------------------------
def _normalize_options(
    bits: Any, act_bits: Any, formats: Any, granularity: Any, group_size: Any
) -> dict[str, tuple[Any, ...]]:
    fmts = _strings("formats", formats, FORMATS)
    grans = _strings("granularity", granularity, GRANULARITIES)
    weight_bits = _levels("bits", bits, low=2)
    sizes = _levels("group_size", group_size, low=1, high=None)
    return {
        # A knob no option uses is fixed to its first option and gets no parameter.
        "bits": weight_bits if "int" in fmts else weight_bits[:1],
        "format": fmts,
        "granularity": grans,
        "group_size": sizes if "group" in grans else sizes[:1],
        "act_bits": _levels("act_bits", act_bits, low=2, allow_none=True),
    }


def _levels(
    name: str, value: Any, *, low: int, high: int | None = MAX_BITS, allow_none: bool = False
) -> tuple[int | None, ...]:
    """``value`` (one level or a sequence) as distinct levels, ascending, ``None`` last."""
    items = _listed(name, value, numbers.Integral)
    for v in items:
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            also = " or None (float)" if allow_none else ""
            raise TypeError(f"{name} values must be ints{also}, got {v!r} in {value!r}.")
        if not low <= int(v) <= (high or int(v)):
            raise ValueError(f"{name} values must be in [{low}, {high or 'inf'}], got {value!r}.")
    levels = _distinct(name, [None if v is None else int(v) for v in items])
    return tuple(sorted(levels, key=lambda v: (v is None, v or 0)))


def _strings(name: str, value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    items = _listed(name, value, str)
    for v in items:
        if v not in allowed:
            raise ValueError(f"Unknown {name} option {v!r}; choose from {list(allowed)}.")
    return tuple(_distinct(name, items))


def _listed(name: str, value: Any, single: type) -> list[Any]:
    items = [value] if value is None or isinstance(value, single) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"{name} takes one option or a sequence of options, got {value!r}.")
    if not items:
        raise ValueError(f"{name} is empty; give at least one option.")
    return list(items)


def _distinct(name: str, items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError(f"{name} has duplicate options: {items!r}; list each once.")
    return items


def _tie_layers(
    layers: Mapping[str, nn.Module], tie: list[tuple[str | None, list[str]]]
) -> dict[str, list[str]]:
    """Parameter prefix (the group's name, else its first layer in model order) -> layers,
    from ties and shared weights."""
    order = {name: i for i, name in enumerate(layers)}
    label = {name: name for name in layers}  # each layer's group, named by its first layer
    by_weight: dict[int, list[str]] = {}
    for name, module in layers.items():
        by_weight.setdefault(id(module.weight), []).append(name)
    members_of = tie_members(layers, [patterns for _, patterns in tie])
    for members in [*members_of, *by_weight.values()]:
        old = {label[m] for m in members}
        new = min(old, key=order.__getitem__)
        label.update({name: new for name, group in label.items() if group in old})
    groups = {g: [n for n in layers if label[n] == g] for g in dict.fromkeys(label.values())}
    names = {label[members[0]]: name for (name, _), members in zip(tie, members_of) if name}
    keys = [names.get(g, g) for g in groups]
    check_group_names(keys)
    return dict(zip(keys, groups.values()))
