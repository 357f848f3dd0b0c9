"""GPTQ against a textbook reference, RTN on held-out inputs, its grid, and collect_hessians."""

import itertools
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tradeoff.spaces._calibration import collect_hessians, tokens_needed
from tradeoff.spaces._gptq import gptq_quantize, rtn_quantize
from tradeoff.spaces._model import QuantInfo
from tradeoff.spaces._quantizers import _fake_quantize


# A plain reference: GPTQ as the paper's equations, one column at a time --------------------
def _scales(w, bits, symmetric):
    """Per row of ``w``: (scale, zero, lo, hi) of the grid (written out, not imported)."""
    half = 2 ** (bits - 1)
    hi_, lo_ = w.max(dim=1).values, w.min(dim=1).values
    if symmetric:
        big = torch.maximum(hi_, -lo_)
        scale = torch.where(big > 0, big / half, torch.ones_like(big))
        scale = torch.where(-lo_ < hi_, -scale, scale)  # the longer negative end takes max|w|
        return scale, torch.zeros_like(scale), -half, half - 1
    hi_, lo_ = hi_.clamp_min(0), lo_.clamp_max(0)
    scale = (hi_ - lo_) / (2**bits - 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return scale, torch.round(-lo_ / scale), 0, 2**bits - 1


def _round(x, scale, zero, lo, hi):
    return (torch.clamp(torch.round(x / scale) + zero, lo, hi) - zero) * scale


def textbook_gptq(w, h, *, bits, group_size=None, symmetric=True, damp=0.01, act_order=False):
    """Unblocked GPTQ with an explicit inverse Hessian, eliminating one column at a time
    (Frantar et al. 2022, eq. 2-3): no Cholesky, no lazy batches. O(n^3) per column."""
    w, h = w.double().reshape(w.shape[0], -1).clone(), h.double().clone()
    n = w.shape[1]
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    size = group_size or n
    order = list(range(n))
    if act_order:
        order = torch.argsort(torch.diagonal(h), descending=True, stable=True).tolist()
    static = {c: _scales(w[:, c : c + size], bits, symmetric) for c in range(0, n, size)}
    h = h + damp * torch.diagonal(h).mean() * torch.eye(n, dtype=h.dtype)
    hinv = torch.linalg.inv(h)
    q = torch.zeros_like(w)
    left = list(order)
    for col in order:
        start = col // size * size
        if act_order or group_size is None:
            grid = static[start]
        elif col == start:
            grid = _scales(w[:, start : start + size], bits, symmetric)
        q[:, col] = _round(w[:, col], *grid)
        err = (w[:, col] - q[:, col]) / hinv[col, col]
        left.remove(col)
        w[:, left] -= torch.outer(err, hinv[col, left])
        hinv = hinv - torch.outer(hinv[:, col], hinv[col, :]) / hinv[col, col]
    return q


def _correlated_inputs(rows, n, seed, sample=0):
    """Inputs ``[rows, n]`` with correlated, heavy-tailed features (as transformer activations):
    one distribution per ``seed``, independent draws from it per ``sample``."""
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(n, n, generator=gen) / n**0.5 + torch.eye(n)
    spread = torch.exp(torch.randn(n, generator=gen))  # a few features much larger
    z = torch.randn(rows, n, generator=torch.Generator().manual_seed(1000 + sample))
    return (z * spread) @ mix


def _hessian(x):
    return x.T.double() @ x.double() / len(x)


CASES = [
    dict(bits=3),
    dict(bits=2, group_size=8),
    dict(bits=4, group_size=12),  # 12 does not divide 40: a last partial group of 4
    dict(bits=3, group_size=8, act_order=True),
    dict(bits=3, act_order=True),
    dict(bits=4, group_size=16, symmetric=False),
    dict(bits=2, group_size=16, symmetric=False, act_order=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("block_size", [128, 5])
def test_blocked_gptq_matches_the_textbook_algorithm(case, block_size):
    torch.manual_seed(0)
    w = torch.randn(6, 40, dtype=torch.float64)
    h = _hessian(_correlated_inputs(400, 40, seed=1)).double()
    got = gptq_quantize(w, h, block_size=block_size, **case)
    want = textbook_gptq(w, h, **case)
    assert got.dtype == w.dtype and got.shape == w.shape
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    assert not torch.equal(
        got, rtn_quantize(w, **{k: v for k, v in case.items() if k != "act_order"})
    )


def test_float32_weights_match_the_reference_but_for_rare_ties():
    torch.manual_seed(0)
    w = torch.randn(16, 64)
    h = _hessian(_correlated_inputs(1000, 64, seed=2))
    got = gptq_quantize(w, h, bits=3, group_size=16, block_size=8)
    want = textbook_gptq(w, h, bits=3, group_size=16).float()
    assert got.dtype == torch.float32
    close = torch.isclose(got, want, rtol=1e-4, atol=1e-5)
    assert close.float().mean() > 0.99


def test_with_a_diagonal_hessian_gptq_is_the_rtn_of_quantization_space():
    torch.manual_seed(0)
    w = torch.randn(8, 300)
    h = torch.diag(torch.rand(300) + 0.5)  # independent inputs: no error to compensate
    for bits, group in itertools.product((2, 3, 4, 8), (None, 128, 200)):
        granularity = "group" if group else "channel"
        info = QuantInfo(bits=bits, fmt="int", granularity=granularity, group_size=group)
        rtn = _fake_quantize(w, info)
        assert torch.equal(gptq_quantize(w, h, bits=bits, group_size=group), rtn)
        assert torch.equal(rtn_quantize(w, bits=bits, group_size=group), rtn)


# Held-out quality ---------------------------------------------------------------------------
def _rel_error(x, w, q):
    return float((x @ (w - q).T).norm() / (x @ w.T).norm())


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_gptq_beats_rtn_on_held_out_inputs_with_enough_tokens(bits):
    torch.manual_seed(0)
    n = 64
    layer = nn.Linear(n, 48)
    calib, held_out = _correlated_inputs(32 * n, n, 3), _correlated_inputs(4096, n, 3, sample=1)
    h = collect_hessians(layer, [calib], layers=[""])[""]
    w = layer.weight.detach()
    gptq = _rel_error(held_out, w, gptq_quantize(w, h, bits=bits, group_size=32))
    rtn = _rel_error(held_out, w, rtn_quantize(w, bits=bits, group_size=32))
    assert gptq < 0.8 * rtn, (gptq, rtn)


def test_few_calibration_tokens_warn_with_the_counts_needed():
    layer = nn.Linear(64, 8)
    with pytest.warns(UserWarning, match=r"saw 80 calibration rows for 64 inputs.* at least 512"):
        collect_hessians(layer, [torch.randn(80, 64)], layers=[""])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collect_hessians(layer, [torch.randn(4, 128, 64)], layers=[""])  # 512 rows: enough
    assert tokens_needed(64) == 512


# The grid -----------------------------------------------------------------------------------
def _on_grid(values, bits, symmetric):
    """Whether ``values`` (one row's group) are integer codes times one scale, codes in range."""
    v = values.double()
    if not v.abs().max() > 0:
        return True
    big = v.abs().max()
    candidates = [big / k for k in range(1, 2 ** (bits - 1) + 1)]
    candidates += [(v.max() - v.min()) / m for m in range(1, 2**bits)]
    for s in candidates:
        codes = v / s
        if not torch.allclose(codes, codes.round(), atol=1e-6) or s == 0:
            continue
        lo, hi = codes.round().min(), codes.round().max()
        if symmetric and (
            max(-lo, hi + 1) <= 2 ** (bits - 1) or max(lo.neg() + 1, hi) <= 2 ** (bits - 1)
        ):
            return True
        if not symmetric and hi - lo <= 2**bits - 1:
            return True
    return False


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("act_order", [False, True])
def test_output_is_on_the_int_grid_of_each_group(symmetric, act_order):
    torch.manual_seed(0)
    w = torch.randn(8, 44)
    h = _hessian(_correlated_inputs(500, 44, seed=5))
    for bits in (2, 3, 4):
        q = gptq_quantize(w, h, bits=bits, group_size=16, symmetric=symmetric, act_order=act_order)
        for row, start in itertools.product(range(8), range(0, 44, 16)):
            group = q[row, start : start + 16]
            assert _on_grid(group, bits, symmetric), (bits, row, start, group)
            assert len(group.unique()) <= 2**bits
        assert not _on_grid(w[0, :16], bits, symmetric)  # the check can fail


# Edge cases ---------------------------------------------------------------------------------
def test_a_dead_input_gets_weight_zero_and_the_others_match_the_reference():
    torch.manual_seed(0)
    w = torch.randn(4, 20, dtype=torch.float64)
    x = _correlated_inputs(300, 20, seed=6).double()
    x[:, 7] = 0
    h = _hessian(x)
    q = gptq_quantize(w, h, bits=3, group_size=8)
    assert torch.all(q[:, 7] == 0) and torch.isfinite(q).all()
    torch.testing.assert_close(q, textbook_gptq(w, h, bits=3, group_size=8))


def test_conv_weights_are_quantized_as_their_unfolded_matrix():
    torch.manual_seed(0)
    w = torch.randn(5, 3, 3, 3)
    h = _hessian(_correlated_inputs(500, 27, seed=7))
    q = gptq_quantize(w, h, bits=4, group_size=9)
    assert q.shape == w.shape
    torch.testing.assert_close(
        q.reshape(5, -1), gptq_quantize(w.reshape(5, -1), h, bits=4, group_size=9)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(bits=1), ValueError, r"bits must be \[2, 16\], got 1"),
        (dict(bits=17), ValueError, r"bits must be \[2, 16\]"),
        (dict(bits=True), TypeError, "bits must be an int"),
        (dict(bits=4, group_size=0), ValueError, "group_size must be >= 1"),
        (dict(bits=4, block_size=0), ValueError, "block_size must be >= 1"),
        (dict(bits=4, damp=-0.1), ValueError, "damp must be"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        gptq_quantize(torch.randn(4, 8), torch.eye(8), **kwargs)
    if "bits" in match:
        with pytest.raises(error, match="rtn_quantize: " + match):
            rtn_quantize(torch.randn(4, 8), **kwargs)


def test_bad_tensors_say_what_shape_is_needed():
    with pytest.raises(ValueError, match=r"hessian must be \[8, 8\]"):
        gptq_quantize(torch.randn(4, 8), torch.eye(7), bits=4)
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        gptq_quantize(torch.ones(4, 8, dtype=torch.long), torch.eye(8), bits=4)
    with pytest.raises(ValueError, match="not positive definite"):
        gptq_quantize(torch.randn(4, 8), -torch.eye(8), bits=4, damp=0.0)


# collect_hessians ---------------------------------------------------------------------------
class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 10), nn.Linear(10, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x, scale):
        return self.fc2(self.drop(torch.relu(self.fc1(x * scale))))


def test_linear_hessians_match_x_transpose_x_with_tuple_and_dict_batches():
    torch.manual_seed(0)
    model = _TwoInputs().train()
    xs = [torch.randn(3, 50, 6), torch.randn(2, 70, 6)]
    scale = torch.tensor(2.0)
    x1 = torch.cat([x.reshape(-1, 6) for x in xs]) * 2
    x2 = torch.relu(model.fc1(x1)).detach()
    before = model.eval()(xs[0], scale).detach()
    model.train()
    tuples = collect_hessians(model, [(x, scale) for x in xs], layers=["fc1", "fc2"])
    dicts = collect_hessians(model, [{"x": x, "scale": scale} for x in xs], layers=["fc1", "fc2"])
    for got in (tuples, dicts):
        assert got["fc1"].dtype == torch.float64
        torch.testing.assert_close(got["fc1"], _hessian(x1), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got["fc2"], _hessian(x2), rtol=1e-5, atol=1e-6)
    assert model.training and model.drop.training  # mode restored; ran in eval (no dropout)
    torch.testing.assert_close(model.eval()(xs[0], scale), before, rtol=0, atol=0)


def _patches_by_hand(x, conv):
    """Rows ``[N * positions, C * kh * kw]``: every window, cut out one by one."""
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    pad = [conv.padding[1]] * 2 + [conv.padding[0]] * 2
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    x = F.pad(x, pad, mode=mode)
    rows = []
    for n in range(x.shape[0]):
        for i in range(0, x.shape[2] - kh + 1, sh):
            for j in range(0, x.shape[3] - kw + 1, sw):
                rows.append(x[n, :, i : i + kh, j : j + kw].reshape(-1))
    return torch.stack(rows)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_conv_hessians_match_patches_cut_by_hand_and_the_weight_layout(padding_mode, monkeypatch):
    import tradeoff.spaces._calibration as calibration

    monkeypatch.setattr(calibration, "CHUNK_ROWS", 50)  # several chunks per batch
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 1), padding_mode=padding_mode),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 2, 3, padding="same"),
    ).train()
    x = torch.randn(5, 3, 9, 8)
    stats = model[1].running_mean.clone()
    with pytest.warns(UserWarning, match="calibration rows"):
        got = collect_hessians(model, [x[:2], x[2:]], layers=["0", "3"])
    patches = _patches_by_hand(x, model[0])
    torch.testing.assert_close(got["0"], _hessian(patches), rtol=1e-5, atol=1e-6)
    conv = model[0]  # rows times the flattened weight are the conv's output
    out = (patches @ conv.weight.reshape(4, -1).T + conv.bias).reshape(5, -1, 4)
    torch.testing.assert_close(out, conv(x).flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-5)
    assert torch.equal(model[1].running_mean, stats) and model.training
    inner = model[2](model[1].eval()(model[0](x))).detach()
    same = nn.Conv2d(4, 2, 3, padding=1)
    torch.testing.assert_close(
        got["3"], _hessian(_patches_by_hand(inner, same)), rtol=1e-5, atol=1e-6
    )
    with pytest.warns(UserWarning):
        again = collect_hessians(model, [x[:2], x[2:]], layers=["0", "3"])
    torch.testing.assert_close(again["0"], got["0"], rtol=0, atol=0)  # no hook left behind


