"""``tradeoff.optimize``: wires space, objectives, optimizer, worker pool and study."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from tqdm.auto import tqdm

from tradeoff._result import SearchResult
from tradeoff._study import (
    ATTR_FIDELITY,
    REFERENCE_ATTR,
    fixed_reference,
    make_storage,
    open_study,
)
from tradeoff._validate import (
    SPACE_ATTR,
    check_arguments,
    check_backend,
    check_fidelity,
    check_initial,
    check_known_costs,
    check_stored_space,
    space_signature,
    usage_errors,
)
from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search import auto_choice, make_sampler
from tradeoff.search._asha import Fidelity, Promoter
from tradeoff.spaces import Config, SearchSpace
from tradeoff.workers import LocalPool, RayPool, WorkerPool
from tradeoff.workers._base import AtBudget
from tradeoff.workers._budget import count_done
from tradeoff.workers._driver import Driver

logger = logging.getLogger("tradeoff")

OPTIMIZER_ATTR = "tradeoff.optimizer"  # what optimizer="auto" picked for the study
OPTIMIZER_REASON_ATTR = "tradeoff.optimizer_reason"  # and which of its rules decided


def optimize(
    evaluate: Callable[[Config], Mapping[str, float]],
    space: SearchSpace,
    *,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    metrics: Sequence[str] = (),
    optimizer: str | optuna.samplers.BaseSampler = "auto",
    n_trials: int = 100,
    n_workers: int = 1,
    backend: str | WorkerPool = "local",
    storage: str | BaseStorage | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    trial_timeout: float | None = None,
    ray_address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    resources: Mapping[str, float] | None = None,
    max_retries: int = 3,
    ray_actors: bool = False,
    show_progress: bool = True,
    fidelity: Fidelity | None = None,
    initial_configs: Sequence[Mapping[str, Any]] | None = None,
    notes: bool = False,
    artifact_store: Any = None,
    propose_ahead: bool = False,
) -> SearchResult:
    """Search ``space`` for the Pareto set of ``objectives``.

    Re-running the same call on the same ``storage`` and ``study_name`` resumes: ``n_trials`` is
    the total the study should reach, so only the missing trials run, and trials a crashed
    driver left unfinished are re-enqueued first.

    Args:
        evaluate: ``evaluate(config) -> {metric: value}`` for every measured objective (those
            without ``fn``) and every name in ``metrics``. An exception, a missing or extra key,
            or a non-finite value fails that trial (with its reason); the search goes on.
        space: What to search.
        objectives: What to optimize, in order (= study directions = metric names).
        constraints: Hard bounds. Those over known-cost objectives reject a Config before it
            runs; the others mark completed trials infeasible.
        metrics: Extra names ``evaluate`` returns (recorded, usable in constraints).
        optimizer: ``"auto"``, ``"random"``, ``"nsga2"``, ``"tpe"``, ``"gp"``, or a sampler.
        n_trials: Total trials the study should reach (completed or failed in evaluation).
        n_workers: Trials evaluated at once.
        backend: ``"local"`` (threads in this process), ``"ray"``, or a ``WorkerPool``.
        storage: ``None`` (in memory), a database URL (``sqlite:///x.db``,
            ``postgresql://...``), a journal file ``*.log``, or a ``BaseStorage``.
        study_name: Study to create or resume (required to resume from a persistent storage).
        seed: Makes proposals reproducible with ``n_workers=1``, or with any number of workers
            through ``backend=InTrialOrder(pool)`` (:class:`~tradeoff.workers.InTrialOrder`).
            Clients sharing a study need distinct seeds (or none), or they propose the same
            Configs.
        timeout: Stop proposing new trials after this many seconds.
        trial_timeout: Fail a trial running longer than this many seconds (Ray cancels it).
        ray_address: ``None`` starts local Ray, ``"auto"`` joins a cluster, or an address.
        num_cpus: CPUs reserved per trial on Ray.
        num_gpus: GPUs reserved per trial on Ray (fractions allowed).
        resources: Custom Ray resources per trial.
        max_retries: Ray re-runs of a trial whose worker died.
        ray_actors: On Ray, evaluate on ``n_workers`` persistent actors that keep ``evaluate``
            (and the model it closes over) loaded, instead of one task per trial.
        show_progress: Show a progress bar with the Pareto-set size and hypervolume.
        fidelity: Multi-fidelity search (:class:`~tradeoff.search.Fidelity`, a budget ladder):
            ``evaluate(config, budget)`` then runs every Config at the lowest budget and moves
            the best ``1/eta`` of each rung up (asynchronous successive halving, ranked by
            non-dominated sorting and hypervolume contribution). ``n_trials`` counts Configs;
            only evaluations at the top budget complete and form the Pareto set.
        initial_configs: Configs to evaluate first, before the optimizer proposes any
            (e.g. uniform int8 and int4, or a known good setting, so the front starts from
            them). They count toward ``n_trials``; one the study already has (any trial with
            the same parameters, as when a search resumes) is not added again. With a
            ``fidelity`` ladder they are evaluated at the full budget directly, so they are
            always in the comparison (a screening rung could stop them).
        notes: Write optuna-dashboard notes (the study's summary and figures, kept current
            every few seconds while trials finish, and when the search is over each Pareto
            trial's objectives and per-layer Config in real levels; see
            :mod:`tradeoff.review`) when optuna-dashboard is installed. Off by default:
            optuna-dashboard loads torch; ``tradeoff dashboard`` writes missing notes anyway.
        artifact_store: A directory or an ``optuna.artifacts`` store: when the search is over,
            each Pareto trial's Config (``config.json``) and the study's report are uploaded
            as artifacts, for optuna-dashboard's artifact panes (``tradeoff dashboard
            --artifact-dir``). A directory that is not writable is refused before any trial.
        propose_ahead: While every worker is busy, ask the optimizer for the next Config, so
            a worker that frees up starts it at once: the optimizer's time overlaps the
            trials' instead of following them (worth it when proposals take a noticeable
            share of a trial, e.g. ``mobo`` with many workers). Each proposal then sees one
            more running trial (mobo and ``gp`` model running trials). Ignored with
            ``fidelity`` (a promotion depends on the trials that finish). A proposal never
            started when the search stops is recorded ``interrupted`` and runs first when
            the search resumes.

    Returns:
        The :class:`SearchResult` of the whole study.

    Raises:
        ValueError, TypeError: bad input, before any trial runs.
    """
    ray_options = {
        "ray_address": ray_address,
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "resources": resources,
        "max_retries": max_retries,
        "ray_actors": ray_actors,
    }
    objset, initial, store = validate(
        evaluate, space, objectives=objectives, constraints=constraints, metrics=metrics,
        optimizer=optimizer, n_trials=n_trials, n_workers=n_workers, backend=backend,
        storage=storage, study_name=study_name, seed=seed, timeout=timeout,
        trial_timeout=trial_timeout, show_progress=show_progress, fidelity=fidelity,
        initial_configs=initial_configs, ray_options=ray_options, propose_ahead=propose_ahead,
    )  # fmt: skip
    artifacts = None
    if artifact_store is not None:
        from tradeoff.review._artifacts import artifact_store as resolve_store

        with usage_errors():
            artifacts = resolve_store(artifact_store)
    # Validation is over: from here on, storage is written.
    study = open_search_study(store, study_name, objset, space)
    pool = make_pool(backend, n_workers, ray_options)
    # Seeded from (seed, trial count): a resumed search does not replay the first run's
    # proposals, and clients sharing a study with seeds s and s + k never fall into step (as
    # seed + count would, once one has k more trials to start from).
    existing = len(study.get_trials(deepcopy=False))
    # Under a fidelity ladder they run at the full budget at once: they are the settings the
    # front must be compared with (uniform levels, a known good one), not candidates to screen.
    top = None if fidelity is None else {ATTR_FIDELITY: fidelity.tag(fidelity.top)}
    for params in initial:
        study.enqueue_trial(params, user_attrs=top, skip_if_exists=True)
    study.sampler = make_sampler(
        _resolve_auto(study, optimizer, space=space, objectives=objset, n_trials=n_trials),
        space=space,
        objectives=objset,
        n_trials=n_trials,
        n_workers=pool.n_workers,
        seed=None if seed is None else _mix_seed(seed, existing),
    )
    driver = Driver(
        study=study,
        storage=store,
        space=space,
        objectives=objset,
        pool=pool,
        evaluate=evaluate if fidelity is None else AtBudget(evaluate),
        n_trials=n_trials,
        timeout=timeout,
        trial_timeout=trial_timeout,
        reference=_as_list(fixed_reference(study, objset), objset),
        promoter=None if fidelity is None else Promoter(fidelity, objset.names, objset.directions),
        propose_ahead=propose_ahead,
    )
    with contextlib.ExitStack() as during:
        if notes:  # the study's note and figures, kept current while trials finish
            from tradeoff.review._live import live_notes

            during.enter_context(live_notes(study, objset))
        _run_with_progress(driver, n_trials=n_trials, show=show_progress)
    result = SearchResult(study, objset)
    _record_reference(study, result)
    logger.info("%s", result.summary())
    if notes:
        from tradeoff.review import write_notes

        write_notes(result)  # for optuna-dashboard, once the search is over
    if artifacts is not None:
        from tradeoff.review._artifacts import write_artifacts

        write_artifacts(result, artifacts)
    return result


def validate(
    evaluate: Callable[..., Any],
    space: SearchSpace,
    *,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    metrics: Sequence[str] = (),
    optimizer: str | optuna.samplers.BaseSampler = "auto",
    n_trials: int = 100,
    n_workers: int = 1,
    backend: str | WorkerPool = "local",
    storage: str | BaseStorage | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    trial_timeout: float | None = None,
    show_progress: bool = True,
    fidelity: Fidelity | None = None,
    initial_configs: Sequence[Mapping[str, Any]] | None = None,
    ray_options: Mapping[str, Any] | None = None,
    propose_ahead: bool = False,
) -> tuple[ObjectiveSet, list[dict[str, Any]], BaseStorage]:
    """Every check :func:`optimize` makes of its arguments before it writes anything: the
    objective set, the initial Configs as Optuna parameters, and the storage (not written).

    Raises:
        ValueError, TypeError: bad input (marked as the user's, see ``usage_errors``).
    """
    ray = {**RAY_DEFAULTS, **(ray_options or {})}
    with usage_errors():
        objset = ObjectiveSet.build(objectives, constraints, metrics)
        check_arguments(
            evaluate,
            space,
            objset,
            optimizer=optimizer,
            n_trials=n_trials,
            seed=seed,
            timeout=timeout,
            trial_timeout=trial_timeout,
            study_name=study_name,
            show_progress=show_progress,
            propose_ahead=propose_ahead,
        )
        check_backend(backend, n_workers, ray, defaults=RAY_DEFAULTS)
        check_fidelity(evaluate, fidelity)
        store = _storage(storage, study_name)
        # Before the initial Configs are encoded: a study written with Ordinal indices keeps
        # them (check_stored_space sets the space's encoding to the study's).
        check_stored_space(store, study_name, space)
        initial = check_initial(space, initial_configs, n_trials)
        check_known_costs(space, objset, [space.decode(p) for p in initial])
    return objset, initial, store


RAY_DEFAULTS: dict[str, Any] = {
    name: p.default
    for name, p in inspect.signature(optimize).parameters.items()
    if name in ("ray_address", "num_cpus", "num_gpus", "resources", "max_retries", "ray_actors")
}
"""``optimize``'s Ray-only arguments and their defaults (any other value needs Ray)."""


def _storage(storage: str | BaseStorage | None, study_name: str | None) -> BaseStorage:
    if storage is not None and not isinstance(storage, BaseStorage) and study_name is None:
        raise ValueError(
            "A persistent storage needs a study_name, so the search can be found and resumed."
        )
    return make_storage(storage)


def open_search_study(
    store: BaseStorage, study_name: str | None, objset: ObjectiveSet, space: SearchSpace
) -> optuna.Study:
    """Create or resume the study of a search (after :func:`validate`), its space recorded."""
    # The sampler is replaced once the study is open (see optimize).
    placeholder = optuna.samplers.RandomSampler()
    study = open_study(storage=store, study_name=study_name, objectives=objset, sampler=placeholder)
    if SPACE_ATTR not in study.user_attrs:
        study.set_user_attr(SPACE_ATTR, space_signature(space))
    return study


def _resolve_auto(
    study: optuna.Study,
    optimizer: str | optuna.samplers.BaseSampler,
    *,
    space: SearchSpace,
    objectives: ObjectiveSet,
    n_trials: int,
) -> str | optuna.samplers.BaseSampler:
    """What ``"auto"`` picks, recorded on the study the first time (``tradeoff.optimizer``):
    a resumed search keeps its optimizer even if the rule or the installed extras changed."""
    if optimizer != "auto":
        return optimizer
    recorded = study.user_attrs.get(OPTIMIZER_ATTR)
    if isinstance(recorded, str):
        return recorded
    name, why = auto_choice(space, n_trials=n_trials, objectives=objectives)
    study.set_user_attr(OPTIMIZER_ATTR, name)
    study.set_user_attr(OPTIMIZER_REASON_ATTR, why)
    logger.info("optimizer='auto' picks %r (%s; recorded on the study)", name, why)
    return name


def _run_with_progress(driver: Driver, *, n_trials: int, show: bool) -> None:
    """Run the driver under a progress bar: trials done, Pareto-set size, hypervolume."""
    done = count_done(driver.study)
    logger.info("study %r: %d/%d trials done", driver.study.study_name, done, n_trials)
    with tqdm(
        total=n_trials,
        initial=min(done, n_trials),
        desc="tradeoff",
        unit="trial",
        dynamic_ncols=True,
        disable=not show,
    ) as bar:

        def progress(n_done: int, size: int, hv: float) -> None:
            bar.update(min(n_done, n_trials) - bar.n)
            bar.set_postfix(pareto=size, hv=f"{hv:.4g}", refresh=False)

        if show:
            driver.on_progress = progress
        driver.run()


def _mix_seed(seed: int, existing: int) -> int:
    return int(np.random.SeedSequence([seed, existing]).generate_state(1)[0])


def make_pool(backend: str | WorkerPool, n_workers: int, ray_options: dict[str, Any]) -> WorkerPool:
    if isinstance(backend, WorkerPool):
        return backend
    if backend == "local":
        return LocalPool(n_workers)
    options = dict(ray_options)
    return RayPool(n_workers, actors=options.pop("ray_actors"), **options)


def _record_reference(study: optuna.Study, result: SearchResult) -> None:
    """Fix the derived reference point on the study, so later hypervolumes are comparable."""
    if REFERENCE_ATTR in study.user_attrs:
        return
    ref = result.reference_point()
    if ref is not None:
        study.set_user_attr(REFERENCE_ATTR, json.dumps(ref))


def _as_list(ref: Mapping[str, float] | None, objset: ObjectiveSet) -> list[float] | None:
    return None if ref is None else [ref[n] for n in objset.names]
