"""Writing a Config's model to a checkpoint a runtime loads, and reading it back.

``compressed-tensors`` (the format vLLM and transformers read): every int-quantized
``nn.Linear`` becomes ``weight_packed`` (codes packed into int32 by compressed-tensors' own
``pack-quantized`` compressor), ``weight_scale`` and, on an asymmetric grid,
``weight_zero_point``; levels that differ between layers are config groups of their own, each
targeting its layers by exact name. The codes and scales are the variant bank's (GPTQ) or the
round-to-nearest grid's, so the checkpoint dequantizes to exactly the weights the search
measured; :func:`export` checks that before it writes, and :func:`load_compressed` reads a
checkpoint back through compressed-tensors' decompression.

Scales are stored in float32, the dtype they were computed in (float16 scales would change the
weights the search measured); the known-cost ``size`` counts float16 scales, so a checkpoint is
larger than ``size`` by 2 bytes per scale, plus the float layers' own dtype and the headers.

``torchao``: the applied model with each int-quantized ``nn.Linear`` weight a torchao quantized
tensor built from the same codes and scales (``Int8Tensor`` for symmetric int8, which
``F.linear`` runs through torchao's weight-only int8 kernel; ``IntxUnpackedToInt8Tensor`` for 2-7
bits and asymmetric grids, int8 storage), saved whole with ``torch.save`` (``model.pt``; load
it with ``torch.load(path, weights_only=False)`` where torchao is installed). Each tensor's
``dequantize()`` equals the searched weight exactly; checked before writing.

``torch``: the applied model as a whole (``torch.save``; a channel-pruned model keeps its new,
smaller shapes) and its ``state_dict`` in safetensors, weights on the quantization grid in their
float dtype. Any Config can be written so.

Both formats write into a temporary directory beside ``path`` and rename it into place, so an
interrupted export never leaves a loadable-looking checkpoint; ``tradeoff.json`` beside the
weights holds the Config and each layer's level.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._model import QUANT_ATTR, QuantInfo
from tradeoff.spaces._quantizers import describe

FORMATS = ("compressed-tensors", "torchao", "torch")
"""What :func:`export` writes."""

WEIGHTS_FILE = "model.safetensors"
META_FILE = "tradeoff.json"


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote.

    Attributes:
        path: The checkpoint's directory.
        format: From :data:`FORMATS`.
        files: File name -> bytes.
        layers: Quantized layer -> its level (``int4/group128/gptq``); ``packed``: those stored
            as packed codes.
    """

    path: Path
    format: str
    files: dict[str, int]
    layers: dict[str, str] = field(default_factory=dict)
    packed: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        """All files together."""
        return sum(self.files.values())

    @property
    def weight_bytes(self) -> int:
        """The weights file alone."""
        return self.files.get(WEIGHTS_FILE, 0)


