"""PEFT spaces: which adapter (LoRA, DoRA or IA3) goes on which layers, at what rank.

The checks ``peft`` would make when applying a config are made once, in
:meth:`PEFTSpace.for_model`, so every Config the sampler can produce applies.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, Literal

from torch import nn

try:
    import peft
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "PEFTSpace needs the peft package; install it with: pip install 'tradeoff[peft]'."
    ) from exc

from tradeoff.spaces._model import ModelSpace, _preview, find_block_stack, select_layers
from tradeoff.spaces._params import Choice, Int, Ordinal, Parameter

METHODS = ("lora", "dora", "ia3")
# Heads that peft's task-specific models add to ``modules_to_save`` on their own.
_HEADS = ("classifier", "score")
_TASK_HEADS = {"SEQ_CLS": _HEADS, "TOKEN_CLS": _HEADS, "QUESTION_ANS": ("qa_outputs",)}

AdapterConfig = peft.LoraConfig | peft.IA3Config
"""What :meth:`PEFTSpace.peft_config` returns."""

Layers = Literal["last"] | tuple[int, ...] | None


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What ``for_model`` learned about the model; ``peft_config`` needs nothing else."""

    linears: Mapping[str, Sequence[str]]  # target -> names of the Linear layers it adapts
    feedforward: frozenset[str]  # targets IA3 treats as feed-forward
    multiplier: float | None  # lora_alpha = multiplier * rank; None when alpha is searched
    layers: Layers
    per_layer_rank: bool
    n_blocks: int
    stack: str  # dotted name of the ModuleList of blocks ("" when not needed)
    task_type: str  # "" for none
    modules_to_save: tuple[str, ...] | None


