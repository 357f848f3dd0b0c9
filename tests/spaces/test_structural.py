"""Channel pruning through torch-pruning's DependencyGraph: residual streams, BERT heads and
FFNs, Llama MLPs and heads; exactness against masked weights, costs, and refusals."""

import copy
import os
import pickle

import pytest
import torch
from torch import nn

from tradeoff.objectives import model_cost, parameters, weight_storage_bytes
from tradeoff.spaces._model import PRUNE_ATTR, PruneInfo
from tradeoff.spaces._prune import PruningSpace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
IMAGE = torch.zeros(1, 3, 8, 8)


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + x)


class TinyResNet(nn.Module):
    """stem -> two residual blocks -> pool -> fc: stem, block1.conv2 and block2.conv2 write the
    residual stream's 8 channels."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.block1, self.block2 = ResBlock(8), ResBlock(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        for m in self.modules():  # non-trivial BatchNorm statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(torch.relu(self.bn(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


STREAM = ("stem", "block1.conv2", "block2.conv2")  # with their BatchNorms: bn, block*.bn2


def resnet_space(model: nn.Module, **kw) -> PruningSpace:
    return PruningSpace.for_model(model, pattern="channel", sample_input=IMAGE, **kw)


def kill(model: TinyResNet, channels: list[int]) -> None:
    """Make residual-stream ``channels`` exactly zero everywhere: zero rows writing them, zero
    BatchNorm scale and shift after each writer."""
    with torch.no_grad():
        for conv, bn in (
            ("stem", "bn"),
            ("block1.conv2", "block1.bn2"),
            ("block2.conv2", "block2.bn2"),
        ):
            model.get_submodule(conv).weight[channels] = 0
            model.get_submodule(bn).weight[channels] = 0
            model.get_submodule(bn).bias[channels] = 0
            model.get_submodule(bn).running_mean[channels] = 0


# Residual CNN -----------------------------------------------------------------------------------
def test_residual_stream_is_one_parameter_and_shrinks_every_coupled_module():
    model = TinyResNet()
    space = resnet_space(model)
    assert set(space) == {"stem.sparsity", "block1.conv1.sparsity", "block2.conv1.sparsity"}
    assert space.ties == {name: "stem" for name in STREAM}
    pruned = space.apply(
        model, {"stem.sparsity": 0.5, "block1.conv1.sparsity": 0.25, "block2.conv1.sparsity": 0.0}
    )
    for name in STREAM:
        assert pruned.get_submodule(name).out_channels == 4
        assert getattr(pruned.get_submodule(name), PRUNE_ATTR) == PruneInfo(
            "channel", 0.5, original_out=8
        )
    assert [pruned.get_submodule(n).num_features for n in ("bn", "block1.bn2", "block2.bn2")] == [
        4
    ] * 3
    assert (
        pruned.block1.conv1.in_channels
        == pruned.block2.conv1.in_channels
        == pruned.fc.in_features
        == 4
    )
    assert (pruned.block1.conv1.out_channels, pruned.block1.bn1.num_features) == (6, 6)
    assert pruned.block1.conv2.in_channels == 6 and pruned.block2.conv1.out_channels == 8
    x = torch.randn(2, 3, 8, 8)
    assert pruned(x).shape == model(x).shape == (2, 5)
    assert not hasattr(model.stem, PRUNE_ATTR) and model.stem.out_channels == 8  # untouched


def test_pruning_dead_residual_channels_keeps_outputs_exactly():
    model = TinyResNet()
    kill(model, [2, 5])
    space = resnet_space(model, sparsity=(0.0, 0.25))
    pruned = space.apply(
        model, {"stem.sparsity": 0.25, "block1.conv1.sparsity": 0.0, "block2.conv1.sparsity": 0.0}
    )
    assert pruned.stem.out_channels == 6
    x = torch.randn(4, 3, 8, 8)
    torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-6)


def test_residual_ranking_is_the_l2_norm_of_all_writers():
    model = TinyResNet()
    with torch.no_grad():  # channel 1: small in stem, large in block2.conv2 -> kept
        model.stem.weight[1] *= 1e-3
        model.block2.conv2.weight[1] *= 10
        model.stem.weight[6] *= 1e-3  # channel 6: small in the stem only -> removed
    rows = torch.cat([model.get_submodule(n).weight.flatten(1) for n in STREAM], dim=1)
    weakest = int(rows.norm(dim=1).argmin())
    pruned = resnet_space(model, sparsity=(0.0, 0.125)).apply(
        model, {"stem.sparsity": 0.125, "block1.conv1.sparsity": 0.0, "block2.conv1.sparsity": 0.0}
    )
    kept = [c for c in range(8) if c != weakest]
    assert weakest == 6
    torch.testing.assert_close(pruned.block2.conv2.weight, model.block2.conv2.weight[kept])
    torch.testing.assert_close(pruned.fc.weight, model.fc.weight[:, kept])


def test_user_tie_joins_the_residual_group_and_splitting_it_is_an_error():
    model = TinyResNet()
    space = resnet_space(model, tie={"block1": "block1.*"})
    assert set(space) == {"block1.sparsity", "block2.conv1.sparsity"}
    assert {space.prefix(n) for n in (*STREAM, "block1.conv1")} == {"block1"}
    with pytest.raises(ValueError, match=r"write the same channels.*tie them together"):
        resnet_space(model, tie=[["stem"], ["block1.conv2"]])


def test_residual_costs_match_the_pruned_model():
    model = TinyResNet()
    space = resnet_space(model, sparsity=(0.0, 0.5))
    config = {"stem.sparsity": 0.5, "block1.conv1.sparsity": 0.5, "block2.conv1.sparsity": 0.0}
    pruned = space.apply(model, config)
    for metric in (parameters, weight_storage_bytes):
        cost = model_cost(space, model, metric)
        assert not cost.analytic  # a residual group is costed on the applied model
        assert cost(config) == metric(pruned) < metric(model)


def test_space_pickles_and_applies_the_same():
    model = TinyResNet()
    space = resnet_space(model)
    config = {"stem.sparsity": 0.75, "block1.conv1.sparsity": 0.5, "block2.conv1.sparsity": 0.25}
    again = pickle.loads(pickle.dumps(space)).apply(model, config)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(again(x), space.apply(model, config)(x), rtol=0, atol=0)


def test_high_sparsity_keeps_one_channel_and_one_is_not_a_level():
    model = TinyResNet()
    pruned = resnet_space(model, sparsity=(0.0, 0.99)).apply(
        model, {"stem.sparsity": 0.99, "block1.conv1.sparsity": 0.99, "block2.conv1.sparsity": 0.0}
    )
    assert pruned.stem.out_channels == pruned.block1.conv1.out_channels == 1
    assert pruned(IMAGE).shape == (1, 5)
    with pytest.raises(
        ValueError, match=r"sparsity 1.0 is outside \[0, 1\).*at least one must stay"
    ):
        resnet_space(model, sparsity=(0.0, 1.0))


def test_chain_groups_stay_on_the_analytic_path():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4)
    )
    space = PruningSpace.for_model(model.eval(), pattern="channel", sample_input=IMAGE)
    assert space.plans["0"].group is not None and space.plans["0"].group.features_per_channel == 36
    cost = model_cost(space, model, parameters)
    assert cost.analytic and cost({"0.sparsity": 0.5}) == parameters(
        space.apply(model, {"0.sparsity": 0.5})
    )


# Refusals -----------------------------------------------------------------------------------
class Scaled(nn.Module):
    """conv -> x * a bare per-channel parameter -> conv -> mean."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1)
        self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x) * self.scale).mean((2, 3))


