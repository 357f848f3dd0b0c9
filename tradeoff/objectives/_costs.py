"""Cost functions on a torch model: size, compute, and measured speed and memory.

Static costs read what the spaces record on compressed modules (``QuantInfo`` / ``PruneInfo``,
see :mod:`tradeoff.spaces._model`); :func:`model_cost` makes one a known cost for
``Objective(fn=...)``. Measured costs (:func:`latency_ms`, :func:`peak_memory_mb`) belong on the
worker. Everything runs on the model's device. ``sample_input`` is a tensor (``model(x)``), a
tuple of positional inputs (``model(*x)``) or a mapping of keyword inputs (``model(**x)``).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tradeoff.objectives._objective import CostFn
from tradeoff.spaces._model import PRUNE_ATTR, QUANT_ATTR, PruneInfo, QuantInfo, model_device
from tradeoff.spaces._space import SearchSpace

if TYPE_CHECKING:
    from tradeoff.objectives._analytic import ModelCost

COUNTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # the layers macs/bitops count
_Layer = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d

# Layer name -> (output numel / out channels summed over calls, input dtype bits); MACs =
# that * weight numel, for Linear and any Conv.
_Trace = dict[str, tuple[int, int]]

logger = logging.getLogger("tradeoff")


# Parameter counts and storage ---------------------------------------------------------------
def parameters(model: nn.Module) -> int:
    """Number of parameter values; tied (shared) parameters are counted once."""
    return sum(p.numel() for p in _check_model(model).parameters())


def nonzero_parameters(model: nn.Module) -> int:
    """Number of non-zero parameter values; tied parameters are counted once."""
    counts = [torch.count_nonzero(p.detach()) for p in _check_model(model).parameters()]
    if not counts:
        return 0
    return int(torch.stack([c.to(counts[0].device) for c in counts]).sum().item())  # one sync


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameter values with ``requires_grad`` (e.g. PEFT adapters only)."""
    return sum(p.numel() for p in _check_model(model).parameters() if p.requires_grad)


def weight_storage_bytes(model: nn.Module) -> float:
    """Bytes (fractional) to store the parameters at their chosen bit-widths.

    Tied parameters count once. ``bits`` is ``QuantInfo.bits``, else the dtype's width:

    * a quantized layer's weight: ``numel * bits / 8`` plus 2 bytes per scale (float16);
    * an ``"unstructured"``-pruned weight: the cheaper of dense and ``nonzeros * bits / 8``
      plus a 1-bit-per-element bitmask;
    * an ``"n:m"``-pruned weight: ``ceil(numel * n / m)`` kept values of ``bits`` plus
      ``ceil(log2(m))`` index bits each; a ``"channel"``-pruned layer is simply smaller;
    * any other parameter (bias, norm, embedding, adapter...): its dtype's size. Buffers are
      not counted.

    Raises:
        ValueError: a ``PruneInfo`` with an unknown pattern or invalid ``n``/``m``.
    """
    owned = _owned_parameters(_check_model(model)).values()
    return sum((_param_bytes(param.detach(), layer) for param, layer in owned), 0.0)


def _owned_parameters(model: nn.Module) -> dict[int, tuple[torch.Tensor, nn.Module | None]]:
    """Unique parameters, each with the compressed layer whose ``weight`` it is (or None)."""
    owned: dict[int, tuple[torch.Tensor, nn.Module | None]] = {}
    for module in model.modules():
        compressed = hasattr(module, QUANT_ATTR) or hasattr(module, PRUNE_ATTR)
        for name, param in module.named_parameters(recurse=False):
            layer = module if compressed and name == "weight" else None
            if id(param) not in owned or layer is not None:
                owned[id(param)] = (param, layer)
    return owned


def _param_bytes(weight: torch.Tensor, layer: nn.Module | None) -> float:
    quant: QuantInfo | None = getattr(layer, QUANT_ATTR, None)
    prune: PruneInfo | None = getattr(layer, PRUNE_ATTR, None)
    bits = quant.bits if quant is not None else _dtype_bits(weight)
    pattern = prune.pattern if prune is not None else None
    nonzeros = int(torch.count_nonzero(weight).item()) if pattern == "unstructured" else 0
    n_scales = quant.n_scales if quant is not None else 0
    n, m = (prune.n, prune.m) if prune is not None else (None, None)
    return stored_bytes(weight.numel(), bits, n_scales, pattern, nonzeros, n, m)


