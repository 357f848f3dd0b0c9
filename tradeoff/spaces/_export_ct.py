"""The ``compressed-tensors`` format's pieces (what a Config can be packed as, the packed
state, the Hugging Face config), dropped blocks' renumbering, and the state helpers every
format shares. :mod:`tradeoff.spaces._export` writes the files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._model import QUANT_ATTR, QuantInfo
from tradeoff.spaces._quantizers import describe


# compressed-tensors ---------------------------------------------------------------------------
def check_expressible(
    model: nn.Module,
    infos: Mapping[str, QuantInfo],
    grids: Mapping[str, Any],
    runtime: str = "compressed-tensors",
) -> None:
    problems = []
    for name, info in infos.items():
        module = model.get_submodule(name)
        level = describe(name, info)
        if not isinstance(module, nn.Linear):
            problems.append(
                f"{name} ({type(module).__name__}): compressed-tensors packs nn.Linear weights only"
            )
        elif info.fmt != "int":
            problems.append(f"{level}: {info.fmt} is not an int level of this format's groups")
        elif info.method == "hqq":
            problems.append(f"{level}: HQQ's zero-points are fractional, not int codes")
        elif info.act_bits is not None:
            problems.append(
                f"{level}: activations quantized to {info.act_bits} bits (weights-only export)"
            )
        elif grids.get(name) == "tied":
            problems.append(f"{name}: its weight is tied to another quantized layer")
        elif grids.get(name) is None:
            problems.append(f"{level}: no int grid was recorded for it")
        elif (
            info.granularity == "group"
            and module.in_features % (size := info.group_size or 1)
            and size < module.in_features
        ):
            problems.append(
                f"{level}: {module.in_features} inputs are not a multiple of the group size "
                f"{info.group_size} ({runtime} groups are whole)"
            )
    tied = shared_weights(model, infos)
    problems += [f"{a}: its weight is shared with {b}" for a, b in tied]
    if problems:
        listed = "\n  ".join(problems)
        raise ValueError(
            f"format={runtime!r} cannot express this Config; nothing was written:\n"
            f"  {listed}\nExport it with format='torch', or search without these levels "
            "(method='rtn' or 'gptq' int levels on nn.Linear layers, whole groups)."
        )


VLLM_BITS = (4, 8)
"""The weight bits vLLM's compressed-tensors WNA16 kernels serve."""


def vllm_unserved(infos: Mapping[str, QuantInfo]) -> dict[str, str]:
    """Packed layer -> why vLLM's WNA16 kernels do not serve its level (compressed-tensors and
    transformers still read it)."""
    return {
        name: f"{info.bits} bits (vLLM's WNA16 kernels serve {' and '.join(map(str, VLLM_BITS))})"
        for name, info in infos.items()
        if info.bits not in VLLM_BITS
    }


def compressed_state(
    model: nn.Module, infos: Mapping[str, QuantInfo], grids: Mapping[str, Any]
) -> tuple[dict[str, torch.Tensor], Any]:
    from compressed_tensors.compressors.pack_quantized.base import (
        PackedQuantizationCompressor,
    )
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
    )

    state = plain_state(model)
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name, info in infos.items():
        strategy, size = info.granularity, info.group_size
        weight: Any = model.get_submodule(name).weight
        inputs = int(weight.shape[1])
        if strategy == "group" and (size or inputs) >= inputs:
            strategy, size = "channel", None  # one group holds the whole row: a scale per row
        groups.setdefault((info.bits, info.symmetric, strategy, size), []).append(name)
    config_groups: dict[str, QuantizationScheme] = {}
    for k, ((bits, symmetric, strategy, size), names) in enumerate(groups.items()):
        args = QuantizationArgs(
            num_bits=bits, type="int", symmetric=symmetric, strategy=strategy, group_size=size
        )
        scheme = QuantizationScheme(targets=names, weights=args)
        config_groups[f"group_{k}"] = scheme
        for name in names:
            weight = state.pop(f"{name}.weight")
            scale, zero = grids[name]
            local = {"weight": weight, "weight_scale": scale.to(weight.dtype)}
            if not symmetric:  # our codes [0, 2^b - 1]; compressed-tensors' [-2^(b-1), ...)
                local["weight_zero_point"] = (zero - 2 ** (bits - 1)).to(torch.int8)
            if strategy == "tensor":
                local["weight_scale"] = local["weight_scale"].reshape(1)
            compressed = PackedQuantizationCompressor.compress(local, scheme)
            back = PackedQuantizationCompressor.decompress(compressed, scheme)["weight"]
            if not torch.equal(back.to(weight.dtype), weight):
                worst = float((back.to(weight.dtype) - weight).abs().max())
                raise RuntimeError(
                    f"export: {name}'s packed codes do not reproduce its weights (max |dW| "
                    f"{worst:.3g}); this is a bug in tradeoff, please report it."
                )
            state.update({f"{name}.{k}": v.contiguous() for k, v in compressed.items()})
    quant_config = QuantizationConfig(
        config_groups=config_groups,
        format="pack-quantized",
        quantization_status="compressed",
    )
    return state, quant_config


def hf_config(
    model: nn.Module, quant_config: Any, dropped: Mapping[str, list[int]]
) -> dict[str, Any]:
    """The model's Hugging Face config (if it has one; with its layer count less the dropped
    blocks) and the ``quantization_config`` transformers and vLLM read."""
    import compressed_tensors

    data = hf_dict(model, dropped)
    data["quantization_config"] = {
        "version": compressed_tensors.__version__,
        "quant_method": "compressed-tensors",
        "sparsity_config": {},
        "transform_config": {},
        **quant_config.model_dump(exclude=["quant_method"]),
    }
    return data