class PEFTSpace(ModelSpace):
    """Parameter-efficient fine-tuning adapters for a model, applied with ``peft``.

    Build it with :meth:`for_model`. ``apply(model, config)`` returns
    ``peft.get_peft_model(copy_of_model, space.peft_config(config))``.
    """

    stage: ClassVar[str] = "peft"

    def __init__(self, parameters: Mapping[str, Parameter], *, plan: _Plan) -> None:
        super().__init__(parameters)
        self._plan = plan

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        *,
        methods: Sequence[str] = ("lora", "dora", "ia3"),
        ranks: Sequence[int] = (4, 8, 16),
        alpha: float | Sequence[float] | None = None,
        dropouts: Sequence[float] = (0.0, 0.1),
        targets: Sequence[str] | None = None,
        per_layer_rank: bool = False,
        layers: Literal["last"] | Sequence[int] | None = None,
        task_type: str | peft.TaskType | None = None,
        modules_to_save: Sequence[str] | None = None,
    ) -> PEFTSpace:
        """A space of adapters for ``model``, with parameters:

        - ``method``: ``Choice(methods)``; ``"dora"`` is ``LoraConfig(use_dora=True)``.
        - ``rank``: ``Ordinal(ranks)``, the LoRA ``r``; with ``per_layer_rank`` one
          ``layer.<i>.rank`` per transformer block instead, emitted as ``rank_pattern``.
        - ``dropout``: ``Ordinal(dropouts)``; ``alpha``: ``Ordinal(alpha)`` if it is a list.
        - ``target.<name>``: ``Ordinal([False, True])`` per target. A Config with every
          target off adapts the first one (its nearest valid Config).
        - ``last_layers`` (``layers="last"``): ``Int(1, n_blocks)``, adapt the last k blocks.

        One value gives a one-value ``Choice``, so the Config keys stay the same. IA3 ignores
        ``rank``, ``alpha`` and ``dropout``; an IA3-only space leaves them out.

        Args:
            model: The model to adapt (not modified).
            methods: Any of ``"lora"``, ``"dora"``, ``"ia3"``.
            ranks: LoRA ranks, positive integers.
            alpha: ``None``: ``lora_alpha = 2 * r`` (scaling 2, a common default); a number
                ``m``: ``lora_alpha = m * r``; a list: searched. The first two also set
                ``alpha_pattern`` with ``per_layer_rank``.
            dropouts: LoRA dropout probabilities in ``[0, 1)``.
            targets: ``target_modules`` candidates, matched as peft does (a module's name or
                dotted suffix: ``"query"``, ``"output.dense"``), each only ``nn.Linear``s.
                Default: the leaf names of all Linears but the output head (the last one)
                and ``modules_to_save``. For IA3 a target is feed-forward (input scaled) if
                one of its layers maps wide to narrow (BERT ``output.dense``, ``down_proj``).
            per_layer_rank: One rank per block; modules outside the blocks (BERT's pooler),
                having no block rank, are then left out. ``r`` is the largest block rank.
            layers: Blocks to adapt (``layers_to_transform``): ``None``, every module matching
                the targets; ``"last"``, search k; a list of block indices, those. The blocks
                are the largest ``nn.ModuleList`` of same-class modules holding Linears.
                ``IA3Config`` has no ``layers_to_transform``, so it lists module names.
            task_type: A peft task type such as ``"SEQ_CLS"`` (peft then trains
                ``classifier`` / ``score`` too), or ``None`` for a plain ``PeftModel``.
            modules_to_save: Modules trained in full, e.g. ``["classifier"]``.

        Raises:
            TypeError: an argument has the wrong type.
            ValueError: bad values, unknown targets or modules, or no blocks for ``layers``.
        """
        chosen = _check_list("methods", methods, lambda m: m in METHODS, f"names in {METHODS}")
        lora = "lora" in chosen or "dora" in chosen
        if per_layer_rank and not lora:
            raise ValueError("per_layer_rank=True needs 'lora' or 'dora' in methods.")
        multiplier, alphas = _check_alpha(alpha)
        checked = _check_ranks(ranks), _check_dropouts(dropouts)  # even if only IA3 is used
        plan = _read_model(model, targets, layers, per_layer_rank, task_type, modules_to_save)
        plan = dataclasses.replace(plan, multiplier=multiplier)  # the one model-free field
        params: dict[str, Parameter] = {"method": Choice(list(chosen))}
        if lora:
            params.update(_lora_params(plan, *checked, alphas))
        levels = (True,) if len(plan.linears) == 1 else (False, True)
        params.update({f"target.{t}": _levels(levels) for t in plan.linears})
        if plan.layers == "last":
            n = plan.n_blocks
            params["last_layers"] = Int(1, n) if n > 1 else Choice([1])
        return cls(params, plan=plan)

    def peft_config(self, config: Mapping[str, Any]) -> AdapterConfig:
        """The ``peft.LoraConfig`` (LoRA, DoRA) or ``peft.IA3Config`` for ``config``.

        Raises:
            ValueError: ``config`` is not a Config of this space.
        """
        if not self.contains(config):
            raise ValueError(
                f"PEFTSpace.peft_config: config is not in this space "
                f"(expected keys {sorted(self)}, got {sorted(config)})."
            )
        plan = self._plan
        on = [t for t in plan.linears if config[f"target.{t}"]] or [next(iter(plan.linears))]
        blocks = self._blocks(config)
        if config["method"] == "ia3":
            return self._ia3(on, blocks)
        return peft.LoraConfig(
            lora_dropout=config["dropout"],
            use_dora=config["method"] == "dora",
            target_modules=on,
            layers_to_transform=blocks,
            # The full dotted name, not just "layer": it names one stack (T5 has two "block"s).
            layers_pattern=plan.stack if blocks is not None else None,
            **self._ranks(config, on, blocks),
            **self._extra(),
        )

    def _apply(self, model: nn.Module, config: Mapping[str, Any]) -> nn.Module:
        return peft.get_peft_model(model, self.peft_config(config))

    def _blocks(self, config: Mapping[str, Any]) -> list[int] | None:
        """``layers_to_transform`` for ``config``: ``None`` means every matching module."""
        n = self._plan.n_blocks
        if self._plan.layers == "last":
            return list(range(n - config["last_layers"], n))
        if isinstance(self._plan.layers, tuple):
            return list(self._plan.layers)
        return list(range(n)) if self._plan.per_layer_rank else None

    def _in_blocks(self, targets: Sequence[str], blocks: Collection[int]) -> list[str]:
        """Names of the Linear layers of ``targets`` inside ``blocks``."""
        plan = self._plan
        names = (n for t in targets for n in plan.linears[t])
        return sorted({n for n in names if _block_of(n, plan.stack) in blocks})

    def _ia3(self, on: list[str], blocks: list[int] | None) -> peft.IA3Config:
        feedforward = [t for t in on if t in self._plan.feedforward]
        if blocks is not None:  # IA3Config has no layers_to_transform: name the modules.
            on, feedforward = self._in_blocks(on, blocks), self._in_blocks(feedforward, blocks)
        return peft.IA3Config(target_modules=on, feedforward_modules=feedforward, **self._extra())

    def _extra(self) -> dict[str, Any]:
        """Fresh ``task_type`` and ``modules_to_save`` (peft's task models extend the list)."""
        saved = list(self._plan.modules_to_save or ())
        return {"task_type": self._plan.task_type or None, "modules_to_save": saved or None}

    def _ranks(
        self, config: Mapping[str, Any], on: Sequence[str], blocks: list[int] | None
    ) -> dict[str, Any]:
        """``r``, ``lora_alpha``, ``rank_pattern`` and ``alpha_pattern`` for ``config``."""
        plan = self._plan
        if not plan.per_layer_rank or blocks is None:
            return {"r": config["rank"], "lora_alpha": self._alpha(config, config["rank"])}
        # Only blocks holding a chosen target get a key: peft warns about keys matching nothing.
        ranks = {
            rf"{re.escape(plan.stack)}\.{i}\..+": config[f"layer.{i}.rank"]
            for i in blocks
            if self._in_blocks(on, (i,))
        }
        r = max(ranks.values())
        alphas = {k: self._alpha(config, v) for k, v in ranks.items()} if plan.multiplier else {}
        lora_alpha = self._alpha(config, r)
        return {"r": r, "lora_alpha": lora_alpha, "rank_pattern": ranks, "alpha_pattern": alphas}

    def _alpha(self, config: Mapping[str, Any], rank: int) -> float:
        if self._plan.multiplier is None:
            return config["alpha"]  # type: ignore[no-any-return]
        value = self._plan.multiplier * rank
        return int(value) if float(value).is_integer() else value


