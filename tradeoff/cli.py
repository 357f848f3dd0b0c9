"""The ``tradeoff`` command: run searches, compress models, read Pareto sets, open the dashboard."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import runpy
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tradeoff._validate import is_usage_error, usage_errors

REQUIRED = ("space", "objectives", "evaluate")
OPTIONAL = ("constraints", "metrics", "fidelity", "initial_configs")
STORAGE_ENV = "TRADEOFF_STORAGE"
QUALITIES = ("kl", "perplexity", "accuracy", "file")
MODEL_FILE_NAMES = ("model", "calibration", "data", "evaluate", "quality", "sample_input")
RAY_FLAGS = ("ray_address", "num_cpus", "num_gpus", "resources", "max_retries", "ray_actors")
PACKAGE = Path(__file__).resolve().parent
EXPORT_FORMATS = ("compressed-tensors", "torchao", "torch", "peft")  # spaces._export.FORMATS


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
    _add_search(run, "the file's stem")
    run.add_argument("--trial-timeout", type=float, default=None, help="fail trials after N s")
    run.set_defaults(func=_cmd_run)

    _add_compress(sub)

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
    dash.add_argument(
        "--artifact-dir", type=Path, default=None,
        help="the artifact directory searches uploaded to (--artifact-dir of run/compress)",
    )  # fmt: skip
    dash.set_defaults(func=_cmd_dashboard)
    prune = sub.add_parser(
        "prune-bank",
        help="remove variant-bank files this version never reads (older formats, broken writes)",
    )
    prune.add_argument(
        "bank", nargs="?", default=None, type=Path,
        help="the bank directory (default: $TRADEOFF_CACHE/bank, else ~/.cache/tradeoff/bank)",
    )  # fmt: skip
    prune.set_defaults(func=_cmd_prune_bank)
    return parser


def _add_ray(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray-address", default=None, help="'auto' joins a cluster; default local")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per trial (Ray)")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per trial (Ray)")
    p.add_argument(
        "--resources",
        type=_json_resources,
        default=None,
        help="custom Ray resources per trial, as JSON, e.g. '{\"worker_node\": 0.5}'",
    )
    p.add_argument("--max-retries", type=int, default=3, help="Ray re-runs of dead workers")
    p.add_argument(
        "--ray-actors", action="store_true", help="keep evaluate loaded in persistent Ray actors"
    )


def _add_search(p: argparse.ArgumentParser, study_default: str) -> None:
    """The flags of a search, shared by ``run`` and ``compress`` (see :func:`_search_kwargs`)."""
    p.add_argument("--n-trials", type=int, default=100)
    p.add_argument("--n-workers", type=int, default=1)
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    _add_ray(p)
    _add_run_storage(p, study_default)
    p.add_argument("--optimizer", default="auto")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=None, help="stop proposing after N s")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--propose-ahead", action="store_true",
        help="ask the optimizer for the next Config while every worker is busy (slow optimizers)",
    )  # fmt: skip
    p.add_argument(
        "--artifact-dir", type=Path, default=None,
        help="upload Pareto Configs, the report (and exports) as Optuna artifacts here",
    )  # fmt: skip


def _search_kwargs(args: argparse.Namespace, study_name: str) -> dict[str, Any]:
    """``optimize``'s (and ``compress``'s) keyword arguments from :func:`_add_search`'s flags."""
    return {
        "optimizer": args.optimizer, "n_trials": args.n_trials, "n_workers": args.n_workers,
        "backend": args.backend, **{k: getattr(args, k) for k in RAY_FLAGS},
        "storage": args.storage, "study_name": study_name, "seed": args.seed,
        "timeout": args.timeout, "show_progress": not args.no_progress,
        "propose_ahead": args.propose_ahead,
        **({"artifact_store": args.artifact_dir} if args.artifact_dir is not None else {}),
    }  # fmt: skip


def _add_run_storage(p: argparse.ArgumentParser, study_default: str) -> None:
    p.add_argument(
        "--storage",
        default=os.environ.get(STORAGE_ENV, "sqlite:///tradeoff.db"),
        help=f"storage URL (default: ${STORAGE_ENV}, else sqlite:///tradeoff.db)",
    )
    p.add_argument("--study", default=None, help=f"study name (default: {study_default})")


