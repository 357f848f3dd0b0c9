import copy
import os

import optuna
import pytest
import torch
from torch import nn

from tradeoff.spaces import Float, Int, Ordinal, SearchSpace
from tradeoff.spaces._arch import ArchitectureSpace
from tradeoff.spaces._elastic import SkipBlock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from ..conftest import tiny_bert  # noqa: E402


@pytest.fixture(scope="module")
def bert():
    return tiny_bert(3)


@pytest.fixture
def tokens():
    return torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(1))


def test_builder_space_builds_from_the_config():
    space = ArchitectureSpace.from_builder(
        {"width": Int(4, 16, step=4), "depth": Ordinal([1, 2, 3])},
        lambda c: nn.Sequential(*[nn.Linear(c["width"], c["width"]) for _ in range(c["depth"])]),
    )
    model = space.apply(None, {"width": 8, "depth": 2})
    assert [m.in_features for m in model] == [8, 8]
    with pytest.raises(ValueError, match="not in this space"):
        space.apply(None, {"width": 8})


def test_elastic_names_parameters_after_blocks(bert):
    space = ArchitectureSpace.elastic(
        bert, drop_blocks=True, ffn_ratios=(0.5, 1.0), head_counts=(2, 4)
    )
    assert "bert.encoder.layer.0.keep" in space
    assert "bert.encoder.layer.2.ffn" in space
    assert "bert.encoder.layer.1.heads" in space
    assert len(space) == 9


def test_ffn_slicing_and_head_dropping_shrink_the_model_and_it_still_runs(bert, tokens):
    space = ArchitectureSpace.elastic(bert, ffn_ratios=(0.25, 0.5, 1.0), head_counts=(1, 2, 4))
    before = copy.deepcopy(bert.state_dict())
    config = {f"bert.encoder.layer.{i}.ffn": 0.25 for i in range(3)}
    config.update({f"bert.encoder.layer.{i}.heads": 2 for i in range(3)})
    small = space.apply(bert, config)
    layer = small.bert.encoder.layer[0]
    assert layer.intermediate.dense.out_features == 16
    assert layer.output.dense.in_features == 16
    assert layer.attention.self.query.out_features == 16  # 2 heads x 8
    assert layer.attention.output.dense.in_features == 16
    assert small(tokens).logits.shape == bert(tokens).logits.shape
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small < sum(p.numel() for p in bert.parameters())
    # The original is untouched.
    assert all(torch.equal(before[k], v) for k, v in bert.state_dict().items())


def test_full_width_config_reproduces_the_model(bert, tokens):
    space = ArchitectureSpace.elastic(bert, ffn_ratios=(0.5, 1.0), head_counts=(2, 4))
    config = {k: space[k].values[-1] for k in space}
    same = space.apply(bert, config)
    torch.testing.assert_close(same(tokens).logits, bert(tokens).logits)


def test_ffn_slicing_keeps_the_most_important_neurons(tokens):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = transformers.BertModel(config).eval()
    with torch.no_grad():  # neurons 0..7 dominate; the rest are nearly zero
        for layer in model.encoder.layer:
            layer.intermediate.dense.weight[8:] *= 1e-3
            layer.output.dense.weight[:, 8:] *= 1e-3
    space = ArchitectureSpace.elastic(model, ffn_ratios=(0.25, 1.0))
    small = space.apply(model, {k: 0.25 for k in space})
    kept = small.encoder.layer[0].intermediate.dense.weight
    torch.testing.assert_close(kept, model.encoder.layer[0].intermediate.dense.weight[:8])
    out_small = small(tokens).last_hidden_state
    out_full = model(tokens).last_hidden_state
    assert (out_small - out_full).abs().max() < 0.05


def test_dropping_blocks_keeps_names_stable_and_respects_min_depth(bert, tokens):
    space = ArchitectureSpace.elastic(bert, drop_blocks=True, min_depth=2)
    config = {f"bert.encoder.layer.{i}.keep": False for i in range(3)}
    small = space.apply(bert, config)
    kinds = [type(b) for b in small.bert.encoder.layer]
    assert kinds.count(SkipBlock) == 1 and len(kinds) == 3  # repaired to min_depth=2
    assert small(tokens).logits.shape == (2, 2)
    config["bert.encoder.layer.2.keep"] = True
    config["bert.encoder.layer.1.keep"] = True
    one_dropped = space.apply(bert, config)
    assert isinstance(one_dropped.bert.encoder.layer[0], SkipBlock)
    assert one_dropped.get_submodule("bert.encoder.layer.2.intermediate.dense") is not None


