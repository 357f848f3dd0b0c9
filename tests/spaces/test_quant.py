import copy
import itertools
import pickle
from collections import OrderedDict
from typing import Any

import optuna
import pytest
import torch
from torch import nn

from tradeoff.spaces._model import QUANT_ATTR, QuantInfo
from tradeoff.spaces._quant import ActivationQuantizer, QuantizationSpace, to_int8_runtime
from tradeoff.spaces._quantizers import _round_e2m1

FP4_GRID = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def _mlp(seed: int = 0, sizes: tuple[int, ...] = (64, 32, 8)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for d_in, d_out in itertools.pairwise(sizes):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _config(space: QuantizationSpace, **knobs: Any) -> dict[str, Any]:
    """A Config of ``space`` with every ``<layer>.<knob>`` set to ``knobs[knob]``."""
    config = space.sample(0)
    for name in config:
        knob = name.rsplit(".", 1)[1]
        if knob in knobs:
            config[name] = knobs[knob]
    return config


def _quantized(model: nn.Module, knobs: dict[str, Any], **space_args: Any) -> nn.Module:
    space = QuantizationSpace.for_model(model, **space_args)
    return space.apply(model, _config(space, **knobs))


def _distinct_per_row(w: torch.Tensor) -> list[int]:
    return [len(torch.unique(row)) for row in w.detach().reshape(w.shape[0], -1)]


# Integer grids ------------------------------------------------------------------------------
def test_int4_per_channel_has_at_most_16_values_per_channel_and_uses_them():
    q = _quantized(_mlp(), {"bits": 4}, bits=(4, 8))
    counts = _distinct_per_row(q[0].weight)
    assert max(counts) <= 16
    assert max(counts) == 16  # the whole range [-8, 7] is used


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_int_grid_uses_all_codes_and_is_symmetric(bits):
    layer = nn.Linear(512, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([torch.linspace(-1, 1, 512), torch.linspace(-2.99, 3, 512)]))
    q = _quantized(nn.Sequential(layer), {"bits": bits}, bits=(bits, 16))[0].weight.detach()
    assert _distinct_per_row(q) == [2**bits, 2**bits]  # 4 levels at 2 bits, not 3
    for row, amax in zip(q, (1.0, 3.0)):
        codes = row * 2 ** (bits - 1) / amax  # integers: zero-point 0, scale max|w| / 2^(b-1)
        assert torch.allclose(codes, codes.round(), atol=1e-4)
        assert 0.0 in row  # zero is exact, so pruned weights stay pruned


def test_group_quantization_has_at_most_2_pow_b_values_per_group_with_a_partial_group():
    model = _mlp(sizes=(100, 16, 8))  # 100 inputs = 3 groups of 32 + a partial group of 4
    q = _quantized(model, {"bits": 3}, bits=(3, 8), granularity="group", group_size=32)
    w = q[0].weight.detach()
    for start in range(0, 100, 32):
        assert max(_distinct_per_row(w[:, start : start + 32])) <= 8
    assert getattr(q[0], QUANT_ATTR).n_scales == 16 * 4
    assert getattr(q[2], QUANT_ATTR).n_scales == 8 * 1  # 16 inputs: one partial group


def test_int8_output_is_close_to_float():
    model = _mlp().eval()
    q = _quantized(model, {"bits": 8}, bits=(4, 8)).eval()
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, out = model(x), q(x)
    assert ((out - ref).norm() / ref.norm()).item() < 1e-2


def test_lower_bits_give_larger_error():
    model = _mlp()
    errors = [
        (_quantized(model, {"bits": b}, bits=(2, 3, 4, 8))[0].weight - model[0].weight).norm()
        for b in (2, 3, 4, 8)
    ]
    assert errors == sorted(errors, reverse=True)


# Float formats ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "dtype"), [("fp8_e4m3", torch.float8_e4m3fn), ("fp8_e5m2", torch.float8_e5m2)]
)
def test_fp8_weights_are_exactly_representable_after_scaling(fmt, dtype):
    model = _mlp()
    q = _quantized(model, {"format": fmt}, formats=("int", fmt))
    w = q[0].weight.detach()
    scale = w.abs().amax(dim=1, keepdim=True) / torch.finfo(dtype).max
    y = w / scale
    assert torch.allclose(y.to(dtype).float(), y, rtol=1e-5, atol=0)
    assert not torch.equal(w, model[0].weight)
    assert getattr(q[0], QUANT_ATTR) == QuantInfo(bits=8, fmt=fmt, n_scales=32)


