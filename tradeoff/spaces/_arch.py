"""Architecture spaces: a user-defined builder, or elastic transforms of a transformer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from tradeoff.spaces import _elastic
from tradeoff.spaces._model import ModelSpace
from tradeoff.spaces._params import Ordinal, Parameter

Builder = Callable[[Mapping[str, Any]], nn.Module]


class ArchitectureSpace(ModelSpace):
    """What the network looks like: built from a Config, or cut down from a given model.

    Build it with :meth:`from_builder` (your parameters and your ``build(config)``) or with
    :meth:`elastic` (per-block depth, FFN width and attention heads of a transformer).
    """

    stage: ClassVar[str] = "arch"

    @property
    def reshapes_layers(self) -> bool:
        """A built model's layers are the builder's; FFN widths and head counts narrow them;
        dropping whole blocks leaves the others' layers as they were."""
        return self._build is not None or any(name.endswith((".ffn", ".heads")) for name in self)

    def __init__(
        self,
        parameters: Mapping[str, Parameter],
        *,
        build: Builder | None = None,
        blocks: str | None = None,
        min_depth: int = 1,
        n_heads: int | None = None,
    ) -> None:
        super().__init__(parameters)
        self._build, self._blocks, self._min_depth, self._n_heads = (
            build,
            blocks,
            min_depth,
            n_heads,
        )

    @classmethod
    def from_builder(cls, parameters: Mapping[str, Parameter], build: Builder) -> ArchitectureSpace:
        """A space over ``parameters`` whose ``apply(model, config)`` returns ``build(config)``
        (``model`` is ignored and may be ``None``)."""
        if not callable(build):
            raise TypeError(f"build must be callable (config -> nn.Module), got {build!r}.")
        return cls(parameters, build=build)

    @classmethod
    def elastic(
        cls,
        model: nn.Module,
        *,
        drop_blocks: bool = False,
        min_depth: int = 1,
        ffn_ratios: Sequence[float] | None = None,
        head_counts: Sequence[int] | None = None,
        blocks: str | None = None,
    ) -> ArchitectureSpace:
        """Elastic transforms of a transformer, per block (named after the block module):

        - ``<block>.keep`` (``drop_blocks=True``): ``Ordinal([False, True])``. A Config that keeps
          fewer than ``min_depth`` blocks keeps the lowest-index dropped ones too.
        - ``<block>.ffn`` (``ffn_ratios``): fraction of FFN neurons kept, by weight norm.
        - ``<block>.heads`` (``head_counts``): attention heads kept, by output-projection norm.

        Args:
            model: The transformer; its blocks are found automatically unless ``blocks`` names
                the ``nn.ModuleList`` holding them.

        Raises:
            ValueError: no transform asked for, no blocks, bad ratios or head counts, or a block
                without recognizable FFN / attention projections.
        """
        if not (drop_blocks or ffn_ratios or head_counts):
            raise ValueError("Ask for at least one of drop_blocks, ffn_ratios or head_counts.")
        name = blocks or _elastic.find_blocks(model)
        module_list = _module_list(model, name)
        if not 1 <= min_depth <= len(module_list):
            raise ValueError(f"min_depth must be in [1, {len(module_list)}], got {min_depth}.")
        n_heads = _n_heads(model, module_list[0]) if head_counts else None
        params: dict[str, Parameter] = {}
        for i, block in enumerate(module_list):
            prefix = f"{name}.{i}"
            layout = _elastic.block_layout(block, n_heads)
            if drop_blocks:
                params[f"{prefix}.keep"] = Ordinal([False, True])
            if ffn_ratios:
                params[f"{prefix}.ffn"] = Ordinal(_check_ratios(ffn_ratios, prefix, layout))
            if head_counts:
                heads = _check_heads(head_counts, prefix, layout, block)
                params[f"{prefix}.heads"] = Ordinal(heads)
        return cls(params, blocks=name, min_depth=min_depth, n_heads=n_heads)

    def apply(
        self, model: nn.Module | None, config: Mapping[str, Any], *, inplace: bool = False
    ) -> nn.Module:
        if self._build is not None:
            if not self.contains(config):
                raise ValueError(f"config is not in this space: expected keys {sorted(self)}.")
            return self._build(config)
        if model is None:
            raise TypeError("An elastic ArchitectureSpace needs the model to transform.")
        return super().apply(model, config, inplace=inplace)

    def _apply(self, model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
        assert self._blocks is not None
        module_list = _module_list(model, self._blocks)
        keep = self._kept_blocks(config, len(module_list))
        for i, block in enumerate(module_list):
            prefix = f"{self._blocks}.{i}"
            if i not in keep:
                _elastic.drop_block(module_list, i)
                continue
            layout = _elastic.block_layout(block, self._n_heads)
            if f"{prefix}.ffn" in config:
                width = _elastic.ffn_width(layout, config[f"{prefix}.ffn"])
                _elastic.slice_ffn(block, layout, width)
            if f"{prefix}.heads" in config:
                _elastic.drop_heads(block, layout, int(config[f"{prefix}.heads"]))
        return model

    @property
    def blocks(self) -> str | None:
        """The name of the ``nn.ModuleList`` of blocks (``None`` for :meth:`from_builder`)."""
        return self._blocks

    @property
    def n_heads(self) -> int | None:
        """Attention heads per block, when ``head_counts`` is searched."""
        return self._n_heads

    def _kept_blocks(self, config: Mapping[str, Any], depth: int) -> set[int]:
        flags = [config.get(f"{self._blocks}.{i}.keep", True) for i in range(depth)]
        keep = {i for i, flag in enumerate(flags) if flag}
        for i in range(depth):  # repair: never fewer than min_depth blocks
            if len(keep) >= self._min_depth:
                break
            keep.add(i)
        return keep


def _module_list(model: nn.Module, name: str) -> nn.ModuleList:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"The model has no module {name!r} (blocks=...).") from None
    if not isinstance(module, nn.ModuleList):
        raise ValueError(f"blocks={name!r} is a {type(module).__name__}, not an nn.ModuleList.")
    return module