def stored_bytes(
    numel: int,
    bits: int,
    n_scales: int,
    pattern: str | None = None,
    nonzeros: int = 0,
    n: int | None = None,
    m: int | None = None,
) -> float:
    """Bytes of one weight of ``numel`` values at ``bits`` each with ``n_scales`` float16
    scales, pruned with ``pattern`` (``None`` or ``"channel"``: stored dense) to ``nonzeros``
    non-zero values (``"unstructured"``) or ``n`` of every ``m`` (``"n:m"``)."""
    scales = 2.0 * n_scales
    dense = numel * bits / 8
    if pattern is None or pattern == "channel":
        return dense + scales
    if pattern == "unstructured":
        return min(dense, nonzeros * bits / 8 + numel / 8) + scales
    if pattern != "n:m":
        raise ValueError(f"Unknown PruneInfo pattern {pattern!r}; use 'unstructured', 'n:m'.")
    if n is None or m is None or not 0 < n <= m:
        raise ValueError(f"PruneInfo with pattern 'n:m' needs 0 < n <= m, got n={n}, m={m}.")
    return math.ceil(numel * n / m) * (bits + math.ceil(math.log2(m))) / 8 + scales


# Compute: MACs and bit-ops -------------------------------------------------------------------
def macs(model: nn.Module, sample_input: Any) -> int:
    """Multiply-accumulates of one forward pass of ``sample_input`` (the whole batch).

    Every call of a :data:`COUNTED_TYPES` layer counts output positions x weight elements
    (exact for strided, padded, grouped convolutions). Not counted: attention score matmuls,
    elementwise ops, norms, direct ``F.linear`` calls. Pruned zeros are counted.
    """
    return _total(model, _trace(model, sample_input, "macs"), bits=False)


def bitops(model: nn.Module, sample_input: Any) -> float:
    """Bit-operations of one forward pass: the sum over :func:`macs`' layers of ``MACs *
    weight_bits * activation_bits``, from ``QuantInfo`` (``bits``, ``act_bits``) or else the
    dtype's width (32 for float32)."""
    return float(_total(model, _trace(model, sample_input, "bitops"), bits=True))


def _total(model: nn.Module, trace: _Trace, *, bits: bool) -> int:
    """Sum of MACs (times weight and activation bits if ``bits``) over the traced layers."""
    total = 0
    for name, layer in _counted_layers(model).items():
        positions, a_bits = trace.get(name, (0, 0))
        quant: QuantInfo | None = getattr(layer, QUANT_ATTR, None)
        w_bits = quant.bits if quant is not None else _dtype_bits(layer.weight)
        a_bits = quant.act_bits if quant is not None and quant.act_bits else a_bits
        total += positions * layer.weight.numel() * (w_bits * a_bits if bits else 1)
    return total


def _counted_layers(model: nn.Module) -> dict[str, _Layer]:
    return {n: m for n, m in _check_model(model).named_modules() if isinstance(m, COUNTED_TYPES)}


