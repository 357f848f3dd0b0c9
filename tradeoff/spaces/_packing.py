"""The packed form of a variant bank entry: int codes at their bit width, beside their grid.

A quantized weight on an int grid is ``(codes - zero) * scale`` (``scale``, ``zero``:
``[rows, n_groups]``, one column per ``group_size`` inputs of a row; a last partial group has
its own). :func:`pack_entry` stores the codes, offset to start at 0, in
``width = ceil(log2(max - min + 1))`` bits each, and :func:`unpack_entry` computes
``(codes - zero) * scale`` with the same float operations the quantizer used (GPTQ's and RTN's
``sub(zero).mul(scale)``, HQQ's ``(W_q - zero) * scale``), so the weight comes back bit for
bit. :func:`pack_entry` checks that on the spot: an entry whose weight does not come back
exactly is stored as it is (``"raw"``). Exact zeros off the grid (pruned weights, kept at
``+0`` or ``-0`` by a mask) are recorded as a bit mask and their signs.

Bit layout: the codes' bits are split into planes of 8, 4, 2 and 1 bits (5 bits: a 4-bit and
a 1-bit plane), each plane packed ``8 / bits`` codes to a byte, code ``i`` of a byte in bits
``[i * bits, (i + 1) * bits)``; planes follow one another in one ``uint8`` tensor.
"""

from __future__ import annotations

import math
from typing import Any

import torch

CODEC = "int"
"""The codec of packed entries (``"raw"``: stored as computed)."""

_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def pack_bits(values: torch.Tensor, width: int) -> torch.Tensor:
    """Non-negative ints below ``2**width`` (any shape, read flat) as ``uint8`` bytes."""
    v = values.reshape(-1).to(torch.int32)
    planes = []
    for shift, bits in _planes(width):
        part = ((v >> shift) & (2**bits - 1)).to(torch.uint8)
        per = 8 // bits
        part = torch.nn.functional.pad(part, (0, -len(part) % per)).view(-1, per)
        byte = part[:, 0].clone()
        for k in range(1, per):
            byte |= part[:, k] << (bits * k)
        planes.append(byte)
    return torch.cat(planes)


def unpack_bits(data: torch.Tensor, width: int, n: int) -> torch.Tensor:
    """The first ``n`` values :func:`pack_bits` packed at ``width`` (``uint8`` up to 8 bits,
    else ``int32``)."""
    out = torch.zeros(n, dtype=torch.uint8 if width <= 8 else torch.int32)
    start = 0
    for shift, bits in _planes(width):
        per = 8 // bits
        stop = start + math.ceil(n / per)
        byte = data[start:stop]
        part = torch.stack([(byte >> (bits * k)) & (2**bits - 1) for k in range(per)], 1)
        out |= part.reshape(-1)[:n].to(out.dtype) << shift
        start = stop
    return out


def _planes(width: int) -> list[tuple[int, int]]:
    """(shift, bits) of each plane: 8-, 4-, 2- and 1-bit planes, widest first."""
    planes, shift = [], 0
    for bits in (8, 4, 2, 1):
        while width - shift >= bits:
            planes.append((shift, bits))
            shift += bits
    return planes


def pack_entry(
    entry: dict[str, torch.Tensor], group_size: int | None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors to store, codec) of an entry (on the CPU): ``weight`` as packed codes when it
    lies exactly on the grid ``scale``, ``zero`` of ``group_size`` inputs per scale (``None``:
    one per row), else the entry as it is (codec ``{"codec": "raw"}``)."""
    try:
        packed = _pack(entry, group_size)
    except _NotOnGrid:
        packed = None
    return packed if packed is not None else (dict(entry), {"codec": "raw"})


def unpack_entry(stored: dict[str, torch.Tensor], codec: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The entry :func:`pack_entry` stored, bit for bit."""
    if codec["codec"] == "raw":
        return dict(stored)
    scale = stored["scale"]
    zero = stored["zero"].to(getattr(torch, codec["zero_dtype"]))
    rows, n = codec["rows"], math.prod(codec["shape"])
    codes = unpack_bits(stored["codes"], codec["width"], n).reshape(rows, -1)
    out = _dequantize(codes, codec["offset"], scale, zero, codec["group_size"])
    out = out.to(getattr(torch, codec["dtype"]))
    if codec["n_forced"]:
        forced = unpack_bits(stored["forced"], 1, n).bool()
        negative = unpack_bits(stored["negative"], 1, codec["n_forced"]).bool()
        out.view(-1)[forced.reshape(-1)] = torch.where(negative, -0.0, 0.0).to(out.dtype)
    extra = {k: v for k, v in stored.items() if k not in _PACKED}
    return {"weight": out.reshape(codec["shape"]), "scale": scale, "zero": zero, **extra}


_PACKED = ("codes", "scale", "zero", "forced", "negative")


class _NotOnGrid(Exception):
    pass


