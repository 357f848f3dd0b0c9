"""Elastic transforms of transformer models: drop blocks, slice FFN width, drop heads.

Blocks are found as the model's largest ``nn.ModuleList`` of same-class modules (BERT's
``encoder.layer``, Llama's ``model.layers``...). Inside a block, layers are recognized by shape:
*up* projections map the hidden size to the FFN width, *down* projections map it back; the
attention projections by their usual names (``query``/``q_proj``, ``key``/``k_proj``,
``value``/``v_proj``, ``attention.output.dense``/``o_proj``/``out_proj``).

A dropped block becomes a :class:`SkipBlock` in place, so module names (and hence the names of
later stages' parameters) stay the same.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from tradeoff.spaces._model import find_block_stack, set_module

_Q = ("query", "q_proj", "q")
_K = ("key", "k_proj", "k")
_V = ("value", "v_proj", "v")
_O = ("attention.output.dense", "o_proj", "out_proj")


class SkipBlock(nn.Module):
    """Stands in for a dropped transformer block: returns its hidden-states input unchanged."""

    def forward(self, hidden_states: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return hidden_states


@dataclass(frozen=True)
class BlockLayout:
    """Where the FFN and attention projections of one block are (module names in the block)."""

    ups: tuple[str, ...]
    downs: tuple[str, ...]
    ffn_width: int
    q: str | None
    k: str | None
    v: str | None
    o: str | None
    n_heads: int | None


def find_blocks(model: nn.Module) -> str:
    """The dotted name of the model's ModuleList of transformer blocks.

    Raises:
        ValueError: no ModuleList of same-class blocks with Linear layers.
    """
    name = find_block_stack(model)
    if name is None:
        raise ValueError(
            "No transformer blocks found: the model has no nn.ModuleList of same-class "
            "blocks with Linear layers. Pass blocks='<name of the ModuleList>'."
        )
    return name


def block_layout(block: nn.Module, n_heads: int | None) -> BlockLayout:
    """Find the FFN and attention projections of ``block`` (see the module docstring)."""
    linears = {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}
    q, k, v, o = (_by_suffix(linears, names) for names in (_Q, _K, _V, _O))
    hidden = linears[q].in_features if q else Counter(m.in_features for m in linears.values())
    hidden = hidden if isinstance(hidden, int) else hidden.most_common(1)[0][0]
    # Not the attention projections: with grouped-query attention, k/v map the hidden size to
    # a width of their own, as often as gate/up map it to the FFN width.
    ffn = {n: m for n, m in linears.items() if n not in (q, k, v, o)}
    widths = Counter(m.out_features for m in ffn.values() if m.out_features != hidden)
    if not widths:
        return BlockLayout((), (), 0, q, k, v, o, n_heads)
    width = widths.most_common(1)[0][0]
    ups = tuple(n for n, m in ffn.items() if (m.in_features, m.out_features) == (hidden, width))
    downs = tuple(n for n, m in ffn.items() if (m.in_features, m.out_features) == (width, hidden))
    return BlockLayout(ups, downs, width, q, k, v, o, n_heads)


def drop_block(blocks: nn.ModuleList, index: int) -> None:
    blocks[index] = SkipBlock()


def ffn_width(layout: BlockLayout, ratio: float) -> int:
    """FFN neurons kept at ``ratio`` of the width (at least one)."""
    return max(1, round(layout.ffn_width * ratio))


@torch.no_grad()
def ffn_keep(block: nn.Module, layout: BlockLayout, keep: int) -> torch.Tensor:
    """Indices (ascending) of the ``keep`` FFN neurons with the largest weight norms."""
    score = torch.zeros(layout.ffn_width, device=_linear(block, layout.ups[0]).weight.device)
    for name in layout.ups:
        score += _linear(block, name).weight.pow(2).sum(dim=1)
    for name in layout.downs:
        score += _linear(block, name).weight.pow(2).sum(dim=0)
    return torch.topk(score, keep).indices.sort().values


def slice_ffn(block: nn.Module, layout: BlockLayout, keep: int) -> None:
    """Keep the ``keep`` FFN neurons with the largest weight norms (MatFormer-style)."""
    if keep >= layout.ffn_width:
        return
    kept = ffn_keep(block, layout, keep)
    for name in layout.ups:
        set_module(block, name, _slice_linear(_linear(block, name), rows=kept))
    for name in layout.downs:
        set_module(block, name, _slice_linear(_linear(block, name), cols=kept))


def head_dim(block: nn.Module, layout: BlockLayout) -> int:
    """Features per attention head (the output projection's inputs per head)."""
    assert layout.o and layout.n_heads
    return _linear(block, layout.o).in_features // layout.n_heads


def kv_group(block: nn.Module, layout: BlockLayout) -> int:
    """Query heads per key/value head: 1 for multi-head attention, more under grouped-query
    attention (the key projection has fewer heads than the query projection)."""
    assert layout.q and layout.k
    return _linear(block, layout.q).out_features // _linear(block, layout.k).out_features


@torch.no_grad()
def head_rows(
    block: nn.Module, layout: BlockLayout, keep: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (ascending) of the query rows (and output-projection columns) and of the
    key/value rows of the ``keep`` heads kept. Heads are scored by the norm of their
    output-projection columns; under grouped-query attention whole groups go (a key/value head
    and the query heads reading it; ``keep`` a multiple of the group), scored by their heads'
    summed norms, so every kept query head keeps its key/value head."""
    assert layout.o and layout.n_heads
    o_proj, size = _linear(block, layout.o), head_dim(block, layout)
    norms = o_proj.weight.reshape(o_proj.out_features, layout.n_heads, size).pow(2).sum((0, 2))
    group = kv_group(block, layout)
    groups = torch.topk(norms.reshape(-1, group).sum(1), keep // group).indices.sort().values
    heads = (groups[:, None] * group + torch.arange(group, device=groups.device)).flatten()
    offsets = torch.arange(size, device=heads.device)
    return (heads[:, None] * size + offsets).flatten(), (groups[:, None] * size + offsets).flatten()


def head_keep(block: nn.Module, layout: BlockLayout, keep: int) -> torch.Tensor:
    """The query rows of :func:`head_rows`."""
    return head_rows(block, layout, keep)[0]


def drop_heads(block: nn.Module, layout: BlockLayout, keep: int) -> None:
    """Keep the ``keep`` attention heads of :func:`head_rows` (whole key/value groups under
    grouped-query attention)."""
    assert layout.q and layout.k and layout.v and layout.o and layout.n_heads
    if keep >= layout.n_heads:
        return
    group = kv_group(block, layout)
    (rows, kv), size = head_rows(block, layout, keep), head_dim(block, layout)
    set_module(block, layout.q, _slice_linear(_linear(block, layout.q), rows=rows))
    for name in (layout.k, layout.v):
        set_module(block, name, _slice_linear(_linear(block, name), rows=kv))
    set_module(block, layout.o, _slice_linear(_linear(block, layout.o), cols=rows))
    attention = block.get_submodule(layout.q.rpartition(".")[0]) if "." in layout.q else block
    # Keep the attention module's bookkeeping consistent (BERT reads all_head_size; a grouped
    # query attention repeats each key/value head num_key_value_groups times, unchanged).
    for attr, value in (
        ("num_attention_heads", keep),
        ("num_heads", keep),
        ("all_head_size", keep * size),
        ("num_key_value_heads", keep // group),
    ):
        if hasattr(attention, attr):
            setattr(attention, attr, value)


def _linear(block: nn.Module, name: str) -> nn.Linear:
    module = block.get_submodule(name)
    assert isinstance(module, nn.Linear), name
    return module


@torch.no_grad()
def _slice_linear(
    layer: nn.Linear, *, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
) -> nn.Linear:
    """A new Linear with the ``rows`` outputs and ``cols`` inputs of ``layer`` (same dtype,
    device and ``requires_grad``)."""
    weight = layer.weight
    if rows is not None:
        weight = weight[rows]
    if cols is not None:
        weight = weight[:, cols]
    new = nn.Linear(
        weight.shape[1],
        weight.shape[0],
        bias=layer.bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    new.weight.copy_(weight)
    new.weight.requires_grad_(layer.weight.requires_grad)
    if layer.bias is not None:
        new.bias.copy_(layer.bias if rows is None else layer.bias[rows])
        new.bias.requires_grad_(layer.bias.requires_grad)
    return new


def _by_suffix(linears: dict[str, nn.Linear], names: tuple[str, ...]) -> str | None:
    for suffix in names:
        for name in linears:
            if name == suffix or name.endswith("." + suffix):
                return name
    return None
