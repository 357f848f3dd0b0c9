"""PruningSpace: per-layer sparsity (and optionally pattern) of a model's weights.

Parameters, for each searched layer (``fc1``, ``features.0``, ...):

- ``<layer>.sparsity``: :class:`Ordinal` of sparsity levels in ``[0, 1)``; 0.0 leaves the
  layer untouched.
- ``<layer>.pattern``: :class:`Choice` of patterns, only when several are searched
  (``pattern=("unstructured", "channel")``); each layer lists the patterns it can take.

A tied group (``tie=``) shares one sparsity (and pattern), named after its first layer or the
name it is given: ``tie={"blocks.3": "blocks.3.*"}`` gives ``blocks.3.sparsity``.

Patterns:

- ``"unstructured"``: zero the ``round(numel * sparsity)`` weights of smallest magnitude.
- ``"n:m"``: in every group of ``m`` consecutive weights along the input dimension (for a
  convolution, ``in_channels * kh * kw`` flattened), keep the ``n`` largest. Its sparsity is
  fixed at ``1 - n/m``, so ``sparsity`` acts as an on/off switch: with ``pattern="n:m"`` the
  levels are ``[0.0, 1 - n/m]`` (dense or n:m, whatever ``sparsity`` says); when ``"n:m"`` is
  one of several searched patterns, any level above 0.0 means n:m.
- ``"channel"``: remove the ``round(C * sparsity)`` output channels (keeping at least one)
  with every module coupled to them, as torch-pruning's ``DependencyGraph`` finds them: the
  inputs of the layers reading them, BatchNorm/LayerNorm between, and across a residual add
  every other layer writing the same channels, so the model really shrinks and its outputs keep
  their shapes. Channels are ranked by magnitude: the L2 norm of the weights writing them (a
  channel's rows in every layer writing it). The query, key and value projections of an
  attention module lose whole heads (``sparsity`` is then the fraction of heads), the module's
  head count follows, and an HF config's ``intermediate_size`` / ``num_attention_heads``
  follow where every block agrees (see :mod:`tradeoff.spaces._structural` for which layers
  qualify). Layers writing the same channels (a residual stream, one attention's heads) share
  one parameter, named after the first. Channel pruning runs before the weight patterns, so
  their sparsity is exact on the final shapes.

Each pruned module gets a :class:`PruneInfo` under :data:`PRUNE_ATTR`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils import prune

from tradeoff.spaces._channels import ChannelGroup, StructuralGroup, prune_group, sync_config
from tradeoff.spaces._model import (
    DEFAULT_LAYER_TYPES,
    PRUNE_ATTR,
    ModelSpace,
    PruneInfo,
    check_group_names,
    find_module,
    layer_param_name,
    select_layers,
    tie_members,
    tie_patterns,
)
from tradeoff.spaces._params import Choice, Ordinal, Parameter
from tradeoff.spaces._structural import find_groups

PATTERNS = ("unstructured", "n:m", "channel")


@dataclass(frozen=True)
class LayerPlan:
    """What one layer can be pruned with.

    Attributes:
        patterns: The patterns searched for this layer, a subset of :data:`PATTERNS`.
        structure: The modules channel pruning changes with it (``"channel"`` only).
    """

    patterns: tuple[str, ...]
    structure: StructuralGroup | None = None

    @property
    def group(self) -> ChannelGroup | None:
        """The channel group as a ``producer -> consumer`` chain, when it is one."""
        return self.structure.chain if self.structure is not None else None


class PruningSpace(ModelSpace):
    """Per-layer pruning sparsity (and pattern) of a model; build it with :meth:`for_model`.

    Args:
        plans: Layer name -> what it can be pruned with. Must not be empty.
        sparsity: Sparsity levels, each in ``[0, 1)``.
        n_m: ``(n, m)`` of the ``"n:m"`` pattern.
        search_pattern: Add a ``<layer>.pattern`` parameter to every layer.
        ties: Layer -> the parameter prefix it shares with its tied group (layers not listed
            have their own parameters).
    """

    stage: ClassVar[str] = "prune"
    reshapes_layers = True  # zeros, or fewer input channels, in the layers after it

    def __init__(
        self,
        plans: Mapping[str, LayerPlan],
        *,
        sparsity: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
        n_m: tuple[int, int] = (2, 4),
        search_pattern: bool = False,
        ties: Mapping[str, str] | None = None,
    ) -> None:
        self.levels = _check_sparsity(sparsity)
        self.n, self.m = _check_n_m(n_m)
        self.plans = dict(plans)
        self.ties = {layer: prefix for layer, prefix in (ties or {}).items() if layer in plans}
        params: dict[str, Parameter] = {}
        for layer, plan in self.plans.items():
            params.update(self._layer_params(self.prefix(layer), plan, search_pattern))
        super().__init__(params)

    def prefix(self, layer: str) -> str:
        """The parameter prefix of ``layer``: its tied group's name, else its own."""
        return self.ties.get(layer, layer)

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        sparsity: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
        *,
        pattern: str | Sequence[str] = "unstructured",
        n_m: tuple[int, int] = (2, 4),
        include: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        types: Sequence[type[nn.Module]] = DEFAULT_LAYER_TYPES,
        sample_input: Any = None,
        tie: Sequence[str | Sequence[str]] | Mapping[str, str | Sequence[str]] = (),
        device: torch.device | str | None = None,
    ) -> PruningSpace:
        """The pruning space of ``model``'s layers of ``types`` matching ``include``/``exclude``.

        A layer keeps the requested patterns it can take. One that can take none is an error
        if ``include`` named it, or if ``"n:m"`` does not fit it (exclude it or change ``m``);
        otherwise (a layer that cannot be channel-pruned, such as the output layer, or one
        whose channels another layer outside the search also writes) it is left out of the
        space.

        Args:
            model: The model; not modified.
            sparsity: Sparsity levels, each in ``[0, 1)`` (ignored when only ``"n:m"``).
            pattern: ``"unstructured"``, ``"n:m"``, ``"channel"``, or a tuple to search.
            n_m: ``(n, m)``: keep ``n`` of every ``m`` weights, ``0 < n < m``.
            include: Layer name patterns to search (globs, or ``re:`` regexes).
            exclude: Layer name patterns to leave out.
            types: Module types to search.
            sample_input: One batch of model input for channel pruning, which traces the
                model once on it: a tensor, a tuple of positional inputs or a dict of keyword
                inputs (``{"input_ids": ...}``). Without it, only a model running on a
                ``(batch, in_features)`` input of one of its Linear layers can be traced.
            tie: Groups of layers sharing one sparsity (and pattern), as in
                ``QuantizationSpace.for_model``: a list of patterns or lists of patterns
                (named after their first layer), or a dict naming them,
                ``tie={"blocks.3": "blocks.3.*"}``. A group's layers must take the same
                patterns. Layers writing the same channels are tied for channel pruning.
            device: Where channel pruning traces its copy of the model (default: the model's
                device).

        Raises:
            TypeError: an argument has the wrong type.
            ValueError: no layer matches, a sparsity is outside ``[0, 1)``, the pattern or
                ``n_m`` is invalid, or a layer cannot take the requested pattern.
        """
        patterns = _check_patterns(pattern)
        levels, (n, m) = _check_sparsity(sparsity), _check_n_m(n_m)
        layers = select_layers(
            model, types=types, include=include, exclude=exclude, what="prunable layers"
        )
        weights = {name: _weight(name, module) for name, module in layers.items()}
        nm_why = {
            name: _nm_problem(w, m) if "n:m" in patterns else "" for name, w in weights.items()
        }
        groups: dict[str, StructuralGroup] = {}
        channel_why: dict[str, str] = {}
        if "channel" in patterns:
            groups, channel_why = find_groups(model, layers, sample_input, device)
        plans = _plans(patterns, layers, nm_why, groups, channel_why, explicit=include is not None)
        return cls(
            plans,
            sparsity=levels,
            n_m=(n, m),
            search_pattern=not isinstance(pattern, str),
            ties=_ties(plans, tie),
        )

    def _layer_params(
        self, layer: str, plan: LayerPlan, search_pattern: bool
    ) -> dict[str, Parameter]:
        if plan.patterns == ("n:m",):
            levels: Sequence[float] = (0.0, 1 - self.n / self.m)
        else:
            levels = self.levels
        params: dict[str, Parameter] = {layer_param_name(layer, "sparsity"): Ordinal(levels)}
        if search_pattern:
            params[layer_param_name(layer, "pattern")] = Choice(plan.patterns)
        return params

    def _choice(self, config: Mapping[str, Any], layer: str) -> tuple[str, float]:
        plan, prefix = self.plans[layer], self.prefix(layer)
        pattern = config.get(layer_param_name(prefix, "pattern"), plan.patterns[0])
        return str(pattern), float(config[layer_param_name(prefix, "sparsity")])

    def _apply(self, model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
        chosen = {layer: self._choice(config, layer) for layer in self.plans}
        # Structure first: weight patterns then see the final shapes.
        for layer, (pattern, s) in chosen.items():
            if pattern == "channel" and s > 0:
                self._prune_channels(model, layer, s, chosen)
        structures = {id(p.structure): p.structure for p in self.plans.values() if p.structure}
        sync_config(model, structures.values())
        for layer, (pattern, s) in chosen.items():
            module = find_module(model, layer)
            if module is None or s == 0 or pattern == "channel":
                continue
            if pattern == "n:m":
                _prune_n_m(module, layer, self.n, self.m)
            else:
                _prune_unstructured(module, layer, s)
        return model

    def _prune_channels(
        self, model: nn.Module, layer: str, s: float, chosen: Mapping[str, tuple[str, float]]
    ) -> None:
        group = self.plans[layer].structure
        if group is None or layer != group.layers[0]:  # tied layers go with their group's first
            return
        nm = {
            m.layer: self.m
            for m in group.members
            if m.role == "read" and chosen.get(m.layer, ("", 0.0))[0] == "n:m"
            and chosen[m.layer][1] > 0
        }  # fmt: skip
        for name, original in (prune_group(model, group, s, nm=nm) or {}).items():
            info = PruneInfo("channel", s, original_out=original)
            setattr(model.get_submodule(name), PRUNE_ATTR, info)


def _ties(plans: Mapping[str, LayerPlan], tie: Any) -> dict[str, str]:
    """``tie=`` and the layers writing the same channels -> layer -> its group's parameter
    prefix (tied layers only)."""
    named = tie_patterns(tie)
    members_of = tie_members(plans, [patterns for _, patterns in named], what="prune")
    groups = _with_coupled(
        plans,
        [(name or members[0], list(members)) for (name, _), members in zip(named, members_of)],
    )
    ties: dict[str, str] = {}
    for name, members in groups:
        kinds = {plans[m].patterns for m in members}
        if len(kinds) > 1:
            raise ValueError(
                f"Tied layers {members} take different pruning patterns "
                f"({sorted(kinds)}); tie layers that take the same ones."
            )
        ties.update({m: name for m in members})
    check_group_names(
        [name for name, _ in groups] + [layer for layer in plans if layer not in ties]
    )
    return ties


def _with_coupled(
    plans: Mapping[str, LayerPlan], groups: list[tuple[str, list[str]]]
) -> list[tuple[str, list[str]]]:
    """``groups`` with the layers of each channel group joined to the tie group holding one of
    them, or tied under the first one's name."""
    structures = {id(p.structure): p.structure for p in plans.values() if p.structure}
    for s in (s for s in structures.values() if len(s.layers) > 1):
        hits = [i for i, (_, members) in enumerate(groups) if set(members) & set(s.layers)]
        if len(hits) > 1:
            raise ValueError(
                f"Layers {list(s.layers)} write the same channels (a residual add or one "
                "attention's heads), so they share one sparsity, but tie= puts them in "
                "different groups; tie them together."
            )
        if hits:
            members = groups[hits[0]][1]
            members.extend(layer for layer in s.layers if layer not in members)
        else:
            groups.append((s.layers[0], list(s.layers)))
    return groups


# Weight patterns ---------------------------------------------------------------------------
def _prune_unstructured(module: nn.Module, layer: str, sparsity: float) -> None:
    """Zero exactly ``round(numel * sparsity)`` weights of smallest magnitude, permanently.

    Pruning counts weights, not a magnitude threshold, so ties and weights that are already
    zero do not change the count (zeros go first); a layer already sparser stays as it is.
    """
    weight = _weight(layer, module)
    amount = round(weight.numel() * sparsity)
    if amount == 0:
        return
    # A contiguous copy of the scores: prune flattens them with view(), which channels_last
    # weights do not support.
    scores = weight.detach().contiguous()
    prune.l1_unstructured(module, "weight", amount=amount, importance_scores=scores)  # type: ignore[no-untyped-call]
    prune.remove(module, "weight")  # type: ignore[no-untyped-call]
    setattr(module, PRUNE_ATTR, PruneInfo("unstructured", sparsity))


def _prune_n_m(module: nn.Module, layer: str, n: int, m: int) -> None:
    """Keep the ``n`` largest-magnitude weights of every ``m`` consecutive inputs."""
    weight = _weight(layer, module)
    problem = _nm_problem(weight, m)
    if problem:
        raise ValueError(f"Cannot n:m-prune {layer!r}: {problem}.")
    groups = weight.detach().reshape(weight.shape[0], -1, m)
    top = groups.abs().topk(n, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True)
    with torch.no_grad():
        weight.mul_(mask.reshape(weight.shape))
    setattr(module, PRUNE_ATTR, PruneInfo("n:m", 1 - n / m, n=n, m=m))


def _nm_problem(weight: torch.Tensor, m: int) -> str:
    per_output = math.prod(weight.shape[1:])
    if per_output % m == 0:
        return ""
    dims = " * ".join(str(d) for d in weight.shape[1:])
    return (
        f"its {per_output} input weights per output ({dims}) are not divisible by m={m}; "
        f"choose an m that divides {per_output}"
    )


# Validation --------------------------------------------------------------------------------
def _plans(
    patterns: tuple[str, ...],
    layers: Mapping[str, nn.Module],
    nm_why: Mapping[str, str],
    groups: Mapping[str, StructuralGroup],
    channel_why: Mapping[str, str],
    *,
    explicit: bool,
) -> dict[str, LayerPlan]:
    plans: dict[str, LayerPlan] = {}
    refused: dict[str, dict[str, str]] = {}
    for name in layers:
        why = {"n:m": nm_why.get(name, ""), "channel": channel_why.get(name, "")}
        ok = tuple(p for p in patterns if not why.get(p))
        if ok:
            plans[name] = LayerPlan(ok, groups.get(name) if "channel" in ok else None)
        else:
            refused[name] = {p: why[p] for p in patterns}
    fatal = {k: v for k, v in refused.items() if explicit or v.get("n:m")}
    if fatal or not plans:
        raise _refusal(fatal or refused, patterns)
    return plans


def _refusal(refused: Mapping[str, Mapping[str, str]], patterns: tuple[str, ...]) -> ValueError:
    details = "; ".join(
        f"{layer!r} ({', '.join(f'{p}: {r}' for p, r in why.items())})"
        for layer, why in refused.items()
    )
    names = list(refused)
    return ValueError(
        f"Cannot prune these layers with pattern {_show(patterns)}: {details}. Exclude them "
        f"(exclude={names!r}) or use a pattern they can take."
    )


def _check_patterns(pattern: str | Sequence[str]) -> tuple[str, ...]:
    patterns = (pattern,) if isinstance(pattern, str) else pattern
    if not isinstance(patterns, Sequence) or not patterns:
        raise TypeError(
            f"pattern must be one of {list(PATTERNS)} or a non-empty tuple of them, "
            f"got {pattern!r}."
        )
    unknown = [p for p in patterns if p not in PATTERNS]
    if unknown:
        raise ValueError(
            f"Unknown pruning pattern {unknown[0]!r}: use one of {list(PATTERNS)}, or a tuple "
            "of them to search per layer."
        )
    if len(set(patterns)) != len(patterns):
        raise ValueError(f"pattern lists a pattern twice: {list(patterns)}.")
    return tuple(patterns)


def _check_sparsity(sparsity: Sequence[float]) -> tuple[float, ...]:
    if isinstance(sparsity, (str, bytes)) or not isinstance(sparsity, Sequence):
        raise TypeError(f"sparsity takes a list of levels such as (0.0, 0.5), got {sparsity!r}.")
    for s in sparsity:
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            raise TypeError(f"sparsity levels must be numbers, got {s!r}.")
        if not 0.0 <= s < 1.0:
            raise ValueError(
                f"sparsity {s!r} is outside [0, 1): it is the fraction of weights removed, and "
                "at least one must stay. Use levels such as (0.0, 0.5, 0.9)."
            )
    levels = tuple(float(s) for s in sparsity)
    if len(set(levels)) < 2 or len(set(levels)) != len(levels):
        raise ValueError(
            f"sparsity needs at least two distinct levels, got {list(sparsity)!r}; "
            "e.g. (0.0, 0.5) to search pruning a layer by half or not."
        )
    return levels


def _check_n_m(n_m: tuple[int, int]) -> tuple[int, int]:
    valid = isinstance(n_m, (tuple, list)) and len(n_m) == 2
    if not valid or not all(isinstance(v, int) and not isinstance(v, bool) for v in n_m):
        raise TypeError(f"n_m must be a pair of integers (n, m) such as (2, 4), got {n_m!r}.")
    n, m = n_m
    if not 0 < n < m:
        raise ValueError(
            f"n_m={n_m!r} is invalid: n:m keeps n of every m weights, so it needs 0 < n < m, "
            "e.g. (2, 4)."
        )
    return n, m


def _weight(layer: str, module: nn.Module) -> torch.Tensor:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise TypeError(
            f"Layer {layer!r} ({type(module).__name__}) has no 2-D or larger weight to prune; "
            "leave it out with exclude= or types=."
        )
    return weight


def _show(patterns: tuple[str, ...]) -> str:
    return repr(patterns[0]) if len(patterns) == 1 else repr(patterns)
