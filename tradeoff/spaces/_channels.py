"""Channel groups as plain data, and the surgery that removes their channels or heads.

A :class:`StructuralGroup` (found by :mod:`tradeoff.spaces._structural` with torch-pruning's
``DependencyGraph``) names every module that changes with a set of coupled channels, the public
torch-pruning function pruning each and its indices per unit; :func:`prune_group` ranks the
units and replays those functions, as ``Group.prune()`` does, without tracing the model again.

A group that is a plain chain (one layer writing the channels, BatchNorm between, one layer
reading them, possibly through a flatten) is also a :class:`ChannelGroup`, the form the analytic
known costs of :mod:`tradeoff.objectives` tabulate without copying the model; they use
:func:`_strongest` and :func:`_kept_count`, so both paths keep the same channels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._model import KEPT_INPUTS_ATTR, find_module

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class ChannelGroup:
    """A layer whose output channels can be removed, and the modules that must shrink with it.

    Attributes:
        producer: The layer losing output channels.
        consumer: The layer reading them, losing the matching input channels/features.
        norms: BatchNorm layers in between, losing the matching features.
        features_per_channel: Consumer input features per producer channel (``H * W`` after a
            flatten, else 1).
    """

    producer: str
    consumer: str
    norms: tuple[str, ...] = ()
    features_per_channel: int = 1


def kept_units(units: int, sparsity: float, step: int = 1) -> int:
    """Units (channels, heads) kept when ``round(units * sparsity)`` go: at least one, rounded
    up to a multiple of ``step`` (capped at ``units``)."""
    kept = max(1, units - round(units * sparsity))
    return min(units, math.ceil(kept / step) * step)


def nm_step(per_unit: int, m: int) -> int:
    """The kept-unit multiple that keeps a consumer's inputs per output (``per_unit`` per kept
    unit) a multiple of ``m``, so it can still be n:m-pruned."""
    return m // math.gcd(per_unit, m)


def _kept_count(channels: int, sparsity: float, consumer: nn.Module, m: int | None) -> int:
    per_channel = _weight(consumer)[0].numel() // channels
    return kept_units(channels, sparsity, 1 if m is None else nm_step(per_channel, m))


def _strongest(weight: torch.Tensor, kept: int) -> torch.Tensor:
    """The ``kept`` rows of largest L2 norm (ties: lower index first), in ascending order."""
    norms = weight.detach().flatten(1).float().norm(dim=1)
    order = torch.argsort(norms, descending=True, stable=True)
    return order[:kept].sort().values


def _expand(keep: torch.Tensor, per_channel: int) -> torch.Tensor:
    offsets = torch.arange(per_channel, device=keep.device)
    return (keep[:, None] * per_channel + offsets[None, :]).flatten()


def _size_problem(
    group: ChannelGroup, channels: int, consumer: nn.Module, norms: Sequence[nn.Module]
) -> str:
    for name, norm in zip(group.norms, norms):
        if getattr(norm, "num_features", None) != channels:
            features = getattr(norm, "num_features", "?")
            return f"{name!r} normalizes {features} features, not {channels} channels"
    expected = channels * group.features_per_channel
    actual = int(_weight(consumer).shape[1])
    if actual == expected:
        return ""
    per = group.features_per_channel
    return f"{group.consumer!r} takes {actual} inputs, not {channels} channels x {per}"


def _weight(module: nn.Module) -> torch.Tensor:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor.")
    return weight


@dataclass(frozen=True)
class Member:
    """One module a :class:`StructuralGroup` changes.

    Attributes:
        layer: Its name in the model.
        fn: The ``torch_pruning`` function pruning it (``"prune_linear_out_channels"``, ...).
        size: Its size along that dimension when the group was found.
        idxs: Per unit of the group, the indices it loses with that unit.
        role: ``"write"`` (a Linear, Conv or Embedding producing the channels), ``"read"`` (a
            Linear or Conv taking them as inputs) or ``"norm"`` (BatchNorm, LayerNorm or a
            depthwise convolution, channel by channel).
    """

    layer: str
    fn: str
    size: int
    idxs: tuple[tuple[int, ...], ...]
    role: str


@dataclass(frozen=True)
class StructuralGroup:
    """Channels (or attention heads) that must be removed together, found by torch-pruning.

    Attributes:
        layers: The searched layers writing them, in model order; the first names the group.
        members: Every module the group changes.
        units: How many units it has: channels, or heads.
        head_dim: Channels per head (0: the units are channels).
        attention: The module whose head count changes (heads only).
        chain: The group as a ``producer -> consumer`` chain, when it is one (what the analytic
            known costs tabulate), else ``None``.
    """

    layers: tuple[str, ...]
    members: tuple[Member, ...]
    units: int
    head_dim: int = 0
    attention: str = ""
    chain: ChannelGroup | None = None


def prune_group(
    model: nn.Module, group: StructuralGroup, sparsity: float, *, nm: Mapping[str, int]
) -> dict[str, int] | None:
    """Remove the ``round(units * sparsity)`` units of lowest L2 norm of the weights writing them
    (a channel's rows in every layer writing it; a head's query, key and value rows), in place.

    At least one unit is kept; ``nm`` (reading layer -> ``m``, for those n:m-pruned next) rounds
    the count kept up so their inputs per output stay a multiple of ``m``.

    Returns:
        Each writing layer's original output size, or ``None`` if nothing was removed (nothing
        to remove, or an earlier stage removed a layer of the group).

    Raises:
        ValueError: a layer's size no longer matches (an earlier stage resized it).
    """
    modules = {m.layer: find_module(model, m.layer) for m in group.members}
    found = {k: v for k, v in modules.items() if v is not None}
    if len(found) != len(modules):
        return None
    step = 1
    for m in group.members:
        module = found[m.layer]
        size = dim_size(module, m.fn)
        if size != m.size:
            raise ValueError(
                f"Cannot channel-prune {group.layers[0]!r}: {m.layer!r} now has {size} "
                f"channels along the pruned dimension, not {m.size}. An earlier stage resized "
                "these layers; build the PruningSpace on the model as the earlier stages leave it."
            )
        if m.role == "read" and m.layer in nm:
            w = _weight(module)
            step = math.lcm(
                step, nm_step(len(m.idxs[0]) * (w[0].numel() // w.shape[1]), nm[m.layer])
            )
    kept = kept_units(group.units, sparsity, step)
    if kept == group.units:
        return None
    keep = set(_strongest(_unit_rows(group, found), kept).tolist())
    remove_units(model, group, [u for u in range(group.units) if u not in keep])
    return {m.layer: m.size for m in group.members if m.role == "write"}


def remove_units(model: nn.Module, group: StructuralGroup, removed: Sequence[int]) -> None:
    """Remove the units ``removed`` of ``group`` from ``model``, with torch-pruning's functions.

    Parameters keep their ``requires_grad``; head counts and ``intermediate_size`` attributes
    follow the new sizes.
    """
    tp = torch_pruning()
    for m in group.members:
        module = model.get_submodule(m.layer)
        grads = {n: p.requires_grad for n, p in module.named_parameters(recurse=False)}
        lost = [i for u in removed for i in m.idxs[u]]
        if m.role == "read" and _dense_inputs(module):
            _record_kept_inputs(module, m.size, lost)
        getattr(tp, m.fn)(module, lost)
        for n, p in module.named_parameters(recurse=False):
            p.requires_grad_(grads.get(n, p.requires_grad))
    writer = next(m for m in group.members if m.role == "write")
    now = dim_size(model.get_submodule(writer.layer), writer.fn)
    if group.head_dim:
        old, new = writer.size // group.head_dim, now // group.head_dim
        attention = model.get_submodule(group.attention)
        for attr in ("num_attention_heads", "num_heads", "num_key_value_heads"):
            _replace(attention, attr, old, new)
        _replace(attention, "all_head_size", writer.size, now)
    else:
        for name in group.layers:
            _replace(
                model.get_submodule(name.rpartition(".")[0]), "intermediate_size", writer.size, now
            )


def _dense_inputs(module: nn.Module) -> bool:
    """A Linear, or a convolution without groups: its Hessian's inputs are its input channels
    (times the kernel's positions, for a convolution)."""
    return isinstance(module, nn.Linear) or (
        isinstance(module, nn.modules.conv._ConvNd) and module.groups == 1
    )


def _record_kept_inputs(module: nn.Module, size: int, lost: Sequence[int]) -> None:
    gone = set(lost)
    kept = torch.tensor([i for i in range(size) if i not in gone], dtype=torch.long)
    before = getattr(module, KEPT_INPUTS_ATTR, None)
    setattr(module, KEPT_INPUTS_ATTR, kept if before is None else before[kept])


def sync_config(model: nn.Module, groups: Iterable[StructuralGroup]) -> None:
    """Set the HF ``model.config``'s ``intermediate_size`` (``num_attention_heads``) to the new
    size when one group per block (``num_hidden_layers``) had it and all now agree. Heads change
    only in a config with ``head_dim`` (BERT's derives its head size from
    ``hidden_size / num_attention_heads``, which pruning heads would contradict)."""
    config: Any = getattr(model, "config", None)
    blocks = getattr(config, "num_hidden_layers", None)
    if not isinstance(blocks, int):
        return
    groups = list(groups)
    for attr, heads in (("intermediate_size", False), ("num_attention_heads", True)):
        old = getattr(config, attr, None)
        if heads and not isinstance(getattr(config, "head_dim", None), int):
            continue
        mine = [g for g in groups if bool(g.head_dim) == heads and g.units == old]
        sizes = {_units_now(model, g) for g in mine}
        if len(mine) == blocks and len(sizes) == 1 and None not in sizes:
            new = sizes.pop()
            setattr(config, attr, new)
            if heads and getattr(config, "num_key_value_heads", None) == old:
                config.num_key_value_heads = new


# Helpers -----------------------------------------------------------------------------------------
def dim_size(module: nn.Module, fn: str) -> int:
    """``module``'s size along the dimension the torch-pruning function ``fn`` prunes."""
    out = "_out_" in fn
    if isinstance(module, nn.Linear):
        return int(module.out_features if out else module.in_features)
    if isinstance(module, _CONV):
        return int(module.out_channels if out else module.in_channels)
    if isinstance(module, nn.Embedding):
        return int(module.embedding_dim)
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[-1])
    return int(getattr(module, "num_features", 0))