def test_collect_hessians_refuses_unknown_or_unsupported_layers_and_no_batches():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Conv2d(4, 4, 1, groups=2))
    with pytest.raises(ValueError, match=r"\['nope'\] not in the model"):
        collect_hessians(model, [torch.randn(2, 4)], layers=["nope"])
    with pytest.raises(TypeError, match="'1' is a ReLU"):
        collect_hessians(model, [torch.randn(2, 4)], layers=["1"])
    with pytest.raises(TypeError, match="groups=1"):
        collect_hessians(model, [torch.randn(2, 4)], layers=["2"])
    with pytest.raises(ValueError, match="batches is empty"):
        collect_hessians(model, [], layers=["0"])


def test_layers_reading_one_input_share_its_product_and_others_do_not():
    class Attention(nn.Module):  # q, k, v read one tensor; o reads another of the same shape
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(8, 8) for _ in range(4))

        def forward(self, x):
            h = torch.tanh(x)
            return self.o(self.q(h) * self.k(h) + self.v(h))

    torch.manual_seed(0)
    model = Attention()
    batches = [torch.randn(40, 8) for _ in range(3)]
    found = collect_hessians(model, batches, layers=["q", "k", "v", "o"])
    x = torch.cat([torch.tanh(b) for b in batches])
    with torch.no_grad():
        xo = torch.cat([model.q(torch.tanh(b)) * model.k(torch.tanh(b)) + model.v(torch.tanh(b))
                        for b in batches])  # fmt: skip
    for name in "qkv":
        assert torch.allclose(found[name], _hessian(x), rtol=1e-5, atol=1e-7)
        assert torch.equal(found[name], found["q"])
    assert torch.allclose(found["o"], _hessian(xo), rtol=1e-5, atol=1e-7)


