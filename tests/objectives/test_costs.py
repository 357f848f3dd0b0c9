"""Cost functions on tiny hand-built models; compression metadata is set by hand."""

import math

import pytest
import torch
from torch import nn

from tradeoff.objectives._costs import (
    bitops,
    latency_ms,
    macs,
    model_cost,
    nonzero_parameters,
    parameters,
    peak_memory_mb,
    trainable_parameters,
    weight_storage_bytes,
)
from tradeoff.spaces import Ordinal, SearchSpace
from tradeoff.spaces._model import PRUNE_ATTR, QUANT_ATTR, ModelSpace, PruneInfo, QuantInfo


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class Net(nn.Module):
    """fc1 (8 -> 4), ReLU, fc2 (4 -> 2); counts forward calls across all copies."""

    calls = 0

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 4)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x):
        type(self).calls += 1
        return self.fc2(torch.relu(self.fc1(x)))


def quantize(layer, bits, *, act_bits=None, n_scales=None):
    info = QuantInfo(bits=bits, n_scales=n_scales or layer.weight.shape[0], act_bits=act_bits)
    setattr(layer, QUANT_ATTR, info)
    return layer


def zero_all_but(layer, keep):
    """Keep the first ``keep`` weight values (row-major), zero the rest."""
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[keep:] = 0.0
        flat[:keep] = torch.arange(1, keep + 1, dtype=flat.dtype)


# Parameter counts -----------------------------------------------------------------------------
def test_parameter_counts_and_frozen_layers():
    net = Net()
    assert parameters(net) == 8 * 4 + 4 + 4 * 2 + 2
    zero_all_but(net.fc1, 5)
    nn.init.zeros_(net.fc2.bias)
    assert nonzero_parameters(net) == 5 + 4 + 8  # fc1.bias and fc2.weight are random
    net.fc1.requires_grad_(False)
    assert trainable_parameters(net) == 4 * 2 + 2


def test_tied_weights_are_counted_once():
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head})
    assert parameters(model) == 40
    assert weight_storage_bytes(model) == 40 * 4


def test_non_module_is_rejected():
    for fn in (parameters, nonzero_parameters, trainable_parameters, weight_storage_bytes):
        with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got str"):
            fn("model")
    with pytest.raises(TypeError, match="got dict"):
        macs({}, torch.zeros(1))


# Storage -------------------------------------------------------------------------------------
def test_storage_of_dense_float_model():
    assert weight_storage_bytes(Net()) == (32 + 4 + 8 + 2) * 4
    assert weight_storage_bytes(Net().half()) == (32 + 4 + 8 + 2) * 2


def test_storage_of_4bit_per_channel_linear():
    layer = quantize(nn.Linear(8, 4), 4)
    assert weight_storage_bytes(layer) == 32 * 4 / 8 + 4 * 2 + 4 * 4  # values, scales, bias


def test_storage_of_group_quantization_counts_every_scale():
    layer = quantize(nn.Linear(8, 4, bias=False), 3, n_scales=8)  # groups of 4 inputs
    assert weight_storage_bytes(layer) == 32 * 3 / 8 + 8 * 2


def test_unstructured_sparsity_uses_bitmask_when_cheaper():
    layer = nn.Linear(8, 4, bias=False)
    setattr(layer, PRUNE_ATTR, PruneInfo("unstructured", 0.75))
    zero_all_but(layer, 8)
    assert weight_storage_bytes(layer) == 8 * 4 + 32 / 8  # float32 values + 1-bit mask


def test_unstructured_sparsity_keeps_dense_when_cheaper():
    layer = quantize(nn.Linear(8, 4, bias=False), 4)
    setattr(layer, PRUNE_ATTR, PruneInfo("unstructured", 0.125))
    zero_all_but(layer, 28)  # sparse: 28 * 0.5 + 4 = 18 bytes > dense 16 bytes
    assert weight_storage_bytes(layer) == 32 * 4 / 8 + 4 * 2
    zero_all_but(layer, 16)  # sparse: 16 * 0.5 + 4 = 12 bytes < 16
    assert weight_storage_bytes(layer) == 16 * 4 / 8 + 32 / 8 + 4 * 2


def test_2_4_sparsity_pays_index_bits_per_kept_value():
    layer = nn.Linear(8, 4, bias=False)
    setattr(layer, PRUNE_ATTR, PruneInfo("n:m", 0.5, n=2, m=4))
    with torch.no_grad():
        layer.weight.view(-1, 4)[:, 2:] = 0.0
    kept = 16
    assert weight_storage_bytes(layer) == kept * (32 + 2) / 8
    quantize(layer, 4)
    assert weight_storage_bytes(layer) == kept * (4 + 2) / 8 + 4 * 2


