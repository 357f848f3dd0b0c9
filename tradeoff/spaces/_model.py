"""Model-aware search spaces: built from a torch model, they apply a Config to a copy of it.

A :class:`ModelSpace` names its parameters after the model's modules (``fc1.bits``,
``features.0.sparsity``) and implements ``_apply``. Spaces compose with
``SearchSpace.merge(arch=..., prune=..., quant=..., peft=...)``; the merged space applies its
parts in the order of :data:`STAGES`, whatever the keyword order:

1. ``arch``: architecture first, since it decides which layers exist at all;
2. ``prune``: then pruning, on full-precision weights (magnitudes are meaningful there, and a
   channel pruned away needs no bits);
3. ``quant``: then quantization of the weights that remain, so scales fit the surviving values;
4. ``peft``: adapters last, on top of the compressed base model, as QLoRA-style fine-tuning
   trains float adapters next to frozen compressed weights.

Every stage records what it did on the modules it changed (:class:`QuantInfo`,
:class:`PruneInfo` under :data:`QUANT_ATTR` / :data:`PRUNE_ATTR`), which the cost functions in
:mod:`tradeoff.objectives` read. A layer an earlier stage removed is skipped by later stages.
"""

from __future__ import annotations

import abc
import copy
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from tradeoff.spaces._space import SearchSpace

STAGES = ("arch", "prune", "quant", "peft")

QUANT_ATTR = "tradeoff_quant"
PRUNE_ATTR = "tradeoff_prune"

KEPT_INPUTS_ATTR = "_tradeoff_kept_inputs"
"""On a Linear (or a convolution) whose inputs channel pruning removed: the original input
indices (channels) it keeps, for a calibrated quantizer to slice the layer's Hessian to."""

DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class QuantInfo:
    """How a layer's weight was quantized (set as ``module.tradeoff_quant``).

    Attributes:
        bits: Bits per stored weight value.
        fmt: ``"int"`` (symmetric integer) or a float format such as ``"fp8_e4m3"``.
        granularity: ``"tensor"``, ``"channel"`` (per output channel) or ``"group"``.
        group_size: Input elements sharing a scale (``"group"`` only).
        n_scales: Number of float16 values stored beside the weights: the scales, and as many
            zero-points for an asymmetric grid.
        act_bits: Bits of the layer's input activations, or ``None`` if left in float.
        method: How the weight was rounded: ``"rtn"``, ``"gptq"`` or ``"hqq"``.
        symmetric: Zero-point 0 (``True``), or a zero-point per scale.
    """

    bits: int
    fmt: str = "int"
    granularity: str = "channel"
    group_size: int | None = None
    n_scales: int = 1
    act_bits: int | None = None
    method: str = "rtn"
    symmetric: bool = True


@dataclass(frozen=True)
class PruneInfo:
    """How a layer was pruned (set as ``module.tradeoff_prune``).

    Attributes:
        pattern: ``"unstructured"``, ``"n:m"`` or ``"channel"``.
        sparsity: Requested fraction of weights (or output channels) removed.
        n: Non-zeros kept per group (``"n:m"`` only).
        m: Group size (``"n:m"`` only).
        original_out: Output channels before channel pruning (``"channel"`` only).
    """

    pattern: str
    sparsity: float
    n: int | None = None
    m: int | None = None
    original_out: int | None = None


class ModelSpace(SearchSpace):
    """A search space tied to a model's layers, that can apply a Config to the model.

    Subclasses set :attr:`stage` (one of :data:`STAGES`) and implement :meth:`_apply`; they are
    usually built by a ``for_model(model, ...)`` class method that validates the model.
    """

    stage: ClassVar[str]

    @property
    def reshapes_layers(self) -> bool:
        """Whether applying a Config may change a later stage's layers (zero weights, drop input
        channels, narrow them): a calibrated quantizer then needs its Hessians for entries no
        build can list up front."""
        return False

    def merged_with(self, others: Sequence[SearchSpace]) -> None:
        """Told by :meth:`SearchSpace.merge` which spaces this one was merged with."""

    def apply(
        self, model: nn.Module, config: Mapping[str, Any], *, inplace: bool = False
    ) -> nn.Module:
        """A model with ``config`` applied; ``model`` itself is untouched unless ``inplace``.

        Raises:
            ValueError: ``config`` is not a Config of this space.
        """
        if not self.contains(config):
            raise ValueError(
                f"{type(self).__name__}.apply: config is not in this space "
                f"(expected keys {sorted(self)}, got {sorted(config)})."
            )
        target = model if inplace else copy.deepcopy(model)
        return self._apply(target, config)

    @abc.abstractmethod
    def _apply(self, model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
        """Apply ``config`` to ``model`` in place (it is already a copy) and return the result
        (the same model, or a wrapper such as a PEFT model)."""


def select_layers(
    model: nn.Module,
    *,
    types: Sequence[type[nn.Module]] = DEFAULT_LAYER_TYPES,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    what: str = "layers",
) -> dict[str, nn.Module]:
    """The model's modules of ``types`` whose names match ``include`` and not ``exclude``.

    Patterns are shell-style globs (``"encoder.*.attention.*"``) or regular expressions prefixed
    with ``re:`` (``"re:.*\\.(query|key)$"``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: nothing matches (the message lists the candidate layer names).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    kinds = tuple(types)
    candidates: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if name and isinstance(module, kinds):
            candidates[name] = module
    chosen = {
        name: module
        for name, module in candidates.items()
        if (include is None or _matches(name, include)) and not _matches(name, exclude or ())
    }
    if not chosen:
        kind_names = ", ".join(t.__name__ for t in kinds)
        raise ValueError(
            f"No {what} to search: the model has no {kind_names} modules matching "
            f"include={include!r}, exclude={exclude!r}. Candidates: {_preview(candidates)}."
        )
    return chosen


def find_block_stack(model: nn.Module) -> str | None:
    """The dotted name of the model's largest ``nn.ModuleList`` of same-class blocks (not
    Linears themselves) holding Linear layers: BERT's ``encoder.layer``, Llama's
    ``model.layers``. ``None`` when the model has no such list."""
    best, best_size = None, 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        first = module[0]
        if len({type(b) for b in module}) != 1 or isinstance(first, nn.Linear):
            continue
        if not any(isinstance(m, nn.Linear) for m in first.modules()):
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            best, best_size = str(name), size
    return best


def find_module(model: nn.Module, name: str) -> nn.Module | None:
    """The submodule called ``name``, or ``None`` if an earlier stage removed it."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule ``name`` (dotted path) with ``module``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def layer_param_name(layer: str, knob: str) -> str:
    """The parameter name of ``knob`` for ``layer``: ``features.0`` + ``bits`` ->
    ``features.0.bits``."""
    return f"{layer}.{knob}"


