"""The evaluation :func:`~tradeoff.compress` hands the workers, and the known costs by name.

With a PEFT part (``compress(peft=...)``) a Config is evaluated as adapters on the dense model,
trained by the user's ``train`` for the fidelity budget, merged into the weights, and then
compressed (arch -> prune -> quant) and measured: the deployed model carries no adapter.
Training is keyed by what it depends on (the adapters' peft config), so a Config promoted to a
higher budget resumes from its own lower-budget state, and Configs sharing their adapters
(other compressions of them) share the training.
"""

from __future__ import annotations

import copy
import inspect
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.objectives._costs import (
    bitops,
    latency_ms,
    model_cost,
    trainable_parameters,
    weight_storage_bytes,
)
from tradeoff.objectives._quality import Quality
from tradeoff.spaces import Config, SearchSpace
from tradeoff.spaces._workspace import Workspace

COSTS: dict[str, tuple[Callable[..., float], float]] = {
    "size_mb": (weight_storage_bytes, 1e-6),
    "size_kb": (weight_storage_bytes, 1 / 1024),
    "gbitops": (bitops, 1e-9),
    "mbitops": (bitops, 1e-6),
    "trainable_parameters": (trainable_parameters, 1.0),
    "trainable_k": (trainable_parameters, 1e-3),
    "latency_ms": (latency_ms, 1.0),
}
"""Known costs by name: (cost function on a model, scale): weight storage in MB (1e6 bytes)
or KB (1024 bytes), bit-ops of one forward pass of ``sample_input`` in billions or millions,
trainable parameters of the adapters (``peft=``; as peft counts them, task head included) as a
count or in thousands, and the latency of one forward pass of ``sample_input`` in ms (from a
per-block table measured once, :class:`~tradeoff.objectives._latency.BlockLatency`)."""

PEFT = "peft"  # the namespace of the adapters' parameters in compress's space
PEFT_KEYS = ("train", "baselines", "methods", "ranks", "alpha", "dropouts", "targets",
             "per_layer_rank", "layers", "task_type", "modules_to_save")  # fmt: skip
"""Keys of ``peft=``: ``train``, ``baselines`` and the arguments of ``PEFTSpace.for_model``."""


class Adapters:
    """The PEFT part of :func:`~tradeoff.compress`: its space and how adapters are trained.

    Args:
        space: The :class:`~tradeoff.spaces.PEFTSpace` of the model.
        train: ``train(model, steps, start) -> state``: trains the adapters of ``model`` (a
            fresh ``PeftModel``) in place up to ``steps``, from ``start`` (``None``, or the
            state it returned for the same adapters at fewer steps), and returns a state to
            resume from.
        baselines: Label -> adapters' Config (without ``peft.``), compressed uniformly for the
            baselines.
        seed: Seeds each adapter's initialization.
    """

    def __init__(
        self, space: Any, train: Callable[..., Any], baselines: Mapping[str, Config], seed: int
    ) -> None:
        self.space, self.train, self.baselines, self.seed = space, train, dict(baselines), seed

    def key(self, sub: Mapping[str, Any]) -> str:
        """What training depends on: the peft config (IA3 ignores rank, alpha, dropout)."""
        return json.dumps(self.space.peft_config(sub).to_dict(), sort_keys=True, default=str)

    def build(self, model: nn.Module, sub: Mapping[str, Any], device: Any) -> nn.Module:
        """A ``PeftModel`` on a copy of ``model``, its adapters initialized from the seed."""
        where = torch.device(device) if device is not None else _device_of(model)
        with _INIT_LOCK, torch.random.fork_rng(devices=[where] if where.type == "cuda" else []):
            torch.manual_seed(self.seed)
            built: nn.Module = self.space.apply(model, sub)
        return built.to(where)

    def trainable(self, model: nn.Module) -> Callable[[Mapping[str, Any]], float]:
        """``fn(config) -> trainable parameters``, counted on a weightless copy of ``model``."""
        cost = model_cost(self.space, copy.deepcopy(model).to("meta"), trainable_parameters)
        seen: dict[str, float] = {}

        def fn(config: Mapping[str, Any]) -> float:
            sub = split(config)[0]
            key = self.key(sub)
            if key not in seen:
                seen[key] = float(cost(sub))
            return seen[key]

        return fn


def split(config: Mapping[str, Any]) -> tuple[Config, Config]:
    """(the adapters' sub-Config without ``peft.``, the compression's Config)."""
    head = PEFT + "."
    sub = {k[len(head) :]: v for k, v in config.items() if k.startswith(head)}
    return sub, {k: v for k, v in config.items() if not k.startswith(head)}