def _add_compress(sub: Any) -> None:
    comp = sub.add_parser("compress", help="search per-layer compressions of a model")
    _compress_arguments(comp)
    comp.add_argument("--out", type=Path, default=None, help="write pareto + baselines as JSON")
    comp.set_defaults(func=_cmd_compress)
    exp = sub.add_parser(
        "export",
        help="write a trial of a compress study as a checkpoint a runtime loads",
        description="Give the flags the study was made with (tradeoff compress ...): the "
        "model is rebuilt from them and no trial runs again.",
    )
    _compress_arguments(exp)
    exp.add_argument(
        "--trial", type=int, default=None,
        help="the trial to export (default: the best quality within the budget)",
    )  # fmt: skip
    exp.add_argument("--format", default="compressed-tensors", choices=EXPORT_FORMATS)
    exp.add_argument(
        "--dtype", default=None, choices=("bfloat16",),
        help="--format torchao: cast to bfloat16 and run int4 layers on torchao's int4 kernel "
        "(CPU, or CUDA with --device cuda)",
    )  # fmt: skip
    exp.add_argument(
        "--merge", action="store_true",
        help="--format peft: the trial's adapters merged into the base, then compressed as the "
        "search measured them, written as --format torch",
    )  # fmt: skip
    exp.add_argument("--out", type=Path, required=True, help="the checkpoint directory")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    exp.set_defaults(func=_cmd_export)


def _compress_arguments(comp: argparse.ArgumentParser) -> None:
    """The flags that define a compress search, shared by ``compress`` and ``export``."""
    comp.add_argument(
        "--model", required=True, type=Path,
        help="a local Hugging Face model directory, or a Python file that defines model "
        "(and optionally calibration, data, evaluate, quality, sample_input)",
    )  # fmt: skip
    comp.add_argument(
        "--quality", required=True, metavar="|".join(QUALITIES),
        help="kl: KL to the dense model on --calibration; perplexity: on --calibration; "
        "accuracy: on --data or the file's data; file: the file's quality or evaluate",
    )  # fmt: skip
    comp.add_argument(
        "--calibration", type=Path, default=None,
        help="token ids saved with torch.save (a LongTensor [n_seqs, seq_len]), or a .txt "
        "file tokenized offline with the model directory's tokenizer",
    )  # fmt: skip
    comp.add_argument("--seq-len", type=int, default=128, help="tokens per .txt sequence")
    comp.add_argument(
        "--data", type=Path, default=None,
        help="labelled examples (x, y) saved with torch.save, for --quality accuracy",
    )  # fmt: skip
    comp.add_argument("--bits", default=None, help="bit-widths, e.g. 3,4,8; 'none': no quant")
    comp.add_argument("--method", default=None, help="rtn (default), gptq or hqq")
    comp.add_argument("--granularity", default=None, help="channel (default), group, tensor")
    comp.add_argument("--group-size", default=None, help="inputs per scale, e.g. 32,128")
    comp.add_argument("--bank", default="auto", help="variant bank directory; none: in memory")
    comp.add_argument(
        "--bank-memory-mb", type=float, default=None, metavar="MB",
        help="at most this many MB of bank entries kept in memory per process (default: all)",
    )  # fmt: skip
    comp.add_argument("--sparsity", default=None, help="pruning levels, e.g. 0,0.25,0.5")
    comp.add_argument(
        "--pattern", default=None, help="unstructured (default), n:m, channel; several: searched"
    )  # fmt: skip
    comp.add_argument(
        "--drop-blocks", nargs="?", const=True, default=False, metavar="BLOCKS",
        help="also search which blocks to drop (optionally the blocks' ModuleList name)",
    )  # fmt: skip
    comp.add_argument(
        "--budget", action="append", default=[], metavar="NAME=NUMBER",
        help="an upper bound, e.g. size_mb=88.4 (repeat for several)",
    )  # fmt: skip
    comp.add_argument(
        "--cost", default="size_mb", help="size_mb (or size_kb) and/or gbitops (or mbitops)"
    )  # fmt: skip
    _add_search(comp, "the model's file or directory name")
    comp.add_argument(
        "--peft", default=None, metavar="FILE.py[:NAME]",
        help="train PEFT adapters before compressing: a Python file defining NAME (default "
        "peft), compress's peft= dict with train(model, steps, start) -> state; it may be the "
        "--model file",
    )  # fmt: skip
    comp.add_argument("--device", default=None, help="where trials run (default: cpu)")
    comp.add_argument("--no-fidelity", action="store_true", help="every trial on all the data")


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
        trial_timeout=args.trial_timeout,
        **_search_kwargs(args, study),
    )
    print(result.summary())
    print(_table(result.pareto, result))
    print(f"\nOpen it in optuna-dashboard:\n  tradeoff dashboard --storage {redact(args.storage)}")
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from tradeoff._study import redact

    result = _run_compress(args)
    print(result.report())
    if args.out is not None:
        _write_json(result, args.out)
        print(f"\nWrote the Pareto set and baselines to {args.out}")
    print(f"\nOpen it in optuna-dashboard:\n  tradeoff dashboard --storage {redact(args.storage)}")
    return 0