def _read_model(
    model: nn.Module,
    targets: Sequence[str] | None,
    layers: Literal["last"] | Sequence[int] | None,
    per_layer_rank: bool,
    task_type: str | peft.TaskType | None,
    modules_to_save: Sequence[str] | None,
) -> _Plan:
    """Check the model-dependent arguments and find what ``peft_config`` will need."""
    task = _check_task_type(task_type)
    to_save = _check_modules_to_save(model, modules_to_save)
    linears = _target_linears(model, targets, (*(to_save or ()), *_TASK_HEADS.get(task, ())))
    plan_layers, stack, n_blocks = _check_layers(model, layers, per_layer_rank)
    if stack:
        _check_reachable(linears, plan_layers, n_blocks, stack)
    ff = frozenset(t for t, names in linears.items() if _is_feedforward(model, names))
    return _Plan(linears, ff, None, plan_layers, per_layer_rank, n_blocks, stack, task, to_save)


def _lora_params(
    plan: _Plan, ranks: tuple[int, ...], dropouts: tuple[float, ...], alphas: tuple[float, ...]
) -> dict[str, Parameter]:
    """``rank`` (or one ``layer.<i>.rank`` per block), ``dropout`` and maybe ``alpha``."""
    blocks = plan.layers if isinstance(plan.layers, tuple) else range(plan.n_blocks)
    names = [f"layer.{i}.rank" for i in blocks] if plan.per_layer_rank else ["rank"]
    params = {name: _levels(ranks) for name in names}
    params["dropout"] = _levels(dropouts)
    return params | ({"alpha": _levels(alphas)} if alphas else {})


def _check_list(what: str, values: Any, ok: Callable[[Any], bool], rule: str) -> tuple[Any, ...]:
    """``values`` without repeats, if it is a non-empty list of values passing ``ok``."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{what} must be a list ({rule}), got {values!r}.")
    if not values:
        raise ValueError(f"{what} is empty: give at least one value ({rule}).")
    bad = [v for v in values if isinstance(v, bool) or not ok(v)]
    if bad:
        raise ValueError(f"{what} has invalid values {bad}: expected {rule}.")
    return tuple(dict.fromkeys(values))


def _check_ranks(ranks: Sequence[int]) -> tuple[int, ...]:
    rule = "positive integer ranks, e.g. [8]"
    return tuple(sorted(_check_list("ranks", ranks, lambda r: isinstance(r, int) and r > 0, rule)))


def _check_dropouts(dropouts: Sequence[float]) -> tuple[float, ...]:
    rule = "probabilities in [0, 1)"
    ok = lambda p: isinstance(p, (int, float)) and 0 <= p < 1  # noqa: E731
    values = _check_list("dropouts", dropouts, ok, rule)
    return tuple(sorted({float(p) for p in values}))


def _check_alpha(alpha: float | Sequence[float] | None) -> tuple[float | None, tuple[float, ...]]:
    """(multiplier of the rank, searched alphas): exactly one of them is set."""
    if alpha is None:
        return 2.0, ()
    rule = "positive lora_alpha values such as [8, 16, 32], or one positive rank multiplier"
    ok = lambda a: isinstance(a, (int, float)) and 0 < a < float("inf")  # noqa: E731
    if isinstance(alpha, (int, float)):
        return float(_check_list("alpha", [alpha], ok, rule)[0]), ()
    return None, tuple(sorted(_check_list("alpha", alpha, ok, rule)))


def _check_task_type(task_type: str | peft.TaskType | None) -> str:
    """The task type's name, or "" for none."""
    known = [t.value for t in peft.TaskType]
    task = task_type.value if isinstance(task_type, peft.TaskType) else task_type
    if task is not None and task not in known:
        raise ValueError(f"Unknown task_type {task_type!r}: use one of {known} or None.")
    return task or ""