def test_layers_torch_pruning_cannot_group_are_named_with_the_fix():
    with pytest.raises(
        ValueError,
        match=r"'a' \(channel: its channels reach the bare parameter 'scale'.*exclude=\['a'\]",
    ):
        PruningSpace.for_model(Scaled(), pattern="channel", include="a", sample_input=IMAGE)
    grouped = nn.Sequential(nn.Conv2d(4, 4, 1, groups=2), nn.ReLU(), nn.Conv2d(4, 2, 1))
    with pytest.raises(
        ValueError,
        match=r"'0' \(channel: it is a grouped \(or depthwise\) convolution.*exclude=\['0'\]",
    ):
        PruningSpace.for_model(
            grouped, pattern="channel", include="0", sample_input=torch.zeros(1, 4, 2, 2)
        )
    lstm = nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 2))
    with pytest.raises(ValueError, match=r"'0' \(channel: its channels run through '1' \(LSTM\)"):
        PruningSpace.for_model(lstm, pattern="channel", include="0", sample_input=torch.zeros(5, 3))


def test_channel_pruning_on_a_given_device_leaves_the_model_alone():
    model = TinyResNet().train()  # tracing runs a copy in eval mode: BatchNorm stats stay
    before = copy.deepcopy(model.state_dict())
    space = resnet_space(model, device="cpu")
    assert set(space) == {"stem.sparsity", "block1.conv1.sparsity", "block2.conv1.sparsity"}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())


