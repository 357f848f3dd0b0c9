"""A workspace: one copy of a model that Configs are assembled into, without copying it again.

``space.apply(model, config)`` deep-copies the model and quantizes each layer: fine once, slow
for every trial of a search on a language model. A :class:`Workspace` copies the model once
(onto its device) and assembles each Config in place:

* quantized layers point at the weight of their level, computed once per (layer, level) and
  kept (from the space's variant bank for calibrated methods): no copy, no re-quantization;
  under a bank with a memory limit (``VariantBank(max_memory_mb=...)``) the workspace keeps
  only the levels of the Config assembled last, and asks the bank for the others;
  layers sharing one weight (a tied embedding and LM head) all point at the same tensor;
* dropped blocks of an elastic :class:`~tradeoff.spaces.ArchitectureSpace` are swapped out of
  their ``ModuleList`` for a ``SkipBlock`` and back in when kept.

The assembled model equals ``space.apply(model, config)`` weight for weight, and records the
same ``QuantInfo`` on its layers (so cost functions read it alike). Spaces with other parts
(pruning, FFN width or heads, PEFT) are assembled by ``space.apply`` on a fresh copy of the
workspace's model (calibrated weights still come from the bank): correct, not fast.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._bank import tensor_digest
from tradeoff.spaces._model import find_module
from tradeoff.spaces._quant import QuantizationSpace, mark_quantized, quantize_weight
from tradeoff.spaces._space import SearchSpace


class Workspace:
    """A model copy that Configs of ``space`` are assembled into in place.

    Not thread-safe: the model :meth:`assemble` returns is the workspace's own and valid until
    the next call; give each worker thread its own workspace.

    Args:
        space: A ``QuantizationSpace``, or a merged space of model-aware parts.
        model: The float model the space was built from; copied once, not modified.
        device: Where the copy and the assembled weights live (default: the model's device).

    Raises:
        TypeError: ``space`` has no model-aware part, or ``model`` is not an ``nn.Module``.
    """

    def __init__(
        self, space: SearchSpace, model: nn.Module, *, device: torch.device | str | None = None
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Workspace: model must be a torch.nn.Module, got {type(model)}.")
        self.space = space
        self.model = copy.deepcopy(model)
        if device is not None:
            self.model.to(device)
        self._quant, self._arch, self._fast, self._prefixes = _parts(space)
        self._holders = _holders(self.model)
        self._dense: dict[str, torch.Tensor] = {  # layer -> its float weight in the copy
            name: module.weight  # type: ignore[misc]
            for layers in (self._quant.groups.values() if self._quant else ())
            for name in layers
            if isinstance(module := find_module(self.model, name), nn.Module)
        }
        self._variants: dict[tuple[int, Any], nn.Parameter] = {}
        self._digests: dict[int, str] = {}
        self._blocks: list[nn.Module] = []
        if self._arch is not None and self._arch._blocks is not None:
            stack = self.model.get_submodule(self._arch._blocks)
            assert isinstance(stack, nn.ModuleList)
            self._blocks = list(stack)

    @property
    def fast(self) -> bool:
        """Whether Configs are assembled in place (``False``: applied to a fresh copy)."""
        return self._fast

    @torch.no_grad()
    def assemble(self, config: Mapping[str, Any]) -> nn.Module:
        """The workspace's model with ``config`` applied (valid until the next call).

        Raises:
            ValueError: ``config`` is not a Config of the space.
        """
        if not self.space.contains(config):
            raise ValueError(
                f"Workspace.assemble: config is not in this space (expected keys "
                f"{sorted(self.space)}, got {sorted(config)})."
            )
        if not self._fast:
            return self.space.apply(self.model, config)  # type: ignore[no-any-return]
        quant_config, arch_config = _split(config, self._prefixes)
        if self._arch is not None:
            self._set_blocks(arch_config)
        assert self._quant is not None
        done: set[int] = set()
        for prefix, layers in self._quant.groups.items():
            setting = self._quant._setting(prefix, quant_config)
            for name in layers:
                module = find_module(self.model, name)
                if module is None:  # in a dropped block
                    continue
                dense = self._dense[name]
                variant = self._variant(name, dense, setting)
                if id(dense) not in done:
                    done.add(id(dense))
                    for holder, attr in self._holders.get(id(dense), ()):
                        holder._parameters[attr] = variant
                mark_quantized(module, variant, setting)
        return self.model

    def _set_blocks(self, arch_config: Mapping[str, Any]) -> None:
        from tradeoff.spaces._elastic import SkipBlock

        assert self._arch is not None and self._arch._blocks is not None
        blocks = self.model.get_submodule(self._arch._blocks)
        assert isinstance(blocks, nn.ModuleList)
        kept = self._arch._kept_blocks(arch_config, len(self._blocks))
        for i, block in enumerate(self._blocks):
            blocks[i] = block if i in kept else SkipBlock()

    def _variant(self, name: str, dense: torch.Tensor, setting: Any) -> nn.Parameter:
        assert self._quant is not None
        level = (setting.fmt, setting.bits, setting.granularity, setting.group_size)
        found = self._variants.get((id(dense), level))
        if found is None:
            quantizer = self._quant.quantizer
            if quantizer.uses_bank(setting):
                if id(dense) not in self._digests:
                    self._digests[id(dense)] = tensor_digest(dense)
                key = quantizer.key(name, self._digests[id(dense)], setting, False)
                value = quantizer.quantize_by_key(name, dense, setting, key)
            else:
                value = quantize_weight(dense, setting)
            found = nn.Parameter(value.to(dense.device, dense.dtype), requires_grad=False)
            if not (quantizer.uses_bank(setting) and quantizer.bank.max_memory_mb is not None):
                self._variants[id(dense), level] = found  # else the bank's limit decides
        return found


def _parts(space: SearchSpace) -> tuple[QuantizationSpace | None, Any, bool, dict[str, str]]:
    """(the quant part, the arch part, whether Configs can be assembled in place, and the
    namespace of each part in a merged space: ``{"quant": "q", "arch": "a"}``)."""
    from tradeoff.spaces._arch import ArchitectureSpace

    if isinstance(space, QuantizationSpace):
        return space, None, True, {"quant": ""}
    staged = {getattr(c, "stage", None): k for k, c in space.children.items()}
    staged.pop(None, None)
    if not staged:
        raise TypeError(
            "Workspace: the space has no model-aware part; build it from e.g. "
            "QuantizationSpace.for_model(model) or SearchSpace.merge(quant=..., arch=...)."
        )
    quant = space.children[staged["quant"]] if "quant" in staged else None
    arch = space.children[staged["arch"]] if "arch" in staged else None
    assert quant is None or isinstance(quant, QuantizationSpace)
    assert arch is None or isinstance(arch, ArchitectureSpace)
    drop_only = arch is None or (
        arch._blocks is not None and all(name.endswith(".keep") for name in arch)
    )
    fast = quant is not None and drop_only and set(staged) <= {"quant", "arch"}
    return quant, arch, fast, {stage: prefix for stage, prefix in staged.items()}  # type: ignore[misc]


def _split(
    config: Mapping[str, Any], prefixes: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the quant part's sub-Config, the arch part's)."""
    if prefixes.get("quant") == "":
        return dict(config), {}
    subs: dict[str, dict[str, Any]] = {"quant": {}, "arch": {}}
    for stage in subs:
        prefix = prefixes.get(stage)
        if prefix is not None:
            head = prefix + "."
            subs[stage] = {k[len(head) :]: v for k, v in config.items() if k.startswith(head)}
    return subs["quant"], subs["arch"]


def _holders(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """Parameter id -> every (module, attribute) holding it (a tied weight has several)."""
    found: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for attr, param in module._parameters.items():
            if param is not None:
                found.setdefault(id(param), []).append((module, attr))
    return found
