"""Finding coupled channels and heads with torch-pruning's ``DependencyGraph``.

:func:`find_groups` traces a copy of the model once on ``sample_input``
(``DependencyGraph().build_dependency``) and asks, for each searched layer, which channels are
coupled with its outputs (``get_pruning_group``): the inputs of the layers reading them (through
activations, pooling, flattens), BatchNorm/LayerNorm between, and across a residual add or an
attention product every other layer writing them. Each group becomes plain data
(:class:`~tradeoff.spaces._channels.StructuralGroup`) that a Config replays without a second
trace. Its units are whole heads when its writers are one attention module's query, key and
value projections (a module with ``attention_head_size`` as BERT's or ``head_dim`` as Llama's).

A group is refused, with the reason, when its channels reach the model's output, when another
layer writing them is not searched, when it runs through a module the replay cannot shrink
(grouped convolutions, recurrent or custom layers, bare parameters such as Llama's RMSNorm
weight) or into grouped-query attention (where torch-pruning 1.6's walk does not end), or when
removing one of its units breaks the model on ``sample_input`` (a reshape to a literal size).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._channels import (
    _CONV,
    ChannelGroup,
    Member,
    StructuralGroup,
    dim_size,
    remove_units,
    torch_pruning,
)
from tradeoff.spaces._model import model_device

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def find_groups(
    model: nn.Module,
    layers: Iterable[str],
    sample_input: Any = None,
    device: torch.device | str | None = None,
) -> tuple[dict[str, StructuralGroup], dict[str, str]]:
    """The group of each channel-prunable layer of ``layers``, and why each other one is not.

    ``model`` is copied (to ``device``, default its own) and the copy traced; ``model`` itself is
    neither run nor changed. ``sample_input``: one batch of model input, a tensor, a tuple of
    positional inputs or a dict of keyword inputs; without it, a model that runs on a
    ``(2, in_features)`` batch of one of its Linear layers is traced on zeros of that shape.

    Raises:
        ValueError: the model does not run on ``sample_input`` (or needs one), or torch-pruning
            cannot trace it.
    """
    tp = torch_pruning()
    work = copy.deepcopy(model).to(device or model_device(model)).eval()
    config: Any = getattr(work, "config", None)
    if getattr(config, "use_cache", False):  # the copy's: torch-pruning's walk through a KV
        config.use_cache = False  # cache's concat does not end, and a cache is no layer's output
    inputs = _inputs(work, sample_input, model_device(work))
    graph = _Graph(tp, work, inputs, list(layers))
    found: dict[str, StructuralGroup | str] = {}
    for name in graph.selected:
        if name not in found:
            result = graph.group(name)
            names = result.layers if isinstance(result, StructuralGroup) else (name,)
            found.update({n: result for n in names})
    groups = {k: v for k, v in found.items() if isinstance(v, StructuralGroup)}
    problems = _unremovable(model, work, groups, inputs, graph.shapes)
    for name, group in list(groups.items()):
        if id(group) in problems:
            found[name] = problems[id(group)]
            del groups[name]
    return groups, {k: v for k, v in found.items() if isinstance(v, str)}


class _Graph:
    """The torch-pruning dependency graph of a model copy, and what its groups may contain."""

    def __init__(self, tp: Any, model: nn.Module, inputs: Any, layers: list[str]) -> None:
        self.tp, self.model = tp, model
        self.names = {m: n for n, m in model.named_modules()}
        self.order = {n: i for i, n in enumerate(self.names.values())}
        self.params = {p: n for n, p in model.named_parameters()}
        self.selected = sorted(set(layers), key=lambda n: self.order.get(n, -1))
        every = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
        self.shared = {k for k, v in every.items() if v > 1}
        names = [n for n in dir(tp) if n.startswith("prune_") and n.endswith("_channels")]
        # An "out" name wins where one function prunes both sides (norms).
        self.public = {getattr(tp, n): n for n in sorted(names, key=lambda n: "_out_" in n)}
        self.dg, self.calls, self.read, outputs, self.shapes = _trace(tp, model, inputs)
        self.out_fns = {t.grad_fn for t in outputs}
        self.gqa = self._gqa_projections()

    def group(self, name: str) -> StructuralGroup | str:
        module = self.model.get_submodule(name)
        problem = self._root_problem(name, module)
        if problem:
            return problem
        if module in self.gqa or self._expands(module):
            return (
                "its channels run into grouped-query attention (fewer key/value heads than "
                "query heads, an expand as repeat_kv's), where torch-pruning's dependency walk "
                "does not end"
            )
        kind = {nn.Embedding: "embedding", nn.Linear: "linear"}.get(type(module), "conv")
        fn, size = getattr(self.tp, f"prune_{kind}_out_channels"), dim_size(module, "_out_")
        return self._describe(self.dg.get_pruning_group(module, fn, list(range(size))), size)

    def _root_problem(self, name: str, module: nn.Module) -> str:
        if module not in self.dg.module2node:
            return "it is not called in forward (or its output is unused)"
        if isinstance(module, _CONV) and module.groups != 1:
            return "it is a grouped (or depthwise) convolution; its channels go with its input's"
        if type(module) not in (nn.Linear, *_CONV, nn.Embedding):
            kind = type(module).__name__
            return f"channel pruning takes Linear, Conv1d/2d/3d and Embedding layers, not {kind}"
        if self.calls[name] != 1:
            return f"it is called {self.calls[name]} times"
        weight = getattr(module, "weight", None)
        return "its weight is shared with another layer" if id(weight) in self.shared else ""

    def _expands(self, module: nn.Module) -> bool:
        """Whether the ops around ``module``'s output (up to the next layers) hold an expand."""
        expand = self.tp.ops.OPTYPE.EXPAND
        start = self.dg.module2node[module]
        seen, todo = {start}, list(start.outputs)
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.type == expand:
                return True
            if node.module not in self.names:  # an op: channels flow through both ways
                todo.extend(node.inputs + node.outputs)
        return False

    def _gqa_projections(self) -> set[nn.Module]:
        """The query/key/value projections of grouped-query attention modules (HF's
        ``num_key_value_groups > 1``): their Linear children reading one input tensor together."""
        found: set[nn.Module] = set()
        for parent in self.model.modules():
            groups = getattr(parent, "num_key_value_groups", 1)
            if not isinstance(groups, int) or groups <= 1:
                continue
            by_input: dict[int, list[nn.Module]] = {}
            for child in parent.children():
                if isinstance(child, nn.Linear) and self.names[child] in self.read:
                    by_input.setdefault(self.read[self.names[child]], []).append(child)
            found.update(c for same in by_input.values() if len(same) > 1 for c in same)
        return found

    def _describe(self, group: Any, size: int) -> StructuralGroup | str:
        optype = self.tp.ops.OPTYPE
        members: list[Member] = []
        for item in group:
            node, handler = item.dep.target, item.dep.handler
            out = self.dg.is_out_channel_pruning_fn(handler)
            if node.type == optype.OUTPUT or (out and node.grad_fn in self.out_fns):
                return "its channels reach the model's output, whose shape would change"
            if node.type == optype.PARAMETER:
                param = self.params.get(node.module, "?")
                return (
                    f"its channels reach the bare parameter {param!r} (as a custom norm's "
                    "weight), which is pruned with no layer this space can replay"
                )
            if node.module in self.names:
                member = self._member(node.module, handler, item.idxs, item.root_idxs, size)
                if isinstance(member, str):
                    return member
                members.append(member)
        return self._finish(members, size)

    def _member(
        self, module: nn.Module, handler: Any, idxs: list[int], roots: list[int], size: int
    ) -> Member | str:
        name, fn = self.names[module], self.public.get(handler, "")
        role = _role(module, fn)
        if not role:
            return (
                f"its channels run through {name!r} ({type(module).__name__}), which channel "
                "pruning here cannot shrink with them"
            )
        per: list[list[int]] = [[] for _ in range(size)]
        for i, r in zip(idxs, roots):
            per[r].append(i)
        return Member(name, fn, dim_size(module, fn), tuple(tuple(sorted(p)) for p in per), role)

    def _finish(self, members: list[Member], size: int) -> StructuralGroup | str:
        writers = sorted(
            (m for m in members if m.role == "write"), key=lambda m: self.order[m.layer]
        )
        missing = [m.layer for m in writers if m.layer not in self.selected]
        if missing:
            return (
                f"its channels are shared with {missing[0]!r} (through a residual add, a concat "
                "or attention), which is not among the searched layers; search it too "
                "(include=, types=) or exclude this layer"
            )
        head_dim, attention = self._heads(writers, size)
        units = size // head_dim if head_dim else size
        if head_dim:
            members = [_by_head(m, head_dim) for m in members]
            writers = [_by_head(m, head_dim) for m in writers]
        if units < 2:
            return "it has a single output channel, so none can be removed"
        if any(len({len(i) for i in m.idxs}) > 1 for m in writers):
            return "torch-pruning maps its channels unevenly onto the layers writing them"
        layers = tuple(m.layer for m in writers)
        chain = _chain(members, units, head_dim)
        return StructuralGroup(layers, tuple(members), units, head_dim, attention, chain)

    def _heads(self, writers: list[Member], size: int) -> tuple[int, str]:
        """``(head size, attention module)`` when the writers are one module's head projections."""
        parents = {m.layer.rpartition(".")[0] for m in writers}
        if len(parents) != 1 or len(writers) < 2:
            return 0, ""
        parent = parents.pop()
        module = self.model.get_submodule(parent)
        d = getattr(module, "attention_head_size", None) or getattr(module, "head_dim", None)
        if isinstance(d, int) and 0 < d < size and size % d == 0:
            return d, parent
        return 0, ""