# Transformers ---------------------------------------------------------------------------------
def tiny_bert():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=16,
    )  # fmt: skip
    return transformers.BertModel(config).eval()


def tiny_llama(kv_heads: int = 4):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=kv_heads, head_dim=8, intermediate_size=48, max_position_embeddings=16,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


def token_ids(seed: int = 1, batch: int = 2) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, 50, (batch, 7), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def bert_space(model, sparsity=(0.0, 0.25, 0.5)) -> PruningSpace:
    return PruningSpace.for_model(model, sparsity, pattern="channel", sample_input=token_ids())


def layer_config(space: PruningSpace, **by_kind: float) -> dict[str, float]:
    return {k: next(v for kind, v in by_kind.items() if kind in k) for k in space}


def test_bert_offers_heads_and_ffn_width_per_block():
    model = tiny_bert()
    space = bert_space(model)
    blocks = [f"encoder.layer.{i}" for i in range(2)]
    heads = [f"{b}.attention.self.query" for b in blocks]
    ffn = [f"{b}.intermediate.dense" for b in blocks]
    assert set(space) == {f"{n}.sparsity" for n in heads + ffn}  # hidden width reaches the output
    assert space.ties == {
        f"{b}.attention.self.{p}": f"{b}.attention.self.query"
        for b in blocks
        for p in ("query", "key", "value")
    }


def test_bert_heads_go_whole_and_forward_keeps_shapes():
    model = tiny_bert()
    space = bert_space(model)
    pruned = space.apply(model, layer_config(space, query=0.5, intermediate=0.0))
    attention = pruned.encoder.layer[0].attention
    for p in ("query", "key", "value"):
        assert getattr(attention.self, p).out_features == 16
        assert getattr(getattr(attention.self, p), PRUNE_ATTR) == PruneInfo(
            "channel", 0.5, original_out=32
        )
    assert attention.output.dense.in_features == 16
    assert (attention.self.num_attention_heads, attention.self.all_head_size) == (2, 16)
    assert pruned.config.num_attention_heads == 4  # BERT's config derives head size from it
    ids = token_ids(seed=2, batch=3)
    assert pruned(**ids).last_hidden_state.shape == model(**ids).last_hidden_state.shape


def test_bert_silent_heads_are_removed_exactly():
    model = tiny_bert()
    with torch.no_grad():  # heads 1 and 3 of block 0 read nothing: their context is exactly 0
        for p in ("query", "key", "value"):
            linear = getattr(model.encoder.layer[0].attention.self, p)
            for h in (1, 3):
                linear.weight[h * 8 : (h + 1) * 8] = 0
                linear.bias[h * 8 : (h + 1) * 8] = 0
    space = bert_space(model)
    config = layer_config(space, query=0.0, intermediate=0.0)
    pruned = space.apply(model, {**config, "encoder.layer.0.attention.self.query.sparsity": 0.5})
    kept = [*range(0, 8), *range(16, 24)]
    torch.testing.assert_close(
        pruned.encoder.layer[0].attention.self.value.weight,
        model.encoder.layer[0].attention.self.value.weight[kept],
    )
    ids = token_ids(seed=3)
    torch.testing.assert_close(
        pruned(**ids).last_hidden_state, model(**ids).last_hidden_state, rtol=0, atol=1e-5
    )


