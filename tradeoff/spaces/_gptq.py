"""GPTQ (Frantar et al., 2022, arXiv:2210.17323): calibrated weight quantization of one layer.

Each column of ``W`` ``[out, in]`` is rounded in turn and its rounding error is spread over
the columns not yet rounded, weighted by the inverse of the layer's input Hessian
``H = X^T X / n`` (``X``: ``[n, in]`` calibration inputs), so that ``||X W^T - X Q^T||`` stays
small; updates are batched per block of columns ("lazy batch updates") and the inverse comes
from one Cholesky factorization, as in the paper's reference code.

The integer grids are the ones RTN uses, so GPTQ and RTN levels are comparable:

* ``symmetric=True``: the grid of ``QuantizationSpace`` (``_quant._int_rows``): zero-point 0,
  codes ``[-2^(b-1), 2^(b-1) - 1]``, the scale's sign pointing the longer negative end at the
  side holding ``max|w|``. With a diagonal Hessian GPTQ is exactly that RTN.
* ``symmetric=False``: GPTQ's asymmetric min-max grid (codes ``[0, 2^b - 1]``, an integer
  zero-point, the range widened to hold 0). ``_quant`` has no asymmetric RTN; :func:`rtn_quantize`
  gives it (GPTQ with a diagonal Hessian).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

MAX_BITS = 16


def gptq_quantize(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    *,
    bits: int,
    group_size: int | None = None,
    symmetric: bool = True,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``weight`` fake-quantized by GPTQ: same shape, dtype and device, values on the int grid.

    Args:
        weight: ``[out, in]`` (``nn.Linear``) or ``[out, in, kh, kw]`` (``nn.Conv2d``, seen as
            ``[out, in * kh * kw]`` in ``unfold`` order), floating point.
        hessian: ``[in, in]`` (``in * kh * kw`` for a conv) input second moment ``X^T X / n``,
            as :func:`~tradeoff.spaces._calibration.collect_hessians` returns; any positive
            scale. Moved to ``weight``'s device; factorized in float64.
        bits: Integer width in ``[2, 16]``.
        group_size: Inputs per scale along a row; ``None``: one scale per output channel. A
            last partial group gets a scale of its own (as RTN's ``"group"`` granularity).
        symmetric: The RTN grid of ``QuantizationSpace`` (True) or GPTQ's asymmetric grid.
        damp: Added to the Hessian's diagonal, as a fraction of its mean (``>= 0``).
        block_size: Columns per lazy batch update (speed only: results are the same).
        act_order: Quantize columns in order of decreasing Hessian diagonal. Group scales are
            then fixed up front from the unquantized weights of each contiguous group of
            columns (GPTQ's ``static_groups``), so groups stay contiguous in the stored layout.
        mask: Boolean, ``weight``'s shape: weights to keep. Masked-out weights (pruned ones)
            are quantized to exactly 0 and their error is spread over the later columns like
            any rounding error, as SparseGPT does; pruning stays pruned.

    Raises:
        TypeError: ``weight`` or ``hessian`` is not a floating tensor, or a bad argument type.
        ValueError: a bad shape or value, or a Hessian not positive definite after damping.
    """
    (q,) = gptq_levels(
        weight,
        hessian,
        [(bits, group_size, symmetric)],
        damp=damp,
        block_size=block_size,
        act_order=act_order,
        mask=mask,
    )
    return q