def _run_compress(args: argparse.Namespace, **overrides: Any) -> Any:
    import tradeoff

    with usage_errors():
        kwargs = {**_compress_flags(args), **overrides}
        files = _flag_files(args)  # read before the model loads
    source = {**_model_source(args), **files}
    with usage_errors():
        quality, calibration = _quality(args, source)
    peft = _peft_spec(args, source)
    if peft is not None:
        kwargs["peft"] = peft
    with _checked_by_tradeoff():
        return tradeoff.compress(source["model"], quality=quality, calibration=calibration,
                                 sample_input=source.get("sample_input"), **kwargs)  # fmt: skip


def _cmd_export(args: argparse.Namespace) -> int:
    import optuna

    from tradeoff._study import redact
    from tradeoff.workers._budget import count_done

    study = args.study or _default_study(args.model)
    with usage_errors():
        _check_export_flags(args)
        _compress_flags(args)  # the search's flags too, before the study is opened
        if args.out.exists() and not args.overwrite:
            raise ValueError(f"--out {args.out} exists; pass --overwrite to replace it.")
        try:
            done = count_done(optuna.load_study(study_name=study, storage=args.storage))
        except KeyError:
            raise ValueError(
                f"no study {study!r} in {redact(args.storage)}: run tradeoff compress with the "
                "same flags first (tradeoff studies lists the studies)."
            ) from None
        if done == 0:
            raise ValueError(f"study {study!r} has no finished trial to export.")
    # The budget already spent: the search is complete, so no trial runs again.
    result = _run_compress(args, n_trials=done, show_progress=False)
    # --merge: the model the search measured, adapters merged then compressed (format torch).
    fmt = "torch" if args.merge else args.format
    with _checked_by_tradeoff():
        written = result.export(
            args.trial, args.out, format=fmt, overwrite=args.overwrite, dtype=args.dtype
        )
    number = json.loads((written.path / "tradeoff.json").read_text())["trial"]
    row = result.trials.set_index("trial").loc[number]
    values = ", ".join(f"{n} {row[n]:.5g}" for n in result.objectives.names)
    how = f"{written.format} (adapters merged)" if args.merge else written.format
    print(f"Trial {number} ({values}) written as {how} to {written.path}:")
    for name, size in written.files.items():
        print(f"  {name:<20} {size:>12,} bytes")
    return 0


def _check_export_flags(args: argparse.Namespace) -> None:
    """The flags that only some export formats take, before any work."""
    if args.format == "peft" and args.peft is None:
        raise ValueError(
            "--format peft writes the trained adapters of a search made with --peft: give the "
            "--peft FILE.py[:NAME] the study was made with."
        )
    if args.merge and args.format != "peft":
        raise ValueError(f"--merge applies to --format peft only (got --format {args.format}).")
    if args.dtype is not None and args.format != "torchao":
        raise ValueError(f"--dtype applies to --format torchao only (got --format {args.format}).")