def _trace(
    tp: Any, model: nn.Module, inputs: Any
) -> tuple[Any, Counter[str], dict[str, int], list[torch.Tensor], list[tuple[int, ...]]]:
    """The dependency graph, calls per module, ``id`` of the tensor each module first read, the
    outputs with a grad_fn, all output shapes."""
    names = {m: n for n, m in model.named_modules()}
    calls: Counter[str] = Counter()
    read: dict[str, int] = {}
    stack: list[str] = []
    outputs: list[torch.Tensor] = []
    shapes: list[tuple[int, ...]] = []

    def enter(m: nn.Module, args: Any) -> None:
        stack.append(names[m])
        calls[names[m]] += 1
        if args and isinstance(args[0], torch.Tensor):
            read.setdefault(names[m], id(args[0]))

    def keep(out: Any) -> list[torch.Tensor]:
        tensors = _tensors(out)
        shapes.extend(tuple(t.shape) for t in tensors)
        outputs.extend(t for t in tensors if t.grad_fn is not None)
        return outputs

    def leave(*_: Any) -> None:  # returns None: a forward hook's result replaces the output
        stack.pop()

    hooks = [m.register_forward_pre_hook(enter) for m in model.modules()]
    hooks += [m.register_forward_hook(leave) for m in model.modules()]
    try:
        with torch.enable_grad():  # the graph is read from autograd
            dg = tp.DependencyGraph().build_dependency(
                model, example_inputs=inputs, forward_fn=_call, output_transform=keep,
                verbose=False,
            )  # fmt: skip
    except Exception as e:
        where = f"at {stack[-1]!r}: " if stack and stack[-1] else ""
        what = "sample_input does not run through the model" if stack else "torch-pruning failed"
        raise ValueError(
            f"{what} ({where}{e}); channel pruning traces the model once on sample_input. Pass "
            "one batch of the model's input, e.g. torch.randn(1, 3, 32, 32) for an image model, "
            "or use pattern='unstructured' or 'n:m'."
        ) from e
    finally:
        for h in hooks:
            h.remove()
    return dg, calls, read, outputs, shapes