def export(
    space: Any,
    model: nn.Module,
    config: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    format: str = "compressed-tensors",
    overwrite: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> Exported:
    """Write ``space.apply(model, config)`` to the directory ``path`` in ``format``.

    Args:
        space: A model-aware space (or a merge of them) with ``apply``.
        model: The dense model the space was built from (untouched).
        config: A Config of ``space``.
        path: The directory to write; it must not exist unless ``overwrite``.
        format: From :data:`FORMATS`.
        overwrite: Replace an existing ``path``.
        meta: Written to ``tradeoff.json`` beside each layer's level (say, the trial).

    Returns:
        What was written, with each file's size.

    Raises:
        ValueError: ``format`` unknown, ``path`` exists, or the format cannot express the
            Config (the message names each layer and why), before anything is written.
    """
    from tradeoff.spaces._quant import recording_grids

    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose from {list(FORMATS)}.")
    if Path(path).expanduser().exists() and not overwrite:
        raise ValueError(
            f"export: {str(path)!r} exists; pass overwrite=True to replace it, or another path."
        )
    with recording_grids() as grids:
        applied = space.apply(model, config)
    record = {"config": dict(config), **(dict(meta) if meta else {})}
    if format == "compressed-tensors" and hasattr(getattr(model, "config", None), "to_dict"):
        _check_shapes(applied, model)
    return _write(applied, grids, path, format=format, overwrite=overwrite, meta=record)


def _write(
    applied: nn.Module,
    grids: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    format: str,
    overwrite: bool,
    meta: Mapping[str, Any],
) -> Exported:
    """Write ``applied`` (a Config applied inside ``recording_grids``, whose record is
    ``grids``) to ``path``."""
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose from {list(FORMATS)}.")
    target = Path(path).expanduser()
    if target.exists() and not overwrite:
        raise ValueError(
            f"export: {str(target)!r} exists; pass overwrite=True to replace it, or another path."
        )
    infos = {n: i for n, m in applied.named_modules() if isinstance(i := _info(m), QuantInfo)}
    levels = {n: describe(n, i).split("@", 1)[1] for n, i in infos.items()}
    state: dict[str, torch.Tensor]
    config_json: dict[str, Any] | None = None
    packed: tuple[str, ...] = ()
    dropped = _dropped_blocks(applied)
    if format == "compressed-tensors":
        _check_expressible(applied, infos, grids)
        state, quant_config = _compressed_state(applied, infos, grids)
        packed = tuple(infos)
        renames = _renumbering(applied, dropped)
        state = {_renamed(k, renames): v for k, v in state.items()}
        for scheme in quant_config.config_groups.values():
            scheme.targets = [_renamed(t + ".", renames)[:-1] for t in scheme.targets]
        config_json = _config_json(applied, quant_config, dropped)
    elif format == "torchao":
        _check_expressible(applied, infos, grids, runtime="torchao")
        applied = _torchao_model(applied, infos, grids)
        packed = tuple(infos)
        state = {}
    else:
        state = _plain_state(applied)
    meta = {**meta, "dropped_blocks": dropped} if dropped else meta
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        from safetensors.torch import save_file

        if state:
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        if config_json is not None:
            (tmp / "config.json").write_text(json.dumps(config_json, indent=2, sort_keys=True))
        if format in ("torch", "torchao"):
            torch.save(applied, tmp / "model.pt")
        record = {"format": format, "layers": levels, **meta}
        (tmp / META_FILE).write_text(json.dumps(record, indent=2, default=str))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {f.name: f.stat().st_size for f in sorted(target.iterdir()) if f.is_file()}
    return Exported(target, format, files, levels, packed)


def load_compressed(path: str | os.PathLike[str], model: nn.Module) -> nn.Module:
    """A copy of ``model`` (the dense model the checkpoint was exported from, or one of the
    same shapes) holding the weights of the ``compressed-tensors`` checkpoint at ``path``,
    each packed layer decompressed by compressed-tensors' own ``pack-quantized`` compressor.

    Raises:
        ValueError: ``path`` holds no such checkpoint, or its shapes do not fit ``model``.
    """
    from compressed_tensors.compressors.pack_quantized.base import (
        PackedQuantizationCompressor,
    )
    from compressed_tensors.quantization import QuantizationConfig
    from safetensors.torch import load_file

    root = Path(path).expanduser()
    config_file, weights_file = root / "config.json", root / WEIGHTS_FILE
    if not config_file.is_file() or not weights_file.is_file():
        raise ValueError(
            f"load_compressed: {str(root)!r} has no config.json and {WEIGHTS_FILE}; export "
            "it with format='compressed-tensors'."
        )
    raw = json.loads(config_file.read_text()).get("quantization_config")
    if not raw:
        raise ValueError(f"load_compressed: {config_file} has no quantization_config.")
    quant = QuantizationConfig.model_validate(raw)
    schemes = {t: s for s in quant.config_groups.values() for t in s.targets}
    state = load_file(str(weights_file))
    out: dict[str, torch.Tensor] = {}
    local: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        module, _, name = key.rpartition(".")
        if module in schemes and name.startswith("weight_"):
            local.setdefault(module, {})[name] = value
        else:
            out[key] = value
    for module, tensors in local.items():
        weights = PackedQuantizationCompressor.decompress(tensors, schemes[module])
        out[f"{module}.weight"] = weights["weight"]
    copied = copy.deepcopy(model)
    record = root / META_FILE
    dropped = json.loads(record.read_text()).get("dropped_blocks", {}) if record.is_file() else {}
    if dropped:
        from tradeoff.spaces._elastic import drop_block

        for name, gone in dropped.items():
            for i in gone:
                drop_block(copied.get_submodule(name), i)  # type: ignore[arg-type]
        back = {new: old for old, new in _renumbering(copied, dropped).items()}
        out = {_renamed(k, back): v for k, v in out.items()}
    try:
        copied.load_state_dict(out, strict=False)
    except RuntimeError as error:
        raise ValueError(
            f"load_compressed: the checkpoint does not fit the model: {error}"
        ) from None
    missing = set(copied.state_dict()) - set(out) - _tied_names(copied)
    if missing:
        raise ValueError(f"load_compressed: the checkpoint lacks {sorted(missing)[:5]}.")
    return copied


# compressed-tensors ---------------------------------------------------------------------------
def _check_expressible(
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
    tied = _shared_weights(model, infos)
    problems += [f"{a}: its weight is shared with {b}" for a, b in tied]
    if problems:
        listed = "\n  ".join(problems)
        raise ValueError(
            f"format={runtime!r} cannot express this Config; nothing was written:\n"
            f"  {listed}\nExport it with format='torch', or search without these levels "
            "(method='rtn' or 'gptq' int levels on nn.Linear layers, whole groups)."
        )


def _compressed_state(
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

    state = _plain_state(model)
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


def _torchao_model(
    model: nn.Module, infos: Mapping[str, QuantInfo], grids: Mapping[str, Any]
) -> nn.Module:
    """``model`` with each quantized Linear's weight a torchao quantized tensor of its codes."""
    from torchao.quantization import (  # type: ignore[import-untyped]
        Int8Tensor,
        IntxUnpackedToInt8Tensor,
    )

    for name, info in infos.items():
        module = model.get_submodule(name)
        found: Any = module.weight
        weight: torch.Tensor = found.detach()
        scale, zero = (t.to(weight.device) for t in grids[name])
        size = weight.shape[1] // scale.shape[1]
        group = torch.arange(weight.shape[1], device=weight.device) // size
        codes = (weight / scale[:, group]).round() + zero[:, group]
        half = 2 ** (info.bits - 1)
        tensor: Any
        if info.symmetric and info.bits == 8:
            tensor = Int8Tensor(codes.to(torch.int8), scale, [1, size], weight.dtype)
        else:  # torchao's codes are signed: shift an asymmetric grid's [0, 2^b - 1] down
            shift = 0 if info.symmetric else half
            target = torch.int8 if info.bits == 8 else getattr(torch, f"int{info.bits}")
            tensor = IntxUnpackedToInt8Tensor(
                (codes - shift).to(torch.int8), scale, (zero - shift).to(torch.int8), target,
                [1, size], weight.dtype, None,
            )  # fmt: skip
        if not torch.equal(tensor.dequantize(), weight):
            worst = float((tensor.dequantize() - weight).abs().max())
            raise RuntimeError(
                f"export: {name}'s torchao tensor does not reproduce its weights (max |dW| "
                f"{worst:.3g}); this is a bug in tradeoff, please report it."
            )
        module.weight = nn.Parameter(tensor, requires_grad=False)
    return model


def _config_json(
    model: nn.Module, quant_config: Any, dropped: Mapping[str, list[int]]
) -> dict[str, Any]:
    """The model's Hugging Face config (if it has one; with its layer count less the dropped
    blocks) and the ``quantization_config`` transformers and vLLM read."""
    import compressed_tensors

    hf: Any = getattr(model, "config", None)
    data: dict[str, Any] = hf.to_dict() if hasattr(hf, "to_dict") else {}
    for gone in dropped.values():
        n = data.get("num_hidden_layers")
        if isinstance(n, int):
            data["num_hidden_layers"] = n - len(gone)
        if isinstance(data.get("layer_types"), list):
            data["layer_types"] = [t for i, t in enumerate(data["layer_types"]) if i not in gone]
    data["quantization_config"] = {
        "version": compressed_tensors.__version__,
        "quant_method": "compressed-tensors",
        "sparsity_config": {},
        "transform_config": {},
        **quant_config.model_dump(exclude=["quant_method"]),
    }
    return data


def _check_shapes(applied: nn.Module, dense: nn.Module) -> None:
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
def _dropped_blocks(model: nn.Module) -> dict[str, list[int]]:
    """``ModuleList`` name -> indices of its blocks a Config dropped."""
    from tradeoff.spaces._elastic import SkipBlock

    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            gone = [i for i, block in enumerate(module) if isinstance(block, SkipBlock)]
            if gone:
                found[name] = gone
    return found


def _renumbering(model: nn.Module, dropped: Mapping[str, list[int]]) -> dict[str, str]:
    """Old block prefix -> new one, the kept blocks numbered from 0 as a model with fewer
    layers numbers them (``model.layers.3.`` -> ``model.layers.2.`` after dropping one)."""
    renames = {}
    for name, gone in dropped.items():
        blocks: Any = model.get_submodule(name)
        kept = [i for i in range(len(blocks)) if i not in gone]
        renames.update({f"{name}.{old}.": f"{name}.{new}." for new, old in enumerate(kept)})
    return renames


def _renamed(key: str, renames: Mapping[str, str]) -> str:
    for old, new in renames.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


# Shared ---------------------------------------------------------------------------------------
def _info(module: nn.Module) -> Any:
    return getattr(module, QUANT_ATTR, None)


def _plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
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


def _tied_names(model: nn.Module) -> set[str]:
    full = set(model.state_dict())
    return full - set(_plain_state(model))


def _shared_weights(model: nn.Module, infos: Mapping[str, QuantInfo]) -> list[tuple[str, str]]:
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
