"""Calibration statistics for GPTQ: each layer's input second moment ``H = X^T X / n``.

``X`` ``[n, in]`` holds the rows a layer multiplies by its weight ``[out, in]``: the last
dimension of an ``nn.Linear`` input (all leading dimensions are rows), or the ``unfold``
patches of an ``nn.Conv2d`` input (``in = in_channels * kh * kw``, one row per output position).
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

TOKENS_PER_INPUT = 8
"""Calibration rows per input feature below which :func:`collect_hessians` warns. GPTQ fits the
calibration rows; with few of them it does worse than RTN on new inputs. Measured at 3 bits,
group 128, on SmolLM2's down_proj (1536 inputs, Hamlet; ``benchmarks/quantizers.py``): held-out
error GPTQ / RTN 1.24 at 1x, 1.04 at 2x, 0.91 at 4x, 0.85 at 8x, 0.82 at 16x in-features
tokens. 8x is where most of the gain is in; MiniLM-L6's layers gain from 1x on."""

CHUNK_ROWS = 4096  # rows per float32 product; bounds the temporary memory of a batch


def tokens_needed(in_features: int, factor: int = TOKENS_PER_INPUT) -> int:
    """Calibration rows (tokens, or conv output positions) a layer of ``in_features`` inputs
    should see before GPTQ's fit carries over to new inputs: ``factor * in_features``."""
    if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"tokens_needed: in_features must be an int >= 1, got {in_features!r}.")
    return factor * in_features


