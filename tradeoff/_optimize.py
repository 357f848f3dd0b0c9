"""``tradeoff.optimize``: wires space, objectives, optimizer, worker pool and study."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from tqdm.auto import tqdm

from tradeoff._result import META_COLUMNS, SearchResult
from tradeoff._study import REFERENCE_ATTR, fixed_reference, make_storage, open_study
from tradeoff.objectives import Constraint, Objective, ObjectiveSet
from tradeoff.search import check_optimizer, make_sampler
from tradeoff.search._asha import Fidelity, Promoter
from tradeoff.spaces import Config, SearchSpace
from tradeoff.workers import LocalPool, RayPool, WorkerPool
from tradeoff.workers._base import AtBudget, check_n_workers
from tradeoff.workers._budget import count_done
from tradeoff.workers._driver import Driver

logger = logging.getLogger("tradeoff")

BACKENDS = ("local", "ray")


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
        seed: Makes proposals reproducible (with ``n_workers=1``). Clients sharing a study
            need distinct seeds (or none), or they propose the same Configs.
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
            the same parameters, as when a search resumes) is not added again.

    Returns:
        The :class:`SearchResult` of the whole study.

    Raises:
        ValueError, TypeError: bad input, before any trial runs.
    """
    objset = ObjectiveSet.build(objectives, constraints, metrics)
    _check_inputs(evaluate, space, objset, optimizer, n_trials, timeout, trial_timeout)
    _check_fidelity(evaluate, fidelity)
    initial = _check_initial(space, initial_configs, n_trials)
    pool = _make_pool(
        backend,
        n_workers,
        ray_address=ray_address,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        resources=resources,
        max_retries=max_retries,
        actors=ray_actors,
    )
    store, study = _open(storage, study_name, objset)
    # Seeded from (seed, trial count): a resumed search does not replay the first run's
    # proposals, and clients sharing a study with seeds s and s + k never fall into step (as
    # seed + count would, once one has k more trials to start from).
    existing = len(study.get_trials(deepcopy=False))
    for params in initial:
        study.enqueue_trial(params, skip_if_exists=True)
    study.sampler = make_sampler(
        optimizer,
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
    )
    _run_with_progress(driver, n_trials=n_trials, show=show_progress)
    result = SearchResult(study, objset)
    _record_reference(study, result)
    logger.info("%s", result.summary())
    return result


def _open(
    storage: str | BaseStorage | None, study_name: str | None, objset: ObjectiveSet
) -> tuple[BaseStorage, optuna.Study]:
    if storage is not None and not isinstance(storage, BaseStorage) and study_name is None:
        raise ValueError(
            "A persistent storage needs a study_name, so the search can be found and resumed."
        )
    store = make_storage(storage)
    # The sampler is replaced once the study is open (see optimize).
    placeholder = optuna.samplers.RandomSampler()
    study = open_study(storage=store, study_name=study_name, objectives=objset, sampler=placeholder)
    return store, study


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


def _check_inputs(
    evaluate: Any,
    space: Any,
    objset: ObjectiveSet,
    optimizer: Any,
    n_trials: Any,
    timeout: Any,
    trial_timeout: Any,
) -> None:
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable (config -> dict), got {evaluate!r}.")
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a tradeoff.spaces.SearchSpace, got {type(space).__name__}.")
    taken = set(objset.names) | set(objset.metrics) | set(META_COLUMNS)
    clash = sorted(set(space) & taken)
    if clash:
        raise ValueError(
            f"Parameter names {clash} clash with objective, metric or result column names "
            f"({sorted(taken)}); rename the parameters."
        )
    check_optimizer(optimizer)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}.")
    for name, value in (("timeout", timeout), ("trial_timeout", trial_timeout)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}.")


def _check_initial(space: SearchSpace, configs: Any, n_trials: int) -> list[dict[str, Any]]:
    """``initial_configs`` -> the trial params to enqueue; a clear error for a bad one."""
    if configs is None:
        return []
    if isinstance(configs, Mapping) or not isinstance(configs, Sequence):
        raise TypeError(
            "initial_configs must be a list of Configs (dicts of parameter -> value), "
            f"got {type(configs).__name__}."
        )
    if len(configs) > n_trials:
        raise ValueError(
            f"initial_configs has {len(configs)} Configs but n_trials={n_trials}: raise "
            "n_trials or pass fewer Configs."
        )
    params = []
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise TypeError(f"initial_configs[{i}] must be a dict, got {type(config).__name__}.")
        bad = {k: config[k] for k in space if k in config and not space[k].contains(config[k])}
        if bad:
            raise ValueError(
                f"initial_configs[{i}] has values outside the search space: "
                + ", ".join(f"{k}={v!r} (allowed: {space[k]!r})" for k, v in bad.items())
            )
        try:
            encoded = space.encode(config)
        except ValueError as error:
            raise ValueError(f"initial_configs[{i}]: {error}") from None
        params.append(encoded)
    return params


def _mix_seed(seed: int, existing: int) -> int:
    return int(np.random.SeedSequence([seed, existing]).generate_state(1)[0])


def _check_fidelity(evaluate: Any, fidelity: Any) -> None:
    if fidelity is None:
        return
    if not isinstance(fidelity, Fidelity):
        raise TypeError(
            f"fidelity must be a tradeoff.search.Fidelity (a budget ladder), got {fidelity!r}."
        )
    try:
        inspect.signature(evaluate).bind({}, fidelity.budgets[0])
    except TypeError:
        raise TypeError(
            "With fidelity=..., evaluate is called as evaluate(config, budget); "
            f"{getattr(evaluate, '__name__', evaluate)!r} does not take a budget argument."
        ) from None
    except ValueError:  # no signature (some builtins): let the first call tell
        pass


def _make_pool(backend: str | WorkerPool, n_workers: int, **ray_options: Any) -> WorkerPool:
    if isinstance(backend, WorkerPool):
        return backend
    n_workers = check_n_workers(n_workers)
    if backend == "local":
        return LocalPool(n_workers)
    if backend == "ray":
        return RayPool(n_workers, **ray_options)
    raise ValueError(f"Unknown backend {backend!r}; use one of {list(BACKENDS)} or a WorkerPool.")


def _record_reference(study: optuna.Study, result: SearchResult) -> None:
    """Fix the derived reference point on the study, so later hypervolumes are comparable."""
    if REFERENCE_ATTR in study.user_attrs:
        return
    ref = result.reference_point()
    if ref is not None:
        study.set_user_attr(REFERENCE_ATTR, json.dumps(ref))


def _as_list(ref: Mapping[str, float] | None, objset: ObjectiveSet) -> list[float] | None:
    return None if ref is None else [ref[n] for n in objset.names]