def _n_heads(model: nn.Module, block: nn.Module) -> int:
    config = getattr(model, "config", None)
    for source in (config, *block.modules()):
        for attr in ("num_attention_heads", "num_heads"):
            value = getattr(source, attr, None)
            if isinstance(value, int) and value > 0:
                return value
    raise ValueError("Cannot tell the number of attention heads; the model has no config for it.")


def _check_ratios(
    ratios: Sequence[float], prefix: str, layout: _elastic.BlockLayout
) -> list[float]:
    if not layout.ups or not layout.downs:
        raise ValueError(f"Block {prefix!r} has no recognizable FFN (up/down projections).")
    bad = [r for r in ratios if not 0 < r <= 1]
    if bad:
        raise ValueError(f"ffn_ratios must be in (0, 1], got {bad}.")
    return sorted(float(r) for r in ratios)


def _check_heads(
    counts: Sequence[int], prefix: str, layout: _elastic.BlockLayout, block: nn.Module
) -> list[int]:
    if not (layout.q and layout.k and layout.v and layout.o and layout.n_heads):
        raise ValueError(
            f"Block {prefix!r} has no recognizable attention projections "
            "(query/key/value/output or q_proj/k_proj/v_proj/o_proj)."
        )
    group = _elastic.kv_group(block, layout)
    bad = [c for c in counts if not (isinstance(c, int) and 1 <= c <= layout.n_heads)]
    if bad:
        raise ValueError(f"head_counts must be integers in [1, {layout.n_heads}], got {bad}.")
    uneven = [c for c in counts if c % group]
    if uneven:
        valid = list(range(group, layout.n_heads + 1, group))
        raise ValueError(
            f"Block {prefix!r} has grouped-query attention ({group} query heads per key/value "
            f"head): head counts keep whole groups, {valid}; got {uneven}."
        )
    return sorted(counts)
