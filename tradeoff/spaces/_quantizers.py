"""How weight levels are computed: round-to-nearest, GPTQ and HQQ, and the per-space
:class:`Quantizer` that keeps calibrated levels in the variant bank (see ``_quant``)."""

from __future__ import annotations

import hashlib
import json
import numbers
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from tradeoff.spaces._bank import VariantBank, entry_key, entry_nbytes, tensor_digest
from tradeoff.spaces._gptq import _Grid, _static_scales, gptq_grids, gptq_quantize, rtn_quantize
from tradeoff.spaces._model import KEPT_INPUTS_ATTR, PRUNE_ATTR, QuantInfo

METHODS = ("rtn", "gptq", "hqq")
"""How int levels are computed: round-to-nearest, GPTQ (calibrated), HQQ (data-free)."""

_FLOAT_MAX = {"fp8_e4m3": 448.0, "fp8_e5m2": 57344.0, "fp4_e2m1": 6.0}
_FLOAT_BITS = {"fp8_e4m3": 8, "fp8_e5m2": 8, "fp4_e2m1": 4}
_FP8_DTYPES = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


class Quantizer:
    """How a space computes weight levels, and where it keeps the calibrated ones.

    Built by :meth:`QuantizationSpace.for_model`. GPTQ's calibration Hessians come from a
    :class:`HessianSource` and are collected only when an entry must be computed (with a warm
    bank, never): entry keys name each Hessian by its bytes' digest, and the bank keeps those
    digests by the source's digest (:meth:`VariantBank.hessian_digests`). Pickles without its
    Hessians once :meth:`QuantizationSpace.build` has put every entry in the bank (workers then
    only read entries), unless ``keep_hessians`` (merged after a space that prunes or narrows
    layers, whose Configs need entries no build lists: workers compute those, so the Hessians
    are collected before they are shipped); never with its source (the model); and with a bank
    directory, without the bank's in-memory entries (each process loads the ones it uses,
    once).

    Args:
        method: From :data:`METHODS`.
        symmetric: Zero-point 0, or an asymmetric grid.
        damp: GPTQ's dampening.
        act_order: GPTQ's column order by decreasing Hessian diagonal.
        device: Where calibrated levels are computed (default: the weight's device).
    """

    def __init__(
        self,
        method: str = "rtn",
        *,
        symmetric: bool = True,
        damp: float = 0.01,
        act_order: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        self.method, self.symmetric, self.damp, self.act_order = method, symmetric, damp, act_order
        self.device = None if device is None else str(device)
        self.bank = VariantBank(None)
        self.hessians: dict[str, torch.Tensor] = {}
        self.complete = False  # build() put every entry in the bank
        self.keep_hessians = False  # an earlier stage reshapes layers: entries beyond build()
        self.source: HessianSource | None = None  # collects self.hessians when first needed
        self._hessian_digests: dict[str, str] = {}
        self._collecting = threading.Lock()

    def calibrate(self, source: HessianSource, *, now: bool) -> None:
        """Take Hessians from ``source`` (just made from the model): collected ``now``, else
        when first needed, with keys from the digests the bank kept for it (``now=False`` only
        after :meth:`known_digests` took them)."""
        self.source = source
        if now:
            self._collect(check=False)

    def known_digests(self, source: HessianSource) -> bool:
        """Take the digests of ``source``'s Hessians from the bank, if it kept them all."""
        known = self.bank.hessian_digests(source.digest) if source.digest else None
        if known is None or not set(source.layers) <= set(known):
            return False
        self._hessian_digests = {name: known[name] for name in source.layers}
        return True

    def __getstate__(self) -> dict[str, Any]:
        if not (self.complete and not self.keep_hessians):
            self._collect()  # a worker may compute entries: it needs the Hessians
        state = self.__dict__.copy()
        state["source"] = None  # holds the model
        del state["_collecting"]
        if self.complete and not self.keep_hessians:
            for name in self.hessians:
                self._hessian_digest(name)  # workers still need the keys
            state["_hessian_digests"] = dict(self._hessian_digests)
            state["hessians"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._collecting = threading.Lock()

    def release(self) -> int:
        """Free what only building and searching need: the bank's in-memory entries that are
        on disk (:meth:`VariantBank.release`) and, once :meth:`QuantizationSpace.build` has put
        every entry in the bank (and no earlier stage reshapes layers), the calibration
        Hessians, their digests kept for the keys. An entry needed again is read from disk; a
        Hessian needed again (an entry removed from the directory since) is collected again
        from the source. Returns the bytes freed."""
        freed = self.bank.release()
        if self.complete and not self.keep_hessians and self.hessians:
            for name in list(self.hessians):
                self._hessian_digest(name)  # the keys still name them
            with self._collecting:
                freed += entry_nbytes(self.hessians)
                self.hessians = {}
        return freed

    def _collect(self, *, check: bool = True) -> None:
        with self._collecting:
            source = self.source
            if source is None or self.hessians:
                return
            self.hessians = source.collect(check=check)
            self._hessian_digests = {n: tensor_digest(h) for n, h in self.hessians.items()}
            if source.digest is not None:
                self.bank.keep_hessian_digests(source.digest, self._hessian_digests)

    @property
    def banked(self) -> bool:
        """Whether int levels are calibrated or optimized, so kept in the bank."""
        return self.method != "rtn"

    def info(self, fmt: str, bits: int, granularity: str, group_size: int | None) -> QuantInfo:
        """The level: float formats always round to nearest, symmetrically."""
        is_int = fmt == "int"
        return QuantInfo(
            bits=bits,
            fmt=fmt,
            granularity=granularity,
            group_size=group_size,
            method=self.method if is_int else "rtn",
            symmetric=self.symmetric if is_int else True,
        )

    def uses_bank(self, info: QuantInfo) -> bool:
        return info.method != "rtn"

    def options(self) -> dict[str, Any]:
        return {"damp": self.damp, "act_order": self.act_order, "device": self.device}

    def hessian(self, name: str) -> torch.Tensor | None:
        """``name``'s calibration Hessian (GPTQ), collected from the source if not yet."""
        if self.method != "gptq":
            return None
        self._collect()
        return self.hessians.get(name)

    def key(
        self,
        name: str,
        weight_digest: str,
        info: QuantInfo,
        masked: bool,
        inputs: torch.Tensor | None = None,
    ) -> str:
        """The bank key of ``name``'s weight (by its digest) at ``info``; ``inputs``: the input
        indices the layer keeps after channel pruning (its Hessian's rows and columns)."""
        parts: dict[str, Any] = {
            "weight": weight_digest,
            "level": [info.fmt, info.bits, info.granularity, info.group_size],
            "method": info.method,
            "symmetric": info.symmetric,
            "masked": masked,
        }
        if info.method == "gptq":
            parts.update(hessian=self._hessian_digest(name), **self.options())
            del parts["device"]  # where it ran does not change the result's meaning
            if inputs is not None:
                parts["inputs"] = tensor_digest(inputs)
        return entry_key(**parts)

    def quantize(self, name: str, module: nn.Module, weight: torch.Tensor, info: QuantInfo) -> Any:
        """``weight`` at level ``info``: computed here (RTN), or from the bank."""
        if not self.uses_bank(info):
            return quantize_weight(weight, info, mask=_mask(module, weight))
        return _weight_of(self._entry(name, module, weight, info), weight)

    def _entry(self, name: str, module: nn.Module, weight: torch.Tensor, info: QuantInfo) -> Any:
        mask = _mask(module, weight)
        masked = mask is not None
        inputs = getattr(module, KEPT_INPUTS_ATTR, None) if info.method == "gptq" else None
        key = self.key(name, tensor_digest(weight), info, masked, inputs)
        return self._entry_by_key(name, weight, info, key, mask, inputs)

    def quantize_by_key(
        self,
        name: str,
        weight: torch.Tensor,
        info: QuantInfo,
        key: str,
        mask: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The bank's entry ``key`` (:meth:`key` of ``weight``), computed if missing; ``inputs``
        as in :meth:`key` (the Hessian is sliced to them)."""
        return _weight_of(self._entry_by_key(name, weight, info, key, mask, inputs), weight)

    def _entry_by_key(
        self,
        name: str,
        weight: torch.Tensor,
        info: QuantInfo,
        key: str,
        mask: torch.Tensor | None,
        inputs: torch.Tensor | None,
    ) -> Any:
        def compute() -> dict[str, torch.Tensor]:
            hessian = self.hessian(name)
            if hessian is not None and inputs is not None:
                kept = _unfolded(inputs, weight)
                hessian = hessian[kept][:, kept]
            if info.method == "gptq" and hessian is None:
                raise RuntimeError(
                    f"The variant bank has no entry for {describe(name, info)} and this copy "
                    "of the space has no calibration Hessians to compute it (a space pickled "
                    "after build() leaves them behind): apply Configs to the model the space "
                    "was built from, or ship the space before build()."
                )
            return _build_layer(([weight], hessian, [info], self.options(), mask))[0][0]

        return self.bank.get(
            key, compute, describe=describe(name, info), group_size=info.group_size
        )

    def grid(
        self, name: str, module: nn.Module, weight: torch.Tensor, info: QuantInfo
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The int grid ``(scale, zero)`` of ``weight`` (the layer's float weight, before
        quantization) at level ``info``, each ``[rows, n_groups]``, such that the quantized
        weight is exactly ``(codes - zero) * scale`` with ``codes`` in the level's code range
        (``[-2^(b-1), 2^(b-1) - 1]`` symmetric, ``[0, 2^b - 1]`` asymmetric); ``None`` where
        the level has no such grid (float formats, HQQ's fractional zero-points). Calibrated
        levels read it from the bank entry (computing the entry if missing)."""
        if info.fmt != "int" or info.method == "hqq":
            return None
        if self.uses_bank(info):
            entry = self._entry(name, module, weight, info)
            if not isinstance(entry, dict) or "scale" not in entry:
                return None
            return entry["scale"], entry["zero"]
        rows, size = _blocks(weight, info)
        dtype = torch.promote_types(weight.dtype, torch.float32)
        flat = weight.detach().reshape(rows, -1).to(dtype)
        return _static_scales(flat, _Grid(info.bits, info.symmetric), size)

    def _hessian_digest(self, name: str) -> str:
        """SHA-256 of ``name``'s Hessian (collected if not yet)."""
        if name not in self._hessian_digests:
            hessian = self.hessian(name)
            if hessian is None:
                raise RuntimeError(f"No calibration Hessian for layer {name!r}.")
            self._hessian_digests[name] = tensor_digest(hessian)
        return self._hessian_digests[name]


def _mask(module: nn.Module, weight: torch.Tensor) -> torch.Tensor | None:
    """Where a pruned layer's weights are kept (its zeros stay zero when quantized)."""
    return weight != 0 if getattr(module, PRUNE_ATTR, None) is not None else None


def _weight_of(entry: Any, like: torch.Tensor) -> torch.Tensor:
    """A bank entry's quantized weight, on ``like``'s device and dtype."""
    found: torch.Tensor = entry["weight"] if isinstance(entry, dict) else entry
    return found.to(like.device, like.dtype)


def _unfolded(channels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The Hessian rows of input ``channels``: themselves for a Linear; for a convolution,
    each channel's kernel positions (the weight's ``(in, *kernel)`` layout, flattened)."""
    k = int(torch.tensor(weight.shape[2:]).prod()) if weight.dim() > 2 else 1
    return (channels[:, None] * k + torch.arange(k)).reshape(-1)


def describe(name: str, info: QuantInfo) -> str:
    """``layer@int4/group128/gptq``: an entry, for logs and bank metadata."""
    grain = f"group{info.group_size}" if info.granularity == "group" else info.granularity
    grid = "" if info.symmetric else "/asym"
    return f"{name}@{info.fmt}{info.bits}/{grain}/{info.method}{grid}"


def quantize_weight(
    weight: torch.Tensor,
    info: QuantInfo,
    *,
    hessian: torch.Tensor | None = None,
    damp: float = 0.01,
    act_order: bool = False,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``weight`` quantized-dequantized at level ``info`` by its method (same shape and dtype).

    ``mask``: weights to keep; the others come out exactly 0 (a pruned layer stays pruned).
    """
    if info.fmt != "int" or (info.method == "rtn" and info.symmetric):
        out = _fake_quantize(weight, info)
    elif info.method == "rtn":
        rows = 1 if info.granularity == "tensor" else weight.shape[0]
        flat = weight.detach().reshape(rows, -1)
        out = rtn_quantize(flat, bits=info.bits, group_size=info.group_size, symmetric=False)
        out = out.reshape(weight.shape)
    elif info.method == "gptq":
        assert hessian is not None
        out = gptq_quantize(
            weight,
            hessian,
            bits=info.bits,
            group_size=info.group_size,
            symmetric=info.symmetric,
            damp=damp,
            act_order=act_order,
            mask=mask,
        )
    else:
        out = _hqq(weight, info)
    return out if mask is None else out * mask.to(out.dtype)


def _hqq(weight: torch.Tensor, info: QuantInfo) -> torch.Tensor:
    return _hqq_grid(weight, info)[0]


def _hqq_grid(
    weight: torch.Tensor, info: QuantInfo
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HQQ's ``(weight, scale, zero)``: the weight is ``(codes - zero) * scale`` with codes in
    ``[0, 2^b - 1]`` and fractional zero-points; scale and zero ``[rows, n_groups]``."""
    from hqq.core.quantize import Quantizer as HQQ

    w = weight.detach().reshape(weight.shape[0], -1).to(torch.float32)
    q, meta = HQQ.quantize(
        w,
        nbits=info.bits,
        group_size=info.group_size or w.shape[1],
        optimize=True,
        round_zero=False,
        axis=1,
        bitpack=False,
        compute_dtype=torch.float32,
        device=str(w.device),
    )
    out: torch.Tensor = HQQ.dequantize(q, meta)
    rows = w.shape[0]
    scale, zero = (meta[k].reshape(rows, -1) for k in ("scale", "zero"))
    return out.reshape(weight.shape).to(weight.dtype), scale, zero


def _build_layer(item: tuple[Any, ...]) -> list[list[dict[str, torch.Tensor]]]:
    """Layers' levels, a picklable unit of work for ``build``: ``(weights, hessian, infos,
    options[, mask])`` -> per weight, its bank entry per info, on the CPU: ``weight`` (the
    quantized weight) and, for GPTQ and HQQ, its grid (``scale``, ``zero``: the weight is
    ``(codes - zero) * scale``, see :meth:`Quantizer.grid`; the bank stores the codes packed).
    The weights share their inputs (one Hessian): GPTQ sweeps them and their levels as one
    stack."""
    weights, hessian, infos, options = item[:4]
    mask = item[4] if len(item) > 4 else None
    device = options.get("device") or weights[0].device
    ws = [w.to(device) for w in weights]
    m = None if mask is None else mask.to(device)
    out: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    gptq = [i for i, info in enumerate(infos) if info.method == "gptq" and info.fmt == "int"]
    if gptq:
        levels = [(infos[i].bits, infos[i].group_size, infos[i].symmetric) for i in gptq]
        found = iter(
            gptq_grids(
                ws, hessian, levels, damp=options["damp"], act_order=options["act_order"], mask=m
            )
        )
        for i in gptq:
            for k in range(len(ws)):
                q, scale, zero = next(found)
                out[k, i] = {"weight": q, "scale": scale, "zero": zero}
    for i, info in enumerate(infos):
        for k, w in enumerate(ws):
            if (k, i) in out:
                continue
            if info.method == "hqq" and info.fmt == "int":  # its grid too: the bank packs it
                q, scale, zero = _hqq_grid(w, info)
                q = q if m is None else q * m.to(q.dtype)
                out[k, i] = {"weight": q, "scale": scale, "zero": zero}
            else:
                out[k, i] = {"weight": quantize_weight(w, info, mask=m)}
    return [
        [{n: t.cpu() for n, t in out[k, i].items()} for i in range(len(infos))]
        for k in range(len(ws))
    ]


# Round to nearest ---------------------------------------------------------------------------
def _blocks(weight: torch.Tensor, setting: QuantInfo) -> tuple[int, int]:
    """(rows, elements per scale along a row) of ``weight`` seen as [out, in * kernel]."""
    if setting.granularity == "tensor":
        return 1, weight.numel()
    return weight.shape[0], setting.group_size or weight[0].numel()


def _fake_quantize(weight: torch.Tensor, setting: QuantInfo) -> torch.Tensor:
    # Rows are split into blocks of ``size``, one scale each; a last partial block (say, after
    # channel pruning narrowed the input) gets a scale of its own.
    rows, size = _blocks(weight, setting)
    w = weight.detach().reshape(rows, -1).to(torch.promote_types(weight.dtype, torch.float32))
    full = w.shape[1] - w.shape[1] % size
    parts = [_quantize_rows(w[:, :full].reshape(-1, size), setting).reshape(rows, -1)]
    if full < w.shape[1]:
        parts.append(_quantize_rows(w[:, full:], setting))
    return torch.cat(parts, dim=1).reshape(weight.shape).to(weight.dtype)


def _quantize_rows(x: torch.Tensor, setting: QuantInfo) -> torch.Tensor:
    """Each row of ``x`` (one scale each) quantized and dequantized."""
    return _int_rows(x, setting.bits) if setting.fmt == "int" else _float_rows(x, setting.fmt)


def _int_rows(x: torch.Tensor, bits: int) -> torch.Tensor:
    # Symmetric (zero-point 0: pruned zeros stay zero) on the full range [-2^(b-1), 2^(b-1)-1],
    # so all 2^b codes are usable (4 levels at 2 bits). The negative end is one code longer; the
    # scale's sign (free: the float16 sign bit) points it at the side holding max|x|, which maps
    # exactly to -2^(b-1) (|scale| = max|x| / 2^(b-1)); the other side clips at 2^(b-1)-1. On
    # Gaussian weights this beats the restricted range +-(2^(b-1)-1) (3 levels at 2 bits) and
    # GPTQ's symmetric grid at every width from 2 to 8 bits.
    half = 2 ** (bits - 1)
    pos = x.amax(dim=1, keepdim=True)
    neg = -x.amin(dim=1, keepdim=True)
    sign = 1.0 - 2.0 * (neg < pos).to(x.dtype)
    scale = _nonzero(torch.maximum(pos, neg) / half) * sign
    return (x / scale).round().clamp(-half, half - 1) * scale


def _float_rows(x: torch.Tensor, fmt: str) -> torch.Tensor:
    fmax = _FLOAT_MAX[fmt]
    scale = _nonzero(x.abs().amax(dim=1, keepdim=True) / fmax)
    y = (x / scale).clamp(-fmax, fmax)
    y = _round_e2m1(y) if fmt == "fp4_e2m1" else y.to(_FP8_DTYPES[fmt]).to(x.dtype)
    return y * scale


def _round_e2m1(y: torch.Tensor) -> torch.Tensor:
    # Round to nearest FP4 E2M1 value (0, 0.5, 1, 1.5, 2, 3, 4, 6), ties to even mantissa, as a
    # hardware cast does: the spacing is 0.5 below 2 (subnormals included), 1 in [2, 4) and 2 in
    # [4, 6]; round-half-even of y / spacing picks the even mantissa on ties.
    mag = y.abs()
    _, exponent = torch.frexp(mag)  # mag = m * 2^exponent, m in [0.5, 1)
    spacing = torch.exp2((exponent - 2).to(y.dtype)).clamp_min(0.5)
    return torch.sign(y) * ((mag / spacing).round() * spacing).clamp_max(6.0)


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale != 0, scale, torch.ones_like(scale))  # all-zero rows stay zero


def _float_weight(module: nn.Module) -> torch.Tensor | None:
    weight = getattr(module, "weight", None)
    ok = isinstance(weight, torch.Tensor) and weight.is_floating_point() and weight.dim() > 0
    return weight if ok else None


# Validation ---------------------------------------------------------------------------------
def _check_method(
    method: Any,
    calibration: Any,
    symmetric: Any,
    options: Mapping[str, tuple[Any, ...]],
    damp: Any,
    act_order: Any,
) -> bool:
    """``symmetric``, resolved; a clear error for a method its options cannot use."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {list(METHODS)}.")
    if symmetric is None:
        symmetric = method != "hqq"
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be True, False or None (default), got {symmetric!r}.")
    if method == "hqq" and symmetric:
        raise ValueError("method='hqq' has an asymmetric grid only; leave symmetric unset.")
    if method != "rtn":
        if "int" not in options["format"]:
            raise ValueError(
                f"method={method!r} computes int levels, and formats {list(options['format'])} "
                "has no 'int'; float formats round to nearest: use method='rtn'."
            )
        if "tensor" in options["granularity"]:
            raise ValueError(
                f"method={method!r} has no granularity 'tensor' (one scale per weight); use "
                "granularity='channel' or 'group'."
            )
    if method == "gptq" and calibration is None:
        raise ValueError(
            "method='gptq' needs calibration=: inputs the model is called on (token ids "
            "[n_seqs, seq_len], images, or an iterable of batches), many times more tokens "
            "than each layer has inputs."
        )
    if method != "gptq" and calibration is not None:
        raise ValueError(
            f"calibration is used by method='gptq' only; method={method!r} is data-free. "
            "Drop calibration=, or set method='gptq'."
        )
    if isinstance(damp, bool) or not isinstance(damp, numbers.Real) or not 0 <= float(damp) < 1e30:
        raise ValueError(f"damp must be a finite number >= 0, got {damp!r}.")
    if not isinstance(act_order, bool):
        raise TypeError(f"act_order must be True or False, got {act_order!r}.")
    if method == "hqq":
        try:
            import hqq.core.quantize  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "method='hqq' needs the hqq package: pip install 'tradeoff[torch]' (or hqq)."
            ) from error
    return symmetric


def _check_layers(
    method: str, layers: Mapping[str, nn.Module], options: Mapping[str, tuple[Any, ...]]
) -> None:
    for name, module in layers.items():
        if method == "gptq" and not (
            isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)
        ):
            raise ValueError(
                f"method='gptq' quantizes nn.Linear and nn.Conv2d (groups=1) layers; layer "
                f"{name!r} is a {type(module).__name__}: exclude it, or use method='rtn'."
            )
        inputs = _float_weight(module)[0].numel()  # type: ignore[index]
        if method == "hqq" and "group" in options["granularity"]:
            for size in (s for s in options["group_size"] if inputs % s):
                raise ValueError(
                    f"method='hqq' needs group_size to divide each layer's inputs: layer "
                    f"{name!r} has {inputs}, group_size {size} does not divide it. Pick a "
                    "divisor, exclude the layer, or use method='rtn' or 'gptq'."
                )