def without_adapters(fn: Callable[[Mapping[str, Any]], float]) -> Callable[..., float]:
    """``fn`` of the compression's Config, called with a whole Config (``analytic`` kept)."""

    def cost(config: Mapping[str, Any]) -> float:
        return fn(split(config)[1])

    cost.analytic = bool(getattr(fn, "analytic", True))  # type: ignore[attr-defined]
    return cost


class CompressEvaluate:
    """``evaluate(config, budget=None) -> {quality.name: value}`` for :func:`compress`.

    Picklable (Ray workers get a copy). On first use in a process it prepares the quality on
    the dense model (``quality.prepare``) and keeps it; each thread assembles Configs in its
    own :class:`~tradeoff.spaces.Workspace`. A non-finite value raises (a failed trial).
    """

    def __init__(
        self,
        space: SearchSpace,
        model: nn.Module,
        quality: Quality,
        *,
        device: str | torch.device | None = None,
        adapters: Adapters | None = None,
    ) -> None:
        self.space, self.model, self.quality, self.device = space, model, quality, device
        self.adapters = adapters  # with them, ``space`` is the compression's (no peft part)
        self.token = uuid.uuid4().hex  # what a process keeps its prepared state under

    def __call__(self, config: Mapping[str, Any], budget: float | None = None) -> dict[str, float]:
        state = self._state()
        if self.adapters is None:
            model = state.workspace(self).assemble(config)
        else:
            model = self.trained(config, budget, state)
        value = state.quality.measure(model, budget, key=config_key(config))
        return {self.quality.name: value}

    def trained(
        self, config: Mapping[str, Any], budget: float | None = None, state: Any = None
    ) -> nn.Module:
        """``config``'s adapters trained for ``budget`` steps (default: the quality's full
        budget), merged, then the compression applied: the deployed model."""
        assert self.adapters is not None
        sub, rest = split(config)
        steps = budget if budget is not None else self.quality.max_budget
        tuned = (state or self._state()).train(self, sub, steps)
        merged = tuned.merge_and_unload()  # type: ignore[operator]
        return self.space.apply(merged, rest, inplace=True)  # type: ignore[no-any-return]

    def measure_dense(self, budget: float | None = None) -> float:
        """The quality of the dense model itself."""
        return self._state().quality.measure(self.model, budget)

    def release(self) -> None:
        """Forget this process's prepared state (workspaces, dense reference)."""
        with _LOCK:
            _PREPARED.pop(self.token, None)

    def _state(self) -> _Prepared:
        with _LOCK:
            state = _PREPARED.get(self.token)
            if state is None:
                self.quality.prepare(self.model)
                while len(_PREPARED) >= _KEEP_PREPARED:  # a Ray worker outlives many calls
                    _PREPARED.pop(next(iter(_PREPARED)))
                state = _PREPARED[self.token] = _Prepared(self.quality)
            return state


class _Prepared:
    """A process's prepared quality, per-thread workspaces and training states of one
    CompressEvaluate."""

    def __init__(self, quality: Quality) -> None:
        self.quality = quality
        self._local = threading.local()
        self._states: OrderedDict[tuple[str, Any], Any] = OrderedDict()  # (key, steps) -> state
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def train(self, owner: CompressEvaluate, sub: Mapping[str, Any], steps: Any) -> nn.Module:
        """Adapters ``sub`` trained to ``steps``, from the latest state at or below it; one
        thread at a time per adapters (a twin waits and resumes from its state)."""
        adapters = owner.adapters
        assert adapters is not None
        key = adapters.key(sub)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                done = [s for k, s in self._states if k == key and _at_most(s, steps)]
                start = self._states.get((key, max(done))) if done else None
            model = adapters.build(owner.model, sub, owner.device)
            state = adapters.train(model, steps, start)
            with self._lock:
                self._states[key, steps] = state
                self._states.move_to_end((key, steps))
                while len(self._states) > _KEEP_STATES:
                    self._states.popitem(last=False)
        return model

    def workspace(self, owner: CompressEvaluate) -> Workspace:
        ws: Workspace | None = getattr(self._local, "workspace", None)
        if ws is None:
            ws = self._local.workspace = Workspace(owner.space, owner.model, device=owner.device)
        return ws


