"""model_cost's analytic path: the apply path's numbers, without copying the model."""

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from tradeoff.objectives import (
    bitops,
    macs,
    model_cost,
    nonzero_parameters,
    parameters,
    trainable_parameters,
    weight_storage_bytes,
)
from tradeoff.spaces import (
    ArchitectureSpace,
    Float,
    Ordinal,
    PruningSpace,
    QuantizationSpace,
    SearchSpace,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METRICS = [parameters, trainable_parameters, nonzero_parameters, weight_storage_bytes, macs, bitops]
TRACED = (macs, bitops)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FORMATS = ("int", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1")
GRANULARITIES = ("tensor", "channel", "group")


def mnist_cnn():
    """The main job's CNN (``make_cnn`` of examples/_mnist_data.py), randomly initialized."""
    spec = importlib.util.spec_from_file_location("_mnist_data", EXAMPLES / "_mnist_data.py")
    assert spec is not None and spec.loader is not None
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    torch.manual_seed(0)
    return data.make_cnn().eval(), torch.randn(2, 1, 28, 28)


class MLP(nn.Module):
    """fc1 -> bn -> fc2 -> fc3 -> out, with the layers registered out of call order, so
    channel pruning processes fc2's group before fc1's (whose consumer fc2 is)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc2 = nn.Linear(24, 16)
        self.fc1 = nn.Linear(12, 24)
        self.bn = nn.BatchNorm1d(24)
        self.fc3 = nn.Linear(16, 8, bias=False)
        self.out = nn.Linear(8, 4)
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)

    def forward(self, x):
        x = torch.relu(self.bn(self.fc1(x)))
        return self.out(torch.relu(self.fc3(torch.relu(self.fc2(x))))) * self.frozen.sum()


def mlp():
    return MLP().eval(), torch.randn(3, 12)


def bert():
    from ..conftest import tiny_bert

    return tiny_bert(2), torch.randint(0, 100, (2, 7))


def cnn_space(model, x):
    return SearchSpace.merge(
        quant=QuantizationSpace.for_model(
            model, bits=(2, 3, 4, 8), act_bits=(4, 8, None), formats=FORMATS,
            granularity=GRANULARITIES, group_size=(8, 32),
        ),
        prune=PruningSpace.for_model(
            model, sparsity=(0.0, 0.25, 0.5, 0.75), pattern=("unstructured", "channel", "n:m"),
            sample_input=x,
        ),
    )  # fmt: skip


def mlp_space(model, x):
    return SearchSpace.merge(
        prune=PruningSpace.for_model(
            model, sparsity=(0.0, 0.3, 0.6, 0.9), pattern=("channel", "n:m", "unstructured")
        ),
        quant=QuantizationSpace.for_model(
            model, bits=(2, 4, 8), act_bits=(8, None), granularity=GRANULARITIES, group_size=(5,)
        ),
        train=SearchSpace({"lr": Float(1e-4, 1e-1)}),
    )


def bert_space(model, x):
    return SearchSpace.merge(
        prune=PruningSpace.for_model(
            model, sparsity=(0.0, 0.5, 0.9), pattern=("unstructured", "n:m")
        ),
        quant=QuantizationSpace.for_model(
            model, bits=(3, 4, 8), act_bits=(8, None), formats=FORMATS,
            granularity=GRANULARITIES, group_size=(8, 16), exclude="classifier",
        ),
    )  # fmt: skip


def bert_block_space(model, x):
    # One sparsity, pattern and bit-width per encoder block (named tie groups).
    blocks = {f"block{i}": f"*encoder.layer.{i}.*" for i in range(2)}
    return SearchSpace.merge(
        prune=PruningSpace.for_model(
            model, sparsity=(0.0, 0.5, 0.9), pattern=("unstructured", "n:m"), tie=blocks
        ),
        quant=QuantizationSpace.for_model(model, bits=(3, 4, 8), exclude="classifier", tie=blocks),
    )


CASES = {
    "mnist_cnn": (mnist_cnn, cnn_space),
    "mlp": (mlp, mlp_space),
    "bert": (bert, bert_space),
    "bert_blocks": (bert, bert_block_space),
}


def reference(metric, model, x):
    return float(metric(model, x) if metric in TRACED else metric(model))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_analytic_costs_equal_the_apply_path(case):
    if case.startswith("bert"):
        pytest.importorskip("transformers")
    build, make_space = CASES[case]
    model, x = build()
    space = make_space(model, x)
    before = snapshot(model)
    costs = {
        m: model_cost(space, model, m, sample_input=x if m in TRACED else None) for m in METRICS
    }
    assert all(cost.analytic for cost in costs.values())
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = space.sample(rng)
        applied = space.apply(model, config)
        for metric, cost in costs.items():
            expected = reference(metric, applied, x)
            assert cost(config) == pytest.approx(expected, rel=1e-12), (metric.__name__, config)
    after = snapshot(model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(
        hasattr(m, "tradeoff_quant") or hasattr(m, "tradeoff_prune") for m in model.modules()
    )


def test_tied_magnitudes_prune_exactly_as_the_apply_path():
    """Weights on a coarse grid (as in an already-rounded model) tie at every cut."""
    model, x = mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((p * 4).round() / 4)
    space = mlp_space(model, x)
    costs = {m: model_cost(space, model, m) for m in (nonzero_parameters, weight_storage_bytes)}
    rng = np.random.default_rng(1)
    for _ in range(30):
        config = space.sample(rng)
        applied = space.apply(model, config)
        for metric, cost in costs.items():
            assert cost(config) == reference(metric, applied, x)


def test_batch_returns_one_cost_per_config():
    model, x = mnist_cnn()
    space = cnn_space(model, x)
    cost = model_cost(space, model, bitops, sample_input=x)
    configs = [space.sample(i) for i in range(5)]
    values = cost.batch(configs)
    assert values.dtype == np.float64 and values.shape == (5,)
    assert values.tolist() == [cost(c) for c in configs]


def test_invalid_config_raises_the_apply_path_error():
    model, x = mnist_cnn()
    space = cnn_space(model, x)
    config = space.sample(0)
    for key, bad in (("quant.fc1.bits", 5), ("prune.fc1.sparsity", False), ("quant.fc1.bits", "8")):
        cost = model_cost(space, model, weight_storage_bytes)
        with pytest.raises(ValueError, match="config is not in this space"):
            cost({**config, key: bad})
    with pytest.raises(ValueError, match="config is not in this space"):
        cost({k: v for k, v in config.items() if k != "quant.fc2.bits"})


def test_custom_metrics_fall_back_silently(caplog):
    model, x = mnist_cnn()
    space = cnn_space(model, x)
    with caplog.at_level(logging.DEBUG, logger="tradeoff"):
        cost = model_cost(space, model, lambda m: float(len(list(m.modules()))))
    assert not cost.analytic
    assert not [r for r in caplog.records if r.name == "tradeoff"]
    assert cost(space.sample(0)) == len(list(model.modules()))


def test_builder_architecture_parts_fall_back_with_a_debug_log(caplog):
    def build(config):
        torch.manual_seed(0)
        width = config["width"]
        return nn.Sequential(nn.Linear(12, width), nn.ReLU(), nn.Linear(width, 4))

    model, x = build({"width": 16}), torch.randn(3, 12)
    builder = ArchitectureSpace.from_builder({"width": Ordinal([8, 16])}, build)
    space = SearchSpace.merge(arch=builder, quant=QuantizationSpace.for_model(model, bits=(4, 8)))
    with caplog.at_level(logging.DEBUG, logger="tradeoff"):
        cost = model_cost(space, model, macs, sample_input=x)
    assert not cost.analytic
    assert "builds models with your function" in caplog.text
    config = {"arch.width": 8, "quant.0.bits": 4, "quant.2.bits": 8}
    assert cost(config) == macs(space.apply(model, config), x) == 3 * (12 * 8 + 8 * 4)


def test_shared_weights_and_compressed_models_fall_back():
    model, x = mlp()
    space = mlp_space(model, x)
    compressed = space.apply(model, space.sample(0))
    assert not model_cost(space, compressed, parameters).analytic
    tied = MLP()
    tied.extra = nn.Linear(16, 8, bias=False)
    tied.extra.weight = tied.fc3.weight  # shared with a searched layer
    space = SearchSpace.merge(
        prune=PruningSpace.for_model(tied, sparsity=(0.0, 0.5)),
        quant=QuantizationSpace.for_model(tied, bits=(2, 8)),
    )
    cost = model_cost(space, tied, weight_storage_bytes)
    assert not cost.analytic
    config = space.sample(2)
    assert cost(config) == weight_storage_bytes(space.apply(tied, config))


def test_single_part_space_and_quantization_only():
    model, x = mnist_cnn()
    quant = QuantizationSpace.for_model(model, bits=(2, 8), act_bits=(4, 8))
    cost = model_cost(quant, model, bitops, sample_input=x)
    assert cost.analytic
    for config in (quant.sample(i) for i in range(5)):
        assert cost(config) == bitops(quant.apply(model, config), x)


# Elastic architecture parts ---------------------------------------------------------------------
# Tiny seeded transformers (random weights, nothing downloaded), a few parameters frozen: an
# elastic width keeps what it slices frozen, so the trainable count tells the two paths apart.
def tiny_bert_model():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=64,
    )  # fmt: skip
    model = transformers.BertModel(config).eval()
    model.embeddings.requires_grad_(False)
    model.encoder.layer[1].intermediate.requires_grad_(False)
    return model, torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(0))


def tiny_llama_model():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config).eval()
    model.model.layers[2].self_attn.requires_grad_(False)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    return model, torch.randint(0, 64, (2, 5), generator=torch.Generator().manual_seed(0))


def bert_elastic_space(model):
    return SearchSpace.merge(
        quant=QuantizationSpace.for_model(
            model, bits=(3, 4, 8), act_bits=(8, None), formats=("int", "fp8_e4m3"),
            granularity=GRANULARITIES, group_size=(8, 12),
        ),
        arch=ArchitectureSpace.elastic(
            model, drop_blocks=True, min_depth=2, ffn_ratios=(0.25, 0.5, 1.0),
            head_counts=(1, 3, 4),
        ),
        prune=PruningSpace.for_model(
            model, sparsity=(0.0, 0.5, 0.9), pattern=("unstructured", "n:m")
        ),
    )  # fmt: skip


def llama_elastic_space(model):
    # The tied embedding and output layer form one quantization group; the output layer is not
    # pruned (pruning a tied weight falls back: test_pruning_a_tied_weight_falls_back). A 0.3
    # FFN ratio keeps 14 neurons, which n:m (m=4) groups cannot fit: the apply path's error.
    return SearchSpace.merge(
        arch=ArchitectureSpace.elastic(
            model, drop_blocks=True, ffn_ratios=(0.3, 0.5, 1.0), head_counts=(1, 2, 4)
        ),
        prune=PruningSpace.for_model(
            model, sparsity=(0.0, 0.5, 0.9), pattern=("unstructured", "n:m"), exclude="lm_head"
        ),
        quant=QuantizationSpace.for_model(
            model, bits=(2, 4, 8), act_bits=(8, None), granularity=("channel", "group"),
            group_size=(8,), types=(nn.Linear, nn.Embedding),
        ),
    )  # fmt: skip


def tiny_gqa_model():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(config).eval()
    return model, torch.randint(0, 64, (2, 5), generator=torch.Generator().manual_seed(0))


def gqa_elastic_space(model):
    # Grouped-query attention, 3 query heads per key/value head: head counts keep whole groups,
    # so the key/value rows shrink with the query rows (by a third as many).
    return SearchSpace.merge(
        arch=ArchitectureSpace.elastic(
            model, drop_blocks=True, ffn_ratios=(0.5, 1.0), head_counts=(3, 6)
        ),
        quant=QuantizationSpace.for_model(model, bits=(4, 8), granularity=("channel",)),
    )  # fmt: skip


ELASTIC = {
    "bert": (tiny_bert_model, bert_elastic_space),
    "llama": (tiny_llama_model, llama_elastic_space),
    "llama-gqa": (tiny_gqa_model, gqa_elastic_space),
}
_ELASTIC_BUILT = {}


def elastic_case(name):
    """(model, sample input, space, {metric: model_cost}), built once per session."""
    if name not in _ELASTIC_BUILT:
        build, make_space = ELASTIC[name]
        model, x = build()
        space = make_space(model)
        costs = {m: model_cost(space, model, m, sample_input=x if m in TRACED else None)
                 for m in METRICS}  # fmt: skip
        _ELASTIC_BUILT[name] = model, x, space, costs
    return _ELASTIC_BUILT[name]


def configs_of(space):
    return st.fixed_dictionaries({n: st.sampled_from(p.values) for n, p in space.items()})


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ELASTIC))
def test_elastic_costs_equal_the_apply_path(case):
    model, x, space, costs = elastic_case(case)
    assert all(cost.analytic for cost in costs.values())
    before = snapshot(model)
    blocks = [k for k in space if k.endswith(".keep")]

    @settings(max_examples=25, deadline=None, derandomize=True, database=None)
    @given(config=configs_of(space))
    @example(config={k: space[k].values[0] for k in space})  # every block dropped: repaired
    @example(config={k: space[k].values[-1] for k in space})  # the full model, 8 bits
    @example(config={**{k: space[k].values[-1] for k in space}, blocks[1]: False})
    def check(config):
        try:
            applied = space.apply(model, config)
        except ValueError as e:  # n:m groups that do not fit a sliced width
            for cost in costs.values():
                with pytest.raises(ValueError, match="n:m"):
                    cost(config)
            assert "n:m" in str(e)
            return
        for metric, cost in costs.items():
            assert cost(config) == reference(metric, applied, x), (metric.__name__, config)

    check()
    after = snapshot(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_elastic_costs_follow_dropped_blocks_and_widths():
    pytest.importorskip("transformers")
    model, _, space, costs = elastic_case("bert")
    full = {k: space[k].values[-1] for k in space}
    block = "arch.encoder.layer.1"
    dropped = {**full, f"{block}.keep": False}
    layer = model.encoder.layer[1]
    assert costs[parameters](full) - costs[parameters](dropped) == sum(
        p.numel() for p in layer.parameters()
    )
    # A quarter of the FFN (16 of 64 neurons): intermediate rows and bias, output columns.
    narrow = {**full, f"{block}.ffn": 0.25}
    assert costs[parameters](full) - costs[parameters](narrow) == 48 * (32 + 1) + 32 * 48
    assert costs[macs](full) - costs[macs](narrow) == 14 * (48 * 32 + 32 * 48)  # 14 tokens
    # A dropped block's quantization and pruning do not matter; a kept one's do.
    inside = ("quant.encoder.layer.1.", "prune.encoder.layer.1.")
    low = {k: space[k].values[0] for k in space if k.startswith(inside)}
    for metric in (nonzero_parameters, weight_storage_bytes, bitops):
        assert costs[metric](dropped) == costs[metric]({**dropped, **low})
        assert costs[metric](full) != costs[metric]({**full, **low})


def test_elastic_config_errors_are_the_apply_path_errors():
    pytest.importorskip("transformers")
    _, _, space, costs = elastic_case("bert")
    config = {k: space[k].values[-1] for k in space}
    for key, bad in (("arch.encoder.layer.0.keep", 1), ("arch.encoder.layer.0.ffn", True),
                     ("arch.encoder.layer.0.heads", 2)):  # fmt: skip
        for cost in costs.values():
            with pytest.raises(ValueError, match="config is not in this space"):
                cost({**config, key: bad})


def test_pruning_a_tied_weight_falls_back():
    # Unstructured pruning replaces the output layer's weight by a pruned copy, untying it
    # from the embedding; the tables do not model that, so such spaces take the apply path.
    model, _ = tiny_llama_model()
    space = SearchSpace.merge(
        arch=ArchitectureSpace.elastic(model, drop_blocks=True),
        prune=PruningSpace.for_model(model, sparsity=(0.0, 0.5)),
    )
    cost = model_cost(space, model, parameters)
    assert not cost.analytic
    config = {k: space[k].values[-1] for k in space}
    assert cost(config) == parameters(space.apply(model, config))


def test_asymmetric_levels_count_their_zero_points_and_nonzeros_fall_back(tmp_path):
    # Zero-points are shapes (analytic); asymmetric levels' values come from the quantizer.
    model, _ = mlp()
    space = SearchSpace.merge(
        prune=PruningSpace.for_model(model, sparsity=(0.0, 0.5), pattern="n:m"),
        quant=QuantizationSpace.for_model(
            model, bits=(3, 8), granularity=("channel", "group"), group_size=(4,),
            symmetric=False, bank=tmp_path,
        ),
    )  # fmt: skip
    storage = model_cost(space, model, weight_storage_bytes)
    nonzeros = model_cost(space, model, nonzero_parameters)
    assert storage.analytic and not nonzeros.analytic
    for config in (space.sample(i) for i in range(6)):
        applied = space.apply(model, config)
        assert storage(config) == weight_storage_bytes(applied)
        assert nonzeros(config) == nonzero_parameters(applied)
