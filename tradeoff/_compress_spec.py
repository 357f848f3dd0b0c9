"""What :func:`~tradeoff.compress` builds from its spec: the search space (arch -> prune ->
quant), the known-cost objectives and the budget constraints, each checked with an error that
names the argument."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from tradeoff._compress_eval import COSTS, Adapters, without_adapters
from tradeoff.objectives import Constraint, Objective
from tradeoff.objectives._costs import bitops, latency_ms, model_cost, trainable_parameters
from tradeoff.objectives._latency import BlockLatency
from tradeoff.objectives._quality import KLToDense, Quality
from tradeoff.spaces import SearchSpace
from tradeoff.spaces._arch import ArchitectureSpace
from tradeoff.spaces._model import find_block_stack, select_layers
from tradeoff.spaces._prune import PruningSpace
from tradeoff.spaces._quant import QuantizationSpace

logger = logging.getLogger("tradeoff")

QUANTIZE_KEYS = tuple(
    name
    for name, p in inspect.signature(QuantizationSpace.for_model).parameters.items()
    if p.kind is p.KEYWORD_ONLY or name == "bits"
    if name not in ("calibration", "device")
)
"""Keys of ``quantize=``: the arguments of :meth:`QuantizationSpace.for_model`."""

PRUNE_KEYS = tuple(
    name
    for name, p in inspect.signature(PruningSpace.for_model).parameters.items()
    if p.kind is p.KEYWORD_ONLY or name == "sparsity"
    if name != "device"
)
"""Keys of ``prune=``: the arguments of :meth:`PruningSpace.for_model`."""


# Costs and budget ---------------------------------------------------------------------------------
def check_costs(cost: Any) -> tuple[str, ...]:
    names = (cost,) if isinstance(cost, str) else cost
    ok = isinstance(names, Sequence) and len(names) > 0 and all(isinstance(n, str) for n in names)
    unknown = [n for n in names if n not in COSTS] if ok else []
    if not ok or unknown or len(set(names)) != len(names):
        raise ValueError(f"cost must be one or more distinct of {list(COSTS)}, got {cost!r}.")
    return tuple(names)


def budget_constraints(budget: Any, costs: Sequence[str], quality: Quality) -> list[Constraint]:
    if budget is None:
        return []
    if not isinstance(budget, Mapping):
        raise TypeError(f"budget must be a dict such as {{'size_mb': 88.4}}, got {budget!r}.")
    out = []
    for name, bound in budget.items():
        if name == quality.name:
            out.append(Constraint(name, "<=" if quality.direction == "minimize" else ">=", bound))
        elif name in costs:
            out.append(Constraint(name, "<=", bound))
        else:
            raise ValueError(
                f"budget has {name!r}, which is neither a cost objective ({list(costs)}; add it "
                f"with cost=) nor the quality ({quality.name!r})."
            )
    return out


def check_sample(costs: Sequence[str], sample: Any) -> None:
    needs = [c for c in costs if COSTS[c][0] is bitops]
    if needs and sample is None:
        raise ValueError(
            f"cost {needs[0]!r} runs the model once: give sample_input= (one input); the "
            "quality has no example of its own."
        )


class _Scaled:
    """A known cost in other units (``fn(config) * scale``), keeping ``fn.analytic``."""

    def __init__(self, fn: Callable[[Mapping[str, Any]], float], scale: float) -> None:
        self.fn, self.scale = fn, scale
        self.analytic = bool(getattr(fn, "analytic", True))

    def __call__(self, config: Mapping[str, Any]) -> float:
        return float(self.fn(config)) * self.scale


def check_reference(reference: Any, names: Sequence[str]) -> dict[str, float]:
    if reference is None:
        return {}
    if not isinstance(reference, Mapping) or set(reference) != set(names):
        raise ValueError(
            f"reference must give one value for each objective, {list(names)}, got {reference!r}."
        )
    return {name: float(value) for name, value in reference.items()}


def cost_objective(
    name: str, space: SearchSpace, model: nn.Module, sample: Any, reference: float | None,
    adapters: Adapters | None,
) -> Objective:  # fmt: skip
    metric, scale = COSTS[name]
    if metric is latency_ms:
        return Objective(name, fn=BlockLatency(space, model, sample), reference=reference)
    if metric is trainable_parameters:
        if adapters is None:
            raise ValueError(f"cost {name!r} counts the adapters' parameters: give peft=.")
        return Objective(name, fn=_Scaled(adapters.trainable(model), scale), reference=reference)
    fn = model_cost(space, model, metric, sample_input=sample if metric is bitops else None)
    return Objective(name, fn=_Scaled(without_adapters(fn), scale), reference=reference)


# The spaces ---------------------------------------------------------------------------------------
class Spec(NamedTuple):
    """What :func:`compress` was asked to search, as given."""

    quantize: Any
    prune: Any
    drop_blocks: bool | str
    calibration: Any
    sample_input: Any
    ffn: Any = None


def build_space(
    model: nn.Module, spec: Spec, quality: Quality, device: str | torch.device | None
) -> SearchSpace:
    """The parts in the order they apply: arch, prune, quant."""
    parts: dict[str, SearchSpace] = {}
    if spec.drop_blocks or spec.ffn is not None:
        blocks = spec.drop_blocks if isinstance(spec.drop_blocks, str) else None
        what, ratios = "drop_blocks" if spec.drop_blocks else "ffn", _ratios(spec.ffn)
        try:
            parts["arch"] = ArchitectureSpace.elastic(
                model, drop_blocks=bool(spec.drop_blocks), ffn_ratios=ratios,
                blocks=blocks,
            )  # fmt: skip
        except (TypeError, ValueError) as error:
            raise ValueError(f"{what}: {error} (the blocks: drop_blocks='<name>')") from None
    if spec.prune is not None:
        prune = _checked_spec("prune", spec.prune, PRUNE_KEYS, model)
        if spec.sample_input is not None:
            prune.setdefault("sample_input", spec.sample_input)
        parts["prune"] = PruningSpace.for_model(model, device=device, **prune)
    if spec.quantize is not None:
        parts["quant"] = _quant_space(model, spec, quality, device)
    if not parts:
        raise ValueError(
            "Nothing to compress: give quantize={'bits': (4, 8)}, prune={'sparsity': "
            "(0, 0.5)}, ffn=(0.5, 1.0) and/or drop_blocks=True."
        )
    return SearchSpace.merge(**parts)


def _checked_spec(what: str, spec: Any, keys: Sequence[str], model: nn.Module) -> dict[str, Any]:
    """``spec`` as a dict of known keys, blocks tied unless it says how."""
    if not isinstance(spec, Mapping):
        example = "{'bits': (4, 8)}" if what == "quantize" else "{'sparsity': (0, 0.5)}"
        raise TypeError(f"{what} must be a dict such as {example}, got {spec!r}.")
    unknown = sorted(set(spec) - set(keys))
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}; known: {list(keys)}.")
    out = dict(spec)
    if "tie" not in out:
        out["tie"] = _block_ties(model, out, what=f"layers to {what}")
    return out


def _quant_space(
    model: nn.Module, given: Spec, quality: Quality, device: str | torch.device | None
) -> QuantizationSpace:
    spec = _checked_spec("quantize", given.quantize, QUANTIZE_KEYS, model)
    calibration = given.calibration
    if spec.get("method") == "gptq":
        if calibration is None and isinstance(quality, KLToDense):
            calibration = quality.ids  # documented default; a separate set is better
        if calibration is None:
            raise ValueError(
                "quantize method 'gptq' needs calibration= (inputs the model is called on, "
                "e.g. token ids (n_seqs, seq_len)); only a KLToDense quality lends its own."
            )
        spec["calibration"] = calibration
    elif calibration is not None:
        logger.warning("compress: calibration= is unused: only method 'gptq' calibrates.")
    return QuantizationSpace.for_model(model, device=device, **spec)


def _block_ties(model: nn.Module, spec: Mapping[str, Any], *, what: str) -> dict[str, str]:
    """One tied group per block of the model's block stack that has ``what`` (layers)."""
    stack = find_block_stack(model)
    if stack is None:
        return {}
    select = {k: spec[k] for k in ("types", "include", "exclude") if k in spec}
    layers = select_layers(model, what=what, **select)
    stack_list = model.get_submodule(stack)
    blocks = range(len(stack_list) if isinstance(stack_list, nn.ModuleList) else 0)
    return {
        f"{stack}.{i}": f"{stack}.{i}.*"
        for i in blocks
        if any(name.startswith(f"{stack}.{i}.") for name in layers)
    }


# The FFN spec ------------------------------------------------------------------------------------
def _ratios(ffn: Any) -> tuple[float, ...] | None:
    if ffn is None:
        return None
    if isinstance(ffn, (str, bytes)) or not isinstance(ffn, Sequence) or not ffn:
        raise TypeError(f"ffn must be FFN width ratios such as (0.5, 0.75, 1.0), got {ffn!r}.")
    return tuple(ffn)