def _unremovable(
    model: nn.Module,
    work: nn.Module,
    groups: Mapping[str, StructuralGroup],
    inputs: Any,
    shapes: list[tuple[int, ...]],
) -> dict[int, str]:
    """``id(group)`` -> why removing one of its units breaks the model, for each such group.

    All groups lose a unit on ``work`` at once; only if that breaks the model is each group
    tried alone on a fresh copy of ``model``.
    """
    unique = {id(g): g for g in groups.values()}
    for g in unique.values():
        remove_units(work, g, [g.units - 1])
    if not _breaks(work, inputs, shapes):
        return {}
    problems = {}
    for key, g in unique.items():
        trial = copy.deepcopy(model).to(model_device(work)).eval()
        remove_units(trial, g, [g.units - 1])
        problem = _breaks(trial, inputs, shapes)
        if problem:
            problems[key] = f"removing one of its channels breaks the model: {problem}"
    return problems


def _breaks(model: nn.Module, inputs: Any, shapes: list[tuple[int, ...]]) -> str:
    try:
        with torch.no_grad():
            got = [tuple(t.shape) for t in _tensors(_call(model, inputs))]
    except Exception as e:
        return f"it fails on sample_input ({type(e).__name__}: {e})"
    return "" if got == shapes else f"its output shapes change from {shapes} to {got}"


