"""Exported checkpoints, measured: file size against the ``size_mb`` known cost, and the model
a runtime reads back against the one the search measured.

SmolLM2-135M (the offline GGUF, converted once; lm_head is tied to the embedding and stays
float), every Linear of its 30 blocks quantized by ``QuantizationSpace`` (round to nearest,
symmetric, groups of 64 inputs: its 576 inputs are no multiple of 128, and compressed-tensors
groups are whole) at: uniform int4, uniform int8, and a mixed Config (each block's bits drawn
from {4, 8} with seed 0). Each is written with
``tradeoff.spaces.export(format="compressed-tensors")`` and read back twice, by transformers'
``AutoModelForCausalLM.from_pretrained`` and by ``load_compressed`` (compressed-tensors' own
decompression); the report gives the file's bytes against the known cost, where the
difference goes (float32 scales where the cost counts float16, ``weight_shape`` per layer, the
safetensors header), the largest logit difference of each reader against the applied model
on 4 x 128 Hamlet tokens, and the export's wall time.

The uniform levels are also written in the ``torchao`` format twice: as exported by default
(torchao tensors of the same codes, float32) and with ``dtype="bfloat16"`` (int4 layers on
torchao's int4 CPU kernel, ``_weight_int4pack_mm_for_cpu``). Both are timed with the float32
model the search measured and the dense model in float32 and bfloat16, one torch thread, the
models taking turns within each of 7 repeats (median, after a warm-up): a forward pass of one
128-token sequence (prefill) and one decode step (one new token after a 32-token prompt, the
KV cache copied before each step) at batch 1 and 16.
Quality: KL(dense float32 || model) in nats/token on the same 4 x 128 tokens through
``KLToDense``, for the applied model (what the search measured), each reloaded export and the
bfloat16 dense model. ``kernels`` times single Linear layers (4096x4096 and SmolLM2's 576x1536
and 1536x576) at 1, 16 and 128 rows: float32, bfloat16 and the int4 kernel (group 64).

Usage:
    python benchmarks/export.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from optimizers import recorded, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "export.json"


def run(quick: bool, extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The checkpoints' rows; the dense timings and the single-layer kernels go to ``extra``."""
    import numpy as np
    import torch
    import transformers

    from tradeoff.objectives import model_cost, weight_storage_bytes
    from tradeoff.spaces import QuantizationSpace, export, load_compressed

    sys.path.insert(0, str(ROOT / "examples"))
    import _smollm2_data as data

    torch.set_num_threads(1)
    model = data.load_model().eval()
    blocks = "model.layers"
    space = QuantizationSpace.for_model(
        model, bits=(4, 8), granularity="group", group_size=(64,), exclude="lm_head",
        tie={f"{blocks}.{i}": f"{blocks}.{i}.*" for i in range(30)}, bank=None,
    )  # fmt: skip
    size = model_cost(space, model, weight_storage_bytes)
    rng = np.random.default_rng(0)
    configs = {
        "uniform int4": {k: 4 for k in space},
        "uniform int8": {k: 8 for k in space},
        "mixed 4/8 (seed 0)": {k: int(rng.choice([4, 8])) for k in space},
    }
    if quick:
        configs = dict(list(configs.items())[:1])
    ids = data.hamlet_ids()[: 4 * 128].reshape(4, 128)
    dense16 = _dense_runs(model, ids)
    rows = []
    for label, config in configs.items():
        with tempfile.TemporaryDirectory(prefix="tradeoff-export-") as tmp:
            start = time.perf_counter()
            written = export(space, model, config, Path(tmp) / "ckpt")
            seconds = time.perf_counter() - start
            applied = space.apply(model, config)
            with torch.no_grad():
                want = applied(ids).logits
                hf = transformers.AutoModelForCausalLM.from_pretrained(written.path).eval()
                via_hf = float((hf(ids).logits - want).abs().max())
                back = load_compressed(written.path, model)
                via_ct = float((back(ids).logits - want).abs().max())
            known = float(size(config))
            stored = _tensor_bytes(written.path / "model.safetensors")
            n_scales = sum(
                m.tradeoff_quant.n_scales
                for m in applied.modules()
                if getattr(m, "tradeoff_quant", None) is not None
            )
            n_layers = len(written.packed)
            file_bytes = written.weight_bytes
            timing = {}
            if label.startswith("uniform"):
                timing = _torchao_runs(space, model, config, applied, ids, Path(tmp), dense16)
            rows.append(
                {
                    "config": label,
                    "known_bytes": known,
                    "file_bytes": file_bytes,
                    "file_over_known": file_bytes / known,
                    "scales_float32_extra_bytes": 2 * n_scales,
                    "weight_shape_bytes": 16 * n_layers,
                    "header_bytes": file_bytes - stored,
                    "unexplained_bytes": stored - known - 2 * n_scales - 16 * n_layers,
                    "max_logit_diff_transformers": via_hf,
                    "max_logit_diff_compressed_tensors": via_ct,
                    "export_s": seconds,
                    "packed_layers": n_layers,
                    "torchao": timing,
                }
            )
    extra["dense"] = {k: v for k, v in dense16.items() if not k.startswith("_")}
    extra["kernels"] = _kernels()
    return rows