def gptq_levels(
    weight: torch.Tensor | Sequence[torch.Tensor],
    hessian: torch.Tensor,
    levels: Sequence[tuple[int, int | None, bool]],
    *,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
    mask: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """:func:`gptq_quantize` at several ``(bits, group_size, symmetric)`` levels, of one weight or
    of several weights with the same inputs (one Hessian: a block's q, k and v projections).

    The Hessian is factorized once, and all weights and levels sharing a group size and grid
    run as one stack of rows through one column sweep (GPTQ's rows are independent given the
    Hessian), which on a CPU is most of the speed: the sweep is a Python loop over columns.

    Returns:
        The quantized weights, level by level, and within a level weight by weight.
    """
    found = gptq_grids(
        weight, hessian, levels, damp=damp, block_size=block_size, act_order=act_order, mask=mask
    )
    return [q for q, _, _ in found]


def gptq_grids(
    weight: torch.Tensor | Sequence[torch.Tensor],
    hessian: torch.Tensor,
    levels: Sequence[tuple[int, int | None, bool]],
    *,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
    mask: torch.Tensor | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """:func:`gptq_levels` with each weight's grid: ``(weight, scale, zero)``, where ``scale``
    and ``zero`` are ``[out, n_groups]`` (one column per group of inputs, in the weight's own
    column order, act-order or not) and ``weight`` is exactly ``(codes - zero) * scale``."""
    weights = [weight] if isinstance(weight, torch.Tensor) else list(weight)
    if not weights or not levels:
        raise ValueError("gptq_levels: give at least one weight and one level.")
    for w in weights:
        for bits, group_size, _ in levels:
            _check(w, hessian, bits, group_size, damp, block_size)
    if mask is not None and (mask.dtype != torch.bool or mask.shape != weights[0].shape):
        raise ValueError(
            f"gptq_quantize: mask must be a bool tensor of the weight's shape "
            f"{list(weights[0].shape)}, got {mask.dtype} {list(mask.shape)}."
        )
    if mask is not None and len(weights) > 1:
        raise ValueError("gptq_levels: a mask goes with one weight, not a stack.")
    dtype = torch.promote_types(weights[0].dtype, torch.float32)
    w = torch.cat([x.detach().reshape(x.shape[0], -1).to(dtype) for x in weights])
    h = hessian.detach().to(w.device, torch.float64, copy=True)
    dead = torch.diagonal(h) == 0  # inputs always zero: any weight there gives the same output
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    perm = torch.argsort(torch.diagonal(h), descending=True, stable=True) if act_order else None
    keep = None if mask is None else mask.reshape(w.shape).to(w.device, dtype)
    if perm is not None:
        h = h[perm][:, perm]
    u = _inverse_cholesky(h, damp).to(dtype)
    results: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    sweeps: dict[tuple[int | None, bool], list[int]] = {}
    for i, (_, group_size, symmetric) in enumerate(levels):
        sweeps.setdefault((group_size, symmetric), []).append(i)
    rows = w.shape[0]
    for (group_size, symmetric), which in sweeps.items():
        grid = _Grid([levels[i][0] for i in which], symmetric, rows, w)
        stack = w.repeat(len(which), 1)
        # Per-channel scales, and group scales under act-order, are fixed before any update.
        fixed = group_size is None or perm is not None
        static = _static_scales(stack, grid, group_size) if fixed else None
        mine = None if keep is None else keep.repeat(len(which), 1)
        if perm is not None:
            stack = stack[:, perm]
            mine = None if mine is None else mine[:, perm]
        q, scale, zero = _gptq_columns(stack, u, grid, group_size, block_size, static, perm, mine)
        if perm is not None:
            q = q[:, torch.argsort(perm)]
        for k, i in enumerate(which):
            part = slice(k * rows, (k + 1) * rows)
            results[i] = q[part], scale[part], zero[part]
    out = []
    for i in range(len(levels)):
        start = 0
        for x in weights:
            q, scale, zero = (t[start : start + x.shape[0]] for t in results[i])
            out.append((q.reshape(x.shape).to(x.dtype), scale.clone(), zero.clone()))
            start += x.shape[0]
    return out


def rtn_quantize(
    weight: torch.Tensor, *, bits: int, group_size: int | None = None, symmetric: bool = True
) -> torch.Tensor:
    """``weight`` rounded to nearest on the grid :func:`gptq_quantize` uses (its baseline; the
    same as GPTQ with a diagonal Hessian). Arguments as :func:`gptq_quantize`'s."""
    _check(weight, None, bits, group_size, 0.0, 1, fn="rtn_quantize")
    w = (
        weight.detach()
        .reshape(weight.shape[0], -1)
        .to(torch.promote_types(weight.dtype, torch.float32))
    )
    grid = _Grid(bits, symmetric)
    scale, zero = _static_scales(w, grid, group_size)
    group = torch.arange(w.shape[1], device=w.device) // (group_size or w.shape[1])
    return grid.round(w, scale[:, group], zero[:, group]).reshape(weight.shape).to(weight.dtype)


# Core ---------------------------------------------------------------------------------------
class _Grid:
    """The integer grid of ``bits``: codes ``[lo, hi]``; each row's (scale, zero) from its range."""

    def __init__(
        self,
        bits: int | Sequence[int],
        symmetric: bool,
        rows: int = 1,
        like: torch.Tensor | None = None,
    ) -> None:
        self.symmetric = symmetric
        self.half: Any
        self.lo: Any
        self.hi: Any
        if isinstance(bits, int):
            self.half = 2 ** (bits - 1)
            self.lo, self.hi = (-self.half, self.half - 1) if symmetric else (0, 2**bits - 1)
            return
        # Several widths, ``rows`` rows each, stacked: per-row bounds ``[rows * len(bits), 1]``.
        assert like is not None
        b = torch.tensor(bits, dtype=like.dtype, device=like.device).repeat_interleave(rows)
        self.half = torch.exp2(b - 1)[:, None]
        if symmetric:
            self.lo, self.hi = -self.half, self.half - 1
        else:
            self.lo, self.hi = torch.zeros_like(self.half), torch.exp2(b)[:, None] - 1

    def scales(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero-point), each ``[rows, 1]``, of the rows of ``x`` (one scale each)."""
        pos = x.amax(dim=1, keepdim=True)
        neg = -x.amin(dim=1, keepdim=True)
        if self.symmetric:  # as _quant._int_rows: the larger side maps exactly to -2^(b-1)
            sign = 1.0 - 2.0 * (neg < pos).to(x.dtype)
            scale = _nonzero(torch.maximum(pos, neg) / self.half) * sign
            return scale, torch.zeros_like(scale)
        pos, neg = pos.clamp_min(0), neg.clamp_min(0)  # the range holds 0, as in GPTQ's code
        scale = _nonzero((pos + neg) / self.hi)
        return scale, (neg / scale).round()

    def round(self, x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
        """``x`` rounded to the nearest grid value, dequantized (same float ops as RTN)."""
        return ((x / scale).round() + zero).clamp(self.lo, self.hi).sub(zero).mul(scale)


def _static_scales(
    w: torch.Tensor, grid: _Grid, group_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero), each ``[out, n_groups]``, of contiguous groups of ``w``'s columns."""
    size = group_size or w.shape[1]
    parts = [grid.scales(w[:, c : c + size]) for c in range(0, w.shape[1], size)]
    return torch.cat([s for s, _ in parts], 1), torch.cat([z for _, z in parts], 1)


def _inverse_cholesky(h: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor ``U`` of ``(H + damp * mean(diag H) I)^-1``: row ``i`` of ``U``
    over ``U[i, i]`` is how column ``i``'s rounding error spreads to the later columns."""
    h.diagonal().add_(damp * float(torch.diagonal(h).mean()))
    lower, info = torch.linalg.cholesky_ex(h)
    if int(info) != 0:
        raise ValueError(
            f"gptq_quantize: the Hessian is not positive definite after damping (damp={damp}); "
            "raise damp, or check the Hessian (symmetric, from collect_hessians)."
        )
    upper: torch.Tensor = torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)
    return upper


def _gptq_columns(
    w: torch.Tensor,
    u: torch.Tensor,
    grid: _Grid,
    group_size: int | None,
    block_size: int,
    static: tuple[torch.Tensor, torch.Tensor] | None,
    perm: torch.Tensor | None,
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The quantized ``w`` ``[out, n]``, columns in processing order (``w`` is overwritten), and
    its grid: ``(scale, zero)``, each ``[out, n_groups]``, by group of original columns.

    ``static``: fixed scales per group of original columns (``perm``: processing position ->
    original column); else each group's scales come from its error-updated weights as it starts.
    ``keep``: 1 where a weight is kept, 0 where it is pruned (quantized to 0), in ``w``'s order.
    """
    # Column by column on the transpose: a column of ``w`` is then one contiguous row, and the
    # rank-1 updates below stream through memory (on ``w`` itself they stride across rows,
    # many times slower on a CPU for tall stacks).
    n = w.shape[1]
    size = group_size or n
    group_of = [c // size for c in (perm.tolist() if perm is not None else range(n))]
    wt = w.T.contiguous()  # [n, rows]
    kt = None if keep is None else keep.T.contiguous()
    qt = torch.empty_like(wt)
    lo, hi = _flat(grid.lo), _flat(grid.hi)
    scale = zero = wt[0]
    if static is not None:
        scales, zeros = static
    else:
        scales = torch.empty(w.shape[0], -(-n // size), dtype=w.dtype, device=w.device)
        zeros = torch.empty_like(scales)
    for start, stop in _blocks(n, block_size, None if static is not None else group_size):
        w1 = wt[start:stop].clone()
        err = torch.empty_like(w1)
        for i in range(stop - start):
            col = start + i
            if static is not None:
                g = group_of[col]
                scale, zero = static[0][:, g], static[1][:, g]
            elif col % size == 0:  # _blocks: the group lies inside this block or starts it
                end = min(col + size, n)
                part = w1[i : i + size] if end <= stop else wt[col:end]
                s, z = grid.scales(part.T)
                scale, zero = s[:, 0], z[:, 0]
                scales[:, col // size], zeros[:, col // size] = scale, zero
            x = w1[i]
            q = ((x / scale).round() + zero).clamp(lo, hi).sub(zero).mul(scale)
            if kt is not None:
                q *= kt[col]
            qt[col] = q
            err[i] = (x - q) / u[col, col]
            w1[i:] -= u[col, col:stop, None] * err[i]
        wt[stop:] -= u[start:stop, stop:].T @ err  # the block's errors, in one matmul
    return qt.T, scales, zeros


def _flat(bound: Any) -> Any:
    """A per-row grid bound ``[rows, 1]`` as ``[rows]``; a number as it is."""
    return bound.reshape(-1) if isinstance(bound, torch.Tensor) else bound


def _blocks(n: int, block_size: int, group_size: int | None) -> list[tuple[int, int]]:
    """Column ranges of the lazy batch updates. With ``group_size``, every group lies inside one
    block or starts one, so its weights are fully updated when its scales are found."""
    if group_size is not None and group_size < block_size:
        starts = set(range(0, n, group_size * (block_size // group_size)))
    else:
        starts = set(range(0, n, block_size)) | set(range(0, n, group_size or block_size))
    bounds = sorted(starts)
    return list(zip(bounds, [*bounds[1:], n]))


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale != 0, scale, torch.ones_like(scale))  # all-zero rows stay zero


# Validation ---------------------------------------------------------------------------------
def _check(
    weight: torch.Tensor,
    hessian: torch.Tensor | None,
    bits: object,
    group_size: object,
    damp: object,
    block_size: object,
    fn: str = "gptq_quantize",
) -> None:
    for name, value in (("weight", weight), ("hessian", hessian)):
        if value is None and name == "hessian":
            continue
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            what = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise TypeError(f"{fn}: {name} must be a floating-point tensor, got {what}.")
    if weight.dim() < 2:
        raise ValueError(
            f"{fn}: weight must be [out, in] or [out, in, kh, kw], got shape {list(weight.shape)}."
        )
    n = weight[0].numel()
    if hessian is not None and tuple(hessian.shape) != (n, n):
        raise ValueError(
            f"{fn}: hessian must be [{n}, {n}] for a weight of shape "
            f"{list(weight.shape)} ({n} inputs per output), got {list(hessian.shape)}."
        )
    for t in (weight, hessian):
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{fn}: weight and hessian must be finite (no NaN or inf).")
    _int_arg(fn, "bits", bits, 2, MAX_BITS)
    if group_size is not None:
        _int_arg(fn, "group_size", group_size, 1, None)
    _int_arg(fn, "block_size", block_size, 1, None)
    if isinstance(damp, bool) or not isinstance(damp, numbers.Real) or not 0 <= float(damp) < 1e30:
        raise ValueError(f"{fn}: damp must be a finite number >= 0, got {damp!r}.")


def _int_arg(fn: str, name: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}.")
    if not low <= int(value) <= (high if high is not None else int(value)):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{fn}: {name} must be {bound}, got {value!r}.")
