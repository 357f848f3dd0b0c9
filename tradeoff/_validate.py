"""Checks at ``optimize``'s public edge: every argument, before any work or storage write.

Each check raises ``ValueError``/``TypeError`` naming the argument and the fix. The known-cost
checks call the user's ``fn`` on a few Configs (on the driver, where the search calls it too)
so that a cost function that always fails, or a budget no Config can meet, stops the search
before a single trial is written.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from tradeoff._result import META_COLUMNS
from tradeoff._study import ATTR_CONFIG
from tradeoff.objectives import ObjectiveSet
from tradeoff.objectives._objective import is_finite_number
from tradeoff.search import check_optimizer
from tradeoff.search._asha import Fidelity
from tradeoff.spaces import Choice, Config, Float, Int, Ordinal, SearchSpace
from tradeoff.workers import WorkerPool
from tradeoff.workers._base import check_n_workers

BACKENDS = ("local", "ray")
_USAGE = "_tradeoff_usage"
SPACE_ATTR = "tradeoff.space"  # {name: repr of the parameter}: the space a study searches

COST_TRIES = 8
"""Sample Configs a known-cost ``fn`` may fail on before the search is refused."""
FEASIBLE_SAMPLES = 32
"""Random Configs tried for a known-cost budget before the per-parameter descent."""
MAX_COST_CALLS = 4000
"""Calls of the known-cost functions the feasibility check makes at most."""


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Mark the ``ValueError``/``TypeError``/``KeyError``/``ImportError``/``FileNotFoundError``
    raised inside as the user's input being wrong (:func:`is_usage_error`), so the CLI prints
    their message alone; any other exception is a bug and keeps its traceback."""
    try:
        yield
    except (ValueError, TypeError, KeyError, ImportError, FileNotFoundError) as error:
        setattr(error, _USAGE, True)
        raise


def is_usage_error(error: BaseException) -> bool:
    """Whether ``error`` was raised by a check of the user's input (:func:`usage_errors`)."""
    return bool(getattr(error, _USAGE, False))