def _compress_flags(args: argparse.Namespace) -> dict[str, Any]:
    """``compress``'s keyword arguments from the flags; checks the flags before any work."""
    if args.quality not in QUALITIES:
        raise ValueError(f"--quality must be one of {', '.join(QUALITIES)}, got {args.quality!r}.")
    kind = _model_kind(args.model)
    _check_device(args.device)
    if args.peft is not None:
        _peft_flag(args.peft)
    needs = {"kl": "calibration", "perplexity": "calibration", "accuracy": "data"}
    flag = needs.get(args.quality)
    if flag and kind == "dir" and getattr(args, flag) is None:
        raise ValueError(f"--quality {args.quality} needs --{flag} FILE.")
    if args.quality == "file" and kind == "dir":
        raise ValueError("--quality file needs a Python --model file that defines quality or "
                         "evaluate (model, budget) -> float.")  # fmt: skip
    for path in (args.calibration, args.data):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    if args.calibration is not None and args.calibration.suffix == ".txt" and kind == "py":
        raise ValueError("a .txt --calibration is tokenized with a model directory's tokenizer;"
                         " with a Python model file, save token ids with torch.save.")  # fmt: skip
    if args.seq_len < 2:
        raise ValueError(f"--seq-len must be an integer >= 2, got {args.seq_len}.")
    return {
        "quantize": _quantize(args), "prune": _prune(args), "drop_blocks": args.drop_blocks,
        "budget": _parse_budget(args.budget) or None, "cost": _csv(args.cost, str, "--cost"),
        "fidelity": not args.no_fidelity, "device": args.device,
        **_search_kwargs(args, args.study or _default_study(args.model)),
    }  # fmt: skip


def _check_device(device: str | None) -> None:
    """``--device``: a device torch knows and sees (before the model is moved to it)."""
    if device is not None:
        from tradeoff.spaces._model import usable_device

        fix = "run on a machine with one, or use --device cpu"
        usable_device(device, setting=f"--device {device}", name="--device", fix=fix)


def _peft_flag(text: str) -> tuple[Path, str]:
    """``--peft FILE.py[:NAME]`` as (the file, the name; default ``peft``), the file checked."""
    head, sep, name = text.rpartition(":")
    path, name = (Path(head), name) if sep and name.isidentifier() else (Path(text), "peft")
    if path.suffix != ".py" or not path.is_file():
        what = "not a .py file" if path.is_file() else "no such file"
        raise ValueError(
            f"--peft must be FILE.py[:NAME], a Python file defining NAME (default peft); {path} "
            f"is {what}."
        )
    return path, name


def _peft_spec(args: argparse.Namespace, source: dict[str, Any]) -> Any:
    """``--peft``'s dict (``compress``'s ``peft=``), from the model file's run when it is the
    same file."""
    if args.peft is None:
        return None
    path, name = _peft_flag(args.peft)
    same = args.model.suffix == ".py" and path.resolve() == args.model.resolve()
    # Outside usage_errors: an error in the file's own code shows its traceback.
    namespace = source["namespace"] if same else runpy.run_path(str(path), run_name="__tradeoff__")
    with usage_errors():
        if name not in namespace:
            raise ValueError(
                f"--peft {args.peft}: {path} defines no {name} (compress's peft= dict, e.g. "
                "{'train': train, 'ranks': (4, 8)} with train(model, steps, start) -> state)."
            )
    return namespace[name]


def _default_study(path: Path) -> str:
    path = path.resolve()
    return path.name if path.is_dir() else path.stem


def _model_kind(path: Path) -> str:
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"--model {path}: a model directory needs the config.json that save_pretrained "
                "writes."
            )
        return "dir"
    if path.suffix == ".py" and path.is_file():
        return "py"
    what = "a file that is not .py" if path.exists() else "no such file or directory"
    raise ValueError(
        f"--model must be a Hugging Face model directory or a Python file that defines model; "
        f"{path} is {what}."
    )


