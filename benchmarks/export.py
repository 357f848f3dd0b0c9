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
on 4 x 128 Hamlet tokens, and the export's wall time. The uniform levels are also written in
the ``torchao`` format (torchao quantized tensors of the same codes) and timed against the
float32 model in the same run: the forward pass of 1 and of 16 sequences of 128 tokens, one
torch thread, the median of 5 after a warm-up.

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


def run(quick: bool) -> list[dict[str, Any]]:
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
                ao = export(space, model, config, Path(tmp) / "ao", format="torchao")
                loaded = torch.load(ao.path / "model.pt", weights_only=False).eval()
                with torch.no_grad():
                    exact = float((loaded(ids).logits - want).abs().max())
                for batch in (1, 16):
                    x = ids[:1].repeat(batch, 1)
                    fp32, fast = _median_ms(applied, x), _median_ms(loaded, x)
                    timing[f"batch{batch}"] = {"float32_ms": fp32, "torchao_ms": fast}
                timing["torchao_max_logit_diff"] = exact
                timing["torchao_file_bytes"] = ao.files["model.pt"]
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
    return rows


def _median_ms(model: Any, ids: Any, repeats: int = 5) -> float:
    import statistics

    import torch

    with torch.no_grad():
        model(ids)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(ids)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


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
    report = recorded(
        args, lambda: run(args.quick), packages=("torch", "transformers", "compressed-tensors"),
        key="checkpoints",
    )  # fmt: skip
    print(f"{'config':<20} {'known MB':>9} {'file MB':>9} {'ratio':>7} {'f32 scales':>10} "
          f"{'header':>8} {'|dlogit| hf':>11} {'|dlogit| ct':>11} {'export s':>9}")  # fmt: skip
    for r in report["checkpoints"]:
        print(
            f"{r['config']:<20} {r['known_bytes'] / 1e6:>9.2f} {r['file_bytes'] / 1e6:>9.2f} "
            f"{r['file_over_known']:>7.4f} {r['scales_float32_extra_bytes'] / 1e6:>9.2f}M "
            f"{r['header_bytes']:>8} {r['max_logit_diff_transformers']:>11.3g} "
            f"{r['max_logit_diff_compressed_tensors']:>11.3g} {r['export_s']:>9.1f}"
        )
    print(f"\n{'config':<20} {'batch':>5} {'float32 ms':>11} {'torchao ms':>11} {'ratio':>6}")
    for r in report["checkpoints"]:
        for batch in (1, 16):
            t = r["torchao"].get(f"batch{batch}")
            if t:
                print(
                    f"{r['config']:<20} {batch:>5} {t['float32_ms']:>11.1f} "
                    f"{t['torchao_ms']:>11.1f} {t['torchao_ms'] / t['float32_ms']:>6.2f}"
                )
    write_report(report, args.out)
    print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