def _trace(model: nn.Module, sample_input: Any, what: str) -> _Trace:
    """Run one forward pass (eval, no grad) and record every counted layer's shapes."""
    layers = _counted_layers(model)
    names = {id(layer): name for name, layer in layers.items()}
    positions = dict.fromkeys(layers, 0)
    act_bits = {name: _dtype_bits(layer.weight) for name, layer in layers.items()}

    def hook(layer: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        name = names[id(layer)]
        if isinstance(output, torch.Tensor):
            positions[name] += output.numel() // layers[name].weight.shape[0]
        if args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
            act_bits[name] = _dtype_bits(args[0])

    inputs = _prepare(sample_input, what, model_device(model), None)
    handles = [layer.register_forward_hook(hook) for layer in layers.values()]
    try:
        with _inference(model):
            _forward(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: (positions[name], act_bits[name]) for name in layers}


# Measured: latency and peak memory ----------------------------------------------------------
def latency_ms(
    model: nn.Module,
    sample_input: Any,
    *,
    batch_size: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
    device: str | torch.device | None = None,
) -> float:
    """Median wall time of one forward pass (eval mode, no grad), in milliseconds.

    Args:
        model: The model; moved to ``device`` (in place) if that is given and differs.
        sample_input: An example input (see the module docstring).
        batch_size: Repeat or slice every input tensor along dim 0 to this batch size.
        warmup: Untimed runs first.
        repeats: Timed runs; their median is returned.
        threads: ``torch.set_num_threads`` during the measurement; restored after.
        device: Where to run; the model's device by default. CUDA is synchronized per run.
    """
    _check_int("warmup", warmup, 0)
    _check_int("repeats", repeats, 1)
    if threads is not None:
        _check_int("threads", threads, 1)
    target = _place(_check_model(model), device)
    inputs = _prepare(sample_input, "latency_ms", target, batch_size)
    times: list[float] = []
    with _num_threads(threads), _inference(model):
        for run in range(warmup + repeats):
            _sync(target)
            start = time.perf_counter()
            _forward(model, inputs)
            _sync(target)
            if run >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def peak_memory_mb(
    model: nn.Module, sample_input: Any, *, device: str | torch.device | None = None
) -> float:
    """Peak memory of one forward pass (eval mode, no grad), in MiB.

    The model's parameters and buffers as held (simulated-quantized weights count at float
    size), plus the peak the forward allocates on top: an input copy, activations, workspaces.
    A first, unmeasured forward keeps one-off set-up out. On CUDA the forward's part is
    ``torch.cuda.max_memory_allocated`` (reset first) minus the allocation before it; on CPU,
    the peak of the running sum of allocations and frees ``torch.profiler`` records with
    ``profile_memory=True``: all of PyTorch's CPU allocator, not memory libraries allocate on
    their own nor allocator caching (this is not the process RSS). ``model`` and ``device`` are
    as in :func:`latency_ms` (``"cpu"`` or ``"cuda"`` only).
    """
    target = _place(_check_model(model), device, kinds=("cpu", "cuda"))
    inputs = _prepare(sample_input, "peak_memory_mb", target, None)

    def run() -> None:
        _forward(model, _map_tensors(inputs, lambda t: t.clone()))

    with _inference(model):
        run()
        extra = _cuda_peak_bytes(run, target) if target.type == "cuda" else _cpu_peak_bytes(run)
    resident = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return (resident + extra) / 2**20


def _cuda_peak_bytes(run: Callable[[], None], device: torch.device) -> int:
    torch.cuda.reset_peak_memory_stats(device)  # allocation stats are kept on the host
    before = torch.cuda.memory_allocated(device)
    run()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - before)