def test_gptq_after_channel_pruning_uses_the_hessian_of_the_kept_inputs():
    """A Linear whose inputs lost channels is quantized with its Hessian's kept rows and
    columns (the removed inputs are gone, not zero); layer 2 also loses output channels."""
    from tradeoff.spaces import PruningSpace, QuantizationSpace, SearchSpace

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(),
                          nn.Linear(24, 4)).eval()  # fmt: skip
    x = torch.randn(512, 16, generator=torch.Generator().manual_seed(1))
    prune = PruningSpace.for_model(model, (0.0, 0.5), pattern="channel")
    quant = QuantizationSpace.for_model(
        model, bits=(3, 8), method="gptq", calibration=x, granularity="channel", bank=None
    )
    space = SearchSpace.merge(prune=prune, quant=quant)
    config = {k: 0.5 if k.endswith("sparsity") else 3 for k in space}
    config = {k: "channel" if k.endswith("pattern") else v for k, v in config.items()}
    out = space.apply(model, config)
    pruned = prune.apply(model, {k.split(".", 1)[1]: config[k] for k in config if "prune." in k})
    for name, width in (("2", 16), ("4", 12)):  # inputs left after the layer before lost half
        layer, before = out.get_submodule(name), pruned.get_submodule(name)
        assert layer.in_features == width
        kept = before._tradeoff_kept_inputs
        h = quant.quantizer.hessian(name)[kept][:, kept]
        expected = gptq_quantize(before.weight, h, bits=3)
        torch.testing.assert_close(layer.weight, expected, rtol=0, atol=0)


