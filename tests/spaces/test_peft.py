import copy
import os

import optuna
import pytest
import torch
from torch import nn

os.environ["HF_HUB_OFFLINE"] = "1"
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from tradeoff.spaces import SearchSpace  # noqa: E402
from tradeoff.spaces._peft import PEFTSpace  # noqa: E402

N_LAYERS, HIDDEN, FFN = 3, 32, 64


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=HIDDEN,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=2,
        intermediate_size=FFN,
    )
    return transformers.BertForSequenceClassification(config).eval()


@pytest.fixture
def tokens():
    return torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(1))


def config_for(space, **values):
    """The Config with every target off and the lowest level elsewhere, updated by ``values``."""
    config = {name: p.values[0] if hasattr(p, "values") else p.low for name, p in space.items()}
    config.update(values)
    assert space.contains(config), config
    return config


def lora_counts(model):
    """Trainable LoRA parameters per adapted module name (modules_to_save excluded)."""
    counts = {}
    for name, p in model.named_parameters():
        if p.requires_grad and ".lora_" in name:
            module = name.split(".lora_")[0].removeprefix("base_model.model.")
            counts[module] = counts.get(module, 0) + p.numel()
    return counts


def expected_lora(model, modules, rank):
    return {
        n: rank * (m.in_features + m.out_features)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and n in modules
    }


def names_ending(model, *suffixes, layers=range(N_LAYERS)):
    return {
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear)
        and n.endswith(suffixes)
        and any(n.startswith(f"bert.encoder.layer.{i}.") for i in layers)
    }


def test_default_parameters_leave_the_classifier_out(bert):
    space = PEFTSpace.for_model(bert)
    assert PEFTSpace.stage == "peft"
    assert list(space) == [
        "method",
        "rank",
        "dropout",
        "target.query",
        "target.key",
        "target.value",
        "target.dense",
    ]
    assert space["method"].values == ("lora", "dora", "ia3")
    assert space["rank"].values == (4, 8, 16)


def test_lora_trainable_parameters_are_r_times_d_in_plus_d_out(bert):
    space = PEFTSpace.for_model(bert, methods=("lora",), ranks=(4, 8))
    config = config_for(space, rank=8, **{"target.query": True, "target.value": True})
    model = space.apply(bert, config)
    adapted = names_ending(bert, "query", "value")
    assert lora_counts(model) == expected_lora(bert, adapted, 8)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_trainable == 8 * 2 * 2 * HIDDEN * N_LAYERS


def test_modules_to_save_keep_the_head_trainable_and_out_of_the_lora_count(bert, tokens):
    space = PEFTSpace.for_model(bert, methods=("lora",), modules_to_save=["classifier"])
    config = config_for(space, rank=16, **{"target.dense": True})
    model = space.apply(bert, config)
    adapted = names_ending(bert, "dense", layers=range(N_LAYERS)) | {"bert.pooler.dense"}
    assert lora_counts(model) == expected_lora(bert, adapted, 16)
    head = [n for n, p in model.named_parameters() if p.requires_grad and "classifier" in n]
    assert head and all("modules_to_save" in n for n in head)
    assert model(tokens).logits.shape == (2, 2)


def test_seq_cls_task_type_gives_a_classification_peft_model(bert, tokens):
    space = PEFTSpace.for_model(bert, methods=("lora",), task_type="SEQ_CLS")
    model = space.apply(bert, config_for(space))
    assert isinstance(model, peft.PeftModelForSequenceClassification)
    assert any(p.requires_grad for n, p in model.named_parameters() if "classifier" in n)
    assert model(tokens).logits.shape == (2, 2)


def test_per_layer_ranks_go_through_rank_pattern(bert):
    space = PEFTSpace.for_model(bert, methods=("lora",), ranks=(2, 4, 8), per_layer_rank=True)
    assert "rank" not in space and "layer.2.rank" in space
    ranks = {0: 2, 1: 8, 2: 4}
    config = config_for(space, **{f"layer.{i}.rank": r for i, r in ranks.items()})
    config["target.dense"] = True
    cfg = space.peft_config(config)
    assert cfg.r == 8 and len(cfg.rank_pattern) == N_LAYERS
    assert cfg.alpha_pattern == {k: 2 * r for k, r in cfg.rank_pattern.items()}
    counts = lora_counts(space.apply(bert, config))
    expected = {}
    for i, r in ranks.items():
        expected |= expected_lora(bert, names_ending(bert, "dense", layers=[i]), r)
    assert counts == expected  # the pooler's dense is outside the blocks: not adapted


