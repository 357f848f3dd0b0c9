"""Quality objectives: how good a compressed model still is, measured at a fidelity budget.

A :class:`Quality` turns a model into one finite float. Call order:

1. construct it with the data (checked at once, nothing run);
2. ``prepare(dense_model)`` once per process: :class:`KLToDense` computes its dense reference
   here; the others only check their data against the model (optional for them);
3. ``measure(model, budget, key=...)`` per Config, on a worker.

The budget is the fidelity: :class:`KLToDense` and :class:`Perplexity` count calibration
sequences, :class:`Accuracy` examples (the first ``budget`` of them; ``None`` is all), so
``Fidelity(quality.rungs())`` is a ladder that fits the data. Warm start: with a ``key`` (any
hashable saying what determines the compressed model, e.g. ``tuple(sorted(config.items()))``)
the per-item values measured so far are kept, and a Config promoted from budget 4 to 16 runs
only the 12 new sequences. The number is that of a cold evaluation at 16: bit for bit when the
rungs are multiples of ``batch_size`` (the same batches run), else up to the float rounding of
batched kernels (none on CPU in our tests). Keys live as long as the quality (a few floats per
item measured); ``prepare`` forgets them.

Models run in eval mode under ``torch.inference_mode()`` (their training flags are restored
after) on ``device`` (the model's own device by default; a model elsewhere is moved there, in
place). A quality pickles without its dense reference and warm-start values: call ``prepare``
on each worker.
"""

from __future__ import annotations

import abc
import inspect
import math
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from tradeoff.objectives._costs import _inference
from tradeoff.objectives._objective import Direction, Objective, is_finite_number

Device = str | torch.device | None
_Values = np.ndarray[Any, np.dtype[np.float64]]