def _unit_rows(group: StructuralGroup, modules: Mapping[str, nn.Module]) -> torch.Tensor:
    """Per unit, the weights writing it, as one row each: ``(units, -1)``, float32."""
    rows = []
    for m in group.members:
        if m.role == "write":
            w = _weight(modules[m.layer]).detach()
            w = w.t() if m.fn == "prune_embedding_out_channels" else w
            index = torch.tensor([i for u in m.idxs for i in u], device=w.device)
            rows.append(w.index_select(0, index).float().reshape(group.units, -1))
    return torch.cat(rows, dim=1)


def _units_now(model: nn.Module, group: StructuralGroup) -> int | None:
    writer = next(m for m in group.members if m.role == "write")
    module = find_module(model, writer.layer)
    if module is None:
        return None
    return dim_size(module, writer.fn) // (group.head_dim or 1)


def _replace(module: nn.Module, attr: str, old: int, new: int) -> None:
    value = getattr(module, attr, None)
    if isinstance(value, int) and not isinstance(value, bool) and value == old:
        setattr(module, attr, new)


def torch_pruning() -> Any:
    """The ``torch_pruning`` package, or an error saying how to install it."""
    try:
        import torch_pruning
    except ImportError as e:  # pragma: no cover - installed with the torch extra
        raise ImportError(
            "Channel pruning needs torch-pruning: pip install 'tradeoff[torch]' (or "
            "torch-pruning), or use pattern='unstructured' or 'n:m'."
        ) from e
    return torch_pruning
