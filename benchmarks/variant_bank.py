"""The variant bank on SmolLM2-135M: KL at uniform levels per method, build and assembly times.

The space is the SmolLM2 example's: 30 blocks, each kept or dropped and quantized as one
(tied) group, plus the tied LM head, at ``--bits`` with groups of 64 inputs. For each method
(RTN, GPTQ, HQQ) it measures, in one run on one machine:

* the time to build the space (GPTQ: one calibration pass collecting every layer's Hessian)
  and the bank (every (layer, level) entry, into a fresh directory);
* the next-token KL(dense || compressed) per token, full vocabulary, on held-out Hamlet windows
  (disjoint from GPTQ's calibration windows), at uniform ``--uniform`` bits with every block
  kept;
* assembly time per Config by a ``Workspace`` (pointer swaps; target <= 0.1 s on 2 cores)
  against ``space.apply`` (a deep copy and re-quantization; for GPTQ/HQQ the bank still serves
  the weights) on the same random Configs, and the full-fidelity evaluation time per Config;
* what the packed bank costs: its size on disk against the float32 weights it decodes to, a
  cold first assembly (a fresh copy of the space: entries read and dequantized from disk), the
  time to read and dequantize every entry once (what a process that uses them all pays), and
  the time to dequantize one whole model at one level from packed codes already in memory
  (what keeping only the codes in RAM would cost per assembly).

    python benchmarks/variant_bank.py                 # ~10 min on 2 cores
    python benchmarks/variant_bank.py --quick         # fewer windows, levels and Configs

Writes ``benchmarks/results/variant_bank.json`` (command, commit, versions, machine).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from benchmarks.optimizers import recorded, write_report  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "variant_bank.json"
METHODS = ("rtn", "gptq", "hqq")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(","))

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small everything")
    parser.add_argument("--methods", type=lambda s: tuple(s.split(",")), default=METHODS)
    parser.add_argument("--bits", type=ints, default=(3, 4, 5, 6, 8))
    parser.add_argument("--uniform", type=ints, default=(3, 4, 5))
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--calibration-seqs", type=int, default=96, help="GPTQ windows")
    parser.add_argument("--eval-seqs", type=int, default=8, help="held-out KL windows")
    parser.add_argument("--configs", type=int, default=10, help="random Configs timed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)
    if args.quick:
        args.bits, args.uniform = (4, 8), (4,)
        args.seq_len, args.calibration_seqs, args.eval_seqs, args.configs = 32, 8, 2, 3
    if set(args.uniform) - set(args.bits) or set(args.methods) - set(METHODS):
        raise SystemExit(f"--uniform must be among --bits, --methods among {METHODS}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    import _smollm2_data as data

    from tradeoff.objectives import KLToDense
    from tradeoff.spaces import ArchitectureSpace, QuantizationSpace, SearchSpace, Workspace

    model = data.load_model().to(args.device)
    n_blocks = len(model.get_submodule(data.BLOCKS))
    windows = data.calibration(args.seq_len, args.eval_seqs + args.calibration_seqs)
    held_out, calibration = windows[: args.eval_seqs], windows[args.eval_seqs :]
    quality = KLToDense(held_out, device=args.device)
    start = time.perf_counter()
    quality.prepare(model)
    reference_s = time.perf_counter() - start
    tie = {f"{data.BLOCKS}.{i}": f"{data.BLOCKS}.{i}.*" for i in range(n_blocks)}
    arch = ArchitectureSpace.elastic(model, drop_blocks=True, blocks=data.BLOCKS)
    rows = []
    for method in args.methods:
        print(f"-- {method}", flush=True)
        with tempfile.TemporaryDirectory(prefix="bank-") as directory:
            start = time.perf_counter()
            quant = QuantizationSpace.for_model(
                model,
                bits=args.bits,
                granularity="group",
                group_size=args.group_size,
                tie=tie,
                method=method,
                calibration=calibration if method == "gptq" else None,
                bank=directory,
                device=args.device,
            )
            space_s = time.perf_counter() - start
            start = time.perf_counter()
            entries = quant.build(model)
            build_s = time.perf_counter() - start
            bank_mb = sum(f.stat().st_size for f in Path(directory).glob("*.safetensors")) / 2**20
            space = SearchSpace.merge(arch=arch, quant=quant)
            workspace = Workspace(space, model, device=args.device)
            kl = {}
            for bits in args.uniform:
                config = {k: (True if k.endswith(".keep") else bits) for k in space}
                kl[bits] = quality.measure(workspace.assemble(config))
                print(f"   uniform {bits} bits: KL {kl[bits]:.4f} nats/token", flush=True)
            fresh = Workspace(pickle.loads(pickle.dumps(space)), model, device=args.device)
            t0 = time.perf_counter()
            fresh.assemble(space.sample(0))
            cold_s = time.perf_counter() - t0
            del fresh
            first, warm, applied, evaluate = [], [], [], []
            for seed in range(args.configs):
                config = space.sample(seed)
                t0 = time.perf_counter()
                assembled = workspace.assemble(config)
                first.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assembled = workspace.assemble(config)
                warm.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                quality.measure(assembled)
                evaluate.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                space.apply(model, config)
                applied.append(time.perf_counter() - t0)
            rows.append(
                {
                    "method": method,
                    "space_s": space_s,
                    "build_s": build_s,
                    "entries": entries,
                    "bank_mb": bank_mb,
                    **(bank_costs(Path(directory)) if entries else {}),
                    "assemble_cold_s": cold_s,
                    "kl_uniform": {str(b): v for b, v in kl.items()},
                    "assemble_s_median": statistics.median(warm),
                    "assemble_first_s_median": statistics.median(first),
                    "apply_s_median": statistics.median(applied),
                    "evaluate_s_median": statistics.median(evaluate),
                }
            )
    return {
        "model": "SmolLM2-135M",
        "blocks": n_blocks,
        "reference_s": reference_s,
        "held_out_tokens": int(held_out.numel()),
        "calibration_tokens": int(calibration.numel()),
        "methods": rows,
    }


def bank_costs(directory: Path) -> dict[str, Any]:
    """Float32 size of the entries, the time to read and dequantize all of them, and to
    dequantize a whole model at one level from packed tensors in memory."""
    from safetensors import safe_open

    from tradeoff.spaces._bank import VariantBank
    from tradeoff.spaces._packing import unpack_entry

    keys = sorted(f.stem for f in directory.glob("*.safetensors"))
    bank = VariantBank(directory)
    load_s = float_mb = 0.0
    for key in keys:  # one entry in memory at a time
        start = time.perf_counter()
        entry = bank.get(key, lambda: None)
        load_s += time.perf_counter() - start
        float_mb += sum(t.nbytes for t in entry.values()) / 2**20
        bank._memory.clear()
    assert bank.loaded == len(keys) and bank.built == 0
    by_level: dict[str, list[tuple[dict[str, torch.Tensor], dict[str, Any]]]] = {}
    packed_mb = 0.0
    for key in keys:
        with safe_open(str(directory / f"{key}.safetensors"), framework="pt") as f:
            meta = f.metadata()
            stored = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        packed_mb += sum(t.nbytes for t in stored.values()) / 2**20
        level = meta["what"].split("@")[1]
        by_level.setdefault(level, []).append((stored, json.loads(meta["codec"])))
    per_level = {}
    for level, items in by_level.items():
        start = time.perf_counter()
        for stored, codec in items:
            unpack_entry(stored, codec)
        per_level[level] = time.perf_counter() - start
    return {
        "float_mb": float_mb,
        "packed_tensors_mb": packed_mb,
        "codecs": sorted({c["codec"] for items in by_level.values() for _, c in items}),
        "load_all_s": load_s,
        "dequantize_model_s": per_level,
        "dequantize_model_s_median": statistics.median(per_level.values()),
    }


def print_report(report: dict[str, Any]) -> None:
    result = report["result"]
    uniform = report["settings"]["uniform"]
    head = ["method", *[f"KL@{b}b" for b in uniform], "space s", "build s", "bank MB"]
    head += ["float MB", "load all s", "dequantize s", "assemble s", "cold s", "apply s"]
    head += ["eval s"]
    print(" | ".join(head))
    for r in result["methods"]:
        cells = [r["method"], *[f"{r['kl_uniform'][str(b)]:.4f}" for b in uniform]]
        cells += [f"{r['space_s']:.1f}", f"{r['build_s']:.1f}", f"{r['bank_mb']:.0f}"]
        cells += [f"{r.get('float_mb', 0):.0f}", f"{r.get('load_all_s', 0):.1f}"]
        cells += [f"{r.get('dequantize_model_s_median', 0):.2f}"]
        cells += [f"{r['assemble_s_median']:.4f}", f"{r['assemble_cold_s']:.2f}"]
        cells += [f"{r['apply_s_median']:.2f}"]
        cells += [f"{r['evaluate_s_median']:.2f}"]
        print(" | ".join(cells))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    packages = ("transformers", "hqq", "safetensors")
    report = recorded(args, lambda: run(args), packages=packages)
    print_report(report)
    write_report(report, args.out)
    print(f"wrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