class Quality(abc.ABC):
    """A measured quality objective of a model (see the module docstring for the call order).

    Args:
        name: The metric name (the objective's name in the study).
        direction: ``"minimize"`` or ``"maximize"``.
        device: Where models run; their own device when ``None``.
    """

    def __init__(self, *, name: str, direction: Direction, device: Device = None) -> None:
        Objective(name, direction)  # the same checks, the same errors
        self.name, self.direction = name, direction
        self.device = None if device is None else torch.device(device)

    @property
    @abc.abstractmethod
    def max_budget(self) -> float | None:
        """The full budget (all the data), or ``None`` when the quality has no ladder."""

    def objective(self, *, reference: float | None = None) -> Objective:
        """The measured :class:`~tradeoff.objectives.Objective` (no ``fn``) for ``optimize``;
        ``reference`` is its hypervolume reference coordinate."""
        return Objective(self.name, self.direction, reference=reference)

    def prepare(self, dense_model: Any) -> None:  # noqa: B027 - optional hook
        """Get ready to measure compressions of ``dense_model`` (nothing by default)."""

    def example(self) -> Any:
        """One input of the model from the quality's data (batch of one), for what needs to
        run the model once (bit-ops, channel dependencies); ``None`` when it has no data."""
        return None

    def measure(self, model: Any, budget: float | None = None, *, key: Hashable = None) -> float:
        """The quality of ``model`` at ``budget`` (``None``: the full budget).

        Args:
            model: The (compressed) model.
            budget: How much of the data to use (see the class).
            key: What determines ``model``, for the warm start (see the module docstring).

        Raises:
            ValueError: a budget out of range, or a non-finite result.
        """
        budget = self._budget(budget)
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"{self._label}: key must be hashable, got {type(key).__name__}; "
                "pass e.g. key=tuple(sorted(config.items()))."
            ) from None
        value = self._measure(model, budget, key)
        if not is_finite_number(value):
            raise ValueError(f"{self._label} measured {value!r} at budget {budget}; {self._nan}")
        return float(value)

    def rungs(self, n: int = 3, *, eta: float = 3.0) -> tuple[float, ...]:
        """``n`` budgets ``max_budget / eta**k``, lowest first (whole numbers when the budget
        counts items), for ``Fidelity(quality.rungs())``."""
        top = self.max_budget
        if top is None:
            raise ValueError(f"{self._label} has no max_budget, so no ladder; give max_budget=.")
        if not (isinstance(n, int) and n >= 1 and is_finite_number(eta) and eta > 1):
            raise ValueError(f"rungs needs an int n >= 1 and eta > 1, got n={n!r}, eta={eta!r}.")
        steps = [top / eta**k for k in reversed(range(n))]
        if isinstance(top, int):
            steps = [max(1, round(s)) for s in steps]
        out = tuple(dict.fromkeys(steps))
        if len(out) < n:
            raise ValueError(
                f"{self._label}: {top} {self._unit} make only {len(out)} distinct rungs of "
                f"{n} at eta={eta}; give more {self._unit}, fewer rungs or a smaller eta."
            )
        return out

    def check_budgets(self, budgets: Any) -> None:
        """Refuse a ladder (a ``Fidelity`` or its budgets) this quality cannot measure."""
        for b in getattr(budgets, "budgets", budgets):
            self._budget(b)

    # Private core -------------------------------------------------------------------------
    _unit = "items"
    _nan = "the model's outputs are not finite."

    @property
    def _label(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _budget(self, budget: Any) -> float:
        top = self.max_budget
        if budget is None:
            return top if top is not None else math.inf
        if not is_finite_number(budget) or budget <= 0:
            raise ValueError(f"{self._label}: budget must be a positive number, got {budget!r}.")
        if top is not None and budget > top:
            raise ValueError(
                f"{self._label}: budget {budget} is beyond the data ({top} {self._unit}); give "
                f"at least {budget} {self._unit} or lower the ladder's top rung to {top} "
                "(quality.rungs() gives a ladder that fits)."
            )
        if isinstance(top, int) and budget != int(budget):
            raise ValueError(f"{self._label}: budget counts {self._unit}, got {budget!r}.")
        return int(budget) if isinstance(top, int) else float(budget)

    @abc.abstractmethod
    def _measure(self, model: Any, budget: float, key: Hashable) -> float:
        """The value at a checked budget."""

    def _place(self, model: Any) -> torch.device:
        if not isinstance(model, nn.Module):
            raise TypeError(f"{self._label} measures a torch.nn.Module, got {type(model)}.")
        device = self.device or _device_of(model)
        if _device_of(model) != device:
            model.to(device)
        return device


class _Items(Quality):
    """A quality over items (sequences, examples): the budget counts them, and the per-item
    values measured for a key are kept for the warm start. Thread-safe."""

    def __init__(self, *, batch_size: int, **kw: Any) -> None:
        super().__init__(**kw)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"{self._label}: batch_size must be an int >= 1, got {batch_size!r}.")
        self.batch_size, self._n = batch_size, 0  # the subclass counts its items
        self.__setstate__(self.__getstate__())

    @property
    def max_budget(self) -> int:
        return self._n

    def __getstate__(self) -> dict[str, Any]:
        skip = ("_lock", "_done", "_ref")
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._done: dict[Hashable, _Values] = {}

    def _measure(self, model: Any, budget: float, key: Hashable) -> float:
        n = int(budget)
        with self._lock:
            done = self._done.get(key, np.empty(0)) if key is not None else np.empty(0)
        if len(done) < n:
            self._ready()
            device = self._place(model)
            with _inference(model, torch.inference_mode):
                new = self._score(model, device, len(done), n)
            done = np.concatenate([done, np.asarray(new, dtype=np.float64)])
            if key is not None:
                with self._lock:  # a concurrent twin may have measured more: keep the longest
                    if len(self._done.get(key, ())) < len(done):
                        self._done[key] = done
        return self._reduce(done[:n])

    def _ready(self) -> None:
        """Raise if ``measure`` may not run yet."""

    def _spans(self, start: int, stop: int) -> Iterator[tuple[int, int]]:
        """Batches of items ``[start, stop)`` cut at multiples of ``batch_size``, so an item
        meets the same batch-mates whether measured cold or warm where the batches allow."""
        i = start
        while i < stop:
            j = min(stop, (i // self.batch_size + 1) * self.batch_size)
            yield i, j
            i = j

    @abc.abstractmethod
    def _score(self, model: nn.Module, device: torch.device, start: int, stop: int) -> _Values:
        """Per-item values of items ``[start, stop)``."""

    @abc.abstractmethod
    def _reduce(self, values: _Values) -> float:
        """The quality from the per-item values of the first ``budget`` items."""


class _Sequences(_Items):
    """Token-id sequences ``(n_seqs, seq_len)`` of a causal LM; the budget counts sequences."""

    _unit = "sequences"

    def __init__(self, ids: Any, what: str, *, min_len: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._what = what
        self.ids = _check_ids(ids, f"{self._label}: {what}", min_len)
        self._n, self._top_id = len(self.ids), int(self.ids.max())

    @property
    def seq_len(self) -> int:
        return int(self.ids.shape[1])

    def example(self) -> torch.Tensor:
        """The first sequence, ``(1, seq_len)``."""
        return self.ids[:1]

    def prepare(self, dense_model: Any) -> None:
        """Check that the token ids fit ``dense_model``'s vocabulary."""
        self._check_vocab(dense_model)

    def _check_vocab(self, model: Any) -> None:
        vocab, top = _vocab_size(model), self._top_id
        if vocab is not None and top >= vocab:
            raise ValueError(
                f"{self._label}: {self._what} holds token id {top} but the model's vocabulary "
                f"has {vocab} ids (0..{vocab - 1}); tokenize with the model's own tokenizer."
            )

    def _log_probs(self, model: nn.Module, device: torch.device, i: int, j: int) -> torch.Tensor:
        """Next-token log-probabilities ``(j - i, seq_len, vocab)``, float32."""
        return torch.log_softmax(_lm_logits(model, self.ids[i:j].to(device)).float(), dim=-1)


class KLToDense(_Sequences):
    """Mean next-token KL(dense || model) per token, in nats, over the full vocabulary.

    ``prepare(dense_model)`` computes the dense log-probabilities once and keeps them: ``n_seqs
    * seq_len * vocab`` numbers of ``dtype`` on ``reference_device`` (SmolLM2: 128 tokens x
    49,152 ids is 25 MB per sequence in float32). ``float16`` halves that; its rounding adds
    about 1e-6 nats/token to the KL (``bfloat16``: about 5e-5, as much as 1.5% of an 8-bit
    model's KL on SmolLM2). Sequences are whole: no padding, every position counts.

    Args:
        calibration: Token ids ``(n_seqs, seq_len)``, an integer tensor; the first ``budget``
            sequences are measured, so order them randomly.
        batch_size: Sequences per forward pass.
        dtype: Storage of the dense log-probs (float32, float16 or bfloat16).
        reference_device: Where they are kept (CPU by default: it has the memory).
        device: Where models run (see :class:`Quality`).
        name: The metric name.
    """

    _nan = "the model's log-probabilities are not finite (a broken quantization?)."

    def __init__(
        self,
        calibration: torch.Tensor,
        *,
        batch_size: int = 8,
        dtype: torch.dtype = torch.float32,
        reference_device: Device = "cpu",
        device: Device = None,
        name: str = "kl",
    ) -> None:
        if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            raise ValueError(
                f"KLToDense: dtype must be a float dtype such as torch.float16, got {dtype!r}."
            )
        self.dtype, self.reference_device = dtype, torch.device(reference_device or "cpu")
        super().__init__(
            calibration,
            "calibration",
            min_len=1,
            batch_size=batch_size,
            device=device,
            name=name,
            direction="minimize",
        )

    @property
    def prepared(self) -> bool:
        """Whether the dense reference is here (it does not travel in a pickle)."""
        return self._ref is not None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._ref: torch.Tensor | None = None

    def prepare(self, dense_model: Any) -> None:
        """Compute the dense log-probs of the calibration (and forget warm-start values)."""
        self._check_vocab(dense_model)
        device = self._place(dense_model)
        ref: torch.Tensor | None = None
        with _inference(dense_model, torch.inference_mode):
            for i, j in self._spans(0, self._n):
                logp = self._log_probs(dense_model, device, i, j)
                if ref is None:
                    shape = (self._n, self.seq_len, logp.shape[-1])
                    ref = torch.empty(shape, dtype=self.dtype, device=self.reference_device)
                ref[i:j] = logp.to(ref.device, ref.dtype)
        with self._lock:
            self._ref, self._done = ref, {}

    def _ready(self) -> None:
        if self._ref is None:
            raise RuntimeError(
                f"{self._label}: call prepare(dense_model) before measure (on each worker: the "
                "dense reference is not pickled)."
            )

    def _score(self, model: nn.Module, device: torch.device, start: int, stop: int) -> _Values:
        assert self._ref is not None
        self._check_vocab(model)
        out: list[float] = []
        for i, j in self._spans(start, stop):
            logq = self._log_probs(model, device, i, j)
            logp = self._ref[i:j].to(device=device, dtype=torch.float32)
            if logq.shape != logp.shape:
                raise ValueError(
                    f"{self._label}: the model gives log-probs {tuple(logq.shape)}"
                    f", the dense model gave {tuple(logp.shape)}."
                )
            kl = logq.neg_().add_(logp).mul_(logp.exp())  # in place: one temporary, not three
            out += kl.sum(dim=(1, 2), dtype=torch.float64).tolist()
        return np.array(out)

    def _reduce(self, values: _Values) -> float:
        return float(values.sum() / (len(values) * self.seq_len))


class Perplexity(_Sequences):
    """Perplexity ``exp(mean NLL)`` of a causal LM on text, per predicted token (``seq_len -
    1`` per sequence: each token given the ones before it in its sequence).

    Args:
        text_ids: Token ids ``(n_seqs, seq_len)``, an integer tensor, ``seq_len >= 2``.
        batch_size: Sequences per forward pass.
        device: Where models run (see :class:`Quality`).
        name: The metric name.
    """

    def __init__(
        self,
        text_ids: torch.Tensor,
        *,
        batch_size: int = 8,
        device: Device = None,
        name: str = "perplexity",
    ) -> None:
        super().__init__(
            text_ids,
            "text_ids",
            min_len=2,
            batch_size=batch_size,
            device=device,
            name=name,
            direction="minimize",
        )

    def _score(self, model: nn.Module, device: torch.device, start: int, stop: int) -> _Values:
        self._check_vocab(model)
        out: list[float] = []
        for i, j in self._spans(start, stop):
            logp = self._log_probs(model, device, i, j)[:, :-1]
            target = self.ids[i:j, 1:].to(device)
            nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            out += nll.sum(dim=1, dtype=torch.float64).tolist()
        return np.array(out)

    def _reduce(self, values: _Values) -> float:
        return math.exp(values.sum() / (len(values) * (self.seq_len - 1)))


class Accuracy(_Items):
    """Top-1 accuracy of a classifier on the first ``budget`` examples (higher is better).

    Args:
        data: ``(x, y)``: inputs ``x`` (a tensor, or a dict of tensors for ``model(**x)``)
            and integer labels ``y`` ``(n,)``; or a ``DataLoader`` of such ``(x, y)`` batches
            in a fixed order (``shuffle=False``).
        batch_size: Examples per forward pass (tensors only; a loader keeps its own).
        device: Where models run (see :class:`Quality`).
        name: The metric name.
    """

    _unit = "examples"

    def __init__(
        self, data: Any, *, batch_size: int = 256, device: Device = None, name: str = "accuracy"
    ) -> None:
        super().__init__(batch_size=batch_size, device=device, name=name, direction="maximize")
        self._tensors, self._loader, self._n = _check_data(data, self._label)

    def prepare(self, dense_model: Any) -> None:
        """Check the labels (all of a tensor's, the first batch of a loader's) against
        ``dense_model``'s output width: one forward pass of one example."""
        device = self._place(dense_model)
        x, y = next(self._batches(0, 1))
        with _inference(dense_model, torch.inference_mode):
            width = self._class_logits(dense_model, device, x, len(y)).shape[1]
        self._check_labels(y if self._tensors is None else self._tensors[1], width)

    def example(self) -> Any:
        """The first example's input (a batch of one)."""
        return next(self._batches(0, 1))[0]

    def _score(self, model: nn.Module, device: torch.device, start: int, stop: int) -> _Values:
        out: list[np.ndarray[Any, Any]] = []
        for x, y in self._batches(start, stop):
            out.append(self._hits(model, device, x, y))
        return np.concatenate(out)

    def _batches(self, start: int, stop: int) -> Iterator[tuple[Any, torch.Tensor]]:
        if self._tensors is not None:
            for i, j in self._spans(start, stop):
                yield _rows(self._tensors, i, j)
            return
        seen = 0
        for batch in self._loader if self._loader is not None else ():
            x, y = _pair(batch, "Accuracy: each batch of the DataLoader")
            n = len(y)
            if seen + n > start:
                lo, hi = max(start - seen, 0), min(stop - seen, n)
                yield _rows((x, y), lo, hi)
            seen += n
            if seen >= stop:
                return

    def _hits(self, model: nn.Module, device: torch.device, x: Any, y: torch.Tensor) -> Any:
        logits = self._class_logits(model, device, x, len(y))
        self._check_labels(y, logits.shape[1])
        return (logits.argmax(1).cpu() == y.cpu()).numpy().astype(np.float64)

    def _class_logits(self, model: nn.Module, device: torch.device, x: Any, n: int) -> Any:
        logits = _logits(model, _to(x, device))
        if logits.dim() != 2 or len(logits) != n:
            raise ValueError(
                f"{self._label}: the model must return logits (batch, n_classes), got shape "
                f"{tuple(logits.shape)} for {n} examples."
            )
        return logits

    def _check_labels(self, y: torch.Tensor, width: int) -> None:
        if int(y.max()) >= width:
            raise ValueError(
                f"{self._label}: label {int(y.max())} is out of the model's output range "
                f"0..{width - 1}; labels must index the model's {width} outputs."
            )

    def _reduce(self, values: _Values) -> float:
        return float(values.mean())


class QualityFn(Quality):
    """A plain callable ``fn(model, budget) -> float`` as a quality: your own evaluation, or a
    PEFT training loop then its eval (no eval mode nor inference mode is imposed).

    Args:
        fn: Called as ``fn(model, budget)``; ``budget`` is the fidelity budget (``max_budget``
            when measured without one, ``None`` if that is ``None`` too).
        name: The metric name.
        direction: ``"minimize"`` (default) or ``"maximize"``.
        max_budget: The full budget (training steps, a data fraction), for :meth:`rungs`.
    """

    _nan = "fn must return a finite number (for a diverged run, raise or return a bound)."

    def __init__(
        self,
        fn: Callable[[Any, Any], float],
        name: str,
        direction: Direction = "minimize",
        *,
        max_budget: float | None = None,
    ) -> None:
        super().__init__(name=name, direction=direction)
        try:
            inspect.signature(fn).bind(None, None)
        except TypeError:
            raise TypeError(
                f"{self._label}: fn must be callable as fn(model, budget), got "
                f"{fn!r}; wrap it: lambda model, budget: ..."
            ) from None
        except ValueError:  # no signature to read (some builtins): the first call tells
            pass
        if max_budget is not None and not (is_finite_number(max_budget) and max_budget > 0):
            raise ValueError(f"{self._label}: max_budget must be a positive number or None.")
        self.fn, self._max = fn, max_budget

    @property
    def max_budget(self) -> float | None:
        return self._max

    def _measure(self, model: Any, budget: float, key: Hashable) -> float:
        value = self.fn(model, None if budget == math.inf else budget)
        if not is_finite_number(value):
            raise ValueError(
                f"{self._label}: fn returned {value!r} at budget {budget}; " + self._nan
            )
        return float(value)


# Helpers ----------------------------------------------------------------------------------
def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _logits(model: nn.Module, inputs: Any) -> torch.Tensor:
    out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    logits = getattr(out, "logits", out)
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"The model returned {type(out).__name__}, not logits (a tensor).")
    return logits


def _lm_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    if hasattr(getattr(model, "config", None), "use_cache"):  # a transformers model
        return _logits(model, {"input_ids": ids, "use_cache": False})
    return _logits(model, ids)


def _vocab_size(model: Any) -> int | None:
    get = getattr(model, "get_input_embeddings", None)
    embedding = get() if callable(get) else None
    if isinstance(embedding, nn.Embedding):
        return int(embedding.num_embeddings)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    return vocab if isinstance(vocab, int) else None


def _check_ids(ids: Any, what: str, min_len: int) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor):
        raise TypeError(
            f"{what} must be a tensor of token ids (n_seqs, seq_len), got "
            f"{type(ids).__name__}; use torch.tensor(ids)."
        )
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(
            f"{what} must hold integer token ids, got {ids.dtype}; pass the "
            "tokenizer's input_ids (torch.long)."
        )
    if ids.dim() != 2 or ids.shape[0] < 1 or ids.shape[1] < min_len:
        raise ValueError(
            f"{what} must be 2-D token ids (n_seqs, seq_len) with n_seqs >= 1 and seq_len >= "
            f"{min_len}, got shape {tuple(ids.shape)}; cut a 1-D stream into sequences with "
            "ids[: n * seq_len].view(n, seq_len)."
        )
    if int(ids.min()) < 0:
        raise ValueError(f"{what} holds a negative token id ({int(ids.min())}); ids are >= 0.")
    return ids.detach().to("cpu", torch.long).contiguous()


def _check_data(data: Any, what: str) -> tuple[tuple[Any, torch.Tensor] | None, Any, int]:
    """``(tensors, loader, n)`` from ``(x, y)`` or a DataLoader; raises saying what to fix."""
    from torch.utils.data import DataLoader, RandomSampler

    if isinstance(data, DataLoader):
        if isinstance(data.sampler, RandomSampler):
            raise ValueError(
                f"{what}: the DataLoader shuffles; budgets take its first "
                "examples, which must stay the same: use shuffle=False."
            )
        n = len(data.dataset)  # type: ignore[arg-type]
        if data.drop_last and data.batch_size:
            n -= n % data.batch_size
        return None, data, n
    x, y = _pair(data, f"{what}: data")
    n_x = len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)
    if len(y) != n_x:
        raise ValueError(
            f"{what}: x has {n_x} examples but y has {len(y)} labels; give one label per example."
        )
    if n_x == 0 or int(y.min()) < 0:
        raise ValueError(f"{what}: need at least one example and labels >= 0.")
    return (x, y.detach().cpu().long()), None, n_x


def _pair(data: Any, what: str) -> tuple[Any, torch.Tensor]:
    ok = isinstance(data, (tuple, list)) and len(data) == 2
    x, y = data if ok else (None, None)
    ok = ok and (isinstance(x, torch.Tensor) or (isinstance(x, Mapping) and len(x) > 0))
    if not (ok and isinstance(y, torch.Tensor)):
        raise TypeError(
            f"{what} must be (x, y): input tensor(s) and a label tensor, or a "
            f"DataLoader of them; got {type(data).__name__}."
        )
    if y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(
            f"{what}: y must be integer class labels of shape (n,), got "
            f"{y.dtype} {tuple(y.shape)}; use y.argmax(1) for one-hot."
        )
    return x, y


def _rows(data: tuple[Any, torch.Tensor], i: int, j: int) -> tuple[Any, torch.Tensor]:
    x, y = data
    rows = {k: v[i:j] for k, v in x.items()} if isinstance(x, Mapping) else x[i:j]
    return rows, y[i:j]


def _to(x: Any, device: torch.device) -> Any:
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, Mapping) else x.to(device)