def hf_dict(model: nn.Module, dropped: Mapping[str, list[int]]) -> dict[str, Any]:
    """The model's Hugging Face config as a dict (empty without one), less the dropped blocks."""
    hf: Any = getattr(model, "config", None)
    data: dict[str, Any] = hf.to_dict() if hasattr(hf, "to_dict") else {}
    for gone in dropped.values():
        n = data.get("num_hidden_layers")
        if isinstance(n, int):
            data["num_hidden_layers"] = n - len(gone)
        if isinstance(data.get("layer_types"), list):
            data["layer_types"] = [t for i, t in enumerate(data["layer_types"]) if i not in gone]
    return data


def loadable_config(
    model: nn.Module, state: Mapping[str, torch.Tensor], dropped: Mapping[str, list[int]]
) -> tuple[dict[str, Any] | None, str | None]:
    """The HF config (less the dropped blocks) when the model's class builds from it, on the
    meta device, exactly ``state``'s weights (names and shapes; tied copies aside), so that
    ``from_pretrained`` loads them; else ``None`` and why (``None`` too without a config)."""
    hf: Any = getattr(model, "config", None)
    if not hasattr(hf, "to_dict"):
        return None, None
    data = hf_dict(model, dropped)
    try:
        with torch.device("meta"):
            built = type(model)(type(hf).from_dict(data))
    except Exception as error:  # any class that does not build from its own config
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"{type(model).__name__} does not build from its config ({first})"
    owners: dict[int, str] = {}
    want = {}
    for key, value in built.state_dict(keep_vars=True).items():
        if owners.setdefault(id(value), key) == key:  # a tied copy once, as plain_state does
            want[key] = tuple(value.shape)
    have = {k: tuple(v.shape) for k, v in state.items()}
    differ = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    if differ:
        shown = ", ".join(f"{k} {_shape(have, k)} vs {_shape(want, k)}" for k in differ[:3])
        return None, (
            f"the config does not describe the weights (here vs from the config: {shown}"
            f"{', ...' if len(differ) > 3 else ''}): layers narrowed unevenly, or widths the "
            "config does not record"
        )
    return data, None


def _shape(shapes: Mapping[str, tuple[int, ...]], key: str) -> str:
    return str(list(shapes[key])) if key in shapes else "absent"


def check_shapes(applied: nn.Module, dense: nn.Module) -> None:
    """A Hugging Face config holds one width per kind of layer: a Config that narrowed some
    layers (channel pruning, FFN width, heads) has no such config."""
    shapes = {k: tuple(v.shape) for k, v in dense.state_dict().items()}
    narrowed = [
        f"{k} {list(shapes[k])} -> {list(v.shape)}"
        for k, v in applied.state_dict().items()
        if k in shapes and tuple(v.shape) != shapes[k]
    ]
    if narrowed:
        listed = "\n  ".join(narrowed[:8]) + ("\n  ..." if len(narrowed) > 8 else "")
        raise ValueError(
            "format='compressed-tensors' keeps the model's Hugging Face config, which has one "
            "width per kind of layer, and this Config narrows layers; nothing was written:\n  "
            f"{listed}\nExport it with format='torch' (the model with its new shapes)."
        )


# Dropped blocks -------------------------------------------------------------------------------
def dropped_blocks(model: nn.Module) -> dict[str, list[int]]:
    """``ModuleList`` name -> indices of its blocks a Config dropped."""
    from tradeoff.spaces._elastic import SkipBlock

    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            gone = [i for i, block in enumerate(module) if isinstance(block, SkipBlock)]
            if gone:
                found[name] = gone
    return found


def renumbering(model: nn.Module, dropped: Mapping[str, list[int]]) -> dict[str, str]:
    """Old block prefix -> new one, the kept blocks numbered from 0 as a model with fewer
    layers numbers them (``model.layers.3.`` -> ``model.layers.2.`` after dropping one)."""
    renames = {}
    for name, gone in dropped.items():
        blocks: Any = model.get_submodule(name)
        kept = [i for i in range(len(blocks)) if i not in gone]
        renames.update({f"{name}.{old}.": f"{name}.{new}." for new, old in enumerate(kept)})
    return renames


def renamed(key: str, renames: Mapping[str, str]) -> str:
    for old, new in renames.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


# Shared ---------------------------------------------------------------------------------------
def info_of(module: nn.Module) -> Any:
    return getattr(module, QUANT_ATTR, None)


def plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied tensors once (safetensors refuses shared storage), on the CPU."""
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        ident = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
        if value.numel() and ident in seen:
            continue
        seen[ident] = key
        state[key] = value.detach().to("cpu").contiguous()
    return state


def tied_names(model: nn.Module) -> set[str]:
    full = set(model.state_dict())
    return full - set(plain_state(model))


def shared_weights(model: nn.Module, infos: Mapping[str, QuantInfo]) -> list[tuple[str, str]]:
    """(quantized layer, other module) pairs whose weights are one tensor."""
    owners: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor):
            owners.setdefault(id(weight), []).append(name)
    pairs = []
    for names in owners.values():
        for name in names:
            if name in infos and len(names) > 1:
                pairs.append((name, next(n for n in names if n != name)))
    return pairs