def _inputs(model: nn.Module, sample_input: Any, device: torch.device) -> Any:
    if sample_input is not None:
        return _to(sample_input, device)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    widths = dict.fromkeys(m.in_features for m in model.modules() if isinstance(m, nn.Linear))
    for width in widths:
        x = torch.zeros(2, width, device=device, dtype=dtype)
        try:
            with torch.no_grad():
                _call(model, x)
        except Exception:
            continue
        return x
    raise ValueError(
        "Channel pruning needs sample_input: torch-pruning finds which channels are coupled by "
        "running the model once, and it does not run on a (batch, in_features) guess. Pass "
        "sample_input=<one batch of model input, e.g. torch.randn(1, 3, 32, 32)>."
    )


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, Mapping):
        return {k: _to(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    return x.to(device) if isinstance(x, torch.Tensor) else x


def _call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, Mapping):
        return model(**x)
    return model(*x) if isinstance(x, (tuple, list)) else model(x)


def _tensors(out: Any) -> list[torch.Tensor]:
    """The tensors of a model output (nested tuples, lists and dicts such as HF outputs)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


_ROLES = {
    "prune_linear_out_channels": "write",
    "prune_linear_in_channels": "read",
    "prune_conv_out_channels": "write",
    "prune_conv_in_channels": "read",
    "prune_embedding_out_channels": "write",
    "prune_depthwise_conv_out_channels": "norm",
    "prune_batchnorm_out_channels": "norm",
    "prune_layernorm_out_channels": "norm",
}
_PLAIN = (nn.Linear, *_CONV, nn.Embedding, *_BATCHNORM, nn.LayerNorm)


def _role(module: nn.Module, fn: str) -> str:
    """``module``'s role in a group, ``""`` for one the replay cannot prune: not a plain
    ``_PLAIN`` type (a subclass may rely on its sizes), or a grouped convolution."""
    role = _ROLES.get(fn, "") if type(module) in _PLAIN else ""
    grouped = isinstance(module, _CONV) and module.groups != 1 and role != "norm"
    return "" if grouped else role


def _by_head(m: Member, d: int) -> Member:
    heads = len(m.idxs) // d
    idxs = tuple(
        tuple(sorted(i for u in m.idxs[h * d : (h + 1) * d] for i in u)) for h in range(heads)
    )
    return Member(m.layer, m.fn, m.size, idxs, m.role)


def _chain(members: list[Member], units: int, head_dim: int) -> ChannelGroup | None:
    writers = [m for m in members if m.role == "write"]
    readers = [m for m in members if m.role == "read"]
    norms = [m for m in members if m.role == "norm"]
    if head_dim or len(writers) != 1 or len(readers) != 1:
        return None
    (w,), (r,) = writers, readers
    fpc = len(r.idxs[0])
    identity = tuple((u,) for u in range(units))
    ok = (
        w.fn != "prune_embedding_out_channels"
        and all(m.idxs == identity for m in [w, *norms])
        and all(m.fn == "prune_batchnorm_out_channels" for m in norms)
        and r.idxs == tuple(tuple(range(u * fpc, (u + 1) * fpc)) for u in range(units))
        and r.size == units * fpc
    )
    return ChannelGroup(w.layer, r.layer, tuple(n.layer for n in norms), fpc) if ok else None
