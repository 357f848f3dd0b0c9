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
Quantization is simulated (quantize-dequantize in place, keeping dtype and device), the standard
way to evaluate mixed precision anywhere; :func:`to_int8_runtime` gives real int8 CPU kernels.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import nn

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

FORMATS = ("int", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1")
"""Weight formats: symmetric integer, OCP fp8 (E4M3 without infinities, E5M2) and fp4 E2M1."""

GRANULARITIES = ("tensor", "channel", "group")
"""One scale per weight, per output channel, or per ``group_size`` inputs of a channel."""

MAX_BITS = 16

_FLOAT_MAX = {"fp8_e4m3": 448.0, "fp8_e5m2": 57344.0, "fp4_e2m1": 6.0}
_FLOAT_BITS = {"fp8_e4m3": 8, "fp8_e5m2": 8, "fp4_e2m1": 4}
_FP8_DTYPES = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


class QuantizationSpace(ModelSpace):
    """Mixed-precision quantization of a model's layers; build it with :meth:`for_model`.

    Args:
        groups: Parameter prefix -> the layers it quantizes (a tied group has several).
        options: Knob -> options, as normalized by :meth:`for_model`.
    """

    stage: ClassVar[str] = "quant"

    def __init__(
        self, *, groups: Mapping[str, Sequence[str]], options: Mapping[str, tuple[Any, ...]]
    ) -> None:
        self._groups = {prefix: tuple(layers) for prefix, layers in groups.items()}
        self._options = dict(options)
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

        Raises:
            TypeError: an argument has the wrong type, or a layer has no float weight.
            ValueError: a bad option, no layer matches, a tie pattern matches no selected
                layer, or every knob is fixed.
        """
        options = _normalize_options(bits, act_bits, formats, granularity, group_size)
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
        return cls(groups=_tie_layers(layers, tie_groups), options=options)

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
                    _quantize_module(name, module, weight, setting, done)
        return model

    def _setting(self, prefix: str, config: Mapping[str, Any]) -> QuantInfo:
        """The group's setting, with ``n_scales`` still to count per layer."""
        pick = {k: config.get(layer_param_name(prefix, k), v[0]) for k, v in self._options.items()}
        fmt, granularity = pick["format"], pick["granularity"]
        return QuantInfo(
            bits=_FLOAT_BITS.get(fmt, pick["bits"]),
            fmt=fmt,
            granularity=granularity,
            group_size=pick["group_size"] if granularity == "group" else None,
            act_bits=pick["act_bits"],
        )


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
def _quantize_module(
    name: str, module: nn.Module, weight: torch.Tensor, setting: QuantInfo, done: set[int]
) -> None:
    if getattr(module, QUANT_ATTR, None) is not None:
        raise ValueError(f"Layer {name!r} is already quantized; apply configs to the float model.")
    rows, size = _blocks(weight, setting)
    if id(weight) not in done:  # a weight shared by tied layers is quantized once
        done.add(id(weight))
        with torch.no_grad():
            weight.copy_(_fake_quantize(weight, setting))
    if setting.act_bits is not None:
        hook = ActivationQuantizer(setting.act_bits)
        module.register_forward_pre_hook(hook)
        # deepcopy keeps this attribute and the registered hook one object.
        setattr(module, ACT_QUANT_ATTR, hook)
    n_scales = rows * math.ceil(weight.numel() // rows / size)
    setattr(module, QUANT_ATTR, replace(setting, n_scales=n_scales))


def _blocks(weight: torch.Tensor, setting: QuantInfo) -> tuple[int, int]:
    """(rows, elements per scale along a row) of ``weight`` seen as [out, in * kernel]."""
    if setting.granularity == "tensor":
        return 1, weight.numel()
    return weight.shape[0], setting.group_size or weight[0].numel()


def _fake_quantize(weight: torch.Tensor, setting: QuantInfo) -> torch.Tensor:
    # Rows are split into blocks of ``size``, one scale each; a last partial block (say, after
    # channel pruning narrowed the input) gets a scale of its own.
    rows, size = _blocks(weight, setting)
    w = weight.detach().reshape(rows, -1).to(torch.promote_types(weight.dtype, torch.float32))
    full = w.shape[1] - w.shape[1] % size
    parts = [_quantize_rows(w[:, :full].reshape(-1, size), setting).reshape(rows, -1)]
    if full < w.shape[1]:
        parts.append(_quantize_rows(w[:, full:], setting))
    return torch.cat(parts, dim=1).reshape(weight.shape).to(weight.dtype)


def _quantize_rows(x: torch.Tensor, setting: QuantInfo) -> torch.Tensor:
    """Each row of ``x`` (one scale each) quantized and dequantized."""
    return _int_rows(x, setting.bits) if setting.fmt == "int" else _float_rows(x, setting.fmt)


def _int_rows(x: torch.Tensor, bits: int) -> torch.Tensor:
    # Symmetric (zero-point 0: pruned zeros stay zero) on the full range [-2^(b-1), 2^(b-1)-1],
    # so all 2^b codes are usable (4 levels at 2 bits). The negative end is one code longer; the
    # scale's sign (free: the float16 sign bit) points it at the side holding max|x|, which maps
    # exactly to -2^(b-1) (|scale| = max|x| / 2^(b-1)); the other side clips at 2^(b-1)-1. On
    # Gaussian weights this beats the restricted range +-(2^(b-1)-1) (3 levels at 2 bits) and
    # GPTQ's symmetric grid at every width from 2 to 8 bits.
    half = 2 ** (bits - 1)
    pos = x.amax(dim=1, keepdim=True)
    neg = -x.amin(dim=1, keepdim=True)
    sign = 1.0 - 2.0 * (neg < pos).to(x.dtype)
    scale = _nonzero(torch.maximum(pos, neg) / half) * sign
    return (x / scale).round().clamp(-half, half - 1) * scale


def _float_rows(x: torch.Tensor, fmt: str) -> torch.Tensor:
    fmax = _FLOAT_MAX[fmt]
    scale = _nonzero(x.abs().amax(dim=1, keepdim=True) / fmax)
    y = (x / scale).clamp(-fmax, fmax)
    y = _round_e2m1(y) if fmt == "fp4_e2m1" else y.to(_FP8_DTYPES[fmt]).to(x.dtype)
    return y * scale


def _round_e2m1(y: torch.Tensor) -> torch.Tensor:
    # Round to nearest FP4 E2M1 value (0, 0.5, 1, 1.5, 2, 3, 4, 6), ties to even mantissa, as a
    # hardware cast does: the spacing is 0.5 below 2 (subnormals included), 1 in [2, 4) and 2 in
    # [4, 6]; round-half-even of y / spacing picks the even mantissa on ties.
    mag = y.abs()
    _, exponent = torch.frexp(mag)  # mag = m * 2^exponent, m in [0.5, 1)
    spacing = torch.exp2((exponent - 2).to(y.dtype)).clamp_min(0.5)
    return torch.sign(y) * ((mag / spacing).round() * spacing).clamp_max(6.0)


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale != 0, scale, torch.ones_like(scale))  # all-zero rows stay zero


def _float_weight(module: nn.Module) -> torch.Tensor | None:
    weight = getattr(module, "weight", None)
    ok = isinstance(weight, torch.Tensor) and weight.is_floating_point() and weight.dim() > 0
    return weight if ok else None


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