HESSIANS_VERSION = "1"
"""Bumped whenever :func:`collect_hessians` would give other Hessians for the same model and
calibration: part of every :attr:`HessianSource.digest`, so the Hessian digests the bank kept
for an older version are not used."""


class HessianSource:
    """Where a space's calibration Hessians come from: the dense model and the calibration
    batches, named by a digest of both (the model's state and the batches' tensors), under
    which the bank keeps the digests of the Hessians they give (the entries' keys). Collecting
    them is one pass of the model over the batches (minutes for a language model on CPU): with
    every entry already in the bank it is never done; otherwise it is done once, by
    :meth:`collect`.

    Args:
        model: The dense model the space is built from.
        layers: The layers whose inputs are collected.
        calibration: As :meth:`QuantizationSpace.for_model`'s (a tensor is split into batches
            of 8; an iterable is read once, here, and its batches kept).
        device: Where collection runs.

    Raises:
        TypeError, ValueError: ``calibration`` is neither a non-empty tensor nor an iterable.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Iterable[str],
        calibration: Any,
        device: torch.device | str | None,
    ) -> None:
        self.model, self.layers, self.device = model, list(layers), device
        self.batches = _calibration_batches(calibration)
        data = _structure_digest(self.batches)  # a tensor: as the batches it is split into
        self.model_digest = model_digest(model)
        self.digest = None
        """Names the Hessians of every layer of this model on these batches; ``None`` when a
        batch holds something other than tensors, numbers and strings (entries are then keyed
        by the Hessians' bytes, which are collected up front)."""
        if data is not None:
            text = json.dumps([HESSIANS_VERSION, self.model_digest, data])
            self.digest = hashlib.sha256(text.encode()).hexdigest()

    def collect(self, *, check: bool = True) -> dict[str, torch.Tensor]:
        """Each layer's Hessian, from one pass of the model over the batches; ``check=False``
        skips comparing the model with its digest (right after the source was made).

        Raises:
            RuntimeError: the model's weights changed since the source was made (a Config
                applied in place): the Hessians would not be the dense model's.
            ValueError: the model failed on a calibration batch.
        """
        from tradeoff.spaces._calibration import collect_hessians

        if check and model_digest(self.model) != self.model_digest:
            raise RuntimeError(
                "The model's weights changed since its QuantizationSpace was built (a Config "
                "applied with inplace=True?), so its calibration Hessians cannot be collected "
                "from it now. Build the space again from the dense model, or call "
                "space.build(model) before applying Configs in place."
            )
        try:
            return collect_hessians(
                self.model, self.batches, layers=self.layers, device=self.device
            )
        except (RuntimeError, IndexError, TypeError, ValueError) as error:
            if str(error).startswith("collect_hessians"):
                raise
            raise ValueError(
                "calibration: the model failed on a calibration batch "
                f"({type(error).__name__}: {error}). Give what model(batch) accepts: token ids "
                "(int64) [n_seqs, seq_len] for a language model, or inputs of the training "
                "data's shape and dtype."
            ) from error


def model_digest(model: nn.Module) -> str:
    """SHA-256 of a model's state: every parameter's and buffer's name and bytes."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if isinstance(tensor, torch.Tensor):
            h.update(f"{name}:{tensor_digest(tensor)};".encode())
    return h.hexdigest()


def _calibration_batches(calibration: Any) -> list[Any]:
    if isinstance(calibration, torch.Tensor):
        if calibration.dim() == 0 or len(calibration) == 0:
            raise ValueError(
                f"calibration must hold at least one input along its first dimension, got "
                f"shape {list(calibration.shape)}."
            )
        return list(torch.split(calibration, 8))
    if isinstance(calibration, (str, bytes)) or not isinstance(calibration, Iterable):
        raise TypeError(
            "calibration must be a tensor of inputs (token ids [n_seqs, seq_len], images...) "
            f"or an iterable of batches, got {type(calibration).__name__}."
        )
    return list(calibration)


def _structure_digest(value: Any) -> str | None:
    """SHA-256 of nested tensors, sequences, dicts, numbers and strings; ``None`` if anything
    else is inside."""
    h = hashlib.sha256()

    def visit(v: Any) -> bool:
        if isinstance(v, torch.Tensor):
            h.update(f"T{tensor_digest(v)};".encode())
        elif isinstance(v, Mapping):
            h.update(f"D{len(v)};".encode())
            return all(isinstance(k, str) and visit(k) and visit(v[k]) for k in sorted(v))
        elif isinstance(v, (tuple, list)):
            h.update(f"{type(v).__name__}{len(v)};".encode())
            return all(visit(x) for x in v)
        elif v is None or isinstance(v, (bool, int, float, str)):
            h.update(f"{type(v).__name__}:{v!r};".encode())
        else:
            return False
        return True

    return h.hexdigest() if visit(value) else None