_PREPARED: dict[str, _Prepared] = {}  # token -> state, in this process
_KEEP_PREPARED = 4  # the most recent states kept (an evicted one is prepared again if used)
_KEEP_STATES = 120  # training states kept per CompressEvaluate (the most recent)
_LOCK = threading.Lock()
_INIT_LOCK = threading.Lock()  # seeding torch's global generator is not thread-safe


def _at_most(done: Any, steps: Any) -> bool:
    return bool(done == steps if done is None or steps is None else done <= steps)


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def dense_costs(model: nn.Module, fns: Mapping[str, Any], sample: Any) -> dict[str, float]:
    """The known costs of the dense model itself: nothing trained, its measured latency."""
    out = {}
    for name, fn in fns.items():
        metric, scale = COSTS[name]
        if metric is trainable_parameters:
            out[name] = 0.0
        elif metric is latency_ms:
            out[name] = float(getattr(fn, "dense", fn))
        else:
            out[name] = (metric(model, sample) if metric is bitops else metric(model)) * scale
    return out


def config_key(config: Mapping[str, Any]) -> Hashable:
    """A hashable of what determines the compressed model, for the quality's warm start."""
    return tuple(sorted(config.items()))


# The PEFT spec ------------------------------------------------------------------------------
def adapters_from_spec(model: nn.Module, peft: Any, seed: int | None) -> Adapters | None:
    """The PEFT part of the spec, checked: the space, the training, the baseline adapters."""
    if peft is None:
        return None
    if not isinstance(peft, Mapping):
        raise TypeError(f"peft must be a dict such as {{'train': fn, 'ranks': (4, 8)}}: {peft!r}.")
    unknown = sorted(set(peft) - set(PEFT_KEYS))
    if unknown:
        raise ValueError(f"peft has unknown keys {unknown}; known: {list(PEFT_KEYS)}.")
    train: Any = peft.get("train")
    try:
        inspect.signature(train).bind(None, None, None)
    except (TypeError, ValueError):
        raise TypeError(
            "peft needs 'train': fn(model, steps, start) -> state, which trains the adapters "
            f"of model up to steps from start (None or a state it returned); got {train!r}."
        ) from None
    from tradeoff.spaces import PEFTSpace

    options = {k: v for k, v in peft.items() if k not in ("train", "baselines")}
    space = PEFTSpace.for_model(model, **options)
    baselines = peft.get("baselines") or {"adapters": widest(space)}
    if not isinstance(baselines, Mapping) or not all(
        isinstance(b, Mapping) and space.contains(b) for b in baselines.values()
    ):
        raise ValueError(
            f"peft 'baselines' must map labels to adapters' Configs with the keys {sorted(space)} "
            f"(without 'peft.'), each in the space; got {baselines!r}."
        )
    return Adapters(space, train, baselines, seed or 0)


def widest(space: SearchSpace) -> Config:
    """The space's first Config with every target on, on every block it can reach."""
    config = {name: _first_value(p) for name, p in space.items()}
    config.update({k: True for k in config if k.startswith("target.")})
    if "last_layers" in config:
        last = space["last_layers"]
        config["last_layers"] = getattr(last, "high", None) or max(getattr(last, "values", [1]))
    return config


def _first_value(param: Any) -> Any:
    return param.values[0] if hasattr(param, "values") else param.low


def with_adapters(compression: SearchSpace, adapters: Adapters) -> SearchSpace:
    """The searched space: the adapters' parameters (a plain part: they are trained and merged
    by the evaluation, not applied in the stage order) and the compression's parts."""
    return SearchSpace.merge(**{PEFT: SearchSpace(dict(adapters.space))}, **compression.children)


class Trained:
    """``config -> (the merged fine-tuned model, the compression's space, its Config)`` for
    :class:`CompressResult`: the adapters trained again at the full budget, from their seeded
    initialization (the evaluation's states are gone with its workers)."""

    def __init__(self, evaluate: CompressEvaluate) -> None:
        self.evaluate = evaluate

    def __call__(
        self, config: Mapping[str, Any], *, merge: bool = True
    ) -> tuple[nn.Module, SearchSpace, Config]:
        """``merge=False``: the trained ``PeftModel`` itself (adapters on the dense model)."""
        sub, rest = split(config)
        ev = self.evaluate
        steps = ev.quality.max_budget
        assert ev.adapters is not None
        model = ev.adapters.build(ev.model, sub, ev.device)
        ev.adapters.train(model, steps, None)
        return (model.merge_and_unload() if merge else model), ev.space, rest  # type: ignore[operator]