@torch.no_grad()
def collect_hessians(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    layers: Sequence[str],
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Input second moments ``X^T X / n`` of ``layers``, from one pass over ``batches``.

    Each batch is called as ``model(batch)``, ``model(*batch)`` (tuple or list) or
    ``model(**batch)`` (dict), its tensors moved to ``device``. The model runs in eval mode
    (no dropout, no BatchNorm statistics updated) and is left as it was: training flags
    restored, hooks removed, even if a forward fails.

    Sums are accumulated in float64 (each chunk's product in float32, fast on any device):
    with millions of rows, a float32 running sum would lose the small eigenvalues GPTQ
    inverts. Warns, naming the counts, when a layer saw fewer than :func:`tokens_needed` rows.

    Args:
        model: The float model; not modified.
        batches: Calibration inputs (any iterable, read once).
        layers: Names of ``nn.Linear`` or ``nn.Conv2d`` modules (``model.named_modules()``).
        device: Where the batches go and the sums live (the model must be there already; it is
            not moved); default, the device of its parameters.

    Returns:
        Layer name -> ``[in, in]`` float64 tensor on ``device`` (``in * kh * kw`` for a conv).

    Raises:
        ValueError: a name matches no module, no batch was given, or a layer saw no input.
        TypeError: a layer is neither ``nn.Linear`` nor ``nn.Conv2d`` (groups 1).
    """
    modules = _layers(model, layers)
    device = torch.device(device) if device is not None else _device_of(model)
    shared: dict[int, _Product] = {}  # Linear layers fed the same tensor (q, k, v) share XᵀX
    sums = {name: _Moment(_in_features(m), device, shared) for name, m in modules.items()}
    handles = []
    modes = {m: m.training for m in model.modules()}
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(sums[name].hook))
        model.eval()
        if _run(model, batches, device) == 0:
            raise ValueError("collect_hessians: batches is empty; give at least one batch.")
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.train(training)
    return {name: moment.mean(name) for name, moment in sums.items()}


class _Product:
    """``X^T X`` of one input tensor, kept while that tensor lives, for the other Linear
    layers it feeds (a block's q, k and v projections read one normalized hidden state)."""

    def __init__(self, x: torch.Tensor, product: torch.Tensor, rows: int) -> None:
        self.ref, self.version = weakref.ref(x), x._version
        self.product, self.rows = product, rows

    def of(self, x: torch.Tensor) -> bool:
        return self.ref() is x and self.version == x._version


class _Moment:
    """Running ``X^T X`` (float64) and row count of one layer's inputs."""

    def __init__(self, n: int, device: torch.device, shared: dict[int, _Product]) -> None:
        self.sum = torch.zeros(n, n, dtype=torch.float64, device=device)
        self.rows = 0
        self.shared = shared

    def hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        known = self.shared.get(id(x)) if isinstance(module, nn.Linear) else None
        if known is not None and known.of(x) and known.product.shape == self.sum.shape:
            self.sum += known.product
            self.rows += known.rows
            return
        product = torch.zeros_like(self.sum)
        rows = 0
        for chunk in _rows(module, x.detach()):
            c = chunk.to(self.sum.device, torch.float32)
            product += (c.T @ c).to(torch.float64)
            rows += c.shape[0]
        self.sum += product
        self.rows += rows
        if isinstance(module, nn.Linear):
            key = id(x)
            self.shared[key] = _Product(x, product, rows)
            weakref.finalize(x, self.shared.pop, key, None)

    def mean(self, name: str) -> torch.Tensor:
        n = self.sum.shape[0]
        if self.rows == 0:
            raise ValueError(f"collect_hessians: layer {name!r} saw no input; is it used?")
        if self.rows < tokens_needed(n):
            warnings.warn(
                f"collect_hessians: layer {name!r} saw {self.rows} calibration rows for {n} "
                f"inputs; GPTQ needs at least {tokens_needed(n)} ({TOKENS_PER_INPUT}x inputs) "
                "to beat round-to-nearest on new inputs. Calibrate on more tokens.",
                UserWarning,
                stacklevel=3,
            )
        return self.sum / self.rows


def _rows(module: nn.Module, x: torch.Tensor) -> Iterable[torch.Tensor]:
    """``x`` as chunks of rows ``[k, in]`` (at most about ``CHUNK_ROWS`` each)."""
    if isinstance(module, nn.Linear):
        flat = x.reshape(-1, x.shape[-1])
        yield from torch.split(flat, CHUNK_ROWS)
        return
    assert isinstance(module, nn.Conv2d)  # _layers checked the types
    for part in torch.split(
        x, max(1, CHUNK_ROWS // _positions(module, x))
    ):  # a few images at a time
        patches = F.unfold(
            _pad(module, part), module.kernel_size, module.dilation, 0, module.stride
        )
        yield patches.transpose(1, 2).reshape(-1, patches.shape[1])


def _positions(module: nn.Conv2d, x: torch.Tensor) -> int:
    """Output positions per image."""
    h, w = _pad(module, x[:1]).shape[-2:]
    sizes = zip((h, w), module.kernel_size, module.dilation, module.stride)
    return max(1, math.prod((n - d * (k - 1) - 1) // s + 1 for n, k, d, s in sizes))


def _pad(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``x`` padded as ``module`` pads it (zeros, reflect, replicate or circular; "same")."""
    padding: Any = module.padding
    if padding == "valid":
        return x
    pads: list[int] = []
    for i in (1, 0):  # F.pad lists the last dimension first
        if padding == "same":
            total = module.dilation[i] * (module.kernel_size[i] - 1)
            pads += [total // 2, total - total // 2]
        else:
            pads += [int(padding[i])] * 2
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    return F.pad(x, pads, mode=mode) if any(pads) else x


def _run(model: nn.Module, batches: Iterable[Any], device: torch.device) -> int:
    count = 0
    for batch in batches:
        moved = _to(batch, device)
        if isinstance(moved, Mapping):
            model(**moved)
        elif isinstance(moved, (tuple, list)):
            model(*moved)
        else:
            model(moved)
        count += 1
    return count


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _layers(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    if isinstance(names, str):
        raise TypeError("collect_hessians: layers takes a sequence of names, not one string.")
    found = dict(model.named_modules())
    missing = [n for n in names if n not in found]
    if missing or not names:
        raise ValueError(
            f"collect_hessians: layers {missing or '[]'} not in the model; give module names "
            f"from model.named_modules(), e.g. {[n for n in found if n][:5]}."
        )
    for name in names:
        module = found[name]
        ok = isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)
        if not ok:
            raise TypeError(
                f"collect_hessians: layer {name!r} is a {type(module).__name__}; only nn.Linear "
                "and nn.Conv2d with groups=1 have a GPTQ Hessian."
            )
    return {name: found[name] for name in dict.fromkeys(names)}


def _in_features(module: nn.Module) -> int:
    weight = module.weight
    return int(weight[0].numel()) if isinstance(weight, torch.Tensor) else 0


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