def _quantize(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.bits is not None and args.bits.strip().lower() == "none":
        return None
    spec: dict[str, Any] = {"bank": None if args.bank == "none" else args.bank}
    if args.bank_memory_mb is not None:
        from tradeoff.spaces import VariantBank
        from tradeoff.spaces._bank import default_directory

        if spec["bank"] is None:
            raise ValueError("--bank-memory-mb needs a bank directory (--bank DIR or auto).")
        directory = default_directory() if spec["bank"] == "auto" else spec["bank"]
        spec["bank"] = VariantBank(directory, max_memory_mb=args.bank_memory_mb)
    if args.bits is not None:
        spec["bits"] = _csv(args.bits, int, "--bits")
    if args.method is not None:
        spec["method"] = args.method
    if args.granularity is not None:
        spec["granularity"] = _csv(args.granularity, str, "--granularity")
    if args.group_size is not None:
        spec["group_size"] = _csv(args.group_size, int, "--group-size")
    return spec


def _prune(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.sparsity is None:
        if args.pattern is not None:
            raise ValueError("--pattern needs --sparsity (the levels to prune to).")
        return None
    levels = _csv(args.sparsity, float, "--sparsity")
    spec: dict[str, Any] = {"sparsity": levels if isinstance(levels, list) else [levels]}
    if args.pattern is not None:
        spec["pattern"] = _csv(args.pattern, str, "--pattern")
    return spec


def _csv(text: str, kind: type, flag: str) -> Any:
    """``"3,4,8"`` as ``[3, 4, 8]``; one item as itself."""
    try:
        items = [kind(item.strip()) for item in text.split(",")]
    except ValueError:
        items = []
    if not items:
        raise ValueError(f"{flag} must be comma-separated {kind.__name__}s, got {text!r}.")
    return items[0] if len(items) == 1 else items


def _parse_budget(items: Sequence[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, number = item.partition("=")
        try:
            bound = float(number)
        except ValueError:
            bound = math.nan
        if not name.strip() or not math.isfinite(bound):
            raise ValueError(f"--budget must be NAME=NUMBER, e.g. size_mb=88.4; got {item!r}.")
        out[name.strip()] = bound
    return out


def _model_source(args: argparse.Namespace) -> dict[str, Any]:
    """The model (on ``--device``) and what the model file defines (calibration, data...)."""
    if args.model.is_dir():
        source = {"model": _load_pretrained(args.model, quiet=args.no_progress)}
    else:
        # Outside usage_errors: an error in the file's own code shows its traceback.
        namespace = runpy.run_path(str(args.model), run_name="__tradeoff__")
        source = {k: namespace[k] for k in MODEL_FILE_NAMES if k in namespace}
        source["namespace"] = namespace  # --peft may name this file too
        with usage_errors():
            if "model" not in source:
                names = ", ".join(MODEL_FILE_NAMES[1:])
                raise ValueError(f"{args.model} must define model (and may define {names}).")
    model = source["model"]
    if args.device is not None and hasattr(model, "to"):
        source["model"] = model.to(args.device)
    return source


def _load_pretrained(path: Path, *, quiet: bool) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never any network: the model is local
    import transformers
    from transformers.utils import logging as hf_logging

    config = json.loads((path / "config.json").read_text())
    classify = any(a.endswith("ForSequenceClassification") for a in config.get("architectures", []))
    auto = (
        transformers.AutoModelForSequenceClassification
        if classify
        else transformers.AutoModelForCausalLM
    )
    shown = hf_logging.is_progress_bar_enabled()
    if quiet:  # --no-progress: no bar of transformers' loading either
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return auto.from_pretrained(path, local_files_only=True).eval()
    finally:
        if shown:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _flag_files(args: argparse.Namespace) -> dict[str, Any]:
    """What ``--calibration`` and ``--data`` hold (over the model file's names of them)."""
    out = {}
    if args.calibration is not None:
        out["calibration"] = _calibration(args)
    if args.data is not None:
        out["data"] = _load_torch(args.data, "--data")
    return out


def _quality(args: argparse.Namespace, source: dict[str, Any]) -> tuple[Any, Any]:
    """(the quality for ``compress``, GPTQ's calibration or None), from the model file's names
    overridden by ``--calibration`` and ``--data``."""
    from tradeoff.objectives import Accuracy, KLToDense, Perplexity

    ids, data = source.get("calibration"), source.get("data")
    if args.quality in ("kl", "perplexity") and ids is None:
        raise ValueError(f"--quality {args.quality} needs --calibration FILE, or calibration "
                         f"defined in {args.model}.")  # fmt: skip
    if args.quality == "accuracy" and data is None:
        raise ValueError(f"--quality accuracy needs --data FILE, or data defined in {args.model}.")
    quality: Any
    if args.quality == "kl":
        quality = KLToDense(ids)
    elif args.quality == "perplexity":
        quality = Perplexity(ids)
    elif args.quality == "accuracy":
        quality = Accuracy(data)
    else:
        quality = source.get("quality", source.get("evaluate"))
        if quality is None:
            raise ValueError(f"--quality file: {args.model} defines neither quality nor "
                             "evaluate (model, budget) -> float.")  # fmt: skip
    # GPTQ calibrates on these; a KLToDense quality lends its own ids (compress's default).
    gptq = args.method == "gptq" and args.quality != "kl"
    return quality, ids if gptq else None


def _calibration(args: argparse.Namespace) -> Any:
    path: Path = args.calibration
    if path.suffix != ".txt":
        return _load_torch(path, "--calibration")
    import torch
    import transformers

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"--calibration {path}: a .txt file is tokenized with {args.model}'s tokenizer, "
            f"which did not load from the directory: {first}"
        ) from None
    text = path.read_text(encoding="utf-8")
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    n = len(ids) // args.seq_len
    if n == 0:
        raise ValueError(
            f"--calibration {path} has {len(ids)} tokens, less than one --seq-len "
            f"{args.seq_len} sequence."
        )
    return torch.tensor(ids[: n * args.seq_len], dtype=torch.long).view(n, args.seq_len)


def _load_torch(path: Path, flag: str) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch.save file (or not plain tensors): say which
        raise ValueError(
            f"{flag} {path}: not a torch.save file of tensors ({type(error).__name__}); save "
            "token ids with torch.save(ids, path), or give a .txt file."
        ) from None


@contextlib.contextmanager
def _checked_by_tradeoff() -> Iterator[None]:
    """``compress`` raises ValueError/TypeError on bad input, before any trial: print those
    alone; one raised in the model file's own code (its evaluate) keeps its traceback."""
    try:
        yield
    except (ValueError, TypeError) as error:
        tb = error.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and Path(tb.tb_frame.f_code.co_filename).is_relative_to(PACKAGE):
            with usage_errors():
                raise
        raise


def _write_json(result: Any, path: Path) -> None:
    payload = {"study": result.study.study_name, **result.to_dict()}
    path.write_text(json.dumps(payload, indent=2) + "\n")


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
    from tradeoff.review._plot import write_plots

    with usage_errors():
        result = SearchResult.load(args.storage, args.study)
    for path in write_plots(result, args.out, formats=args.formats or ("png",)):
        print(path)
    return 0


def _cmd_prune_bank(args: argparse.Namespace) -> int:
    from tradeoff.spaces._bank import VariantBank, default_directory

    directory = args.bank or default_directory()
    with usage_errors():
        if not directory.is_dir():
            raise ValueError(f"bank directory {str(directory)!r} does not exist")
        removed, freed = VariantBank(directory).prune()
    print(f"{directory}: removed {removed} files, {freed / 1e6:.1f} MB freed")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from tradeoff._study import make_storage, redact

    with usage_errors():
        try:
            import optuna_dashboard
        except ImportError:
            raise ImportError("the dashboard needs pip install 'tradeoff[dashboard]'.") from None
        store = make_storage(args.storage)
        artifacts = None
        if args.artifact_dir is not None:
            from tradeoff.review._artifacts import artifact_store

            artifacts = artifact_store(args.artifact_dir)

    from tradeoff.review import refresh_notes

    for name in refresh_notes(store):  # each search's summary and Pareto trials, as notes
        print(f"wrote the notes of study {name!r}")
    print(f"optuna-dashboard for {redact(args.storage)} on http://{args.host}:{args.port}/")
    optuna_dashboard.run_server(store, host=args.host, port=args.port, artifact_store=artifacts)
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