def usable_device(device: str | torch.device, *, setting: str, name: str, fix: str) -> torch.device:
    """``device`` as a ``torch.device`` torch knows and can use on this machine.

    Args:
        device: What the user gave.
        setting: How the user wrote it, for the message (``"--device cuda"``).
        name: The argument's name, for the message (``"--device"``).
        fix: What to do instead when CUDA is asked for but absent.

    Raises:
        ValueError: not a device torch knows, or CUDA that torch does not see (naming
            ``setting`` and the fix), before any work.
    """
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"{name} must be a torch device such as 'cpu' or 'cuda:0', got {device!r}."
        ) from None
    if where.type == "cuda" and not torch.cuda.is_available():
        build = "" if torch.version.cuda else ", a build without CUDA"
        raise ValueError(f"{setting}: torch {torch.__version__} sees no CUDA device{build}; {fix}.")
    return where


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _matches(name: str, patterns: str | Iterable[str]) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    for pattern in patterns:
        if pattern.startswith("re:"):
            if re.fullmatch(pattern[3:], name):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _preview(names: Iterable[str], limit: int = 12) -> str:
    items = list(names)
    shown = ", ".join(items[:limit])
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return f"[{shown}{more}]" if items else "(none)"


# Tied groups (QuantizationSpace, PruningSpace) -----------------------------------------------
def tie_patterns(tie: Any) -> list[tuple[str | None, list[str]]]:
    """``tie=`` -> ``(name or None, patterns)`` per group."""
    if isinstance(tie, Mapping):
        named = [(k, [v] if isinstance(v, str) else v) for k, v in tie.items()]
        if all(isinstance(k, str) and k for k, _ in named) and all(
            v and isinstance(v, Sequence) and _strs(v) for _, v in named
        ):
            return [(k, list(v)) for k, v in named]
        raise TypeError(
            "tie as a dict maps a group name to a pattern or a list of patterns, e.g. "
            f"tie={{'blocks.0': 'blocks.0.*'}}; got {tie!r}."
        )
    ok = isinstance(tie, Sequence) and not isinstance(tie, str)
    groups = [[g] if isinstance(g, str) else g for g in tie] if ok else []
    if not ok or not all(g and isinstance(g, Sequence) and _strs(g) for g in groups):
        raise TypeError(
            "tie takes a list of groups, each a pattern or a list of patterns, e.g. "
            f"tie=[('lm_head', 'embed_out'), 'blocks.0.attn.*'], or a dict naming them; "
            f"got {tie!r}."
        )
    return [(None, list(g)) for g in groups]


def _strs(items: Sequence[Any]) -> bool:
    return all(isinstance(p, str) for p in items)


def tie_members(
    layers: Mapping[str, Any], tie: list[list[str]], what: str = "quantize"
) -> list[list[str]]:
    """The layers of each tie group (patterns -> names, in model order); a clear error for a
    pattern that matches none of ``layers`` (the layers to ``what``) or a layer in two groups."""
    groups: list[list[str]] = []
    for i, patterns in enumerate(tie):
        for pattern in (p for p in patterns if not any(_matches(n, p) for n in layers)):
            raise ValueError(
                f"tie pattern {pattern!r} matches none of the layers to {what}; "
                f"candidates: {_preview(layers)}."
            )
        groups.append([name for name in layers if _matches(name, patterns)])
        for j, name in ((j, n) for j, g in enumerate(groups[:-1]) for n in g if n in groups[-1]):
            raise ValueError(f"Layer {name!r} is in tie groups {j} and {i}; merge them into one.")
    return groups


def check_group_names(names: list[str]) -> None:
    """``names``: the parameter prefix of every group and untied layer of a space; each must
    be used once."""
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(
            f"tie group names {clash} are used twice (two groups, or a group and a layer): "
            "give each group a name of its own."
        )