def test_channel_pruned_layer_is_counted_at_its_size():
    layer = nn.Linear(8, 2)
    setattr(layer, PRUNE_ATTR, PruneInfo("channel", 0.5, original_out=4))
    assert weight_storage_bytes(layer) == (16 + 2) * 4


def test_bad_prune_info_is_reported():
    layer = nn.Linear(8, 4)
    setattr(layer, PRUNE_ATTR, PruneInfo("blocks", 0.5))
    with pytest.raises(ValueError, match="Unknown PruneInfo pattern 'blocks'"):
        weight_storage_bytes(layer)
    setattr(layer, PRUNE_ATTR, PruneInfo("n:m", 0.5, n=2))
    with pytest.raises(ValueError, match="needs 0 < n <= m, got n=2, m=None"):
        weight_storage_bytes(layer)


# MACs and bit-ops -----------------------------------------------------------------------------
def conv_macs(conv, out):
    """Textbook formula: N * H_out * W_out * C_out * (C_in / groups) * k_h * k_w."""
    per_output = conv.in_channels // conv.groups * math.prod(conv.kernel_size)
    return out.numel() * per_output


def test_macs_of_linear_over_leading_dimensions():
    assert macs(nn.Linear(8, 4), torch.randn(3, 5, 8)) == 3 * 5 * 8 * 4


def test_macs_of_strided_padded_grouped_conv2d():
    conv = nn.Conv2d(4, 8, kernel_size=3, stride=2, padding=1, groups=2)
    x = torch.randn(2, 4, 9, 9)
    out = conv(x)
    assert out.shape == (2, 8, 5, 5)
    assert macs(conv, x) == conv_macs(conv, out) == 2 * 5 * 5 * 8 * 2 * 3 * 3


def test_macs_of_conv1d_and_unbatched_input():
    conv = nn.Conv1d(3, 6, kernel_size=5, padding=2, groups=3)
    x = torch.randn(3, 20)  # no batch dimension
    assert macs(conv, x) == 20 * 6 * 1 * 5


def test_macs_count_every_call_and_skip_other_ops():
    layer = nn.Linear(4, 4)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return torch.softmax(self.layer(self.layer(x)) @ x.T, dim=-1)

    assert macs(Twice(), torch.randn(2, 4)) == 2 * (2 * 4 * 4)


def test_bitops_with_4bit_weights_and_8bit_activations():
    net = Net()
    quantize(net.fc1, 4, act_bits=8)
    x = torch.randn(2, 8)
    assert macs(net, x) == 2 * 32 + 2 * 8
    assert bitops(net, x) == 2 * 32 * 4 * 8 + 2 * 8 * 32 * 32


def test_bitops_of_half_model_uses_16_bits():
    assert bitops(nn.Linear(8, 4).half(), torch.randn(1, 8).half()) == 32 * 16 * 16


def test_tracing_restores_training_modes():
    net = Net().train()
    net.fc2.eval()
    macs(net, torch.randn(1, 8))
    assert net.training and net.fc1.training and not net.fc2.training


def test_sample_input_forms():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 4), nn.Linear(6, 4)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    x, y = torch.randn(2, 8), torch.randn(2, 6)
    assert macs(TwoInputs(), (x, y)) == macs(TwoInputs(), {"x": x, "y": y}) == 2 * (32 + 24)


def test_missing_sample_input_is_reported():
    for fn in (macs, bitops, latency_ms, peak_memory_mb):
        with pytest.raises(ValueError, match="needs sample_input"):
            fn(Net(), None)


