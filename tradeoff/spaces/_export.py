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
tensor built from the same codes and scales, saved whole with ``torch.save`` (``model.pt``; load
it with ``torch.load(path, weights_only=False)`` where torchao is installed). By default every
tensor's ``dequantize()`` equals the searched weight exactly (checked before writing), and runs
no faster than float32 on a CPU; ``dtype="bfloat16"`` puts layers of at most 4 bits on torchao's
int4 kernel of the model's device (``device=``): the CPU's, or tinygemm's tile-packed layout on
CUDA, its scales rounded to bfloat16 (``tradeoff.spaces._export_torchao`` says what changes).
``tradeoff.json`` names each layer's tensor class (``kernels``).

``peft``: a Config with a PEFT stage, its adapters trained by the caller's ``train``, written
by PEFT's own ``save_pretrained`` (``adapter_config.json``, ``adapter_model.safetensors``;
reload with ``PeftModel.from_pretrained(base, path)``, ``base`` the Config applied without its
PEFT stage), or with ``merge=True`` merged into the base and written as ``torch``.

``torch``: the applied model as a whole (``torch.save``; a channel-pruned model keeps its new,
smaller shapes; 2:4-pruned layers on CUDA as semi-structured sparse tensors, see
``_export_sparse``) and its dense ``state_dict`` in safetensors, weights on the quantization
grid in their float dtype, dropped blocks renumbered as in a shorter model. Any Config can be
written so. A Hugging Face model's ``config.json`` (layer count less the dropped blocks) is
written beside them when its class builds exactly those weights from it (uniformly narrowed
layers update it, ``_channels``), so ``from_pretrained`` loads the checkpoint; otherwise
``tradeoff.json``'s ``hf_config`` says why none was written.

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
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._export_ct import (
    check_expressible,
    check_shapes,
    compressed_state,
    dropped_blocks,
    hf_config,
    info_of,
    loadable_config,
    plain_state,
    renamed,
    renumbering,
    tied_names,
    vllm_unserved,
)
from tradeoff.spaces._export_peft import check_peft_args, trained_adapters
from tradeoff.spaces._export_sparse import check_sparse, semi_structured
from tradeoff.spaces._export_torchao import check_device, check_dtype, torchao_model
from tradeoff.spaces._model import QuantInfo
from tradeoff.spaces._quantizers import describe

