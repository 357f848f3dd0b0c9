"""The ``torchao`` export format: each int-quantized ``nn.Linear`` weight a torchao quantized
tensor built from the searched codes and scales.

``dtype=None`` keeps the model's float dtype and every weight exact: ``Int8Tensor`` for
symmetric int8 (``F.linear`` runs torchao's weight-only int8 path), ``IntxUnpackedToInt8Tensor``
for 2-7 bits and asymmetric grids (int8 storage, dequantized per call). On a CPU neither is
faster than float32: torchao's packed int4 kernels refuse float32 activations.

``dtype="bfloat16"`` is the fast path on x86 CPUs: the model is cast to bfloat16 and each layer
of at most 4 bits whose groups are a multiple of 32, 64, 128 or 256 inputs (a per-channel scale
is repeated over such groups) becomes an ``Int4OpaqueTensor``, whose ``F.linear`` is torch's
``_weight_int4pack_mm_for_cpu`` (tinygemm), the kernel torchao's
``PrototypeInt4WeightOnlyConfig`` uses. The codes are the bank's, unchanged; tinygemm computes
``(q - 8) * scale + zero`` with bfloat16 scale and float zero, so a symmetric code ``c`` is
stored as ``q = c + 8`` with zero 0 (the weight is ``c * bf16(scale)``: the scale's rounding,
at most 2^-9 relative, is the only change), and an asymmetric code ``c`` with integer
zero-point ``z`` as ``q = c`` with float zero ``bf16((8 - z) * bf16(scale))`` (that rounding
adds up to 2^-9 of ``|8 - z| * scale``). Other layers (8 bits, groups the kernel cannot tile,
weights not on the CPU) keep the exact tensors above in bfloat16, and :func:`torchao_model`
warns naming them and why.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._model import QuantInfo

DTYPES = ("bfloat16",)
"""The ``dtype`` values of the ``torchao`` format besides ``None`` (the model's own)."""

INT4_GROUPS = (256, 128, 64, 32)
"""Group sizes the CPU int4 kernel takes."""


def check_dtype(dtype: str | None, format: str) -> None:
    """Reject a ``dtype`` the format does not take (before anything is written)."""
    if dtype is None:
        return
    if format != "torchao":
        raise ValueError(
            f"export: dtype={dtype!r} applies to format='torchao' only (got format={format!r}); "
            "leave dtype out."
        )
    if dtype not in DTYPES:
        raise ValueError(
            f"export: dtype must be None (the model's own) or one of {list(DTYPES)}, got {dtype!r}."
        )


def torchao_model(
    model: nn.Module,
    infos: Mapping[str, QuantInfo],
    grids: Mapping[str, Any],
    *,
    dtype: str | None = None,
) -> tuple[nn.Module, dict[str, str]]:
    """``model`` (modified in place) with each quantized Linear's weight a torchao quantized
    tensor of its codes, and layer -> the tensor class that holds it.

    Raises:
        RuntimeError: a tensor does not reproduce its layer's codes (a bug).
    """
    fallback: dict[str, str] = {}
    kernels: dict[str, str] = {}
    exact: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    for name in infos:  # codes from the searched weights, before any cast
        found: Any = model.get_submodule(name).weight
        weight: torch.Tensor = found.detach()
        scale, zero = (t.to(weight.device, torch.float32) for t in grids[name])
        exact[name] = (_codes(name, weight, scale, zero), scale, zero, weight.clone())
    if dtype is not None:
        model.to(getattr(torch, dtype))
    for name, info in infos.items():
        codes, scale, zero, weight = exact.pop(name)
        why = _int4_refusal(info, weight, scale) if dtype is not None else "no dtype"
        tensor: Any
        if why is None:
            tensor = _int4_opaque(codes, scale, zero, info)
        else:
            tensor = _exact_tensor(name, codes, scale, zero, info, weight, dtype)
            if dtype is not None:
                fallback[name] = why
        kernels[name] = type(tensor).__name__
        model.get_submodule(name).weight = nn.Parameter(tensor, requires_grad=False)
    if fallback:
        listed = "\n  ".join(f"{n}: {why}" for n, why in fallback.items())
        warnings.warn(
            f"export(format='torchao', dtype={dtype!r}): {len(fallback)} of {len(infos)} "
            f"quantized layers stay off the int4 CPU kernel (exact int8-stored tensors, "
            f"dequantized per call):\n  {listed}",
            UserWarning,
            stacklevel=3,
        )
    return model, kernels


def _codes(
    name: str, weight: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor
) -> torch.Tensor:
    """The int codes ``[rows, inputs]`` of ``weight`` on its grid, checked to reproduce it."""
    size = weight.shape[1] // scale.shape[1]
    group = torch.arange(weight.shape[1], device=weight.device) // size
    codes = (weight.float() / scale[:, group]).round() + zero[:, group]
    back = ((codes - zero[:, group]) * scale[:, group]).to(weight.dtype)
    if not torch.equal(back, weight):
        worst = float((back - weight).abs().max())
        raise RuntimeError(
            f"export: {name}'s codes do not reproduce its weights (max |dW| {worst:.3g}); "
            "this is a bug in tradeoff, please report it."
        )
    return codes


def _int4_refusal(info: QuantInfo, weight: torch.Tensor, scale: torch.Tensor) -> str | None:
    """Why the CPU int4 kernel cannot hold the layer, or ``None``."""
    if info.bits > 4:
        return f"{info.bits} bits (the int4 kernel holds codes of at most 4 bits)"
    if weight.device.type != "cpu":
        return f"on {weight.device} (torchao's int4 CPU layout; move the model to the CPU)"
    if _kernel_group(weight.shape[1] // scale.shape[1]) is None:
        return (
            f"groups of {weight.shape[1] // scale.shape[1]} inputs (the kernel's groups are "
            f"{'/'.join(map(str, INT4_GROUPS))}: a multiple of one is needed)"
        )
    return None


def _kernel_group(size: int) -> int | None:
    return next((g for g in INT4_GROUPS if size % g == 0), None)


def _int4_opaque(
    codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, info: QuantInfo
) -> Any:
    """An ``Int4OpaqueTensor`` (tinygemm layout) of the codes, bfloat16 scales."""
    from torchao.prototype.quantization.int4 import (  # type: ignore[import-untyped]
        Int4OpaqueTensor,
    )

    rows, inputs = codes.shape
    size = inputs // scale.shape[1]
    kernel = _kernel_group(size)
    assert kernel is not None  # checked by _int4_refusal
    repeat = size // kernel  # a coarser group (or a whole row) is `repeat` kernel groups
    scale_b = scale.to(torch.bfloat16).repeat_interleave(repeat, dim=1)
    if info.symmetric:
        q, zero_f = codes + 8, torch.zeros_like(scale_b)
    else:
        q = codes
        zero_f = ((8 - zero).repeat_interleave(repeat, dim=1) * scale_b.float()).bfloat16()
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1)
    scale_and_zero = torch.stack([scale_b, zero_f], dim=-1).transpose(0, 1).contiguous()
    return Int4OpaqueTensor(packed, scale_and_zero, [1, kernel], torch.Size([rows, inputs]))


def _exact_tensor(
    name: str,
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor,
    info: QuantInfo,
    weight: torch.Tensor,
    dtype: str | None,
) -> Any:
    """``Int8Tensor`` (symmetric int8) or ``IntxUnpackedToInt8Tensor`` whose ``dequantize()``
    equals ``weight`` (float32 scales; in ``dtype``, to its rounding)."""
    from torchao.quantization import (  # type: ignore[import-untyped]
        Int8Tensor,
        IntxUnpackedToInt8Tensor,
    )

    size = weight.shape[1] // scale.shape[1]
    half = 2 ** (info.bits - 1)
    out = getattr(torch, dtype) if dtype is not None else weight.dtype
    tensor: Any
    if info.symmetric and info.bits == 8:
        tensor = Int8Tensor(codes.to(torch.int8), scale, [1, size], out)
    else:  # torchao's codes are signed: shift an asymmetric grid's [0, 2^b - 1] down
        shift = 0 if info.symmetric else half
        target = torch.int8 if info.bits == 8 else getattr(torch, f"int{info.bits}")
        tensor = IntxUnpackedToInt8Tensor(
            (codes - shift).to(torch.int8), scale, (zero - shift).to(torch.int8), target,
            [1, size], out, None,
        )  # fmt: skip
    back = tensor.dequantize()
    if not (
        torch.equal(back, weight)
        if dtype is None
        else torch.allclose(back.float(), weight.float(), rtol=2**-7, atol=0)
    ):
        worst = float((back.float() - weight.float()).abs().max())
        raise RuntimeError(
            f"export: {name}'s torchao tensor does not reproduce its weights (max |dW| "
            f"{worst:.3g}); this is a bug in tradeoff, please report it."
        )
    return tensor