def _pack(
    entry: dict[str, torch.Tensor], group_size: int | None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    weight, scale, zero = entry.get("weight"), entry.get("scale"), entry.get("zero")
    if weight is None or scale is None or zero is None or scale.dim() != 2:
        return None
    if scale.shape != zero.shape or not scale.is_floating_point() or weight.numel() == 0:
        return None
    rows = scale.shape[0]
    if weight.numel() % rows:
        return None
    w = weight.reshape(rows, -1)
    size = group_size or w.shape[1]
    if math.ceil(w.shape[1] / size) != scale.shape[1]:
        return None
    codes = _codes(w.to(scale.dtype), scale, zero, size)
    codes, forced = _match(codes, w, scale, zero, size)
    care = torch.ones_like(w, dtype=torch.bool) if forced is None else ~forced
    if torch.finfo(weight.dtype).bits < 32 and bool(care.any()):
        codes = _tighten(codes, care, w, scale, zero, size)
    if forced is not None:  # any code will do: the lowest of the others
        codes = torch.where(forced, int(codes[care].min()) if bool(care.any()) else 0, codes)
    offset = int(codes.min())
    width = max(1, math.ceil(math.log2(int(codes.max()) - offset + 1)))
    if width > 16:
        return None
    stored = {"codes": pack_bits(codes - offset, width), "scale": scale}
    zero_stored, zero_dtype = _compact(zero), str(zero.dtype).removeprefix("torch.")
    stored["zero"] = zero_stored
    if forced is not None:
        stored["forced"] = pack_bits(forced, 1)
        stored["negative"] = pack_bits(torch.signbit(w[forced]), 1)
    stored.update({k: v for k, v in entry.items() if k not in ("weight", "scale", "zero")})
    codec = {
        "codec": CODEC,
        "shape": list(weight.shape),
        "dtype": str(weight.dtype).removeprefix("torch."),
        "rows": rows,
        "group_size": size,
        "width": width,
        "offset": offset,
        "zero_dtype": zero_dtype,
        "n_forced": 0 if forced is None else int(forced.sum()),
    }
    if not _same_bits(unpack_entry(stored, codec)["weight"], weight):
        raise _NotOnGrid
    return stored, codec


def _codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, size: int) -> torch.Tensor:
    """The nearest code of each weight, ``round(w / scale + zero)``, as ``int32``."""
    rows, cols = w.shape
    out = torch.empty(rows, cols, dtype=scale.dtype)
    full = cols - cols % size
    if full:
        n = full // size
        view = w[:, :full].reshape(rows, n, size)
        out[:, :full] = (view / scale[:, :n, None] + zero[:, :n, None]).reshape(rows, full)
    if full < cols:
        out[:, full:] = w[:, full:] / scale[:, -1:] + zero[:, -1:]
    out.round_()
    if not float(out.abs().max()) < 2**20:  # also NaN
        raise _NotOnGrid
    return out.to(torch.int32)


def _dequantize(
    codes: torch.Tensor, offset: int, scale: torch.Tensor, zero: torch.Tensor, size: int
) -> torch.Tensor:
    """``(codes + offset - zero) * scale`` ``[rows, inputs]`` in ``scale``'s dtype, group by
    group as broadcasts (a last partial group on its own)."""
    rows, cols = codes.shape
    out = torch.empty(rows, cols, dtype=scale.dtype)
    full = cols - cols % size
    c = codes.to(scale.dtype) + offset
    if full:
        n = full // size
        view = c[:, :full].reshape(rows, n, size)
        z, s = zero[:, :n, None], scale[:, :n, None]
        out[:, :full] = view.sub(z).mul(s).reshape(rows, full)
    if full < cols:
        out[:, full:] = c[:, full:].sub(zero[:, -1:]).mul(scale[:, -1:])
    return out


def _match(
    codes: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``codes`` with the neighbouring code where that gives ``w`` exactly (a low-precision
    weight's rounding can hide the nearest one), and where ``w`` holds exact zeros the grid
    does not give (``None``: nowhere). Raises :class:`_NotOnGrid` for any other mismatch."""
    out = _dequantize(codes, 0, scale, zero, size).to(w.dtype)
    bad = _bits(out) != _bits(w)
    if not bool(bad.any()):
        return codes, None
    for step in (1, -1):
        trial = codes + step * bad
        again = _dequantize(trial, 0, scale, zero, size).to(w.dtype)
        fixed = bad & (_bits(again) == _bits(w))
        codes = torch.where(fixed, trial, codes)
        bad &= ~fixed
    forced = bad & (w == 0)
    if bool((bad & ~forced).any()):
        raise _NotOnGrid
    return codes, forced if bool(forced.any()) else None


def _tighten(
    codes: torch.Tensor,
    care: torch.Tensor,
    w: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """``codes`` with the highest (lowest) of those ``care`` marks moved one step in where that
    still gives ``w`` exactly: a bfloat16 weight at the end of its grid may round as well from
    one code past it, which would widen the codes by a bit."""
    for _ in range(2):
        for end, step in ((int(codes[care].max()), -1), (int(codes[care].min()), 1)):
            at = (codes == end) & care
            trial = codes + step * at
            again = _dequantize(trial, 0, scale, zero, size).to(w.dtype)
            if bool((_bits(again) == _bits(w))[at].all()):
                codes = trial
    return codes


def _compact(zero: torch.Tensor) -> torch.Tensor:
    """``zero`` as ``uint8`` or ``int16`` where that holds it exactly, else as it is."""
    for dtype, lo, hi in ((torch.uint8, 0, 255), (torch.int16, -(2**15), 2**15 - 1)):
        small = zero.to(dtype) if bool(((zero >= lo) & (zero <= hi)).all()) else None
        if small is not None and _same_bits(small.to(zero.dtype), zero):
            return small
    return zero


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bits(a), _bits(b))


def _bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bit patterns as ints (``-0.0`` differs from ``0.0``; NaNs compare)."""
    return t.contiguous().view(_INT_VIEW[t.element_size()])