FORMATS = ("compressed-tensors", "torchao", "torch", "peft")
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
    dtype: str | None = None,
    train: Callable[[nn.Module], Any] | None = None,
    merge: bool = False,
    sparse: bool | None = None,
    device: str | torch.device | None = None,
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
        dtype: ``format="torchao"`` only: ``"bfloat16"`` casts the model and puts the layers
            of at most 4 bits on torchao's int4 kernel, CPU or CUDA (``_export_torchao``); ``None``
            keeps the model's dtype and every weight exact.
        train: ``format="peft"`` only (and required there): ``train(model)`` trains the
            applied model's adapters in place (a Config alone has untrained ones).
        merge: ``format="peft"`` only: write the trained adapters merged into their base, in
            the ``torch`` format, instead of the adapters alone.
        sparse: ``format="torch"`` only: 2:4-pruned Linear layers as semi-structured sparse
            tensors (CUDA, float16/bfloat16). ``None``: where possible, warning which layers
            stay dense (all of them on a CPU); ``True``: refuse unless all convert;
            ``False``: all dense.
        device: ``format="torchao"`` or ``"torch"`` only: where the written model runs (the
            applied model is moved there before its tensors are built: torchao's int4 layout
            and 2:4 sparse tensors depend on it); ``None``: the model's own device.

    Returns:
        What was written, with each file's size.

    Raises:
        ValueError: ``format`` unknown, ``path`` exists, or the format cannot express the
            Config (the message names each layer and why), before anything is written.
    """
    from tradeoff.spaces._quant import recording_grids

    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose from {list(FORMATS)}.")
    check_dtype(dtype, format)
    check_peft_args(format, train, merge)
    check_sparse(sparse, format)
    where = check_device(device, format)
    if Path(path).expanduser().exists() and not overwrite:
        raise ValueError(
            f"export: {str(path)!r} exists; pass overwrite=True to replace it, or another path."
        )
    with recording_grids() as grids:
        applied = space.apply(model, config)
    if where is not None:
        applied.to(where)
    record = {"config": dict(config), **(dict(meta) if meta else {})}
    if format == "compressed-tensors" and hasattr(getattr(model, "config", None), "to_dict"):
        check_shapes(applied, model)
    if format == "peft":
        applied, format, record = trained_adapters(applied, train, merge, record)
    return _write(
        applied, grids, path, format=format, overwrite=overwrite, meta=record, dtype=dtype,
        sparse=sparse,
    )  # fmt: skip


def _write(
    applied: nn.Module,
    grids: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    format: str,
    overwrite: bool,
    meta: Mapping[str, Any],
    dtype: str | None = None,
    sparse: bool | None = None,
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
    infos = {n: i for n, m in applied.named_modules() if isinstance(i := info_of(m), QuantInfo)}
    levels = {n: describe(n, i).split("@", 1)[1] for n, i in infos.items()}
    state: dict[str, torch.Tensor]
    config_json: dict[str, Any] | None = None
    packed: tuple[str, ...] = ()
    dropped = dropped_blocks(applied)
    if format == "compressed-tensors":
        check_expressible(applied, infos, grids)
        unserved = vllm_unserved(infos)
        if unserved:
            listed = "\n  ".join(f"{n}: {why}" for n, why in unserved.items())
            warnings.warn(
                f"export(format='compressed-tensors'): {len(unserved)} of {len(infos)} packed "
                "layers have a level vLLM does not serve; compressed-tensors and transformers "
                f"read the checkpoint, vLLM will not load it:\n  {listed}",
                UserWarning,
                stacklevel=3,
            )
        state, quant_config = compressed_state(applied, infos, grids)
        packed = tuple(infos)
        renames = renumbering(applied, dropped)
        state = {renamed(k, renames): v for k, v in state.items()}
        for scheme in quant_config.config_groups.values():
            scheme.targets = [renamed(t + ".", renames)[:-1] for t in scheme.targets]
        config_json = hf_config(applied, quant_config, dropped)
    elif format == "torchao":
        check_expressible(applied, infos, grids, runtime="torchao")
        applied, kernels = torchao_model(applied, infos, grids, dtype=dtype)
        packed = tuple(infos)
        state = {}
        meta = {**meta, "dtype": dtype, "kernels": kernels}
    elif format == "peft":
        state = {}  # PEFT's own save_pretrained writes the adapters
    else:
        state = plain_state(applied)  # dense, before any layer turns sparse
        renames = renumbering(applied, dropped)
        state = {renamed(k, renames): v for k, v in state.items()}
        config_json, why = loadable_config(applied, state, dropped)
        meta = {**meta, "hf_config": f"not written: {why}"} if why else meta
        layouts = semi_structured(applied, sparse)
        meta = {**meta, "sparse": layouts} if layouts else meta
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
        if format == "peft":
            applied.save_pretrained(str(tmp))  # type: ignore[operator]
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


def write_trained_adapters(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> Exported:
    """Write a trained ``PeftModel``'s adapters (``format="peft"``) to ``path``."""
    record = {**(dict(meta) if meta else {}), "adapters": "peft save_pretrained"}
    return _write(model, {}, path, format="peft", overwrite=overwrite, meta=record)


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
        back = {new: old for old, new in renumbering(copied, dropped).items()}
        out = {renamed(k, back): v for k, v in out.items()}
    try:
        copied.load_state_dict(out, strict=False)
    except RuntimeError as error:
        raise ValueError(
            f"load_compressed: the checkpoint does not fit the model: {error}"
        ) from None
    missing = set(copied.state_dict()) - set(out) - tied_names(copied)
    if missing:
        raise ValueError(f"load_compressed: the checkpoint lacks {sorted(missing)[:5]}.")
    return copied