def test_fp4_rounds_to_the_nearest_e2m1_value():
    q = _quantized(_mlp(), {"format": "fp4_e2m1"}, formats=("int", "fp4_e2m1"))
    w, w0 = q[0].weight.detach(), _mlp()[0].weight.detach()
    scale = w0.abs().amax(dim=1, keepdim=True) / 6.0
    grid = torch.cat([-FP4_GRID.flip(0), FP4_GRID])
    nearest = grid[((w0 / scale).unsqueeze(-1) - grid).abs().argmin(dim=-1)]
    assert torch.allclose(w / scale, nearest, atol=1e-5)
    assert getattr(q[0], QUANT_ATTR).bits == 4


def test_fp4_ties_round_to_even_mantissa():
    ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -5.0, 7.0])
    expected = torch.tensor([0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, -4.0, 6.0])
    assert torch.equal(_round_e2m1(ties), expected)


def test_float_format_ignores_bits_and_records_its_own_width():
    space = QuantizationSpace.for_model(_mlp(), bits=(2, 4), formats=("int", "fp8_e5m2"))
    q = space.apply(_mlp(), _config(space, bits=2, format="fp8_e5m2"))
    assert getattr(q[0], QUANT_ATTR).bits == 8
    no_int = QuantizationSpace.for_model(_mlp(), formats=("fp8_e4m3", "fp4_e2m1"))
    assert not any(name.endswith(".bits") for name in no_int)