def test_gptq_after_channel_pruning_of_a_convolution_slices_each_channels_kernel():
    from tradeoff.spaces import PruningSpace, QuantizationSpace, SearchSpace

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3),
                          nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3)).eval()  # fmt: skip
    x = torch.randn(64, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    prune = PruningSpace.for_model(model, (0.0, 0.5), pattern="channel", sample_input=x[:1])
    quant = QuantizationSpace.for_model(
        model, bits=(4, 8), method="gptq", calibration=x, granularity="channel", bank=None
    )
    space = SearchSpace.merge(prune=prune, quant=quant)
    config = {k: 0.0 if k.endswith("sparsity") else 4 for k in space}
    config["prune.0.sparsity"] = 0.5  # half of conv 0's channels: conv 2 loses half its inputs
    out = space.apply(model, config)
    before = prune.apply(model, {k.split(".", 1)[1]: config[k] for k in config if "prune." in k})
    conv = before.get_submodule("2")
    assert out.get_submodule("2").in_channels == 4
    kept = conv._tradeoff_kept_inputs
    rows = (kept[:, None] * 9 + torch.arange(9)).reshape(-1)  # each kept channel's 3x3 kernel
    h = quant.quantizer.hessian("2")[rows][:, rows]
    expected = gptq_quantize(conv.weight, h, bits=4)
    torch.testing.assert_close(out.get_submodule("2").weight, expected, rtol=0, atol=0)