# Measured ------------------------------------------------------------------------------------
class ThreadProbe(nn.Module):
    """Records the thread count and batch size each forward saw."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.seen = []

    def forward(self, x):
        self.seen.append((torch.get_num_threads(), x.shape[0]))
        return self.fc(x)


def test_latency_is_positive_and_restores_threads():
    model = ThreadProbe().train()
    before = torch.get_num_threads()
    ms = latency_ms(model, torch.randn(2, 8), warmup=2, repeats=3, threads=1, batch_size=5)
    assert ms > 0
    assert torch.get_num_threads() == before
    assert model.seen == [(1, 5)] * 5
    assert model.training


def test_latency_restores_threads_and_mode_when_the_forward_fails():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model, before = Broken().train(), torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        latency_ms(model, torch.randn(1, 8), threads=1)
    assert torch.get_num_threads() == before
    assert model.training


def test_latency_slices_batch_and_validates_arguments():
    model = ThreadProbe()
    latency_ms(model, torch.randn(6, 8), warmup=0, repeats=1, batch_size=2, device="cpu")
    assert model.seen == [(torch.get_num_threads(), 2)]
    with pytest.raises(ValueError, match="repeats must be an integer >= 1, got 0"):
        latency_ms(model, torch.randn(1, 8), repeats=0)
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        latency_ms(model, torch.randn(1, 8), threads=0)


def test_peak_memory_counts_weights_input_copy_and_activations():
    layer = nn.Linear(256, 1024, bias=False)
    expected = 1024 * 256 * 4 + 64 * 256 * 4 + 64 * 1024 * 4  # weight, input, output
    assert peak_memory_mb(layer, torch.randn(64, 256)) >= expected / 2**20


def test_peak_memory_grows_with_batch_size():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 3))
    small, large = (peak_memory_mb(model, torch.randn(n, 3, 16, 16)) for n in (1, 8))
    weights = sum(p.numel() * 4 for p in model.parameters()) / 2**20
    assert weights < small < large


def test_peak_memory_rejects_unsupported_device():
    with pytest.raises(ValueError, match=r"Can only measure on \['cpu', 'cuda'\], not 'meta'"):
        peak_memory_mb(Net(), torch.randn(1, 8), device="meta")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_costs_on_cuda():
    layer = quantize(nn.Linear(8, 4).cuda(), 4)
    x = torch.randn(2, 8)  # moved to the model's device by the cost functions
    assert weight_storage_bytes(layer) == 16 + 8 + 16
    assert macs(layer, x) == 64
    assert latency_ms(layer, x, repeats=2) > 0
    assert peak_memory_mb(layer, x) > 0


# Known costs through a space -----------------------------------------------------------------
class HandQuant(ModelSpace):
    """Quantizes fc1 to the chosen bits with 8-bit activations (a stand-in quant space)."""

    stage = "quant"

    def __init__(self):
        super().__init__({"fc1.bits": Ordinal([4, 8])})

    def _apply(self, model, config):
        quantize(model.fc1, config["fc1.bits"], act_bits=8)
        return model


class LoRA(nn.Module):
    def __init__(self, base, rank):
        super().__init__()
        self.base = base
        self.a = nn.Linear(base.in_features, rank, bias=False)
        self.b = nn.Linear(rank, base.out_features, bias=False)

    def forward(self, x):
        return self.base(x) + self.b(self.a(x))


class HandAdapter(ModelSpace):
    """Wraps fc1 in a LoRA adapter: layers the first trace never saw."""

    stage = "peft"

    def __init__(self):
        super().__init__({"fc1.rank": Ordinal([1, 2])})

    def _apply(self, model, config):
        model.requires_grad_(False)
        model.fc1 = LoRA(model.fc1, config["fc1.rank"])
        return model


def test_model_cost_storage_leaves_model_untouched():
    net = Net()
    fn = model_cost(HandQuant(), net, weight_storage_bytes)
    assert fn({"fc1.bits": 4}) == 32 * 4 / 8 + 4 * 2 + (4 + 8 + 2) * 4
    assert fn({"fc1.bits": 8}) == 32 + 4 * 2 + (4 + 8 + 2) * 4
    assert not hasattr(net.fc1, QUANT_ATTR)


def test_model_cost_bitops_traces_the_model_once():
    net, x = Net(), torch.randn(3, 8)
    space = SearchSpace.merge(quant=HandQuant())
    fn = model_cost(space, net, bitops, sample_input=x)
    Net.calls = 0
    for bits in (4, 8, 4):
        config = {"quant.fc1.bits": bits}
        assert fn(config) == bitops(space.apply(net, config), x)
    assert Net.calls == 1 + 3  # one trace by fn, three by the reference bitops calls


def test_model_cost_retraces_when_new_layers_appear():
    net, x = Net(), torch.randn(2, 8)
    fn = model_cost(HandAdapter(), net, macs, sample_input=x)
    assert fn({"fc1.rank": 2}) == 2 * (32 + 8) + 2 * (8 * 2 + 2 * 4)
    assert model_cost(HandAdapter(), net, trainable_parameters)({"fc1.rank": 1}) == 8 + 4


def test_model_cost_passes_sample_input_to_other_metrics():
    fn = model_cost(HandQuant(), Net(), lambda m, x: x.shape[0], sample_input=torch.ones(7, 8))
    assert fn({"fc1.bits": 4}) == 7.0


def test_model_cost_errors():
    with pytest.raises(ValueError, match="macs runs the model and needs sample_input"):
        model_cost(HandQuant(), Net(), macs)
    with pytest.raises(TypeError, match="space must be a SearchSpace, got dict"):
        model_cost({}, Net(), parameters)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got str"):
        model_cost(HandQuant(), "net", parameters)
    with pytest.raises(TypeError, match="metric must be callable"):
        model_cost(HandQuant(), Net(), "size")