# Activations --------------------------------------------------------------------------------
def test_act_bits_hook_quantizes_the_layer_input():
    q = _quantized(_mlp(), {"bits": 8}, bits=(4, 8), act_bits=4)
    seen: list[torch.Tensor] = []
    q[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    q(x).sum().backward()
    assert 8 < len(torch.unique(seen[0])) <= 16
    assert len(torch.unique(x)) == x.numel()
    assert x.grad is not None and x.grad.abs().sum() > 0  # straight-through gradient
    assert getattr(q[0], QUANT_ATTR).act_bits == 4


def test_quantized_model_pickles_and_copies_with_its_hook():
    q = _quantized(_mlp(), {"act_bits": 4}, bits=8, act_bits=(4, None))
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    for clone in (copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
        assert torch.equal(clone(x), q(x))
    assert repr(ActivationQuantizer(4)) == "ActivationQuantizer(bits=4)"


def test_act_bits_options_are_ordered_with_float_last():
    space = QuantizationSpace.for_model(_mlp(), bits=8, act_bits=(None, 8, 4))
    assert space["0.act_bits"].values == (4, 8, None)
    q = space.apply(_mlp(), _config(space, act_bits=None))
    x = torch.randn(4, 64)
    assert torch.allclose(q(x), _quantized(_mlp(), {"bits": 8}, bits=(4, 8))(x))


# Model handling -----------------------------------------------------------------------------
def test_original_model_is_unchanged():
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    _quantized(model, {"bits": 2, "act_bits": 4}, act_bits=(4, 8))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(hasattr(m, QUANT_ATTR) for m in model.modules())
    assert not model[0]._forward_pre_hooks


def test_weights_keep_dtype_and_device():
    model = _mlp().to(torch.bfloat16)
    q = _quantized(model, {"bits": 4}, bits=(4, 8))
    assert q[0].weight.dtype == torch.bfloat16
    assert q[0].weight.device == model[0].weight.device
    assert max(_distinct_per_row(q[0].weight)) <= 16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quantizes_on_cuda():
    model = _mlp().cuda()
    q = _quantized(model, {"bits": 4, "format": "fp8_e4m3"}, formats=("int", "fp8_e4m3"))
    assert q[0].weight.is_cuda
    q(torch.randn(2, 64, device="cuda"))


def test_tied_layers_share_one_setting():
    space = QuantizationSpace.for_model(_mlp(sizes=(16, 16, 16, 8)), tie=[("0", "2")])
    assert space.groups == {"0": ("0", "2"), "4": ("4",)}
    assert sorted(space) == ["0.bits", "4.bits"]
    q = space.apply(_mlp(sizes=(16, 16, 16, 8)), {"0.bits": 3, "4.bits": 8})
    assert [getattr(q[i], QUANT_ATTR).bits for i in (0, 2, 4)] == [3, 3, 8]


def test_named_tie_groups_name_their_parameters():
    # A block's parameters named after the block: they group with the block's other
    # spaces' parameters as one layer (crossover, baselines, allocation plots).
    space = QuantizationSpace.for_model(_mlp(sizes=(16, 16, 16, 8)), tie={"block0": ["0", "2"]})
    assert space.groups == {"block0": ("0", "2"), "4": ("4",)}
    assert sorted(space) == ["4.bits", "block0.bits"]
    q = space.apply(_mlp(sizes=(16, 16, 16, 8)), {"block0.bits": 3, "4.bits": 8})
    assert [getattr(q[i], QUANT_ATTR).bits for i in (0, 2, 4)] == [3, 3, 8]
    with pytest.raises(ValueError, match=r"tie group names \['4'\] are used twice"):
        QuantizationSpace.for_model(_mlp(sizes=(16, 16, 16, 8)), tie={"4": ["0", "2"]})
    with pytest.raises(TypeError, match="tie as a dict maps a group name"):
        QuantizationSpace.for_model(_mlp(sizes=(16, 16, 16, 8)), tie={"b": [0]})


def test_layers_sharing_a_weight_are_tied_automatically():
    model = _mlp(sizes=(16, 16, 16))
    model[2].weight = model[0].weight
    space = QuantizationSpace.for_model(model, bits=(2, 4))
    assert space.groups == {"0": ("0", "2")}
    q = space.apply(model, {"0.bits": 2})
    assert q[0].weight is q[2].weight and max(_distinct_per_row(q[0].weight)) <= 4


@pytest.mark.parametrize(
    ("granularity", "expected"), [("tensor", 1), ("channel", 4), ("group", 4 * 4)]
)
def test_quant_info_records_the_number_of_scales(granularity, expected):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 8))
    space = QuantizationSpace.for_model(model, granularity=granularity, group_size=8)
    q = space.apply(model, _config(space, bits=4))
    info = getattr(q[0], QUANT_ATTR)  # 3 * 3 * 3 = 27 inputs per channel: 3 groups of 8 + 3
    assert info == QuantInfo(
        bits=4,
        granularity=granularity,
        group_size=8 if granularity == "group" else None,
        n_scales=expected,
    )
    q(torch.randn(2, 3, 8, 8))


def test_removed_and_narrowed_layers_after_an_earlier_stage():
    model = nn.Sequential(OrderedDict(a=nn.Linear(64, 32), b=nn.Linear(32, 8)))
    space = QuantizationSpace.for_model(model, granularity="group", group_size=(16, 32))
    pruned = copy.deepcopy(model)
    del pruned.b
    pruned.a = nn.Linear(50, 32)  # channel pruning narrowed the input: 50 = 32 + 18
    q = space.apply(pruned, _config(space, bits=4, group_size=32))
    assert getattr(q.a, QUANT_ATTR).n_scales == 32 * 2
    assert max(_distinct_per_row(q.a.weight[:, 32:])) <= 16