def test_removing_one_ffn_unit_equals_zeroing_its_row_and_column():
    model = tiny_bert()
    space = bert_space(model, sparsity=(0.0, 1 / 64))
    pruned = space.apply(model, layer_config(space, query=0.0, intermediate=1 / 64))
    masked = copy.deepcopy(model)
    for i in range(2):
        up, down = masked.encoder.layer[i].intermediate.dense, masked.encoder.layer[i].output.dense
        j = int(up.weight.norm(dim=1).argmin())  # the weakest unit goes
        with torch.no_grad():
            up.weight[j], up.bias[j], down.weight[:, j] = 0, 0, 0
        assert pruned.encoder.layer[i].intermediate.dense.out_features == 63
        assert pruned.encoder.layer[i].output.dense.in_features == 63
    assert pruned.config.intermediate_size == 63 and model.config.intermediate_size == 64
    ids = token_ids(seed=4)
    torch.testing.assert_close(
        pruned(**ids).last_hidden_state, masked(**ids).last_hidden_state, rtol=0, atol=1e-5
    )


def test_config_keeps_its_ffn_width_when_blocks_disagree():
    model = tiny_bert()
    space = bert_space(model)
    config = layer_config(space, query=0.0, intermediate=0.0)
    pruned = space.apply(model, {**config, "encoder.layer.1.intermediate.dense.sparsity": 0.5})
    assert pruned.encoder.layer[1].intermediate.dense.out_features == 32
    assert pruned.config.intermediate_size == 64
    assert (
        bert_space(model).plans["encoder.layer.0.intermediate.dense"].group is not None
    )  # a chain


def test_llama_mlp_and_heads_shrink_and_the_config_follows():
    model = tiny_llama()
    ids = {"input_ids": token_ids()["input_ids"]}
    space = PruningSpace.for_model(model, (0.0, 0.5), pattern="channel", sample_input=ids)
    blocks = [f"model.layers.{i}" for i in range(2)]
    assert set(space) == {
        f"{b}.{n}.sparsity" for b in blocks for n in ("self_attn.q_proj", "mlp.gate_proj")
    }
    assert {space.prefix(f"{b}.mlp.up_proj") for b in blocks} == {
        f"{b}.mlp.gate_proj" for b in blocks
    }
    pruned = space.apply(model, {k: 0.5 for k in space})
    layer = pruned.model.layers[0]
    assert (
        layer.mlp.gate_proj.out_features,
        layer.mlp.up_proj.out_features,
        layer.mlp.down_proj.in_features,
    ) == (24, 24, 24)
    assert layer.mlp.intermediate_size == pruned.config.intermediate_size == 24
    assert (
        layer.self_attn.q_proj.out_features,
        layer.self_attn.k_proj.out_features,
        layer.self_attn.o_proj.in_features,
    ) == (16, 16, 16)
    assert (pruned.config.num_attention_heads, pruned.config.num_key_value_heads) == (2, 2)
    assert pruned(**ids).logits.shape == model(**ids).logits.shape


def test_llama_dead_mlp_units_are_removed_exactly():
    model = tiny_llama()
    with torch.no_grad():
        for layer in model.model.layers:  # silu(0) * 0 = 0: these units add nothing
            layer.mlp.gate_proj.weight[::2] = 0
            layer.mlp.up_proj.weight[::2] = 0
    ids = {"input_ids": token_ids()["input_ids"]}
    space = PruningSpace.for_model(
        model, (0.0, 0.5), pattern="channel", include=["*gate_proj", "*up_proj"], sample_input=ids
    )
    pruned = space.apply(model, {k: 0.5 for k in space})
    torch.testing.assert_close(pruned(**ids).logits, model(**ids).logits, rtol=0, atol=1e-5)


def test_grouped_query_attention_heads_are_refused_with_the_reason():
    model = tiny_llama(kv_heads=2)
    ids = {"input_ids": token_ids()["input_ids"]}
    space = PruningSpace.for_model(model, (0.0, 0.5), pattern="channel", sample_input=ids)
    assert {k.rpartition(".")[0].rpartition(".")[2] for k in space} == {"gate_proj"}
    with pytest.raises(
        ValueError,
        match=r"'model.layers.0.self_attn.q_proj' \(channel: its channels run into grouped-query",
    ):
        PruningSpace.for_model(
            model, pattern="channel", include="*.0.self_attn.q_proj", sample_input=ids
        )