def check_arguments(
    evaluate: Any,
    space: Any,
    objset: ObjectiveSet,
    *,
    optimizer: Any,
    n_trials: Any,
    seed: Any,
    timeout: Any,
    trial_timeout: Any,
    study_name: Any,
    show_progress: Any,
    propose_ahead: Any = False,
) -> None:
    """The plain arguments of ``optimize``."""
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable (config -> dict), got {evaluate!r}.")
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space must be a tradeoff.spaces.SearchSpace, got {type(space).__name__}.")
    reserved = sorted((set(objset.names) | set(objset.metrics)) & set(META_COLUMNS))
    if reserved:
        raise ValueError(
            f"Objective/metric names {reserved} are result columns ({list(META_COLUMNS)}); "
            f"rename them, e.g. Objective({reserved[0] + '_value'!r})."
        )
    taken = set(objset.names) | set(objset.metrics) | set(META_COLUMNS)
    clash = sorted(set(space) & taken)
    if clash:
        raise ValueError(
            f"Parameter names {clash} clash with objective, metric or result column names "
            f"({sorted(taken)}); rename the parameters."
        )
    check_optimizer(optimizer)
    if not _is_int(n_trials) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}.")
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}.")
    for name, value in (("timeout", timeout), ("trial_timeout", trial_timeout)):
        if value is not None and not (_is_real(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}.")
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise ValueError(f"study_name must be a non-empty string or None, got {study_name!r}.")
    if not isinstance(show_progress, bool):
        raise TypeError(f"show_progress must be True or False, got {show_progress!r}.")
    if not isinstance(propose_ahead, bool):
        raise TypeError(f"propose_ahead must be True or False, got {propose_ahead!r}.")


def check_backend(
    backend: Any, n_workers: Any, ray: Mapping[str, Any], *, defaults: Mapping[str, Any]
) -> None:
    """``backend``, ``n_workers`` and the Ray-only options ``ray`` (refused on another backend,
    where they would be silently ignored, unless they equal their ``defaults``)."""
    if not isinstance(backend, WorkerPool) and backend not in BACKENDS:
        raise ValueError(
            f"Unknown backend {backend!r}; use one of {list(BACKENDS)} or a WorkerPool."
        )
    if not isinstance(backend, WorkerPool):
        check_n_workers(n_workers)
    if backend != "ray":
        given = [
            f"{k}={v!r}"
            for k, v in ray.items()
            if not _same(v, defaults[k]) and not (k == "resources" and v == {})
        ]
        if given:
            where = "a WorkerPool (set them on the pool)" if backend != "local" else "'local'"
            raise ValueError(
                f"{', '.join(given)} only apply to backend='ray', but backend is {where}; "
                "pass backend='ray' or drop them."
            )
        return
    address = ray["ray_address"]
    if address is not None and not isinstance(address, str):
        raise TypeError(f"ray_address must be None, 'auto' or an address string, got {address!r}.")
    for name in ("num_cpus", "num_gpus"):
        if not (_is_real(ray[name]) and ray[name] >= 0):
            raise ValueError(
                f"{name} must be a number >= 0 (fractions allowed), got {ray[name]!r}."
            )
    resources = ray["resources"]
    if resources is not None and not (
        isinstance(resources, Mapping)
        and all(isinstance(k, str) and _is_real(v) and v >= 0 for k, v in resources.items())
    ):
        raise ValueError(
            f"resources must map Ray resource names to amounts >= 0, e.g. {{'worker_node': 0.5}}, "
            f"got {resources!r}."
        )
    if not _is_int(ray["max_retries"]) or ray["max_retries"] < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {ray['max_retries']!r}.")
    if not isinstance(ray["ray_actors"], bool):
        raise TypeError(f"ray_actors must be True or False, got {ray['ray_actors']!r}.")


def check_fidelity(evaluate: Any, fidelity: Any) -> None:
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


def check_initial(space: SearchSpace, configs: Any, n_trials: int) -> list[dict[str, Any]]:
    """``initial_configs`` -> the trial params to enqueue; a clear error for a bad one."""
    if configs is None:
        return []
    if isinstance(configs, (Mapping, str, bytes)) or not isinstance(configs, Sequence):
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


def check_known_costs(space: SearchSpace, objset: ObjectiveSet, initial: list[Config]) -> None:
    """Known-cost functions that work, and budgets over them that some Config meets.

    Raises:
        ValueError: every ``fn`` call on :data:`COST_TRIES` sample Configs failed or returned a
            non-number; or no Config found (samples, then a per-parameter descent on the
            total excess, at most :data:`MAX_COST_CALLS` calls) meets the known-cost
            constraints.
    """
    if not objset.known:
        return
    rng = np.random.default_rng(0)
    samples = [*initial, *(space.sample(rng) for _ in range(FEASIBLE_SAMPLES))]
    _check_cost_fns(objset, samples[:COST_TRIES])
    if objset.known_constraints():
        _find_feasible(space, objset, samples)


def _check_cost_fns(objset: ObjectiveSet, configs: list[Config]) -> None:
    for objective in objset.known:
        assert objective.fn is not None
        problems = []
        for config in configs:
            try:
                value = objective.fn(dict(config))
            except Exception as error:  # the user's fn: any exception
                problems.append(f"{type(error).__name__}: {error}")
                continue
            if is_finite_number(value):
                break
            problems.append(f"it returned {value!r:.60}, not a number")
        else:
            raise ValueError(
                f"Objective({objective.name!r}, fn=...) failed on all {len(configs)} sample "
                f"Configs ({problems[-1]}). Fix fn: it must return a finite number for a "
                "Config of the space."
            )


def _find_feasible(space: SearchSpace, objset: ObjectiveSet, samples: list[Config]) -> None:
    calls = [0]

    def excess(config: Config) -> float:
        calls[0] += 1
        try:
            values = objset.known_values(config)
        except Exception:  # a Config the cost cannot price: no help finding a feasible one
            return math.inf
        return sum(max(v, 0.0) for v in objset.violations(values, only_known=True))

    best, config = math.inf, dict(samples[0])
    for sample in samples:  # lazily: a model_cost may copy the model on every call
        score = excess(sample)
        if score < best:
            best, config = score, dict(sample)
        if best <= 0:
            return
    while best > 0 and calls[0] < MAX_COST_CALLS:
        improved = False
        for name, param in space.items():
            for value in _levels(param):
                if best <= 0 or calls[0] >= MAX_COST_CALLS:
                    break
                trial = {**config, name: value}
                score = excess(trial)
                if score < best:
                    best, config, improved = score, trial, True
        if not improved:
            break
    if best > 0:
        bounds = ", ".join(c.label for c in objset.known_constraints())
        raise ValueError(
            f"No Config meets the known-cost constraints ({bounds}): the closest found "
            f"({calls[0]} Configs tried, samples then level by level) misses by {best:.4g}. "
            "Loosen the bound, or widen the space (e.g. lower bit-widths, higher sparsities)."
        )


def _levels(param: Any) -> list[Any]:
    """Values of one parameter the feasibility descent tries (at most 17)."""
    if isinstance(param, (Ordinal, Choice)):
        values = list(param.values)
        step = max(1, len(values) // 16)
        return values[::step] + ([values[-1]] if (len(values) - 1) % step else [])
    if isinstance(param, Int):
        count = (param.high - param.low) // param.step
        steps = sorted({round(count * k / 16) for k in range(17)})
        return [param.low + s * param.step for s in steps]
    assert isinstance(param, Float)
    grid = np.geomspace if param.log else np.linspace
    return [float(v) for v in grid(param.low, param.high, 17)]


def space_signature(space: SearchSpace) -> dict[str, str]:
    """What a study records of its space: parameter name -> the parameter (its levels, bounds
    and scale), e.g. ``{"fc1.bits": "Ordinal([2, 4, 8])"}``."""
    return {name: repr(param) for name, param in space.items()}


def check_stored_space(storage: BaseStorage, study_name: str | None, space: SearchSpace) -> None:
    """An existing study of this name searched the same space (else its trials would mix
    parameters of two spaces); ``space`` then encodes as the study stores its parameters.

    A study written before tradeoff stored an Ordinal's levels holds its level indices: the
    space encodes that Ordinal as its index for this search (``SearchSpace.encode_like``), so
    the study resumes; a new study, or none named, gets every parameter's own encoding.

    Raises:
        ValueError: the stored space (or, for a study without one, its trials' parameters and
            Configs) differs; the message lists the parameters that differ.
    """
    space.encode_like({})
    if study_name is None:
        return
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return  # a new study
    stored = storage.get_study_user_attrs(study_id).get(SPACE_ATTR)
    now = space_signature(space)
    ordinals = [name for name, param in space.items() if isinstance(param, Ordinal)]
    if stored is None:  # a study written before spaces were recorded: its trials tell
        trials = storage.get_all_trials(study_id, deepcopy=False)
        space.encode_like(_stored_distributions(trials, ordinals))
        differ = _differ_from_trials(trials, space)
    else:
        differ = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
        if ordinals and not differ:
            trials_by_number = _trials_in_order(storage, study_id)
            space.encode_like(_stored_distributions(trials_by_number, ordinals))
    if differ:
        raise ValueError(
            f"Study {study_name!r} already searches another space: parameters {differ[:8]}"
            f"{' ...' if len(differ) > 8 else ''} differ (new, missing or changed). Use another "
            "study_name, or the space the study was created with."
        )


def _stored_distributions(
    trials: Iterable[FrozenTrial], names: Collection[str]
) -> dict[str, BaseDistribution]:
    """Each of ``names`` -> the distribution the study stores it with, from the first of
    ``trials`` that has it (Optuna keeps one distribution kind per name in a study); names no
    trial has are left out. Stops reading ``trials`` once every name is found."""
    found: dict[str, BaseDistribution] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if name in names:
                found.setdefault(name, dist)
        if len(found) == len(names):
            break
    return found


def _trials_in_order(storage: BaseStorage, study_id: int) -> Iterator[FrozenTrial]:
    """The study's trials one by one, by number (read lazily: the first has every name)."""
    for number in range(storage.get_n_trials(study_id)):
        yield storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))


def _differ_from_trials(trials: list[FrozenTrial], space: SearchSpace) -> list[str]:
    """Parameters whose distribution or Config values in ``trials`` do not fit ``space``."""
    distributions = space.distributions()
    differ: set[str] = set()
    for trial in trials:
        for name, dist in trial.distributions.items():
            if distributions.get(name) != dist:
                differ.add(name)
        config = trial.user_attrs.get(ATTR_CONFIG) or {}
        differ.update(k for k, v in config.items() if k in space and not space[k].contains(v))
        if trial.params:
            differ.update(k for k in space if k not in trial.params)
    return sorted(differ)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _same(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a == b) or (_is_real(a) and _is_real(b) and a == b)
