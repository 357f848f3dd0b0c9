"""``tradeoff.compress``: "compress my model" in one call, from the rooms' public pieces.

From a model, a quality objective and a short spec, :func:`compress` builds the search space
(elastic depth and FFN width, per-layer pruning, per-block quantization, PEFT adapters trained
and merged before them), the known costs (size, bit-ops, trainable parameters, latency) and the
budget constraints, a fidelity ladder from the quality's data, and the uniform starting
Configs; it builds the variant bank up front, calls :func:`~tradeoff.optimize`, then measures
the baselines (dense, uniform levels, the additive proxy at the budget) with the same
evaluation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import torch
from torch import nn

from tradeoff._compress_baselines import (
    BASELINES_ATTR,
    Baselines,
    Level,
    all_kept,
    excess,
    meets,
)
from tradeoff._compress_baselines import STARTS as STARTS  # re-exported for benchmarks
from tradeoff._compress_eval import (
    PEFT,
    Adapters,
    CompressEvaluate,
    Trained,
    adapters_from_spec,
    dense_costs,
    with_adapters,
)
from tradeoff._compress_eval import config_key as config_key  # re-exported for benchmarks
from tradeoff._compress_result import CompressResult, release_banks
from tradeoff._compress_spec import (
    Spec,
    budget_constraints,
    build_space,
    check_costs,
    check_reference,
    check_sample,
    cost_objective,
)
from tradeoff._optimize import RAY_DEFAULTS, make_pool, open_search_study, optimize, validate
from tradeoff._validate import check_backend, usage_errors
from tradeoff.objectives import Constraint, Objective
from tradeoff.objectives._quality import Quality, QualityFn
from tradeoff.search._asha import Fidelity
from tradeoff.search._baselines import uniform_configs
from tradeoff.spaces import Config, SearchSpace
from tradeoff.spaces._model import usable_device
from tradeoff.spaces._quant import QuantizationSpace

logger = logging.getLogger("tradeoff")

_SET_BY_COMPRESS = ("objectives", "constraints", "metrics", "fidelity", "initial_configs")


def compress(
    model: nn.Module,
    *,
    quality: Quality | Callable[[Any, Any], float],
    quantize: Mapping[str, Any] | None = None,
    prune: Mapping[str, Any] | None = None,
    drop_blocks: bool | str = False,
    ffn: Sequence[float] | None = None,
    peft: Mapping[str, Any] | None = None,
    budget: Mapping[str, float] | None = None,
    cost: str | Sequence[str] = "size_mb",
    reference: Mapping[str, float] | None = None,
    n_trials: int = 100,
    optimizer: str | optuna.samplers.BaseSampler = "auto",
    fidelity: bool | Fidelity = True,
    calibration: Any = None,
    sample_input: Any = None,
    baselines: bool = True,
    proxy_budget: float | None = None,
    device: str | torch.device | None = None,
    seed: int | None = None,
    n_workers: int = 1,
    backend: Any = "local",
    storage: Any = None,
    study_name: str | None = None,
    **optimize_kwargs: Any,
) -> CompressResult:
    """Search per-layer compressions of ``model`` for the Pareto set of quality against cost.

    Args:
        model: The float model (not modified).
        quality: A :class:`~tradeoff.objectives.Quality` (``KLToDense(ids)``,
            ``Accuracy((x, y))``, ``Perplexity(ids)``), or ``fn(model, budget) -> float``
            (lower is better; wrap it in ``QualityFn`` for another name or direction).
        quantize: Quantization spec, the arguments of
            :meth:`~tradeoff.spaces.QuantizationSpace.for_model` (``bits``, ``method``,
            ``granularity``, ``group_size``, ``include``, ``tie``, ``bank``: a directory, or
            ``VariantBank(DIR, max_memory_mb=...)`` to bound its memory...). Without
            ``tie``, the layers of each block of a transformer share one setting (one group per
            block, found by the largest ``ModuleList`` of blocks); layers outside blocks
            (``lm_head``) have their own.
        prune: Pruning spec, the arguments of :meth:`~tradeoff.spaces.PruningSpace.for_model`
            (``sparsity``, ``pattern`` (``"unstructured"``, ``"n:m"``, ``"channel"`` or a
            tuple to search), ``include``, ``tie``...); blocks tied as for ``quantize``.
            Channel pruning traces the model on ``sample_input`` (default: the quality's
            first example).
        drop_blocks: Also search which blocks to drop (``ArchitectureSpace.elastic``): ``True``
            finds the blocks (the largest ``ModuleList`` of same-class blocks), or give the
            ``ModuleList``'s name (``"model.layers"``).
        ffn: FFN width ratios to search per block (``(0.5, 0.75, 1.0)``; the FFN neurons of
            lowest weight norm are removed, ``ArchitectureSpace.elastic(ffn_ratios=...)``).
        peft: Adapters trained before the compression: ``train`` (required),
            ``train(model, steps, start) -> state`` trains the adapters of ``model`` (a fresh
            ``PeftModel``, adapters seeded by ``seed``) in place up to ``steps`` (the fidelity
            budget; the quality's ``max_budget`` at full budget), resuming from ``start``
            (``None``, or the state it returned for the same adapters at fewer steps), and
            returns a state to resume from; ``baselines``, label -> an adapters' Config
            (``{"method": "lora", "rank": 8, ...}``, without ``peft.``) each compressed at
            every uniform level for the baselines and starts (default: the space's first
            Config with every target and block); and the arguments of
            :meth:`~tradeoff.spaces.PEFTSpace.for_model` (``methods``, ``ranks``, ``alpha``,
            ``targets``, ``layers``, ``task_type``...). A Config's adapters are trained, merged
            into the weights, and then compressed (arch -> prune -> quant): the deployed model
            carries no adapter, and a compression's Configs share their adapters' training.
            The quality then measures the compressed model at the same budget.
        budget: Upper bounds, ``{"size_mb": 88.4}``; a cost's name, or the quality's name for a
            bound on it (``<=``, or ``>=`` for a maximized quality).
        cost: The known cost objectives, from :data:`COSTS`: ``"size_mb"`` (or
            ``"size_kb"``), ``"gbitops"`` (or ``"mbitops"``; runs the model once on
            ``sample_input``, default: the quality's first example), ``"trainable_k"`` (or
            ``"trainable_parameters"``; with ``peft``) and/or ``"latency_ms"`` (of
            ``sample_input`` on the model's device, one thread; from a per-block table of the
            architecture's levels measured before the search: quantization and unstructured
            sparsity are simulated and do not change it).
        n_trials: Total trials of the study (a resumed study runs only the missing ones).
        optimizer: As in :func:`~tradeoff.optimize`.
        fidelity: ``True``: a ladder ``Fidelity(quality.rungs())`` when the quality has a
            ``max_budget`` (three rungs, else two, else none); ``False``: full budget only; or
            a :class:`~tradeoff.search.Fidelity` the quality can measure.
        calibration: GPTQ's calibration inputs; default for a ``KLToDense`` quality: its
            calibration ids (a separate set is better: the same data then both fits and
            judges the quantization).
        reference: The hypervolume reference point by objective name (the quality's and each
            cost's), e.g. ``{"kl": 1.0, "size_mb": 100.0}``; default: derived from the first
            trials and fixed on the study (see :func:`~tradeoff.optimize`).
        sample_input: An input of the model (a batch of one) for bit-ops and channel
            pruning; default: ``quality.example()``.
        baselines: Measure the additive-proxy baseline (what one-shot tools return) before the
            search: each layer's levels measured alone (at ``proxy_budget``), an exact
            knapsack at the budget (or at each uniform level's cost) and at 10 budgets from
            the cheapest uniform level's cost up to it. Its Configs within the budget start
            the search beside the uniform levels, so the front holds them or better and the
            search's work is to improve on them and fill the sizes between. The dense model
            and the uniform levels are always in :attr:`CompressResult.baselines`.
        proxy_budget: The quality's budget the knapsack measures each layer's levels at
            (token sequences, examples...); default: the ladder's second rung (the top one
            of a two-rung ladder), or all the data without a ladder. One layer's change moves
            the quality far less than a whole Config's, so its measurement needs more data
            than the lowest rung, which ranks Configs: on SmolLM2 the knapsack's Configs from
            1 of 9 windows had hypervolume 19.32, from 3 windows 20.31 (README,
            ``benchmarks/knapsack_proxy.py``). With ``fidelity=False`` on a large quality, a
            low budget here keeps the knapsack cheap while every trial runs on all the data.
        device: Where trials run and GPTQ calibrates (default: the model's device).
        seed, n_workers, backend, storage, study_name: As in :func:`~tradeoff.optimize`.
        **optimize_kwargs: Any other argument of :func:`~tradeoff.optimize`
            (``show_progress``, ``timeout``, ``ray_actors``...).

    The uniform levels within the budget (every block kept) are the first trials, run at the
    full budget even under a fidelity ladder (``optimize``'s ``initial_configs``), so the front
    starts from them and the baselines table reads them from the study. Baselines measured
    outside the trials (the proxy's Configs) are recorded on the study: a resumed call does not
    measure them again.

    Returns:
        A :class:`CompressResult`: the search's result, its baselines, and ``model(trial)``.

    Raises:
        TypeError, ValueError: bad input, before any trial runs or storage is written: a
            model with no layer the spec acts on, unknown ``quantize``/``prune`` keys, a
            CUDA device torch cannot see, a budget no Config meets, a quality that is not
            one, or a non-finite quality on the dense model.
    """
    quality = _check_quality(quality)
    _check_call(model, optimize_kwargs, drop_blocks)
    adapters = adapters_from_spec(model, peft, seed)
    _check_device(device)
    costs = check_costs(cost)
    ray_options = {k: optimize_kwargs.pop(k, v) for k, v in RAY_DEFAULTS.items()}
    notes = optimize_kwargs.pop("notes", True)
    artifacts = optimize_kwargs.pop("artifact_store", None)
    if artifacts is not None:
        from tradeoff.review._artifacts import artifact_store

        with usage_errors():  # before anything is built or written
            artifacts = artifact_store(artifacts)
    with usage_errors():  # before the spaces are built: some calibrate
        check_backend(backend, n_workers, ray_options, defaults=RAY_DEFAULTS)
    constraints = budget_constraints(budget, costs, quality)
    sample = sample_input if sample_input is not None else quality.example()
    spec = Spec(quantize, prune, drop_blocks, calibration, sample, ffn)
    compression = build_space(model, spec, quality, device)
    space = compression if adapters is None else with_adapters(compression, adapters)
    check_sample(costs, sample)
    refs = check_reference(reference, [quality.name, *costs])
    objectives = [
        quality.objective(reference=refs.get(quality.name)),
        *(cost_objective(n, compression, model, sample, refs.get(n), adapters) for n in costs),
    ]
    levels = _uniform_levels(compression, objectives[1:], constraints, adapters)
    ladder = _ladder(fidelity, quality)
    low = _proxy_budget(proxy_budget, ladder, quality)
    evaluate = CompressEvaluate(compression, model, quality, device=device, adapters=adapters)
    starts = [c for _, c, values in levels if all_kept(c) and meets(values, constraints)]
    search = {
        "objectives": objectives, "constraints": constraints, "fidelity": ladder,
        "n_trials": n_trials, "optimizer": optimizer, "seed": seed, **optimize_kwargs,
    }  # fmt: skip
    try:
        dense = _check_dense(evaluate)
        objset, _, store = validate(  # creates no study, writes nothing
            evaluate, space, backend=backend, n_workers=n_workers, storage=storage,
            study_name=study_name, initial_configs=_first(starts, n_trials),
            ray_options=ray_options, **search,
        )  # fmt: skip
        for part in space.children.values():
            if isinstance(part, QuantizationSpace):
                part.build(model)
        # Validation is over: from here on, storage is written.
        study = open_search_study(store, study_name, objset, space)
        pool = make_pool(backend, n_workers, ray_options)  # the proxy's and the search's
        measured = Baselines(
            evaluate, objectives, constraints, low, seed=seed, pool=pool,
            stored=dict(study.user_attrs.get(BASELINES_ATTR, {})),
        )  # fmt: skip
        if baselines and adapters is not None:
            logger.info("compress: no additive-proxy baseline over PEFT adapters")
        elif baselines:  # the search starts from the knapsack's Configs too: it can only add
            known = [o for o in objectives if o.fn is not None]
            for config in measured.proxy_starts(space, levels, budget):
                values = {o.name: o.fn(config) for o in known if o.fn is not None}
                if meets(values, constraints) and config not in starts:
                    starts.append(config)
            # Recorded before the search: a search killed at any moment resumes without
            # measuring the knapsack again.
            study.set_user_attr(BASELINES_ATTR, measured.cache)
        with contextlib.ExitStack() as during:
            if notes:  # the study's note and figures, kept current while trials finish
                from tradeoff.review._live import live_notes

                during.enter_context(live_notes(study, objset))
            result = optimize(
                evaluate, space, initial_configs=_first(starts, n_trials),
                n_workers=pool.n_workers, backend=pool, storage=store,
                study_name=study.study_name, notes=False, **search,
            )  # fmt: skip
        measured.attach(result)
        cost_fns = {o.name: o.fn for o in objectives[1:]}
        rows = [measured.dense(dense, dense_costs(model, cost_fns, sample))]
        rows += measured.uniform(levels)
        if baselines and adapters is None:
            rows += measured.proxy(space, levels, budget)
        measured.save()
    finally:
        evaluate.release()
        freed = release_banks(space)  # the result reads what it needs from the bank again
        logger.info("compress: freed %.0f MB held for the search", freed / 1e6)
    out = CompressResult(
        result.study, result.objectives, space=space, model=model, rows=rows,
        artifact_store=artifacts, trained=None if adapters is None else Trained(evaluate),
    )  # fmt: skip
    if notes:
        from tradeoff.review import write_notes

        write_notes(out, out.baselines)  # with the baselines each Pareto trial dominates
    if artifacts is not None:
        from tradeoff.review._artifacts import write_artifacts

        write_artifacts(out, artifacts, out.baselines)
    return out


# Checks and pieces ------------------------------------------------------------------------------
def _check_quality(quality: Any) -> Quality:
    if isinstance(quality, Quality):
        return quality
    if callable(quality):
        return QualityFn(quality, "quality")
    raise TypeError(
        "quality must be a tradeoff.objectives.Quality (KLToDense(ids), Accuracy((x, y)), "
        f"Perplexity(ids), QualityFn(fn, name)) or fn(model, budget) -> float, got {quality!r}."
    )


def _check_call(model: Any, optimize_kwargs: Mapping[str, Any], drop_blocks: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(drop_blocks, (bool, str)):
        raise TypeError(
            f"drop_blocks must be True, False or the name of the blocks' ModuleList, got "
            f"{drop_blocks!r}."
        )
    taken = sorted(set(optimize_kwargs) & set(_SET_BY_COMPRESS))
    if taken:
        raise TypeError(
            f"compress sets {taken} itself (from quality, cost, budget and fidelity); for "
            "your own objectives, constraints or starting Configs call tradeoff.optimize."
        )


def _check_device(device: Any) -> None:
    if device is not None:
        usable_device(device, setting=f"device={device!r}", name="device", fix="use device='cpu'")


def _uniform_levels(
    space: SearchSpace, costs: Sequence[Objective], constraints: Sequence[Constraint],
    adapters: Adapters | None = None,
) -> list[Level]:  # fmt: skip
    """Every uniform setting (after each baseline adapter) with its known costs; raises if none
    meets the cost budget."""
    uniform = uniform_configs(space)
    if adapters is not None:
        uniform = [
            (f"{name}, {label}", {**{f"{PEFT}.{k}": v for k, v in sub.items()}, **config})
            for label, config in uniform
            for name, sub in adapters.baselines.items()
        ]
    levels = [
        (label, config, {o.name: o.fn(config) for o in costs if o.fn is not None})
        for label, config in uniform
    ]
    known = [c for c in constraints if c.name in levels[0][2]]
    if known and not any(meets(values, known) for _, _, values in levels):
        label, _, values = min(levels, key=lambda level: excess(level[2], known))
        bounds = ", ".join(f"{c.name} {c.op} {c.bound:g}" for c in known)
        got = ", ".join(f"{c.name} = {values[c.name]:.6g}" for c in known)
        raise ValueError(
            f"No Config meets the budget {bounds}: the closest uniform setting, {label!r}, "
            f"has {got}. Raise the budget or add cheaper levels (fewer bits, drop_blocks=True)."
        )
    return levels


def _first(configs: list[Config], n_trials: Any) -> list[Config]:
    """The starting Configs that fit the budget of trials (all if ``n_trials`` is bad: the
    check of ``n_trials`` says so)."""
    return configs[:n_trials] if isinstance(n_trials, int) and n_trials > 0 else configs


def _ladder(fidelity: Any, quality: Quality) -> Fidelity | None:
    if isinstance(fidelity, Fidelity):
        quality.check_budgets(fidelity)
        return fidelity
    if not isinstance(fidelity, bool):
        raise TypeError(f"fidelity must be True, False or a Fidelity, got {fidelity!r}.")
    if not fidelity or quality.max_budget is None:
        return None
    for n in (3, 2):
        try:
            return Fidelity(quality.rungs(n))
        except ValueError:
            continue
    logger.info("compress: %s has too little data for a fidelity ladder", quality.name)
    return None


def _proxy_budget(given: Any, ladder: Fidelity | None, quality: Quality) -> float | None:
    if given is None:  # the second rung: see the docstring
        return None if ladder is None else ladder.budgets[min(1, len(ladder.budgets) - 1)]
    try:
        quality.check_budgets([given])
    except ValueError as error:
        raise ValueError(f"proxy_budget: {error}") from None
    return float(given) if not isinstance(quality.max_budget, int) else int(given)


def _check_dense(evaluate: CompressEvaluate) -> float:
    try:
        return evaluate.measure_dense()
    except ValueError as error:
        raise ValueError(
            f"The quality cannot be measured on the dense model itself: {error} Check the "
            "quality's data and function against the model."
        ) from error