def _check_modules_to_save(model: nn.Module, names: Sequence[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    modules = [n for n, _ in model.named_modules() if n]
    top = _preview(n for n, _ in model.named_children())
    rule = f"names of modules of the model (top-level modules: {top})"
    return _check_list(
        "modules_to_save", names, lambda m: any(_suffix_match(n, m) for n in modules), rule
    )


def _check_layers(
    model: nn.Module, layers: Literal["last"] | Sequence[int] | None, per_layer_rank: bool
) -> tuple[Layers, str, int]:
    """(layers for the plan, name of the block stack or "", number of blocks)."""
    if layers is None and not per_layer_rank:
        return None, "", 0
    if isinstance(layers, str) and layers != "last":
        raise ValueError(f"layers must be None, 'last' or a list of block indices, got {layers!r}.")
    stack, n = _find_stack(model)
    if layers is None or layers == "last":
        return layers, stack, n
    rule = f"indices of blocks of {stack!r}, in [0, {n - 1}]"
    indices = _check_list("layers", layers, lambda i: isinstance(i, int) and 0 <= i < n, rule)
    return tuple(sorted(indices)), stack, n


def _target_linears(
    model: nn.Module, targets: Sequence[str] | None, saved: Sequence[str]
) -> dict[str, list[str]]:
    """Target -> names of the Linear layers peft would adapt for it (outside ``saved``)."""
    linears = select_layers(model, types=(nn.Linear,), what="PEFT targets")
    adaptable = [n for n in linears if not _inside_any(n, saved)]
    available = _preview(sorted({n.rsplit(".", 1)[-1] for n in adaptable}))
    if targets is None:
        head = list(linears)[-1].rsplit(".", 1)[-1]
        targets = [t for t in dict.fromkeys(n.rsplit(".", 1)[-1] for n in adaptable) if t != head]
    targets = _check_list("targets", targets, lambda t: isinstance(t, str), f"names: {available}")
    modules = {n: m for n, m in model.named_modules() if n and not _inside_any(n, saved)}
    result: dict[str, list[str]] = {}
    for target in targets:
        hits = {n: m for n, m in modules.items() if _suffix_match(n, target)}
        others = [n for n, m in hits.items() if not isinstance(m, nn.Linear)]
        if not hits or others:
            found = f"matches non-Linear modules {_preview(others)}" if others else "matches none"
            raise ValueError(
                f"Target {target!r} {found} of the model's modules (outside modules_to_save); "
                f"use nn.Linear names or dotted suffixes. Available target names: {available}."
            )
        result[target] = list(hits)
    return result


def _find_stack(model: nn.Module) -> tuple[str, int]:
    """The name and length of the model's stack of transformer blocks."""
    name = find_block_stack(model)
    if name is None:
        raise ValueError(
            "layers and per_layer_rank need a stack of transformer blocks (an nn.ModuleList of "
            "same-class modules with Linears); the model has none, so leave both unset."
        )
    stack = model.get_submodule(name)
    assert isinstance(stack, nn.ModuleList)
    return name, len(stack)


def _check_reachable(linears: dict[str, list[str]], layers: Layers, n: int, stack: str) -> None:
    """Every target needs a Linear in the blocks every Config adapts, or a Config with only
    that target on would adapt nothing."""
    always = range(n) if layers is None else (n - 1,) if layers == "last" else layers
    for target, names in linears.items():
        if not any(_block_of(name, stack) in always for name in names):
            raise ValueError(
                f"Target {target!r} has no nn.Linear in blocks {list(always)} of {stack!r}, "
                "which every Config adapts; drop it from targets or choose other layers."
            )


def _block_of(name: str, stack: str) -> int | None:
    """Index of the block holding module ``name`` (strictly inside it), else ``None``."""
    parts = name[len(stack) + 1 :].split(".") if stack and name.startswith(stack + ".") else []
    return int(parts[0]) if len(parts) > 1 and parts[0].isdigit() else None


def _is_feedforward(model: nn.Module, names: Sequence[str]) -> bool:
    """IA3 scales the input of a feed-forward down-projection (wide -> narrow)."""
    layers = [model.get_submodule(n) for n in names]
    return any(m.in_features > m.out_features for m in layers if isinstance(m, nn.Linear))


def _suffix_match(name: str, target: str) -> bool:
    """peft's ``target_modules`` rule for a list of names."""
    return name == target or name.endswith("." + target)


def _inside_any(name: str, modules: Sequence[str]) -> bool:
    """Whether ``name`` is one of ``modules`` or inside one (peft's modules_to_save rule)."""
    return any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", name) for m in modules)


def _levels(values: Sequence[Any]) -> Parameter:
    """An ``Ordinal`` over ``values``, or a one-value ``Choice`` when there is only one."""
    return Ordinal(list(values)) if len(values) > 1 else Choice(list(values))
