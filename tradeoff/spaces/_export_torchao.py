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
weights on another device) keep the exact tensors above in bfloat16, and :func:`torchao_model`
warns naming them and why.

On CUDA (a model on a CUDA device, or ``export(..., device="cuda")``) the same layers become
``Int4TilePackedTo4dTensor``, the tile-packed layout of torchao's ``Int4WeightOnlyConfig(
int4_packing_format="tile_packed_to_4d")``, whose ``F.linear`` is tinygemm's CUDA kernel
``_weight_int4pack_mm``: the same codes (packed two to a byte, then by
``_convert_weight_to_int4pack``), the same bfloat16 scales and float zeros, so the same weights
as on the CPU. The kernel needs compute capability 8.0 (Ampere) or later; the inputs are padded
to a multiple of 1024 and the outputs to a multiple of 8 (zero weights, sliced off by torchao).
Each tile-packed tensor is checked through the kernel against those weights before anything is
written. Symmetric int8 layers are ``Int8Tensor`` on either device: the tensor torchao's
``Int8WeightOnlyConfig`` makes, its codes exact and its float32 scales kept (the weight-only
linear multiplies by them in the activations' dtype).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._model import QuantInfo, usable_device

DTYPES = ("bfloat16",)
"""The ``dtype`` values of the ``torchao`` format besides ``None`` (the model's own)."""

INT4_GROUPS = (256, 128, 64, 32)
"""Group sizes the int4 kernels (CPU and CUDA tinygemm) take."""

CUDA_CAPABILITY = (8, 0)
"""The oldest CUDA compute capability tinygemm's int4 kernel runs on."""


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


def check_device(device: str | torch.device | None, format: str) -> torch.device | None:
    """The device ``export`` moves the applied model to, checked before anything is written:
    one torch knows and sees, for a format whose tensors depend on it."""
    if device is None:
        return None
    if format not in ("torchao", "torch"):
        raise ValueError(
            f"export: device= applies to format='torchao' and 'torch' only (their tensors "
            f"depend on the device; got format={format!r}); leave it out."
        )
    return usable_device(
        device, setting=f"export(device={device!r})", name="export: device",
        fix="export on a machine with one (torchao's CUDA int4 layout is built there), or leave "
        "device out",
    )  # fmt: skip


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
            tensor = _int4_tensor(name, codes, scale, zero, info)
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
            f"quantized layers stay off the int4 kernel (exact int8-stored tensors, "
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
    """Why the int4 kernel of the weight's device cannot hold the layer, or ``None``."""
    if info.bits > 4:
        return f"{info.bits} bits (the int4 kernel holds codes of at most 4 bits)"
    device = weight.device
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if capability < CUDA_CAPABILITY:
            return (
                f"on {device} of compute capability {capability[0]}.{capability[1]} "
                f"(tinygemm's int4 CUDA kernel needs {CUDA_CAPABILITY[0]}.{CUDA_CAPABILITY[1]})"
            )
    elif device.type != "cpu":
        return f"on {device} (torchao's int4 layouts here are for the CPU and CUDA)"
    elif weight.shape[0] % 16:
        return f"{weight.shape[0]} outputs (the CPU int4 layout packs a multiple of 16)"
    if _kernel_group(weight.shape[1] // scale.shape[1]) is None:
        return (
            f"groups of {weight.shape[1] // scale.shape[1]} inputs (the kernel's groups are "
            f"{'/'.join(map(str, INT4_GROUPS))}: a multiple of one is needed)"
        )
    return None


def _kernel_group(size: int) -> int | None:
    return next((g for g in INT4_GROUPS if size % g == 0), None)


def _int4_tensor(
    name: str, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, info: QuantInfo
) -> Any:
    """The tinygemm tensor of the codes for their device: ``Int4OpaqueTensor`` on the CPU,
    ``Int4TilePackedTo4dTensor`` on CUDA (checked through the kernel)."""
    q, scale_and_zero, kernel = tinygemm_parts(codes, scale, zero, symmetric=info.symmetric)
    if codes.device.type == "cpu":
        from torchao.prototype.quantization.int4 import (  # type: ignore[import-untyped]
            Int4OpaqueTensor,
        )

        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
        return Int4OpaqueTensor(packed, scale_and_zero, [1, kernel], codes.shape)
    tensor = _tile_packed(q, scale_and_zero, kernel)
    _check_kernel(name, tensor, q, scale_and_zero, kernel)
    return tensor


def tinygemm_parts(
    codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, *, symmetric: bool
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """tinygemm's unpacked form of a layer's codes ``[rows, inputs]`` and float32 scales and
    zero-points ``[rows, groups]``: int32 codes ``q`` in [0, 15], ``scale_and_zero``
    ``[kernel groups, rows, 2]`` in bfloat16 and the kernel's group size. The kernel's weight
    is ``(q - 8) * scale + zero`` per kernel group."""
    inputs = codes.shape[1]
    size = inputs // scale.shape[1]
    kernel = _kernel_group(size)
    if kernel is None:
        raise ValueError(f"groups of {size} inputs: the int4 kernel's are {INT4_GROUPS}")
    repeat = size // kernel  # a coarser group (or a whole row) is `repeat` kernel groups
    scale_b = scale.to(torch.bfloat16).repeat_interleave(repeat, dim=1)
    if symmetric:
        q, zero_f = codes + 8, torch.zeros_like(scale_b)
    else:
        q = codes
        zero_f = ((8 - zero).repeat_interleave(repeat, dim=1) * scale_b.float()).bfloat16()
    scale_and_zero = torch.stack([scale_b, zero_f], dim=-1).transpose(0, 1).contiguous()
    return q.to(torch.int32), scale_and_zero, kernel


def tile_padded(
    q: torch.Tensor, scale_and_zero: torch.Tensor, kernel: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q`` and ``scale_and_zero`` padded as torchao pads a weight for the CUDA tile layout
    (inputs to a multiple of 1024, rows to a multiple of 8): code 8 with scale and zero 0, so
    the padding's weights are 0."""
    rows, inputs = q.shape
    more_rows, more_inputs = -rows % 8, -inputs % 1024
    q = nn.functional.pad(q, (0, more_inputs, 0, more_rows), value=8)
    pad = (0, 0, 0, more_rows, 0, more_inputs // kernel)
    return q, nn.functional.pad(scale_and_zero, pad).contiguous()


def _tile_packed(q: torch.Tensor, scale_and_zero: torch.Tensor, kernel: int) -> Any:
    """An ``Int4TilePackedTo4dTensor`` (CUDA) of tinygemm's unpacked form."""
    from torchao.quantization import Int4TilePackedTo4dTensor  # type: ignore[import-untyped]

    shape = q.shape
    q, scale_and_zero = tile_padded(q, scale_and_zero, kernel)
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)  # as torchao's from_hp packs them
    packed = torch.ops.aten._convert_weight_to_int4pack(pairs.contiguous(), 8)
    return Int4TilePackedTo4dTensor(packed, scale_and_zero, [1, kernel], shape)


def _check_kernel(
    name: str, tensor: Any, q: torch.Tensor, scale_and_zero: torch.Tensor, kernel: int
) -> None:
    """The kernel's weights (``F.linear`` of the identity) against ``(q - 8) * scale + zero``,
    to the kernel's bfloat16 roundings of the product and the sum."""
    inputs = q.shape[1]
    group = torch.arange(inputs, device=q.device) // kernel
    scale, zero = (scale_and_zero[:, :, k].float().T[:, group] for k in (0, 1))
    product = (q.float() - 8) * scale
    want = product + zero
    eye = torch.eye(inputs, device=q.device, dtype=torch.bfloat16)
    with torch.no_grad():
        seen = nn.functional.linear(eye, tensor).float().T
    if not ((seen - want).abs() <= (product.abs() + zero.abs()) * 2**-7).all():
        worst = float((seen - want).abs().max())
        raise RuntimeError(
            f"export: {name}'s tile-packed int4 tensor does not run as its codes (max |dW| "
            f"{worst:.3g}); this is a bug in tradeoff, please report it."
        )


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