def _cpu_peak_bytes(run: Callable[[], None]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    results: Any = getattr(prof.profiler, "kineto_results", None)
    if results is None:
        raise RuntimeError("torch.profiler recorded no events; CPU peak memory is unavailable.")
    live = peak = 0
    for event in sorted(results.events(), key=lambda e: e.start_ns()):
        if event.name() == "[memory]" and event.device_type().name in ("CPU", "MKLDNN", "IDEEP"):
            live += event.nbytes()  # negative for a free
            peak = max(peak, live)
    return peak


# Known costs for Objective(fn=...) -----------------------------------------------------------
def model_cost(
    space: SearchSpace, model: nn.Module, metric: Callable[..., float], *, sample_input: Any = None
) -> ModelCost:
    """A known cost for ``Objective(fn=...)``: ``fn(config) = metric(space.apply(model,
    config)[, sample_input])`` (``sample_input`` passed when given).

    For this module's :func:`parameters`, :func:`trainable_parameters`,
    :func:`nonzero_parameters`, :func:`weight_storage_bytes`, :func:`macs` and :func:`bitops`
    on a space whose model-aware parts are a ``PruningSpace``, a ``QuantizationSpace`` and/or
    an elastic ``ArchitectureSpace`` (dropped blocks, FFN widths, head counts; with pruning
    patterns other than ``"channel"``), ``fn`` computes the same number from per-layer tables,
    without copying the model (``fn.analytic`` is True; microseconds, plus one pass over a
    layer's weight the first time a Config puts it in a new state; see
    :mod:`tradeoff.objectives._analytic`). :func:`macs` and :func:`bitops` then trace
    ``model`` once, here. Any other metric or space (``ArchitectureSpace.from_builder``, PEFT
    parts, your own spaces, a pruned weight tied to another layer's) costs a ``space.apply``
    per call (deep copy plus compression; :func:`macs` and :func:`bitops` trace on the first
    call and retrace only for an ``arch`` part or layers the trace did not see, such as PEFT
    adapters).
    ``fn.batch(configs)`` returns the costs of many Configs as an array.

    Raises:
        TypeError: ``space``, ``model`` or ``metric`` has the wrong type.
        ValueError: ``metric`` runs the model and ``sample_input`` is missing.
    """
    if not isinstance(space, SearchSpace):
        raise TypeError(f"model_cost: space must be a SearchSpace, got {type(space).__name__}.")
    _check_model(model)
    if not callable(metric):
        raise TypeError(f"model_cost: metric must be callable, got {metric!r}.")
    if metric in (macs, bitops, latency_ms, peak_memory_mb):
        _require_input(sample_input, getattr(metric, "__name__", "metric"))
    from tradeoff.objectives._analytic import KINDS, ModelCost, Table, Unsupported

    fallback = _applied_cost(space, model, metric, sample_input)
    kind = next((k for fn, k in KINDS.items() if fn is metric), None)
    if kind is None:  # the user's own metric: only the apply path knows it
        return ModelCost(fallback)
    traced = metric is macs or metric is bitops
    try:
        table = Table(space, model, (lambda: _trace(model, sample_input, kind)) if traced else None)
        fast = table.fast(kind)
    except Unsupported as e:
        logger.debug("model_cost(%s): %s, so each call applies the Config to a copy.", kind, e)
        return ModelCost(fallback)
    return ModelCost(fallback, fast)


def _applied_cost(
    space: SearchSpace, model: nn.Module, metric: Callable[..., float], sample_input: Any
) -> CostFn:
    """``fn(config)`` that applies the Config to a copy of ``model`` and measures it."""
    if metric is macs or metric is bitops:
        return _traced_cost(space, model, metric is bitops, sample_input)

    def cost(config: Mapping[str, Any]) -> float:
        applied = space.apply(model, config)
        return float(metric(applied) if sample_input is None else metric(applied, sample_input))

    return cost


def _traced_cost(space: SearchSpace, model: nn.Module, bits: bool, sample_input: Any) -> CostFn:
    """``fn(config)`` for MACs or bit-ops, reusing one trace of the unmodified model."""
    what = "bitops" if bits else "macs"
    # An arch part may change layers' output positions (strides, kernel sizes...).
    retrace = any(getattr(p, "stage", None) == "arch" for p in [space, *space.children.values()])
    dense: list[_Trace] = []  # traced on the first call

    def cost(config: Mapping[str, Any]) -> float:
        applied = space.apply(model, config)
        if not retrace and not dense:
            dense.append(_trace(model, sample_input, what))
        if dense and set(_counted_layers(applied)) <= set(dense[0]):
            return float(_total(applied, dense[0], bits=bits))
        return float(_total(applied, _trace(applied, sample_input, what), bits=bits))

    return cost


# Helpers -------------------------------------------------------------------------------------
def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    return model


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _require_input(sample_input: Any, what: str) -> Any:
    if sample_input is None:
        raise ValueError(
            f"{what} runs the model and needs sample_input, e.g. torch.randn(1, 3, 224, 224)."
        )
    return sample_input


def _dtype_bits(tensor: torch.Tensor) -> int:
    return tensor.element_size() * 8


def _place(model: nn.Module, device: Any, kinds: tuple[str, ...] = ()) -> torch.device:
    """The device to run on (one of ``kinds`` if given); moves the model there if needed."""
    target = model_device(model) if device is None else torch.device(device)
    if kinds and target.type not in kinds:
        raise ValueError(f"Can only measure on {list(kinds)}, not {target.type!r}.")
    if model_device(model) != target:
        model.to(target)
    return target


def _prepare(sample_input: Any, what: str, device: torch.device, batch_size: int | None) -> Any:
    """``sample_input`` on ``device``, resized to ``batch_size`` along dim 0 if given."""
    inputs = _require_input(sample_input, what)
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
        inputs = _map_tensors(inputs, lambda t: _resize_batch(t, batch_size))
    return _map_tensors(inputs, lambda t: t.to(device))


def _resize_batch(tensor: torch.Tensor, size: int) -> torch.Tensor:
    return torch.cat([tensor] * math.ceil(size / len(tensor)))[:size] if tensor.dim() else tensor


def _map_tensors(inputs: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, (tuple, list)):
        items = [_map_tensors(x, fn) for x in inputs]
        return tuple(items) if isinstance(inputs, tuple) else items
    if isinstance(inputs, Mapping):
        return {k: _map_tensors(v, fn) for k, v in inputs.items()}
    return inputs


def _forward(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, tuple):
        return model(*inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(inputs)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _inference(
    model: nn.Module, grad_mode: Callable[[], AbstractContextManager[Any]] = torch.no_grad
) -> Iterator[None]:
    """Eval mode and ``grad_mode`` (no grad, or ``torch.inference_mode``); restores each
    module's training flag after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with grad_mode():
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    """Pin ``torch.set_num_threads`` to ``threads`` (if given), restoring it after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