def test_dora_and_ia3_apply_and_run(bert, tokens):
    space = PEFTSpace.for_model(bert, ranks=(4, 8))
    on = {"target.key": True, "target.value": True, "target.dense": True}
    dora = space.apply(bert, config_for(space, method="dora", **on))
    magnitudes = [n for n, _ in dora.named_parameters() if "lora_magnitude_vector" in n]
    assert len(magnitudes) == N_LAYERS * 5 + 1  # key, value, 3 dense per block + pooler
    assert dora(tokens).logits.shape == (2, 2)

    ia3 = space.apply(bert, config_for(space, method="ia3", **on))
    assert ia3(tokens).logits.shape == (2, 2)
    sizes = {n: p.numel() for n, p in ia3.named_parameters() if p.requires_grad}
    # "dense" has a wide -> narrow layer (output.dense), so it is a feed-forward target: IA3
    # scales the input of every dense layer, and the output of key and value.
    per_block = HIDDEN + HIDDEN + HIDDEN + HIDDEN + FFN
    assert sum(sizes.values()) == N_LAYERS * per_block + HIDDEN
    assert space.peft_config(config_for(space, method="ia3", **on)).feedforward_modules == {"dense"}


def test_peft_config_is_the_config_a_user_would_write(bert):
    space = PEFTSpace.for_model(
        bert, ranks=(4, 8), alpha=(8, 16), dropouts=(0.0, 0.1), layers="last"
    )
    config = config_for(
        space, method="dora", rank=8, alpha=16, dropout=0.1, last_layers=2, **{"target.key": True}
    )
    by_hand = peft.LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        use_dora=True,
        target_modules=["key"],
        layers_to_transform=[1, 2],
        layers_pattern="bert.encoder.layer",
    )
    assert space.peft_config(config) == by_hand
    ia3 = space.peft_config({**config, "method": "ia3"})
    # IA3Config has no layers_to_transform: the modules of the chosen blocks are named.
    keys = [f"bert.encoder.layer.{i}.attention.self.key" for i in (1, 2)]
    assert ia3 == peft.IA3Config(target_modules=keys, feedforward_modules=[])


def test_alpha_rules(bert):
    fixed = {"methods": ("lora",), "ranks": (4,), "dropouts": (0.0,), "targets": ["query"]}
    config = {"method": "lora", "rank": 4, "dropout": 0.0, "target.query": True}
    assert PEFTSpace.for_model(bert, **fixed).peft_config(config).lora_alpha == 8  # 2 * r
    scaled = PEFTSpace.for_model(bert, **fixed, alpha=1.5)
    assert "alpha" not in scaled
    assert scaled.peft_config(config).lora_alpha == 6
    searched = PEFTSpace.for_model(bert, **fixed, alpha=(4, 32), per_layer_rank=True)
    assert searched["alpha"].values == (4, 32)
    per_layer = config_for(searched, alpha=32, **{"layer.1.rank": 4, "target.query": True})
    cfg = searched.peft_config(per_layer)
    assert cfg.lora_alpha == 32 and cfg.alpha_pattern == {}  # one searched alpha for all blocks
    assert cfg.r == 4 and set(cfg.rank_pattern.values()) == {4}


def test_all_targets_off_adapts_the_first_target(bert):
    space = PEFTSpace.for_model(bert, methods=("lora",))
    assert space.peft_config(config_for(space)).target_modules == {"query"}


def test_layers_to_transform_restricts_adapted_blocks(bert):
    space = PEFTSpace.for_model(bert, methods=("lora",), layers="last")
    assert space["last_layers"].low == 1 and space["last_layers"].high == N_LAYERS
    model = space.apply(bert, config_for(space, last_layers=1, **{"target.query": True}))
    assert set(lora_counts(model)) == names_ending(bert, "query", layers=[N_LAYERS - 1])

    fixed = PEFTSpace.for_model(bert, methods=("lora",), layers=[0, 1])
    model = fixed.apply(bert, config_for(fixed, **{"target.dense": True}))
    assert set(lora_counts(model)) == names_ending(bert, "dense", layers=[0, 1])