def _kl(model: Any, reference: Any) -> float:
    return float(reference.measure(model))


def _dense_runs(model: Any, ids: Any) -> dict[str, Any]:
    """The KL reference on the dense model, and the dense model in bfloat16."""
    import copy

    import torch

    from tradeoff.objectives import KLToDense

    kl = KLToDense(ids, batch_size=4)
    kl.prepare(model)
    dense16 = copy.deepcopy(model).to(torch.bfloat16)
    return {"bfloat16_kl": _kl(dense16, kl), "_kl": kl, "_models": (model, dense16)}


def _torchao_runs(
    space: Any, model: Any, config: Any, applied: Any, ids: Any, tmp: Path, dense: Any
) -> dict[str, Any]:
    import warnings

    import torch

    from tradeoff.spaces import export

    kl = dense["_kl"]
    with torch.no_grad():
        want = applied(ids).logits
    out: dict[str, Any] = {"search_kl": _kl(applied, kl)}
    models = dict(zip(("dense float32", "dense bfloat16"), dense["_models"]))
    models["float32"] = applied
    for key, dtype in (("torchao", None), ("torchao_bfloat16", "bfloat16")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ao = export(space, model, config, tmp / key, format="torchao", dtype=dtype)
        loaded = torch.load(ao.path / "model.pt", weights_only=False).eval()
        kernels = json.loads((ao.path / "tradeoff.json").read_text())["kernels"]
        with torch.no_grad():
            diff = float((loaded(ids).logits.float() - want).abs().max())
        out[key] = {
            "kl": _kl(loaded, kl),
            "max_logit_diff": diff,
            "max_abs_logit": float(want.abs().max()),
            "file_bytes": ao.files["model.pt"],
            "tensors": {k: list(kernels.values()).count(k) for k in set(kernels.values())},
            "warned": [str(w.message).splitlines()[0] for w in caught],
        }
        models[key] = loaded
    out["timing_ms"] = _interleaved(models, ids)
    return out


WORKLOADS = ("prefill_1x128", "decode_b1", "decode_b16")


def _interleaved(models: dict[str, Any], ids: Any, repeats: int = 7) -> dict[str, Any]:
    """Median ms per model and workload, the models taking turns within each repeat (a
    busy machine's load then falls on all of them alike): a forward pass of one 128-token
    sequence, and one decode step (a new token after a 32-token prompt, its KV cache copied
    before each step) at batch 1 and 16."""
    import statistics

    calls = {name: _calls(model, ids) for name, model in models.items()}
    times: dict[str, dict[str, list[float]]] = {n: {w: [] for w in WORKLOADS} for n in models}
    for work in WORKLOADS:
        for name in models:
            calls[name][work]()  # warm-up
        for _ in range(repeats):
            for name in models:
                times[name][work].append(calls[name][work]())
    return {n: {w: statistics.median(t) for w, t in ws.items()} for n, ws in times.items()}


def _calls(model: Any, ids: Any) -> dict[str, Any]:
    """Workload -> a function that runs it once on ``model`` and returns its ms."""
    import copy

    import torch

    def prefill() -> float:
        with torch.no_grad():
            start = time.perf_counter()
            model(ids[:1])
            return (time.perf_counter() - start) * 1e3

    def decoder(batch: int) -> Any:
        with torch.no_grad():
            first = model(ids[:1, :32].repeat(batch, 1), use_cache=True)
        token = first.logits[:, -1:].argmax(-1)

        def step() -> float:
            cache = copy.deepcopy(first.past_key_values)
            with torch.no_grad():
                start = time.perf_counter()
                model(token, past_key_values=cache, use_cache=True)
                return (time.perf_counter() - start) * 1e3

        return step

    return {"prefill_1x128": prefill, "decode_b1": decoder(1), "decode_b16": decoder(16)}


def _kernels() -> list[dict[str, Any]]:
    """One Linear's ms (median of 7): float32, bfloat16 and the int4 CPU kernel, group 64."""
    import torch
    from torch.nn.functional import linear

    rows = []
    gen = torch.Generator().manual_seed(0)
    for n, k in ((4096, 4096), (1536, 576), (576, 1536)):
        w = torch.randn(n, k, generator=gen)
        codes = torch.randint(0, 16, (n, k), generator=gen, dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
        sz = torch.rand(k // 64, n, 2, generator=gen).bfloat16()
        for m in (1, 16, 128):
            x = torch.randn(m, k, generator=gen)
            int4 = torch.ops.aten._weight_int4pack_mm_for_cpu
            calls = {
                "float32_ms": (linear, (x, w)),
                "bfloat16_ms": (linear, (x.bfloat16(), w.bfloat16())),
                "int4_ms": (int4, (x.bfloat16(), packed, 64, sz)),
            }
            times = {name: _call_ms(fn, call_args) for name, (fn, call_args) in calls.items()}
            rows.append({"out": n, "in": k, "rows": m, **times})
    return rows


def _call_ms(fn: Any, args: tuple[Any, ...], repeats: int = 7) -> float:
    import statistics

    fn(*args)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        runs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(runs)


def _tensor_bytes(path: Path) -> int:
    """The tensors' bytes in a safetensors file (the file less its JSON header)."""
    with open(path, "rb") as f:
        header = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(header))
    return sum(
        v["data_offsets"][1] - v["data_offsets"][0] for k, v in meta.items() if k != "__metadata__"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one Config (a smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    extra: dict[str, Any] = {}
    report = recorded(
        args, lambda: run(args.quick, extra),
        packages=("torch", "torchao", "transformers", "compressed-tensors"), key="checkpoints",
    )  # fmt: skip
    report.update(extra)
    print(f"{'config':<20} {'known MB':>9} {'file MB':>9} {'ratio':>7} {'f32 scales':>10} "
          f"{'header':>8} {'|dlogit| hf':>11} {'|dlogit| ct':>11} {'export s':>9}")  # fmt: skip
    for r in report["checkpoints"]:
        print(
            f"{r['config']:<20} {r['known_bytes'] / 1e6:>9.2f} {r['file_bytes'] / 1e6:>9.2f} "
            f"{r['file_over_known']:>7.4f} {r['scales_float32_extra_bytes'] / 1e6:>9.2f}M "
            f"{r['header_bytes']:>8} {r['max_logit_diff_transformers']:>11.3g} "
            f"{r['max_logit_diff_compressed_tensors']:>11.3g} {r['export_s']:>9.1f}"
        )
    print(f"\n{'config / model':<36} {'prefill 1x128':>13} {'decode b1':>10} {'decode b16':>10}")
    for r in report["checkpoints"]:
        for name, t in r["torchao"].get("timing_ms", {}).items():
            cells = " ".join(f"{t[w]:>10.1f}" for w in WORKLOADS)
            print(f"{r['config'] + ' / ' + name:<36} {cells}")
        if r["torchao"]:
            t = r["torchao"]
            print(f"  KL: search {t['search_kl']:.4g}, torchao {t['torchao']['kl']:.4g}, "
                  f"bfloat16 int4 {t['torchao_bfloat16']['kl']:.4g}, dense bfloat16 "
                  f"{report['dense']['bfloat16_kl']:.4g}")  # fmt: skip
    for k in report["kernels"]:
        print(f"Linear {k['out']}x{k['in']} rows {k['rows']:>3}: float32 {k['float32_ms']:.3f} "
              f"bfloat16 {k['bfloat16_ms']:.3f} int4 {k['int4_ms']:.3f} ms")  # fmt: skip
    write_report(report, args.out)
    print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
