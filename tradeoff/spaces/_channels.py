"""Structured (channel) pruning: which layers can lose output channels, and the surgery.

A layer is channel-prunable when its output reaches exactly one consumer (a plain ``nn.Linear``
or ``nn.ConvNd`` with ``groups=1``; its matching inputs go) through one chain of ops that keep
channels apart: elementwise activations and dropout (``nn.ReLU``, ``F.gelu``, ``x.relu()``),
BatchNorm (shrunk too), pooling (convolutions only), and one flatten to ``(batch, -1)`` from a
convolution into a ``Linear`` (``nn.Flatten()``, ``torch.flatten(x, 1)``,
``x.view(x.size(0), -1)``), where each channel feeds ``H * W`` inputs: shape propagation with
``sample_input`` tells how many.

Not prunable: a layer whose output is used twice (a residual add or a concat would need every
branch pruned together) or is the model's output (its size would change), grouped convolutions,
subclasses of ``Linear``/``ConvNd`` (their forward may rely on sizes), modules called more than
once, and layers sharing a weight.
"""

from __future__ import annotations

import copy
import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from tradeoff.spaces._model import find_module

PRODUCER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PASS_MODULES = (
    *(nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish),
    *(nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Identity),
    *(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout),
)
_POOL_MODULES = (
    *(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
    *(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
    *(nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
)
_PASS_FUNCTIONS: set[Any] = {
    *(torch.relu, F.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish),
    *(torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.hardtanh, F.hardswish, F.hardsigmoid),
    *(F.softplus, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout),
    *("relu", "sigmoid", "tanh", "contiguous"),  # tensor methods
}
_POOL_FUNCTIONS: set[Any] = {
    *(F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d),
    *(F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d),
    *(F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d),
}


@dataclass(frozen=True)
class ChannelGroup:
    """A layer whose output channels can be removed, and the modules that must shrink with it.

    Attributes:
        producer: The layer losing output channels.
        consumer: The layer reading them, losing the matching input channels/features.
        norms: BatchNorm layers in between, losing the matching features.
        features_per_channel: Consumer input features per producer channel (``H * W`` after a
            flatten, else 1).
    """

    producer: str
    consumer: str
    norms: tuple[str, ...] = ()
    features_per_channel: int = 1


@dataclass
class _Chain:
    conv: bool
    norms: list[str]
    mult: int | None = 1
    flattened: bool = False


@dataclass
class _Graph:
    gm: fx.GraphModule
    calls: Counter[str]  # call_module nodes per module name
    shared: set[int]  # ids of parameters used by more than one module

    def module(self, name: object) -> nn.Module:
        return self.gm.get_submodule(str(name))

    def problem(self, name: str) -> str:
        """Why the layer ``name`` cannot change size, or ``""``."""
        calls = self.calls[name]
        if calls == 0:  # the traced GraphModule keeps only the modules forward calls
            return "it is not called in forward"
        module = self.module(name)
        if type(module) not in PRODUCER_TYPES:
            kind = type(module).__name__
            return f"only plain Linear and Conv1d/2d/3d layers are supported, not {kind}"
        if getattr(module, "groups", 1) != 1:
            return "it is a grouped (or depthwise) convolution"
        if calls != 1:
            return f"it is called {calls} times"
        return "its weight is shared with another layer" if id(module.weight) in self.shared else ""


def channel_groups(
    model: nn.Module, layers: Iterable[str], sample_input: Any = None
) -> tuple[dict[str, ChannelGroup], dict[str, str]]:
    """The group of each channel-prunable layer of ``layers``, and why each other is not.

    ``model`` is traced (and, with ``sample_input``, shape-propagated) as a copy on the ``meta``
    device: it is neither run nor changed. ``sample_input`` is one batch of model input (a
    tensor, or a tuple of positional inputs).

    Raises:
        ValueError: the model cannot be traced or run on ``sample_input``, or a layer needs
            ``sample_input`` to be analysed and none was given.
    """
    graph = _trace(model, sample_input)
    found = {name: _group_of(graph, name) for name in layers}
    groups = {k: v for k, v in found.items() if isinstance(v, ChannelGroup)}
    return groups, {k: v for k, v in found.items() if isinstance(v, str)}


def prune_channels(
    model: nn.Module, group: ChannelGroup, sparsity: float, *, consumer_m: int | None = None
) -> int | None:
    """Remove the ``round(C * sparsity)`` output channels of lowest L2 weight norm, in place.

    At least one channel is kept. With ``consumer_m`` (the consumer is n:m-pruned next), the
    number kept is rounded up so the consumer's input per output stays a multiple of ``m``.

    Returns:
        The producer's original number of output channels, or ``None`` if nothing was removed
        (no channel to remove, or an earlier stage removed a layer of the group).

    Raises:
        ValueError: the layers' sizes no longer line up (an earlier stage resized them).
    """
    producer = find_module(model, group.producer)
    consumer = find_module(model, group.consumer)
    norms = [m for m in (find_module(model, n) for n in group.norms) if m is not None]
    if producer is None or consumer is None or len(norms) != len(group.norms):
        return None
    c = int(_weight(producer).shape[0])
    problem = _size_problem(group, c, consumer, norms)
    if problem:
        raise ValueError(
            f"Cannot channel-prune {group.producer!r}: {problem}. An earlier stage resized these "
            "layers; build the PruningSpace on the model as the earlier stages leave it."
        )
    kept = _kept_count(c, sparsity, consumer, consumer_m)
    if kept == c:
        return None
    keep = _strongest(_weight(producer), kept)
    inputs = _expand(keep, group.features_per_channel)
    with torch.no_grad():
        _shrink(producer, ("weight", "bias"), keep, dim=0, size_attr=_size_attrs(producer)[0])
        for norm in norms:
            names = ("weight", "bias", "running_mean", "running_var")
            _shrink(norm, names, keep, dim=0, size_attr="num_features")
        _shrink(consumer, ("weight",), inputs, dim=1, size_attr=_size_attrs(consumer)[1])
    return c


# Analysis ----------------------------------------------------------------------------------
def _trace(model: nn.Module, sample_input: Any) -> _Graph:
    # A meta-device copy: tracing and shape propagation never touch real weights, BatchNorm
    # statistics or the random state, and the copy costs no weight memory.
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    meta = copy.deepcopy(model, memo).eval()
    try:
        gm = fx.symbolic_trace(meta)
    except Exception as e:
        raise ValueError(
            f"Channel pruning traces the model with torch.fx.symbolic_trace, which failed: {e}. "
            "Make forward traceable, or use pattern='unstructured' or 'n:m'."
        ) from e
    if sample_input is not None:
        _propagate(gm, sample_input)
    calls = Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_module")
    counts = Counter(id(p) for _, p in meta.named_parameters(remove_duplicate=False))
    return _Graph(gm, calls, {k for k, v in counts.items() if v > 1})


class _Shapes(fx.Interpreter):
    """Runs a graph, recording each tensor's shape as ``node.meta["shape"]``."""

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as e:
            raise ValueError(f"at {n.op} {n.target!r}: {e}") from e
        if isinstance(result, torch.Tensor):
            n.meta["shape"] = tuple(int(d) for d in result.shape)
        return result


def _propagate(gm: fx.GraphModule, sample_input: Any) -> None:
    args = sample_input if isinstance(sample_input, (tuple, list)) else (sample_input,)
    metas = [torch.empty_like(a, device="meta") if isinstance(a, torch.Tensor) else a for a in args]
    shapes = _Shapes(gm)
    shapes.extra_traceback = False  # keep the error short; ours names the node
    try:
        shapes.run(*metas)
    except ValueError as e:
        raise ValueError(
            f"sample_input does not run through the model ({e}); pass one batch of the model's "
            "input, e.g. torch.randn(1, 3, 32, 32) for an image model."
        ) from e


def _group_of(graph: _Graph, name: str) -> ChannelGroup | str:
    problem = graph.problem(name)
    if problem:
        return problem
    node = next(n for n in graph.gm.graph.nodes if n.op == "call_module" and n.target == name)
    chain = _Chain(conv=not isinstance(graph.module(name), nn.Linear), norms=[])
    while True:
        users = [u for u in node.users if not _is_batch_size_query(u)]
        if len(users) != 1:
            used_by = ", ".join(_describe(graph, u) for u in users)
            return f"its output is used by {len(users)} operations ({used_by}), as in a residual"
        verdict = _step_into(graph, node, users[0], chain)
        if verdict == "consumer":
            return _finish(graph, name, str(users[0].target), chain)
        if verdict:
            return verdict
        node = users[0]


def _step_into(graph: _Graph, src: fx.Node, node: fx.Node, chain: _Chain) -> str:
    """``""`` to walk on through ``node``, ``"consumer"``, or why the chain stops here."""
    if node.op == "output":
        return "its output is the model's output, so removing channels would change its size"
    kind = _kind(graph, src, node)
    if kind == "pass" or (kind == "pool" and chain.conv and not chain.flattened):
        return ""
    if kind == "norm" and not chain.flattened:
        chain.norms.append(str(node.target))
        return ""
    if kind == "flatten" and chain.conv and not chain.flattened:
        chain.flattened, chain.mult = True, _features_per_channel(src)
        return ""
    if kind == "consumer":
        return kind
    what = _describe(graph, node)
    if len(node.all_input_nodes) > 1:
        return f"its output feeds {what}, which combines it with another tensor (residual/concat)"
    return f"its output feeds {what}, which channel pruning cannot see through"


def _kind(graph: _Graph, src: fx.Node, node: fx.Node) -> str:
    if node.op == "call_method" and node.target in ("view", "reshape") and node.args[0] is src:
        return "flatten" if _is_batch_view(node) else "other"
    if node.all_input_nodes != [src]:
        return "other"
    if node.op == "call_module":
        return _module_kind(graph.module(node.target))
    if node.target in (torch.flatten, "flatten"):  # function or method
        return "flatten" if _flatten_dims(node) == (1, -1) else "other"
    if node.target in _PASS_FUNCTIONS:
        return "pass"
    return "pool" if node.target in _POOL_FUNCTIONS else "other"


def _module_kind(m: nn.Module) -> str:
    if isinstance(m, nn.Flatten):
        return "flatten" if (m.start_dim, m.end_dim) == (1, -1) else "other"
    if isinstance(m, _PASS_MODULES):
        return "pass"
    if isinstance(m, _POOL_MODULES):
        return "pool"
    if type(m) in _NORMS:
        return "norm"
    return "consumer" if type(m) in PRODUCER_TYPES else "other"


def _finish(graph: _Graph, name: str, consumer_name: str, chain: _Chain) -> ChannelGroup | str:
    problem = graph.problem(consumer_name)
    if problem:
        return f"its consumer {consumer_name!r} cannot shrink: {problem}"
    consumer = graph.module(consumer_name)
    if isinstance(consumer, nn.Linear) != (chain.flattened or not chain.conv):
        return f"its channels are not the input channels of {consumer_name!r} (different dims)"
    if chain.mult is None:
        raise ValueError(
            f"Channel pruning of {name!r} needs sample_input: its output is flattened into "
            f"{consumer_name!r}, and how many input features each channel feeds there depends "
            "on the spatial size. Pass sample_input=<one batch of model input, e.g. "
            f"torch.randn(1, 3, 32, 32)>, or exclude={name!r}."
        )
    group = ChannelGroup(name, consumer_name, tuple(chain.norms), chain.mult)
    channels = int(_weight(graph.module(name)).shape[0])
    return _size_problem(group, channels, consumer, [graph.module(n) for n in chain.norms]) or group


def _is_batch_size_query(node: fx.Node) -> bool:
    # x.size(0) / x.shape[0] read the batch size, which pruning leaves alone.
    if node.op == "call_method" and node.target == "size":
        return node.args[1:] == (0,)
    if node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",):
        return all(u.target is operator.getitem and u.args[1] == 0 for u in node.users)
    return False


def _is_batch_view(node: fx.Node) -> bool:
    # (batch, -1) only: a literal feature count would be wrong once channels go.
    dims = node.args[1:]
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return len(dims) == 2 and isinstance(dims[1], int) and dims[1] == -1


def _flatten_dims(node: fx.Node) -> tuple[Any, Any]:
    args = [*node.args[1:], None, None]
    start = node.kwargs.get("start_dim", args[0] if args[0] is not None else 0)
    end = node.kwargs.get("end_dim", args[1] if args[1] is not None else -1)
    return start, end


def _features_per_channel(src: fx.Node) -> int | None:
    shape = src.meta.get("shape")  # set by shape propagation, with sample_input only
    return None if shape is None else math.prod(shape[2:])


def _describe(graph: _Graph, node: fx.Node) -> str:
    if node.op == "call_module":
        return f"{type(graph.module(node.target)).__name__} {node.target!r}"
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return "the model output" if node.op == "output" else f".{node.target}()"


# Surgery -----------------------------------------------------------------------------------
def _size_problem(
    group: ChannelGroup, channels: int, consumer: nn.Module, norms: Sequence[nn.Module]
) -> str:
    for name, norm in zip(group.norms, norms):
        if getattr(norm, "num_features", None) != channels:
            features = getattr(norm, "num_features", "?")
            return f"{name!r} normalizes {features} features, not {channels} channels"
    expected = channels * group.features_per_channel
    actual = int(_weight(consumer).shape[1])
    if actual == expected:
        return ""
    per = group.features_per_channel
    return f"{group.consumer!r} takes {actual} inputs, not {channels} channels x {per}"


def _kept_count(channels: int, sparsity: float, consumer: nn.Module, m: int | None) -> int:
    kept = max(1, channels - round(channels * sparsity))
    if m is not None:  # keep the consumer's inputs per output a multiple of m
        per_channel = _weight(consumer)[0].numel() // channels
        step = m // math.gcd(per_channel, m)
        kept = min(channels, math.ceil(kept / step) * step)
    return kept


def _strongest(weight: torch.Tensor, kept: int) -> torch.Tensor:
    norms = weight.detach().flatten(1).float().norm(dim=1)
    order = torch.argsort(norms, descending=True, stable=True)
    return order[:kept].sort().values


def _expand(keep: torch.Tensor, per_channel: int) -> torch.Tensor:
    offsets = torch.arange(per_channel, device=keep.device)
    return (keep[:, None] * per_channel + offsets[None, :]).flatten()


def _shrink(
    module: nn.Module, names: Sequence[str], index: torch.Tensor, *, dim: int, size_attr: str
) -> None:
    for name in names:
        t = getattr(module, name, None)
        if not isinstance(t, torch.Tensor):
            continue
        kept = t.detach().index_select(dim, index.to(t.device))
        if isinstance(t, nn.Parameter):
            setattr(module, name, nn.Parameter(kept, requires_grad=t.requires_grad))
        else:
            setattr(module, name, kept)
    setattr(module, size_attr, int(index.numel()))


def _size_attrs(module: nn.Module) -> tuple[str, str]:
    if isinstance(module, nn.Linear):
        return "out_features", "in_features"
    return "out_channels", "in_channels"


def _weight(module: nn.Module) -> torch.Tensor:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor.")
    return weight