def test_config_roundtrip_through_optuna():
    model = _mlp()
    space = QuantizationSpace.for_model(
        model,
        bits=(2, 4, 8),
        act_bits=(8, None),
        formats=("int", "fp8_e4m3"),
        granularity=("channel", "group"),
        group_size=(16, 32),
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        trial = study.ask(space.distributions())
        config = space.decode(trial.params)
        assert space.contains(config)
        assert space.encode(config) == trial.params
        space.apply(model, config)
        study.tell(trial, 0.0)
    study.enqueue_trial(space.encode(config))
    assert space.decode(study.ask(space.distributions()).params) == config
    assert pickle.loads(pickle.dumps(space)).groups == space.groups


# Real int8 ---------------------------------------------------------------------------------
@pytest.mark.slow  # imports torchao (~3 s)
def test_int8_runtime_runs_and_matches_fake_quantization():
    model = _mlp(sizes=(64, 48, 8)).eval()
    space = QuantizationSpace.for_model(model, bits=(4, 8), act_bits=(8, None))
    q = space.apply(model, {"0.bits": 8, "0.act_bits": 8, "2.bits": 4, "2.act_bits": None})
    runtime = to_int8_runtime(q)
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, out = q(x), runtime(x)
    assert ((out - ref).norm() / ref.norm()).item() < 0.05
    assert type(runtime[0].weight) is not type(q[0].weight)  # an int8 tensor subclass
    assert type(runtime[2].weight) is type(q[2].weight)  # 4-bit: left as is
    # The copy's activation hook is off; the fake-quantized model keeps its own on.
    assert not runtime[0].tradeoff_act_quant.enabled and q[0].tradeoff_act_quant.enabled
    x = torch.full((1, 64), 0.3) + torch.linspace(0, 1, 64)
    with torch.no_grad():
        assert not torch.equal(q[0](x), torch.nn.functional.linear(x, q[0].weight, q[0].bias))


def test_int8_runtime_needs_an_8_bit_linear():
    q = _quantized(_mlp(), {"bits": 4}, bits=(4, 8))
    with pytest.raises(ValueError, match=r"no nn\.Linear layer of the model is quantized to 8-bit"):
        to_int8_runtime(q)


# Errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bits": ()}, ValueError, "bits is empty"),
        ({"bits": (2.5, 4)}, TypeError, "bits values must be ints, got 2.5"),
        ({"bits": (True, 4)}, TypeError, "bits values must be ints"),
        ({"bits": "48"}, TypeError, "bits takes one option or a sequence"),
        ({"bits": (1, 4)}, ValueError, r"bits values must be in \[2, 16\]"),
        ({"bits": (4, 17)}, ValueError, r"bits values must be in \[2, 16\]"),
        ({"bits": (4, 4)}, ValueError, "bits has duplicate options"),
        ({"bits": 4}, ValueError, "Nothing to search"),
        ({"act_bits": (1, None)}, ValueError, r"act_bits values must be in \[2, 16\]"),
        ({"act_bits": ("8",)}, TypeError, r"act_bits values must be ints or None \(float\)"),
        ({"formats": ("int", "int8")}, ValueError, "Unknown formats option 'int8'"),
        ({"formats": ()}, ValueError, "formats is empty"),
        ({"granularity": "row"}, ValueError, "Unknown granularity option 'row'"),
        ({"granularity": "group", "group_size": 0}, ValueError, r"group_size .* \[1, inf\]"),
        ({"tie": "0"}, TypeError, "tie takes a list of groups"),
        ({"tie": [("0", 2)]}, TypeError, "tie takes a list of groups"),
        ({"tie": [("0", "nope")]}, ValueError, "tie pattern 'nope' matches none"),
        ({"tie": [("0", "2"), "re:[02]"]}, ValueError, "Layer '0' is in tie groups 0 and 1"),
        ({"include": "enc*"}, ValueError, r"No layers to quantize.*Candidates: \[0, 2\]"),
        ({"types": (nn.ReLU,)}, TypeError, "Layer '1' has no float 'weight'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        QuantizationSpace.for_model(_mlp(), **kwargs)


def test_model_without_layers_is_rejected():
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        QuantizationSpace.for_model("model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="No layers to quantize"):
        QuantizationSpace.for_model(nn.Sequential(nn.ReLU()))


def test_bad_configs_and_double_quantization_are_rejected():
    model = _mlp()
    space = QuantizationSpace.for_model(model)
    with pytest.raises(ValueError, match="config is not in this space"):
        space.apply(model, {"0.bits": 5, "2.bits": 4})
    q = space.apply(model, {"0.bits": 4, "2.bits": 4})
    with pytest.raises(ValueError, match="Layer '0' is already quantized"):
        space.apply(q, {"0.bits": 4, "2.bits": 4})
    with pytest.raises(ValueError, match=r"int in \[2, 16\]"):
        ActivationQuantizer(1)
