"""The ``tradeoff`` command: run searches, read Pareto sets, open the dashboard."""

from __future__ import annotations

import argparse
import json
import logging
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeoff._validate import is_usage_error, usage_errors

REQUIRED = ("space", "objectives", "evaluate")
OPTIONAL = ("constraints", "metrics", "fidelity", "initial_configs")
STORAGE_ENV = "TRADEOFF_STORAGE"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tradeoff`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except Exception as exc:
        if not is_usage_error(exc):
            raise  # a bug, in tradeoff or in the search file: its traceback is the report
        print(f"tradeoff: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradeoff", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the search defined in a Python file")
    run.add_argument("file", type=Path, help="defines space, objectives, evaluate[, constraints]")
    run.add_argument("--n-trials", type=int, default=100)
    run.add_argument("--n-workers", type=int, default=1)
    run.add_argument("--backend", default="local", choices=["local", "ray"])
    run.add_argument("--ray-address", default=None, help="'auto' joins a cluster; default local")
    run.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per trial (Ray)")
    run.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per trial (Ray)")
    run.add_argument(
        "--resources",
        type=_json_resources,
        default=None,
        help="custom Ray resources per trial, as JSON, e.g. '{\"worker_node\": 0.5}'",
    )
    run.add_argument("--max-retries", type=int, default=3, help="Ray re-runs of dead workers")
    run.add_argument(
        "--ray-actors", action="store_true", help="keep evaluate loaded in persistent Ray actors"
    )
    run.add_argument(
        "--storage",
        default=os.environ.get(STORAGE_ENV, "sqlite:///tradeoff.db"),
        help=f"storage URL (default: ${STORAGE_ENV}, else sqlite:///tradeoff.db)",
    )
    run.add_argument("--study", default=None, help="study name (default: the file's stem)")
    run.add_argument("--optimizer", default="auto")
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--timeout", type=float, default=None, help="stop proposing after N s")
    run.add_argument("--trial-timeout", type=float, default=None, help="fail trials after N s")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=_cmd_run)

    pareto = sub.add_parser("pareto", help="print the Pareto set of a study")
    _add_storage(pareto)
    pareto.add_argument("--study", required=True)
    pareto.add_argument("--format", default="table", choices=["table", "csv", "json"])
    pareto.add_argument("--all", action="store_true", help="every trial, not only the Pareto set")
    pareto.set_defaults(func=_cmd_pareto)

    studies = sub.add_parser("studies", help="list the studies in a storage")
    _add_storage(studies)
    studies.set_defaults(func=_cmd_studies)

    plot = sub.add_parser("plot", help="write the Pareto, hypervolume and allocation plots")
    _add_storage(plot)
    plot.add_argument("--study", required=True)
    plot.add_argument("--out", type=Path, default=Path("plots"), help="output directory")
    plot.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=["png", "svg", "html"],
        help="repeat for several (default: png)",
    )
    plot.set_defaults(func=_cmd_plot)

    dash = sub.add_parser("dashboard", help="serve optuna-dashboard for a storage")
    _add_storage(dash)
    dash.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    dash.add_argument("--port", type=int, default=8080)
    dash.set_defaults(func=_cmd_dashboard)
    return parser


def _json_resources(text: str) -> dict[str, float]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
    ):
        raise argparse.ArgumentTypeError(f'expected {{"name": amount, ...}}, got {text!r}')
    return {str(k): float(v) for k, v in value.items()}


def _add_storage(p: argparse.ArgumentParser) -> None:
    # From the environment, a database password stays out of shell history and `ps`.
    default = os.environ.get(STORAGE_ENV)
    p.add_argument(
        "--storage",
        default=default,
        required=default is None,
        help=f"storage URL, e.g. sqlite:///tradeoff.db (default: ${STORAGE_ENV})",
    )


def load_search_file(path: Path) -> dict[str, Any]:
    """Execute ``path`` and return its search definition.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file does not define ``space``, ``objectives`` and ``evaluate``.
    """
    with usage_errors():
        if not path.is_file():
            raise FileNotFoundError(f"no such search file: {path}")
    # Outside usage_errors: an error in the file's own code shows its traceback.
    namespace = runpy.run_path(str(path), run_name="__tradeoff__")
    missing = [name for name in REQUIRED if name not in namespace]
    with usage_errors():
        if missing:
            raise ValueError(
                f"{path} must define {', '.join(REQUIRED)}; missing: {', '.join(missing)}. "
                "See examples/zdt.py."
            )
    return {k: namespace[k] for k in (*REQUIRED, *OPTIONAL) if k in namespace}


def _cmd_run(args: argparse.Namespace) -> int:
    import tradeoff
    from tradeoff._study import redact

    definition = load_search_file(args.file)
    study = args.study or args.file.stem
    result = tradeoff.optimize(
        definition["evaluate"],
        definition["space"],
        objectives=definition["objectives"],
        constraints=definition.get("constraints", ()),
        metrics=definition.get("metrics", ()),
        fidelity=definition.get("fidelity"),
        initial_configs=definition.get("initial_configs"),
        optimizer=args.optimizer,
        n_trials=args.n_trials,
        n_workers=args.n_workers,
        backend=args.backend,
        ray_address=args.ray_address,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        resources=args.resources,
        max_retries=args.max_retries,
        ray_actors=args.ray_actors,
        storage=args.storage,
        study_name=study,
        seed=args.seed,
        timeout=args.timeout,
        trial_timeout=args.trial_timeout,
        show_progress=not args.no_progress,
    )
    print(result.summary())
    print(_table(result.pareto, result))
    print(f"\nOpen it in optuna-dashboard:\n  tradeoff dashboard --storage {redact(args.storage)}")
    return 0


def _cmd_pareto(args: argparse.Namespace) -> int:
    from tradeoff import SearchResult

    with usage_errors():
        result = SearchResult.load(args.storage, args.study)
    frame = result.trials if args.all else result.pareto
    if args.format == "csv":
        print(frame.to_csv(index=False), end="")
    elif args.format == "json":
        print(frame.to_json(orient="records", indent=2))
    else:
        print(result.summary())
        print(_table(frame, result))
    return 0


def _cmd_studies(args: argparse.Namespace) -> int:
    import optuna

    from tradeoff._study import make_storage

    with usage_errors():
        store = make_storage(args.storage)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    if not summaries:
        print("no studies")
    for s in summaries:
        directions = ",".join(d.name.lower() for d in s.directions)
        print(f"{s.study_name}\t{s.n_trials} trials\t{directions}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from tradeoff import SearchResult
    from tradeoff._plot import write_plots

    with usage_errors():
        result = SearchResult.load(args.storage, args.study)
    for path in write_plots(result, args.out, formats=args.formats or ("png",)):
        print(path)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from tradeoff._study import make_storage, redact

    with usage_errors():
        try:
            import optuna_dashboard
        except ImportError:
            raise ImportError("the dashboard needs pip install 'tradeoff[dashboard]'.") from None
        store = make_storage(args.storage)

    print(f"optuna-dashboard for {redact(args.storage)} on http://{args.host}:{args.port}/")
    optuna_dashboard.run_server(store, host=args.host, port=args.port)
    return 0


def _table(frame: Any, result: Any) -> str:
    hide = {"status", "feasible", "pareto", "duration_s", "worker", "node", "failure"}
    cols = [c for c in frame.columns if c not in hide]
    if frame.empty:
        return "(no feasible completed trial)"
    text: str = frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    return text


if __name__ == "__main__":
    raise SystemExit(main())
