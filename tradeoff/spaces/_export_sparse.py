"""2:4-pruned layers as semi-structured sparse tensors (``format="torch"``).

``torch.sparse.to_sparse_semi_structured`` stores a 2:4 weight as its kept half plus 2-bit
metadata and runs ``F.linear`` through CUTLASS or cuSPARSELt: CUDA only (half or bfloat16
weights; shapes the kernels tile). Elsewhere the layer stays a dense tensor holding zeros.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._model import PRUNE_ATTR

SPARSE_CHOICES = (None, True, False)


def check_sparse(sparse: bool | None, format: str) -> None:
    """Reject a ``sparse`` the format does not take (before anything is written)."""
    if sparse not in SPARSE_CHOICES:
        raise ValueError(f"export: sparse must be None (where possible), True or False: {sparse!r}")
    if sparse is not None and format != "torch":
        raise ValueError(
            f"export: sparse= applies to format='torch' only (got format={format!r}); leave it out."
        )


def semi_structured(model: nn.Module, sparse: bool | None) -> dict[str, str]:
    """Turn ``model``'s 2:4-pruned Linear weights into semi-structured sparse tensors, in
    place; layer -> ``"2:4 sparse"`` or why it stays dense.

    ``sparse=None`` converts where it can and warns naming the layers that stay dense;
    ``True`` refuses (before anything changes) unless every 2:4 layer converts; ``False``
    keeps all dense.

    Raises:
        ValueError: ``sparse=True`` and a 2:4 layer cannot be converted.
    """
    layers = {
        name: module
        for name, module in model.named_modules()
        if getattr(getattr(module, PRUNE_ATTR, None), "pattern", None) == "n:m"
    }
    if sparse is False or not layers:
        return {}
    outcome: dict[str, Any] = {name: _convert(name, module) for name, module in layers.items()}
    dense = {n: why for n, why in outcome.items() if isinstance(why, str)}
    if dense and sparse:
        listed = "\n  ".join(f"{n}: {why}" for n, why in dense.items())
        raise ValueError(
            f"export(sparse=True): {len(dense)} n:m layers cannot be semi-structured sparse "
            f"tensors; nothing was written:\n  {listed}\nExport on a CUDA device in float16 "
            "or bfloat16, or pass sparse=None to keep these layers dense."
        )
    if dense:
        listed = "\n  ".join(f"{n}: {why}" for n, why in dense.items())
        warnings.warn(
            f"export(format='torch'): {len(dense)} of {len(layers)} n:m-pruned layers stay "
            f"dense tensors holding zeros (no sparse speed-up):\n  {listed}",
            UserWarning,
            stacklevel=4,
        )
    report = {}
    for name, value in outcome.items():
        if isinstance(value, str):
            report[name] = f"dense: {value}"
        else:
            layers[name].weight = nn.Parameter(value, requires_grad=False)
            report[name] = "2:4 sparse"
    return report


def _convert(name: str, module: nn.Module) -> Any:
    """The semi-structured tensor of ``module``'s weight, or why there is none."""
    info = getattr(module, PRUNE_ATTR)
    found: Any = getattr(module, "weight", None)
    if not isinstance(module, nn.Linear) or not isinstance(found, torch.Tensor):
        return f"{type(module).__name__} (semi-structured sparsity is for nn.Linear)"
    if (info.n, info.m) != (2, 4):
        return f"{info.n}:{info.m} (the sparse kernels take 2:4)"
    weight = found.detach()
    if weight.device.type != "cuda":
        return f"on {weight.device.type} (semi-structured sparse tensors need CUDA)"
    if weight.dtype not in (torch.float16, torch.bfloat16):
        return f"{weight.dtype} (the sparse kernels take float16 or bfloat16; cast the model)"
    try:
        from torch.sparse import to_sparse_semi_structured

        return to_sparse_semi_structured(weight)
    except (RuntimeError, ValueError) as error:
        return f"torch refused it: {str(error).splitlines()[0]}"