def test_random_configs_always_apply(bert, tokens):
    space = ArchitectureSpace.elastic(
        bert, drop_blocks=True, ffn_ratios=(0.25, 0.5, 1.0), head_counts=(1, 2, 3, 4)
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        trial = study.ask(space.distributions())
        model = space.apply(bert, space.decode(trial.params))
        assert model(tokens).logits.shape == (2, 2)
        study.tell(trial, 0.0)


def test_merged_with_a_plain_space_applies_only_the_model_part(bert):
    arch = ArchitectureSpace.elastic(bert, ffn_ratios=(0.5, 1.0))
    merged = SearchSpace.merge(arch=arch, train=SearchSpace({"lr": Float(1e-4, 1e-2, log=True)}))
    config = {f"arch.{k}": 0.5 for k in arch} | {"train.lr": 1e-3}
    small = merged.apply(bert, config)
    assert small.bert.encoder.layer[1].intermediate.dense.out_features == 32


def test_elastic_bad_input(bert):
    with pytest.raises(ValueError, match="at least one of"):
        ArchitectureSpace.elastic(bert)
    with pytest.raises(ValueError, match=r"ffn_ratios must be in \(0, 1\]"):
        ArchitectureSpace.elastic(bert, ffn_ratios=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"head_counts must be integers in \[1, 4\]"):
        ArchitectureSpace.elastic(bert, head_counts=(2, 8))
    with pytest.raises(ValueError, match="min_depth"):
        ArchitectureSpace.elastic(bert, drop_blocks=True, min_depth=5)
    with pytest.raises(ValueError, match="No transformer blocks found"):
        ArchitectureSpace.elastic(nn.Sequential(nn.Linear(4, 4)), drop_blocks=True)
    with pytest.raises(ValueError, match=r"no module 'encoder\.blocks'"):
        ArchitectureSpace.elastic(bert, drop_blocks=True, blocks="encoder.blocks")
    with pytest.raises(TypeError, match="build must be callable"):
        ArchitectureSpace.from_builder({"w": Int(1, 4)}, build="resnet")


def tiny_llama(kv_heads):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=kv_heads,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config).eval()


def test_grouped_query_attention_finds_the_ffn_and_drops_whole_head_groups():
    # k_proj/v_proj (32 -> 16) are as many as gate_proj/up_proj (32 -> 48): the FFN is still
    # found, not taken for the key/value projections.
    model = tiny_llama(kv_heads=2)
    space = ArchitectureSpace.elastic(model, ffn_ratios=(0.5, 1.0))
    small = space.apply(model, {k: 0.5 for k in space})
    mlp = small.model.layers[0].mlp
    assert (mlp.gate_proj.out_features, mlp.up_proj.out_features) == (24, 24)
    assert mlp.down_proj.in_features == 24
    assert small.model.layers[0].self_attn.k_proj.out_features == 16
    assert small(torch.randint(0, 64, (1, 5))).logits.shape == (1, 5, 64)
    # Two query heads per key/value head: a head count keeps whole groups.
    with pytest.raises(ValueError, match=r"grouped-query attention.*\[2, 4\]; got \[1, 3\]"):
        ArchitectureSpace.elastic(model, head_counts=(1, 2, 3, 4))
    heads = ArchitectureSpace.elastic(model, head_counts=(2, 4))
    half = heads.apply(model, {k: 2 for k in heads})
    attn, full = half.model.layers[1].self_attn, model.model.layers[1].self_attn
    assert (attn.q_proj.out_features, attn.k_proj.out_features) == (16, 8)  # head_dim 8
    assert (attn.v_proj.out_features, attn.o_proj.in_features) == (8, 16)
    # The group kept is the one whose query heads' output columns weigh most, and its key and
    # value rows go with its query rows.
    norms = full.o_proj.weight.reshape(32, 4, 8).pow(2).sum((0, 2)).reshape(2, 2).sum(1)
    g = int(norms.argmax())
    assert torch.equal(attn.q_proj.weight, full.q_proj.weight[g * 16 : g * 16 + 16])
    assert torch.equal(attn.k_proj.weight, full.k_proj.weight[g * 8 : g * 8 + 8])
    assert torch.equal(attn.o_proj.weight, full.o_proj.weight[:, g * 16 : g * 16 + 16])
    ids = torch.randint(0, 64, (2, 5))
    with torch.no_grad():  # the same as masking each layer's dropped group's output columns
        masked = copy.deepcopy(model)
        for layer in masked.model.layers:
            o = layer.self_attn.o_proj.weight
            keep = int(o.reshape(32, 4, 8).pow(2).sum((0, 2)).reshape(2, 2).sum(1).argmax())
            o[:, [h for h in range(32) if not keep * 16 <= h < keep * 16 + 16]] = 0
        assert torch.allclose(half(ids).logits, masked(ids).logits, atol=1e-5)


def test_slicing_keeps_frozen_weights_frozen(bert):
    model = copy.deepcopy(bert)
    model.bert.encoder.layer[0].intermediate.requires_grad_(False)
    space = ArchitectureSpace.elastic(model, ffn_ratios=(0.5, 1.0), head_counts=(2, 4))
    small = space.apply(model, {k: space[k].values[0] for k in space})
    layer = small.bert.encoder.layer[0]
    assert not any(p.requires_grad for p in layer.intermediate.parameters())
    assert layer.output.dense.weight.requires_grad and layer.attention.self.query.bias.requires_grad
