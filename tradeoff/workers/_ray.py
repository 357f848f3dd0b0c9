"""Evaluation as Ray tasks: on a local Ray instance or a multi-node cluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from tradeoff.workers._base import (
    Evaluate,
    Outcome,
    WorkerPool,
    check_n_workers,
    host_worker_id,
    run_evaluation,
)

logger = logging.getLogger(__name__)

# An evaluate function that pickles to at most this many bytes travels inside the remote
# function, which Ray exports once per worker; a larger one (it closes over a model or data)
# goes to the object store once, and each task reads it from there.
INLINE_LIMIT_BYTES = 1 << 20


def _remote_evaluate(evaluate: Evaluate, config: dict[str, Any], task_id: int) -> Outcome:
    import ray

    ctx = ray.get_runtime_context()
    worker = host_worker_id(ctx.get_worker_id()[:12])
    return run_evaluation(evaluate, config, task_id, worker, ctx.get_node_id())


def _bind(evaluate: Evaluate) -> Any:
    def evaluate_task(config: dict[str, Any], task_id: int) -> Outcome:
        return _remote_evaluate(evaluate, config, task_id)

    return evaluate_task


class _Evaluator:
    """A Ray actor that keeps ``evaluate`` (and whatever it closes over) loaded."""

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate

    def run(self, config: dict[str, Any], task_id: int) -> Outcome:
        return _remote_evaluate(self.evaluate, config, task_id)


class RayPool(WorkerPool):
    """Evaluates each Config on Ray, at most ``n_workers`` at a time.

    By default each trial is a Ray task (any free worker on the cluster takes it). With
    ``actors=True``, ``n_workers`` long-lived actors each hold ``evaluate`` and run trials one
    after another: use it when ``evaluate`` closes over something costly to load (a model,
    a data set), which a task would deserialize for every trial.

    Args:
        n_workers: Evaluations in flight at once (the concurrency limit).
        ray_address: ``None`` starts a local Ray instance (or reuses one already initialized in
            this process); ``"auto"`` joins the cluster this machine belongs to; or an address
            such as ``"ray://head:10001"`` / ``"10.0.0.1:6379"``.
        num_cpus: CPUs reserved per trial (fractions allowed).
        num_gpus: GPUs reserved per trial (fractions allowed, e.g. 0.5 packs two trials a GPU).
        resources: Custom Ray resources per trial, e.g. ``{"accelerator_type:A100": 0.1}``.
        max_retries: Times Ray re-runs a trial whose worker process or node died.
        runtime_env: Ray runtime environment for the tasks (pip packages, working dir...).
        actors: Run trials on ``n_workers`` persistent actors instead of tasks. A trial whose
            actor died fails with the reason, and a fresh actor takes its place.
    """

    def __init__(
        self,
        n_workers: int = 1,
        *,
        ray_address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        resources: Mapping[str, float] | None = None,
        max_retries: int = 3,
        runtime_env: Mapping[str, Any] | None = None,
        actors: bool = False,
    ) -> None:
        self.n_workers = check_n_workers(n_workers)
        if num_cpus < 0 or num_gpus < 0:
            raise ValueError(f"num_cpus and num_gpus must be >= 0, got {num_cpus}, {num_gpus}.")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}.")
        self.ray_address = ray_address
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.resources = dict(resources or {})
        self.max_retries = max_retries
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.actors = actors
        self._started_ray = False
        self._refs: dict[Any, int] = {}
        self._idle: list[Any] = []  # actors free to take a trial (actors=True)
        self._busy: dict[Any, Any] = {}  # ref -> actor running it
        self._actor_cls: Any = None
        self._remote: Any = None
        self._args: tuple[Any, ...] = ()
        self._evaluate_ref: Any = None
        self._opened = False

    def open(self, evaluate: Evaluate) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("backend='ray' needs Ray: pip install 'tradeoff[ray]'.") from None
        if not ray.is_initialized():
            self._init_ray(ray)
        self._warn_if_unschedulable(ray)
        resources = {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "resources": self.resources or None,
            "runtime_env": self.runtime_env,
        }
        task_options = {"max_retries": self.max_retries, "retry_exceptions": False, **resources}
        if self.actors:
            self._evaluate_ref = ray.put(evaluate)
            self._actor_cls = ray.remote(_Evaluator).options(max_restarts=0, **resources)
            self._idle = [self._new_actor() for _ in range(self.n_workers)]
        elif len(ray.cloudpickle.dumps(evaluate)) <= INLINE_LIMIT_BYTES:  # type: ignore[no-untyped-call]
            self._remote = ray.remote(_bind(evaluate)).options(**task_options)
            self._args = ()
        else:
            self._evaluate_ref = ray.put(evaluate)
            self._remote = ray.remote(_remote_evaluate).options(**task_options)
            self._args = (self._evaluate_ref,)
        self._opened = True

    def _init_ray(self, ray: Any) -> None:
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": False}
        if self.ray_address is None:
            # Enough CPU slots locally that n_workers trials really run at once.
            need = self.n_workers * self.num_cpus
            kwargs.update(num_cpus=max(os.cpu_count() or 1, int(need + 0.999)))
            kwargs.update(include_dashboard=False)
        else:
            kwargs.update(address=self.ray_address)
        logger.info("starting Ray (%s)", self.ray_address or "local")
        ray.init(**kwargs)
        self._started_ray = True

    def _warn_if_unschedulable(self, ray: Any) -> None:
        """Warn when no live node offers one trial's resources: Ray would queue it silently."""
        need = {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}
        need = {name: amount for name, amount in need.items() if amount > 0}
        offers = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        if any(all(offer.get(k, 0.0) >= v for k, v in need.items()) for offer in offers):
            return
        logger.warning(
            "No node of the Ray cluster offers %s for one trial; trials wait until such a node "
            "joins (e.g. through an autoscaler). Check num_cpus, num_gpus and resources.",
            need,
        )

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self._evaluate_ref)

    def _replace_actor(self, actor: Any) -> None:
        import ray

        ray.kill(actor, no_restart=True)
        self._idle.append(self._new_actor())

    def submit(self, task_id: int, config: dict[str, Any]) -> None:
        if not self._opened:
            raise RuntimeError("RayPool.submit called before open().")
        if self.actors:
            if not self._idle:
                raise RuntimeError(f"all {self.n_workers} actors are busy; wait() first.")
            actor = self._idle.pop()
            ref = actor.run.remote(config, task_id)
            self._busy[ref] = actor
        else:
            ref = self._remote.remote(*self._args, config, task_id)
        self._refs[ref] = task_id

    def wait(self, timeout: float | None) -> list[Outcome]:
        if not self._refs:
            return []
        import ray

        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already done too
            more, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        outcomes = []
        for ref in ready:
            task_id = self._refs.pop(ref)
            actor = self._busy.pop(ref, None)
            try:
                outcomes.append(ray.get(ref))
            except Exception as exc:  # worker, actor or node died (after the retries)
                outcomes.append(Outcome(task_id, error=f"{type(exc).__name__}: {exc}"))
                if actor is not None:
                    self._replace_actor(actor)
                    actor = None
            if actor is not None:
                self._idle.append(actor)
        return outcomes

    def cancel(self, task_id: int) -> None:
        import ray

        for ref, tid in list(self._refs.items()):
            if tid == task_id:
                del self._refs[ref]
                actor = self._busy.pop(ref, None)
                if actor is None:
                    ray.cancel(ref, force=True)
                else:  # a running actor call cannot be force-cancelled: replace the actor
                    self._replace_actor(actor)

    def close(self) -> None:
        import ray

        for ref in list(self._refs):
            if ref not in self._busy:
                ray.cancel(ref, force=True)
        for actor in [*self._idle, *self._busy.values()]:
            ray.kill(actor)
        self._refs.clear()
        self._idle, self._busy = [], {}
        self._opened = False
        self._evaluate_ref = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