def test_the_original_model_is_untouched(bert):
    before = copy.deepcopy(bert.state_dict())
    names = [n for n, _ in bert.named_modules()]
    space = PEFTSpace.for_model(bert, modules_to_save=["classifier"])
    space.apply(bert, config_for(space, method="dora", **{"target.dense": True}))
    assert [n for n, _ in bert.named_modules()] == names
    assert not any(isinstance(m, peft.tuners.tuners_utils.BaseTunerLayer) for m in bert.modules())
    assert bert.state_dict().keys() == before.keys()
    assert all(torch.equal(before[k], v) for k, v in bert.state_dict().items())
    assert all(p.requires_grad for p in bert.parameters())


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"per_layer_rank": True, "layers": "last", "alpha": (4.0, 16.0)},
        {"methods": ("ia3", "dora"), "layers": [2], "targets": ("query", "output.dense")},
        {"methods": ("ia3",), "task_type": "SEQ_CLS"},
    ],
)
def test_every_sampled_config_applies(bert, tokens, options):
    space = PEFTSpace.for_model(bert, **options)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        config = space.decode(study.ask(space.distributions()).params)
        model = space.apply(bert, config)
        assert lora_counts(model) or config["method"] == "ia3"
    assert model(tokens).logits.shape == (2, 2)


def test_merged_space_applies_the_peft_part(bert, tokens):
    space = SearchSpace.merge(peft=PEFTSpace.for_model(bert, methods=("lora",)))
    config = {f"peft.{k}": v for k, v in config_for(space.children["peft"]).items()}
    assert space.apply(bert, config)(tokens).logits.shape == (2, 2)


def test_plain_torch_model():
    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    space = PEFTSpace.for_model(mlp, methods=("lora",), ranks=(2, 4))
    assert [k for k in space if k.startswith("target.")] == ["target.0"]
    model = space.apply(mlp, config_for(space, rank=4))
    assert lora_counts(model) == {"0": 4 * (8 + 16)}
    assert model(torch.zeros(3, 8)).shape == (3, 2)


def test_bad_inputs(bert):
    with pytest.raises(ValueError, match=r"'attn'.*Available target names: \[.*query"):
        PEFTSpace.for_model(bert, targets=["query", "attn"])
    with pytest.raises(ValueError, match=r"methods has invalid values.*'lora', 'dora', 'ia3'"):
        PEFTSpace.for_model(bert, methods=("lora", "prefix"))
    with pytest.raises(ValueError, match="ranks is empty"):
        PEFTSpace.for_model(bert, ranks=())
    with pytest.raises(ValueError, match="no Linear modules"):
        PEFTSpace.for_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    with pytest.raises(ValueError, match="matches non-Linear modules"):
        PEFTSpace.for_model(bert, targets=["output"])
    with pytest.raises(ValueError, match="layers has invalid values"):
        PEFTSpace.for_model(bert, layers=[0, N_LAYERS])
    with pytest.raises(ValueError, match="stack of transformer blocks"):
        PEFTSpace.for_model(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), layers="last")
    with pytest.raises(ValueError, match=r"no nn\.Linear in blocks"):
        PEFTSpace.for_model(bert, targets=["query", "pooler.dense"], per_layer_rank=True)
    with pytest.raises(ValueError, match="per_layer_rank=True needs"):
        PEFTSpace.for_model(bert, methods=("ia3",), per_layer_rank=True)
    with pytest.raises(ValueError, match="Unknown task_type"):
        PEFTSpace.for_model(bert, task_type="CLASSIFY")
    with pytest.raises(ValueError, match=r"modules_to_save has invalid values.*bert"):
        PEFTSpace.for_model(bert, modules_to_save=["head"])
    with pytest.raises(TypeError, match="ranks must be a list"):
        PEFTSpace.for_model(bert, ranks=8)  # type: ignore[arg-type]
    space = PEFTSpace.for_model(bert)
    with pytest.raises(ValueError, match="not in this space"):
        space.peft_config({"method": "lora"})
